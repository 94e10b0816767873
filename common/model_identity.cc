#include "common/model_identity.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "nlohmann/json.hpp"

namespace sf {
namespace {

namespace fs = std::filesystem;

absl::StatusOr<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path.string()));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Reads an integer field; `required` fields must be present and positive.
absl::Status GetInt(const nlohmann::json& j, const char* field, bool required,
                    absl::string_view source, int64_t* out) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) {
    if (!required) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": missing field \"", field,
                     "\"; a Hugging Face config.json for Llama/Qwen2/Mistral has it"));
  }
  if (!it->is_number_integer() || it->get<int64_t>() <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": field \"", field, "\" must be a positive integer, got ", it->dump()));
  }
  *out = it->get<int64_t>();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ModelShape> ParseModelConfig(absl::string_view json_text, absl::string_view source) {
  nlohmann::json j = nlohmann::json::parse(json_text.begin(), json_text.end(), nullptr,
                                           /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": not a JSON object; expected a Hugging Face config.json"));
  }
  ModelShape s;
  if (auto r = GetInt(j, "num_hidden_layers", true, source, &s.layers); !r.ok()) return r;
  if (auto r = GetInt(j, "hidden_size", true, source, &s.hidden); !r.ok()) return r;
  if (auto r = GetInt(j, "num_attention_heads", true, source, &s.heads); !r.ok()) return r;
  if (auto r = GetInt(j, "intermediate_size", true, source, &s.intermediate); !r.ok()) return r;
  if (auto r = GetInt(j, "vocab_size", true, source, &s.vocab); !r.ok()) return r;
  s.kv_heads = s.heads;
  if (auto r = GetInt(j, "num_key_value_heads", false, source, &s.kv_heads); !r.ok()) return r;
  s.head_dim = s.hidden / s.heads;
  if (auto r = GetInt(j, "head_dim", false, source, &s.head_dim); !r.ok()) return r;
  if (s.head_dim <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": hidden_size ", s.hidden,
                                                   " is smaller than num_attention_heads ", s.heads,
                                                   "; set head_dim"));
  }
  if (s.heads % s.kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": num_attention_heads ", s.heads,
                                                   " is not a multiple of num_key_value_heads ",
                                                   s.kv_heads));
  }
  auto dtype = j.find("torch_dtype");
  if (dtype != j.end() && dtype->is_string()) {
    const std::string d = dtype->get<std::string>();
    if (d == "float32") {
      s.dtype_bytes = 4;
    } else if (d == "bfloat16" || d == "float16") {
      s.dtype_bytes = 2;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": torch_dtype \"", d, "\" is not supported; use bfloat16, float16 or float32"));
    }
  }
  auto tie = j.find("tie_word_embeddings");
  if (tie != j.end() && tie->is_boolean()) s.tie_embeddings = tie->get<bool>();
  return s;
}

int64_t ParameterCount(const ModelShape& s) {
  const int64_t q = s.heads * s.head_dim;
  const int64_t kv = s.kv_heads * s.head_dim;
  const int64_t per_layer = s.hidden * q + 2 * s.hidden * kv + q * s.hidden +
                            3 * s.hidden * s.intermediate + 2 * s.hidden;
  const int64_t embeddings = s.vocab * s.hidden * (s.tie_embeddings ? 1 : 2);
  return s.layers * per_layer + embeddings + s.hidden;
}

absl::StatusOr<ModelInfo> InspectModel(const std::string& folder) {
  std::error_code ec;
  const fs::path dir(folder);
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(
        absl::StrCat("model folder ", folder,
                     " does not exist; give the path of a Hugging Face model "
                     "folder (config.json, *.safetensors, tokenizer.json)"));
  }
  const fs::path config_path = dir / "config.json";
  if (!fs::is_regular_file(config_path, ec)) {
    return absl::NotFoundError(absl::StrCat("model folder ", folder,
                                            " has no config.json; is it a Hugging Face model "
                                            "folder?"));
  }
  auto config = ReadFile(config_path);
  if (!config.ok()) return config.status();
  auto shape = ParseModelConfig(*config, config_path.string());
  if (!shape.ok()) return shape.status();

  ModelInfo info;
  info.shape = *shape;
  info.parameters = ParameterCount(*shape);

  Sha256 hash;
  hash.Update("sf-model-identity-v1\n");
  auto add_blob = [&hash](absl::string_view name, absl::string_view bytes) {
    hash.Update(absl::StrCat(name, " ", bytes.size(), "\n"));
    hash.Update(bytes);
    hash.Update("\n");
  };
  add_blob("config.json", *config);
  for (const char* name : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"}) {
    if (!fs::is_regular_file(dir / name, ec)) continue;
    auto bytes = ReadFile(dir / name);
    if (!bytes.ok()) return bytes.status();
    add_blob(name, *bytes);
  }
  std::vector<std::pair<std::string, int64_t>> weights;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!absl::EndsWith(name, ".safetensors") || !entry.is_regular_file(ec)) continue;
    weights.emplace_back(name, static_cast<int64_t>(entry.file_size(ec)));
  }
  if (ec) {
    return absl::NotFoundError(absl::StrCat("listing model folder ", folder, ": ", ec.message()));
  }
  std::sort(weights.begin(), weights.end());
  for (const auto& [name, size] : weights) {
    hash.Update(absl::StrCat("weight ", name, " ", size, "\n"));
    info.weight_bytes += size;
  }
  if (weights.empty()) info.weight_bytes = info.parameters * shape->dtype_bytes;
  info.identity = DigestHex(hash.Finish());
  return info;
}

int64_t EstimateMemoryBytes(const ModelInfo& model, int64_t sequence_length,
                            int64_t max_new_tokens) {
  const ModelShape& s = model.shape;
  const int64_t tokens = sequence_length + max_new_tokens;
  const int64_t kv = 2 * s.layers * s.kv_heads * s.head_dim * tokens * s.dtype_bytes;
  const int64_t per_token_activations =
      4 * (2 * s.hidden + s.heads * s.head_dim + 2 * s.intermediate);
  const int64_t activations = sequence_length * per_token_activations + 4 * s.vocab;
  return model.weight_bytes + kv + activations;
}

double EstimateSampleFlops(const ModelInfo& model, int64_t sequence_length, int64_t max_new_tokens,
                           double prefill_compression, double decode_compression) {
  const ModelShape& s = model.shape;
  const double l = static_cast<double>(sequence_length);
  const double n = static_cast<double>(max_new_tokens);
  const double linear = 2.0 * static_cast<double>(model.parameters) * (l + n);
  const double per_pair = 4.0 * static_cast<double>(s.layers * s.heads * s.head_dim);
  const double prefill_pairs = l * (l + 1) / 2 / std::max(1.0, prefill_compression);
  const double decode_pairs = n * l / std::max(1.0, decode_compression);
  return linear + per_pair * (prefill_pairs + decode_pairs);
}

}  // namespace sf
