#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "cli/command.h"
#include "cli/testing/run_commands.h"
#include "common/model_config.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/model/engine.h"
#include "worker/model/safetensors.h"

namespace sf::cli {
namespace {

// Only the command under test is registered (and linked).
CliResult RunCli(std::vector<std::string> args, const std::string& stdin_text = "") {
  return RunCommands({AddMakeTinyModelCommand}, std::move(args), stdin_text);
}

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A folder path that does not exist yet, in a fresh folder of its own.
std::string TestDir(const std::string& name) {
  return (sf::testing::FreshTestDir(name) / "model").string();
}

TEST(MakeTinyModel, Help_DescribesOptions) {
  CliResult r = RunCli({"make-tiny-model", "--help"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_THAT(r.out, HasSubstr("--arch"));
  EXPECT_THAT(r.out, HasSubstr("--tokenizer"));
}

TEST(MakeTinyModel, Qwen2YarnSharded_LoadsInTheEngine) {
  const std::string dir = TestDir("qwen");
  CliResult r = RunCli({"make-tiny-model", "--out", dir.c_str(), "--arch", "qwen2", "--rope",
                        "yarn", "--rope-factor", "2", "--shards", "2", "--transformers5", "--eos",
                        "3", "--eos", "4"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Qwen2ForCausalLM"));
  EXPECT_TRUE(fs::exists(dir + "/model.safetensors.index.json"));
  SF_ASSERT_OK_AND_ASSIGN(model::ModelConfig c, model::LoadModelConfig(dir));
  EXPECT_EQ(c.rope.type, model::RopeType::kYarn);
  EXPECT_EQ(c.rope.factor, 2.0);
  EXPECT_THAT(c.eos_token_ids, ElementsAre(3, 4));
  SF_ASSERT_OK_AND_ASSIGN(auto engine, model::CreateEngine(dir, {}));
  SF_ASSERT_OK_AND_ASSIGN(std::vector<float> logits, engine->Prefill(std::vector<TokenId>{1, 2}));
  EXPECT_EQ(logits.size(), 512u);
}

TEST(MakeTinyModel, Tokenizer_IsCopiedAndSetsVocabAndEos) {
  const std::string dir = TestDir("tok");
  const fs::path tok_dir = fs::path(TestDir("tok_src"));
  fs::create_directories(tok_dir);
  std::ofstream(tok_dir / "tokenizer.json") << R"({"model": {"vocab": {"a": 0, "b": 1, "c": 2}},
            "added_tokens": [{"id": 3, "content": "<|im_end|>"}]})";
  std::ofstream(tok_dir / "tokenizer_config.json") << "{}";
  const std::string tok = (tok_dir / "tokenizer.json").string();
  CliResult r = RunCli({"make-tiny-model", "--out", dir.c_str(), "--tokenizer", tok.c_str()});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_TRUE(fs::exists(dir + "/tokenizer.json"));
  EXPECT_TRUE(fs::exists(dir + "/tokenizer_config.json"));
  SF_ASSERT_OK_AND_ASSIGN(model::ModelConfig c, model::LoadModelConfig(dir));
  EXPECT_EQ(c.vocab_size, 4);
  EXPECT_THAT(c.eos_token_ids, ElementsAre(3));
}

TEST(MakeTinyModel, BadArguments_AreUsageErrors) {
  const std::string dir = TestDir("bad");
  CliResult r = RunCli({"make-tiny-model", "--out", dir.c_str(), "--arch", "gpt2"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("gpt2"));
  r = RunCli({"make-tiny-model", "--out", dir.c_str(), "--rope", "dynamic"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("yarn"));
  r = RunCli({"make-tiny-model", "--out", dir.c_str(), "--heads", "3", "--kv-heads", "2"});
  EXPECT_EQ(r.code, kExitUsage);
  r = RunCli({"make-tiny-model"});
  EXPECT_EQ(r.code, kExitUsage);
}

}  // namespace
}  // namespace sf::cli
