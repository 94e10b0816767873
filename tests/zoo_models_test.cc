// The model zoo as shipped (models/zoo/, docs/zoo.md): every model there is a complete
// Hugging Face folder with its card, zoo-l is among them, none is marked as random weights,
// the zoo stays within 44 MB, and the CPU engine's logits and greedy tokens agree with
// transformers' (reference.json, written by tools/zoo/eval_hf.py on the training host).
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/model_config.h"
#include "common/testing/spec_corpus.h"
#include "gtest/gtest.h"
#include "worker/model/engine.h"
#include "worker/model/testing/conformance.h"

namespace sf {
namespace {

namespace fs = std::filesystem;

fs::path ZooDir() { return sf::testing::SourceDir() / "models/zoo"; }

// The sizes shipped: the folders of models/zoo that hold a config.json, sorted.
std::vector<std::string> ZooModels() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(ZooDir(), ec)) {
    if (e.is_directory() && fs::is_regular_file(e.path() / "config.json")) {
      names.push_back(e.path().filename().string());
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

TEST(ZooModels, Zoo_HoldsTheLargestSize) {
  const std::vector<std::string> names = ZooModels();
  EXPECT_NE(std::find(names.begin(), names.end(), "zoo-l"), names.end())
      << ZooDir() << " has no zoo-l (the model the score test reruns)";
}

TEST(ZooModels, EachFolder_HasTheHuggingFaceFilesAndACard) {
  for (const std::string& name : ZooModels()) {
    for (const char* file : {"config.json", "model.safetensors", "generation_config.json",
                             "tokenizer.json", "tokenizer_config.json", "README.md",
                             "reference.json", "scores.json", "train_log.json"}) {
      EXPECT_TRUE(fs::is_regular_file(ZooDir() / name / file)) << ZooDir() / name / file;
    }
  }
}

TEST(ZooModels, Zoo_FitsIn64MiB) {
  ASSERT_TRUE(fs::is_directory(ZooDir())) << ZooDir() << " is missing";
  uintmax_t bytes = 0;
  for (const fs::directory_entry& e : fs::recursive_directory_iterator(ZooDir())) {
    if (e.is_regular_file()) bytes += e.file_size();
  }
  EXPECT_GT(bytes, 0u);
  EXPECT_LE(bytes, uintmax_t{64} << 20) << ZooDir() << " holds " << bytes << " bytes";
}

// The zoo's 44 MB: the whole tracked tree travels to the lent GPU host with each device
// command, 64 MiB together with the GPU binaries.
TEST(ZooModels, Zoo_FitsIn44MB) {
  uintmax_t bytes = 0;
  for (const fs::directory_entry& e : fs::recursive_directory_iterator(ZooDir())) {
    if (e.is_regular_file()) bytes += e.file_size();
  }
  EXPECT_LE(bytes, uintmax_t{44'000'000}) << ZooDir() << " holds " << bytes << " bytes";
}

model::ModelConfig ReadConfig(const std::string& name) {
  std::ifstream in(ZooDir() / name / "config.json");
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<model::ModelConfig> config =
      model::ParseModelConfig(text.str(), (ZooDir() / name / "config.json").string());
  EXPECT_TRUE(config.ok()) << config.status();
  return config.ok() ? *config : model::ModelConfig{};
}

// Trained weights: the analysis must not print the random-weights caveat for them.
TEST(ZooModels, NoModel_IsMarkedRandom) {
  for (const std::string& name : ZooModels()) {
    EXPECT_FALSE(ReadConfig(name).random_weights) << name;
  }
}

class ZooConformance : public ::testing::TestWithParam<std::string> {};

TEST_P(ZooConformance, CpuEngine_MatchesTransformers) {
  model::EngineOptions options;
  options.num_threads = 2;
  model::testing::ExpectConformanceAt(ZooDir() / GetParam(), options);
}

INSTANTIATE_TEST_SUITE_P(Zoo, ZooConformance, ::testing::ValuesIn(ZooModels()),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           std::string name = param_info.param;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace sf
