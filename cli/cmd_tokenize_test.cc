// sfctl tokenize, in process, on a small byte-level tokenizer written to a temp folder.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/testing/run_commands.h"
#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace sf::cli {
namespace {

// Only the command under test is registered (and linked).
CliResult RunCli(std::vector<std::string> args, const std::string& stdin_text = "") {
  return RunCommands({AddTokenizeCommand}, std::move(args), stdin_text);
}

using ::testing::HasSubstr;

// A model folder whose tokenizer has every byte (ids = bytes), one merge "h"+"i" -> 256,
// the special token <s> (300) as BOS with add_bos_token, and a ChatML template marker.
class TokenizeCommand : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(sf::testing::FreshTestDir("tokenize").string());
    nlohmann::json vocab = nlohmann::json::object();
    auto spell = [](int b) {
      static std::vector<std::string> table = [] {
        std::vector<std::string> t(256);
        uint32_t next = 256;
        for (int x = 0; x < 256; ++x) {
          const bool printable = (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174);
          const uint32_t cp = printable ? x : next++;
          std::string s;
          if (cp < 0x80) {
            s += static_cast<char>(cp);
          } else {
            s += static_cast<char>(0xC0 | (cp >> 6));
            s += static_cast<char>(0x80 | (cp & 0x3F));
          }
          t[x] = s;
        }
        return t;
      }();
      return table[b];
    };
    for (int b = 0; b < 256; ++b) vocab[spell(b)] = b;
    vocab["hi"] = 256;
    nlohmann::json doc = {{"added_tokens",
                           {{{"id", 300}, {"content", "<s>"}, {"special", true}},
                            {{"id", 301}, {"content", "<|im_start|>"}, {"special", true}},
                            {{"id", 302}, {"content", "<|im_end|>"}, {"special", true}}}},
                          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
                          {"decoder", {{"type", "ByteLevel"}}},
                          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"h i"}}}}};
    std::ofstream(*dir_ + "/tokenizer.json") << doc.dump();
    std::ofstream(*dir_ + "/tokenizer_config.json")
        << R"({"bos_token": "<s>", "add_bos_token": true, "chat_template": "<|im_start|>"})";
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }
  static std::string* dir_;
};
std::string* TokenizeCommand::dir_ = nullptr;

TEST_F(TokenizeCommand, Encode_PrintsJsonArrayWithoutSpecials) {
  CliResult r = RunCli({"tokenize", "--model", dir_->c_str()}, "hi <s>");
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "[256, 32, 60, 115, 62]\n");
}

TEST_F(TokenizeCommand, AddAndParseSpecial_AddBosAndSplitSpecials) {
  const std::string path = *dir_ + "/tokenizer.json";
  CliResult r = RunCli(
      {"tokenize", "--tokenizer", path.c_str(), "--add-special", "--parse-special"}, "hi<s>");
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "[300, 256, 300]\n");
}

TEST_F(TokenizeCommand, Chat_AutoPicksChatMlFromConfig) {
  CliResult r = RunCli({"tokenize", "--model", dir_->c_str(), "--chat", "auto", "--count"}, "hi");
  EXPECT_EQ(r.code, kExitOk) << r.err;
  // <|im_start|> "user\n" (5) "hi" (1, merged) <|im_end|> "\n" <|im_start|> "assistant\n" (10)
  EXPECT_EQ(r.out, "20\n");
}

TEST_F(TokenizeCommand, Decode_RoundTripsAndSkipsSpecial) {
  CliResult r = RunCli({"tokenize", "--model", dir_->c_str(), "--decode"}, "[300, 256, 33]");
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "<s>hi!");
  r = RunCli({"tokenize", "--model", dir_->c_str(), "--decode", "--skip-special"}, "[300, 256]");
  EXPECT_EQ(r.out, "hi");
}

TEST_F(TokenizeCommand, BadInput_UsageErrorsWithReason) {
  CliResult r = RunCli({"tokenize", "--model", dir_->c_str(), "--decode"}, "not json");
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("JSON array"));
  r = RunCli({"tokenize", "--model", dir_->c_str(), "--decode"}, "[99999]");
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("99999"));
  r = RunCli({"tokenize"}, "x");
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("--tokenizer PATH or --model DIR"));
  r = RunCli({"tokenize", "--model", "/nonexistent"}, "x");
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("/nonexistent/tokenizer.json"));
  EXPECT_THAT(r.err, HasSubstr("model folder /nonexistent does not exist"));
  r = RunCli({"tokenize", "--model", dir_->c_str(), "--chat", "jinja"}, "x");
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("chatml"));
}

TEST_F(TokenizeCommand, Help_DescribesOptions) {
  CliResult r = RunCli({"tokenize", "--help"}, "");
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_THAT(r.out, HasSubstr("--decode"));
  EXPECT_THAT(r.out, HasSubstr("--parse-special"));
}

}  // namespace
}  // namespace sf::cli
