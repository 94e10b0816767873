// The layer pipeline (cuda_pipeline.h): runs each chunk of tokens through the stages in
// layer order, each stage on its own device with its own stream; the stages hand the
// residual stream on through CudaStage::residual().
#include "worker/model/cuda_pipeline.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "kernels/cuda/check.h"

namespace sf::model {

absl::Status CheckLayerStages(absl::Span<const LayerStage> stages, int64_t num_layers,
                              int device_count) {
  int64_t next = 0;
  for (size_t i = 0; i < stages.size(); ++i) {
    const LayerStage& s = stages[i];
    if (s.first_layer != next || s.end_layer <= s.first_layer || s.end_layer > num_layers) {
      return absl::InvalidArgumentError(absl::StrCat(
          "EngineOptions.layer_stages[", i, "] holds layers [", s.first_layer, ", ", s.end_layer,
          "); stages must cover layers [0, ", num_layers,
          ") in order, each starting where the previous ended and holding at least one layer"));
    }
    if (s.device < 0 || s.device >= device_count) {
      return absl::InvalidArgumentError(absl::StrCat("EngineOptions.layer_stages[", i,
                                                     "] names GPU ", s.device, " but ",
                                                     device_count, " GPU(s) are visible"));
    }
    next = s.end_layer;
  }
  if (next != num_layers) {
    return absl::InvalidArgumentError(absl::StrCat("EngineOptions.layer_stages end at layer ", next,
                                                   "; the model has ", num_layers, " layers"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ConnectStages(absl::Span<const LayerStage> stages) {
  std::vector<std::string> links;
  for (size_t i = 1; i < stages.size(); ++i) {
    const int from = stages[i - 1].device, to = stages[i].device;
    if (from == to) {
      links.push_back("same-device");
      continue;
    }
    int can = 0;
    SF_CUDA_RETURN_IF_ERROR(cudaDeviceCanAccessPeer(&can, to, from));
    if (can == 0) {
      links.push_back("host");
      continue;
    }
    SF_CUDA_RETURN_IF_ERROR(cudaSetDevice(to));
    const cudaError_t err = cudaDeviceEnablePeerAccess(from, 0);
    if (err == cudaErrorPeerAccessAlreadyEnabled) {
      (void)cudaGetLastError();
    } else {
      SF_CUDA_RETURN_IF_ERROR(err);
    }
    links.push_back("peer");
  }
  return links;
}

namespace {

class CudaPipeline : public ForwardEngine {
 public:
  CudaPipeline(ModelConfig config, const EngineOptions& options,
               std::vector<std::unique_ptr<CudaStage>> stages, std::unique_ptr<KvCache> mirror,
               std::vector<std::string> links)
      : config_(std::move(config)),
        options_(options),
        stages_(std::move(stages)),
        mirror_(std::move(mirror)),
        links_(std::move(links)) {
    counters_.attention_kernels = stages_.front()->counters().attention_kernels;
  }

  const ModelConfig& config() const override { return config_; }

  void Reset() override {
    for (auto& stage : stages_) stage->Reset();
  }
  int64_t position() const override { return stages_.back()->position(); }

  // Each stage brings its layers of the shared mirror up to date.
  KvCache& cache() override {
    for (auto& stage : stages_) stage->cache();
    return *mirror_;
  }

  void SetAttention(AttentionHook* prefill, AttentionHook* decode) override {
    prefill_hook_ = prefill;
    decode_hook_ = decode;
    for (auto& stage : stages_) stage->SetAttention(prefill, decode);
  }

  std::string BackendName() const override {
    std::vector<std::string> parts;
    for (size_t i = 0; i < stages_.size(); ++i) {
      const LayerStage& s = stages_[i]->stage();
      parts.push_back(absl::StrCat(i == 0 ? "" : absl::StrCat(links_[i - 1], " -> "), "layers [",
                                   s.first_layer, ", ", s.end_layer, ") on GPU ", s.device));
    }
    return absl::StrCat("cuda-pipeline(", stages_.front()->BackendName(), "; ",
                        absl::StrJoin(parts, ", "), ")");
  }

 private:
  // The prefill chunk every stage runs: the stages' own rule (EngineOptions::
  // prefill_chunk_tokens, else the dtype's default), so a stage runs each call in one pass
  // and hands its whole residual on.
  int64_t ChunkFor(AttentionPhase phase, int64_t n) const {
    if (phase != AttentionPhase::kPrefill) return n;
    const bool dense = (prefill_hook_ == nullptr || prefill_hook_->IsExactDense()) &&
                       (decode_hook_ == nullptr || decode_hook_->IsExactDense());
    if (!dense) return n;
    const int64_t chunk = GpuMemorySettingsFor(options_).prefill_chunk_tokens;
    return chunk <= 0 ? n : std::max<int64_t>(1, std::min(chunk, n));
  }

  absl::StatusOr<std::vector<float>> Forward(absl::Span<const TokenId> tokens, bool all_positions,
                                             AttentionPhase phase) override {
    const int64_t n = static_cast<int64_t>(tokens.size());
    if (n == 0) return absl::InvalidArgumentError("no tokens to run");
    const int64_t chunk = ChunkFor(phase, n);
    std::vector<float> logits;
    for (int64_t b = 0; b < n; b += chunk) {
      const absl::Span<const TokenId> part = tokens.subspan(b, std::min(chunk, n - b));
      const bool last_chunk = b + static_cast<int64_t>(part.size()) == n;
      for (size_t i = 0; i < stages_.size(); ++i) {
        CudaStage& stage = *stages_[i];
        absl::StatusOr<std::vector<float>> out = phase == AttentionPhase::kDecode
                                                     ? stage.Decode(part[0])
                                                     : stage.Prefill(part, all_positions);
        if (!out.ok()) {
          return Annotate(out.status(), absl::StrCat("pipeline stage ", i, " (layers [",
                                                     stage.stage().first_layer, ", ",
                                                     stage.stage().end_layer, "))"));
        }
        if (i + 1 == stages_.size() && (all_positions || last_chunk)) {
          logits.insert(logits.end(), out->begin(), out->end());
        }
      }
    }
    GatherCounters();
    return logits;
  }

  // The pipeline's attention statistics and backends from its stages' (each counts its
  // own layers); tokens and seconds are the pipeline's own (ForwardEngine).
  void GatherCounters() {
    counters_.prefill_attention = AttentionStats();
    counters_.decode_attention = AttentionStats();
    counters_.prefill_backend = AttentionBackend::kNone;
    counters_.decode_backend = AttentionBackend::kNone;
    for (const auto& stage : stages_) {
      const EngineCounters& c = stage->counters();
      counters_.prefill_attention.pairs_computed += c.prefill_attention.pairs_computed;
      counters_.prefill_attention.pairs_dense += c.prefill_attention.pairs_dense;
      counters_.decode_attention.pairs_computed += c.decode_attention.pairs_computed;
      counters_.decode_attention.pairs_dense += c.decode_attention.pairs_dense;
      // The host mirror wins: the phase did not run wholly on the device.
      for (auto [mine, theirs] : {std::pair{&counters_.prefill_backend, c.prefill_backend},
                                  std::pair{&counters_.decode_backend, c.decode_backend}}) {
        if (theirs != AttentionBackend::kNone &&
            (*mine == AttentionBackend::kNone || theirs == AttentionBackend::kHostMirror)) {
          *mine = theirs;
        }
      }
    }
  }

  ModelConfig config_;
  EngineOptions options_;
  std::vector<std::unique_ptr<CudaStage>> stages_;  // in layer order
  std::unique_ptr<KvCache> mirror_;
  std::vector<std::string> links_;  // links_[i]: how stage i + 1 receives its input
  AttentionHook* prefill_hook_ = nullptr;
  AttentionHook* decode_hook_ = nullptr;
};

}  // namespace

std::unique_ptr<Engine> MakeCudaPipeline(ModelConfig config, const EngineOptions& options,
                                         std::vector<std::unique_ptr<CudaStage>> stages,
                                         std::unique_ptr<KvCache> mirror,
                                         std::vector<std::string> links) {
  return std::make_unique<CudaPipeline>(std::move(config), options, std::move(stages),
                                        std::move(mirror), std::move(links));
}

}  // namespace sf::model
