// Checks HfTokenizer against the reference encoder's ids (tests/data/tokenizer/vectors.json,
// made by tools/gen-tokenizer-vectors.js) on the real Llama 3 and Qwen3 tokenizer files,
// and round-trips random bytes through them. The files come from deploy/fetch-tokenizers.sh.
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "worker/model/chat_template.h"
#include "worker/model/testing/real_tokenizers.h"
#include "worker/model/tokenizer.h"

namespace sf {
namespace {

using ::testing::ElementsAreArray;

std::string SourceDir() {
  const char* dir = std::getenv("SF_SOURCE_DIR");
  return dir != nullptr ? dir : ".";
}

const HfTokenizer& Load(const std::string& name) { return testing::LoadRealTokenizer(name); }

const nlohmann::json& Vectors() {
  static const nlohmann::json* v = [] {
    const std::string path = SourceDir() + "/tests/data/tokenizer/vectors.json";
    std::ifstream in(path);
    if (!in) {
      ADD_FAILURE() << "cannot open " << path << " (set SF_SOURCE_DIR to the repository)";
      std::abort();
    }
    return new nlohmann::json(nlohmann::json::parse(in));
  }();
  return *v;
}

class Conformance : public ::testing::TestWithParam<std::string> {};

// Tokenizers without a normaliser give back every input byte for byte.
bool NoNormalizer(const std::string& name) { return name == "llama3"; }

TEST_P(Conformance, ReferenceIds_Identical) {
  const HfTokenizer& tok = Load(GetParam());
  const nlohmann::json& cases = Vectors()["tokenizers"][GetParam()]["cases"];
  ASSERT_GT(cases.size(), 40u);
  for (const nlohmann::json& c : cases) {
    const std::string text = c["text"].get<std::string>();
    const std::vector<TokenId> special = c["ids_special"].get<std::vector<TokenId>>();
    const std::vector<TokenId> plain = c["ids_plain"].get<std::vector<TokenId>>();
    EXPECT_THAT(tok.Encode(text, /*parse_special=*/true), ElementsAreArray(special))
        << "parse_special, text: " << text.substr(0, 120);
    EXPECT_THAT(tok.Encode(text, /*parse_special=*/false), ElementsAreArray(plain))
        << "plain, text: " << text.substr(0, 120);
    EXPECT_EQ(tok.CountTokens(text), static_cast<int64_t>(plain.size()));
    SF_ASSERT_OK_AND_ASSIGN(std::string decoded, tok.Decode(special));
    EXPECT_EQ(decoded, c["decoded"].get<std::string>());
    SF_ASSERT_OK_AND_ASSIGN(std::string decoded_plain, tok.Decode(plain));
    EXPECT_EQ(decoded_plain, c["decoded"].get<std::string>());
  }
}

TEST_P(Conformance, SkipSpecial_DropsOnlySpecialTokens) {
  const HfTokenizer& tok = Load(GetParam());
  const std::string text = GetParam() == "llama3" ? "<|begin_of_text|>Hi<|eot_id|> there"
                                                  : "<|im_start|>Hi<|im_end|> there";
  SF_ASSERT_OK_AND_ASSIGN(std::string out, tok.Decode(tok.Encode(text, true), true));
  EXPECT_EQ(out, "Hi there");
}

TEST_P(Conformance, RandomBytes_NeverCrashAndRoundTrip) {
  const HfTokenizer& tok = Load(GetParam());
  // Qwen3 normalises to NFC, so only NFC-stable text can come back byte for byte: there
  // random bytes stay below 0xCC (lead bytes of code points below U+0300, which NFC
  // never changes) and no fragment can complete a character NFC would rewrite.
  const bool nfc = GetParam() == "qwen3";
  std::mt19937 rng(1234);
  // Mixes arbitrary bytes (often invalid UTF-8) with fragments the regex cares about.
  std::vector<std::string> fragments = {" ",  "\n", "\r\n", "'s",         "'LL",        "123",
                                        "ab", "é",  "中",   "🙂",       "\xff",       "<|",
                                        "|>", "\t", "   ",  "<|im_end|>", "<|eot_id|>", "\xe4\xb8"};
  if (!nfc) fragments.push_back("\xe2\x80");
  for (int iter = 0; iter < 2000; ++iter) {
    std::string text;
    const int len = static_cast<int>(rng() % 64);
    for (int i = 0; i < len; ++i) {
      if (rng() % 2 == 0) {
        text += static_cast<char>(rng() % (nfc ? 0xCC : 256));
      } else {
        text += fragments[rng() % fragments.size()];
      }
    }
    for (bool parse_special : {false, true}) {
      const std::vector<TokenId> ids = tok.Encode(text, parse_special);
      for (TokenId id : ids) ASSERT_LT(id, tok.VocabSize());
      SF_ASSERT_OK_AND_ASSIGN(std::string back, tok.Decode(ids));
      EXPECT_EQ(back, text) << "iteration " << iter;
    }
  }
}

TEST_P(Conformance, RandomBytes_EncodingIsStableAfterOneRoundTrip) {
  // Any bytes at all (NFC may rewrite some): decoding and encoding again changes nothing.
  const HfTokenizer& tok = Load(GetParam());
  std::mt19937 rng(99);
  for (int iter = 0; iter < 2000; ++iter) {
    std::string text(rng() % 48, '\0');
    for (char& c : text) c = static_cast<char>(rng() % 256);
    SF_ASSERT_OK_AND_ASSIGN(std::string once, tok.Decode(tok.Encode(text)));
    SF_ASSERT_OK_AND_ASSIGN(std::string twice, tok.Decode(tok.Encode(once)));
    EXPECT_EQ(twice, once) << "iteration " << iter;
    if (!NoNormalizer(GetParam())) continue;
    EXPECT_EQ(once, text) << "iteration " << iter;
  }
}

TEST_P(Conformance, DetectChatFormat_FromConfig) {
  const HfTokenizer& tok = Load(GetParam());
  EXPECT_EQ(DetectChatFormat(tok),
            GetParam() == "llama3" ? ChatFormat::kLlama3 : ChatFormat::kChatMl);
}

INSTANTIATE_TEST_SUITE_P(RealFiles, Conformance, ::testing::Values("llama3", "qwen3"),
                         [](const auto& param_info) { return param_info.param; });

TEST(Llama3Chat, EncodeChat_MatchesTemplateRenderedWithSpecials) {
  const HfTokenizer& tok = Load("llama3");
  const std::vector<ChatMessage> msgs = {{"system", "Be brief."}, {"user", "  What is 2+2? "}};
  SF_ASSERT_OK_AND_ASSIGN(std::vector<TokenId> ids, EncodeChat(ChatFormat::kLlama3, tok, msgs));
  const std::string expected_text =
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n";
  EXPECT_EQ(RenderChat(ChatFormat::kLlama3, tok, msgs), expected_text);
  EXPECT_THAT(ids, ElementsAreArray(tok.Encode(expected_text, /*parse_special=*/true)));
}

TEST(QwenChat, EncodeChat_ContentCannotInjectSpecialTokens) {
  const HfTokenizer& tok = Load("qwen3");
  const std::vector<ChatMessage> msgs = {{"user", "hi<|im_end|>"}};
  SF_ASSERT_OK_AND_ASSIGN(std::vector<TokenId> ids, EncodeChat(ChatFormat::kChatMl, tok, msgs));
  const TokenId im_end = *tok.TokenToId("<|im_end|>");
  EXPECT_EQ(std::count(ids.begin(), ids.end(), im_end), 1);  // only the template's own
  EXPECT_EQ(RenderChat(ChatFormat::kChatMl, tok, msgs),
            "<|im_start|>user\nhi<|im_end|><|im_end|>\n<|im_start|>assistant\n");
}

TEST(QwenChat, DisableThinking_UsesThinkTokens) {
  const HfTokenizer& tok = Load("qwen3");
  ChatOptions options;
  options.disable_thinking = true;
  SF_ASSERT_OK_AND_ASSIGN(std::vector<TokenId> ids,
                          EncodeChat(ChatFormat::kChatMl, tok, {{"user", "x"}}, options));
  EXPECT_EQ(std::count(ids.begin(), ids.end(), *tok.TokenToId("<think>")), 1);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), *tok.TokenToId("</think>")), 1);
}

TEST(QwenChat, Llama3FormatOnQwen_FailsNamingTheToken) {
  const HfTokenizer& tok = Load("qwen3");
  EXPECT_THAT(EncodeChat(ChatFormat::kLlama3, tok, {{"user", "x"}}),
              testing::StatusIs(absl::StatusCode::kFailedPrecondition,
                                ::testing::HasSubstr("<|begin_of_text|>")));
}

TEST(Bos, RealFiles_FollowConfig) {
  // Neither npm file sets add_bos_token nor a TemplateProcessing post-processor.
  EXPECT_FALSE(Load("llama3").AddsBos());
  EXPECT_EQ(Load("llama3").BosId(), std::optional<TokenId>(128000));
  EXPECT_FALSE(Load("qwen3").AddsBos());
  EXPECT_EQ(Load("qwen3").EosId(), Load("qwen3").TokenToId("<|im_end|>"));
}

}  // namespace
}  // namespace sf
