// Internal to kernels/cuda/attention: exact top-k inside one CTA, as the CPU's
// TopKIndices chooses (largest first, ties to the lower index), for the selection
// kernels of Quest, SnapKV and oracle_topk. Keys are uint32 whose unsigned order is the
// wanted order (OrderedKey maps floats; forced entries take 0xffffffff).
#ifndef SF_KERNELS_CUDA_ATTENTION_BLOCK_TOPK_CUH_
#define SF_KERNELS_CUDA_ATTENTION_BLOCK_TOPK_CUH_

#include <cstdint>

namespace sf::cuda::topk_internal {

// Float order as unsigned order (-inf lowest, +inf highest; no NaN expected).
__device__ __forceinline__ uint32_t OrderedKey(float f) {
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Inclusive sum over the CTA's kThreads threads (all must call it); *total gets the
// CTA's sum.
template <int kThreads>
__device__ int BlockInclusiveSum(int x, int* total) {
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "whole warps, at most 1024 threads");
  constexpr int kWarpsInCta = kThreads / 32;
  __shared__ int warp_sums[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int o = 1; o < 32; o *= 2) {
    const int y = __shfl_up_sync(0xffffffffu, x, o);
    if (lane >= o) x += y;
  }
  if (lane == 31) warp_sums[warp] = x;
  __syncthreads();
  if (warp == 0) {
    int w = lane < kWarpsInCta ? warp_sums[lane] : 0;
#pragma unroll
    for (int o = 1; o < 32; o *= 2) {
      const int y = __shfl_up_sync(0xffffffffu, w, o);
      if (lane >= o) w += y;
    }
    warp_sums[lane] = w;
  }
  __syncthreads();
  const int result = x + (warp > 0 ? warp_sums[warp - 1] : 0);
  *total = warp_sums[kWarpsInCta - 1];
  __syncthreads();
  return result;
}

// The k-th largest of key(0..n-1) (REQUIRES 1 <= k <= n) by MSB-first radix select on
// 8-bit digits; *ties = how many elements equal to it belong to the top k.
template <int kThreads, class KeyFn>
__device__ uint32_t KthLargestKey(const KeyFn& key, int64_t n, int64_t k, int64_t* ties) {
  __shared__ int hist[256];
  __shared__ uint32_t s_prefix;
  __shared__ long long s_k;
  uint32_t prefix = 0, mask = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int i = threadIdx.x; i < 256; i += kThreads) hist[i] = 0;
    __syncthreads();
    // Scores often share their top bits: lanes with the same digit add once together
    // (same-address shared atomics would serialise).
    const int my_lane = threadIdx.x % 32;
    for (int64_t i0 = 0; i0 < n; i0 += kThreads) {
      const int64_t i = i0 + threadIdx.x;
      const uint32_t x = i < n ? key(i) : 0u;
      const bool take = i < n && (x & mask) == prefix;
      const uint32_t digit = take ? (x >> shift) & 255u : 256u;
      const uint32_t peers = __match_any_sync(0xffffffffu, digit);
      if (take && (__ffs(peers) - 1) == my_lane) atomicAdd(&hist[digit], __popc(peers));
    }
    __syncthreads();
    if (threadIdx.x < 32) {
      // Lane l owns digits 255 - 8l down to 248 - 8l; the lane whose range holds the
      // k-th largest finds its digit.
      const int lane = threadIdx.x;
      int own = 0;
#pragma unroll
      for (int j = 0; j < 8; ++j) own += hist[255 - 8 * lane - j];
      int incl = own;
#pragma unroll
      for (int o = 1; o < 32; o *= 2) {
        const int y = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += y;
      }
      const int64_t above = incl - own;
      if (above < k && k <= incl) {
        int64_t acc = above;
        for (int j = 0; j < 8; ++j) {
          const int digit = 255 - 8 * lane - j;
          if (acc + hist[digit] >= k) {
            s_prefix = prefix | (static_cast<uint32_t>(digit) << shift);
            s_k = k - acc;
            break;
          }
          acc += hist[digit];
        }
      }
    }
    __syncthreads();
    prefix = s_prefix;
    k = s_k;
    mask |= 255u << shift;
    __syncthreads();
  }
  *ties = k;
  return prefix;
}

// Writes the indices of the k largest key(i), i < n (ties to the lower index), to
// out[0..min(k, n)) in ascending order; returns how many. All kThreads threads call it.
template <int kThreads, class KeyFn>
__device__ int64_t BlockTopKSorted(const KeyFn& key, int64_t n, int64_t k, int32_t* out) {
  if (k <= 0 || n <= 0) return 0;
  if (k >= n) {
    for (int64_t i = threadIdx.x; i < n; i += kThreads) out[i] = static_cast<int32_t>(i);
    return n;
  }
  int64_t ties = 0;
  const uint32_t kth = KthLargestKey<kThreads>(key, n, k, &ties);
  // Contiguous runs per thread keep index order through the scans.
  const int64_t per = (n + kThreads - 1) / kThreads;
  const int64_t lo = min(n, static_cast<int64_t>(threadIdx.x) * per), hi = min(n, lo + per);
  int equal = 0;
  for (int64_t i = lo; i < hi; ++i) equal += key(i) == kth;
  int unused = 0;
  const int equal_before = BlockInclusiveSum<kThreads>(equal, &unused) - equal;
  int chosen = 0, e = equal_before;
  for (int64_t i = lo; i < hi; ++i) {
    const uint32_t x = key(i);
    chosen += x > kth || (x == kth && e++ < ties);
  }
  int pos = BlockInclusiveSum<kThreads>(chosen, &unused) - chosen;
  e = equal_before;
  for (int64_t i = lo; i < hi; ++i) {
    const uint32_t x = key(i);
    if (x > kth || (x == kth && e++ < ties)) out[pos++] = static_cast<int32_t>(i);
  }
  return k;
}

}  // namespace sf::cuda::topk_internal

#endif  // SF_KERNELS_CUDA_ATTENTION_BLOCK_TOPK_CUH_
