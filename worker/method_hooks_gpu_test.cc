// Each method's hook (worker/method_hooks.h) in the bf16 CUDA engine on its device path
// (worker/method_hooks_cuda.h) against the same hook forced onto the host mirror (the
// CPU reference over the device cache's bf16 values): the same pairs and estimation FLOPs,
// logits within bf16 tolerance, the same kept rows for eviction methods, and the device
// engine recording "cuda" for both phases. Tiny random models, head_dim 64 and 128.
// Needs an sm_90 GPU (label gpu).
//
// Tolerances. Logits: the device kernels round the softmax probabilities to bf16 before
// P V (as FlashAttention does) and accumulate in float32, where the host form computes in
// double; on these tiny random models (init_std 0.2: peaked attention, large logits) that
// alone moves a logit row by a few percent through two layers. DenseFloor measures it for
// exactly dense attention (the engine's kernels against the dense hook on the host
// mirror) on the same model and prompt; a method's device form must stay within
// kFloorFactor of that floor (or kRowTolerance when that is larger). Per layer, in the
// device engine itself: the device selection against the CPU reference's on the same
// inputs, and the device attention against the double executor over the device's own
// lists (kKernelTolerance), so a wrong choice and a wrong kernel are told apart; and
// the device prefill against a host engine attending the device's own lists in double.
// Across engines: the two choose on their own inputs, equal at the first layer and later
// apart by the rounding above, and a top-k or mass choice is discontinuous: where the
// host engine's choice differs from the device's the logits compare two different
// selections, so the host mirror's logits are compared on the rows no differing choice
// reaches (SelectionsPart prints which layer parts, by how many rows, how near a tie).
// Selections: the device scores in float32 where the reference sums in double, so an
// entry whose score ties another's within float32 rounding may be chosen differently
// (kernels/cuda/attention/select.h); random tiny models rarely have such ties. Counts
// that a tie can change (pairs of top-k and mass-threshold selections, kept rows of
// Ada-SnapKV) may differ by kTieShare of their value; every difference is printed.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/str_cat.h"
#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/method_params.h"
#include "kernels/cpu/selection_internal.h"
#include "kernels/cpu/tensor.h"
#include "kernels/cuda/attention/params.h"
#include "worker/method_hooks.h"
#include "worker/model/engine.h"
#include "worker/model/test_util.h"
#include "worker/model/tiny_model.h"

namespace sf::worker {
namespace {

using model::AttentionBackend;
using model::AttentionCall;
using model::AttentionHook;
using model::AttentionStats;

constexpr double kRowTolerance = 2e-2;
constexpr double kFloorFactor = 2.0;
// The largest floor bf16 probabilities explain here: prefill measures ~0.05 on these models
// (the engine's Hopper prefill against its float32-probability reference kernels gives the
// same), twice that is a wrong kernel.
constexpr double kFloorBound = 0.1;
// Relative L2 error of one layer's attention output against the double executor over the
// same lists: the kernel tests measure ~2e-3 for bf16 P (kernels/cuda/attention).
constexpr double kKernelTolerance = 1e-2;
constexpr double kTieShare = 1e-2;
constexpr int kPromptTokens = 320;
constexpr int kDecodeSteps = 8;

uint16_t Bf16Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return static_cast<uint16_t>(u >> 16);  // exact: the mirror holds bf16 values
}

// Kept key rows per layer and KV head after AfterPrefill, as bf16 bits.
using KeptKeys = std::map<int, std::vector<std::vector<uint16_t>>>;

float Bf16ToFloat(uint16_t bits) {
  const uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

// `count` bf16 values at device address `src`, as floats.
absl::StatusOr<std::vector<float>> CopyBf16(const void* src, int64_t count) {
  std::vector<uint16_t> bits(static_cast<size_t>(count));
  if (cudaMemcpy(bits.data(), src, bits.size() * 2, cudaMemcpyDeviceToHost) != cudaSuccess) {
    return absl::InternalError("copying a device tensor");
  }
  std::vector<float> out(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) out[i] = Bf16ToFloat(bits[i]);
  return out;
}

// A selection given by its structure (the device's lists on the host): line patterns
// (columns, diagonal offsets) or key blocks per query block.
class StructureSelection : public kernels::Selection {
 public:
  StructureSelection(kernels::SelectionStructure s, int64_t q_offset)
      : s_(std::move(s)), q_offset_(q_offset) {}
  void Row(int64_t h, int64_t i, std::vector<kernels::KeyRange>* out) const override {
    out->clear();
    const int64_t pos = q_offset_ + i;
    std::vector<int64_t> keys;
    if (s_.block > 0) {
      const auto& list = s_.blocks[static_cast<size_t>(h)][static_cast<size_t>(pos / s_.block)];
      for (int64_t b : list) {
        for (int64_t k = b * s_.block; k < std::min((b + 1) * s_.block, pos + 1); ++k) {
          keys.push_back(k);
        }
      }
    } else {
      for (int64_t c : s_.columns[static_cast<size_t>(h)]) {
        if (c <= pos) keys.push_back(c);
      }
      for (int64_t d : s_.offsets[static_cast<size_t>(h)]) {
        if (d <= pos) keys.push_back(pos - d);
      }
    }
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    for (int64_t k : keys) {
      if (!out->empty() && out->back().end == k) {
        out->back().end = k + 1;
      } else {
        out->push_back({k, k + 1});
      }
    }
  }

 private:
  kernels::SelectionStructure s_;
  int64_t q_offset_;
};

// Entries (columns, offsets, or key blocks) in one structure and not the other, and the
// entries of `want`.
std::pair<int64_t, int64_t> Differing(const kernels::SelectionStructure& got,
                                      const kernels::SelectionStructure& want) {
  int64_t differ = 0, total = 0;
  auto compare = [&](const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
    std::vector<int64_t> sym;
    std::set_symmetric_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(sym));
    differ += static_cast<int64_t>(sym.size());
    total += static_cast<int64_t>(b.size());
  };
  if (want.block > 0) {
    for (size_t h = 0; h < want.blocks.size(); ++h) {
      for (size_t b = 0; b < want.blocks[h].size(); ++b) {
        compare(h < got.blocks.size() && b < got.blocks[h].size() ? got.blocks[h][b]
                                                                  : std::vector<int64_t>{},
                want.blocks[h][b]);
      }
    }
    return {differ, total};
  }
  for (size_t h = 0; h < want.columns.size(); ++h) {
    compare(h < got.columns.size() ? got.columns[h] : std::vector<int64_t>{}, want.columns[h]);
    compare(h < got.offsets.size() ? got.offsets[h] : std::vector<int64_t>{}, want.offsets[h]);
  }
  return {differ, total};
}

// How far from a tie the entries the two choices disagree on are, by the reference's own
// scores (`score`: entry -> score of one list): the best score the device left out minus
// the worst it took instead, relative to that best score (`boundary`) and to the list's
// total score (`mass`). Near 0: a near-tie that float32 sums of bf16 probabilities may
// order either way; large: a real difference. 0 when one side only has more entries.
struct Gap {
  double boundary = 0;
  double mass = 0;
};
Gap TieGap(const std::vector<int64_t>& got, const std::vector<int64_t>& want,
           const std::vector<double>& score) {
  std::vector<int64_t> missed, extra;
  std::set_difference(want.begin(), want.end(), got.begin(), got.end(), std::back_inserter(missed));
  std::set_difference(got.begin(), got.end(), want.begin(), want.end(), std::back_inserter(extra));
  if (missed.empty() || extra.empty()) return {};
  auto at = [&](int64_t i) {
    return i >= 0 && i < static_cast<int64_t>(score.size()) ? score[static_cast<size_t>(i)] : 0.0;
  };
  double best_missed = -1e300, worst_extra = 1e300, total = 0;
  for (int64_t i : missed) best_missed = std::max(best_missed, at(i));
  for (int64_t i : extra) worst_extra = std::min(worst_extra, at(i));
  for (double x : score) total += std::abs(x);
  const double gap = best_missed - worst_extra;
  return {gap / std::max(std::abs(best_missed), 1e-300), gap / std::max(total, 1e-300)};
}

Gap Larger(Gap a, Gap b) { return {std::max(a.boundary, b.boundary), std::max(a.mass, b.mass)}; }

// The largest TieGap over the lists of a line method (line mass of the last `last_q`
// rows) or of block_sparse (pooled block scores); -1 for other methods.
Gap LargestTieGap(const kernels::SelectionStructure& got, const kernels::SelectionStructure& want,
                  const kernels::AttentionInput& in, const MethodChoice& method) {
  Gap gap;
  if (method.name == "vertical_slash" || method.name == "flexprefill") {
    const auto it = method.params.find("last_q");
    if (it == method.params.end() || want.block > 0) return {-1, -1};
    const int64_t last_q = std::min<int64_t>(std::get<int64_t>(it->second), in.q.len);
    const kernels::internal::LineMass mass = kernels::internal::ComputeLineMass(in, last_q);
    for (size_t h = 0; h < want.columns.size() && h < got.columns.size(); ++h) {
      gap = Larger(gap, TieGap(got.columns[h], want.columns[h], mass.columns[h]));
      gap = Larger(gap, TieGap(got.offsets[h], want.offsets[h], mass.diagonals[h]));
    }
    return gap;
  }
  if (method.name != "block_sparse" || want.block <= 0 || in.q_offset != 0) return {-1, -1};
  const int64_t block = want.block, blocks = (in.k.len + block - 1) / block;
  for (size_t h = 0; h < want.blocks.size() && h < got.blocks.size(); ++h) {
    const int64_t kvh = static_cast<int64_t>(h) / in.group();
    for (int64_t qb = 0; qb < static_cast<int64_t>(want.blocks[h].size()); ++qb) {
      if (qb >= static_cast<int64_t>(got.blocks[h].size())) break;
      const std::vector<double> pq = kernels::internal::MeanRows(
          in.q, static_cast<int64_t>(h), qb * block, std::min((qb + 1) * block, in.q.len));
      std::vector<double> score(static_cast<size_t>(qb + 1));
      for (int64_t kb = 0; kb <= qb && kb < blocks; ++kb) {
        score[static_cast<size_t>(kb)] = kernels::internal::DotD(
            pq, kernels::internal::MeanRows(in.k, kvh, kb * block,
                                            std::min((kb + 1) * block, in.k.len)));
      }
      gap = Larger(gap, TieGap(got.blocks[h][static_cast<size_t>(qb)],
                               want.blocks[h][static_cast<size_t>(qb)], score));
    }
  }
  return gap;
}

// Relative L2 error of `got` against `want` ([Hq, Lq, D] both), worst over heads.
double WorstHeadError(const kernels::Tensor& got, const kernels::Tensor& want) {
  double worst = 0;
  for (int64_t h = 0; h < want.heads; ++h) {
    double diff = 0, norm = 1e-30;
    for (int64_t i = 0; i < want.len; ++i) {
      const float* g = got.Row(h, i);
      const float* w = want.Row(h, i);
      for (int64_t d = 0; d < want.dim; ++d) {
        if (!std::isfinite(g[d])) return 1e9;
        diff += (g[d] - w[d]) * (g[d] - w[d]);
        norm += static_cast<double>(w[d]) * w[d];
      }
    }
    worst = std::max(worst, std::sqrt(diff / norm));
  }
  return worst;
}

// One prefill layer's attention as an engine saw it: Q [Hq, Lq, D] and K/V [Hkv, Lk, D]
// (the bf16 values, as floats) and the selection it attended: the device's lists in the
// device engine, the CPU reference's choice on these inputs in the host one.
struct LayerSeen {
  kernels::Tensor q, k, v;
  int64_t q_offset = 0;
  std::shared_ptr<const kernels::Selection> selection;
  kernels::SelectionStructure lists;  // the selection's structure (empty where it has none)
  kernels::AttentionInput Input() const { return {q.View(), k.View(), v.View(), q_offset}; }
};

// Query rows whose key sets differ between two selections over the same rows: the
// comparison every selection shape supports (streaming's sink and window, say, have no
// line lists in the CPU reference's structure).
struct RowDiff {
  int64_t rows = 0;               // (head, row) pairs compared
  int64_t differing = 0;          // of those, with a different key set
  int64_t first = -1;             // the lowest query row differing in any head, -1 if none
  std::vector<bool> any_head;     // per query row: differs in some head
  std::vector<int64_t> per_head;  // differing rows of each head
  std::string PerHead() const {
    std::string out;
    for (int64_t n : per_head) absl::StrAppend(&out, out.empty() ? "" : "/", n);
    return out;
  }
};
RowDiff DifferingRows(const kernels::Selection& a, const kernels::Selection& b, int64_t heads,
                      int64_t rows) {
  RowDiff d;
  d.any_head.assign(static_cast<size_t>(rows), false);
  d.per_head.assign(static_cast<size_t>(heads), 0);
  std::vector<kernels::KeyRange> ra, rb;
  // Ranges are sorted and disjoint but may touch: the same keys in fewest ranges.
  auto merge_touching = [](std::vector<kernels::KeyRange>* r) {
    size_t n = 0;
    for (const kernels::KeyRange& x : *r) {
      if (n > 0 && (*r)[n - 1].end >= x.begin) {
        (*r)[n - 1].end = std::max((*r)[n - 1].end, x.end);
      } else {
        (*r)[n++] = x;
      }
    }
    r->resize(n);
  };
  auto same = [&] {
    merge_touching(&ra);
    merge_touching(&rb);
    return ra.size() == rb.size() &&
           std::equal(ra.begin(), ra.end(), rb.begin(), [](const auto& x, const auto& y) {
             return x.begin == y.begin && x.end == y.end;
           });
  };
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t i = 0; i < rows; ++i) {
      a.Row(h, i, &ra);
      b.Row(h, i, &rb);
      ++d.rows;
      if (same()) continue;
      ++d.differing;
      ++d.per_head[static_cast<size_t>(h)];
      d.any_head[static_cast<size_t>(i)] = true;
      if (d.first < 0 || i < d.first) d.first = i;
    }
  }
  return d;
}

// Relative L2 difference of two tensors of one shape (0 when bitwise equal).
double RelativeDifference(const kernels::Tensor& a, const kernels::Tensor& b) {
  if (a.data.size() != b.data.size()) return 1e9;
  double diff = 0, norm = 1e-30;
  for (size_t i = 0; i < a.data.size(); ++i) {
    diff += (static_cast<double>(a.data[i]) - b.data[i]) * (a.data[i] - b.data[i]);
    norm += static_cast<double>(b.data[i]) * b.data[i];
  }
  return std::sqrt(diff / norm);
}

// The CPU reference's choice of `method` on `input`.
absl::StatusOr<kernels::SelectionResult> ReferenceSelection(const MethodChoice& method,
                                                            const kernels::AttentionInput& input) {
  SF_ASSIGN_OR_RETURN(const kernels::MethodParams params,
                      kernels::ParseMethodParams(method.name, method.params));
  return kernels::PrefillSelect(method.name, params, input);
}

// One prefill layer in the device engine: how far its device selection is from the CPU
// reference's on the same inputs, and how far the device attention is from the double
// executor over the device's own lists (the kernel alone) and over the reference's.
struct LayerCheck {
  int layer = 0;
  RowDiff rows;                        // query rows whose keys differ from the reference's
  int64_t differing = 0, entries = 0;  // list entries, where the reference has lists
  Gap tie_gap;                         // LargestTieGap when the selections differ
  double kernel_error = 0, reference_error = 0;
};

// Reads the device engine's layer (its inputs, output and `device_lists`) and measures
// LayerCheck; *seen receives the inputs and the device's selection.
absl::StatusOr<LayerCheck> CheckLayer(const AttentionCall& call,
                                      const kernels::SelectionStructure& device_lists,
                                      const MethodChoice& method, LayerSeen* seen) {
  const cuda::AttentionParams& p = *call.device->params;
  SF_RETURN_IF_ERROR(cudaStreamSynchronize(p.stream) == cudaSuccess
                         ? absl::OkStatus()
                         : absl::InternalError("synchronising"));
  const int64_t lq = p.num_queries, lk = p.max_kv_length, d = p.head_dim;
  SF_ASSIGN_OR_RETURN(std::vector<float> q, CopyBf16(p.q, lq * p.q_row_stride));
  SF_ASSIGN_OR_RETURN(std::vector<float> k, CopyBf16(p.k, p.num_kv_heads * p.kv_head_stride));
  SF_ASSIGN_OR_RETURN(std::vector<float> v, CopyBf16(p.v, p.num_kv_heads * p.kv_head_stride));
  SF_ASSIGN_OR_RETURN(std::vector<float> out, CopyBf16(p.out, lq * p.out_row_stride));
  // Owning [H, L, D] copies: the same layout as the host engine's view (HostLayer).
  auto gather = [d](const std::vector<float>& src, int64_t heads, int64_t len, int64_t head_stride,
                    int64_t row_stride) {
    kernels::Tensor t(heads, len, d);
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t i = 0; i < len; ++i) {
        const float* row = src.data() + h * head_stride + i * row_stride;
        std::copy(row, row + d, t.Row(h, i));
      }
    }
    return t;
  };
  seen->q = gather(q, p.num_q_heads, lq, p.q_head_stride, p.q_row_stride);
  seen->k = gather(k, p.num_kv_heads, lk, p.kv_head_stride, p.kv_row_stride);
  seen->v = gather(v, p.num_kv_heads, lk, p.kv_head_stride, p.kv_row_stride);
  seen->q_offset = lk - lq;
  const kernels::AttentionInput input = seen->Input();
  const kernels::Tensor device_out =
      gather(out, p.num_q_heads, lq, p.out_head_stride, p.out_row_stride);
  SF_ASSIGN_OR_RETURN(const kernels::SelectionResult reference, ReferenceSelection(method, input));
  const kernels::SelectionStructure want = kernels::DescribeSelection(*reference.selection);
  seen->lists = device_lists;
  seen->selection = std::make_shared<StructureSelection>(device_lists, input.q_offset);
  LayerCheck check;
  check.layer = call.layer;
  check.rows = DifferingRows(*seen->selection, *reference.selection, p.num_q_heads, lq);
  std::tie(check.differing, check.entries) = Differing(device_lists, want);
  if (check.differing > 0) check.tie_gap = LargestTieGap(device_lists, want, input, method);
  check.kernel_error =
      WorstHeadError(device_out, kernels::AttendSelected(input, seen->selection).output);
  check.reference_error =
      WorstHeadError(device_out, kernels::AttendSelected(input, reference.selection).output);
  return check;
}

// The host engine's view of a prefill layer (the hook's call on the host mirror) and the
// CPU reference's choice on it, which is what the host form of the hook attends.
absl::StatusOr<LayerSeen> HostLayer(const AttentionCall& call, const MethodChoice& method) {
  LayerSeen seen;
  const int64_t len = call.cache->length(call.layer, 0), d = call.head_dim;
  seen.q = kernels::Tensor(call.num_q_heads, call.num_queries, d);
  for (int64_t h = 0; h < call.num_q_heads; ++h) {
    for (int64_t i = 0; i < call.num_queries; ++i) {
      const float* row = call.q + i * call.q_row_stride + h * d;
      std::copy(row, row + d, seen.q.Row(h, i));
    }
  }
  seen.k = kernels::Tensor(call.num_kv_heads, len, d);
  seen.v = kernels::Tensor(call.num_kv_heads, len, d);
  for (int h = 0; h < call.num_kv_heads; ++h) {
    if (call.cache->length(call.layer, h) != len) {
      return absl::FailedPreconditionError("unequal cache lengths in prefill");
    }
    const float* keys = call.cache->keys(call.layer, h);
    const float* values = call.cache->values(call.layer, h);
    std::copy(keys, keys + len * d, seen.k.Row(h, 0));
    std::copy(values, values + len * d, seen.v.Row(h, 0));
  }
  seen.q_offset = len - call.num_queries;
  SF_ASSIGN_OR_RETURN(const kernels::SelectionResult reference,
                      ReferenceSelection(method, seen.Input()));
  seen.selection = reference.selection;
  seen.lists = kernels::DescribeSelection(*reference.selection);
  return seen;
}

// A prefill hook for the host mirror that attends, in double, exactly the lists the
// device chose at each layer (recorded by a Probe in the device engine): the device
// pipeline against a reference that made the same choice.
class ReplayPrefill : public AttentionHook {
 public:
  ReplayPrefill(std::string name, const std::map<int, kernels::SelectionStructure>* lists)
      : name_(std::move(name)), lists_(lists) {}
  std::string Name() const override { return name_; }
  absl::Status Attend(const AttentionCall& call, AttentionStats* stats) override {
    const auto it = lists_->find(call.layer);
    if (it == lists_->end()) return absl::NotFoundError("no device lists for this layer");
    const int64_t len = call.cache->length(call.layer, 0), d = call.head_dim;
    kernels::Tensor k(call.num_kv_heads, len, d), v(call.num_kv_heads, len, d);
    for (int h = 0; h < call.num_kv_heads; ++h) {
      const float* keys = call.cache->keys(call.layer, h);
      const float* values = call.cache->values(call.layer, h);
      std::copy(keys, keys + len * d, k.Row(h, 0));
      std::copy(values, values + len * d, v.Row(h, 0));
    }
    kernels::AttentionInput input;
    input.q = {call.q, call.num_q_heads, call.num_queries, d, d, call.q_row_stride};
    input.k = k.View();
    input.v = v.View();
    input.q_offset = len - call.num_queries;
    const kernels::AttentionResult result = kernels::AttendSelected(
        input, std::make_shared<StructureSelection>(it->second, input.q_offset));
    for (int j = 0; j < call.num_queries; ++j) {
      for (int h = 0; h < call.num_q_heads; ++h) {
        const float* src = result.output.Row(h, j);
        std::copy(src, src + d, call.out + j * call.out_row_stride + int64_t{h} * d);
      }
    }
    stats->pairs_computed += result.pairs_computed;
    stats->pairs_dense += result.pairs_causal;
    return absl::OkStatus();
  }

 private:
  std::string name_;
  const std::map<int, kernels::SelectionStructure>* lists_;
};

// Forwards to a method hook; with allow_device false it never offers the device path, so
// the engine runs the hook on the host mirror. Records the cache's keys after prefill.
class Probe : public AttentionHook {
 public:
  Probe(MethodHook* inner, bool allow_device) : inner_(inner), allow_device_(allow_device) {}
  std::string Name() const override { return inner_->Name(); }
  absl::Status Attend(const AttentionCall& call, AttentionStats* stats) override {
    if (check_method_ != nullptr && call.phase == Phase::kPrefill) {
      SF_ASSIGN_OR_RETURN(LayerSeen layer, HostLayer(call, *check_method_));
      seen[call.layer] = std::move(layer);
    }
    return inner_->Attend(call, stats);
  }
  absl::Status AfterPrefill(const AttentionCall& call) override {
    SF_RETURN_IF_ERROR(inner_->AfterPrefill(call));
    auto& heads = kept[call.layer];
    heads.assign(static_cast<size_t>(call.num_kv_heads), {});
    for (int h = 0; h < call.num_kv_heads; ++h) {
      const float* k = call.cache->keys(call.layer, h);
      const int64_t n = call.cache->length(call.layer, h) * call.head_dim;
      for (int64_t i = 0; i < n; ++i) heads[static_cast<size_t>(h)].push_back(Bf16Bits(k[i]));
    }
    return absl::OkStatus();
  }
  bool IsExactDense() const override { return inner_->IsExactDense() && !force_host_; }
  bool SupportsDevice(const AttentionCall& call) const override {
    return allow_device_ && inner_->SupportsDevice(call);
  }
  // Runs even an exactly dense hook's host form on the host mirror (the engine's own
  // dense kernels are skipped).
  void ForceHost() { force_host_ = true; }
  absl::Status AttendOnDevice(const AttentionCall& call, AttentionStats* stats) override {
    ++device_calls;
    SF_RETURN_IF_ERROR(inner_->AttendOnDevice(call, stats));
    if (check_method_ == nullptr || call.phase != Phase::kPrefill) return absl::OkStatus();
    absl::StatusOr<kernels::SelectionStructure> lists = inner_->LastDeviceSelection();
    if (!lists.ok()) return absl::OkStatus();  // no lists to check (tri_shape, mixed)
    LayerSeen layer;
    SF_ASSIGN_OR_RETURN(LayerCheck check, CheckLayer(call, *lists, *check_method_, &layer));
    layer_checks.push_back(check);
    lists_by_layer[call.layer] = *std::move(lists);
    seen[call.layer] = std::move(layer);
    return absl::OkStatus();
  }
  // Records each prefill layer's inputs and selection (`seen`) as the CPU reference of
  // `method` defines it: on the device, the device's lists, checked against the
  // reference on the same inputs along with the attention (CheckLayer); on the host, the
  // reference's choice (HostLayer).
  void CheckLayers(const MethodChoice* method) { check_method_ = method; }
  absl::Status AfterPrefillOnDevice(const AttentionCall& call) override {
    SF_RETURN_IF_ERROR(inner_->AfterPrefillOnDevice(call));
    auto& heads = kept[call.layer];
    heads.assign(static_cast<size_t>(call.num_kv_heads), {});
    const cudaStream_t stream = call.device->params->stream;
    for (int h = 0; h < call.num_kv_heads; ++h) {
      const int64_t n = call.device->host_kv_lengths[h] * call.head_dim;
      auto& rows = heads[static_cast<size_t>(h)];
      rows.resize(static_cast<size_t>(n));
      const auto* base = static_cast<const uint16_t*>(call.device->keys) +
                         h * call.device->capacity * call.head_dim;
      if (cudaMemcpyAsync(rows.data(), base, static_cast<size_t>(n) * 2, cudaMemcpyDeviceToHost,
                          stream) != cudaSuccess ||
          cudaStreamSynchronize(stream) != cudaSuccess) {
        return absl::InternalError("reading the kept keys");
      }
    }
    return absl::OkStatus();
  }
  bool WantsPageBounds() const override { return inner_->WantsPageBounds(); }

  KeptKeys kept;
  int device_calls = 0;
  std::vector<LayerCheck> layer_checks;
  std::map<int, kernels::SelectionStructure> lists_by_layer;  // the device's, per layer
  std::map<int, LayerSeen> seen;                              // per prefill layer, with CheckLayers

 private:
  MethodHook* inner_;
  bool allow_device_;
  bool force_host_ = false;
  const MethodChoice* check_method_ = nullptr;
};

MethodChoice Method(const std::string& name, ParamMap params) {
  MethodChoice m;
  m.name = name;
  m.params = std::move(params);
  return m;
}

struct Case {
  std::string name;
  MethodChoice prefill;
  MethodChoice decode;
  bool counts_may_tie = false;  // pairs / FLOPs / kept rows of a top-k or mass choice
};

std::vector<Case> Cases() {
  const MethodChoice dense = Method("dense", {});
  const ParamMap snap = {{"window", int64_t{32}},
                         {"pool", int64_t{5}},
                         {"keep_first", int64_t{4}},
                         {"keep_last", int64_t{16}},
                         {"token_capacity", int64_t{96}}};
  ParamMap ada = snap;
  ada["floor"] = 0.2;
  const MethodChoice streaming =
      Method("streaming", {{"sink", int64_t{4}}, {"window", int64_t{64}}});
  auto flex = [](const std::string& variant, int64_t block) {
    return Method("flexprefill", {{"gamma", 0.9},
                                  {"tau", 0.3},
                                  {"min_budget", int64_t{32}},
                                  {"last_q", int64_t{64}},
                                  {"block", block},
                                  {"variant", variant}});
  };
  return {
      {"streaming_prefill", streaming, dense},
      {"vertical_slash",
       Method("vertical_slash", {{"last_q", int64_t{64}},
                                 {"sink", int64_t{4}},
                                 {"local", int64_t{16}},
                                 {"verticals", int64_t{32}},
                                 {"slashes", int64_t{32}}}),
       dense, true},
      {"flexprefill_study", flex("study", 128), dense, true},
      {"flexprefill_original", flex("original", 64), dense, true},
      {"block_sparse",
       Method("block_sparse", {{"block", int64_t{16}}, {"block_budget", int64_t{6}}}), dense, true},
      {"xattention",
       Method("xattention", {{"block", int64_t{64}}, {"stride", int64_t{8}}, {"threshold", 0.9}}),
       dense, true},
      {"tri_shape",
       Method("tri_shape",
              {{"sink", int64_t{4}}, {"last_q", int64_t{32}}, {"window", int64_t{48}}}),
       dense},
      {"snapkv", dense, Method("snapkv", snap), false},
      {"ada_snapkv", dense, Method("ada_snapkv", ada), true},
      {"streaming_decode", dense, streaming},
      {"quest_shared", dense,
       Method("quest",
              {{"page", int64_t{16}}, {"gqa_shared", true}, {"token_budget", int64_t{64}}})},
      {"quest_per_head", dense,
       Method("quest",
              {{"page", int64_t{16}}, {"gqa_shared", false}, {"token_budget", int64_t{64}}})},
      {"oracle_topk", dense, Method("oracle_topk", {{"top_k", int64_t{48}}})},
      {"vertical_slash_then_snapkv",
       Method("vertical_slash", {{"last_q", int64_t{64}},
                                 {"sink", int64_t{4}},
                                 {"local", int64_t{16}},
                                 {"verticals", int64_t{32}},
                                 {"slashes", int64_t{32}}}),
       Method("snapkv", snap), true},
  };
}

model::TinyModelOptions Tiny(int64_t head_dim) {
  model::TinyModelOptions o;
  o.architecture = model::Architecture::kQwen2;
  o.dtype = model::DType::kBF16;
  o.vocab_size = 96;
  o.num_layers = 2;
  o.intermediate_size = 96;
  o.init_std = 0.2;
  if (head_dim == 64) {  // 4 query heads on 2 KV heads
    o.hidden_size = 256;
    o.num_heads = 4;
    o.num_kv_heads = 2;
  } else {  // 128: 4 query heads on 1 KV head
    o.hidden_size = 512;
    o.num_heads = 4;
    o.num_kv_heads = 1;
  }
  return o;
}

std::vector<TokenId> Prompt(int n, int vocab) {
  std::vector<TokenId> t;
  for (int i = 0; i < n; ++i) t.push_back(static_cast<TokenId>((i * 37 + 11) % vocab));
  return t;
}

// The worst relative L2 error of a logit row of `got` against `want`, over the rows
// `rows` marks (every row when empty).
double WorstRowError(const std::vector<float>& got, const std::vector<float>& want, int64_t vocab,
                     const std::vector<bool>& rows = {}) {
  EXPECT_EQ(got.size(), want.size());
  double worst = 0;
  for (size_t r = 0; r < std::min(got.size(), want.size()) / static_cast<size_t>(vocab); ++r) {
    if (!rows.empty() && (r >= rows.size() || !rows[r])) continue;
    double diff = 0, norm = 1e-30;
    for (int64_t i = 0; i < vocab; ++i) {
      const double g = got[r * vocab + i], w = want[r * vocab + i];
      if (!std::isfinite(g)) return 1e9;
      diff += (g - w) * (g - w);
      norm += w * w;
    }
    worst = std::max(worst, std::sqrt(diff / norm));
  }
  return worst;
}

// Equal, or (when a tie may change it) within kTieShare; prints any difference.
void ExpectCount(const char* what, double device, double host, bool may_tie) {
  if (device != host) {
    std::printf("  %s differs: device %.17g host %.17g\n", what, device, host);
  }
  if (may_tie) {
    EXPECT_LE(std::abs(device - host), kTieShare * std::abs(host)) << what;
  } else {
    EXPECT_EQ(device, host) << what;
  }
}

// Kept rows: the same lengths per head (Ada-SnapKV: within kTieShare of the total), and
// the same key rows at the same places. `first_layer_only`: later layers' keys differ in
// their last bits when the prefill method itself ran on two paths.
void ExpectSameKept(const KeptKeys& device, const KeptKeys& host, int64_t head_dim, bool may_tie,
                    bool first_layer_only) {
  ASSERT_EQ(device.size(), host.size());
  int64_t rows = 0, differing = 0;
  for (const auto& [layer, heads] : host) {
    if (first_layer_only && layer > 0) continue;
    const auto& got = device.at(layer);
    ASSERT_EQ(got.size(), heads.size());
    for (size_t h = 0; h < heads.size(); ++h) {
      const size_t n = std::max(got[h].size(), heads[h].size()) / static_cast<size_t>(head_dim);
      rows += static_cast<int64_t>(n);
      for (size_t r = 0; r < n; ++r) {
        const size_t at = r * static_cast<size_t>(head_dim);
        const bool same =
            at + head_dim <= got[h].size() && at + head_dim <= heads[h].size() &&
            std::equal(got[h].begin() + at, got[h].begin() + at + head_dim, heads[h].begin() + at);
        differing += same ? 0 : 1;
      }
      if (!may_tie) {
        EXPECT_EQ(got[h].size(), heads[h].size()) << "layer " << layer << " head " << h;
      }
    }
  }
  std::printf("  kept rows: %lld, %lld differ\n", static_cast<long long>(rows),
              static_cast<long long>(differing));
  EXPECT_LE(differing, may_tie ? static_cast<int64_t>(kTieShare * rows) : 0);
}

// Compares the two engines' prefill layer by layer (each Probe's `seen`): the inputs,
// which are equal at the first layer (both engines ran the same kernels on the same
// prompt) and later differ by the rounding of the attention before (double on the host,
// bf16 probabilities on the device), and the selections each attended. Each engine's
// selection is the CPU reference's choice on its own inputs (CheckLayer asserts it for
// the device, HostLayer makes it for the host), so where the two differ the method's
// choice, a discontinuous function of its inputs, flipped on that rounding: the tie gaps
// printed say how near its boundary. The logits a differing choice reaches compare
// different methods, not the device form with the host form. Returns the prompt rows it
// cannot reach: below the first differing row of every layer before the last (a
// differing row changes its hidden state, which later layers' keys carry to the rows
// after it) and alike in every head at the last. Empty (compare every row) when the
// selections coincide everywhere or a layer was not recorded on both sides.
std::vector<bool> SelectionsPart(const std::map<int, LayerSeen>& device,
                                 const std::map<int, LayerSeen>& host, const MethodChoice& method,
                                 int64_t prompt_rows) {
  if (device.empty()) return {};
  if (device.size() != host.size()) {
    std::printf("  layers recorded: device %zu, host %zu; comparing every row\n", device.size(),
                host.size());
    return {};
  }
  std::vector<bool> alike(static_cast<size_t>(prompt_rows), true);
  int64_t reach_from = prompt_rows;  // rows from here may see a differing row's hidden state
  bool parted = false;
  const int first = device.begin()->first, last = device.rbegin()->first;
  for (const auto& [layer, d] : device) {
    const auto it = host.find(layer);
    if (it == host.end()) {
      std::printf("  layer %d: not recorded on the host; comparing every row\n", layer);
      return {};
    }
    const LayerSeen& h = it->second;
    const bool same_shape = d.q.heads == h.q.heads && d.q.len == h.q.len &&
                            d.k.heads == h.k.heads && d.k.len == h.k.len &&
                            d.q_offset == h.q_offset;
    EXPECT_TRUE(same_shape) << "layer " << layer
                            << ": the engines' attention calls differ in shape";
    if (!same_shape) return {};
    const double dq = RelativeDifference(h.q, d.q), dk = RelativeDifference(h.k, d.k),
                 dv = RelativeDifference(h.v, d.v);
    if (layer == first) {
      // The hooks' inputs on the host mirror are the device's bf16 values.
      EXPECT_EQ(dq + dk + dv, 0.0) << "layer " << layer << ": the host mirror's inputs";
    }
    const RowDiff rows = DifferingRows(*d.selection, *h.selection, d.q.heads, d.q.len);
    std::printf(
        "  layer %d: host engine's inputs vs the device's: q %.3g, k %.3g, v %.3g; its selection "
        "differs from the device's in %lld of %lld rows",
        layer, dq, dk, dv, static_cast<long long>(rows.differing),
        static_cast<long long>(rows.rows));
    if (rows.differing > 0) {
      parted = true;
      const auto [entries, total] = Differing(d.lists, h.lists);
      const Gap by_host = LargestTieGap(d.lists, h.lists, h.Input(), method);
      const Gap by_device = LargestTieGap(h.lists, d.lists, d.Input(), method);
      std::printf(
          " (first row %lld; rows per head %s; %lld of %lld entries; tie gap by the host's "
          "scores %.3g of the boundary, %.3g of the mass; by the device's %.3g, %.3g)",
          static_cast<long long>(rows.first), rows.PerHead().c_str(),
          static_cast<long long>(entries), static_cast<long long>(total), by_host.boundary,
          by_host.mass, by_device.boundary, by_device.mass);
    }
    std::printf("\n");
    for (int64_t i = 0; i < d.q.len; ++i) {
      const int64_t row = d.q_offset + i;
      if (rows.any_head[static_cast<size_t>(i)] && row < prompt_rows) {
        alike[static_cast<size_t>(row)] = false;
      }
    }
    if (layer != last && rows.first >= 0) {
      reach_from = std::min(reach_from, d.q_offset + rows.first);
    }
  }
  if (!parted) return {};
  for (int64_t r = reach_from; r < prompt_rows; ++r) alike[static_cast<size_t>(r)] = false;
  std::printf("  the selections part: %lld of %lld prompt rows left alike\n",
              static_cast<long long>(absl::c_count(alike, true)),
              static_cast<long long>(prompt_rows));
  return alike;
}

struct HookCase {
  int64_t head_dim;
  Case method;
};

std::vector<HookCase> HookCases() {
  std::vector<HookCase> all;
  for (int64_t head_dim : {64, 128}) {
    for (const Case& c : Cases()) all.push_back({head_dim, c});
  }
  return all;
}

class MethodHooksOnDevice : public ::testing::TestWithParam<HookCase> {};

// Worst logit row errors of the device engine against the host one: prefill, and the
// decode steps along the host's greedy path.
struct RowErrors {
  double prefill = 0;
  double decode = 0;
};

// `device_prefill` and `host_prefill`, when given, receive the engines' prefill logits.
absl::StatusOr<RowErrors> CompareEngines(model::Engine& device, model::Engine& host,
                                         std::vector<float>* device_prefill = nullptr,
                                         std::vector<float>* host_prefill = nullptr) {
  const int64_t vocab = host.config().vocab_size;
  const auto prompt = Prompt(kPromptTokens, static_cast<int>(vocab));
  SF_ASSIGN_OR_RETURN(std::vector<float> want, host.Prefill(prompt, true));
  SF_ASSIGN_OR_RETURN(std::vector<float> got, device.Prefill(prompt, true));
  if (device_prefill != nullptr) *device_prefill = got;
  if (host_prefill != nullptr) *host_prefill = want;
  RowErrors e;
  e.prefill = WorstRowError(got, want, vocab);
  for (int step = 0; step < kDecodeSteps; ++step) {
    const TokenId next = model::ArgMax(absl::MakeSpan(want).subspan(want.size() - vocab));
    SF_ASSIGN_OR_RETURN(want, host.Decode(next));
    SF_ASSIGN_OR_RETURN(got, device.Decode(next));
    e.decode = std::max(e.decode, WorstRowError(got, want, vocab));
  }
  return e;
}

model::EngineOptions Bf16Cuda() {
  model::EngineOptions o;
  o.backend = model::BackendKind::kCuda;
  o.dtype = model::ComputeDType::kBfloat16;
  return o;
}

// The floor of the comparison: exactly dense attention on the engine's kernels against
// the dense hook's host form on the host mirror, same model and prompt (measured once per
// head dim).
absl::StatusOr<RowErrors> DenseFloor(int64_t head_dim) {
  static std::map<int64_t, RowErrors>* floors = new std::map<int64_t, RowErrors>();
  if (auto it = floors->find(head_dim); it != floors->end()) return it->second;
  const std::string dir = model::testing::FreshTestDir(absl::StrCat("floor", head_dim));
  SF_RETURN_IF_ERROR(model::WriteTinyModel(dir, Tiny(head_dim)));
  SF_ASSIGN_OR_RETURN(auto device, model::CreateEngine(dir, Bf16Cuda()));
  SF_ASSIGN_OR_RETURN(auto host, model::CreateEngine(dir, Bf16Cuda()));
  const MethodChoice dense = Method("dense", {});
  SF_ASSIGN_OR_RETURN(auto dev_prefill, MakePrefillHook(dense));
  SF_ASSIGN_OR_RETURN(auto dev_decode, MakeDecodeHook(dense));
  SF_ASSIGN_OR_RETURN(auto host_prefill, MakePrefillHook(dense));
  SF_ASSIGN_OR_RETURN(auto host_decode, MakeDecodeHook(dense));
  Probe dp(dev_prefill.get(), true), dd(dev_decode.get(), true);
  Probe hp(host_prefill.get(), false), hd(host_decode.get(), false);
  hp.ForceHost();
  hd.ForceHost();
  device->SetAttention(&dp, &dd);
  host->SetAttention(&hp, &hd);
  SF_ASSIGN_OR_RETURN(const RowErrors floor, CompareEngines(*device, *host));
  std::printf(
      "[hd%lld dense floor] engine kernels (%s) vs host double: prefill %.3g, decode %.3g\n",
      static_cast<long long>(head_dim), device->counters().attention_kernels.c_str(), floor.prefill,
      floor.decode);
  (*floors)[head_dim] = floor;
  return floor;
}

TEST_P(MethodHooksOnDevice, MatchesSameHookOnHostMirror) {
  const int64_t head_dim = GetParam().head_dim;
  const Case& c = GetParam().method;
  SF_ASSERT_OK_AND_ASSIGN(const RowErrors measured, DenseFloor(head_dim));
  // A floor above kFloorBound means the dense kernels themselves disagree with the
  // reference (DenseFloor_IsBf16Rounding fails then); the method is still checked, against
  // the bound, so its own prefill results stay visible.
  const RowErrors floor{std::min(measured.prefill, kFloorBound),
                        std::min(measured.decode, kFloorBound)};
  const double prefill_tolerance = std::max(kRowTolerance, kFloorFactor * floor.prefill);
  const double decode_tolerance =
      std::max(kRowTolerance, kFloorFactor * std::max(floor.prefill, floor.decode));
  const std::string dir = model::testing::FreshTestDir();
  SF_ASSERT_OK(model::WriteTinyModel(dir, Tiny(head_dim)));
  std::printf("[hd%lld %s]\n", static_cast<long long>(head_dim), c.name.c_str());
  SF_ASSERT_OK_AND_ASSIGN(auto device, model::CreateEngine(dir, Bf16Cuda()));
  SF_ASSERT_OK_AND_ASSIGN(auto host, model::CreateEngine(dir, Bf16Cuda()));
  SF_ASSERT_OK_AND_ASSIGN(auto dev_prefill, MakePrefillHook(c.prefill));
  SF_ASSERT_OK_AND_ASSIGN(auto dev_decode, MakeDecodeHook(c.decode));
  SF_ASSERT_OK_AND_ASSIGN(auto host_prefill, MakePrefillHook(c.prefill));
  SF_ASSERT_OK_AND_ASSIGN(auto host_decode, MakeDecodeHook(c.decode));
  Probe dp(dev_prefill.get(), true), dd(dev_decode.get(), true);
  Probe hp(host_prefill.get(), false), hd(host_decode.get(), false);
  dp.CheckLayers(&c.prefill);
  if (!dev_prefill->IsExactDense()) hp.CheckLayers(&c.prefill);
  device->SetAttention(&dp, &dd);
  host->SetAttention(&hp, &hd);
  std::vector<float> device_prefill, host_prefill_logits;
  SF_ASSERT_OK_AND_ASSIGN(const RowErrors errors,
                          CompareEngines(*device, *host, &device_prefill, &host_prefill_logits));
  const int64_t vocab = host->config().vocab_size;
  if (!dp.lists_by_layer.empty()) {
    // The same prompt through a host engine that attends exactly the device's lists.
    SF_ASSERT_OK_AND_ASSIGN(auto replay_engine, model::CreateEngine(dir, Bf16Cuda()));
    ReplayPrefill replay(c.prefill.name, &dp.lists_by_layer);
    SF_ASSERT_OK_AND_ASSIGN(auto replay_decode, MakeDecodeHook(Method("dense", {})));
    replay_engine->SetAttention(&replay, replay_decode.get());
    SF_ASSERT_OK_AND_ASSIGN(
        const std::vector<float> replayed,
        replay_engine->Prefill(Prompt(kPromptTokens, static_cast<int>(vocab)), true));
    const double replay_error = WorstRowError(device_prefill, replayed, vocab);
    std::printf("  prefill against the device's own lists in double: worst row error %.3g\n",
                replay_error);
    EXPECT_LE(replay_error, prefill_tolerance) << "the device pipeline over its own lists";
  }
  for (const LayerCheck& l : dp.layer_checks) {
    std::printf(
        "  layer %d: device selection vs the reference on the same inputs: %lld of %lld rows, "
        "%lld of %lld entries differ (tie gap %.3g of the boundary, %.3g of the mass); attention "
        "vs double over the device lists %.3g, over the reference's %.3g\n",
        l.layer, static_cast<long long>(l.rows.differing), static_cast<long long>(l.rows.rows),
        static_cast<long long>(l.differing), static_cast<long long>(l.entries), l.tie_gap.boundary,
        l.tie_gap.mass, l.kernel_error, l.reference_error);
    EXPECT_LE(l.kernel_error, kKernelTolerance) << "layer " << l.layer << ": the kernel";
    if (c.counts_may_tie) {
      // A float32 near-tie may flip an entry of a top-k or mass choice (see the top).
      EXPECT_LE(l.differing, kTieShare * l.entries) << "layer " << l.layer << ": the selection";
    } else {
      EXPECT_EQ(l.rows.differing, 0) << "layer " << l.layer << ": the selection";
    }
  }
  // The logit rows to compare with the host mirror: all of them, unless the two engines'
  // selections part at some layer (SelectionsPart says why that is no bug).
  const std::vector<bool> compared = SelectionsPart(dp.seen, hp.seen, c.prefill, kPromptTokens);
  const int64_t compared_rows = compared.empty() ? kPromptTokens : absl::c_count(compared, true);
  const double prefill_error =
      compared.empty() ? errors.prefill
                       : WorstRowError(device_prefill, host_prefill_logits, vocab, compared);
  std::printf(
      "  prefill %d tokens: worst row error %.3g over the %lld rows the selections leave alike, "
      "%.3g over all (tolerance %.3g)\n",
      kPromptTokens, prefill_error, static_cast<long long>(compared_rows), errors.prefill,
      prefill_tolerance);
  std::printf("  %d decode steps: worst row error %.3g (tolerance %.3g)\n", kDecodeSteps,
              errors.decode, decode_tolerance);
  EXPECT_LE(prefill_error, prefill_tolerance);
  EXPECT_LE(errors.decode, decode_tolerance);

  const model::EngineCounters& a = device->counters();
  const model::EngineCounters& b = host->counters();
  EXPECT_EQ(a.prefill_backend, AttentionBackend::kCuda);
  EXPECT_EQ(a.decode_backend, AttentionBackend::kCuda);
  const bool sparse_prefill = !dev_prefill->IsExactDense();
  const bool sparse_decode = !dev_decode->IsExactDense();
  EXPECT_EQ(b.prefill_backend, sparse_prefill || sparse_decode ? AttentionBackend::kHostMirror
                                                               : AttentionBackend::kCuda);
  if (sparse_decode) {
    EXPECT_EQ(b.decode_backend, AttentionBackend::kHostMirror);
  }
  EXPECT_GT(dp.device_calls + dd.device_calls, 0);
  ExpectCount("prefill pairs", a.prefill_attention.pairs_computed,
              b.prefill_attention.pairs_computed, c.counts_may_tie);
  ExpectCount("prefill dense pairs", a.prefill_attention.pairs_dense,
              b.prefill_attention.pairs_dense, false);
  ExpectCount("decode pairs", a.decode_attention.pairs_computed, b.decode_attention.pairs_computed,
              c.counts_may_tie);
  ExpectCount("decode dense pairs", a.decode_attention.pairs_dense, b.decode_attention.pairs_dense,
              false);
  ExpectCount("prefill estimation FLOPs", dev_prefill->estimation_flops(),
              host_prefill->estimation_flops(), c.prefill.name == "flexprefill");
  ExpectCount("decode estimation FLOPs", dev_decode->estimation_flops(),
              host_decode->estimation_flops(), false);
  std::printf("  pairs prefill %.0f / %.0f, decode %.0f / %.0f; FLOPs %.4g + %.4g\n",
              a.prefill_attention.pairs_computed, a.prefill_attention.pairs_dense,
              a.decode_attention.pairs_computed, a.decode_attention.pairs_dense,
              dev_prefill->estimation_flops(), dev_decode->estimation_flops());
  if (sparse_decode && dd.kept.size() + hd.kept.size() > 0) {
    ExpectSameKept(dd.kept, hd.kept, head_dim, c.decode.name == "ada_snapkv", sparse_prefill);
  }
  // The device forms time their choosing with CUDA events; the host forms do not.
  std::printf("  estimation GPU seconds: prefill %.3g, decode %.3g\n",
              dev_prefill->estimation_seconds(), dev_decode->estimation_seconds());
  if (sparse_prefill) {
    EXPECT_GT(dev_prefill->estimation_seconds(), 0.0);
  }
  if (sparse_decode) {
    EXPECT_GT(dev_decode->estimation_seconds(), 0.0);
  }
  EXPECT_EQ(host_prefill->estimation_seconds(), 0.0);
  EXPECT_EQ(host_decode->estimation_seconds(), 0.0);
}

// The floor itself: the engine's dense kernels against the dense hook's double form stay
// within what bf16 probabilities explain on these models (kFloorBound); more is a bug in
// the dense kernels or their wiring, not rounding.
TEST(MethodHooksOnDevice, DenseFloor_IsBf16Rounding) {
  for (int64_t head_dim : {64, 128}) {
    SF_ASSERT_OK_AND_ASSIGN(const RowErrors floor, DenseFloor(head_dim));
    EXPECT_LE(floor.prefill, kFloorBound) << "head_dim " << head_dim;
    EXPECT_LE(floor.decode, kFloorBound) << "head_dim " << head_dim;
  }
}

INSTANTIATE_TEST_SUITE_P(Methods, MethodHooksOnDevice, ::testing::ValuesIn(HookCases()),
                         [](const ::testing::TestParamInfo<HookCase>& p) {
                           return absl::StrCat("hd", p.param.head_dim, "_", p.param.method.name);
                         });

// Where the kernels cannot run (a float32 engine, head_dim 80) every hook runs on the
// host mirror, and says so.
TEST(MethodHooksOnDevice, UnsupportedEngine_RunsOnHostMirror) {
  model::TinyModelOptions odd = Tiny(64);
  odd.hidden_size = 240;  // head_dim 80
  odd.num_heads = 3;
  odd.num_kv_heads = 1;
  struct Config {
    model::TinyModelOptions model;
    model::ComputeDType dtype;
  };
  for (const Config& config : {Config{Tiny(64), model::ComputeDType::kFloat32},
                               Config{odd, model::ComputeDType::kBfloat16}}) {
    const std::string dir = model::testing::FreshTestDir(absl::StrCat(
        "unsupported", config.model.hidden_size, model::ComputeDTypeName(config.dtype)));
    SF_ASSERT_OK(model::WriteTinyModel(dir, config.model));
    model::EngineOptions o;
    o.backend = model::BackendKind::kCuda;
    o.dtype = config.dtype;
    SF_ASSERT_OK_AND_ASSIGN(auto engine, model::CreateEngine(dir, o));
    SF_ASSERT_OK_AND_ASSIGN(
        auto prefill,
        MakePrefillHook(Method("streaming", {{"sink", int64_t{4}}, {"window", int64_t{32}}})));
    SF_ASSERT_OK_AND_ASSIGN(auto decode,
                            MakeDecodeHook(Method("oracle_topk", {{"top_k", int64_t{16}}})));
    engine->SetAttention(prefill.get(), decode.get());
    const auto prompt = Prompt(100, static_cast<int>(engine->config().vocab_size));
    SF_ASSERT_OK_AND_ASSIGN(std::vector<float> logits, engine->Prefill(prompt));
    SF_ASSERT_OK(engine->Decode(model::ArgMax(logits)).status());
    EXPECT_EQ(engine->counters().prefill_backend, AttentionBackend::kHostMirror);
    EXPECT_EQ(engine->counters().decode_backend, AttentionBackend::kHostMirror);
  }
}

}  // namespace
}  // namespace sf::worker
