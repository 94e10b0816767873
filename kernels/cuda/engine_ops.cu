#include <cuda_runtime.h>

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/engine_ops.h"

namespace sf::cuda {
namespace {

constexpr int kThreads = 256;
constexpr unsigned kFullMask = 0xffffffffu;

int GridFor(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<int>(blocks < 65535 ? (blocks > 0 ? blocks : 1) : 65535);
}

absl::Status Launched(const char* what) { return CudaStatus(cudaGetLastError(), what); }

__device__ __forceinline__ float WarpSum(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

__device__ __forceinline__ float WarpMax(float v) {
  for (int offset = 16; offset > 0; offset /= 2)
    v = fmaxf(v, __shfl_xor_sync(kFullMask, v, offset));
  return v;
}

__global__ void EmbeddingGatherKernel(const float* __restrict__ table,
                                      const int32_t* __restrict__ tokens, int64_t n, int64_t cols,
                                      float* __restrict__ out) {
  const int64_t total = n * cols;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    out[i] = table[int64_t{tokens[r]} * cols + c];
  }
}

// One block per row.
__global__ void RmsNormKernel(const float* __restrict__ x, const float* __restrict__ weight,
                              int64_t cols, float eps, float* __restrict__ out) {
  __shared__ float partial[kThreads / 32];
  const float* xr = x + int64_t{blockIdx.x} * cols;
  float* orow = out + int64_t{blockIdx.x} * cols;
  float sum = 0;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) sum = fmaf(xr[c], xr[c], sum);
  sum = WarpSum(sum);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = sum;
  __syncthreads();
  if (threadIdx.x < 32) {
    float v = threadIdx.x < blockDim.x / 32 ? partial[threadIdx.x] : 0.0f;
    v = WarpSum(v);
    if (threadIdx.x == 0) partial[0] = v;
  }
  __syncthreads();
  const float inv = 1.0f / sqrtf(partial[0] / static_cast<float>(cols) + eps);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) orow[c] = weight[c] * (xr[c] * inv);
}

__global__ void AddBiasKernel(float* __restrict__ y, const float* __restrict__ bias, int64_t n,
                              int64_t cols, int64_t row_stride) {
  const int64_t total = n * cols;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    y[r * row_stride + c] += bias[c];
  }
}

__global__ void RopeKernel(float* __restrict__ x, int64_t n, int64_t row_stride, int64_t heads,
                           int64_t head_dim, const float* __restrict__ inv_freq,
                           float attention_scaling, int64_t first_position) {
  const int64_t half = head_dim / 2;
  const int64_t total = n * heads * half;
  for (int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; idx < total;
       idx += int64_t{gridDim.x} * blockDim.x) {
    const int64_t i = idx % half;
    const int64_t h = (idx / half) % heads;
    const int64_t r = idx / (half * heads);
    // Same rounding steps as the CPU engine: float angle, cos/sin in double, then float.
    const float angle = __fmul_rn(static_cast<float>(first_position + r), inv_freq[i]);
    double s_d, c_d;
    sincos(static_cast<double>(angle), &s_d, &c_d);
    const float c = __fmul_rn(static_cast<float>(c_d), attention_scaling);
    const float s = __fmul_rn(static_cast<float>(s_d), attention_scaling);
    float* v = x + r * row_stride + h * head_dim;
    const float a = v[i], b = v[i + half];
    v[i] = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
    v[i + half] = __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
  }
}

__global__ void SiluMulKernel(const float* __restrict__ gate_up, int64_t n, int64_t I,
                              float* __restrict__ act) {
  const int64_t total = n * I;
  for (int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; idx < total;
       idx += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = idx / I, j = idx % I;
    const float g = gate_up[r * 2 * I + j];
    const float u = gate_up[r * 2 * I + I + j];
    act[idx] = g / (1.0f + expf(-g)) * u;
  }
}

__global__ void AppendKvKernel(DeviceKvLayer layer, const float* __restrict__ k,
                               const float* __restrict__ v, int64_t n, int64_t row_stride) {
  const int64_t d = layer.head_dim;
  const int64_t total = int64_t{layer.num_kv_heads} * n * d;
  for (int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; idx < total;
       idx += int64_t{gridDim.x} * blockDim.x) {
    const int64_t c = idx % d;
    const int64_t r = (idx / d) % n;
    const int64_t h = idx / (d * n);
    const int64_t dst = (h * layer.capacity + layer.lengths[h] + r) * d + c;
    const int64_t src = r * row_stride + h * d + c;
    layer.keys[dst] = k[src];
    layer.values[dst] = v[src];
  }
}

__global__ void GrowLengthsKernel(int64_t* lengths, int num_heads, int64_t n) {
  const int h = blockIdx.x * blockDim.x + threadIdx.x;
  if (h < num_heads) lengths[h] += n;
}

// --- Prefill: each block takes kBr queries of one query head; its 8 warps hold kQpw
// queries each (accumulators in registers, kDpl dims per lane) and walk the visible keys in
// tiles of kBc staged in shared memory. A lane scores one key of the tile (K rows padded to
// head_dim + 1 floats so the lanes hit distinct banks), then the warp applies the online
// softmax update and accumulates P V with lanes splitting the head dimension.
constexpr int kPrefillWarps = 8;
constexpr int kQpw = 2;
constexpr int kBr = kPrefillWarps * kQpw;
constexpr int kBc = 32;

size_t PrefillSharedBytes(int d) {
  return sizeof(float) * (static_cast<size_t>(kBr) * d + static_cast<size_t>(kBc) * (d + 1) +
                          static_cast<size_t>(kBc) * d);
}

template <int kDpl>
__global__ void __launch_bounds__(kPrefillWarps * 32) PrefillAttentionKernel(AttentionArgs a) {
  extern __shared__ float smem[];
  const int d = a.layer.head_dim;
  float* qs = smem;                // [kBr][d]
  float* ks = qs + kBr * d;        // [kBc][d + 1]
  float* vs = ks + kBc * (d + 1);  // [kBc][d]
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int head = blockIdx.y;
  const int kvh = head / (a.num_q_heads / a.layer.num_kv_heads);
  const int64_t len = a.layer.lengths[kvh];
  const int64_t before = len - a.n;  // rows held before these queries
  const int64_t q0 = int64_t{blockIdx.x} * kBr;
  const int64_t q_end = q0 + kBr < a.n ? q0 + kBr : a.n;
  const float* kbase = a.layer.keys + int64_t{kvh} * a.layer.capacity * d;
  const float* vbase = a.layer.values + int64_t{kvh} * a.layer.capacity * d;

  for (int idx = threadIdx.x; idx < kBr * d; idx += blockDim.x) {
    const int64_t j = q0 + idx / d;
    qs[idx] = j < a.n ? a.q[j * a.q_row_stride + int64_t{head} * d + idx % d] : 0.0f;
  }
  float m[kQpw], l[kQpw], acc[kQpw][kDpl];
#pragma unroll
  for (int qq = 0; qq < kQpw; ++qq) {
    m[qq] = -INFINITY;
    l[qq] = 0.0f;
#pragma unroll
    for (int t = 0; t < kDpl; ++t) acc[qq][t] = 0.0f;
  }

  const int64_t last_row = before + q_end - 1;  // the block's last query sees up to here
  for (int64_t tile = 0; tile <= last_row; tile += kBc) {
    __syncthreads();  // the previous tile is consumed
    for (int idx = threadIdx.x; idx < kBc * d; idx += blockDim.x) {
      const int r = idx / d, c = idx % d;
      const int64_t row = tile + r;
      float kv = 0.0f, vv = 0.0f;
      if (row < len) {
        kv = kbase[row * d + c];
        vv = vbase[row * d + c];
      }
      ks[r * (d + 1) + c] = kv;
      vs[r * d + c] = vv;
    }
    __syncthreads();
#pragma unroll
    for (int qq = 0; qq < kQpw; ++qq) {
      const int qr = warp * kQpw + qq;
      const int64_t j = q0 + qr;
      const int64_t limit = before + j;        // last visible row of query j
      if (j >= a.n || tile > limit) continue;  // the same for the whole warp
      const float* qrow = qs + qr * d;
      const float* krow = ks + lane * (d + 1);
      float s = 0.0f;
      for (int c = 0; c < d; ++c) s = fmaf(qrow[c], krow[c], s);
      const bool valid = tile + lane <= limit;
      s = valid ? s * a.softmax_scale : -INFINITY;
      const float m_new = fmaxf(m[qq], WarpMax(s));  // finite: lane 0's row is visible
      const float p = valid ? expf(s - m_new) : 0.0f;
      const float alpha = expf(m[qq] - m_new);  // 0 on the first tile
      l[qq] = l[qq] * alpha + WarpSum(p);
      m[qq] = m_new;
#pragma unroll
      for (int t = 0; t < kDpl; ++t) acc[qq][t] *= alpha;
      const int count = limit - tile + 1 < kBc ? static_cast<int>(limit - tile + 1) : kBc;
      for (int jj = 0; jj < count; ++jj) {
        const float pj = __shfl_sync(kFullMask, p, jj);
        const float* vrow = vs + jj * d;
#pragma unroll
        for (int t = 0; t < kDpl; ++t) {
          const int c = lane + 32 * t;
          if (c < d) acc[qq][t] = fmaf(pj, vrow[c], acc[qq][t]);
        }
      }
    }
  }
#pragma unroll
  for (int qq = 0; qq < kQpw; ++qq) {
    const int64_t j = q0 + warp * kQpw + qq;
    if (j >= a.n) continue;
    const float inv = 1.0f / l[qq];
    float* orow = a.out + j * a.out_row_stride + int64_t{head} * d;
#pragma unroll
    for (int t = 0; t < kDpl; ++t) {
      const int c = lane + 32 * t;
      if (c < d) orow[c] = acc[qq][t] * inv;
    }
  }
}

// --- Decode: one query per head; the rows are split into chunks of kDecodeChunk, one
// block each (grid: chunks x heads), and the block's warps take the chunk's 32-row tiles in
// turn. A warp scores a row with lanes splitting the head dimension (coalesced reads),
// then updates its online softmax per tile. Each block leaves (max, sum, unnormalised
// output) in the workspace; DecodeCombineKernel merges the chunks of a head.
constexpr int kDecodeWarps = 4;
constexpr int64_t kDecodeChunk = 512;
constexpr int kMaxHeadDim = 256;

int64_t DecodeSplits(int64_t max_length) {
  const int64_t s = (max_length + kDecodeChunk - 1) / kDecodeChunk;
  return s > 0 ? s : 1;
}

template <int kDpl>
__global__ void __launch_bounds__(kDecodeWarps * 32)
    DecodeAttentionKernel(AttentionArgs a, int64_t splits) {
  __shared__ float sm_m[kDecodeWarps], sm_l[kDecodeWarps];
  __shared__ float sm_acc[kDecodeWarps][kMaxHeadDim];
  const int d = a.layer.head_dim;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int head = blockIdx.y;
  const int kvh = head / (a.num_q_heads / a.layer.num_kv_heads);
  const int64_t len = a.layer.lengths[kvh];
  const int64_t start = int64_t{blockIdx.x} * kDecodeChunk;
  const int64_t end = start + kDecodeChunk < len ? start + kDecodeChunk : len;
  const float* kbase = a.layer.keys + int64_t{kvh} * a.layer.capacity * d;
  const float* vbase = a.layer.values + int64_t{kvh} * a.layer.capacity * d;

  float qv[kDpl], acc[kDpl];
#pragma unroll
  for (int t = 0; t < kDpl; ++t) {
    const int c = lane + 32 * t;
    qv[t] = c < d ? a.q[int64_t{head} * d + c] : 0.0f;
    acc[t] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  for (int64_t tile = start + 32 * warp; tile < end; tile += 32 * kDecodeWarps) {
    const int count = end - tile < 32 ? static_cast<int>(end - tile) : 32;
    float s_mine = -INFINITY;
    for (int jj = 0; jj < count; ++jj) {
      const float* krow = kbase + (tile + jj) * d;
      float partial = 0.0f;
#pragma unroll
      for (int t = 0; t < kDpl; ++t) {
        const int c = lane + 32 * t;
        if (c < d) partial = fmaf(qv[t], krow[c], partial);
      }
      const float s = WarpSum(partial) * a.softmax_scale;
      if (lane == jj) s_mine = s;
    }
    const float m_new = fmaxf(m, WarpMax(s_mine));
    const float p = lane < count ? expf(s_mine - m_new) : 0.0f;
    const float alpha = expf(m - m_new);
    l = l * alpha + WarpSum(p);
    m = m_new;
#pragma unroll
    for (int t = 0; t < kDpl; ++t) acc[t] *= alpha;
    for (int jj = 0; jj < count; ++jj) {
      const float pj = __shfl_sync(kFullMask, p, jj);
      const float* vrow = vbase + (tile + jj) * d;
#pragma unroll
      for (int t = 0; t < kDpl; ++t) {
        const int c = lane + 32 * t;
        if (c < d) acc[t] = fmaf(pj, vrow[c], acc[t]);
      }
    }
  }
  if (lane == 0) {
    sm_m[warp] = m;
    sm_l[warp] = l;
  }
#pragma unroll
  for (int t = 0; t < kDpl; ++t) {
    const int c = lane + 32 * t;
    if (c < d) sm_acc[warp][c] = acc[t];
  }
  __syncthreads();
  float big = -INFINITY;
  for (int w = 0; w < kDecodeWarps; ++w) big = fmaxf(big, sm_m[w]);
  float* part = a.workspace + (int64_t{head} * splits + blockIdx.x) * (d + 2);
  if (big == -INFINITY) {  // this chunk lies past the head's rows
    for (int c = threadIdx.x; c < d + 2; c += blockDim.x) part[c] = c == 0 ? -INFINITY : 0.0f;
    return;
  }
  float sum = 0.0f;
  for (int w = 0; w < kDecodeWarps; ++w) sum += sm_l[w] * expf(sm_m[w] - big);
  if (threadIdx.x == 0) {
    part[0] = big;
    part[1] = sum;
  }
  for (int c = threadIdx.x; c < d; c += blockDim.x) {
    float o = 0.0f;
    for (int w = 0; w < kDecodeWarps; ++w) o += sm_acc[w][c] * expf(sm_m[w] - big);
    part[2 + c] = o;
  }
}

__global__ void DecodeCombineKernel(AttentionArgs a, int64_t splits) {
  const int d = a.layer.head_dim;
  const int head = blockIdx.x;
  const float* parts = a.workspace + int64_t{head} * splits * (d + 2);
  float big = -INFINITY;
  for (int64_t s = 0; s < splits; ++s) big = fmaxf(big, parts[s * (d + 2)]);
  float sum = 0.0f;
  for (int64_t s = 0; s < splits; ++s) {
    const float ms = parts[s * (d + 2)];
    if (ms != -INFINITY) sum += parts[s * (d + 2) + 1] * expf(ms - big);
  }
  for (int c = threadIdx.x; c < d; c += blockDim.x) {
    float o = 0.0f;
    for (int64_t s = 0; s < splits; ++s) {
      const float ms = parts[s * (d + 2)];
      if (ms != -INFINITY) o += parts[s * (d + 2) + 2 + c] * expf(ms - big);
    }
    a.out[int64_t{head} * d + c] = o / sum;
  }
}

template <int kDpl>
absl::Status LaunchAttention(const AttentionArgs& args, cudaStream_t stream) {
  const int d = args.layer.head_dim;
  if (args.n == 1) {
    const int64_t splits = DecodeSplits(args.max_length);
    const dim3 grid(static_cast<unsigned>(splits), static_cast<unsigned>(args.num_q_heads));
    DecodeAttentionKernel<kDpl><<<grid, kDecodeWarps * 32, 0, stream>>>(args, splits);
    SF_RETURN_IF_ERROR(Launched("DecodeAttentionKernel"));
    DecodeCombineKernel<<<args.num_q_heads, 128, 0, stream>>>(args, splits);
    return Launched("DecodeCombineKernel");
  }
  const size_t smem = PrefillSharedBytes(d);
  if (smem > 48 * 1024) {
    SF_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(PrefillAttentionKernel<kDpl>,
                                                 cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                 static_cast<int>(smem)));
  }
  const dim3 grid(static_cast<unsigned>((args.n + kBr - 1) / kBr),
                  static_cast<unsigned>(args.num_q_heads));
  PrefillAttentionKernel<kDpl><<<grid, kPrefillWarps * 32, smem, stream>>>(args);
  return Launched("PrefillAttentionKernel");
}

}  // namespace

absl::Status EmbeddingGather(const float* table, const int32_t* tokens, int64_t n, int64_t cols,
                             float* out, cudaStream_t stream) {
  EmbeddingGatherKernel<<<GridFor(n * cols), kThreads, 0, stream>>>(table, tokens, n, cols, out);
  return Launched("EmbeddingGatherKernel");
}

absl::Status RmsNorm(const float* x, const float* weight, int64_t n, int64_t cols, float eps,
                     float* out, cudaStream_t stream) {
  if (n <= 0) return absl::OkStatus();
  if (n > 0x7fffffff) return absl::InvalidArgumentError(absl::StrCat("RmsNorm: ", n, " rows"));
  RmsNormKernel<<<static_cast<unsigned>(n), kThreads, 0, stream>>>(x, weight, cols, eps, out);
  return Launched("RmsNormKernel");
}

absl::Status AddBias(float* y, const float* bias, int64_t n, int64_t cols, int64_t row_stride,
                     cudaStream_t stream) {
  AddBiasKernel<<<GridFor(n * cols), kThreads, 0, stream>>>(y, bias, n, cols, row_stride);
  return Launched("AddBiasKernel");
}

absl::Status ApplyRope(float* x, int64_t n, int64_t row_stride, int64_t heads, int64_t head_dim,
                       const float* inv_freq, float attention_scaling, int64_t first_position,
                       cudaStream_t stream) {
  RopeKernel<<<GridFor(n * heads * (head_dim / 2)), kThreads, 0, stream>>>(
      x, n, row_stride, heads, head_dim, inv_freq, attention_scaling, first_position);
  return Launched("RopeKernel");
}

absl::Status SiluMul(const float* gate_up, int64_t n, int64_t I, float* act, cudaStream_t stream) {
  SiluMulKernel<<<GridFor(n * I), kThreads, 0, stream>>>(gate_up, n, I, act);
  return Launched("SiluMulKernel");
}

absl::Status AppendKv(const DeviceKvLayer& layer, const float* k, const float* v, int64_t n,
                      int64_t row_stride, cudaStream_t stream) {
  AppendKvKernel<<<GridFor(int64_t{layer.num_kv_heads} * n * layer.head_dim), kThreads, 0,
                   stream>>>(layer, k, v, n, row_stride);
  SF_RETURN_IF_ERROR(Launched("AppendKvKernel"));
  GrowLengthsKernel<<<(layer.num_kv_heads + 31) / 32, 32, 0, stream>>>(layer.lengths,
                                                                       layer.num_kv_heads, n);
  return Launched("GrowLengthsKernel");
}

int64_t DecodeWorkspaceFloats(int num_q_heads, int head_dim, int64_t max_length) {
  return int64_t{num_q_heads} * DecodeSplits(max_length) * (head_dim + 2);
}

absl::Status CausalAttention(const AttentionArgs& args, cudaStream_t stream) {
  const int d = args.layer.head_dim;
  if (d <= 0 || d > kMaxHeadDim) {
    return absl::InvalidArgumentError(
        absl::StrCat("CUDA attention supports head_dim up to ", kMaxHeadDim, ", not ", d));
  }
  if (args.num_q_heads % args.layer.num_kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(args.num_q_heads,
                                                   " query heads do not divide into ",
                                                   args.layer.num_kv_heads, " KV heads"));
  }
  if (args.n <= 0) return absl::OkStatus();
  if (args.n == 1 && args.workspace == nullptr) {
    return absl::InvalidArgumentError("CUDA decode attention needs a workspace");
  }
  if (d <= 32) return LaunchAttention<1>(args, stream);
  if (d <= 64) return LaunchAttention<2>(args, stream);
  if (d <= 128) return LaunchAttention<4>(args, stream);
  return LaunchAttention<8>(args, stream);
}

}  // namespace sf::cuda
