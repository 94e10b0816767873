// Unit tests of HfTokenizer on small hand-written tokenizer.json files.
#include "worker/model/tokenizer.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace sf {
namespace {

using ::sf::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The GPT-2 byte-level spelling of one byte.
std::string ByteLevel(unsigned char b) {
  uint32_t next = 256;
  uint32_t cp = 0;
  for (int x = 0; x < 256; ++x) {
    const bool printable = (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174);
    const uint32_t c = printable ? x : next++;
    if (x == b) cp = c;
  }
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

std::string BL(const std::string& bytes) {
  std::string s;
  for (unsigned char c : bytes) s += ByteLevel(c);
  return s;
}

// A tiny tokenizer: all 256 bytes (ids 0..255), then merges in the given order, each
// adding the merged token with the next id; Llama-3-like split regex.
nlohmann::json TinyTokenizer(const std::vector<std::pair<std::string, std::string>>& merges) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[ByteLevel(static_cast<unsigned char>(b))] = b;
  nlohmann::json m = nlohmann::json::array();
  int next = 256;
  for (const auto& [a, b] : merges) {
    if (!vocab.contains(BL(a + b))) vocab[BL(a + b)] = next++;
    m.push_back(BL(a) + " " + BL(b));
  }
  nlohmann::json doc = {
      {"version", "1.0"},
      {"added_tokens",
       {{{"id", 1000}, {"content", "<|end|>"}, {"special", true}},
        {{"id", 1001}, {"content", "<tool>"}, {"special", false}}}},
      {"normalizer", {{"type", "NFC"}}},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"},
           {"pattern",
            {{"Regex",
              R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}}},
           {"behavior", "Isolated"},
           {"invert", false}},
          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", m}}}};
  return doc;
}

std::unique_ptr<HfTokenizer> Make(const nlohmann::json& doc, const std::string& config = "") {
  auto tok = HfTokenizer::FromJson(doc.dump(), config, "tiny/tokenizer.json");
  EXPECT_THAT(tok, testing::IsOk());
  return tok.ok() ? std::move(*tok) : nullptr;
}

TEST(HfTokenizer, Merges_AppliedByRankNotPosition) {
  // "abc": (b,c) has rank 0, so it wins over (a,b) although (a,b) is leftmost.
  auto tok = Make(TinyTokenizer({{"b", "c"}, {"a", "b"}, {"a", "bc"}}));
  const TokenId bc = *tok->TokenToId("bc");
  const TokenId abc = *tok->TokenToId("abc");
  EXPECT_THAT(tok->Encode("abc"), ElementsAre(abc));
  EXPECT_THAT(tok->Encode("bca"), ElementsAre(bc, 'a'));
}

TEST(HfTokenizer, EqualRanks_LeftmostFirst) {
  auto tok = Make(TinyTokenizer({{"a", "a"}}));
  const TokenId aa = *tok->TokenToId("aa");
  EXPECT_THAT(tok->Encode("aaa"), ElementsAre(aa, 'a'));
}

TEST(HfTokenizer, LongWord_HeapPathMatchesShortPath) {
  auto tok = Make(TinyTokenizer({{"a", "a"}, {"aa", "aa"}, {"aaaa", "a"}}));
  // 300 letters go through the heap merge; the result must tile like a short word does.
  const std::vector<TokenId> short_ids = tok->Encode(std::string(20, 'a'));
  const std::vector<TokenId> long_ids = tok->Encode(std::string(300, 'a'));
  ASSERT_EQ(short_ids.size(), 5u);  // 4 x "aaaa" + ... as the greedy rank order dictates
  EXPECT_EQ(long_ids.size(), 75u);
  for (TokenId id : long_ids) EXPECT_EQ(id, short_ids[0]);
}

TEST(HfTokenizer, SplitRegex_IsolatesWordsNumbersAndSpaces) {
  auto tok = Make(TinyTokenizer({}));
  // With no merges every byte is its own token, so the regex shows only through the
  // word cache and bytes: the ids equal the bytes.
  const std::string text = "Hi  there 12345\n\n";
  std::vector<TokenId> expected(text.begin(), text.end());
  EXPECT_EQ(tok->Encode(text), expected);
}

TEST(HfTokenizer, AddedTokens_SpecialOnlyWhenParseSpecial) {
  auto tok = Make(TinyTokenizer({}));
  EXPECT_THAT(tok->Encode("a<|end|>b", true), ElementsAre('a', 1000, 'b'));
  EXPECT_EQ(tok->Encode("a<|end|>b", false).size(), 9u);
  // Non-special added tokens are always split out, as Hugging Face does.
  EXPECT_THAT(tok->Encode("x<tool>y", false), ElementsAre('x', 1001, 'y'));
}

TEST(HfTokenizer, Decode_SkipSpecialAndBadIds) {
  auto tok = Make(TinyTokenizer({}));
  SF_ASSERT_OK_AND_ASSIGN(std::string all, tok->Decode({'a', 1000, 1001}));
  EXPECT_EQ(all, "a<|end|><tool>");
  SF_ASSERT_OK_AND_ASSIGN(std::string skipped, tok->Decode({'a', 1000, 1001}, true));
  EXPECT_EQ(skipped, "a<tool>");
  EXPECT_THAT(tok->Decode({'a', 5000}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("5000 at position 1")));
  EXPECT_THAT(tok->Decode({-1}), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("-1")));
}

TEST(HfTokenizer, Nfc_ComposesDecomposedText) {
  auto tok = Make(TinyTokenizer({}));
  SF_ASSERT_OK_AND_ASSIGN(std::string out, tok->Decode(tok->Encode("cafe\xcc\x81")));
  EXPECT_EQ(out, "caf\xc3\xa9");
}

TEST(HfTokenizer, InvalidUtf8_RoundTripsBytes) {
  auto tok = Make(TinyTokenizer({{"a", "b"}}));
  const std::string text =
      "ab\xff\xfe"
      "ab\xe2\x82"
      "ab\xc0\x80";
  SF_ASSERT_OK_AND_ASSIGN(std::string out, tok->Decode(tok->Encode(text)));
  EXPECT_EQ(out, text);
}

TEST(HfTokenizer, IgnoreMerges_WholeWordInVocabWins) {
  // With ignore_merges, "abc" is found in the vocab directly even though the merges
  // alone would end at "a" + "bc".
  nlohmann::json doc = TinyTokenizer({{"b", "c"}});
  doc["model"]["vocab"][BL("abc")] = 900;
  auto plain = Make(doc);
  EXPECT_EQ(plain->Encode("abc").size(), 2u);
  doc["model"]["ignore_merges"] = true;
  auto ignoring = Make(doc);
  EXPECT_THAT(ignoring->Encode("abc"), ElementsAre(900));
}

TEST(HfTokenizer, PairMerges_ArrayFormAccepted) {
  nlohmann::json doc = TinyTokenizer({});
  doc["model"]["vocab"][BL("xy")] = 300;
  doc["model"]["merges"] = nlohmann::json::array({nlohmann::json::array({"x", "y"})});
  EXPECT_THAT(Make(doc)->Encode("xy"), ElementsAre(300));
}

TEST(HfTokenizer, SplitBehaviors_MergedAndRemoved) {
  nlohmann::json doc = TinyTokenizer({{"a", "-"}, {"-", "b"}});
  auto& split = doc["pre_tokenizer"]["pretokenizers"][0];
  split["pattern"] = {{"String", "-"}};
  split["behavior"] = "MergedWithPrevious";
  EXPECT_THAT(Make(doc)->Encode("a-b"), ElementsAre(*Make(doc)->TokenToId("a-"), 'b'));
  split["behavior"] = "MergedWithNext";
  EXPECT_THAT(Make(doc)->Encode("a-b"), ElementsAre('a', *Make(doc)->TokenToId("-b")));
  split["behavior"] = "Removed";
  EXPECT_THAT(Make(doc)->Encode("a-b"), ElementsAre('a', 'b'));
}

TEST(HfTokenizer, CountTokens_EqualsEncodeSizeOnLongText) {
  auto tok = Make(TinyTokenizer({{"a", "b"}, {"ab", "c"}}));
  std::string text;
  for (int i = 0; i < 40000; ++i) absl::StrAppend(&text, "abc ab\nab", i % 7, "\n");
  EXPECT_EQ(tok->CountTokens(text), static_cast<int64_t>(tok->Encode(text).size()));
}

TEST(HfTokenizer, ConcurrentEncode_SameIdsAsSingleThread) {
  auto tok = Make(TinyTokenizer({{"a", "b"}, {"ab", "c"}, {" ", "ab"}}));
  std::vector<std::string> texts;
  for (int i = 0; i < 200; ++i) texts.push_back(absl::StrCat("abc ab", i, " cab abca\n", i * 7));
  std::vector<std::vector<TokenId>> expected;
  for (const std::string& t : texts) expected.push_back(tok->Encode(t));
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      for (int rep = 0; rep < 20; ++rep) {
        for (size_t i = 0; i < texts.size(); ++i) {
          mismatches[k] += tok->Encode(texts[(i + k * 37) % texts.size()]) !=
                           expected[(i + k * 37) % texts.size()];
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_THAT(mismatches, ::testing::Each(0));
}

TEST(HfTokenizer, Name_StableHashOfFile) {
  auto a = Make(TinyTokenizer({}));
  auto b = Make(TinyTokenizer({}));
  auto c = Make(TinyTokenizer({{"a", "b"}}));
  EXPECT_EQ(a->Name(), b->Name());
  EXPECT_NE(a->Name(), c->Name());
  EXPECT_THAT(a->Name(), HasSubstr("hf-bpe-"));
  EXPECT_EQ(a->VocabSize(), 1002);
}

TEST(HfTokenizerLoad, Errors_NameFileAndField) {
  EXPECT_THAT(HfTokenizer::FromFile("/nonexistent/tokenizer.json"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/tokenizer.json")));
  EXPECT_THAT(HfTokenizer::FromJson("{not json", "", "x/tokenizer.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("x/tokenizer.json")));
  nlohmann::json doc = TinyTokenizer({{"a", "b"}});
  doc["model"]["merges"][0] = BL("a") + " " + BL("q") + "z";
  EXPECT_THAT(HfTokenizer::FromJson(doc.dump(), "", "x/tokenizer.json"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("x/tokenizer.json: field model.merges[0]")));
  doc = TinyTokenizer({});
  doc["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed";
  EXPECT_THAT(HfTokenizer::FromJson(doc.dump(), "", "x/tokenizer.json"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("pre_tokenizer.pretokenizers[0].pattern.Regex")));
  doc = TinyTokenizer({});
  doc["normalizer"] = {{"type", "Precompiled"}};
  EXPECT_THAT(HfTokenizer::FromJson(doc.dump(), "", "x/tokenizer.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("normalizer.type")));
  doc = TinyTokenizer({});
  doc["model"]["byte_fallback"] = true;
  EXPECT_THAT(HfTokenizer::FromJson(doc.dump(), "", "x/tokenizer.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("model.byte_fallback")));
  doc = TinyTokenizer({});
  doc["model"]["vocab"].erase(BL("z"));
  EXPECT_THAT(HfTokenizer::FromJson(doc.dump(), "", "x/tokenizer.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("byte 0x7a")));
  EXPECT_THAT(HfTokenizer::FromJson(TinyTokenizer({}).dump(), R"({"add_bos_token": "yes"})",
                                    "x/tokenizer.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("add_bos_token")));
}

TEST(HfTokenizerConfig, Bos_FromConfigOrTemplateProcessing) {
  nlohmann::json doc = TinyTokenizer({});
  doc["added_tokens"].push_back({{"id", 1002}, {"content", "<s>"}, {"special", true}});
  auto none = Make(doc);
  EXPECT_FALSE(none->AddsBos());
  auto configured = Make(doc, R"({"bos_token": {"content": "<s>"}, "add_bos_token": true})");
  EXPECT_TRUE(configured->AddsBos());
  EXPECT_EQ(configured->BosId(), std::optional<TokenId>(1002));
  doc["post_processor"] = {{"type", "TemplateProcessing"},
                           {"single",
                            {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                             {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}}};
  auto templated = Make(doc);
  EXPECT_TRUE(templated->AddsBos());
  EXPECT_EQ(templated->BosId(), std::optional<TokenId>(1002));
  auto overridden = Make(doc, R"({"bos_token": "<s>", "add_bos_token": false})");
  EXPECT_FALSE(overridden->AddsBos());
}

}  // namespace
}  // namespace sf
