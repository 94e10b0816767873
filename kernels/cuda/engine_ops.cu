#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/element.cuh"
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

template <typename T>
__global__ void EmbeddingGatherKernel(const T* __restrict__ table,
                                      const int32_t* __restrict__ tokens, int64_t n, int64_t cols,
                                      float* __restrict__ out) {
  const int64_t total = n * cols;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    out[i] = ToFloat(table[int64_t{tokens[r]} * cols + c]);
  }
}

// One block per row.
template <typename T>
__global__ void RmsNormKernel(const float* __restrict__ x, const float* __restrict__ weight,
                              int64_t cols, float eps, T* __restrict__ out) {
  __shared__ float partial[kThreads / 32];
  const float* xr = x + int64_t{blockIdx.x} * cols;
  T* orow = out + int64_t{blockIdx.x} * cols;
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
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    orow[c] = FromFloat<T>(weight[c] * (xr[c] * inv));
  }
}

template <typename T>
__global__ void AddBiasKernel(T* __restrict__ y, const float* __restrict__ bias, int64_t n,
                              int64_t cols, int64_t row_stride) {
  const int64_t total = n * cols;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    T& e = y[r * row_stride + c];
    e = FromFloat<T>(ToFloat(e) + bias[c]);
  }
}

template <typename T>
__global__ void RopeKernel(T* __restrict__ x, int64_t n, int64_t row_stride, int64_t heads,
                           int64_t head_dim, const float* __restrict__ inv_freq,
                           float attention_scaling, int64_t first_position,
                           const int64_t* __restrict__ device_position) {
  const int64_t half = head_dim / 2;
  const int64_t total = n * heads * half;
  const int64_t base = first_position + (device_position != nullptr ? *device_position : 0);
  for (int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; idx < total;
       idx += int64_t{gridDim.x} * blockDim.x) {
    const int64_t i = idx % half;
    const int64_t h = (idx / half) % heads;
    const int64_t r = idx / (half * heads);
    // Same rounding steps as the CPU engine: float angle, cos/sin in double, then float.
    const float angle = __fmul_rn(static_cast<float>(base + r), inv_freq[i]);
    double s_d, c_d;
    sincos(static_cast<double>(angle), &s_d, &c_d);
    const float c = __fmul_rn(static_cast<float>(c_d), attention_scaling);
    const float s = __fmul_rn(static_cast<float>(s_d), attention_scaling);
    T* v = x + r * row_stride + h * head_dim;
    const float a = ToFloat(v[i]), b = ToFloat(v[i + half]);
    v[i] = FromFloat<T>(__fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s)));
    v[i + half] = FromFloat<T>(__fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s)));
  }
}

__device__ __forceinline__ float Silu(float g) { return g / (1.0f + expf(-g)); }

// Grid: (column blocks, rows); each thread takes kVec consecutive columns of one row with
// 16-byte loads and stores (the caller checks that rows and pointers allow it).
template <typename T>
__global__ void SiluMulVectorKernel(const T* __restrict__ gate_up, int64_t I, T* __restrict__ act) {
  constexpr int kVec = 16 / sizeof(T);
  const int64_t r = blockIdx.y;
  const T* g = gate_up + r * 2 * I;
  const T* u = g + I;
  T* a = act + r * I;
  for (int64_t j = (int64_t{blockIdx.x} * blockDim.x + threadIdx.x) * kVec; j < I;
       j += int64_t{gridDim.x} * blockDim.x * kVec) {
    union Pack {
      uint4 raw;
      T e[kVec];
    } gv, uv, out;
    gv.raw = *reinterpret_cast<const uint4*>(g + j);
    uv.raw = *reinterpret_cast<const uint4*>(u + j);
#pragma unroll
    for (int t = 0; t < kVec; ++t) {
      out.e[t] = FromFloat<T>(Silu(ToFloat(gv.e[t])) * ToFloat(uv.e[t]));
    }
    *reinterpret_cast<uint4*>(a + j) = out.raw;
  }
}

template <typename T>
__global__ void SiluMulKernel(const T* __restrict__ gate_up, int64_t n, int64_t I,
                              T* __restrict__ act) {
  const int64_t total = n * I;
  for (int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; idx < total;
       idx += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = idx / I, j = idx % I;
    const float g = ToFloat(gate_up[r * 2 * I + j]);
    const float u = ToFloat(gate_up[r * 2 * I + I + j]);
    act[idx] = FromFloat<T>(Silu(g) * u);
  }
}

template <typename T>
__global__ void AppendKvKernel(DeviceKvLayer<T> layer, const T* __restrict__ k,
                               const T* __restrict__ v, int64_t n, int64_t row_stride) {
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

__global__ void GrowLengthsKernel(int32_t* lengths, int num_heads, int64_t n) {
  const int h = blockIdx.x * blockDim.x + threadIdx.x;
  if (h < num_heads) lengths[h] += static_cast<int32_t>(n);
}

// Grid: (pages touched per head, heads); a thread per dimension.
template <typename T>
__global__ void PageBoundsKernel(DeviceKvLayer<T> layer, int64_t n, int page_size,
                                 int64_t pages_per_head, float* __restrict__ key_min,
                                 float* __restrict__ key_max) {
  const int h = blockIdx.y;
  const int64_t len = layer.lengths[h];
  const int64_t first_page = len > n ? (len - n) / page_size : 0;
  const int64_t page = first_page + blockIdx.x;
  if (page * page_size >= len || page >= pages_per_head) return;
  const int64_t row_end = (page + 1) * page_size < len ? (page + 1) * page_size : len;
  const T* keys = layer.keys + int64_t{h} * layer.capacity * layer.head_dim;
  for (int c = threadIdx.x; c < layer.head_dim; c += blockDim.x) {
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t r = page * page_size; r < row_end; ++r) {
      const float k = ToFloat(keys[r * layer.head_dim + c]);
      lo = fminf(lo, k);
      hi = fmaxf(hi, k);
    }
    const int64_t at = (int64_t{h} * pages_per_head + page) * layer.head_dim + c;
    key_min[at] = lo;
    key_max[at] = hi;
  }
}

template <typename T>
__global__ void ConvertWeightsKernel(const void* __restrict__ src, WeightSource source,
                                     int64_t count, T* __restrict__ dst) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * blockDim.x) {
    float v;
    switch (source) {
      case WeightSource::kF32:
        v = static_cast<const float*>(src)[i];
        break;
      case WeightSource::kF16:
        v = __half2float(static_cast<const __half*>(src)[i]);
        break;
      default:
        v = __bfloat162float(static_cast<const __nv_bfloat16*>(src)[i]);
        break;
    }
    dst[i] = FromFloat<T>(v);
  }
}

__device__ __forceinline__ uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

template <typename T>
__global__ void FillRandomNormalKernel(T* __restrict__ dst, int64_t count, uint64_t seed,
                                       float mean, float stddev) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * blockDim.x) {
    const uint64_t bits = SplitMix64(seed ^ SplitMix64(static_cast<uint64_t>(i)));
    // Box-Muller on two 24-bit uniforms in (0, 1].
    const float u1 = (static_cast<float>(bits >> 40) + 1.0f) * (1.0f / 16777216.0f);
    const float u2 = static_cast<float>((bits >> 16) & 0xffffff) * (1.0f / 16777216.0f);
    const float z = sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2);
    const float rounded = __bfloat162float(__float2bfloat16_rn(mean + stddev * z));
    dst[i] = FromFloat<T>(rounded);
  }
}

}  // namespace

template <typename T>
absl::Status EmbeddingGather(const T* table, const int32_t* tokens, int64_t n, int64_t cols,
                             float* out, cudaStream_t stream) {
  EmbeddingGatherKernel<T><<<GridFor(n * cols), kThreads, 0, stream>>>(table, tokens, n, cols, out);
  return Launched("EmbeddingGatherKernel");
}

template <typename T>
absl::Status RmsNorm(const float* x, const float* weight, int64_t n, int64_t cols, float eps,
                     T* out, cudaStream_t stream) {
  if (n <= 0) return absl::OkStatus();
  if (n > 0x7fffffff) return absl::InvalidArgumentError(absl::StrCat("RmsNorm: ", n, " rows"));
  RmsNormKernel<T><<<static_cast<unsigned>(n), kThreads, 0, stream>>>(x, weight, cols, eps, out);
  return Launched("RmsNormKernel");
}

template <typename T>
absl::Status AddBias(T* y, const float* bias, int64_t n, int64_t cols, int64_t row_stride,
                     cudaStream_t stream) {
  AddBiasKernel<T><<<GridFor(n * cols), kThreads, 0, stream>>>(y, bias, n, cols, row_stride);
  return Launched("AddBiasKernel");
}

template <typename T>
absl::Status ApplyRope(T* x, int64_t n, int64_t row_stride, int64_t heads, int64_t head_dim,
                       const float* inv_freq, float attention_scaling, int64_t first_position,
                       const int64_t* device_position, cudaStream_t stream) {
  RopeKernel<T><<<GridFor(n * heads * (head_dim / 2)), kThreads, 0, stream>>>(
      x, n, row_stride, heads, head_dim, inv_freq, attention_scaling, first_position,
      device_position);
  return Launched("RopeKernel");
}

template <typename T>
absl::Status SiluMul(const T* gate_up, int64_t n, int64_t I, T* act, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  const bool aligned = reinterpret_cast<uintptr_t>(gate_up) % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(act) % 16 == 0 && I % kVec == 0;
  if (aligned && n > 0 && n <= 65535) {
    const int64_t blocks = (I / kVec + kThreads - 1) / kThreads;
    const dim3 grid(static_cast<unsigned>(blocks), static_cast<unsigned>(n));
    SiluMulVectorKernel<T><<<grid, kThreads, 0, stream>>>(gate_up, I, act);
    return Launched("SiluMulVectorKernel");
  }
  SiluMulKernel<T><<<GridFor(n * I), kThreads, 0, stream>>>(gate_up, n, I, act);
  return Launched("SiluMulKernel");
}

template <typename T>
absl::Status AppendKv(const DeviceKvLayer<T>& layer, const T* k, const T* v, int64_t n,
                      int64_t row_stride, cudaStream_t stream) {
  AppendKvKernel<T>
      <<<GridFor(int64_t{layer.num_kv_heads} * n * layer.head_dim), kThreads, 0, stream>>>(
          layer, k, v, n, row_stride);
  SF_RETURN_IF_ERROR(Launched("AppendKvKernel"));
  GrowLengthsKernel<<<(layer.num_kv_heads + 31) / 32, 32, 0, stream>>>(layer.lengths,
                                                                       layer.num_kv_heads, n);
  return Launched("GrowLengthsKernel");
}

template <typename T>
absl::Status UpdatePageBounds(const DeviceKvLayer<T>& layer, int64_t n, int page_size,
                              int64_t pages_per_head, float* key_min, float* key_max,
                              cudaStream_t stream) {
  if (n <= 0) return absl::OkStatus();
  if (page_size <= 0) return absl::InvalidArgumentError("UpdatePageBounds: page_size <= 0");
  // The last n rows start anywhere inside a page: they touch at most this many pages.
  const int64_t touched = (n + page_size - 1) / page_size + 1;
  const dim3 grid(static_cast<unsigned>(touched), static_cast<unsigned>(layer.num_kv_heads));
  PageBoundsKernel<T>
      <<<grid, 128, 0, stream>>>(layer, n, page_size, pages_per_head, key_min, key_max);
  return Launched("PageBoundsKernel");
}

template <typename T>
absl::Status ConvertWeights(const void* src, WeightSource source, int64_t count, T* dst,
                            cudaStream_t stream) {
  ConvertWeightsKernel<T><<<GridFor(count), kThreads, 0, stream>>>(src, source, count, dst);
  return Launched("ConvertWeightsKernel");
}

template <typename T>
absl::Status FillRandomNormal(T* dst, int64_t count, uint64_t seed, float mean, float stddev,
                              cudaStream_t stream) {
  FillRandomNormalKernel<T>
      <<<GridFor(count), kThreads, 0, stream>>>(dst, count, seed, mean, stddev);
  return Launched("FillRandomNormalKernel");
}

#define SF_INSTANTIATE_ENGINE_OPS(T)                                                               \
  template absl::Status EmbeddingGather<T>(const T*, const int32_t*, int64_t, int64_t, float*,     \
                                           cudaStream_t);                                          \
  template absl::Status RmsNorm<T>(const float*, const float*, int64_t, int64_t, float, T*,        \
                                   cudaStream_t);                                                  \
  template absl::Status AddBias<T>(T*, const float*, int64_t, int64_t, int64_t, cudaStream_t);     \
  template absl::Status ApplyRope<T>(T*, int64_t, int64_t, int64_t, int64_t, const float*, float,  \
                                     int64_t, const int64_t*, cudaStream_t);                       \
  template absl::Status SiluMul<T>(const T*, int64_t, int64_t, T*, cudaStream_t);                  \
  template absl::Status AppendKv<T>(const DeviceKvLayer<T>&, const T*, const T*, int64_t, int64_t, \
                                    cudaStream_t);                                                 \
  template absl::Status UpdatePageBounds<T>(const DeviceKvLayer<T>&, int64_t, int, int64_t,        \
                                            float*, float*, cudaStream_t);                         \
  template absl::Status ConvertWeights<T>(const void*, WeightSource, int64_t, T*, cudaStream_t);   \
  template absl::Status FillRandomNormal<T>(T*, int64_t, uint64_t, float, float, cudaStream_t);

SF_INSTANTIATE_ENGINE_OPS(float)
SF_INSTANTIATE_ENGINE_OPS(bf16)

#undef SF_INSTANTIATE_ENGINE_OPS

}  // namespace sf::cuda
