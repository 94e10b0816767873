#include "common/crash_trace.h"

#include <execinfo.h>
#include <signal.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstring>

#include "absl/debugging/symbolize.h"

namespace sf {
namespace {

constexpr int kSignals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};

// Only signal-safe work below: write(2), glibc's backtrace() (its unwinder is loaded at
// install time, so the handler allocates nothing) and absl's symbolizer (made for signal
// handlers). backtrace() reads the unwind tables, so frames are found without frame
// pointers and through the signal frame.
void WriteString(const char* s) {
  size_t left = std::strlen(s);
  while (left > 0) {
    const ssize_t n = write(STDERR_FILENO, s, left);
    if (n <= 0) return;
    s += n;
    left -= static_cast<size_t>(n);
  }
}

void WriteHex(uintptr_t v) {
  char buf[2 + 2 * sizeof(v) + 1];
  buf[0] = '0';
  buf[1] = 'x';
  for (size_t i = 0; i < 2 * sizeof(v); ++i) {
    const unsigned digit = (v >> (4 * (2 * sizeof(v) - 1 - i))) & 0xf;
    buf[2 + i] = static_cast<char>(digit < 10 ? '0' + digit : 'a' + digit - 10);
  }
  buf[sizeof(buf) - 1] = '\0';
  WriteString(buf);
}

const char* SignalName(int sig) {
  switch (sig) {
    case SIGSEGV:
      return "SIGSEGV";
    case SIGBUS:
      return "SIGBUS";
    case SIGILL:
      return "SIGILL";
    case SIGFPE:
      return "SIGFPE";
    case SIGABRT:
      return "SIGABRT";
    default:
      return "a fatal signal";
  }
}

// The instruction that faulted, from the signal's context (0 where unknown).
uintptr_t FaultingPc(void* context) {
  const auto* uc = static_cast<const ucontext_t*>(context);
#if defined(__x86_64__)
  return static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]);
#elif defined(__aarch64__)
  return static_cast<uintptr_t>(uc->uc_mcontext.pc);
#else
  (void)uc;
  return 0;
#endif
}

void OnFatalSignal(int sig, siginfo_t* info, void* context) {
  // One report even when several threads fault at once: the others wait here until the
  // default action below ends the process.
  static volatile sig_atomic_t reporting = 0;
  if (__sync_lock_test_and_set(&reporting, 1) != 0) {
    while (true) pause();
  }
  WriteString("\n*** ");
  WriteString(SignalName(sig));
  if (sig == SIGSEGV || sig == SIGBUS) {
    WriteString(" at address ");
    WriteHex(reinterpret_cast<uintptr_t>(info->si_addr));
  }
  WriteString("; stack of the thread that received it:\n");
  void* frames[64];
  const int depth = backtrace(frames, 64);
  const uintptr_t fault = FaultingPc(context);
  char name[512];
  // Frame 0 is this handler; the faulting instruction follows the kernel's signal frame.
  for (int i = 1; i < depth; ++i) {
    const auto address = reinterpret_cast<uintptr_t>(frames[i]);
    WriteString("    ");
    WriteHex(address);
    WriteString("  ");
    // A return address points after its call: look up the byte before it. The faulting
    // instruction is looked up as it is.
    void* pc = reinterpret_cast<void*>(address == fault ? address : address - 1);
    WriteString(absl::Symbolize(pc, name, sizeof(name)) ? name : "(unknown)");
    WriteString("\n");
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

}  // namespace

void InstallCrashTrace(const char* program) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  (void)program;
#else
  absl::InitializeSymbolizer(program);
  void* warm[2];
  (void)backtrace(warm, 2);  // loads the unwinder now, not inside the handler
  struct sigaction action;
  std::memset(&action, 0, sizeof(action));
  action.sa_sigaction = &OnFatalSignal;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  for (int sig : kSignals) sigaction(sig, &action, nullptr);
#endif
}

}  // namespace sf
