// SnapKV / Ada-SnapKV selection and KV compaction (snapkv.h). Stages, each a kernel:
//  1. per (key block, KV head, sequence): each window query's partial softmax max and sum
//     over the block's keys (thread = query row, keys from shared memory);
//  2. per query row: the partials merged into the row's max and sum;
//  3. per (key block, KV head, sequence): probabilities again, reduced per key over the
//     window and the group's heads (sum / G for snapkv, max for ada_snapkv);
//  4. average pooling (zero padding, divided by `pool`);
//  5. top-k with forced rows per KV head (snapkv), or Ada-SnapKV's floor per head plus one
//     top-k across the heads of the layer, in one CTA per sequence.
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "kernels/cuda/attention/block_topk.cuh"
#include "kernels/cuda/attention/snapkv.h"
#include "kernels/cuda/check.h"

namespace sf::cuda {
namespace {

constexpr int kKeysPerBlock = 64;
constexpr int kRowThreads = 256;  // window rows per pass of a scoring CTA
constexpr int kSelectThreads = 1024;
constexpr float kLog2e = 1.4426950408889634f;

struct ScoreArgs {
  const __nv_bfloat16* k = nullptr;
  const void* const* k_seqs = nullptr;
  int64_t kv_batch_stride = 0, kv_head_stride = 0, kv_row_stride = 0;
  const int32_t* lengths = nullptr;
  int64_t max_len = 0;
  int32_t num_kv_heads = 0, group = 1;
  ObservationQueries obs;
  int32_t w = 0;    // window rows used: the last w of obs.rows
  int32_t nkb = 0;  // key blocks over max_len
  float scale_log2 = 0;
  bool adaptive = false;
  float2* partial = nullptr;    // [batch][hq][w][nkb] (max, sum), log2 domain
  float2* rowstat = nullptr;    // [batch][hq][w]
  float* importance = nullptr;  // [batch][hkv][max_len]

  __device__ int64_t Length(int b, int g) const {
    return lengths != nullptr ? lengths[b * num_kv_heads + g] : max_len;
  }
};

__device__ __forceinline__ float2 Unpack(uint32_t w) {
  return make_float2(__uint_as_float(w << 16), __uint_as_float(w & 0xffff0000u));
}

// Stages 1 and 3. kImportance false: partial (max, sum) per row; true: per-key reduction
// of the probabilities.
template <int D, bool kImportance>
__global__ void __launch_bounds__(kRowThreads) WindowScoresKernel(const ScoreArgs a) {
  const int kb = blockIdx.x, g = blockIdx.y, b = blockIdx.z;
  const int64_t P = a.Length(b, g);
  const int64_t j0 = static_cast<int64_t>(kb) * kKeysPerBlock;
  if (j0 >= P) return;
  const int nkeys = static_cast<int>(min(static_cast<int64_t>(kKeysPerBlock), P - j0));
  __shared__ uint32_t ks[kKeysPerBlock][D / 2];
  __shared__ float part_sum[kRowThreads / 32][kKeysPerBlock];
  __shared__ float part_max[kRowThreads / 32][kKeysPerBlock];
  const __nv_bfloat16* kh = (a.k_seqs != nullptr ? static_cast<const __nv_bfloat16*>(a.k_seqs[b])
                                                 : a.k + b * a.kv_batch_stride) +
                            g * a.kv_head_stride;
  for (int x = threadIdx.x; x < kKeysPerBlock * D / 2; x += kRowThreads) {
    const int j = x / (D / 2), d2 = x % (D / 2);
    ks[j][d2] = j < nkeys
                    ? *reinterpret_cast<const uint32_t*>(kh + (j0 + j) * a.kv_row_stride + 2 * d2)
                    : 0u;
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (kImportance) {
    for (int j = lane; j < kKeysPerBlock; j += 32) part_sum[warp][j] = part_max[warp][j] = 0.0f;
  }
  __syncthreads();
  const int hq = a.num_kv_heads * a.group;
  for (int hh = 0; hh < a.group; ++hh) {
    const int h = g * a.group + hh;
    for (int i0 = 0; i0 < a.w; i0 += kRowThreads) {
      const int i = i0 + threadIdx.x;  // row of the used window
      const bool active = i < a.w;
      const int obs_row = a.obs.rows - a.w + i;
      const int64_t pos = P - a.obs.rows + obs_row;
      uint32_t q[D / 2];
      const __nv_bfloat16* qr =
          static_cast<const __nv_bfloat16*>(a.obs.q) + b * a.obs.batch_stride +
          static_cast<int64_t>(active ? obs_row : 0) * a.obs.row_stride + h * a.obs.head_stride;
#pragma unroll
      for (int d2 = 0; d2 < D / 2; ++d2)
        q[d2] = active ? *reinterpret_cast<const uint32_t*>(qr + 2 * d2) : 0u;
      const int64_t slot = (static_cast<int64_t>(b) * hq + h) * a.w + (active ? i : 0);
      float m = -INFINITY, l = 0.0f;
      float2 stat = make_float2(0.0f, 1.0f);
      if (kImportance && active) stat = a.rowstat[slot];
      for (int j = 0; j < nkeys; ++j) {
        float s = 0.0f;
#pragma unroll
        for (int d2 = 0; d2 < D / 2; ++d2) {
          const float2 qq = Unpack(q[d2]), kk = Unpack(ks[j][d2]);
          s = fmaf(qq.x, kk.x, s);
          s = fmaf(qq.y, kk.y, s);
        }
        const bool visible = active && j0 + j <= pos;
        s *= a.scale_log2;
        if (!kImportance) {
          if (visible) {
            const float mn = fmaxf(m, s);
            l = l * exp2f(m - mn) + exp2f(s - mn);
            m = mn;
          }
        } else {
          float p = visible ? exp2f(s - stat.x) / stat.y : 0.0f;
          float mx = p;
#pragma unroll
          for (int o = 16; o >= 1; o /= 2) {
            p += __shfl_xor_sync(0xffffffffu, p, o);
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
          }
          if (lane == 0) {
            part_sum[warp][j] += p;
            part_max[warp][j] = fmaxf(part_max[warp][j], mx);
          }
        }
      }
      if (!kImportance && active) a.partial[slot * a.nkb + kb] = make_float2(m, l);
    }
  }
  if (kImportance) {
    __syncthreads();
    for (int j = threadIdx.x; j < nkeys; j += kRowThreads) {
      float s = 0.0f, mx = 0.0f;
#pragma unroll
      for (int w = 0; w < kRowThreads / 32; ++w) {
        s += part_sum[w][j];
        mx = fmaxf(mx, part_max[w][j]);
      }
      a.importance[(static_cast<int64_t>(b) * a.num_kv_heads + g) * a.max_len + j0 + j] =
          a.adaptive ? mx : s / a.group;
    }
  }
}

// Stage 2: one thread per (sequence, query head, window row).
__global__ void MergeRowStatsKernel(const ScoreArgs a, int batch) {
  const int hq = a.num_kv_heads * a.group;
  const int64_t slot = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (slot >= static_cast<int64_t>(batch) * hq * a.w) return;
  const int b = static_cast<int>(slot / (static_cast<int64_t>(hq) * a.w));
  const int h = static_cast<int>(slot / a.w % hq);
  const int64_t P = a.Length(b, h / a.group);
  const int nkb = static_cast<int>((P + kKeysPerBlock - 1) / kKeysPerBlock);
  float m = -INFINITY;
  for (int kb = 0; kb < nkb; ++kb) m = fmaxf(m, a.partial[slot * a.nkb + kb].x);
  float l = 0.0f;
  for (int kb = 0; kb < nkb; ++kb) {
    const float2 x = a.partial[slot * a.nkb + kb];
    if (x.y > 0.0f) l += x.y * exp2f(x.x - m);
  }
  a.rowstat[slot] = make_float2(m, l);
}

// Stage 4: pooled[j] = sum of x over [j - pool/2, j + pool/2] inside [0, P), / pool.
__global__ void PoolKernel(const float* x, float* pooled, const int32_t* lengths, int64_t max_len,
                           int32_t num_kv_heads, int32_t pool) {
  const int g = blockIdx.y, b = blockIdx.z;
  const int64_t P = lengths != nullptr ? lengths[b * num_kv_heads + g] : max_len;
  const int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (j >= P) return;
  const int64_t base = (static_cast<int64_t>(b) * num_kv_heads + g) * max_len;
  const int64_t lo = max(static_cast<int64_t>(0), j - pool / 2);
  const int64_t hi = min(P, j + pool / 2 + 1);
  float s = 0.0f;
  for (int64_t t = lo; t < hi; ++t) s += x[base + t];
  pooled[base + j] = s / pool;
}

struct SelectArgs {
  const float* pooled = nullptr;
  const int32_t* lengths = nullptr;
  int64_t max_len = 0;
  int32_t num_kv_heads = 0;
  int64_t keep_first = 0, keep_last = 0, capacity = 0, floor_count = 0;
  uint8_t* flags = nullptr;    // ada: [batch][hkv][max_len]
  int32_t* scratch = nullptr;  // ada: [batch][max(max_len, hkv * capacity)]
  int64_t scratch_stride = 0;
  int32_t* offsets = nullptr;
  int32_t* rows = nullptr;

  __device__ int64_t Length(int b, int g) const {
    return lengths != nullptr ? lengths[b * num_kv_heads + g] : max_len;
  }
  // Forced rows rank above every score; the rest by their pooled importance.
  __device__ uint32_t Key(int b, int g, int64_t P, int64_t j) const {
    if (j < keep_first || j >= P - keep_last) return 0xffffffffu;
    return topk_internal::OrderedKey(
        pooled[(static_cast<int64_t>(b) * num_kv_heads + g) * max_len + j]);
  }
};

// Stage 5, snapkv: block (KV head, sequence).
__global__ void __launch_bounds__(kSelectThreads) SelectSnapKvKernel(const SelectArgs a) {
  const int g = blockIdx.x, b = blockIdx.y;
  const int64_t index = static_cast<int64_t>(b) * a.num_kv_heads + g;
  int64_t before = 0;
  for (int64_t j = threadIdx.x; j < index; j += kSelectThreads) {
    before += min(a.capacity, a.Length(static_cast<int>(j / a.num_kv_heads),
                                       static_cast<int>(j % a.num_kv_heads)));
  }
  int offset = 0;
  topk_internal::BlockInclusiveSum<kSelectThreads>(static_cast<int>(before), &offset);
  const int64_t P = a.Length(b, g);
  const int64_t count = min(a.capacity, P);
  if (threadIdx.x == 0) {
    a.offsets[index] = offset;
    if (index == static_cast<int64_t>(gridDim.y) * a.num_kv_heads - 1)
      a.offsets[index + 1] = offset + count;
  }
  topk_internal::BlockTopKSorted<kSelectThreads>([&](int64_t j) { return a.Key(b, g, P, j); }, P,
                                                 count, a.rows + offset);
}

// Stage 5, ada_snapkv: block (sequence). Every head's floor first, then the rest of the
// layer's budget to the best rows not yet chosen of any head (ties: lower head, then
// lower row), then each head's chosen rows in order.
__global__ void __launch_bounds__(kSelectThreads) SelectAdaSnapKvKernel(const SelectArgs a) {
  const int b = blockIdx.x;
  const int hkv = a.num_kv_heads;
  const int64_t P = a.Length(b, 0);
  uint8_t* flags = a.flags + static_cast<int64_t>(b) * hkv * a.max_len;
  int32_t* scratch = a.scratch + b * a.scratch_stride;
  for (int64_t i = threadIdx.x; i < hkv * a.max_len; i += kSelectThreads) flags[i] = 0;
  __syncthreads();
  for (int g = 0; g < hkv; ++g) {
    const int64_t n = topk_internal::BlockTopKSorted<kSelectThreads>(
        [&](int64_t j) { return a.Key(b, g, P, j); }, P, a.floor_count, scratch);
    __syncthreads();
    for (int64_t x = threadIdx.x; x < n; x += kSelectThreads) flags[g * a.max_len + scratch[x]] = 1;
    __syncthreads();
  }
  const int64_t remaining = max(static_cast<int64_t>(0), (a.capacity - a.floor_count) * hkv);
  const int64_t take = min(remaining, hkv * P - hkv * a.floor_count);
  const int64_t n = topk_internal::BlockTopKSorted<kSelectThreads>(
      [&](int64_t i) -> uint32_t {
        const int g = static_cast<int>(i / P);
        const int64_t j = i % P;
        if (flags[g * a.max_len + j]) return 0u;  // below every real key
        return topk_internal::OrderedKey(
            a.pooled[(static_cast<int64_t>(b) * hkv + g) * a.max_len + j]);
      },
      hkv* P, take, scratch);
  __syncthreads();
  for (int64_t x = threadIdx.x; x < n; x += kSelectThreads) {
    flags[scratch[x] / P * a.max_len + scratch[x] % P] = 1;
  }
  __syncthreads();
  // Sequence b's rows start after every earlier sequence's capacity x hkv.
  int64_t out = 0;
  for (int bb = 0; bb < b; ++bb) out += min(a.capacity, a.Length(bb, 0)) * hkv;
  for (int g = 0; g < hkv; ++g) {
    if (threadIdx.x == 0) a.offsets[b * hkv + g] = static_cast<int32_t>(out);
    const int64_t per = (P + kSelectThreads - 1) / kSelectThreads;
    const int64_t lo = min(P, static_cast<int64_t>(threadIdx.x) * per), hi = min(P, lo + per);
    int mine = 0;
    for (int64_t j = lo; j < hi; ++j) mine += flags[g * a.max_len + j];
    int total = 0;
    int pos = topk_internal::BlockInclusiveSum<kSelectThreads>(mine, &total) - mine;
    for (int64_t j = lo; j < hi; ++j) {
      if (flags[g * a.max_len + j]) a.rows[out + pos++] = static_cast<int32_t>(j);
    }
    out += total;
  }
  if (threadIdx.x == 0 && b == static_cast<int>(gridDim.x) - 1)
    a.offsets[(b + 1) * hkv] = static_cast<int32_t>(out);
}

// Block (chunk of kept rows, KV head, sequence); 16-byte copies.
__global__ void CompactKernel(const __nv_bfloat16* k, const __nv_bfloat16* v, __nv_bfloat16* kd,
                              __nv_bfloat16* vd, int64_t batch_stride, int64_t head_stride,
                              int64_t row_stride, int32_t head_dim, int32_t num_kv_heads,
                              const int32_t* offsets, const int32_t* rows, int32_t* dst_lengths,
                              int rows_per_block) {
  const int g = blockIdx.y, b = blockIdx.z;
  const int64_t list = static_cast<int64_t>(b) * num_kv_heads + g;
  const int32_t begin = offsets[list], count = offsets[list + 1] - begin;
  if (blockIdx.x == 0 && threadIdx.x == 0) dst_lengths[list] = count;
  const int vecs = head_dim / 8;
  const int64_t base = b * batch_stride + g * head_stride;
  for (int x = threadIdx.x; x < rows_per_block * vecs; x += blockDim.x) {
    const int64_t n = static_cast<int64_t>(blockIdx.x) * rows_per_block + x / vecs;
    if (n >= count) break;
    const int64_t src = base + rows[begin + n] * row_stride + 8 * (x % vecs);
    const int64_t dst = base + n * row_stride + 8 * (x % vecs);
    *reinterpret_cast<uint4*>(kd + dst) = *reinterpret_cast<const uint4*>(k + src);
    *reinterpret_cast<uint4*>(vd + dst) = *reinterpret_cast<const uint4*>(v + src);
  }
}

struct Layout {
  int64_t nkb, partial, rowstat, importance, pooled, flags, scratch, scratch_stride, total;
};

Layout WorkspaceLayout(const AttentionParams& p, const ObservationQueries& obs,
                       const SnapKvArgs& args) {
  Layout l;
  const int64_t w = std::min<int64_t>(args.window, obs.rows);
  const int64_t hq = p.num_q_heads, P = p.max_kv_length;
  l.nkb = (P + kKeysPerBlock - 1) / kKeysPerBlock;
  auto align = [](int64_t x) { return (x + 255) / 256 * 256; };
  l.partial = 0;
  l.rowstat = align(l.partial + p.batch * hq * w * l.nkb * 8);
  l.importance = align(l.rowstat + p.batch * hq * w * 8);
  l.pooled = align(l.importance + p.batch * p.num_kv_heads * P * 4);
  l.flags = align(l.pooled + p.batch * p.num_kv_heads * P * 4);
  l.scratch_stride = std::max<int64_t>(P, p.num_kv_heads * args.token_capacity);
  l.scratch = align(l.flags + (args.adaptive ? p.batch * p.num_kv_heads * P : 0));
  l.total = l.scratch + (args.adaptive ? p.batch * l.scratch_stride * 4 : 0);
  return l;
}

absl::Status CheckSnapKv(const AttentionParams& p, const ObservationQueries& obs,
                         const SnapKvArgs& args) {
  const char* name = args.adaptive ? "ada_snapkv" : "snapkv";
  auto bad = [name](const auto&... why) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": ", why...));
  };
  if (p.k == nullptr || obs.q == nullptr) return bad("p.k and obs.q must be device pointers");
  if (p.dtype != AttnDType::kBf16) return bad("dtype must be bf16");
  if (p.head_dim != 64 && p.head_dim != 128 && p.head_dim != 256) {
    return bad("head_dim is ", p.head_dim, "; supported: 64, 128, 256");
  }
  if (p.num_kv_heads < 1 || p.num_q_heads % p.num_kv_heads != 0 || p.batch < 1) {
    return bad("num_q_heads must be a multiple of num_kv_heads, batch >= 1");
  }
  if (obs.rows < 1 || obs.rows > p.max_kv_length) {
    return bad("obs.rows is ", obs.rows, "; must be in [1, prompt length ", p.max_kv_length, "]");
  }
  if (args.window < 1 || args.pool < 1) return bad("window and pool must be >= 1");
  if (args.token_capacity > p.max_kv_length) {
    return bad("parameter 'token_capacity' is ", args.token_capacity, ", larger than the prompt (",
               p.max_kv_length, ")");
  }
  const int64_t forced = std::min(args.keep_first + args.keep_last, p.max_kv_length);
  if (args.token_capacity < forced) {
    return bad("parameter 'token_capacity' is ", args.token_capacity,
               ", below keep_first + keep_last (", forced, ")");
  }
  return absl::OkStatus();
}

template <bool kImportance>
void LaunchWindowScores(const ScoreArgs& a, int head_dim, dim3 grid, cudaStream_t stream) {
  switch (head_dim) {
    case 64:
      WindowScoresKernel<64, kImportance><<<grid, kRowThreads, 0, stream>>>(a);
      break;
    case 128:
      WindowScoresKernel<128, kImportance><<<grid, kRowThreads, 0, stream>>>(a);
      break;
    default:
      WindowScoresKernel<256, kImportance><<<grid, kRowThreads, 0, stream>>>(a);
  }
}

}  // namespace

int64_t SnapKvWorkspaceBytes(const AttentionParams& p, const ObservationQueries& obs,
                             const SnapKvArgs& args) {
  return WorkspaceLayout(p, obs, args).total;
}

absl::Status SnapKvSelect(const AttentionParams& p, const ObservationQueries& obs,
                          const SnapKvArgs& args, const KeptRowsOut& out) {
  SF_RETURN_IF_ERROR(CheckSnapKv(p, obs, args));
  if (out.offsets == nullptr || out.rows == nullptr) {
    return absl::InvalidArgumentError("snapkv: out.offsets and out.rows must be device pointers");
  }
  const Layout l = WorkspaceLayout(p, obs, args);
  if (p.workspace == nullptr || p.workspace_bytes < l.total) {
    return absl::InvalidArgumentError(
        absl::StrCat("snapkv: workspace_bytes is ", p.workspace_bytes, "; needs ", l.total));
  }
  char* ws = static_cast<char*>(p.workspace);
  ScoreArgs a;
  a.k = static_cast<const __nv_bfloat16*>(p.k);
  a.k_seqs = p.k_seqs;
  a.kv_batch_stride = p.kv_batch_stride;
  a.kv_head_stride = p.kv_head_stride;
  a.kv_row_stride = p.kv_row_stride;
  a.lengths = p.kv_lengths;
  a.max_len = p.max_kv_length;
  a.num_kv_heads = p.num_kv_heads;
  a.group = p.num_q_heads / p.num_kv_heads;
  a.obs = obs;
  a.w = static_cast<int32_t>(std::min<int64_t>(args.window, obs.rows));
  a.nkb = static_cast<int32_t>(l.nkb);
  a.scale_log2 = p.softmax_scale * kLog2e;
  a.adaptive = args.adaptive;
  a.partial = reinterpret_cast<float2*>(ws + l.partial);
  a.rowstat = reinterpret_cast<float2*>(ws + l.rowstat);
  a.importance = reinterpret_cast<float*>(ws + l.importance);
  const dim3 grid(static_cast<unsigned>(l.nkb), p.num_kv_heads, p.batch);
  LaunchWindowScores<false>(a, p.head_dim, grid, p.stream);
  SF_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  const int64_t rows = static_cast<int64_t>(p.batch) * p.num_q_heads * a.w;
  MergeRowStatsKernel<<<static_cast<unsigned>((rows + 255) / 256), 256, 0, p.stream>>>(a, p.batch);
  SF_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  LaunchWindowScores<true>(a, p.head_dim, grid, p.stream);
  SF_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  float* pooled = reinterpret_cast<float*>(ws + l.pooled);
  PoolKernel<<<dim3(static_cast<unsigned>((p.max_kv_length + 255) / 256), p.num_kv_heads, p.batch),
               256, 0, p.stream>>>(a.importance, pooled, p.kv_lengths, p.max_kv_length,
                                   p.num_kv_heads, static_cast<int32_t>(args.pool));
  SF_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  SelectArgs s;
  s.pooled = pooled;
  s.lengths = p.kv_lengths;
  s.max_len = p.max_kv_length;
  s.num_kv_heads = p.num_kv_heads;
  s.keep_first = args.keep_first;
  s.keep_last = args.keep_last;
  s.capacity = args.token_capacity;
  s.offsets = out.offsets;
  s.rows = out.rows;
  if (!args.adaptive) {
    SelectSnapKvKernel<<<dim3(p.num_kv_heads, p.batch), kSelectThreads, 0, p.stream>>>(s);
  } else {
    const int64_t forced = std::min(args.keep_first + args.keep_last, p.max_kv_length);
    s.floor_count = std::min(
        p.max_kv_length, std::max(static_cast<int64_t>(args.token_capacity * args.floor), forced));
    s.flags = reinterpret_cast<uint8_t*>(ws + l.flags);
    s.scratch = reinterpret_cast<int32_t*>(ws + l.scratch);
    s.scratch_stride = l.scratch_stride;
    SelectAdaSnapKvKernel<<<p.batch, kSelectThreads, 0, p.stream>>>(s);
  }
  SF_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

absl::Status CompactKv(const AttentionParams& p, const KeptRows& kept, void* k_dst, void* v_dst,
                       int32_t* dst_lengths) {
  if (p.k == nullptr || p.v == nullptr || k_dst == nullptr || v_dst == nullptr ||
      dst_lengths == nullptr || kept.offsets == nullptr || kept.rows == nullptr) {
    return absl::InvalidArgumentError(
        "compact kv: p.k, p.v, k_dst, v_dst, dst_lengths and kept lists must be device pointers");
  }
  if (k_dst == p.k || v_dst == p.v || k_dst == p.v || v_dst == p.k) {
    return absl::InvalidArgumentError("compact kv: k_dst / v_dst must not be the source cache");
  }
  if (p.k_seqs != nullptr) {
    return absl::InvalidArgumentError(
        "compact kv: per-sequence pointer arrays are not supported; "
        "use kv_batch_stride");
  }
  if (kept.num_kv_heads != p.num_kv_heads || p.head_dim % 8 != 0 || p.kv_row_stride % 8 != 0) {
    return absl::InvalidArgumentError(
        "compact kv: kept.num_kv_heads must equal num_kv_heads; head_dim and strides multiples of "
        "8");
  }
  constexpr int kRows = 64;
  const dim3 grid(static_cast<unsigned>((p.max_kv_length + kRows - 1) / kRows), p.num_kv_heads,
                  p.batch);
  CompactKernel<<<grid, 256, 0, p.stream>>>(
      static_cast<const __nv_bfloat16*>(p.k), static_cast<const __nv_bfloat16*>(p.v),
      static_cast<__nv_bfloat16*>(k_dst), static_cast<__nv_bfloat16*>(v_dst), p.kv_batch_stride,
      p.kv_head_stride, p.kv_row_stride, p.head_dim, p.num_kv_heads, kept.offsets, kept.rows,
      dst_lengths, kRows);
  SF_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

}  // namespace sf::cuda
