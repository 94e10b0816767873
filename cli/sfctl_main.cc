#include <iostream>

#include "cli/sfctl.h"
#include "common/crash_trace.h"

int main(int argc, char** argv) {
  sf::InstallCrashTrace(argv[0]);
  return sf::cli::RunSfctl(argc, argv, std::cin, std::cout, std::cerr);
}
