#include "worker/model/testing/conformance.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "worker/model/generate.h"
#include "worker/model/safetensors.h"

namespace sf::model::testing {

namespace fs = std::filesystem;

fs::path ConformanceDataDir() {
  if (const char* dir = std::getenv("SF_MODEL_TEST_DATA")) return dir;
  const char* src = std::getenv("SF_SOURCE_DIR");
  return fs::path(src != nullptr ? src : ".") / "tests" / "data" / "model";
}

void ExpectConformance(const std::string& name, const EngineOptions& options) {
  const fs::path dir = ConformanceDataDir() / name;
  if (!fs::exists(dir / "reference.json")) {
    FAIL() << dir / "reference.json"
           << " is missing (set SF_MODEL_TEST_DATA to the "
           << "tests/data/model folder); regenerate with "
           << (name.starts_with("hf_") ? "deploy/conformance/make_reference.py --out "
                                         "tests/data/model (a host with torch + transformers)"
                                       : "deploy/conformance/numpy_reference.py");
  }
  ExpectConformanceAt(dir, options);
}

void ExpectConformanceAt(const fs::path& dir, const EngineOptions& options) {
  const std::string name = dir.filename().string();
  const fs::path ref_path = dir / "reference.json";
  ASSERT_TRUE(fs::exists(ref_path)) << ref_path << " is missing";
  SF_ASSERT_OK_AND_ASSIGN(std::string text, ReadSmallFile(ref_path.string()));
  const nlohmann::json ref = nlohmann::json::parse(text, nullptr, false);
  ASSERT_FALSE(ref.is_discarded()) << ref_path << " is not JSON";
  const std::vector<TokenId> prompt = ref.at("prompt").get<std::vector<TokenId>>();
  const auto want_logits = ref.at("logits").get<std::vector<std::vector<double>>>();
  const std::vector<TokenId> want_greedy = ref.at("greedy").get<std::vector<TokenId>>();
  SCOPED_TRACE(absl::StrCat(name, " (reference from ", ref.value("source", "?"), ")"));

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
  std::printf("%s on %s: largest relative logit error %.3g (position %d)\n", name.c_str(),
              engine->BackendName().c_str(), worst, static_cast<int>(worst_row));
  EXPECT_LE(worst, 1e-4) << "largest relative logit error at prompt position " << worst_row;

  GenerationOptions gen;
  gen.max_new_tokens = static_cast<int64_t>(ref.value("max_new_tokens", 32));
  SF_ASSERT_OK_AND_ASSIGN(GenerationResult result, GenerateGreedy(*engine, prompt, gen));
  EXPECT_EQ(result.tokens, want_greedy) << "engine: " << absl::StrJoin(result.tokens, ",")
                                        << "\nreference: " << absl::StrJoin(want_greedy, ",");
}

}  // namespace sf::model::testing
