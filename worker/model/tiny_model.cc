#include "worker/model/tiny_model.h"

#include <filesystem>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status.h"
#include "nlohmann/json.hpp"
#include "worker/model/safetensors.h"

namespace sf::model {
namespace {

using Json = nlohmann::ordered_json;

absl::string_view ModelType(Architecture arch) {
  switch (arch) {
    case Architecture::kLlama:
      return "llama";
    case Architecture::kQwen2:
      return "qwen2";
    case Architecture::kMistral:
      return "mistral";
  }
  return "llama";
}

absl::string_view TorchDTypeName(DType dtype) {
  switch (dtype) {
    case DType::kBF16:
      return "bfloat16";
    case DType::kF16:
      return "float16";
    default:
      return "float32";
  }
}

Json RopeJson(const RopeScaling& r) {
  Json j = Json::object();
  j["rope_type"] = std::string(RopeTypeName(r.type));
  if (r.type == RopeType::kDefault) return j;
  j["factor"] = r.factor;
  if (r.type == RopeType::kLlama3) {
    j["low_freq_factor"] = r.low_freq_factor;
    j["high_freq_factor"] = r.high_freq_factor;
  }
  if (r.original_max_position_embeddings > 0) {
    j["original_max_position_embeddings"] = r.original_max_position_embeddings;
  }
  if (r.type == RopeType::kYarn) {
    if (r.attention_factor) j["attention_factor"] = *r.attention_factor;
    if (r.beta_fast != 32.0) j["beta_fast"] = r.beta_fast;
    if (r.beta_slow != 1.0) j["beta_slow"] = r.beta_slow;
  }
  return j;
}

std::string Encode(const std::vector<float>& values, DType dtype) {
  std::string out;
  if (dtype == DType::kF32) {
    out.resize(values.size() * 4);
    std::memcpy(out.data(), values.data(), out.size());
    return out;
  }
  out.resize(values.size() * 2);
  for (size_t i = 0; i < values.size(); ++i) {
    uint16_t bits;
    if (dtype == DType::kBF16) {
      bits = FloatToBf16(values[i]);
    } else {
      // float -> half via the compiler's conversion (round to nearest even).
      const _Float16 h = static_cast<_Float16>(values[i]);
      std::memcpy(&bits, &h, 2);
    }
    out[2 * i] = static_cast<char>(bits & 0xff);
    out[2 * i + 1] = static_cast<char>(bits >> 8);
  }
  return out;
}

}  // namespace

absl::StatusOr<TokenizerFacts> ReadTokenizerFacts(const std::string& path) {
  SF_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path));
  nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a JSON object"));
  }
  TokenizerFacts facts;
  int64_t max_id = -1;
  if (json.contains("model") && json["model"].is_object() && json["model"].contains("vocab") &&
      json["model"]["vocab"].is_object()) {
    for (const auto& [token, id] : json["model"]["vocab"].items()) {
      if (id.is_number_integer()) max_id = std::max<int64_t>(max_id, id.get<int64_t>());
    }
  }
  static const char* const kEosNames[] = {"<|eot_id|>", "<|end_of_text|>", "<|im_end|>",
                                          "<|endoftext|>", "</s>"};
  if (json.contains("added_tokens") && json["added_tokens"].is_array()) {
    for (const auto& t : json["added_tokens"]) {
      if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer()) continue;
      const int64_t id = t["id"].get<int64_t>();
      max_id = std::max(max_id, id);
      if (t.contains("content") && t["content"].is_string()) {
        for (const char* name : kEosNames) {
          if (t["content"].get<std::string>() == name)
            facts.eos_ids.push_back(static_cast<TokenId>(id));
        }
      }
    }
  }
  if (max_id < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " has no model.vocab or added_tokens; is it a tokenizer.json?"));
  }
  facts.vocab_size = max_id + 1;
  return facts;
}

std::string TinyModelConfigJson(const TinyModelOptions& o) {
  Json j = Json::object();
  j["architectures"] = {std::string(ArchitectureName(o.architecture))};
  j["model_type"] = std::string(ModelType(o.architecture));
  j["vocab_size"] = o.vocab_size;
  j["hidden_size"] = o.hidden_size;
  j["intermediate_size"] = o.intermediate_size;
  j["num_hidden_layers"] = o.num_layers;
  j["num_attention_heads"] = o.num_heads;
  j["num_key_value_heads"] = o.num_kv_heads;
  if (o.head_dim > 0) j["head_dim"] = o.head_dim;
  j["hidden_act"] = "silu";
  j["max_position_embeddings"] = o.max_position_embeddings;
  j["initializer_range"] = o.init_std;
  j["rms_norm_eps"] = o.rms_norm_eps;
  j["tie_word_embeddings"] = o.tie_word_embeddings;
  j["use_cache"] = true;
  // Ours, ignored by transformers: results of this model must say its scores mean nothing.
  j["sf_random_weights"] = true;
  j["attention_dropout"] = 0.0;
  if (o.architecture == Architecture::kLlama) {
    j["attention_bias"] = false;
    j["mlp_bias"] = false;
  }
  if (o.architecture == Architecture::kQwen2) {
    j["use_sliding_window"] = false;
    j["sliding_window"] = nullptr;
  }
  if (o.architecture == Architecture::kMistral) j["sliding_window"] = nullptr;
  if (o.bos_token_id >= 0) j["bos_token_id"] = o.bos_token_id;
  if (o.eos_token_ids.size() == 1) {
    j["eos_token_id"] = o.eos_token_ids[0];
  } else {
    j["eos_token_id"] = o.eos_token_ids;
  }
  if (o.transformers5_config) {
    Json rope = RopeJson(o.rope);
    rope["rope_theta"] = o.rope_theta;
    j["rope_parameters"] = rope;
    j["dtype"] = std::string(TorchDTypeName(o.dtype));
    j["transformers_version"] = "5.0.0";
  } else {
    j["rope_theta"] = o.rope_theta;
    if (o.rope.type == RopeType::kDefault) {
      j["rope_scaling"] = nullptr;
    } else {
      j["rope_scaling"] = RopeJson(o.rope);
    }
    j["torch_dtype"] = std::string(TorchDTypeName(o.dtype));
    j["transformers_version"] = "4.46.0";
  }
  return j.dump(2) + "\n";
}

absl::Status WriteTinyModel(const std::string& dir, const TinyModelOptions& options) {
  namespace fs = std::filesystem;
  TinyModelOptions o = options;
  if (o.dtype != DType::kBF16 && o.dtype != DType::kF16 && o.dtype != DType::kF32) {
    return absl::InvalidArgumentError("tiny models are written in bf16, f16 or f32");
  }
  std::optional<TokenizerFacts> facts;
  if (!o.tokenizer_json.empty()) {
    SF_ASSIGN_OR_RETURN(facts, ReadTokenizerFacts(o.tokenizer_json));
    if (o.vocab_size == 0) o.vocab_size = facts->vocab_size;
    if (o.vocab_size < facts->vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "vocab_size ", o.vocab_size, " is smaller than the tokenizer's ", facts->vocab_size));
    }
  }
  if (o.vocab_size <= 0 || o.hidden_size <= 0 || o.intermediate_size <= 0 || o.num_layers <= 0 ||
      o.num_heads <= 0 || o.num_kv_heads <= 0 || o.num_shards <= 0) {
    return absl::InvalidArgumentError("tiny model sizes must be positive");
  }
  if (o.num_heads % o.num_kv_heads != 0) {
    return absl::InvalidArgumentError("num_heads must be a multiple of num_kv_heads");
  }
  if (o.head_dim <= 0 && o.hidden_size % o.num_heads != 0) {
    return absl::InvalidArgumentError(
        "hidden_size must be a multiple of num_heads (or give head_dim)");
  }
  const int64_t d = o.head_dim > 0 ? o.head_dim : o.hidden_size / o.num_heads;
  if (d % 2 != 0) return absl::InvalidArgumentError("head_dim must be even");
  if (o.eos_token_ids.empty()) {
    if (facts && !facts->eos_ids.empty()) {
      o.eos_token_ids = facts->eos_ids;
    } else {
      o.eos_token_ids = {static_cast<TokenId>(o.vocab_size - 1)};
    }
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return absl::PermissionDeniedError(absl::StrCat("cannot create ", dir, ": ", ec.message()));

  std::mt19937_64 rng(o.seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto random = [&](std::string name, std::vector<int64_t> shape, float mean, float stddev) {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = mean + stddev * normal(rng);
    return TensorToWrite{std::move(name), o.dtype, std::move(shape), Encode(v, o.dtype)};
  };
  const float stdv = static_cast<float>(o.init_std);
  const int64_t H = o.hidden_size, I = o.intermediate_size;
  const bool qkv_bias = o.architecture == Architecture::kQwen2;
  std::vector<TensorToWrite> tensors;
  tensors.push_back(random("model.embed_tokens.weight", {o.vocab_size, H}, 0, stdv));
  for (int64_t i = 0; i < o.num_layers; ++i) {
    const std::string p = absl::StrCat("model.layers.", i, ".");
    tensors.push_back(random(p + "input_layernorm.weight", {H}, 1.0f, 0.1f));
    tensors.push_back(random(p + "self_attn.q_proj.weight", {o.num_heads * d, H}, 0, stdv));
    tensors.push_back(random(p + "self_attn.k_proj.weight", {o.num_kv_heads * d, H}, 0, stdv));
    tensors.push_back(random(p + "self_attn.v_proj.weight", {o.num_kv_heads * d, H}, 0, stdv));
    if (qkv_bias) {
      tensors.push_back(random(p + "self_attn.q_proj.bias", {o.num_heads * d}, 0, stdv));
      tensors.push_back(random(p + "self_attn.k_proj.bias", {o.num_kv_heads * d}, 0, stdv));
      tensors.push_back(random(p + "self_attn.v_proj.bias", {o.num_kv_heads * d}, 0, stdv));
    }
    tensors.push_back(random(p + "self_attn.o_proj.weight", {H, o.num_heads * d}, 0, stdv));
    tensors.push_back(random(p + "post_attention_layernorm.weight", {H}, 1.0f, 0.1f));
    tensors.push_back(random(p + "mlp.gate_proj.weight", {I, H}, 0, stdv));
    tensors.push_back(random(p + "mlp.up_proj.weight", {I, H}, 0, stdv));
    tensors.push_back(random(p + "mlp.down_proj.weight", {H, I}, 0, stdv));
  }
  tensors.push_back(random("model.norm.weight", {H}, 1.0f, 0.1f));
  if (!o.tie_word_embeddings) {
    tensors.push_back(random("lm_head.weight", {o.vocab_size, H}, 0, stdv));
  }

  // Remove files of an earlier model so a sharded and an unsharded one never mix.
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.ends_with(".safetensors") || name == "model.safetensors.index.json") {
      fs::remove(entry.path(), ec);
    }
  }
  const std::map<std::string, std::string> metadata = {{"format", "pt"}};
  if (o.num_shards == 1) {
    SF_ASSIGN_OR_RETURN(std::string bytes, SerializeSafetensors(tensors, metadata));
    SF_RETURN_IF_ERROR(WriteFileAtomically((fs::path(dir) / "model.safetensors").string(), bytes));
  } else {
    const size_t shards = static_cast<size_t>(o.num_shards);
    if (shards > tensors.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot split ", tensors.size(), " tensors into ", shards, " shards"));
    }
    Json index = Json::object();
    uint64_t total = 0;
    Json weight_map = Json::object();
    for (size_t s = 0; s < shards; ++s) {
      const size_t begin = tensors.size() * s / shards, end = tensors.size() * (s + 1) / shards;
      std::vector<TensorToWrite> part(tensors.begin() + static_cast<std::ptrdiff_t>(begin),
                                      tensors.begin() + static_cast<std::ptrdiff_t>(end));
      const std::string file = absl::StrFormat("model-%05d-of-%05d.safetensors", s + 1, shards);
      for (const TensorToWrite& t : part) {
        weight_map[t.name] = file;
        total += t.bytes.size();
      }
      SF_ASSIGN_OR_RETURN(std::string bytes, SerializeSafetensors(part, metadata));
      SF_RETURN_IF_ERROR(WriteFileAtomically((fs::path(dir) / file).string(), bytes));
    }
    index["metadata"] = {{"total_size", total}};
    index["weight_map"] = weight_map;
    SF_RETURN_IF_ERROR(WriteFileAtomically(
        (fs::path(dir) / "model.safetensors.index.json").string(), index.dump(2) + "\n"));
  }
  SF_RETURN_IF_ERROR(
      WriteFileAtomically((fs::path(dir) / "config.json").string(), TinyModelConfigJson(o)));
  Json gen = Json::object();
  if (o.bos_token_id >= 0) gen["bos_token_id"] = o.bos_token_id;
  if (o.eos_token_ids.size() == 1) {
    gen["eos_token_id"] = o.eos_token_ids[0];
  } else {
    gen["eos_token_id"] = o.eos_token_ids;
  }
  gen["do_sample"] = false;
  gen["transformers_version"] = o.transformers5_config ? "5.0.0" : "4.46.0";
  SF_RETURN_IF_ERROR(
      WriteFileAtomically((fs::path(dir) / "generation_config.json").string(), gen.dump(2) + "\n"));
  if (!o.tokenizer_json.empty()) {
    const fs::path src(o.tokenizer_json);
    fs::copy_file(src, fs::path(dir) / "tokenizer.json", fs::copy_options::overwrite_existing, ec);
    if (ec)
      return absl::PermissionDeniedError(
          absl::StrCat("copying ", src.string(), ": ", ec.message()));
    const fs::path tok_config = src.parent_path() / "tokenizer_config.json";
    if (fs::exists(tok_config, ec)) {
      fs::copy_file(tok_config, fs::path(dir) / "tokenizer_config.json",
                    fs::copy_options::overwrite_existing, ec);
      if (ec)
        return absl::PermissionDeniedError(
            absl::StrCat("copying ", tok_config.string(), ": ", ec.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace sf::model
