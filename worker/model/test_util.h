// Helpers shared by the model tests: a fresh temporary folder per test.
#ifndef SF_WORKER_MODEL_TEST_UTIL_H_
#define SF_WORKER_MODEL_TEST_UTIL_H_

#include <filesystem>
#include <string>

#include "gtest/gtest.h"

namespace sf::model::testing {

// An empty folder named after the running test, under the gtest temp dir.
inline std::string FreshTestDir(const std::string& suffix = "") {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) /
      (std::string("sf_model_") + info->test_suite_name() + "_" + info->name() + suffix);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

}  // namespace sf::model::testing

#endif  // SF_WORKER_MODEL_TEST_UTIL_H_
