// Paths of the test data under tests/data/tasks/ (ctest sets SF_SOURCE_DIR; a test run by
// hand from the build folder falls back to the source tree it was configured from).
#ifndef SF_TASKS_TESTING_TEST_DATA_H_
#define SF_TASKS_TESTING_TEST_DATA_H_

#include <cstdlib>
#include <string>

namespace sf::tasks::testing {

inline std::string TaskDataPath(const std::string& file) {
  const char* root = std::getenv("SF_SOURCE_DIR");
  return std::string(root != nullptr ? root : SF_TASKS_SOURCE_DIR) + "/tests/data/tasks/" + file;
}

}  // namespace sf::tasks::testing

#endif  // SF_TASKS_TESTING_TEST_DATA_H_
