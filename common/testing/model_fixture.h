// Test helper: builds small Hugging Face-shaped model folders (config.json, a weights
// file of a chosen size, tokenizer.json) under a fresh temporary folder, so spec tests can
// validate model paths without real checkpoints.
#ifndef SF_COMMON_TESTING_MODEL_FIXTURE_H_
#define SF_COMMON_TESTING_MODEL_FIXTURE_H_

#include <filesystem>
#include <fstream>
#include <string>

#include "common/testing/temp_dir.h"
#include "gtest/gtest.h"

namespace sf::testing {

inline constexpr char kTinyLlamaConfig[] = R"({
  "architectures": ["LlamaForCausalLM"],
  "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
  "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 256,
  "torch_dtype": "bfloat16", "tie_word_embeddings": false
})";

inline void WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// Writes a model folder at `dir` with `config` and one `weight_bytes`-byte safetensors file.
inline void WriteModel(const std::filesystem::path& dir,
                       const std::string& config = kTinyLlamaConfig, size_t weight_bytes = 1000) {
  WriteFile(dir / "config.json", config);
  WriteFile(dir / "model.safetensors", std::string(weight_bytes, 'w'));
  WriteFile(dir / "tokenizer.json", R"({"model": {"type": "BPE"}})");
}

}  // namespace sf::testing

#endif  // SF_COMMON_TESTING_MODEL_FIXTURE_H_
