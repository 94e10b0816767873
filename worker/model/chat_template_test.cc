// Chat formats on a small tokenizer that has both families' special tokens.
#include "worker/model/chat_template.h"

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace sf {
namespace {

using ::sf::testing::StatusIs;
using ::testing::HasSubstr;

std::unique_ptr<HfTokenizer> Tiny(const std::vector<std::string>& specials,
                                  const std::string& config) {
  // Printable ASCII only is enough here; the other bytes map to 256+ code points.
  nlohmann::json vocab = nlohmann::json::object();
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
    const uint32_t cp = printable ? b : next++;
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    vocab[s] = b;
  }
  nlohmann::json added = nlohmann::json::array();
  for (size_t i = 0; i < specials.size(); ++i) {
    added.push_back({{"id", 500 + i}, {"content", specials[i]}, {"special", true}});
  }
  nlohmann::json doc = {
      {"added_tokens", added},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}}};
  auto tok = HfTokenizer::FromJson(doc.dump(), config, "tiny");
  EXPECT_THAT(tok, testing::IsOk());
  return std::move(*tok);
}

TEST(ChatFormat, Parse_NamesAndAliases) {
  EXPECT_EQ(*ParseChatFormat("ChatML"), ChatFormat::kChatMl);
  EXPECT_EQ(*ParseChatFormat("qwen"), ChatFormat::kChatMl);
  EXPECT_EQ(*ParseChatFormat("llama3"), ChatFormat::kLlama3);
  EXPECT_EQ(*ParseChatFormat("raw"), ChatFormat::kRaw);
  EXPECT_THAT(ParseChatFormat("jinja"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("raw, chatml, llama3")));
}

TEST(ChatFormat, Detect_TemplateTextThenSpecialTokens) {
  EXPECT_EQ(DetectChatFormat(*Tiny({}, R"({"chat_template": "{{'<|im_start|>'}}"})")),
            ChatFormat::kChatMl);
  EXPECT_EQ(DetectChatFormat(*Tiny({}, R"({"chat_template": "x<|start_header_id|>"})")),
            ChatFormat::kLlama3);
  EXPECT_EQ(DetectChatFormat(*Tiny({"<|start_header_id|>", "<|eot_id|>"}, "")),
            ChatFormat::kLlama3);
  EXPECT_EQ(DetectChatFormat(*Tiny({"<|im_start|>", "<|im_end|>"}, "")), ChatFormat::kChatMl);
  EXPECT_EQ(DetectChatFormat(
                *Tiny({"<|im_start|>", "<|im_end|>"}, R"({"chat_template": "[INST] {{ x }}"})")),
            ChatFormat::kRaw);
  EXPECT_EQ(DetectChatFormat(*Tiny({}, "")), ChatFormat::kRaw);
}

TEST(ChatFormat, Raw_AddsBosOnlyWhenConfigured) {
  auto with = Tiny({"<s>"}, R"({"bos_token": "<s>", "add_bos_token": true})");
  SF_ASSERT_OK_AND_ASSIGN(auto ids, EncodeChat(ChatFormat::kRaw, *with, {{"user", "hi"}}));
  EXPECT_EQ(ids, (std::vector<TokenId>{500, 'h', 'i'}));
  EXPECT_EQ(RenderChat(ChatFormat::kRaw, *with, {{"user", "hi"}}), "<s>hi");
  auto without = Tiny({"<s>"}, R"({"bos_token": "<s>"})");
  SF_ASSERT_OK_AND_ASSIGN(auto ids2, EncodeChat(ChatFormat::kRaw, *without, {{"user", "hi"}}));
  EXPECT_EQ(ids2, (std::vector<TokenId>{'h', 'i'}));
}

TEST(ChatFormat, ChatMl_WithoutGenerationPrompt) {
  auto tok = Tiny({"<|im_start|>", "<|im_end|>"}, "");
  ChatOptions options;
  options.add_generation_prompt = false;
  EXPECT_EQ(RenderChat(ChatFormat::kChatMl, *tok, {{"system", "s"}, {"user", "u"}}, options),
            "<|im_start|>system\ns<|im_end|>\n<|im_start|>user\nu<|im_end|>\n");
  SF_ASSERT_OK_AND_ASSIGN(auto ids,
                          EncodeChat(ChatFormat::kChatMl, *tok, {{"user", "u"}}, options));
  EXPECT_EQ(ids, (std::vector<TokenId>{500, 'u', 's', 'e', 'r', '\n', 'u', 501, '\n'}));
}

}  // namespace
}  // namespace sf
