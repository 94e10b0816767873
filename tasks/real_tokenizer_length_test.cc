// Every task's prompts land in [0.9 L, L] with the two real tokenizers (Llama 3 and
// Qwen3 tokenizer.json from deploy/fetch-tokenizers.sh), from 1K to 128K tokens.
#include "gtest/gtest.h"
#include "tasks/testing/length_check.h"
#include "worker/model/testing/real_tokenizers.h"

namespace sf::tasks {
namespace {

TEST(RealTokenizerLength, EveryTask_1KTo128K_InWindow) {
  const Tokenizer& llama3 = sf::testing::LoadRealTokenizer("llama3");
  const Tokenizer& qwen3 = sf::testing::LoadRealTokenizer("qwen3");
  testing::CheckLengths({1024, 8192, 32768, 131072}, 1, {&llama3, &qwen3});
}

}  // namespace
}  // namespace sf::tasks
