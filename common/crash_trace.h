// A stack trace on stderr when a program dies of a fatal signal (SIGSEGV, SIGBUS, SIGILL,
// SIGFPE, SIGABRT), so that a crash on a user's machine or a GPU host leaves more than
// "Segmentation fault": the signal, the faulting thread's frames with their function
// names (from the dynamic symbol table, so stripped-of-debug binaries still name them),
// then the default action (core dump, exit status 128 + signal). SIGINT and SIGTERM are
// left to the programs' own handlers. Does nothing in sanitizer builds, whose own
// reports are better.
//   int main(int argc, char** argv) { sf::InstallCrashTrace(argv[0]); ... }
#ifndef SF_COMMON_CRASH_TRACE_H_
#define SF_COMMON_CRASH_TRACE_H_

namespace sf {

// Call once, early in main. `program` is argv[0] (for the symbolizer).
void InstallCrashTrace(const char* program);

}  // namespace sf

#endif  // SF_COMMON_CRASH_TRACE_H_
