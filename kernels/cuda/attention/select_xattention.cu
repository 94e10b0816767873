// xattention on the GPU. Antidiagonal cell scores are one matrix product: reduced row r is
// the concatenation over t of query r*S + S-1-t, reduced column c that of key c*S + t, so
// cell (r, c) = sum_t q[r*S + S-1-t] . k[c*S + t] with an inner dimension of S * D.
//   1. Score kernel: a CTA holds RT reduced rows of one query head in shared memory (all S
//      query rows of each, 16 rows per warp) and walks the causal reduced columns in tiles
//      of 64, loading for each t the 64 keys c*S + t (cp.async, double-buffered) and
//      accumulating on tensor cores (mma.sync bf16). Per tile and row it keeps the
//      log2-sum-exp2 of the scaled scores per key block (scratch, one float per (row, key
//      block), causal triangle only) and the row's running log-sum-exp.
//   2. Mass and choice: a CTA per (query head, query block) sums 2^(l - lse) over the
//      block's rows into the block mass, finds by radix descent how many blocks reach the
//      threshold (sink and diagonal blocks first), and takes them by radix top-k.
//   3. Offsets (one scan over all lists) and packing into the BlockSelection.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "kernels/cuda/attention/select.h"
#include "kernels/cuda/attention/select_blocks.cuh"
#include "kernels/cuda/attention/select_device.cuh"
#include "kernels/cuda/attention/select_host.h"
#include "kernels/cuda/check.h"

namespace sf::cuda {
namespace select_internal {
namespace {

constexpr int kCols = 64;  // reduced columns per tile
constexpr int kPStride = kCols + 1;
constexpr int kChooseThreads = 256;

struct XAttnArgs {
  const __nv_bfloat16* q;
  int64_t q_row_stride, q_head_stride;
  const __nv_bfloat16* k;
  int64_t kv_head_stride, kv_row_stride;
  int group, stride, rows_per_block;  // S, R = block / S
  int64_t lq, lk, q_offset;
  int64_t first_r, last_r;  // reduced rows of the call
  int rows_per_cta;         // RT, a multiple of 16
  float scale_log2;         // log2(e) / (sqrt(D) S)
  int64_t scratch_per_head;
  float* scratch;  // [hq][triangle] log2-sum-exp2 per (row, key block)
  float* row_lse;  // [hq][last_r - first_r + 1]
};

// Entries of the causal triangle before reduced row r: sum over r' < r of (r' / R + 1).
__device__ __host__ inline int64_t TriangleBefore(int64_t r, int64_t big_r) {
  const int64_t q = r / big_r;
  return r + big_r * q * (q - 1) / 2 + (r - q * big_r) * q;
}

template <int D>
constexpr int BRowStride() {
  return D + 8;
}

__device__ __forceinline__ float LogAddExp2(float a, float b) {
  const float m = fmaxf(a, b);
  if (m == -INFINITY) return -INFINITY;
  return m + log2f(exp2f(a - m) + exp2f(b - m));
}

template <int D>
__global__ void XAttnScoreKernel(XAttnArgs a) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int rt_rows = a.rows_per_cta, st = a.stride;
  const int a_stride = st * D + 8;  // bf16 per reduced row in shared memory
  __nv_bfloat16* a_tile = reinterpret_cast<__nv_bfloat16*>(smem);
  __nv_bfloat16* b_tiles = a_tile + rt_rows * a_stride;
  float* p_tile = reinterpret_cast<float*>(b_tiles + 2 * kCols * BRowStride<D>());

  const int ntiles_rows = static_cast<int>((a.last_r - a.first_r + rt_rows) / rt_rows);
  const int row_tile = ntiles_rows - 1 - static_cast<int>(blockIdx.x);  // heavy rows first
  const int h = blockIdx.y, kvh = h / a.group;
  const int nthreads = blockDim.x;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tq = lane & 3;
  const int64_t r0 = a.first_r + int64_t{row_tile} * rt_rows;
  const int64_t r_end = min(r0 + rt_rows, a.last_r + 1);  // exclusive
  const int64_t first_pos = a.q_offset, last_pos = a.q_offset + a.lq - 1;

  // Reduced rows: row i, segment t holds query (r0 + i) * S + S-1-t, zero when outside.
  const __nv_bfloat16* qh = a.q + int64_t{h} * a.q_head_stride;
  for (int x = threadIdx.x; x < rt_rows * st * (D / 8); x += nthreads) {
    const int piece = x % (D / 8), t = (x / (D / 8)) % st, i = x / (D / 8) / st;
    const int64_t pos = (r0 + i) * st + st - 1 - t;
    const bool valid = r0 + i < r_end && pos >= first_pos && pos <= last_pos;
    CopyAsync16(a_tile + i * a_stride + t * D + piece * 8,
                qh + (valid ? pos - a.q_offset : 0) * a.q_row_stride + piece * 8, valid);
  }
  CopyAsyncCommit();

  const __nv_bfloat16* kh = a.k + int64_t{kvh} * a.kv_head_stride;
  const int64_t col_end = r_end;  // columns c <= r < r_end
  const int ncol_tiles = static_cast<int>((col_end + kCols - 1) / kCols);
  const int steps = ncol_tiles * st;
  auto load_b = [&](int step) {
    const int tile = step / st, t = step % st;
    __nv_bfloat16* dst = b_tiles + (step & 1) * kCols * BRowStride<D>();
    for (int x = threadIdx.x; x < kCols * (D / 8); x += nthreads) {
      const int j = x / (D / 8), piece = x % (D / 8);
      const int64_t key = (int64_t{tile} * kCols + j) * st + t;
      const bool valid = key < a.lk;
      CopyAsync16(dst + j * BRowStride<D>() + piece * 8,
                  kh + (valid ? key : 0) * a.kv_row_stride + piece * 8, valid);
    }
    CopyAsyncCommit();
  };

  const int i_lo = warp * 16 + g, i_hi = i_lo + 8;  // this thread's rows in the tile
  const int64_t r_lo = r0 + i_lo, r_hi = r0 + i_hi;
  float run_m_lo = -INFINITY, run_l_lo = 0.f, run_m_hi = -INFINITY, run_l_hi = 0.f;
  float acc[kCols / 8][4];
  float* scratch_h = a.scratch + int64_t{h} * a.scratch_per_head;
  const int64_t tri0 = TriangleBefore(a.first_r, a.rows_per_block);

  if (steps > 0) load_b(0);
  for (int step = 0; step < steps; ++step) {
    const int tile = step / st, t = step % st;
    if (step + 1 < steps) {
      load_b(step + 1);
      CopyAsyncWait<1>();
    } else {
      CopyAsyncWait<0>();
    }
    __syncthreads();
    if (t == 0) {
#pragma unroll
      for (int j = 0; j < kCols / 8; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
    }
    const __nv_bfloat16* bt = b_tiles + (step & 1) * kCols * BRowStride<D>();
    const __nv_bfloat16* a_lo = a_tile + i_lo * a_stride + t * D + 2 * tq;
    const __nv_bfloat16* a_hi = a_tile + i_hi * a_stride + t * D + 2 * tq;
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
      const uint32_t af[4] = {LoadPair(a_lo + 16 * ks), LoadPair(a_hi + 16 * ks),
                              LoadPair(a_lo + 16 * ks + 8), LoadPair(a_hi + 16 * ks + 8)};
#pragma unroll
      for (int j = 0; j < kCols / 8; ++j) {
        const __nv_bfloat16* br = bt + (8 * j + g) * BRowStride<D>() + 16 * ks + 2 * tq;
        MmaBf16(acc[j], af, LoadPair(br), LoadPair(br + 8));
      }
    }
    if (t == st - 1) {
      // Scaled, masked scores; the tile max and sum per row (over the quad's columns).
      const int64_t c0 = int64_t{tile} * kCols;
      float m_lo = -INFINITY, m_hi = -INFINITY;
#pragma unroll
      for (int j = 0; j < kCols / 8; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int64_t c = c0 + 8 * j + 2 * tq + (e & 1);
          const bool hi = e >= 2;
          const int64_t r = hi ? r_hi : r_lo;
          const bool valid = r < r_end && c <= r;
          acc[j][e] = valid ? acc[j][e] * a.scale_log2 : -INFINITY;
          if (hi) {
            m_hi = fmaxf(m_hi, acc[j][e]);
          } else {
            m_lo = fmaxf(m_lo, acc[j][e]);
          }
        }
      }
#pragma unroll
      for (int off = 1; off < 4; off *= 2) {
        m_lo = fmaxf(m_lo, __shfl_xor_sync(kFullMask, m_lo, off));
        m_hi = fmaxf(m_hi, __shfl_xor_sync(kFullMask, m_hi, off));
      }
      float sum_lo = 0.f, sum_hi = 0.f;
#pragma unroll
      for (int j = 0; j < kCols / 8; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const bool hi = e >= 2;
          const float m = hi ? m_hi : m_lo;
          const float p = m == -INFINITY ? 0.f : exp2f(acc[j][e] - m);
          if (hi) {
            sum_hi += p;
          } else {
            sum_lo += p;
          }
          p_tile[(hi ? i_hi : i_lo) * kPStride + 8 * j + 2 * tq + (e & 1)] = p;
        }
      }
#pragma unroll
      for (int off = 1; off < 4; off *= 2) {
        sum_lo += __shfl_xor_sync(kFullMask, sum_lo, off);
        sum_hi += __shfl_xor_sync(kFullMask, sum_hi, off);
      }
      if (m_lo != -INFINITY) {
        const float mn = fmaxf(run_m_lo, m_lo);
        run_l_lo = run_l_lo * exp2f(run_m_lo - mn) + sum_lo * exp2f(m_lo - mn);
        run_m_lo = mn;
      }
      if (m_hi != -INFINITY) {
        const float mn = fmaxf(run_m_hi, m_hi);
        run_l_hi = run_l_hi * exp2f(run_m_hi - mn) + sum_hi * exp2f(m_hi - mn);
        run_m_hi = mn;
      }
      // The tile's row maxima for the block sums below.
      float* row_max = p_tile + rt_rows * kPStride;
      if (tq == 0) {
        row_max[i_lo] = m_lo;
        row_max[i_hi] = m_hi;
      }
      __syncthreads();
      // Per (row, key block in this tile): log2 of the block's sum, merged into scratch
      // (a block that began in an earlier tile adds to what that tile wrote).
      const int big_r = a.rows_per_block;
      const int64_t kb_first = c0 / big_r, kb_last = (c0 + kCols - 1) / big_r;
      const int nseg = static_cast<int>(kb_last - kb_first + 1);
      for (int x = threadIdx.x; x < rt_rows * nseg; x += nthreads) {
        const int i = x % rt_rows;
        const int64_t kb = kb_first + x / rt_rows;
        const int64_t r = r0 + i;
        if (r >= r_end || kb > r / big_r) continue;
        const int64_t cb = max(kb * big_r, c0), ce = min((kb + 1) * big_r, c0 + kCols);
        float sum = 0.f;
        for (int64_t c = cb; c < ce; ++c) sum += p_tile[i * kPStride + (c - c0)];
        const float m = row_max[i];
        const float v = (sum > 0.f && m != -INFINITY) ? m + log2f(sum) : -INFINITY;
        float* slot = scratch_h + (TriangleBefore(r, big_r) - tri0) + kb;
        *slot = kb * big_r < c0 ? LogAddExp2(*slot, v) : v;
      }
      __syncthreads();
    } else {
      __syncthreads();  // the B buffer of this step is refilled two steps on
    }
  }
  if (tq == 0) {
    if (r_lo < r_end)
      a.row_lse[int64_t{h} * (a.last_r - a.first_r + 1) + (r_lo - a.first_r)] =
          run_m_lo + log2f(run_l_lo);
    if (r_hi < r_end)
      a.row_lse[int64_t{h} * (a.last_r - a.first_r + 1) + (r_hi - a.first_r)] =
          run_m_hi + log2f(run_l_hi);
  }
}

struct XAttnChooseArgs {
  int rows_per_block;
  int64_t first_r, last_r;
  int first_qb, nqb, nb;
  double threshold;
  int64_t scratch_per_head;
  const float* scratch;
  const float* row_lse;
  int32_t* staging;  // [hq][nqb][nb]
  int32_t* counts;   // [hq][nqb]
};

__global__ void __launch_bounds__(kChooseThreads) XAttnChooseKernel(XAttnChooseArgs a) {
  __shared__ TopKShared sm;
  __shared__ double red[32];
  __shared__ double total_sh;
  extern __shared__ __align__(16) float mass[];  // [qb + 1]
  const int b = blockIdx.x, h = blockIdx.y;
  const int qb = a.first_qb + b, cols = qb + 1;
  const int big_r = a.rows_per_block;
  const int64_t rb = max(int64_t{qb} * big_r, a.first_r),
                re = min(int64_t{qb + 1} * big_r, a.last_r + 1);
  const float* scratch_h = a.scratch + int64_t{h} * a.scratch_per_head;
  const float* lse = a.row_lse + int64_t{h} * (a.last_r - a.first_r + 1);
  const int64_t tri0 = TriangleBefore(a.first_r, big_r);
  double local_total = 0;
  for (int kb = threadIdx.x; kb < cols; kb += kChooseThreads) {
    float m = 0.f;
    for (int64_t r = rb; r < re; ++r) {
      const float l = scratch_h[(TriangleBefore(r, big_r) - tri0) + kb];
      if (l != -INFINITY) m += exp2f(l - lse[r - a.first_r]);
    }
    mass[kb] = m;
    local_total += m;
  }
  BlockExclusiveSum<kChooseThreads>(local_total, red, &total_sh);  // also publishes mass[]
  const double total = total_sh;
  int32_t* out = a.staging + (int64_t{h} * a.nqb + b) * a.nb;
  int k = cols;
  if (a.threshold < 1.0) {
    const int forced = qb >= 1 ? 2 : 1;
    const double forced_mass = mass[0] + (qb >= 1 ? mass[qb] : 0.f);
    const double room = a.threshold * total - forced_mass;
    int others = 0;
    if (room > 0 && cols > forced) {
      others = CoverCountDevice<kChooseThreads, true>(
          [&](int i) { return (i == 0 || i == qb) ? -1.f : mass[i]; }, cols, room, sm);
      others = min(others, cols - forced);
    }
    k = forced + others;
  }
  SelectTopKSorted<kChooseThreads>(
      [&](int i) { return (i == 0 || i == qb) ? kForcedKey : OrderedKey(mass[i]); }, cols, k, sm,
      out);
  if (threadIdx.x == 0) a.counts[int64_t{h} * a.nqb + b] = k;
}

}  // namespace
}  // namespace select_internal

namespace {

using select_internal::CheckCapacity;
using select_internal::CheckPrefillShape;
using select_internal::PrefillShape;
using select_internal::WorkspaceCarver;

struct XAttnPlan {
  int64_t rows_per_block = 0;  // R
  int64_t first_r = 0, last_r = 0;
  int rows_per_cta = 0;
  int64_t first_qb = 0, nqb = 0, nb = 0;
  int64_t scratch_per_head = 0;
  int score_smem = 0;
  float* scratch = nullptr;
  float* row_lse = nullptr;
  int32_t* staging = nullptr;
  int32_t* counts = nullptr;
  int64_t workspace_bytes = 0;
};

int ScoreSmem(int rows_per_cta, int stride, int d) {
  return rows_per_cta * (stride * d + 8) * 2 + 2 * 64 * (d + 8) * 2 +
         (rows_per_cta * 65 + rows_per_cta) * 4;
}

absl::StatusOr<XAttnPlan> PlanXAttention(const PrefillShape& s, const kernels::XAttentionParams& p,
                                         void* base) {
  if (p.block < 1 || p.stride < 1 || p.stride > p.block || p.block % p.stride != 0) {
    return absl::InvalidArgumentError(absl::StrCat("parameter 'stride' of method xattention (",
                                                   p.stride, ") must divide 'block' (", p.block,
                                                   ")"));
  }
  if (s.q_offset % p.block != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("xattention selection: the queries' first position (", s.q_offset,
                     ") must be a multiple of parameter 'block' (", p.block, ") on the GPU"));
  }
  XAttnPlan plan;
  plan.rows_per_block = p.block / p.stride;
  plan.first_r = s.q_offset / p.stride;
  plan.last_r = (s.q_offset + s.lq - 1) / p.stride;
  plan.rows_per_cta = 64;
  while (plan.rows_per_cta > 16 &&
         ScoreSmem(plan.rows_per_cta, static_cast<int>(p.stride), s.d) > 200 * 1024) {
    plan.rows_per_cta /= 2;
  }
  plan.score_smem = ScoreSmem(plan.rows_per_cta, static_cast<int>(p.stride), s.d);
  if (plan.score_smem > 220 * 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("xattention selection: stride ", p.stride, " x head dim ", s.d,
                     " needs more shared memory than a CTA has; use a smaller 'stride'"));
  }
  plan.first_qb = s.q_offset / p.block;
  plan.nqb = (s.lq + p.block - 1) / p.block;
  plan.nb = plan.first_qb + plan.nqb;
  auto tri = [&](int64_t r) {
    const int64_t q = r / plan.rows_per_block;
    return r + plan.rows_per_block * q * (q - 1) / 2 + (r - q * plan.rows_per_block) * q;
  };
  plan.scratch_per_head = tri(plan.last_r + 1) - tri(plan.first_r);
  WorkspaceCarver carver(base);
  plan.scratch = carver.Take<float>(int64_t{s.hq} * plan.scratch_per_head);
  plan.row_lse = carver.Take<float>(int64_t{s.hq} * (plan.last_r - plan.first_r + 1));
  plan.staging = carver.Take<int32_t>(int64_t{s.hq} * plan.nqb * plan.nb);
  plan.counts = carver.Take<int32_t>(int64_t{s.hq} * plan.nqb);
  plan.workspace_bytes = carver.used();
  return plan;
}

template <int D>
absl::Status LaunchXAttnScores(const select_internal::XAttnArgs& a, const XAttnPlan& plan, int hq,
                               cudaStream_t stream) {
  SF_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(select_internal::XAttnScoreKernel<D>,
                                               cudaFuncAttributeMaxDynamicSharedMemorySize,
                                               plan.score_smem));
  const int row_tiles =
      static_cast<int>((plan.last_r - plan.first_r + plan.rows_per_cta) / plan.rows_per_cta);
  select_internal::XAttnScoreKernel<D>
      <<<dim3(row_tiles, hq), plan.rows_per_cta / 16 * 32, plan.score_smem, stream>>>(a);
  return CudaStatus(cudaGetLastError(), "xattention score kernel");
}

}  // namespace

absl::StatusOr<SelectionSizes> XAttentionSelectSizes(const AttentionParams& attn,
                                                     const kernels::XAttentionParams& p) {
  SF_ASSIGN_OR_RETURN(PrefillShape s, CheckPrefillShape(attn, "xattention"));
  SF_ASSIGN_OR_RETURN(XAttnPlan plan, PlanXAttention(s, p, nullptr));
  SelectionSizes z;
  z.workspace_bytes = plan.workspace_bytes;
  z.block_offsets = int64_t{s.hq} * plan.nqb + 1;
  int64_t most = 0;  // every causal block of every list
  for (int64_t b = 0; b < plan.nqb; ++b) most += plan.first_qb + b + 1;
  z.key_blocks = most * s.hq;
  return z;
}

absl::StatusOr<BlockSelection> SelectXAttention(const AttentionParams& attn,
                                                const kernels::XAttentionParams& p,
                                                const SelectionBuffers& out) {
  SF_ASSIGN_OR_RETURN(SelectionSizes z, XAttentionSelectSizes(attn, p));
  SF_ASSIGN_OR_RETURN(PrefillShape s, CheckPrefillShape(attn, "xattention"));
  SF_ASSIGN_OR_RETURN(XAttnPlan plan, PlanXAttention(s, p, out.workspace));
  SF_RETURN_IF_ERROR(CheckCapacity("xattention", "workspace", out.workspace, out.workspace_bytes,
                                   z.workspace_bytes));
  SF_RETURN_IF_ERROR(CheckCapacity("xattention", "key_blocks", out.key_blocks,
                                   out.key_blocks_capacity, z.key_blocks));
  if (out.block_offsets == nullptr) {
    return absl::InvalidArgumentError("xattention selection: block_offsets must be given");
  }
  select_internal::XAttnArgs a;
  a.q = static_cast<const __nv_bfloat16*>(attn.q);
  a.q_row_stride = attn.q_row_stride;
  a.q_head_stride = attn.q_head_stride;
  a.k = static_cast<const __nv_bfloat16*>(attn.k);
  a.kv_head_stride = attn.kv_head_stride;
  a.kv_row_stride = attn.kv_row_stride;
  a.group = s.group;
  a.stride = static_cast<int>(p.stride);
  a.rows_per_block = static_cast<int>(plan.rows_per_block);
  a.lq = s.lq;
  a.lk = s.lk;
  a.q_offset = s.q_offset;
  a.first_r = plan.first_r;
  a.last_r = plan.last_r;
  a.rows_per_cta = plan.rows_per_cta;
  a.scale_log2 =
      static_cast<float>(1.4426950408889634 / (std::sqrt(static_cast<double>(s.d)) * p.stride));
  a.scratch_per_head = plan.scratch_per_head;
  a.scratch = plan.scratch;
  a.row_lse = plan.row_lse;
  switch (s.d) {
    case 64:
      SF_RETURN_IF_ERROR(LaunchXAttnScores<64>(a, plan, s.hq, attn.stream));
      break;
    case 128:
      SF_RETURN_IF_ERROR(LaunchXAttnScores<128>(a, plan, s.hq, attn.stream));
      break;
    default:
      SF_RETURN_IF_ERROR(LaunchXAttnScores<256>(a, plan, s.hq, attn.stream));
  }
  select_internal::XAttnChooseArgs c;
  c.rows_per_block = static_cast<int>(plan.rows_per_block);
  c.first_r = plan.first_r;
  c.last_r = plan.last_r;
  c.first_qb = static_cast<int>(plan.first_qb);
  c.nqb = static_cast<int>(plan.nqb);
  c.nb = static_cast<int>(plan.nb);
  c.threshold = p.threshold;
  c.scratch_per_head = plan.scratch_per_head;
  c.scratch = plan.scratch;
  c.row_lse = plan.row_lse;
  c.staging = plan.staging;
  c.counts = plan.counts;
  const int mass_bytes = static_cast<int>(4 * plan.nb);
  SF_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(
      select_internal::XAttnChooseKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, mass_bytes));
  select_internal::XAttnChooseKernel<<<dim3(c.nqb, s.hq), select_internal::kChooseThreads,
                                       mass_bytes, attn.stream>>>(c);
  SF_RETURN_IF_ERROR(CudaStatus(cudaGetLastError(), "xattention choice kernel"));
  SF_RETURN_IF_ERROR(
      select_internal::LaunchPackBlockLists(plan.counts, plan.staging, int64_t{s.hq} * plan.nqb,
                                            c.nb, out.block_offsets, out.key_blocks, attn.stream));
  BlockSelection sel;
  sel.heads.count = s.hq;
  sel.block = static_cast<int32_t>(p.block);
  sel.num_query_blocks = static_cast<int32_t>(plan.nqb);
  sel.offsets = out.block_offsets;
  sel.key_blocks = out.key_blocks;
  return sel;
}

}  // namespace sf::cuda
