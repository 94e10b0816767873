// `sfctl make-tiny-model`: writes a tiny random model in Hugging Face format, for
// tests, demos and trying the pipeline without downloading weights.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/command.h"
#include "common/model_config.h"
#include "worker/model/tiny_model.h"

namespace sf::cli {
namespace {

struct MakeTinyModelArgs {
  std::string out;
  std::string arch = "llama";
  int64_t vocab_size = 0;
  int64_t hidden_size = 64;
  int64_t intermediate_size = 128;
  int64_t num_layers = 2;
  int64_t num_heads = 4;
  int64_t num_kv_heads = 2;
  int64_t max_position_embeddings = 4096;
  double rope_theta = 10000.0;
  std::string rope_type = "default";
  double rope_factor = 0;
  int64_t rope_original_max_positions = 0;
  bool tie = false;
  std::string dtype = "bf16";
  bool transformers5 = false;
  int shards = 1;
  uint64_t seed = 1;
  double init_std = 0.02;
  std::vector<int> eos;
  std::string tokenizer;
};

absl::Status Run(const MakeTinyModelArgs& a, Io& io) {
  using model::DType;
  model::TinyModelOptions o;
  absl::StatusOr<model::Architecture> arch = model::ParseArchitecture(a.arch);
  if (!arch.ok()) return arch.status();
  o.architecture = *arch;
  o.vocab_size = a.vocab_size > 0 ? a.vocab_size : (a.tokenizer.empty() ? 512 : 0);
  o.hidden_size = a.hidden_size;
  o.intermediate_size = a.intermediate_size;
  o.num_layers = a.num_layers;
  o.num_heads = a.num_heads;
  o.num_kv_heads = a.num_kv_heads;
  o.max_position_embeddings = a.max_position_embeddings;
  o.rope_theta = a.rope_theta;
  o.tie_word_embeddings = a.tie;
  o.transformers5_config = a.transformers5;
  o.num_shards = a.shards;
  o.seed = a.seed;
  o.init_std = a.init_std;
  o.eos_token_ids.assign(a.eos.begin(), a.eos.end());
  o.tokenizer_json = a.tokenizer;
  if (a.dtype == "bf16") {
    o.dtype = DType::kBF16;
  } else if (a.dtype == "f16") {
    o.dtype = DType::kF16;
  } else if (a.dtype == "f32") {
    o.dtype = DType::kF32;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("--dtype ", a.dtype, ": use bf16, f16 or f32"));
  }
  if (a.rope_type == "linear") {
    o.rope.type = model::RopeType::kLinear;
  } else if (a.rope_type == "llama3") {
    o.rope.type = model::RopeType::kLlama3;
  } else if (a.rope_type == "yarn") {
    o.rope.type = model::RopeType::kYarn;
  } else if (a.rope_type != "default") {
    return absl::InvalidArgumentError(
        absl::StrCat("--rope ", a.rope_type, ": use default, linear, llama3 or yarn"));
  }
  if (o.rope.type != model::RopeType::kDefault) {
    o.rope.factor = a.rope_factor > 0 ? a.rope_factor : 4.0;
    if (o.rope.type != model::RopeType::kLinear) {
      o.rope.original_max_position_embeddings = a.rope_original_max_positions > 0
                                                    ? a.rope_original_max_positions
                                                    : a.max_position_embeddings;
    }
  }
  absl::Status status = model::WriteTinyModel(a.out, o);
  if (!status.ok()) return status;
  io.out << "wrote " << model::ArchitectureName(o.architecture) << " (" << a.dtype << ", "
         << (a.shards > 1 ? absl::StrCat(a.shards, " shards") : std::string("1 file")) << ") to "
         << a.out << "\n";
  return absl::OkStatus();
}

}  // namespace

void AddMakeTinyModelCommand(CLI::App& app, Io& io, int* exit_code) {
  auto args = std::make_shared<MakeTinyModelArgs>();
  CLI::App* cmd = app.add_subcommand(
      "make-tiny-model",
      "Write a tiny random model in Hugging Face format (config.json, safetensors, "
      "generation_config.json) for tests and demos");
  cmd->add_option("--out", args->out, "Folder to write (created if missing)")->required();
  cmd->add_option("--arch", args->arch, "llama, qwen2 or mistral")->capture_default_str();
  cmd->add_option("--vocab-size", args->vocab_size,
                  "Vocabulary size (default 512, or the tokenizer's size with --tokenizer)");
  cmd->add_option("--hidden-size", args->hidden_size)->capture_default_str();
  cmd->add_option("--intermediate-size", args->intermediate_size)->capture_default_str();
  cmd->add_option("--layers", args->num_layers)->capture_default_str();
  cmd->add_option("--heads", args->num_heads)->capture_default_str();
  cmd->add_option("--kv-heads", args->num_kv_heads)->capture_default_str();
  cmd->add_option("--max-positions", args->max_position_embeddings)->capture_default_str();
  cmd->add_option("--rope-theta", args->rope_theta)->capture_default_str();
  cmd->add_option("--rope", args->rope_type, "RoPE scaling: default, linear, llama3 or yarn")
      ->capture_default_str();
  cmd->add_option("--rope-factor", args->rope_factor, "RoPE scaling factor (default 4)");
  cmd->add_option("--rope-original-max-positions", args->rope_original_max_positions,
                  "original_max_position_embeddings for llama3/yarn (default --max-positions)");
  cmd->add_flag("--tie-embeddings", args->tie, "Share the embedding matrix with lm_head");
  cmd->add_option("--dtype", args->dtype, "bf16, f16 or f32")->capture_default_str();
  cmd->add_flag("--transformers5", args->transformers5,
                "Write config.json as transformers 5.x does (rope_parameters, dtype)");
  cmd->add_option("--shards", args->shards, "Split weights into N files with an index")
      ->capture_default_str();
  cmd->add_option("--seed", args->seed)->capture_default_str();
  cmd->add_option("--init-std", args->init_std, "Standard deviation of random weights")
      ->capture_default_str();
  cmd->add_option("--eos", args->eos,
                  "End-of-sequence ids (default: the tokenizer's, else vocab_size - 1)");
  cmd->add_option("--tokenizer", args->tokenizer,
                  "A tokenizer.json to copy into the model (tokenizer_config.json beside it "
                  "too); sets the vocabulary size");
  cmd->callback([args, &io, exit_code] { *exit_code = ReportStatus(Run(*args, io), io); });
}

}  // namespace sf::cli
