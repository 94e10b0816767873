// Helpers shared by the model tests: a fresh temporary folder per test.
#ifndef SF_WORKER_MODEL_TEST_UTIL_H_
#define SF_WORKER_MODEL_TEST_UTIL_H_

#include <filesystem>
#include <string>

#include "common/testing/temp_dir.h"

namespace sf::model::testing {

// An empty folder named after the running test (common/testing/temp_dir.h), as a string.
inline std::string FreshTestDir(const std::string& suffix = "") {
  return ::sf::testing::FreshTestDir(suffix).string();
}

}  // namespace sf::model::testing

#endif  // SF_WORKER_MODEL_TEST_UTIL_H_
