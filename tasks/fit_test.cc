#include "tasks/fit.h"

#include <string>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tasks/rng.h"
#include "tasks/testing/fake_tokenizers.h"

namespace sf::tasks {
namespace {

using ::sf::testing::StatusIs;
using testing::ChunkTokenizer;
using ::testing::HasSubstr;
using testing::WordPieceTokenizer;

// A prompt of fixed text plus n units of varying size (3 to 40 words).
std::string Render(int64_t n) {
  std::string out = "Fixed instructions that every prompt carries. ";
  Rng rng(11);
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t words = 3 + rng.Below(38);
    for (uint64_t w = 0; w < words; ++w) out += w % 3 == 0 ? "alpha " : "be gamma7 ";
    out += "\n";
  }
  return out + "Question repeated at the end.";
}

TEST(FitUnits, AnyLength_LandsInWindowWithFewCounts) {
  WordPieceTokenizer words;
  ChunkTokenizer chunks;
  for (const Tokenizer* tok : std::vector<const Tokenizer*>{&words, &chunks}) {
    for (int64_t length : {1024, 4096, 32768, 131072}) {
      PromptBudget budget{length, 64, 16};
      SF_ASSERT_OK_AND_ASSIGN(FitResult fit, FitUnits(*tok, budget, 0, 1 << 30, Render));
      EXPECT_EQ(fit.tokens, tok->CountTokens(Render(fit.units)));
      EXPECT_LE(fit.tokens, budget.MaxPromptTokens());
      EXPECT_GE(fit.tokens, budget.MinPromptTokens());
      // Close to the ceiling (within one unit, at most ~140 tokens here), not merely above
      // the floor.
      EXPECT_GE(fit.tokens, budget.MaxPromptTokens() - std::max<int64_t>(140, length / 50))
          << tok->Name() << " " << length;
      EXPECT_LE(fit.tokenizations, 8) << tok->Name() << " " << length;
    }
  }
}

TEST(FitUnits, FixedPartsTooLong_IsFailedPrecondition) {
  WordPieceTokenizer tok;
  auto render = [](int64_t) { return std::string(5000, 'x'); };
  EXPECT_THAT(FitUnits(tok, {1024, 64, 0}, 0, 10, render),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("fixed parts")));
}

TEST(FitUnits, NotEnoughFiller_IsFailedPrecondition) {
  ChunkTokenizer tok;
  EXPECT_THAT(FitUnits(tok, {131072, 64, 0}, 0, 20, Render),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not enough filler")));
}

TEST(FitUnits, UnitsCoarserThanWindow_IsFailedPrecondition) {
  ChunkTokenizer tok;
  // Each unit is 600 tokens; the window at 1K is ~100 tokens wide.
  auto render = [](int64_t n) { return std::string(static_cast<size_t>(n) * 1800 + 30, 'y'); };
  EXPECT_THAT(FitUnits(tok, {1024, 64, 0}, 0, 10, render),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("coarse")));
}

TEST(FitUnits, BadBudget_IsInvalidArgument) {
  ChunkTokenizer tok;
  EXPECT_THAT(FitUnits(tok, {100, 64, 50}, 0, 10, Render),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no room")));
  EXPECT_THAT(FitUnits(tok, {0, 64, 0}, 0, 10, Render),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("prompt budget")));
}

}  // namespace
}  // namespace sf::tasks
