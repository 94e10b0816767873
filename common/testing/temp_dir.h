// The one temporary-folder helper for tests: a fresh, empty folder per test under
// gtest's temp dir ($TEST_TMPDIR, else /tmp), named after the running test and the
// process so that test binaries running side by side (ctest -j) never share one.
#ifndef SF_COMMON_TESTING_TEMP_DIR_H_
#define SF_COMMON_TESTING_TEMP_DIR_H_

#include <unistd.h>

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace sf::testing {

// <temp>/sf_<suite>_<test>[_<suffix>]_<pid>, emptied and created. Outside a running
// test (a suite's SetUpTestSuite, a static fixture) the test part is "suite".
inline std::filesystem::path FreshTestDir(absl::string_view suffix = "") {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info != nullptr
                         ? absl::StrCat("sf_", info->test_suite_name(), "_", info->name())
                         : "sf_suite";
  if (!suffix.empty()) absl::StrAppend(&name, "_", suffix);
  absl::StrAppend(&name, "_", ::getpid());
  std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / name;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace sf::testing

#endif  // SF_COMMON_TESTING_TEMP_DIR_H_
