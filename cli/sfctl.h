// sfctl's entry point as a library function, so tests run it in process.
#ifndef SF_CLI_SFCTL_H_
#define SF_CLI_SFCTL_H_

#include <iosfwd>

namespace sf::cli {

// Parses argv, runs the chosen command and returns the process exit code.
int RunSfctl(int argc, const char* const* argv, std::istream& in, std::ostream& out,
             std::ostream& err);

}  // namespace sf::cli

#endif  // SF_CLI_SFCTL_H_
