#include "gtest/gtest.h"
#include "tasks/testing/length_check.h"

namespace sf::tasks {
namespace {

TEST(Length, EveryTask_LongLengths_InWindow) { testing::CheckLengths({32768, 65536, 131072}, 2); }

}  // namespace
}  // namespace sf::tasks
