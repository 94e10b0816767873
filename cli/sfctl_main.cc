#include <iostream>

#include "cli/sfctl.h"

int main(int argc, char** argv) {
  return sf::cli::RunSfctl(argc, argv, std::cin, std::cout, std::cerr);
}
