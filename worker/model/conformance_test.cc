// Conformance against reference implementations: each folder under tests/data/model/
// holds a saved model (config.json, safetensors) and reference.json with the logits
// of a fixed prompt and a 32-token greedy continuation, written by
// deploy/conformance/make_reference.py (PyTorch + transformers, hf_* folders) or
// deploy/conformance/numpy_reference.py (an independent NumPy transformer, np_*
// folders). Vectors that exist must agree; hf_* vectors not yet generated are skipped
// with the command that makes them.
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "worker/model/engine.h"
#include "worker/model/generate.h"
#include "worker/model/safetensors.h"

namespace sf::model {
namespace {

namespace fs = std::filesystem;

fs::path DataDir() {
  const char* src = std::getenv("SF_SOURCE_DIR");
  return fs::path(src != nullptr ? src : ".") / "tests" / "data" / "model";
}

class Conformance : public ::testing::TestWithParam<std::string> {};

TEST_P(Conformance, LogitsAndGreedyTokens_MatchReference) {
  const std::string name = GetParam();
  const fs::path dir = DataDir() / name;
  const fs::path ref_path = dir / "reference.json";
  if (!fs::exists(ref_path)) {
    FAIL() << ref_path << " is missing; regenerate with "
           << (name.starts_with("hf_") ? "deploy/conformance/make_reference.py --out "
                                         "tests/data/model (a host with torch + transformers)"
                                       : "deploy/conformance/numpy_reference.py");
  }
  SF_ASSERT_OK_AND_ASSIGN(std::string text, ReadSmallFile(ref_path.string()));
  const nlohmann::json ref = nlohmann::json::parse(text, nullptr, false);
  ASSERT_FALSE(ref.is_discarded()) << ref_path << " is not JSON";
  const std::vector<TokenId> prompt = ref.at("prompt").get<std::vector<TokenId>>();
  const auto want_logits = ref.at("logits").get<std::vector<std::vector<double>>>();
  const std::vector<TokenId> want_greedy = ref.at("greedy").get<std::vector<TokenId>>();
  SCOPED_TRACE(absl::StrCat(name, " (reference from ", ref.value("source", "?"), ")"));

  EngineOptions options;
  options.num_threads = 2;
  SF_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Engine> engine, CreateEngine(dir.string(), options));
  const int64_t vocab = engine->config().vocab_size;

  if (ref.contains("inv_freq")) {
    // RoPE first: a mismatch here explains any logit mismatch below.
    SF_ASSERT_OK_AND_ASSIGN(RopeTable rope, ComputeRope(engine->config()));
    const auto inv = ref["inv_freq"].get<std::vector<double>>();
    ASSERT_EQ(inv.size(), rope.inv_freq.size());
    for (size_t i = 0; i < inv.size(); ++i) {
      EXPECT_NEAR(rope.inv_freq[i], inv[i], 1e-6 * inv[i] + 1e-12) << "inv_freq[" << i << "]";
    }
    EXPECT_NEAR(rope.attention_scaling, ref.value("attention_scaling", 1.0), 1e-6);
  }

  SF_ASSERT_OK_AND_ASSIGN(std::vector<float> logits, engine->Prefill(prompt, true));
  ASSERT_EQ(want_logits.size(), prompt.size());
  double worst = 0;
  size_t worst_row = 0;
  for (size_t r = 0; r < want_logits.size(); ++r) {
    ASSERT_EQ(static_cast<int64_t>(want_logits[r].size()), vocab);
    double scale = 1e-12, err = 0;
    for (int64_t i = 0; i < vocab; ++i) {
      scale = std::max(scale, std::abs(want_logits[r][i]));
      err = std::max(err, std::abs(logits[r * vocab + i] - want_logits[r][i]));
    }
    if (err / scale > worst) {
      worst = err / scale;
      worst_row = r;
    }
  }
  std::printf("%s: largest relative logit error %.3g (position %d)\n", name.c_str(), worst,
              static_cast<int>(worst_row));
  EXPECT_LE(worst, 1e-4) << "largest relative logit error at prompt position " << worst_row;

  GenerationOptions gen;
  gen.max_new_tokens = static_cast<int64_t>(ref.value("max_new_tokens", 32));
  SF_ASSERT_OK_AND_ASSIGN(GenerationResult result, GenerateGreedy(*engine, prompt, gen));
  EXPECT_EQ(result.tokens, want_greedy) << "engine: " << absl::StrJoin(result.tokens, ",")
                                        << "\nreference: " << absl::StrJoin(want_greedy, ",");
}

INSTANTIATE_TEST_SUITE_P(Models, Conformance,
                         ::testing::Values("np_llama_bf16", "np_qwen2_yarn_bf16",
                                           "np_mistral_llama3_f16", "hf_llama", "hf_qwen2_bias",
                                           "hf_mistral", "hf_qwen2_yarn", "hf_llama3_rope"),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           return param_info.param;
                         });

}  // namespace
}  // namespace sf::model
