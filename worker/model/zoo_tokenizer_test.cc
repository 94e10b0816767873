// The zoo's tokenizer format: tests/data/tokenizer/zoo_bpe_512 was written by
// tools/zoo/train_tokenizer.py (--vocab-size 512, on `sfctl tasks dump` samples of
// ruler_niah and story_retrieval), the same program that makes the zoo models'
// tokenizer.json. HfTokenizer must read it as is: byte-level BPE with Qwen2's split,
// ChatML special tokens, the chat template from tokenizer_config.json.
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/model/chat_template.h"
#include "worker/model/tokenizer.h"

namespace sf {
namespace {

using ::testing::ElementsAre;
using ::testing::Lt;

std::unique_ptr<HfTokenizer> LoadZooTokenizer() {
  const char* root = std::getenv("SF_SOURCE_DIR");
  const std::string path = std::string(root != nullptr ? root : ".") +
                           "/tests/data/tokenizer/zoo_bpe_512/tokenizer.json";
  absl::StatusOr<std::unique_ptr<HfTokenizer>> tok = HfTokenizer::FromFile(path);
  EXPECT_TRUE(tok.ok()) << tok.status() << " (set SF_SOURCE_DIR to the repository)";
  return tok.ok() ? std::move(*tok) : nullptr;
}

TEST(ZooTokenizer, Loads_WithItsSizeAndChatMlSpecials) {
  std::unique_ptr<HfTokenizer> tok = LoadZooTokenizer();
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->VocabSize(), 512);
  EXPECT_EQ(tok->TokenToId("<|endoftext|>"), 509);
  EXPECT_EQ(tok->TokenToId("<|im_start|>"), 510);
  EXPECT_EQ(tok->TokenToId("<|im_end|>"), 511);
  EXPECT_FALSE(tok->AddsBos());
  EXPECT_EQ(tok->EosId(), 511);
}

TEST(ZooTokenizer, TaskText_RoundTripsAndIsMerged) {
  std::unique_ptr<HfTokenizer> tok = LoadZooTokenizer();
  ASSERT_NE(tok, nullptr);
  const std::string text =
      "The value for key 5m64tzqd-xjoe355k is: yryjqooe.\nChapter 3: Fenna Yarrow";
  const std::vector<TokenId> ids = tok->Encode(text);
  // Merges learned from the task text apply: " value" and " for" are single tokens.
  EXPECT_THAT(ids.size(), Lt(text.size() * 2 / 3));
  EXPECT_THAT(tok->Encode(" value"), ::testing::SizeIs(1));
  EXPECT_THAT(tok->Encode(" for"), ::testing::SizeIs(1));
  // Qwen2's split keeps each digit apart.
  EXPECT_THAT(tok->Encode("355"), ElementsAre('3', '5', '5'));
  absl::StatusOr<std::string> back = tok->Decode(ids);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, text);
}

TEST(ZooTokenizer, TextOutsideTheCorpus_FallsBackToBytes) {
  std::unique_ptr<HfTokenizer> tok = LoadZooTokenizer();
  ASSERT_NE(tok, nullptr);
  const std::string text = "na\xC3\xAFve \xE6\x9D\xB1\xE4\xBA\xAC <|im_end|>";
  absl::StatusOr<std::string> back = tok->Decode(tok->Encode(text));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, text);
  // Without parse_special the marker is plain text, not the end-of-turn token.
  for (TokenId id : tok->Encode(text)) EXPECT_NE(id, 511);
}

TEST(ZooTokenizer, ChatTemplate_IsChatMl) {
  std::unique_ptr<HfTokenizer> tok = LoadZooTokenizer();
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(DetectChatFormat(*tok), ChatFormat::kChatMl);
  absl::StatusOr<std::vector<TokenId>> ids =
      EncodeChat(ChatFormat::kChatMl, *tok, {{"user", "hi"}});
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(ids->front(), 510);
  EXPECT_EQ(RenderChat(ChatFormat::kChatMl, *tok, {{"user", "hi"}}),
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
}

}  // namespace
}  // namespace sf
