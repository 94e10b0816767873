// The model conformance check shared by the CPU test and the CUDA GPU test: each folder
// under tests/data/model holds a saved model and reference.json with the logits of a
// fixed prompt and a greedy continuation (deploy/conformance/make_reference.py for hf_*,
// deploy/conformance/numpy_reference.py for np_*).
#ifndef SF_WORKER_MODEL_TESTING_CONFORMANCE_H_
#define SF_WORKER_MODEL_TESTING_CONFORMANCE_H_

#include <filesystem>
#include <string>
#include <vector>

#include "worker/model/engine.h"

namespace sf::model::testing {

// The committed vectors.
inline std::vector<std::string> ConformanceVectors() {
  return {"np_llama_bf16", "np_qwen2_yarn_bf16", "np_mistral_llama3_f16", "hf_llama",
          "hf_qwen2_bias", "hf_mistral",         "hf_qwen2_yarn",         "hf_llama3_rope"};
}

// $SF_MODEL_TEST_DATA (set by the packed run-gpu-tests.sh), else
// $SF_SOURCE_DIR/tests/data/model (set by ctest), else ./tests/data/model.
std::filesystem::path ConformanceDataDir();

// Runs vector `name` on `options`' backend with gtest assertions: the RoPE table, every
// prompt position's logits within 1e-4 of the reference relative to the row's largest
// logit (the largest error is printed), and the greedy continuation token for token.
// A missing vector fails with the command that makes it.
void ExpectConformance(const std::string& name, const EngineOptions& options);

// The same check for a model folder anywhere (a zoo model under models/zoo/) with its
// reference.json beside the weights.
void ExpectConformanceAt(const std::filesystem::path& dir, const EngineOptions& options);

}  // namespace sf::model::testing

#endif  // SF_WORKER_MODEL_TESTING_CONFORMANCE_H_
