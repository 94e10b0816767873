// Line selections (vertical_slash, streaming) from the line mass: one CTA per (query
// head, columns or diagonals) runs the radix top-k over the head's scores and writes its
// sorted list.
#include <cuda_runtime.h>

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "kernels/cuda/attention/select.h"
#include "kernels/cuda/attention/select_device.cuh"
#include "kernels/cuda/attention/select_line_mass.cuh"
#include "kernels/cuda/attention/select_lines.cuh"
#include "kernels/cuda/check.h"

namespace sf::cuda {
namespace select_internal {
namespace {

constexpr int kTopKThreads = 1024;

__global__ void __launch_bounds__(kTopKThreads) LineTopKKernel(LineTopKArgs a) {
  __shared__ TopKShared sm;
  __shared__ CoverShared cs;
  const int h = blockIdx.y;
  const bool diag = blockIdx.x == 1;
  const int n = a.n;
  if (a.head_kinds != nullptr && a.head_kinds[h] != 0) {
    if (threadIdx.x == 0) (diag ? a.diagonal_counts : a.column_counts)[h] = 0;
    return;
  }
  const float* score = (diag ? a.diagonals : a.columns) + int64_t{h} * n;
  const int forced = diag ? a.forced_diagonals : a.forced_columns;
  int k = diag ? a.k_diagonals : a.k_columns;
  if (a.cover_target >= 0) {
    const int cover = a.cover_all ? n
                                  : CoverCountDevice<kTopKThreads, false>(
                                        [&](int i) { return score[i]; }, n, a.cover_target, sm, cs);
    k = min(n, max(max(k, cover), forced));
  }
  int32_t* out = diag ? a.diagonal_lists : a.column_lists;
  int32_t* offsets = diag ? a.diagonal_offsets : a.column_offsets;
  int32_t* list = out + (a.fixed_k ? int64_t{h} * k : int64_t{h} * n);
  SelectTopKSorted<kTopKThreads>(
      [&](int i) { return i < forced ? kForcedKey : OrderedKey(score[i]); }, n, k, sm, list);
  if (threadIdx.x == 0) {
    if (a.fixed_k) {
      offsets[h] = h * k;
      if (h == static_cast<int>(gridDim.y) - 1) offsets[h + 1] = (h + 1) * k;
    } else {
      (diag ? a.diagonal_counts : a.column_counts)[h] = min(k, n);
    }
  }
}

// Variable-length lists: offsets from the per-head counts, lists packed from [h][n] staging.
__global__ void PackListsKernel(LineTopKArgs a, int32_t* __restrict__ final_columns,
                                int32_t* __restrict__ final_diagonals) {
  const int h = blockIdx.y;
  const bool diag = blockIdx.x == 1;
  const int32_t* counts = diag ? a.diagonal_counts : a.column_counts;
  int32_t start = 0;
  for (int x = 0; x < h; ++x) start += counts[x];
  const int32_t count = counts[h];
  int32_t* offsets = diag ? a.diagonal_offsets : a.column_offsets;
  if (threadIdx.x == 0) {
    offsets[h] = start;
    if (h == static_cast<int>(gridDim.y) - 1) offsets[h + 1] = start + count;
  }
  const int32_t* src = (diag ? a.diagonal_lists : a.column_lists) + int64_t{h} * a.n;
  int32_t* dst = (diag ? final_diagonals : final_columns) + start;
  for (int i = threadIdx.x; i < count; i += blockDim.x) dst[i] = src[i];
}

__global__ void StreamingKernel(int heads, int sink, int window, int32_t* column_offsets,
                                int32_t* columns, int32_t* diagonal_offsets, int32_t* diagonals) {
  const int h = blockIdx.x;
  for (int i = threadIdx.x; i < sink; i += blockDim.x) columns[h * sink + i] = i;
  for (int i = threadIdx.x; i < window; i += blockDim.x) diagonals[h * window + i] = i;
  if (threadIdx.x == 0) {
    column_offsets[h] = h * sink;
    diagonal_offsets[h] = h * window;
    if (h == heads - 1) {
      column_offsets[heads] = heads * sink;
      diagonal_offsets[heads] = heads * window;
    }
  }
}

}  // namespace

absl::Status LaunchLineTopK(const LineTopKArgs& args, int heads, cudaStream_t stream) {
  LineTopKKernel<<<dim3(2, heads), kTopKThreads, 0, stream>>>(args);
  return CudaStatus(cudaGetLastError(), "line top-k kernel");
}

absl::Status LaunchPackLists(const LineTopKArgs& args, int heads, int32_t* columns,
                             int32_t* diagonals, cudaStream_t stream) {
  PackListsKernel<<<dim3(2, heads), 256, 0, stream>>>(args, columns, diagonals);
  return CudaStatus(cudaGetLastError(), "line list packing kernel");
}

}  // namespace select_internal

namespace {

using select_internal::CheckCapacity;
using select_internal::CheckPrefillShape;
using select_internal::LineMassBuffers;
using select_internal::LineMassWorkspace;
using select_internal::LineTopKArgs;
using select_internal::PrefillShape;
using select_internal::WorkspaceCarver;

absl::Status TooLarge(absl::string_view method, absl::string_view param, int64_t value,
                      int64_t limit, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("parameter '", param, "' of method ", method,
                                                 " is ", value, ", larger than ", what, " (", limit,
                                                 ")"));
}

// The reference's checks (kernels/cpu/methods/vertical_slash.cc, Check).
absl::Status CheckVerticalSlash(const PrefillShape& s, const kernels::VerticalSlashParams& p) {
  const int64_t lk = s.lk;
  if (p.last_q < 1) {
    return absl::InvalidArgumentError("parameter 'last_q' of method vertical_slash must be >= 1");
  }
  if (p.verticals > lk)
    return TooLarge("vertical_slash", "verticals", p.verticals, lk, "the sequence");
  if (p.slashes > lk) return TooLarge("vertical_slash", "slashes", p.slashes, lk, "the sequence");
  if (p.verticals < std::min(p.sink, lk)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "parameter 'verticals' of method vertical_slash (", p.verticals,
        ") must be at least 'sink' (", p.sink, "): the sink columns count in the budget"));
  }
  if (p.slashes < std::min(p.local, lk)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "parameter 'slashes' of method vertical_slash (", p.slashes, ") must be at least 'local' (",
        p.local, "): the local diagonals count in the budget"));
  }
  return absl::OkStatus();
}

// Workspace of vertical_slash: the line mass only (the lists go straight to the output).
int64_t VerticalSlashWorkspace(const PrefillShape& s, int64_t last_q, void* base,
                               LineMassBuffers* mass) {
  WorkspaceCarver carver(base);
  *mass = LineMassWorkspace(s, last_q, &carver);
  return carver.used();
}

}  // namespace

absl::StatusOr<SelectionSizes> VerticalSlashSelectSizes(const AttentionParams& attn,
                                                        const kernels::VerticalSlashParams& p) {
  SF_ASSIGN_OR_RETURN(PrefillShape s, CheckPrefillShape(attn, "vertical_slash"));
  SF_RETURN_IF_ERROR(CheckVerticalSlash(s, p));
  LineMassBuffers mass;
  SelectionSizes z;
  z.workspace_bytes = VerticalSlashWorkspace(s, std::min<int64_t>(p.last_q, s.lq), nullptr, &mass);
  z.column_offsets = z.diagonal_offsets = s.hq + 1;
  z.columns = int64_t{s.hq} * p.verticals;
  z.diagonals = int64_t{s.hq} * p.slashes;
  return z;
}

absl::StatusOr<LineSelection> SelectVerticalSlash(const AttentionParams& attn,
                                                  const kernels::VerticalSlashParams& p,
                                                  const SelectionBuffers& out) {
  SF_ASSIGN_OR_RETURN(SelectionSizes z, VerticalSlashSelectSizes(attn, p));
  SF_ASSIGN_OR_RETURN(PrefillShape s, CheckPrefillShape(attn, "vertical_slash"));
  SF_RETURN_IF_ERROR(CheckCapacity("vertical_slash", "workspace", out.workspace,
                                   out.workspace_bytes, z.workspace_bytes));
  SF_RETURN_IF_ERROR(
      CheckCapacity("vertical_slash", "columns", out.columns, out.columns_capacity, z.columns));
  SF_RETURN_IF_ERROR(CheckCapacity("vertical_slash", "diagonals", out.diagonals,
                                   out.diagonals_capacity, z.diagonals));
  if (out.column_offsets == nullptr || out.diagonal_offsets == nullptr) {
    return absl::InvalidArgumentError(
        "vertical_slash selection: column_offsets and diagonal_offsets must be given");
  }
  const int64_t last_q = std::min<int64_t>(p.last_q, s.lq);
  LineMassBuffers mass;
  VerticalSlashWorkspace(s, last_q, out.workspace, &mass);
  SF_RETURN_IF_ERROR(select_internal::LaunchLineMass(attn, s, last_q, mass));
  LineTopKArgs args;
  args.n = static_cast<int>(s.lk);
  args.columns = mass.columns;
  args.diagonals = mass.diagonals;
  args.forced_columns = static_cast<int>(std::min<int64_t>(p.sink, s.lk));
  args.forced_diagonals = static_cast<int>(std::min<int64_t>(p.local, s.lk));
  args.k_columns = static_cast<int>(p.verticals);
  args.k_diagonals = static_cast<int>(p.slashes);
  args.fixed_k = true;
  args.column_lists = out.columns;
  args.diagonal_lists = out.diagonals;
  args.column_offsets = out.column_offsets;
  args.diagonal_offsets = out.diagonal_offsets;
  SF_RETURN_IF_ERROR(select_internal::LaunchLineTopK(args, s.hq, attn.stream));
  LineSelection sel;
  sel.heads.count = s.hq;
  sel.column_offsets = out.column_offsets;
  sel.columns = out.columns;
  sel.diagonal_offsets = out.diagonal_offsets;
  sel.diagonals = out.diagonals;
  return sel;
}

namespace {

// The study's FlexPrefill forces the first 4 columns and the last 64 diagonals.
constexpr int64_t kFlexSinkColumns = 4;
constexpr int64_t kFlexLocalDiagonals = 64;

struct FlexLinesPlan {
  int64_t est_q = 0;
  LineMassBuffers mass;
  int32_t* column_staging = nullptr;  // [hq][lk]
  int32_t* diagonal_staging = nullptr;
  int32_t* counts = nullptr;  // [2][hq]
  int64_t workspace_bytes = 0;
};

absl::StatusOr<FlexLinesPlan> PlanFlexLines(const PrefillShape& s,
                                            const kernels::FlexPrefillParams& p, void* base) {
  if (p.original) {
    return absl::InvalidArgumentError(
        "flexprefill selection: variant=original chooses lines or blocks per head; call "
        "SelectFlexPrefillMixed");
  }
  if (p.last_q < 1 || p.min_budget < 0) {
    return absl::InvalidArgumentError(
        "parameters 'last_q' (>= 1) and 'min_budget' (>= 0) of method flexprefill");
  }
  FlexLinesPlan plan;
  plan.est_q = std::min<int64_t>(p.last_q, s.lq);
  WorkspaceCarver carver(base);
  plan.mass = LineMassWorkspace(s, plan.est_q, &carver);
  plan.column_staging = carver.Take<int32_t>(int64_t{s.hq} * s.lk);
  plan.diagonal_staging = carver.Take<int32_t>(int64_t{s.hq} * s.lk);
  plan.counts = carver.Take<int32_t>(2 * int64_t{s.hq});
  plan.workspace_bytes = carver.used();
  return plan;
}

}  // namespace

absl::StatusOr<SelectionSizes> FlexPrefillSelectSizes(const AttentionParams& attn,
                                                      const kernels::FlexPrefillParams& p) {
  if (p.original) return select_internal::FlexPrefillOriginalSizes(attn, p);
  SF_ASSIGN_OR_RETURN(PrefillShape s, CheckPrefillShape(attn, "flexprefill"));
  SF_ASSIGN_OR_RETURN(FlexLinesPlan plan, PlanFlexLines(s, p, nullptr));
  SelectionSizes z;
  z.workspace_bytes = plan.workspace_bytes;
  z.column_offsets = z.diagonal_offsets = s.hq + 1;
  z.columns = z.diagonals = int64_t{s.hq} * s.lk;
  return z;
}

absl::StatusOr<LineSelection> SelectFlexPrefillLines(const AttentionParams& attn,
                                                     const kernels::FlexPrefillParams& p,
                                                     const SelectionBuffers& out) {
  SF_ASSIGN_OR_RETURN(PrefillShape s, CheckPrefillShape(attn, "flexprefill"));
  SF_ASSIGN_OR_RETURN(FlexLinesPlan plan, PlanFlexLines(s, p, out.workspace));
  SF_RETURN_IF_ERROR(CheckCapacity("flexprefill", "workspace", out.workspace, out.workspace_bytes,
                                   plan.workspace_bytes));
  SF_RETURN_IF_ERROR(CheckCapacity("flexprefill", "columns", out.columns, out.columns_capacity,
                                   int64_t{s.hq} * s.lk));
  SF_RETURN_IF_ERROR(CheckCapacity("flexprefill", "diagonals", out.diagonals,
                                   out.diagonals_capacity, int64_t{s.hq} * s.lk));
  if (out.column_offsets == nullptr || out.diagonal_offsets == nullptr) {
    return absl::InvalidArgumentError(
        "flexprefill selection: column_offsets and diagonal_offsets must be given");
  }
  SF_RETURN_IF_ERROR(select_internal::LaunchLineMass(attn, s, plan.est_q, plan.mass));
  LineTopKArgs args;
  args.n = static_cast<int>(s.lk);
  args.columns = plan.mass.columns;
  args.diagonals = plan.mass.diagonals;
  args.forced_columns = static_cast<int>(std::min<int64_t>(kFlexSinkColumns, s.lk));
  args.forced_diagonals = static_cast<int>(std::min<int64_t>(kFlexLocalDiagonals, s.lk));
  args.k_columns = args.k_diagonals = static_cast<int>(std::min<int64_t>(p.min_budget, s.lk));
  // The reference compares running sums of mean scores (sums / est_q) with gamma.
  args.cover_target = p.gamma * static_cast<double>(plan.est_q);
  args.cover_all = p.gamma >= 1.0;
  args.fixed_k = false;
  args.column_lists = plan.column_staging;
  args.diagonal_lists = plan.diagonal_staging;
  args.column_offsets = out.column_offsets;
  args.diagonal_offsets = out.diagonal_offsets;
  args.column_counts = plan.counts;
  args.diagonal_counts = plan.counts + s.hq;
  SF_RETURN_IF_ERROR(select_internal::LaunchLineTopK(args, s.hq, attn.stream));
  SF_RETURN_IF_ERROR(
      select_internal::LaunchPackLists(args, s.hq, out.columns, out.diagonals, attn.stream));
  LineSelection sel;
  sel.heads.count = s.hq;
  sel.column_offsets = out.column_offsets;
  sel.columns = out.columns;
  sel.diagonal_offsets = out.diagonal_offsets;
  sel.diagonals = out.diagonals;
  return sel;
}

absl::StatusOr<SelectionSizes> StreamingSelectSizes(const AttentionParams& attn,
                                                    const kernels::StreamingParams& p) {
  SF_ASSIGN_OR_RETURN(PrefillShape s, CheckPrefillShape(attn, "streaming"));
  if (p.window > s.lk) return TooLarge("streaming", "window", p.window, s.lk, "the sequence");
  if (p.sink > s.lk) return TooLarge("streaming", "sink", p.sink, s.lk, "the sequence");
  if (p.window < 0 || p.sink < 0) {
    return absl::InvalidArgumentError(
        "parameters 'sink' and 'window' of method streaming must be >= 0");
  }
  SelectionSizes z;
  z.column_offsets = z.diagonal_offsets = s.hq + 1;
  z.columns = int64_t{s.hq} * p.sink;
  z.diagonals = int64_t{s.hq} * p.window;
  return z;
}

absl::StatusOr<LineSelection> SelectStreaming(const AttentionParams& attn,
                                              const kernels::StreamingParams& p,
                                              const SelectionBuffers& out) {
  SF_ASSIGN_OR_RETURN(SelectionSizes z, StreamingSelectSizes(attn, p));
  SF_RETURN_IF_ERROR(
      CheckCapacity("streaming", "columns", out.columns, out.columns_capacity, z.columns));
  SF_RETURN_IF_ERROR(
      CheckCapacity("streaming", "diagonals", out.diagonals, out.diagonals_capacity, z.diagonals));
  if (out.column_offsets == nullptr || out.diagonal_offsets == nullptr) {
    return absl::InvalidArgumentError(
        "streaming selection: column_offsets and diagonal_offsets must be given");
  }
  const int heads = attn.num_q_heads;
  select_internal::StreamingKernel<<<heads, 256, 0, attn.stream>>>(
      heads, static_cast<int>(p.sink), static_cast<int>(p.window), out.column_offsets, out.columns,
      out.diagonal_offsets, out.diagonals);
  SF_RETURN_IF_ERROR(CudaStatus(cudaGetLastError(), "streaming selection kernel"));
  LineSelection sel;
  sel.heads.count = heads;
  sel.column_offsets = out.column_offsets;
  sel.columns = out.columns;
  sel.diagonal_offsets = out.diagonal_offsets;
  sel.diagonals = out.diagonals;
  return sel;
}

}  // namespace sf::cuda
