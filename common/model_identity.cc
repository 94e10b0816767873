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
#include "common/model_cost.h"
#include "common/sha256.h"

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

}  // namespace

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
  if (fs::exists(config_path, ec) && !fs::is_regular_file(config_path, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(
        config_path.string(),
        " is not a regular file (a FIFO, device or folder); put the model's config.json there"));
  }
  if (!fs::is_regular_file(config_path, ec)) {
    return absl::NotFoundError(absl::StrCat("model folder ", folder,
                                            " has no config.json; is it a Hugging Face model "
                                            "folder?"));
  }
  auto config = ReadFile(config_path);
  if (!config.ok()) return config.status();
  auto parsed = model::ParseModelConfig(*config, config_path.string());
  if (!parsed.ok()) return parsed.status();

  ModelInfo info;
  info.config = *std::move(parsed);
  info.parameters = info.config.NumParameters();

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
  if (weights.empty()) info.weight_bytes = info.parameters * info.config.DtypeBytes();
  info.identity = DigestHex(hash.Finish());
  return info;
}

int64_t EstimateMemoryBytes(const ModelInfo& model, int64_t sequence_length,
                            int64_t max_new_tokens) {
  const model::ModelConfig& c = model.config;
  const int64_t tokens = sequence_length + max_new_tokens;
  const int64_t kv = 2 * c.num_layers * c.num_kv_heads * c.head_dim * tokens * c.DtypeBytes();
  const int64_t per_token_activations =
      4 * (2 * c.hidden_size + c.num_heads * c.head_dim + 2 * c.intermediate_size);
  const int64_t activations = sequence_length * per_token_activations + 4 * c.vocab_size;
  return model.weight_bytes + kv + activations;
}

double EstimateSampleFlops(const ModelInfo& model, int64_t sequence_length, int64_t max_new_tokens,
                           double prefill_compression, double decode_compression) {
  return model::CostModel(model.config)
      .Nominal(sequence_length, max_new_tokens, std::max(1.0, prefill_compression),
               std::max(1.0, decode_compression), /*indexing=*/0.0)
      .Total();
}

}  // namespace sf
