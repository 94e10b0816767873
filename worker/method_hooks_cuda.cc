// Device implementations of the method hooks (see the header). Prefill: the method's GPU
// selection (kernels/cuda/attention/select.h) then the sparse prefill kernel of its
// shape (prefill.h), the pairs counted on the device and read once per layer. Decode:
// SnapKV / Ada-SnapKV / streaming choose kept rows after prefill and compact the cache
// (snapkv.h), then each step is dense decode over what was kept; quest and oracle_topk
// choose per step (quest.h, decode_select.h) and decode over the chosen rows, with
// their pairs and FLOPs known on the host (no host synchronisation per step).
#include "worker/method_hooks_cuda.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "kernels/cpu/methods/block_sparse.h"
#include "kernels/cpu/methods/flexprefill.h"
#include "kernels/cpu/methods/snapkv.h"
#include "kernels/cpu/methods/streaming.h"
#include "kernels/cpu/methods/vertical_slash.h"
#include "kernels/cpu/methods/xattention.h"
#include "kernels/cuda/attention/decode.h"
#include "kernels/cuda/attention/decode_select.h"
#include "kernels/cuda/attention/params.h"
#include "kernels/cuda/attention/prefill.h"
#include "kernels/cuda/attention/quest.h"
#include "kernels/cuda/attention/select.h"
#include "kernels/cuda/attention/selection.h"
#include "kernels/cuda/attention/snapkv.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/methods/selection_count.h"
#include "methods/params.h"
#include "methods/registry.h"

namespace sf::worker {
namespace {

using cuda::AttentionParams;
using model::AttentionCall;
using model::AttentionStats;

// The attention kernels are compiled for sm_90a only: they run on a compute capability
// 9.0 device and nowhere else.
bool DeviceIsSm90() {
  static const bool sm90 = [] {
    int device = 0, major = 0, minor = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
      (void)cudaGetLastError();
      return false;
    }
    return major == 9 && minor == 0;
  }();
  return sm90;
}

// The engine, device and shape every kernel here needs: bf16, head_dim 64/128/256, sm_90.
bool KernelsRun(const AttentionCall& call) {
  if (call.device == nullptr || call.device->params == nullptr) return false;
  const AttentionParams& p = *call.device->params;
  const bool head_dim_ok = p.head_dim == 64 || p.head_dim == 128 || p.head_dim == 256;
  return p.dtype == cuda::AttnDType::kBf16 && head_dim_ok && DeviceIsSm90();
}

// A device allocation that only grows (by half again, so growing with the context
// reallocates O(log) times); growing drops the contents.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : ptr_(std::exchange(other.ptr_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&&) = delete;
  ~DeviceBuffer() {
    if (ptr_ != nullptr) cudaFree(ptr_);
  }
  // Sets *moved (when given) if the buffer was reallocated.
  absl::Status Reserve(int64_t bytes, bool* moved = nullptr) {
    if (bytes <= bytes_) return absl::OkStatus();
    const int64_t want = std::max(bytes, bytes_ + bytes_ / 2);
    if (ptr_ != nullptr) cudaFree(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
    if (moved != nullptr) *moved = true;
    const cudaError_t err = cudaMalloc(&ptr_, static_cast<size_t>(want));
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      ptr_ = nullptr;
      return absl::ResourceExhaustedError(
          absl::StrCat("the GPU is out of memory for a method's buffers (", want, " bytes)"));
    }
    SF_CUDA_RETURN_IF_ERROR(err);
    bytes_ = want;
    return absl::OkStatus();
  }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  int64_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  int64_t bytes_ = 0;
};

// GPU time of a method's selection kernels: a pair of CUDA events recorded on the stream
// around them per call. Completed pairs are read (and their events reused) when the next
// pair starts or when the total is asked for, so timing never blocks a call; Seconds()
// waits for pairs still pending.
class SelectionTimer {
 public:
  SelectionTimer() = default;
  SelectionTimer(const SelectionTimer&) = delete;
  SelectionTimer& operator=(const SelectionTimer&) = delete;
  ~SelectionTimer() {
    for (std::vector<EventPair>* pairs : {&free_, &pending_}) {
      for (const EventPair& e : *pairs) {
        cudaEventDestroy(e.start);
        cudaEventDestroy(e.stop);
      }
    }
  }

  absl::Status Start(cudaStream_t stream) {
    SF_RETURN_IF_ERROR(Collect(/*wait=*/false));
    if (free_.empty()) {
      EventPair e;
      SF_CUDA_RETURN_IF_ERROR(cudaEventCreate(&e.start));
      const cudaError_t err = cudaEventCreate(&e.stop);
      if (err != cudaSuccess) cudaEventDestroy(e.start);
      SF_CUDA_RETURN_IF_ERROR(err);
      free_.push_back(e);
    }
    current_ = free_.back();
    free_.pop_back();
    started_ = true;
    return cuda::CudaStatus(cudaEventRecord(current_.start, stream), "recording a selection timer");
  }
  absl::Status Stop(cudaStream_t stream) {
    if (!started_) return absl::InternalError("selection timer stopped before it started");
    started_ = false;
    pending_.push_back(current_);
    return cuda::CudaStatus(cudaEventRecord(current_.stop, stream), "recording a selection timer");
  }
  // Enqueues `work` between a start and a stop event.
  template <typename Work>
  absl::Status Time(cudaStream_t stream, Work&& work) {
    SF_RETURN_IF_ERROR(Start(stream));
    const absl::Status status = work();
    SF_RETURN_IF_ERROR(Stop(stream));
    return status;
  }
  // Seconds of every completed pair so far, waiting for pending ones.
  double Seconds() {
    if (!Collect(/*wait=*/true).ok()) (void)cudaGetLastError();
    return seconds_;
  }

 private:
  struct EventPair {
    cudaEvent_t start = nullptr, stop = nullptr;
  };
  // Adds the pending pairs that have completed (all of them when `wait`), oldest first.
  absl::Status Collect(bool wait) {
    size_t done = 0;
    for (; done < pending_.size(); ++done) {
      const EventPair& e = pending_[done];
      if (wait) {
        SF_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(e.stop));
      } else {
        const cudaError_t ready = cudaEventQuery(e.stop);
        if (ready == cudaErrorNotReady) break;
        SF_CUDA_RETURN_IF_ERROR(ready);
      }
      float ms = 0;
      SF_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&ms, e.start, e.stop));
      seconds_ += 1e-3 * ms;
      free_.push_back(e);
    }
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(done));
    return absl::OkStatus();
  }

  std::vector<EventPair> free_, pending_;
  EventPair current_;
  bool started_ = false;
  double seconds_ = 0;
};

absl::StatusOr<ParamReader> Reader(const MethodChoice& method) {
  SF_ASSIGN_OR_RETURN(const MethodInfo* info, LookUpMethod(method.name));
  return ParamReader(*info, method.params);
}

// InvalidArgument as the CPU reference words a parameter larger than a limit.
absl::Status TooLarge(const std::string& method, const char* param, int64_t value, int64_t limit,
                      const char* what) {
  return absl::InvalidArgumentError(absl::StrCat("parameter '", param, "' of method ", method,
                                                 " is ", value, ", larger than ", what, " (", limit,
                                                 ")"));
}

// PrefillBlockSparse runs blocks that are multiples of 128, or 16, 32, 64.
bool BlockKernelRuns(int64_t block) {
  return block > 0 && (block % 128 == 0 || block == 16 || block == 32 || block == 64);
}

// Pairs dense causal attention computes per query head for `rows` queries at positions
// first_position, first_position + 1, ...
double CausalPairs(int64_t first_position, int64_t rows) {
  const double a = static_cast<double>(first_position) + 1, n = static_cast<double>(rows);
  return n * a + n * (n - 1) / 2;
}

// ---------------------------------------------------------------------------------------
// Prefill.

// What every prefill method shares: the equal-lengths precondition, the selection
// buffers, the device pair counter read once per layer, and the stats.
class DevicePrefill : public DeviceMethod {
 public:
  explicit DevicePrefill(std::string method) : method_(std::move(method)) {}

  bool Supports(const AttentionCall& call) const override {
    return call.phase == Phase::kPrefill && KernelsRun(call) && ShapeRuns(call) &&
           SelectionFits(*call.device->params);
  }

  double EstimationSeconds() override { return timer_.Seconds(); }

  absl::Status Attend(const AttentionCall& call, AttentionStats* stats,
                      double* estimation_flops) override {
    const int64_t* lengths = call.device->host_kv_lengths;
    for (int h = 1; h < call.num_kv_heads; ++h) {
      if (lengths[h] != lengths[0]) {
        return absl::FailedPreconditionError(
            absl::StrCat("prefill method '", method_,
                         "' needs equal cache lengths per KV head (a prefill after eviction)"));
      }
    }
    const AttentionParams& p = *call.device->params;
    SF_RETURN_IF_ERROR(counters_.Reserve(2 * sizeof(unsigned long long)));
    auto* counters = counters_.as<unsigned long long>();
    SF_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(counters, 0, 2 * sizeof(unsigned long long), p.stream));
    double host_pairs = 0;
    last_ = p;
    SF_RETURN_IF_ERROR(
        Annotate(Run(p, counters, &host_pairs),
                 absl::StrCat("prefill method '", method_, "' at layer ", call.layer)));
    unsigned long long counted[2] = {0, 0};
    SF_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(counted, counters, sizeof(counted), cudaMemcpyDeviceToHost, p.stream));
    SF_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(p.stream));
    SF_ASSIGN_OR_RETURN(const double flops, Flops(p, static_cast<int64_t>(counted[1])));
    stats->pairs_computed += static_cast<double>(counted[0]) + host_pairs;
    stats->pairs_dense += model::DensePairs(call);
    *estimation_flops += flops;
    return absl::OkStatus();
  }

 protected:
  // Position of the call's first query (prefill: every head holds max_kv_length rows).
  static int64_t QueryOffset(const AttentionParams& p) { return p.max_kv_length - p.num_queries; }
  static int64_t QueryOffset(const AttentionCall& call) {
    return call.device->host_kv_lengths[0] - call.num_queries;
  }
  static cuda::CountedRows AllRows(const AttentionParams& p) {
    return {QueryOffset(p), p.num_queries, p.num_q_heads};
  }

  // The method's conditions beyond KernelsRun (e.g. block-aligned queries).
  virtual bool ShapeRuns(const AttentionCall& call) const { return true; }
  // Whether the GPU selection takes this shape: its sizes are computed without error
  // (limits of the GPU kernels, e.g. key blocks that must fit in shared memory, and the
  // parameter errors the CPU reference reports alike).
  virtual bool SelectionFits(const AttentionParams& p) const = 0;
  // Enqueues the selection and the attention (writing p.out), adds the selected pairs to
  // counters[0] on the device (and any counted on the host to *host_pairs), and for a
  // mixed selection the query-aware heads to counters[1].
  virtual absl::Status Run(const AttentionParams& p, unsigned long long* counters,
                           double* host_pairs) = 0;
  // Estimation FLOPs, given the count left in counters[1].
  virtual absl::StatusOr<double> Flops(const AttentionParams& p, int64_t query_aware_heads) = 0;

  // Device buffers for a selection of `sizes`, grown as needed.
  absl::StatusOr<cuda::SelectionBuffers> Buffers(const cuda::SelectionSizes& sizes) {
    cuda::SelectionBuffers b;
    SF_RETURN_IF_ERROR(workspace_.Reserve(std::max<int64_t>(sizes.workspace_bytes, 1)));
    b.workspace = workspace_.as<void>();
    b.workspace_bytes = workspace_.bytes();
    auto ints = [](DeviceBuffer& buffer, int64_t count) -> absl::StatusOr<int32_t*> {
      SF_RETURN_IF_ERROR(buffer.Reserve(std::max<int64_t>(count, 1) * sizeof(int32_t)));
      return buffer.as<int32_t>();
    };
    SF_ASSIGN_OR_RETURN(b.column_offsets, ints(column_offsets_, sizes.column_offsets));
    SF_ASSIGN_OR_RETURN(b.columns, ints(columns_, sizes.columns));
    b.columns_capacity = columns_.bytes() / static_cast<int64_t>(sizeof(int32_t));
    SF_ASSIGN_OR_RETURN(b.diagonal_offsets, ints(diagonal_offsets_, sizes.diagonal_offsets));
    SF_ASSIGN_OR_RETURN(b.diagonals, ints(diagonals_, sizes.diagonals));
    b.diagonals_capacity = diagonals_.bytes() / static_cast<int64_t>(sizeof(int32_t));
    SF_ASSIGN_OR_RETURN(b.block_offsets, ints(block_offsets_, sizes.block_offsets));
    SF_ASSIGN_OR_RETURN(b.key_blocks, ints(key_blocks_, sizes.key_blocks));
    b.key_blocks_capacity = key_blocks_.bytes() / static_cast<int64_t>(sizeof(int32_t));
    SF_ASSIGN_OR_RETURN(b.head_kinds, ints(head_kinds_, sizes.head_kinds));
    return b;
  }

  // The CSR lists offsets[0..lists] / items on the host, once the stream is done.
  absl::StatusOr<std::vector<std::vector<int64_t>>> CopyLists(const int32_t* offsets,
                                                              const int32_t* items,
                                                              int64_t lists) const {
    SF_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(last_.stream));
    std::vector<int32_t> ends(static_cast<size_t>(lists + 1));
    SF_CUDA_RETURN_IF_ERROR(
        cudaMemcpy(ends.data(), offsets, ends.size() * sizeof(int32_t), cudaMemcpyDeviceToHost));
    std::vector<int32_t> all(static_cast<size_t>(std::max(ends.back(), 1)));
    SF_CUDA_RETURN_IF_ERROR(cudaMemcpy(all.data(), items,
                                       static_cast<size_t>(ends.back()) * sizeof(int32_t),
                                       cudaMemcpyDeviceToHost));
    std::vector<std::vector<int64_t>> out(static_cast<size_t>(lists));
    for (int64_t i = 0; i < lists; ++i) {
      out[static_cast<size_t>(i)].assign(all.begin() + ends[static_cast<size_t>(i)],
                                         all.begin() + ends[static_cast<size_t>(i) + 1]);
    }
    return out;
  }
  // List `list_heads` lists per query head: query head h's list.
  int64_t ListOf(int64_t list_heads, int64_t h) const {
    return list_heads == last_.num_q_heads ? h : h / (last_.num_q_heads / last_.num_kv_heads);
  }

  std::string method_;
  SelectionTimer timer_;
  AttentionParams last_;  // the last call's shape (its pointers are not kept valid)

 private:
  DeviceBuffer counters_, workspace_, column_offsets_, columns_, diagonal_offsets_, diagonals_,
      block_offsets_, key_blocks_, head_kinds_;
};

// Methods whose selection is lines (columns + diagonals): vertical_slash, flexprefill's
// study variant, streaming. PrefillLines attends exactly those.
template <typename Params>
class LinePrefill : public DevicePrefill {
 public:
  using SizesFn = absl::StatusOr<cuda::SelectionSizes> (*)(const AttentionParams&, const Params&);
  using SelectFn = absl::StatusOr<cuda::LineSelection> (*)(const AttentionParams&, const Params&,
                                                           const cuda::SelectionBuffers&);
  LinePrefill(std::string method, Params params, SizesFn sizes, SelectFn select)
      : DevicePrefill(std::move(method)), params_(params), sizes_(sizes), select_(select) {}

 protected:
  absl::Status Run(const AttentionParams& p, unsigned long long* counters,
                   double* host_pairs) override {
    SF_ASSIGN_OR_RETURN(const cuda::SelectionSizes sizes, sizes_(p, params_));
    SF_ASSIGN_OR_RETURN(const cuda::SelectionBuffers buffers, Buffers(sizes));
    SF_RETURN_IF_ERROR(timer_.Time(p.stream, [&]() -> absl::Status {
      SF_ASSIGN_OR_RETURN(lines_, select_(p, params_, buffers));
      return absl::OkStatus();
    }));
    SF_RETURN_IF_ERROR(cuda::PrefillLines(p, lines_));
    return cuda::CountLinePairs(lines_, AllRows(p), counters, p.stream);
  }
  absl::StatusOr<kernels::SelectionStructure> LastSelection() override {
    if (lines_.column_offsets == nullptr) return absl::FailedPreconditionError("no prefill yet");
    SF_ASSIGN_OR_RETURN(const auto columns,
                        CopyLists(lines_.column_offsets, lines_.columns, lines_.heads.count));
    SF_ASSIGN_OR_RETURN(const auto diagonals,
                        CopyLists(lines_.diagonal_offsets, lines_.diagonals, lines_.heads.count));
    kernels::SelectionStructure out;
    for (int64_t h = 0; h < last_.num_q_heads; ++h) {
      const size_t list = static_cast<size_t>(ListOf(lines_.heads.count, h));
      out.columns.push_back(columns[list]);
      out.offsets.push_back(diagonals[list]);
    }
    return out;
  }
  absl::StatusOr<double> Flops(const AttentionParams& p, int64_t) override {
    return cuda::EstimationFlops(p, params_);
  }
  bool SelectionFits(const AttentionParams& p) const override { return sizes_(p, params_).ok(); }

 private:
  Params params_;
  SizesFn sizes_;
  SelectFn select_;
  cuda::LineSelection lines_;  // the last call's
};

// Methods whose selection is key blocks per query block: block_sparse, xattention.
template <typename Params>
class BlockPrefill : public DevicePrefill {
 public:
  using SizesFn = absl::StatusOr<cuda::SelectionSizes> (*)(const AttentionParams&, const Params&);
  using SelectFn = absl::StatusOr<cuda::BlockSelection> (*)(const AttentionParams&, const Params&,
                                                            const cuda::SelectionBuffers&);
  BlockPrefill(std::string method, Params params, SizesFn sizes, SelectFn select)
      : DevicePrefill(std::move(method)), params_(params), sizes_(sizes), select_(select) {}

 protected:
  bool ShapeRuns(const AttentionCall& call) const override {
    return BlockKernelRuns(params_.block) && QueryOffset(call) % params_.block == 0;
  }
  absl::Status Run(const AttentionParams& p, unsigned long long* counters,
                   double* host_pairs) override {
    SF_ASSIGN_OR_RETURN(const cuda::SelectionSizes sizes, sizes_(p, params_));
    SF_ASSIGN_OR_RETURN(const cuda::SelectionBuffers buffers, Buffers(sizes));
    SF_RETURN_IF_ERROR(timer_.Time(p.stream, [&]() -> absl::Status {
      SF_ASSIGN_OR_RETURN(blocks_, select_(p, params_, buffers));
      return absl::OkStatus();
    }));
    SF_RETURN_IF_ERROR(cuda::PrefillBlockSparse(p, blocks_));
    return cuda::CountBlockPairs(blocks_, AllRows(p), counters, p.stream);
  }
  absl::StatusOr<kernels::SelectionStructure> LastSelection() override {
    if (blocks_.offsets == nullptr) return absl::FailedPreconditionError("no prefill yet");
    const int64_t query_blocks = blocks_.num_query_blocks;
    SF_ASSIGN_OR_RETURN(const auto lists, CopyLists(blocks_.offsets, blocks_.key_blocks,
                                                    blocks_.heads.count * query_blocks));
    kernels::SelectionStructure out;
    out.block = blocks_.block;
    for (int64_t h = 0; h < last_.num_q_heads; ++h) {
      const int64_t list = ListOf(blocks_.heads.count, h);
      out.blocks.emplace_back(lists.begin() + list * query_blocks,
                              lists.begin() + (list + 1) * query_blocks);
    }
    return out;
  }
  absl::StatusOr<double> Flops(const AttentionParams& p, int64_t) override {
    return cuda::EstimationFlops(p, params_);
  }
  bool SelectionFits(const AttentionParams& p) const override { return sizes_(p, params_).ok(); }

 private:
  Params params_;
  SizesFn sizes_;
  SelectFn select_;
  cuda::BlockSelection blocks_;  // the last call's
};

// flexprefill's original variant: query-aware heads take key blocks, the others lines.
// Each kernel writes every head (a head of the other kind sees no key there and is
// written as zeros), so the block kernel writes into a second buffer whose block heads
// are then copied over the line kernel's output.
class FlexPrefillMixedPrefill : public DevicePrefill {
 public:
  explicit FlexPrefillMixedPrefill(kernels::FlexPrefillParams params)
      : DevicePrefill("flexprefill"), params_(params) {}

 protected:
  bool ShapeRuns(const AttentionCall& call) const override {
    return BlockKernelRuns(params_.block) && QueryOffset(call) % params_.block == 0;
  }
  absl::Status Run(const AttentionParams& p, unsigned long long* counters,
                   double* host_pairs) override {
    SF_ASSIGN_OR_RETURN(const cuda::SelectionSizes sizes, cuda::FlexPrefillSelectSizes(p, params_));
    SF_ASSIGN_OR_RETURN(const cuda::SelectionBuffers buffers, Buffers(sizes));
    cuda::MixedSelection mixed;
    SF_RETURN_IF_ERROR(timer_.Time(p.stream, [&]() -> absl::Status {
      SF_ASSIGN_OR_RETURN(mixed, cuda::SelectFlexPrefillMixed(p, params_, buffers));
      return absl::OkStatus();
    }));
    SF_RETURN_IF_ERROR(cuda::PrefillLines(p, mixed.lines));
    SF_RETURN_IF_ERROR(block_out_.Reserve(p.num_queries * p.out_row_stride * 2));
    AttentionParams blocks = p;
    blocks.out = block_out_.as<void>();
    SF_RETURN_IF_ERROR(cuda::PrefillBlockSparse(blocks, mixed.blocks));
    SF_RETURN_IF_ERROR(cuda::CopyHeadsOfKind(p, block_out_.as<void>(), p.out, mixed.head_kinds,
                                             cuda::HeadSelectionKind::kBlocks));
    SF_RETURN_IF_ERROR(cuda::CountLinePairs(mixed.lines, AllRows(p), counters, p.stream));
    SF_RETURN_IF_ERROR(cuda::CountBlockPairs(mixed.blocks, AllRows(p), counters, p.stream));
    return cuda::CountHeadsOfKind(mixed.head_kinds, p.num_q_heads, cuda::HeadSelectionKind::kBlocks,
                                  counters + 1, p.stream);
  }
  absl::StatusOr<double> Flops(const AttentionParams& p, int64_t query_aware_heads) override {
    return cuda::EstimationFlops(p, params_, query_aware_heads);
  }
  bool SelectionFits(const AttentionParams& p) const override {
    return cuda::FlexPrefillSelectSizes(p, params_).ok();
  }

 private:
  kernels::FlexPrefillParams params_;
  DeviceBuffer block_out_;
};

// tri_shape: rows before the last `last_q` positions see the sink columns and the local
// window (streaming's lines), the last rows are dense. The lines run over the rows before
// the dense ones and dense prefill over the rest (queries there see every earlier key).
class TriShapePrefill : public DevicePrefill {
 public:
  TriShapePrefill(int64_t sink, int64_t last_q, int64_t window)
      : DevicePrefill("tri_shape"), sink_(sink), last_q_(last_q), window_(window) {}

 protected:
  absl::Status Run(const AttentionParams& p, unsigned long long* counters,
                   double* host_pairs) override {
    const int64_t lk = p.max_kv_length, q_offset = QueryOffset(p);
    if (window_ > lk) return TooLarge(method_, "window", window_, lk, "the sequence");
    if (sink_ > lk) return TooLarge(method_, "sink", sink_, lk, "the sequence");
    const int64_t dense_from = std::max<int64_t>(lk - last_q_, 0);
    const int64_t line_rows = std::clamp<int64_t>(dense_from - q_offset, 0, p.num_queries);
    if (line_rows > 0) {
      const kernels::StreamingParams lines_params{.sink = sink_, .window = window_};
      SF_ASSIGN_OR_RETURN(const cuda::SelectionSizes sizes,
                          cuda::StreamingSelectSizes(p, lines_params));
      SF_ASSIGN_OR_RETURN(const cuda::SelectionBuffers buffers, Buffers(sizes));
      cuda::LineSelection lines;
      SF_RETURN_IF_ERROR(timer_.Time(p.stream, [&]() -> absl::Status {
        SF_ASSIGN_OR_RETURN(lines, cuda::SelectStreaming(p, lines_params, buffers));
        return absl::OkStatus();
      }));
      AttentionParams first = p;
      first.num_queries = line_rows;
      first.max_kv_length = q_offset + line_rows;  // the lines' rows end there
      first.kv_lengths = nullptr;
      SF_RETURN_IF_ERROR(cuda::PrefillLines(first, lines));
      SF_RETURN_IF_ERROR(
          cuda::CountLinePairs(lines, {q_offset, line_rows, p.num_q_heads}, counters, p.stream));
    }
    const int64_t dense_rows = p.num_queries - line_rows;
    if (dense_rows > 0) {
      AttentionParams last = p;
      last.q = static_cast<const char*>(p.q) + line_rows * p.q_row_stride * 2;
      last.out = static_cast<char*>(p.out) + line_rows * p.out_row_stride * 2;
      last.num_queries = dense_rows;
      SF_RETURN_IF_ERROR(cuda::PrefillDense(last));
      *host_pairs += p.num_q_heads * CausalPairs(q_offset + line_rows, dense_rows);
    }
    return absl::OkStatus();
  }
  absl::StatusOr<double> Flops(const AttentionParams&, int64_t) override { return 0.0; }
  bool SelectionFits(const AttentionParams& p) const override {
    return cuda::StreamingSelectSizes(p, {.sink = sink_, .window = window_}).ok();
  }

 private:
  int64_t sink_, last_q_, window_;
};

// ---------------------------------------------------------------------------------------
// Decode.

// Methods that evict prompt rows after prefill and then attend exactly to what the cache
// holds: the kept rows (chosen by the subclass) are compacted to the front of each head
// through a scratch copy, the lengths lowered on the device and the host.
class EvictingDecode : public DeviceMethod {
 public:
  explicit EvictingDecode(std::string method) : method_(std::move(method)) {}

  bool Supports(const AttentionCall& call) const override { return KernelsRun(call); }

  absl::Status Attend(const AttentionCall& call, AttentionStats* stats, double*) override {
    AttentionParams p = *call.device->params;
    if (p.num_queries == 1) {
      SF_RETURN_IF_ERROR(ReserveDecodeWorkspace(p, call.device->capacity));
      p.workspace = workspace_.as<void>();
      p.workspace_bytes = workspace_.bytes();
      SF_RETURN_IF_ERROR(cuda::DenseDecode(p));
    } else {
      SF_RETURN_IF_ERROR(cuda::PrefillDense(p));
    }
    stats->pairs_computed += model::DensePairs(call);
    // Dense decoding would see every position up to the query's own.
    stats->pairs_dense += call.num_q_heads * CausalPairs(call.first_position, call.num_queries);
    return absl::OkStatus();
  }

  double EstimationSeconds() override { return timer_.Seconds(); }

  absl::Status AfterPrefill(const AttentionCall& call, double* estimation_flops) override {
    const AttentionParams& p = *call.device->params;
    cuda::KeptRows kept;
    SF_RETURN_IF_ERROR(timer_.Time(p.stream, [&]() -> absl::Status {
      SF_ASSIGN_OR_RETURN(kept, Kept(call, estimation_flops));
      return absl::OkStatus();
    }));
    const int64_t heads = call.num_kv_heads, d = call.head_dim;
    const int64_t head_bytes = call.device->capacity * d * 2;
    SF_RETURN_IF_ERROR(scratch_k_.Reserve(heads * head_bytes));
    SF_RETURN_IF_ERROR(scratch_v_.Reserve(heads * head_bytes));
    SF_RETURN_IF_ERROR(scratch_lengths_.Reserve(heads * sizeof(int32_t)));
    SF_RETURN_IF_ERROR(cuda::CompactKv(p, kept, scratch_k_.as<void>(), scratch_v_.as<void>(),
                                       scratch_lengths_.as<int32_t>()));
    std::vector<int32_t> lengths(static_cast<size_t>(heads));
    SF_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(lengths.data(), scratch_lengths_.as<int32_t>(),
                                            heads * sizeof(int32_t), cudaMemcpyDeviceToHost,
                                            p.stream));
    SF_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(p.stream));
    const int64_t longest = *std::max_element(lengths.begin(), lengths.end());
    if (longest > 0) {
      for (auto [dst, src] : {std::pair{call.device->keys, scratch_k_.as<void>()},
                              std::pair{call.device->values, scratch_v_.as<void>()}}) {
        SF_CUDA_RETURN_IF_ERROR(
            cudaMemcpy2DAsync(dst, static_cast<size_t>(head_bytes), src,
                              static_cast<size_t>(head_bytes), static_cast<size_t>(longest * d * 2),
                              static_cast<size_t>(heads), cudaMemcpyDeviceToDevice, p.stream));
      }
    }
    SF_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(call.device->kv_lengths, scratch_lengths_.as<int32_t>(),
                                            heads * sizeof(int32_t), cudaMemcpyDeviceToDevice,
                                            p.stream));
    for (int h = 0; h < heads; ++h)
      call.device->host_kv_lengths[h] = lengths[static_cast<size_t>(h)];
    return absl::OkStatus();
  }

 protected:
  // Enqueues the choice of kept rows per KV head (sorted prompt positions).
  virtual absl::StatusOr<cuda::KeptRows> Kept(const AttentionCall& call,
                                              double* estimation_flops) = 0;

  std::string method_;
  SelectionTimer timer_;

 private:
  // Room for DenseDecode over any length up to the cache's capacity, so the workspace is
  // reallocated only when the cache grows.
  absl::Status ReserveDecodeWorkspace(const AttentionParams& p, int64_t capacity) {
    SF_ASSIGN_OR_RETURN(const cuda::DecodePlan plan, cuda::PlanDenseDecode(p));
    if (plan.workspace_bytes <= workspace_.bytes() && workspace_.bytes() > 0) {
      return absl::OkStatus();
    }
    AttentionParams longest = p;
    longest.max_kv_length = std::max(p.max_kv_length, capacity);
    SF_ASSIGN_OR_RETURN(const cuda::DecodePlan most, cuda::PlanDenseDecode(longest));
    return workspace_.Reserve(
        std::max<int64_t>({plan.workspace_bytes, most.workspace_bytes, int64_t{1}}));
  }

  DeviceBuffer workspace_, scratch_k_, scratch_v_, scratch_lengths_;
};

// snapkv and ada_snapkv: pooled attention of the last observation queries (snapkv.h).
class SnapKvDecode : public EvictingDecode {
 public:
  SnapKvDecode(std::string method, kernels::SnapKvParams params)
      : EvictingDecode(std::move(method)), params_(params) {}

 protected:
  absl::StatusOr<cuda::KeptRows> Kept(const AttentionCall& call,
                                      double* estimation_flops) override {
    AttentionParams p = *call.device->params;
    const cuda::ObservationQueries obs{.q = p.q,
                                       .rows = static_cast<int32_t>(p.num_queries),
                                       .row_stride = p.q_row_stride,
                                       .head_stride = p.q_head_stride};
    const cuda::SnapKvArgs args{.window = params_.window,
                                .pool = params_.pool,
                                .keep_first = params_.keep_first,
                                .keep_last = params_.keep_last,
                                .token_capacity = params_.token_capacity,
                                .adaptive = params_.adaptive,
                                .floor = params_.floor};
    SF_RETURN_IF_ERROR(
        workspace_.Reserve(std::max<int64_t>(cuda::SnapKvWorkspaceBytes(p, obs, args), 1)));
    p.workspace = workspace_.as<void>();
    p.workspace_bytes = workspace_.bytes();
    const int64_t heads = call.num_kv_heads;
    SF_RETURN_IF_ERROR(offsets_.Reserve((heads + 1) * sizeof(int32_t)));
    SF_RETURN_IF_ERROR(
        rows_.Reserve(std::max<int64_t>(heads * params_.token_capacity, 1) * sizeof(int32_t)));
    const cuda::KeptRowsOut out{offsets_.as<int32_t>(), rows_.as<int32_t>()};
    SF_RETURN_IF_ERROR(Annotate(
        cuda::SnapKvSelect(p, obs, args, out),
        absl::StrCat("decode method '", method_, "' KV compression at layer ", call.layer)));
    // As the CPU reference counts it: the observation window's scores against every
    // prompt key, per query head.
    const int64_t window = std::min<int64_t>(params_.window, p.num_queries);
    *estimation_flops += 2.0 * call.num_q_heads * static_cast<double>(window) *
                         static_cast<double>(p.max_kv_length) * call.head_dim;
    return cuda::KeptRows{static_cast<int32_t>(heads), offsets_.as<int32_t>(), rows_.as<int32_t>()};
  }

 private:
  kernels::SnapKvParams params_;
  DeviceBuffer workspace_, offsets_, rows_;
};

// streaming's eviction: the first `sink` and the last `window` prompt rows of each head.
class StreamingDecode : public EvictingDecode {
 public:
  explicit StreamingDecode(kernels::StreamingParams params)
      : EvictingDecode("streaming"), params_(params) {}

 protected:
  absl::StatusOr<cuda::KeptRows> Kept(const AttentionCall& call, double*) override {
    const int heads = call.num_kv_heads;
    host_offsets_.assign(1, 0);
    host_rows_.clear();
    for (int h = 0; h < heads; ++h) {
      const int64_t prompt = call.device->host_kv_lengths[h];
      for (int64_t j = 0; j < prompt; ++j) {
        if (j < params_.sink || j >= prompt - params_.window) {
          host_rows_.push_back(static_cast<int32_t>(j));
        }
      }
      host_offsets_.push_back(static_cast<int32_t>(host_rows_.size()));
    }
    const cudaStream_t stream = call.device->params->stream;
    SF_RETURN_IF_ERROR(offsets_.Reserve(host_offsets_.size() * sizeof(int32_t)));
    SF_RETURN_IF_ERROR(rows_.Reserve(std::max<size_t>(host_rows_.size(), 1) * sizeof(int32_t)));
    // The host vectors stay alive (members) until the copies are done: AfterPrefill
    // synchronises before the next layer refills them.
    SF_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(offsets_.as<int32_t>(), host_offsets_.data(),
                                            host_offsets_.size() * sizeof(int32_t),
                                            cudaMemcpyHostToDevice, stream));
    SF_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(rows_.as<int32_t>(), host_rows_.data(),
                                            host_rows_.size() * sizeof(int32_t),
                                            cudaMemcpyHostToDevice, stream));
    return cuda::KeptRows{heads, offsets_.as<int32_t>(), rows_.as<int32_t>()};
  }

 private:
  kernels::StreamingParams params_;
  std::vector<int32_t> host_offsets_, host_rows_;
  DeviceBuffer offsets_, rows_;
};

// What per-step methods share: one query per step over an uncompressed cache, and the
// split-KV workspace of the sparse decode kernel.
class PerStepDecode : public DeviceMethod {
 public:
  explicit PerStepDecode(std::string method) : method_(std::move(method)) {}

  double EstimationSeconds() override { return timer_.Seconds(); }

  // After prefill there is nothing to do on the device (the call only marks the cache as
  // the device's); each decode step is one query.
  bool Supports(const AttentionCall& call) const override {
    return KernelsRun(call) && (call.phase == Phase::kPrefill || call.num_queries == 1);
  }

 protected:
  // The step's length (every head's), or FailedPrecondition as the CPU hook.
  absl::StatusOr<int64_t> StepLength(const AttentionCall& call) const {
    if (call.num_queries != 1) {
      return absl::FailedPreconditionError(
          absl::StrCat("decode method '", method_, "' runs one query per step on the device, got ",
                       call.num_queries));
    }
    const int64_t* lengths = call.device->host_kv_lengths;
    for (int h = 1; h < call.num_kv_heads; ++h) {
      if (lengths[h] != lengths[0]) {
        return absl::FailedPreconditionError(absl::StrCat(
            "decode method '", method_, "' needs an uncompressed cache (equal lengths per head)"));
      }
    }
    return lengths[0];
  }

  // `p` with a workspace for sparse decode over at most `max_selected` rows per list.
  absl::StatusOr<AttentionParams> WithDecodeWorkspace(const AttentionParams& p,
                                                      const cuda::ListHeads& heads,
                                                      int64_t max_selected) {
    SF_ASSIGN_OR_RETURN(const cuda::DecodePlan plan,
                        cuda::PlanSparseDecode(p, heads, max_selected));
    SF_RETURN_IF_ERROR(decode_workspace_.Reserve(std::max<int64_t>(plan.workspace_bytes, 1)));
    AttentionParams out = p;
    out.workspace = decode_workspace_.as<void>();
    out.workspace_bytes = decode_workspace_.bytes();
    return out;
  }

  std::string method_;
  SelectionTimer timer_;

 private:
  DeviceBuffer decode_workspace_;
};

// quest: bf16 page metadata per layer (the method's page size) kept by this hook, the
// step's pages chosen on the device, PagedDecode over them.
class QuestDecode : public PerStepDecode {
 public:
  QuestDecode(int64_t page, bool gqa_shared, int64_t token_budget)
      : PerStepDecode("quest"), page_(page), gqa_shared_(gqa_shared), token_budget_(token_budget) {}

  // A new prompt: every layer's metadata is rebuilt at its first step.
  absl::Status AfterPrefill(const AttentionCall& call, double*) override {
    if (call.layer < static_cast<int>(layers_.size())) {
      layers_[static_cast<size_t>(call.layer)].covered = 0;
    }
    return absl::OkStatus();
  }

  absl::Status Attend(const AttentionCall& call, AttentionStats* stats,
                      double* estimation_flops) override {
    SF_ASSIGN_OR_RETURN(const int64_t length, StepLength(call));
    const int64_t max_budget = (length + page_ - 1) / page_ * page_;
    if (token_budget_ > max_budget) {
      return absl::InvalidArgumentError(absl::StrCat(
          "parameter 'token_budget' of method quest is ", token_budget_,
          ", larger than the sequence (", length, " tokens, ", max_budget / page_, " pages)"));
    }
    const AttentionParams& p = *call.device->params;
    cuda::QuestSelectArgs args{.budget_pages = token_budget_ / page_, .gqa_shared = gqa_shared_};
    cuda::QuestPages meta;
    SF_RETURN_IF_ERROR(timer_.Time(p.stream, [&]() -> absl::Status {
      SF_ASSIGN_OR_RETURN(meta, Pages(call, length, &args.update_last_page));
      return Selection(p, meta, args);
    }));
    const cuda::ListHeads heads{gqa_shared_ ? p.num_kv_heads : p.num_q_heads};
    const int64_t max_selected = cuda::QuestMaxSelectedRows(meta, args);
    SF_ASSIGN_OR_RETURN(const AttentionParams decode, WithDecodeWorkspace(p, heads, max_selected));
    const cuda::PageSelection pages{heads, static_cast<int32_t>(page_), offsets_.as<int32_t>(),
                                    pages_.as<int32_t>()};
    SF_RETURN_IF_ERROR(cuda::PagedDecode(decode, pages, max_selected));
    // Every list holds the current page and min(current, budget) full earlier pages.
    const int64_t current = (length - 1) / page_;
    const int64_t rows = current <= args.budget_pages
                             ? length
                             : args.budget_pages * page_ + length - current * page_;
    stats->pairs_computed += static_cast<double>(call.num_q_heads) * static_cast<double>(rows);
    stats->pairs_dense += model::DensePairs(call);
    *estimation_flops += 4.0 * call.num_q_heads * call.head_dim * static_cast<double>(current);
    return absl::OkStatus();
  }

 private:
  struct LayerPages {
    DeviceBuffer min, max;
    int64_t max_pages = 0;
    int64_t covered = 0;  // rows [0, covered) of each head are summarised
  };

  // The layer's metadata, reallocated and rebuilt when the cache grew or a new prompt
  // began. Sets *update_last_page when only this step's row is new (the selection kernel
  // folds it in); otherwise updates every page holding a row it has not seen.
  absl::StatusOr<cuda::QuestPages> Pages(const AttentionCall& call, int64_t length,
                                         bool* update_last_page) {
    if (call.layer >= static_cast<int>(layers_.size())) {
      layers_.resize(static_cast<size_t>(call.layer) + 1);
    }
    LayerPages& layer = layers_[static_cast<size_t>(call.layer)];
    const AttentionParams& p = *call.device->params;
    const int64_t max_pages = (call.device->capacity + page_ - 1) / page_;
    if (layer.max_pages < max_pages) {
      const int64_t bytes = cuda::QuestPagesBytes(1, p.num_kv_heads, max_pages, p.head_dim);
      SF_RETURN_IF_ERROR(layer.min.Reserve(bytes));
      SF_RETURN_IF_ERROR(layer.max.Reserve(bytes));
      layer.max_pages = max_pages;
      layer.covered = 0;
    }
    if (layer.covered >= length) layer.covered = 0;
    const cuda::QuestPages meta{layer.min.as<void>(), layer.max.as<void>(),
                                static_cast<int32_t>(page_), layer.max_pages};
    const int64_t appended = length - layer.covered;
    *update_last_page = appended == 1;
    if (appended > 1) SF_RETURN_IF_ERROR(cuda::QuestUpdatePages(p, meta, appended));
    layer.covered = length;
    return meta;
  }

  // The step's page lists into offsets_ / pages_.
  absl::Status Selection(const AttentionParams& p, const cuda::QuestPages& meta,
                         const cuda::QuestSelectArgs& args) {
    bool moved = false;
    SF_RETURN_IF_ERROR(select_workspace_.Reserve(
        std::max<int64_t>(cuda::QuestSelectWorkspaceBytes(p, meta, args), 1), &moved));
    if (moved) {  // the kernel leaves its counters zero; a new buffer starts zero
      SF_CUDA_RETURN_IF_ERROR(
          cudaMemsetAsync(select_workspace_.as<void>(), 0, select_workspace_.bytes(), p.stream));
    }
    const int64_t lists = gqa_shared_ ? p.num_kv_heads : p.num_q_heads;
    SF_RETURN_IF_ERROR(offsets_.Reserve((lists + 1) * sizeof(int32_t)));
    SF_RETURN_IF_ERROR(pages_.Reserve(lists * (args.budget_pages + 1) * sizeof(int32_t)));
    AttentionParams select = p;
    select.workspace = select_workspace_.as<void>();
    select.workspace_bytes = select_workspace_.bytes();
    return cuda::QuestSelectPages(select, meta, args,
                                  {offsets_.as<int32_t>(), pages_.as<int32_t>()});
  }

  int64_t page_;
  bool gqa_shared_;
  int64_t token_budget_;
  std::vector<LayerPages> layers_;
  DeviceBuffer select_workspace_, offsets_, pages_;
};

// oracle_topk: the exact top-k rows per query head by q.k, GatheredDecode over them.
class OracleTopKDecode : public PerStepDecode {
 public:
  explicit OracleTopKDecode(int64_t top_k) : PerStepDecode("oracle_topk"), top_k_(top_k) {}

  absl::Status Attend(const AttentionCall& call, AttentionStats* stats,
                      double* estimation_flops) override {
    SF_ASSIGN_OR_RETURN(const int64_t length, StepLength(call));
    if (top_k_ > length) return TooLarge(method_, "top_k", top_k_, length, "the sequence");
    AttentionParams p = *call.device->params;
    SF_RETURN_IF_ERROR(scores_.Reserve(std::max<int64_t>(cuda::OracleTopKWorkspaceBytes(p), 1)));
    const int64_t lists = p.num_q_heads;
    SF_RETURN_IF_ERROR(offsets_.Reserve((lists + 1) * sizeof(int32_t)));
    SF_RETURN_IF_ERROR(rows_.Reserve(lists * top_k_ * sizeof(int32_t)));
    AttentionParams select = p;
    select.workspace = scores_.as<void>();
    select.workspace_bytes = scores_.bytes();
    SF_RETURN_IF_ERROR(timer_.Time(p.stream, [&]() {
      return cuda::OracleTopKSelectRows(select, top_k_,
                                        {offsets_.as<int32_t>(), rows_.as<int32_t>()});
    }));
    const cuda::ListHeads heads{p.num_q_heads};
    SF_ASSIGN_OR_RETURN(const AttentionParams decode, WithDecodeWorkspace(p, heads, top_k_));
    const cuda::RowSelection rows{heads, offsets_.as<int32_t>(), rows_.as<int32_t>()};
    SF_RETURN_IF_ERROR(cuda::GatheredDecode(decode, rows, top_k_));
    stats->pairs_computed += static_cast<double>(call.num_q_heads) * static_cast<double>(top_k_);
    stats->pairs_dense += model::DensePairs(call);
    // Choosing needs every causal q.k of the step.
    *estimation_flops += 2.0 * call.head_dim * call.num_q_heads * static_cast<double>(length);
    return absl::OkStatus();
  }

 private:
  int64_t top_k_;
  DeviceBuffer scores_, offsets_, rows_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<DeviceMethod>> MakeDevicePrefillMethod(const MethodChoice& method) {
  const std::string& name = method.name;
  if (name == "vertical_slash") {
    SF_ASSIGN_OR_RETURN(const auto p, kernels::VerticalSlashParamsFrom(method.params));
    return std::make_unique<LinePrefill<kernels::VerticalSlashParams>>(
        name, p, &cuda::VerticalSlashSelectSizes, &cuda::SelectVerticalSlash);
  }
  if (name == "streaming") {
    SF_ASSIGN_OR_RETURN(const auto p, kernels::StreamingParamsFrom(method.params));
    return std::make_unique<LinePrefill<kernels::StreamingParams>>(
        name, p, &cuda::StreamingSelectSizes, &cuda::SelectStreaming);
  }
  if (name == "flexprefill") {
    SF_ASSIGN_OR_RETURN(const auto p, kernels::FlexPrefillParamsFrom(method.params));
    if (p.original) return std::make_unique<FlexPrefillMixedPrefill>(p);
    return std::make_unique<LinePrefill<kernels::FlexPrefillParams>>(
        name, p, &cuda::FlexPrefillSelectSizes, &cuda::SelectFlexPrefillLines);
  }
  if (name == "block_sparse") {
    SF_ASSIGN_OR_RETURN(const auto p, kernels::BlockSparseParamsFrom(method.params));
    return std::make_unique<BlockPrefill<kernels::BlockSparseParams>>(
        name, p, &cuda::BlockSparseSelectSizes, &cuda::SelectBlockSparse);
  }
  if (name == "xattention") {
    SF_ASSIGN_OR_RETURN(const auto p, kernels::XAttentionParamsFrom(method.params));
    return std::make_unique<BlockPrefill<kernels::XAttentionParams>>(
        name, p, &cuda::XAttentionSelectSizes, &cuda::SelectXAttention);
  }
  if (name == "tri_shape") {
    SF_ASSIGN_OR_RETURN(const ParamReader r, Reader(method));
    SF_ASSIGN_OR_RETURN(const int64_t sink, r.Int("sink"));
    SF_ASSIGN_OR_RETURN(const int64_t last_q, r.Int("last_q"));
    SF_ASSIGN_OR_RETURN(const int64_t window, r.Int("window"));
    return std::make_unique<TriShapePrefill>(sink, last_q, window);
  }
  return nullptr;
}

absl::StatusOr<std::unique_ptr<DeviceMethod>> MakeDeviceDecodeMethod(const MethodChoice& method) {
  const std::string& name = method.name;
  if (name == "snapkv" || name == "ada_snapkv") {
    SF_ASSIGN_OR_RETURN(const ParamReader r, Reader(method));
    SF_ASSIGN_OR_RETURN(const kernels::SnapKvParams p, kernels::SnapKvParamsFrom(r));
    return std::make_unique<SnapKvDecode>(name, p);
  }
  if (name == "streaming") {
    SF_ASSIGN_OR_RETURN(const auto p, kernels::StreamingParamsFrom(method.params));
    return std::make_unique<StreamingDecode>(p);
  }
  if (name == "quest") {
    SF_ASSIGN_OR_RETURN(const ParamReader r, Reader(method));
    SF_ASSIGN_OR_RETURN(const int64_t page, r.Int("page"));
    SF_ASSIGN_OR_RETURN(const bool gqa_shared, r.Bool("gqa_shared"));
    SF_ASSIGN_OR_RETURN(const int64_t token_budget, r.Int("token_budget"));
    return std::make_unique<QuestDecode>(page, gqa_shared, token_budget);
  }
  if (name == "oracle_topk") {
    SF_ASSIGN_OR_RETURN(const ParamReader r, Reader(method));
    SF_ASSIGN_OR_RETURN(const int64_t top_k, r.Int("top_k"));
    return std::make_unique<OracleTopKDecode>(top_k);
  }
  return nullptr;
}

}  // namespace sf::worker
