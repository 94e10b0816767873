#include "gtest/gtest.h"
#include "tasks/testing/length_check.h"

namespace sf::tasks {
namespace {

TEST(Length, EveryTask_ShortLengths_InWindow) {
  testing::CheckLengths({1024, 2048, 4096, 16384}, 2);
}

}  // namespace
}  // namespace sf::tasks
