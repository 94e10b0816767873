#include "worker/method_hooks.h"

#include <algorithm>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/cpu_method.h"
#include "kernels/cpu/method_params.h"
#include "methods/registry.h"
#include "worker/method_hooks_cuda.h"

namespace sf::worker {

MethodHook::MethodHook(std::unique_ptr<DeviceMethod> device) : device_(std::move(device)) {}
MethodHook::~MethodHook() = default;

bool MethodHook::SupportsDevice(const model::AttentionCall& call) const {
  return device_ != nullptr && device_->Supports(call);
}

absl::Status MethodHook::AttendOnDevice(const model::AttentionCall& call,
                                        model::AttentionStats* stats) {
  if (device_ == nullptr) return AttentionHook::AttendOnDevice(call, stats);
  return device_->Attend(call, stats, &estimation_flops_);
}

absl::Status MethodHook::AfterPrefillOnDevice(const model::AttentionCall& call) {
  if (device_ == nullptr) return absl::OkStatus();
  return device_->AfterPrefill(call, &estimation_flops_);
}

double MethodHook::estimation_seconds() const {
  return estimation_seconds_ + (device_ != nullptr ? device_->EstimationSeconds() : 0.0);
}

absl::StatusOr<kernels::SelectionStructure> MethodHook::LastDeviceSelection() const {
  if (device_ == nullptr) return absl::UnimplementedError("the method has no device form here");
  return device_->LastSelection();
}

namespace {

using model::AttentionCall;
using model::AttentionStats;

// The layer's cache rows of every KV head as one contiguous [Hkv, len, D] tensor (the
// cache keeps each head in its own buffer, the kernels want one head stride).
kernels::Tensor CopyHeads(const AttentionCall& call, bool values) {
  const int64_t len = call.cache->length(call.layer, 0);
  kernels::Tensor t(call.num_kv_heads, len, call.head_dim);
  for (int h = 0; h < call.num_kv_heads; ++h) {
    const float* src = values ? call.cache->values(call.layer, h) : call.cache->keys(call.layer, h);
    std::copy(src, src + len * call.head_dim, t.Row(h, 0));
  }
  return t;
}

// The call's queries [num_queries][Hq][D] seen as [Hq, num_queries, D] without a copy.
kernels::TensorView QueryView(const AttentionCall& call) {
  return {call.q,        call.num_q_heads, call.num_queries,
          call.head_dim, call.head_dim,    call.q_row_stride};
}

class KernelPrefillHook : public MethodHook {
 public:
  KernelPrefillHook(std::string method, kernels::MethodParams params,
                    std::unique_ptr<DeviceMethod> device)
      : MethodHook(std::move(device)), method_(std::move(method)), params_(std::move(params)) {}
  std::string Name() const override { return method_; }

  absl::Status Attend(const AttentionCall& call, AttentionStats* stats) override {
    for (int h = 1; h < call.num_kv_heads; ++h) {
      if (call.cache->length(call.layer, h) != call.cache->length(call.layer, 0)) {
        return absl::FailedPreconditionError(
            absl::StrCat("prefill method '", method_,
                         "' needs equal cache lengths per KV head (a prefill after eviction)"));
      }
    }
    const kernels::Tensor k = CopyHeads(call, false);
    const kernels::Tensor v = CopyHeads(call, true);
    kernels::AttentionInput input{QueryView(call), k.View(), v.View(), k.len - call.num_queries};
    absl::StatusOr<kernels::AttentionResult> computed =
        kernels::PrefillAttention(method_, params_, input);
    if (!computed.ok()) {
      return Annotate(computed.status(),
                      absl::StrCat("prefill method '", method_, "' at layer ", call.layer));
    }
    const kernels::AttentionResult& result = *computed;
    for (int j = 0; j < call.num_queries; ++j) {
      for (int h = 0; h < call.num_q_heads; ++h) {
        const float* src = result.output.Row(h, j);
        std::copy(src, src + call.head_dim,
                  call.out + j * call.out_row_stride + static_cast<int64_t>(h) * call.head_dim);
      }
    }
    stats->pairs_computed += result.pairs_computed;
    stats->pairs_dense += result.pairs_causal;
    estimation_flops_ += result.estimation_flops;
    return absl::OkStatus();
  }

 private:
  std::string method_;
  kernels::MethodParams params_;
};

class EvictingDecodeHook : public MethodHook {
 public:
  // `exact_dense`: the method keeps every token (the baseline), so nothing is evicted.
  EvictingDecodeHook(std::string method, kernels::MethodParams params, bool exact_dense,
                     std::unique_ptr<DeviceMethod> device)
      : MethodHook(std::move(device)),
        method_(std::move(method)),
        params_(std::move(params)),
        exact_dense_(exact_dense) {}
  std::string Name() const override { return method_; }

  absl::Status Attend(const AttentionCall& call, AttentionStats* stats) override {
    AttentionStats inner;
    SF_RETURN_IF_ERROR(dense_.Attend(call, &inner));
    stats->pairs_computed += inner.pairs_computed;
    // Dense decoding would see every position up to the query's own.
    const double n = call.num_queries;
    stats->pairs_dense += call.num_q_heads * (n * call.first_position + n * (n + 1) / 2);
    return absl::OkStatus();
  }

  // Dense decoding: nothing is evicted, so pairs_dense equals DensePairs.
  bool IsExactDense() const override { return exact_dense_; }

  absl::Status AfterPrefill(const AttentionCall& call) override {
    if (exact_dense_) return absl::OkStatus();
    const int64_t window = params_.method().ObservationRows(call.num_queries);
    kernels::TensorView obs = QueryView(call).Rows(call.num_queries - window, window);
    const kernels::Tensor keys = CopyHeads(call, false);
    absl::StatusOr<kernels::KeptTokens> kept =
        kernels::CompressKv(method_, params_, obs, keys.View());
    if (!kept.ok()) {
      return Annotate(kept.status(), absl::StrCat("decode method '", method_,
                                                  "' KV compression at layer ", call.layer));
    }
    estimation_flops_ += kept->estimation_flops;
    for (int h = 0; h < call.num_kv_heads; ++h) {
      SF_RETURN_IF_ERROR(call.cache->Compact(call.layer, h, kept->per_kv_head[h]));
    }
    return absl::OkStatus();
  }

 private:
  std::string method_;
  kernels::MethodParams params_;
  bool exact_dense_;
  model::DenseAttention dense_;
};

// Methods that choose keys per decode step without evicting (DecodeRun::kPerStep): each
// step runs kernels::DecodeAttention over the whole cache with the step as its one query,
// so the selection is exactly the reference's (Quest's page index is rebuilt from the
// cache each step, O(context) like the attention itself).
class PerStepDecodeHook : public MethodHook {
 public:
  PerStepDecodeHook(std::string method, kernels::MethodParams params,
                    std::unique_ptr<DeviceMethod> device)
      : MethodHook(std::move(device)), method_(std::move(method)), params_(std::move(params)) {}
  std::string Name() const override { return method_; }

  absl::Status Attend(const AttentionCall& call, AttentionStats* stats) override {
    const int64_t len = call.cache->length(call.layer, 0);
    for (int h = 1; h < call.num_kv_heads; ++h) {
      if (call.cache->length(call.layer, h) != len) {
        return absl::FailedPreconditionError(absl::StrCat(
            "decode method '", method_, "' needs an uncompressed cache (equal lengths per head)"));
      }
    }
    const kernels::Tensor k = CopyHeads(call, false);
    const kernels::Tensor v = CopyHeads(call, true);
    const kernels::TensorView q = QueryView(call);
    kernels::AttentionInput steps{q, k.View(), v.View(), len - call.num_queries};
    absl::StatusOr<kernels::AttentionResult> computed =
        kernels::DecodeAttention(method_, params_, steps, q);
    if (!computed.ok()) {
      return Annotate(computed.status(), absl::StrCat("decode method '", method_, "' at layer ",
                                                      call.layer, ", position ", len - 1));
    }
    for (int j = 0; j < call.num_queries; ++j) {
      for (int h = 0; h < call.num_q_heads; ++h) {
        const float* src = computed->output.Row(h, j);
        std::copy(src, src + call.head_dim,
                  call.out + j * call.out_row_stride + static_cast<int64_t>(h) * call.head_dim);
      }
    }
    stats->pairs_computed += computed->pairs_computed;
    stats->pairs_dense += computed->pairs_causal;
    estimation_flops_ += computed->estimation_flops;
    return absl::OkStatus();
  }

 private:
  std::string method_;
  kernels::MethodParams params_;
};

class DenseHook : public MethodHook {
 public:
  explicit DenseHook(std::string method) : MethodHook(nullptr), method_(std::move(method)) {}
  std::string Name() const override { return method_; }
  absl::Status Attend(const AttentionCall& call, AttentionStats* stats) override {
    return dense_.Attend(call, stats);
  }
  bool IsExactDense() const override { return true; }

 private:
  std::string method_;
  model::DenseAttention dense_;
};

bool Contains(const std::vector<std::string>& names, const std::string& name) {
  return absl::c_linear_search(names, name);
}

// The registered methods of `phase` that have a CPU selection, in the registry's order.
std::vector<std::string> WiredMethods(Phase phase) {
  std::vector<std::string> names;
  for (const MethodInfo& m : AllMethods()) {
    if (m.phases.Has(phase) && kernels::FindCpuMethod(m.name) != nullptr) {
      names.push_back(m.name);
    }
  }
  return names;
}

}  // namespace

const std::vector<std::string>& WiredPrefillMethods() {
  static const auto* names = new std::vector<std::string>(WiredMethods(Phase::kPrefill));
  return *names;
}

const std::vector<std::string>& WiredDecodeMethods() {
  static const auto* names = new std::vector<std::string>(WiredMethods(Phase::kDecode));
  return *names;
}

absl::StatusOr<std::unique_ptr<MethodHook>> MakePrefillHook(const MethodChoice& method) {
  if (!Contains(WiredPrefillMethods(), method.name)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "prefill method '", method.name,
        "' is not wired into the engine; wired: ", absl::StrJoin(WiredPrefillMethods(), ", ")));
  }
  // The baseline runs on the engine's own tiled dense attention.
  if (FindMethod(method.name)->budget_rule == BudgetRule::kNone) {
    return std::make_unique<DenseHook>(method.name);
  }
  SF_ASSIGN_OR_RETURN(kernels::MethodParams params,
                      kernels::ParseMethodParams(method.name, method.params));
  SF_ASSIGN_OR_RETURN(std::unique_ptr<DeviceMethod> device, MakeDevicePrefillMethod(method));
  return std::make_unique<KernelPrefillHook>(method.name, std::move(params), std::move(device));
}

absl::StatusOr<std::unique_ptr<MethodHook>> MakeDecodeHook(const MethodChoice& method) {
  if (!Contains(WiredDecodeMethods(), method.name)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "decode method '", method.name,
        "' is not wired into the engine yet; wired: ", absl::StrJoin(WiredDecodeMethods(), ", ")));
  }
  SF_ASSIGN_OR_RETURN(kernels::MethodParams params,
                      kernels::ParseMethodParams(method.name, method.params));
  const bool exact_dense = params.method().attends_every_key();
  std::unique_ptr<DeviceMethod> device;
  if (!exact_dense) {
    SF_ASSIGN_OR_RETURN(device, MakeDeviceDecodeMethod(method));
  }
  if (params.method().decode_run() == kernels::DecodeRun::kPerStep) {
    return std::make_unique<PerStepDecodeHook>(method.name, std::move(params), std::move(device));
  }
  return std::make_unique<EvictingDecodeHook>(method.name, std::move(params), exact_dense,
                                              std::move(device));
}

}  // namespace sf::worker
