#include "common/model_config.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/model_cost.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace sf::model {
namespace {

using Json = nlohmann::json;

constexpr absl::string_view kSupportedArchitectures =
    "LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM";
constexpr absl::string_view kSupportedRopeTypes = "default, linear, llama3, yarn";

// Typed field access that turns a wrong type into a message naming the field.
class Fields {
 public:
  Fields(const Json& json, std::string where) : json_(json), where_(std::move(where)) {}

  bool HasValue(const char* key) const {
    auto it = json_.find(key);
    return it != json_.end() && !it->is_null();
  }

  absl::StatusOr<int64_t> Int(const char* key, std::optional<int64_t> fallback) const {
    if (!HasValue(key)) {
      if (fallback) return *fallback;
      return Missing(key, "an integer");
    }
    const Json& v = json_.at(key);
    if (!v.is_number_integer()) return Wrong(key, "an integer", v);
    return v.get<int64_t>();
  }

  absl::StatusOr<int64_t> PositiveInt(const char* key, std::optional<int64_t> fallback) const {
    SF_ASSIGN_OR_RETURN(int64_t v, Int(key, fallback));
    if (v <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(where_, ": field \"", key, "\" must be a positive integer, got ", v));
    }
    return v;
  }

  absl::StatusOr<double> Number(const char* key, std::optional<double> fallback) const {
    if (!HasValue(key)) {
      if (fallback) return *fallback;
      return Missing(key, "a number");
    }
    const Json& v = json_.at(key);
    if (!v.is_number()) return Wrong(key, "a number", v);
    return v.get<double>();
  }

  absl::StatusOr<std::optional<double>> OptionalNumber(const char* key) const {
    if (!HasValue(key)) return std::optional<double>();
    SF_ASSIGN_OR_RETURN(double v, Number(key, std::nullopt));
    return std::optional<double>(v);
  }

  absl::StatusOr<bool> Bool(const char* key, bool fallback) const {
    if (!HasValue(key)) return fallback;
    const Json& v = json_.at(key);
    if (!v.is_boolean()) return Wrong(key, "true or false", v);
    return v.get<bool>();
  }

  absl::StatusOr<std::string> String(const char* key, std::optional<std::string> fallback) const {
    if (!HasValue(key)) {
      if (fallback) return *fallback;
      return Missing(key, "a string");
    }
    const Json& v = json_.at(key);
    if (!v.is_string()) return Wrong(key, "a string", v);
    return v.get<std::string>();
  }

  // An int or a list of ints (eos_token_id); empty when absent or null.
  absl::StatusOr<std::vector<TokenId>> IdList(const char* key) const {
    std::vector<TokenId> out;
    if (!HasValue(key)) return out;
    const Json& v = json_.at(key);
    if (v.is_number_integer()) {
      out.push_back(v.get<TokenId>());
      return out;
    }
    if (!v.is_array()) return Wrong(key, "an integer or a list of integers", v);
    for (const Json& e : v) {
      if (!e.is_number_integer()) return Wrong(key, "an integer or a list of integers", v);
      out.push_back(e.get<TokenId>());
    }
    return out;
  }

 private:
  absl::Status Missing(const char* key, const char* what) const {
    return absl::InvalidArgumentError(
        absl::StrCat(where_, ": missing field \"", key, "\" (", what,
                     "); a Hugging Face config.json for Llama/Qwen2/Mistral has it"));
  }
  absl::Status Wrong(const char* key, const char* what, const Json& v) const {
    return absl::InvalidArgumentError(
        absl::StrCat(where_, ": field \"", key, "\" must be ", what, ", got ", v.dump()));
  }

  const Json& json_;
  std::string where_;
};

absl::StatusOr<RopeScaling> ParseRopeScaling(const Json& json, const std::string& where) {
  RopeScaling rope;
  if (json.is_null()) return rope;
  if (!json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, " is ", json.dump(), ", expected an object or null"));
  }
  Fields f(json, where);
  std::string type = "default";
  if (f.HasValue("rope_type")) {
    SF_ASSIGN_OR_RETURN(type, f.String("rope_type", std::nullopt));
  } else if (f.HasValue("type")) {
    SF_ASSIGN_OR_RETURN(type, f.String("type", std::nullopt));
  }
  if (type == "default") {
    rope.type = RopeType::kDefault;
    return rope;
  }
  if (type == "linear") {
    rope.type = RopeType::kLinear;
  } else if (type == "llama3") {
    rope.type = RopeType::kLlama3;
  } else if (type == "yarn") {
    rope.type = RopeType::kYarn;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": rope type '", type, "' is not supported; supported: ", kSupportedRopeTypes));
  }
  SF_ASSIGN_OR_RETURN(rope.factor, f.Number("factor", std::nullopt));
  if (!(rope.factor > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": factor must be positive"));
  }
  SF_ASSIGN_OR_RETURN(rope.original_max_position_embeddings,
                      f.Int("original_max_position_embeddings", int64_t{0}));
  if (rope.type == RopeType::kLlama3) {
    SF_ASSIGN_OR_RETURN(rope.low_freq_factor, f.Number("low_freq_factor", std::nullopt));
    SF_ASSIGN_OR_RETURN(rope.high_freq_factor, f.Number("high_freq_factor", std::nullopt));
    if (rope.original_max_position_embeddings <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": llama3 rope needs original_max_position_embeddings"));
    }
    if (rope.high_freq_factor <= rope.low_freq_factor) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": llama3 rope needs high_freq_factor > low_freq_factor"));
    }
  }
  if (rope.type == RopeType::kYarn) {
    SF_ASSIGN_OR_RETURN(rope.attention_factor, f.OptionalNumber("attention_factor"));
    SF_ASSIGN_OR_RETURN(rope.beta_fast, f.Number("beta_fast", 32.0));
    SF_ASSIGN_OR_RETURN(rope.beta_slow, f.Number("beta_slow", 1.0));
    SF_ASSIGN_OR_RETURN(rope.mscale, f.OptionalNumber("mscale"));
    SF_ASSIGN_OR_RETURN(rope.mscale_all_dim, f.OptionalNumber("mscale_all_dim"));
    SF_ASSIGN_OR_RETURN(rope.truncate, f.Bool("truncate", true));
  }
  return rope;
}

absl::StatusOr<std::string> ReadTextFile(const std::string& path) {
  // A FIFO would block the open and /dev/zero never ends: read regular files only.
  std::error_code ec;
  const std::filesystem::file_status status = std::filesystem::status(path, ec);
  if (std::filesystem::exists(status) && !std::filesystem::is_regular_file(status)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path,
                     " is not a regular file (a FIFO, device or folder); put the file "
                     "itself there"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading ", path));
  return text.str();
}

double YarnMscale(double scale, double mscale) {
  return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

}  // namespace

absl::string_view ArchitectureName(Architecture arch) {
  switch (arch) {
    case Architecture::kLlama:
      return "LlamaForCausalLM";
    case Architecture::kQwen2:
      return "Qwen2ForCausalLM";
    case Architecture::kMistral:
      return "MistralForCausalLM";
  }
  return "unknown";
}

absl::StatusOr<Architecture> ParseArchitecture(absl::string_view name) {
  if (name == "LlamaForCausalLM" || name == "llama") return Architecture::kLlama;
  if (name == "Qwen2ForCausalLM" || name == "qwen2") return Architecture::kQwen2;
  if (name == "MistralForCausalLM" || name == "mistral") return Architecture::kMistral;
  return absl::InvalidArgumentError(absl::StrCat(
      "architecture '", name, "' is not supported; supported: ", kSupportedArchitectures));
}

absl::string_view RopeTypeName(RopeType type) {
  switch (type) {
    case RopeType::kDefault:
      return "default";
    case RopeType::kLinear:
      return "linear";
    case RopeType::kLlama3:
      return "llama3";
    case RopeType::kYarn:
      return "yarn";
  }
  return "unknown";
}

int64_t ModelShape::NumParameters() const { return CountParameters(*this).Total(); }

int64_t ModelConfig::DtypeBytes() const { return torch_dtype == "float32" ? 4 : 2; }

absl::StatusOr<ModelConfig> ParseModelConfig(absl::string_view json_text,
                                             absl::string_view source) {
  const std::string where(source);
  Json json = Json::parse(json_text.begin(), json_text.end(), nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(where, " is not a JSON object"));
  }
  Fields f(json, where);
  ModelConfig c;
  std::string arch_name;
  if (json.contains("architectures") && json["architectures"].is_array() &&
      !json["architectures"].empty() && json["architectures"][0].is_string()) {
    arch_name = json["architectures"][0].get<std::string>();
  } else {
    SF_ASSIGN_OR_RETURN(arch_name, f.String("model_type", std::nullopt));
  }
  absl::StatusOr<Architecture> arch = ParseArchitecture(arch_name);
  if (!arch.ok()) return Annotate(arch.status(), where);
  c.architecture = *arch;

  SF_ASSIGN_OR_RETURN(c.vocab_size, f.PositiveInt("vocab_size", std::nullopt));
  SF_ASSIGN_OR_RETURN(c.hidden_size, f.PositiveInt("hidden_size", std::nullopt));
  SF_ASSIGN_OR_RETURN(c.intermediate_size, f.PositiveInt("intermediate_size", std::nullopt));
  SF_ASSIGN_OR_RETURN(c.num_layers, f.PositiveInt("num_hidden_layers", std::nullopt));
  SF_ASSIGN_OR_RETURN(c.num_heads, f.PositiveInt("num_attention_heads", std::nullopt));
  SF_ASSIGN_OR_RETURN(c.num_kv_heads, f.PositiveInt("num_key_value_heads", c.num_heads));
  if (c.num_heads % c.num_kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": num_attention_heads ", c.num_heads,
                                                   " is not a multiple of num_key_value_heads ",
                                                   c.num_kv_heads));
  }
  if (!f.HasValue("head_dim") && c.hidden_size % c.num_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": hidden_size is not a multiple of num_attention_heads and no head_dim is given"));
  }
  SF_ASSIGN_OR_RETURN(c.head_dim, f.PositiveInt("head_dim", c.hidden_size / c.num_heads));
  if (c.head_dim % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": head_dim ", c.head_dim, " is odd; rotary embeddings need it even"));
  }
  SF_ASSIGN_OR_RETURN(c.max_position_embeddings,
                      f.PositiveInt("max_position_embeddings", int64_t{2048}));
  SF_ASSIGN_OR_RETURN(c.rms_norm_eps, f.Number("rms_norm_eps", 1e-6));
  SF_ASSIGN_OR_RETURN(c.tie_word_embeddings, f.Bool("tie_word_embeddings", false));
  SF_ASSIGN_OR_RETURN(c.random_weights, f.Bool("sf_random_weights", false));
  SF_ASSIGN_OR_RETURN(double partial_rotary, f.Number("partial_rotary_factor", 1.0));
  if (partial_rotary != 1.0) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": partial_rotary_factor ",
                                                   partial_rotary, " is not supported (1.0 is)"));
  }

  // RoPE: 5.x puts theta and scaling in rope_parameters; 4.x has rope_theta and
  // rope_scaling. When both appear (configs converted by hand), rope_parameters wins.
  if (f.HasValue("rope_parameters")) {
    const Json& params = json["rope_parameters"];
    const std::string pwhere = absl::StrCat(where, ": rope_parameters");
    SF_ASSIGN_OR_RETURN(c.rope, ParseRopeScaling(params, pwhere));
    Fields pf(params, pwhere);
    SF_ASSIGN_OR_RETURN(double top_theta, f.Number("rope_theta", 10000.0));
    SF_ASSIGN_OR_RETURN(c.rope_theta, pf.Number("rope_theta", top_theta));
  } else {
    SF_ASSIGN_OR_RETURN(c.rope_theta, f.Number("rope_theta", 10000.0));
    if (json.contains("rope_scaling")) {
      SF_ASSIGN_OR_RETURN(
          c.rope, ParseRopeScaling(json["rope_scaling"], absl::StrCat(where, ": rope_scaling")));
    }
  }
  if (!(c.rope_theta > 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": rope_theta must exceed 1"));
  }

  switch (c.architecture) {
    case Architecture::kQwen2: {
      c.qkv_bias = true;
      SF_ASSIGN_OR_RETURN(bool use_sliding, f.Bool("use_sliding_window", false));
      if (use_sliding) {
        SF_ASSIGN_OR_RETURN(int64_t w, f.PositiveInt("sliding_window", std::nullopt));
        c.sliding_window = w;
      }
      break;
    }
    case Architecture::kLlama:
    case Architecture::kMistral: {
      SF_ASSIGN_OR_RETURN(bool attention_bias, f.Bool("attention_bias", false));
      c.qkv_bias = attention_bias;
      c.o_bias = attention_bias;
      SF_ASSIGN_OR_RETURN(c.mlp_bias, f.Bool("mlp_bias", false));
      if (c.architecture == Architecture::kMistral && f.HasValue("sliding_window")) {
        SF_ASSIGN_OR_RETURN(int64_t w, f.PositiveInt("sliding_window", std::nullopt));
        c.sliding_window = w;
      }
      break;
    }
  }
  SF_ASSIGN_OR_RETURN(std::string hidden_act, f.String("hidden_act", std::string("silu")));
  if (hidden_act != "silu") {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": hidden_act '", hidden_act, "' is not supported (silu is)"));
  }
  // Transformers 5 writes "dtype", older versions "torch_dtype"; neither means float32.
  if (f.HasValue("dtype")) {
    SF_ASSIGN_OR_RETURN(c.torch_dtype, f.String("dtype", std::nullopt));
  } else {
    SF_ASSIGN_OR_RETURN(c.torch_dtype, f.String("torch_dtype", std::string("float32")));
  }
  if (c.torch_dtype != "float32" && c.torch_dtype != "bfloat16" && c.torch_dtype != "float16") {
    return absl::InvalidArgumentError(absl::StrCat(where, ": dtype \"", c.torch_dtype,
                                                   "\" is not supported; use bfloat16, float16 or "
                                                   "float32"));
  }
  SF_ASSIGN_OR_RETURN(c.eos_token_ids, f.IdList("eos_token_id"));
  SF_ASSIGN_OR_RETURN(std::vector<TokenId> bos, f.IdList("bos_token_id"));
  if (!bos.empty()) c.bos_token_id = bos[0];
  return c;
}

absl::Status ApplyGenerationConfig(absl::string_view json_text, absl::string_view source,
                                   ModelConfig* config) {
  Json json = Json::parse(json_text.begin(), json_text.end(), nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, " is not a JSON object"));
  }
  Fields f(json, std::string(source));
  SF_ASSIGN_OR_RETURN(std::vector<TokenId> eos, f.IdList("eos_token_id"));
  if (!eos.empty()) config->eos_token_ids = std::move(eos);
  SF_ASSIGN_OR_RETURN(std::vector<TokenId> bos, f.IdList("bos_token_id"));
  if (!bos.empty()) config->bos_token_id = bos[0];
  return absl::OkStatus();
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir) {
  namespace fs = std::filesystem;
  const std::string config_path = (fs::path(model_dir) / "config.json").string();
  absl::StatusOr<std::string> text = ReadTextFile(config_path);
  if (absl::IsFailedPrecondition(text.status())) return text.status();
  if (!text.ok()) {
    return absl::NotFoundError(absl::StrCat(model_dir,
                                            " has no readable config.json; point at "
                                            "a Hugging Face model folder"));
  }
  SF_ASSIGN_OR_RETURN(ModelConfig config, ParseModelConfig(*text, config_path));
  const std::string gen_path = (fs::path(model_dir) / "generation_config.json").string();
  std::error_code ec;
  if (fs::exists(gen_path, ec)) {
    SF_ASSIGN_OR_RETURN(std::string gen, ReadTextFile(gen_path));
    SF_RETURN_IF_ERROR(ApplyGenerationConfig(gen, gen_path, &config));
  }
  return config;
}

std::optional<RopeScaling> StudyYarnScaling(int64_t input_tokens, int64_t output_tokens) {
  const int64_t total = input_tokens + output_tokens;
  if (total <= kStudyYarnOriginalPositions) return std::nullopt;
  RopeScaling rope;
  rope.type = RopeType::kYarn;
  rope.factor = static_cast<double>(total) / static_cast<double>(kStudyYarnOriginalPositions);
  rope.original_max_position_embeddings = kStudyYarnOriginalPositions;
  return rope;
}

bool ApplyStudyYarnRule(int64_t input_tokens, int64_t output_tokens, ModelConfig* config) {
  std::optional<RopeScaling> rope = StudyYarnScaling(input_tokens, output_tokens);
  if (!rope) return false;
  config->rope = *rope;
  return true;
}

absl::StatusOr<RopeTable> ComputeRope(const ModelConfig& config) {
  const int64_t dim = config.head_dim;
  const double base = config.rope_theta;
  const RopeScaling& r = config.rope;
  RopeTable table;
  table.inv_freq.resize(static_cast<size_t>(dim / 2));
  // transformers computes base ** (arange(0, dim, 2).float() / dim) in float32.
  std::vector<double> inv(table.inv_freq.size());
  for (size_t i = 0; i < inv.size(); ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(dim);
    inv[i] = 1.0 / static_cast<double>(static_cast<float>(std::pow(base, double{exponent})));
  }
  switch (r.type) {
    case RopeType::kDefault:
      break;
    case RopeType::kLinear:
      for (double& v : inv) v /= r.factor;
      break;
    case RopeType::kLlama3: {
      const double old_len = static_cast<double>(r.original_max_position_embeddings);
      const double low_wavelen = old_len / r.low_freq_factor;
      const double high_wavelen = old_len / r.high_freq_factor;
      for (double& v : inv) {
        const double wavelen = 2.0 * std::numbers::pi / v;
        double scaled = wavelen > low_wavelen ? v / r.factor : v;
        const double smooth =
            (old_len / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
        const double smoothed = (1.0 - smooth) * scaled / r.factor + smooth * scaled;
        const bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
        v = medium ? smoothed : scaled;
      }
      break;
    }
    case RopeType::kYarn: {
      const double original = static_cast<double>(r.original_max_position_embeddings > 0
                                                      ? r.original_max_position_embeddings
                                                      : config.max_position_embeddings);
      const double factor = r.factor;
      if (r.attention_factor) {
        table.attention_scaling = static_cast<float>(*r.attention_factor);
      } else if (r.mscale && r.mscale_all_dim && *r.mscale != 0 && *r.mscale_all_dim != 0) {
        table.attention_scaling = static_cast<float>(YarnMscale(factor, *r.mscale) /
                                                     YarnMscale(factor, *r.mscale_all_dim));
      } else {
        table.attention_scaling = static_cast<float>(YarnMscale(factor, 1.0));
      }
      const double d = static_cast<double>(dim);
      auto correction_dim = [&](double rotations) {
        return d * std::log(original / (rotations * 2.0 * std::numbers::pi)) /
               (2.0 * std::log(base));
      };
      double low = correction_dim(r.beta_fast);
      double high = correction_dim(r.beta_slow);
      if (r.truncate) {
        low = std::floor(low);
        high = std::ceil(high);
      }
      low = std::max(low, 0.0);
      high = std::min(high, d - 1);
      if (low == high) high += 0.001;  // as transformers: avoids a division by zero
      for (size_t i = 0; i < inv.size(); ++i) {
        const double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
        const double extrapolation_weight = 1.0 - ramp;
        const double extrapolated = inv[i];
        const double interpolated = inv[i] / factor;
        inv[i] = interpolated * (1.0 - extrapolation_weight) + extrapolated * extrapolation_weight;
      }
      break;
    }
  }
  for (size_t i = 0; i < inv.size(); ++i) table.inv_freq[i] = static_cast<float>(inv[i]);
  return table;
}

}  // namespace sf::model
