// Conformance against reference implementations: each folder under tests/data/model/
// holds a saved model (config.json, safetensors) and reference.json with the logits
// of a fixed prompt and a 32-token greedy continuation, written by
// deploy/conformance/make_reference.py (PyTorch + transformers, hf_* folders) or
// deploy/conformance/numpy_reference.py (an independent NumPy transformer, np_*
// folders). Vectors that exist must agree; hf_* vectors not yet generated are skipped
// with the command that makes them.
#include "worker/model/testing/conformance.h"

#include <string>

#include "gtest/gtest.h"
#include "worker/model/engine.h"

namespace sf::model {
namespace {

class Conformance : public ::testing::TestWithParam<std::string> {};

TEST_P(Conformance, LogitsAndGreedyTokens_MatchReference) {
  EngineOptions options;
  options.num_threads = 2;
  testing::ExpectConformance(GetParam(), options);
}

INSTANTIATE_TEST_SUITE_P(Models, Conformance, ::testing::ValuesIn(testing::ConformanceVectors()),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           return param_info.param;
                         });

}  // namespace
}  // namespace sf::model
