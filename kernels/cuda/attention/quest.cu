// Quest page metadata, page scoring and top-k page selection (quest.h).
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "kernels/cuda/attention/block_topk.cuh"
#include "kernels/cuda/attention/pdl.cuh"
#include "kernels/cuda/attention/quest.h"
#include "kernels/cuda/check.h"

namespace sf::cuda {
namespace {

constexpr int kStepThreads = 512;
constexpr int kPagesPerWarp = 8;  // loaded together: 4 pairs of pages per warp
constexpr int kPagesPerCta = kStepThreads / 32 * kPagesPerWarp;
constexpr int kCachedScores = 10240;  // 40 KB of shared memory: 160K rows at page 16

__device__ __forceinline__ int64_t Min64(int64_t a, int64_t b) { return a < b ? a : b; }
__device__ __forceinline__ int64_t Max64(int64_t a, int64_t b) { return a > b ? a : b; }

struct KeyCache {
  const __nv_bfloat16* k = nullptr;
  const void* const* k_seqs = nullptr;
  int64_t batch_stride = 0, head_stride = 0, row_stride = 0;
  const int32_t* lengths = nullptr;
  int64_t max_len = 0;
  int32_t num_kv_heads = 0;

  __device__ int64_t Length(int b, int g) const {
    return lengths != nullptr ? lengths[b * num_kv_heads + g] : max_len;
  }
  __device__ const __nv_bfloat16* Head(int b, int g) const {
    const __nv_bfloat16* base =
        k_seqs != nullptr ? static_cast<const __nv_bfloat16*>(k_seqs[b]) : k + b * batch_stride;
    return base + g * head_stride;
  }
};

KeyCache MakeKeyCache(const AttentionParams& p) {
  KeyCache c;
  c.k = static_cast<const __nv_bfloat16*>(p.k);
  c.k_seqs = p.k_seqs;
  c.batch_stride = p.kv_batch_stride;
  c.head_stride = p.kv_head_stride;
  c.row_stride = p.kv_row_stride;
  c.lengths = p.kv_lengths;
  c.max_len = p.max_kv_length;
  c.num_kv_heads = p.num_kv_heads;
  return c;
}

// Block (page x of the touched ones, KV head, sequence), one thread per dim.
__global__ void UpdatePagesKernel(const KeyCache kc, __nv_bfloat16* mn, __nv_bfloat16* mx,
                                  int32_t page, int64_t max_pages, int64_t appended) {
  pdl_internal::PdlEnter();
  const int b = blockIdx.z, g = blockIdx.y, d = threadIdx.x, dim = blockDim.x;
  const int64_t len = kc.Length(b, g);
  if (len <= 0) return;
  const int64_t pg = Max64(len - appended, 0) / page + blockIdx.x;
  const int64_t r0 = pg * page;
  if (r0 >= len || pg >= max_pages) return;
  const __nv_bfloat16* kh = kc.Head(b, g);
  float lo = INFINITY, hi = -INFINITY;
  for (int64_t r = r0; r < Min64(r0 + page, len); ++r) {
    const float x = __bfloat162float(kh[r * kc.row_stride + d]);
    lo = fminf(lo, x);
    hi = fmaxf(hi, x);
  }
  const int64_t at = ((static_cast<int64_t>(b) * kc.num_kv_heads + g) * max_pages + pg) * dim + d;
  mn[at] = __float2bfloat16_rn(lo);
  mx[at] = __float2bfloat16_rn(hi);
}

// Which query heads a list covers.
struct ListHeadsOf {
  int g, h0, nh;
};
__device__ ListHeadsOf HeadsOfList(int list, bool shared, int group) {
  return shared ? ListHeadsOf{list, list * group, group} : ListHeadsOf{list / group, list, 1};
}

struct StepArgs {
  KeyCache kc;
  const __nv_bfloat16* q = nullptr;
  int64_t q_batch_stride = 0, q_head_stride = 0;
  __nv_bfloat16* mn = nullptr;
  __nv_bfloat16* mx = nullptr;
  int32_t page = 16;
  int64_t max_pages = 0;
  int32_t group = 1;
  bool shared = true;
  bool update_last_page = false;
  int32_t lists = 0;  // per sequence
  int64_t budget = 0;
  uint32_t* counters = nullptr;  // [batch][lists], zero between calls
  float* scores = nullptr;       // [batch][lists][max_pages]
  int32_t* offsets = nullptr;
  int32_t* pages = nullptr;
};

template <int N>
__device__ __forceinline__ void LoadWords(const __nv_bfloat16* p, uint32_t (&w)[N]) {
  if constexpr (N == 2) {
    const uint2 x = *reinterpret_cast<const uint2*>(p);
    w[0] = x.x;
    w[1] = x.y;
  } else {
#pragma unroll
    for (int i = 0; i < N / 4; ++i) {
      const uint4 x = *reinterpret_cast<const uint4*>(p + 8 * i);
      w[4 * i] = x.x;
      w[4 * i + 1] = x.y;
      w[4 * i + 2] = x.z;
      w[4 * i + 3] = x.w;
    }
  }
}

__device__ __forceinline__ float Lo(uint32_t w) { return __uint_as_float(w << 16); }
__device__ __forceinline__ float Hi(uint32_t w) { return __uint_as_float(w & 0xffff0000u); }

// sum_h sum_d max(q_hd mn_d, q_hd mx_d) = sum_d (qpos_d mx_d + qneg_d mn_d) with qpos_d =
// sum_h max(q_hd, 0) and qneg_d = sum_h min(q_hd, 0): a half-warp per page, each lane
// D/16 dims; the warp loads its 8 pages [first, first + 8) at once.
template <int D>
__device__ void ScoreWarpPages(const StepArgs& a, int b, int list, const ListHeadsOf& lh,
                               int64_t first, int64_t current) {
  constexpr int kDims = D / 16, kWords = kDims / 2;
  const int lane = threadIdx.x % 32, half = lane / 16, sub = lane % 16;
  float qpos[kDims], qneg[kDims];
#pragma unroll
  for (int i = 0; i < kDims; ++i) qpos[i] = qneg[i] = 0.0f;
  for (int h = lh.h0; h < lh.h0 + lh.nh; ++h) {
    const __nv_bfloat16* qh = a.q + b * a.q_batch_stride + h * a.q_head_stride + sub * kDims;
#pragma unroll
    for (int i = 0; i < kDims; ++i) {
      const float x = __bfloat162float(qh[i]);
      qpos[i] += fmaxf(x, 0.0f);
      qneg[i] += fminf(x, 0.0f);
    }
  }
  const int64_t meta0 = (static_cast<int64_t>(b) * a.kc.num_kv_heads + lh.g) * a.max_pages;
  uint32_t wmn[kPagesPerWarp / 2][kWords], wmx[kPagesPerWarp / 2][kWords];
#pragma unroll
  for (int j = 0; j < kPagesPerWarp / 2; ++j) {
    const int64_t pg = Min64(first + 2 * j + half, current - 1);
    LoadWords<kWords>(a.mn + (meta0 + pg) * D + sub * kDims, wmn[j]);
    LoadWords<kWords>(a.mx + (meta0 + pg) * D + sub * kDims, wmx[j]);
  }
  float* out = a.scores + (static_cast<int64_t>(b) * a.lists + list) * a.max_pages;
#pragma unroll
  for (int j = 0; j < kPagesPerWarp / 2; ++j) {
    float s = 0.0f;
#pragma unroll
    for (int w = 0; w < kWords; ++w) {
      s = fmaf(qpos[2 * w], Lo(wmx[j][w]), s);
      s = fmaf(qneg[2 * w], Lo(wmn[j][w]), s);
      s = fmaf(qpos[2 * w + 1], Hi(wmx[j][w]), s);
      s = fmaf(qneg[2 * w + 1], Hi(wmn[j][w]), s);
    }
#pragma unroll
    for (int o = 8; o >= 1; o /= 2) s += __shfl_xor_sync(0xffffffffu, s, o);
    const int64_t pg = first + 2 * j + half;
    if (sub == 0 && pg < current) out[pg] = s;
  }
}

// Min and max of the rows of `page_index` (up to len) of KV head g, by the CTA's threads.
__device__ void RecomputePage(const StepArgs& a, int b, int g, int64_t len, int64_t page_index,
                              int dim) {
  const __nv_bfloat16* kh = a.kc.Head(b, g);
  const int64_t r0 = page_index * a.page, r1 = Min64(r0 + a.page, len);
  for (int d = threadIdx.x; d < dim; d += blockDim.x) {
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t r = r0; r < r1; ++r) {
      const float x = __bfloat162float(kh[r * a.kc.row_stride + d]);
      lo = fminf(lo, x);
      hi = fmaxf(hi, x);
    }
    const int64_t at =
        ((static_cast<int64_t>(b) * a.kc.num_kv_heads + g) * a.max_pages + page_index) * dim + d;
    a.mn[at] = __float2bfloat16_rn(lo);
    a.mx[at] = __float2bfloat16_rn(hi);
  }
}

__device__ int64_t ListCount(const StepArgs& a, int b, int list) {
  const ListHeadsOf lh = HeadsOfList(list, a.shared, a.group);
  const int64_t len = a.kc.Length(b, lh.g);
  if (len <= 0) return 0;
  return Min64((len - 1) / a.page, a.budget) + 1;
}

// The list's offset (the counts of every earlier list, all known from the lengths) and
// its sorted pages: every page up to the current one, or the top `budget` earlier pages
// by score plus the current one.
__device__ void SelectListPages(const StepArgs& a, int b, int list, int64_t current) {
  const int64_t index = static_cast<int64_t>(b) * a.lists + list;
  int64_t before = 0;
  for (int64_t j = threadIdx.x; j < index; j += kStepThreads) {
    before += ListCount(a, static_cast<int>(j / a.lists), static_cast<int>(j % a.lists));
  }
  int offset = 0;
  topk_internal::BlockInclusiveSum<kStepThreads>(static_cast<int>(before), &offset);
  const int64_t count = ListCount(a, b, list);
  if (threadIdx.x == 0) {
    a.offsets[index] = offset;
    if (index == static_cast<int64_t>(gridDim.z) * a.lists - 1) {
      a.offsets[index + 1] = static_cast<int32_t>(offset + count);
    }
  }
  if (count == 0) return;
  int32_t* out = a.pages + offset;
  if (current <= a.budget) {
    for (int64_t i = threadIdx.x; i <= current; i += kStepThreads) out[i] = static_cast<int32_t>(i);
    return;
  }
  // The selection reads the scores seven times: from shared memory when they fit. They
  // were written by other CTAs of this grid: read through L2 (ld.global.cg).
  const float* s = a.scores + index * a.max_pages;
  __shared__ float cached[kCachedScores];
  if (current <= kCachedScores) {
    for (int64_t i = threadIdx.x; i < current; i += kStepThreads) cached[i] = __ldcg(s + i);
    __syncthreads();
    s = cached;
  }
  topk_internal::BlockTopKSorted<kStepThreads>(
      [s](int64_t i) { return topk_internal::OrderedKey(s[i]); }, current, a.budget, out);
  if (threadIdx.x == 0) out[a.budget] = static_cast<int32_t>(current);
}

// Block (pages [x * kPagesPerCta, ...), list, sequence). Each CTA scores its pages (and
// CTA 0 of a KV head refreshes the metadata of the page holding the last row, which no
// CTA scores in this step); the last CTA of the list to finish selects its pages.
template <int D>
__global__ void __launch_bounds__(kStepThreads) QuestStepKernel(const StepArgs a) {
  pdl_internal::PdlEnter();
  const int b = blockIdx.z, list = blockIdx.y;
  const ListHeadsOf lh = HeadsOfList(list, a.shared, a.group);
  const int64_t len = a.kc.Length(b, lh.g);
  const int64_t current = len > 0 ? (len - 1) / a.page : -1;
  if (a.update_last_page && blockIdx.x == 0 && len > 0 && lh.h0 % a.group == 0) {
    RecomputePage(a, b, lh.g, len, current, D);
  }
  const int warp = threadIdx.x / 32;
  const int64_t first =
      static_cast<int64_t>(blockIdx.x) * kPagesPerCta + warp * static_cast<int64_t>(kPagesPerWarp);
  if (current > a.budget && first < current) ScoreWarpPages<D>(a, b, list, lh, first, current);
  __threadfence();
  __syncthreads();
  __shared__ bool last;
  if (threadIdx.x == 0) {
    uint32_t* counter = a.counters + static_cast<int64_t>(b) * a.lists + list;
    last = atomicAdd(counter, 1u) == gridDim.x - 1;
    if (last) *counter = 0;
  }
  __syncthreads();
  if (!last) return;
  __threadfence();
  SelectListPages(a, b, list, current);
}

absl::Status CheckQuest(const AttentionParams& p, const QuestPages& meta) {
  if (p.k == nullptr || meta.min == nullptr || meta.max == nullptr) {
    return absl::InvalidArgumentError("quest: k, meta.min and meta.max must be device pointers");
  }
  if (p.dtype != AttnDType::kBf16) return absl::InvalidArgumentError("quest: dtype must be bf16");
  if (p.head_dim != 64 && p.head_dim != 128 && p.head_dim != 256) {
    return absl::InvalidArgumentError(
        absl::StrCat("quest: head_dim is ", p.head_dim, "; supported: 64, 128, 256"));
  }
  if (meta.page < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("quest: meta.page is ", meta.page, "; must be >= 1"));
  }
  if (meta.max_pages * meta.page < p.max_kv_length) {
    return absl::InvalidArgumentError(
        absl::StrCat("quest: meta.max_pages (", meta.max_pages, ") pages of ", meta.page,
                     " do not cover max_kv_length (", p.max_kv_length, ")"));
  }
  if (p.batch < 1 || p.num_kv_heads < 1 || p.num_q_heads % p.num_kv_heads != 0) {
    return absl::InvalidArgumentError(
        "quest: batch, num_kv_heads and num_q_heads must be positive, "
        "num_q_heads a multiple of num_kv_heads");
  }
  return absl::OkStatus();
}

}  // namespace

int64_t QuestPagesBytes(int32_t batch, int32_t num_kv_heads, int64_t max_pages, int32_t head_dim) {
  return static_cast<int64_t>(batch) * num_kv_heads * max_pages * head_dim * 2;
}

absl::Status QuestUpdatePages(const AttentionParams& p, const QuestPages& meta, int64_t appended) {
  SF_RETURN_IF_ERROR(CheckQuest(p, meta));
  if (appended < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("quest: appended is ", appended, "; must be >= 1"));
  }
  const int64_t touched =
      std::min<int64_t>((appended + meta.page - 1) / meta.page + 1, meta.max_pages);
  const dim3 grid(static_cast<unsigned>(touched), p.num_kv_heads, p.batch);
  SF_CUDA_RETURN_IF_ERROR(pdl_internal::LaunchPdl(
      UpdatePagesKernel, grid, dim3(p.head_dim), 0, p.stream, MakeKeyCache(p),
      static_cast<__nv_bfloat16*>(meta.min), static_cast<__nv_bfloat16*>(meta.max), meta.page,
      meta.max_pages, appended));
  return absl::OkStatus();
}

int64_t QuestSelectWorkspaceBytes(const AttentionParams& p, const QuestPages& meta,
                                  const QuestSelectArgs& args) {
  const int64_t lists =
      static_cast<int64_t>(p.batch) * (args.gqa_shared ? p.num_kv_heads : p.num_q_heads);
  return (lists * 4 + 255) / 256 * 256 + lists * meta.max_pages * 4;
}

absl::Status QuestSelectPages(const AttentionParams& p, const QuestPages& meta,
                              const QuestSelectArgs& args, const QuestSelection& out) {
  SF_RETURN_IF_ERROR(CheckQuest(p, meta));
  if (p.q == nullptr || out.offsets == nullptr || out.pages == nullptr) {
    return absl::InvalidArgumentError(
        "quest: q, out.offsets and out.pages must be device pointers");
  }
  if (args.budget_pages < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("quest: budget_pages is ", args.budget_pages, "; must be >= 1"));
  }
  const int64_t need = QuestSelectWorkspaceBytes(p, meta, args);
  if (p.workspace == nullptr || p.workspace_bytes < need) {
    return absl::InvalidArgumentError(absl::StrCat("quest: workspace_bytes is ", p.workspace_bytes,
                                                   "; page selection needs ", need));
  }
  const int32_t lists = args.gqa_shared ? p.num_kv_heads : p.num_q_heads;
  const int64_t max_current = std::max<int64_t>(0, (p.max_kv_length - 1) / meta.page);
  StepArgs a;
  a.kc = MakeKeyCache(p);
  a.q = static_cast<const __nv_bfloat16*>(p.q);
  a.q_batch_stride = p.q_batch_stride;
  a.q_head_stride = p.q_head_stride;
  a.mn = static_cast<__nv_bfloat16*>(meta.min);
  a.mx = static_cast<__nv_bfloat16*>(meta.max);
  a.page = meta.page;
  a.max_pages = meta.max_pages;
  a.group = p.num_q_heads / p.num_kv_heads;
  a.shared = args.gqa_shared;
  a.update_last_page = args.update_last_page;
  a.lists = lists;
  a.budget = args.budget_pages;
  a.counters = static_cast<uint32_t*>(p.workspace);
  a.scores =
      reinterpret_cast<float*>(static_cast<char*>(p.workspace) +
                               (static_cast<int64_t>(p.batch) * lists * 4 + 255) / 256 * 256);
  a.offsets = out.offsets;
  a.pages = out.pages;
  const int64_t ctas =
      max_current > args.budget_pages ? (max_current + kPagesPerCta - 1) / kPagesPerCta : 1;
  const dim3 grid(static_cast<unsigned>(std::max<int64_t>(ctas, 1)), lists, p.batch);
  auto* kernel = p.head_dim == 64    ? QuestStepKernel<64>
                 : p.head_dim == 128 ? QuestStepKernel<128>
                                     : QuestStepKernel<256>;
  SF_CUDA_RETURN_IF_ERROR(
      pdl_internal::LaunchPdl(kernel, grid, dim3(kStepThreads), 0, p.stream, a));
  return absl::OkStatus();
}

}  // namespace sf::cuda
