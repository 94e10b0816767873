// Device building blocks the selection kernels share (internal to kernels/cuda/attention):
// a block-wide radix select (top-k with forced entries and ties to the lower index, the
// reference's TopKIndices), the reference's cumulative-mass count (CoverCount), block
// scans, bf16 tensor-core fragments and asynchronous copies.
#ifndef SF_KERNELS_CUDA_ATTENTION_SELECT_DEVICE_CUH_
#define SF_KERNELS_CUDA_ATTENTION_SELECT_DEVICE_CUH_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace sf::cuda::select_internal {

constexpr unsigned kFullMask = 0xffffffffu;
// A forced entry outranks every finite score (the largest real key is +inf's 0xff800000).
constexpr uint32_t kForcedKey = 0xffffffffu;

// Order-preserving map of a float onto uint32: a > b iff key(a) > key(b) (no NaNs).
__device__ __forceinline__ uint32_t OrderedKey(float x) {
  const uint32_t u = __float_as_uint(x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float KeyValue(uint32_t key) {
  return __uint_as_float((key & 0x80000000u) ? (key & 0x7fffffffu) : ~key);
}

// Radix digits, most significant first: 11 bits (sign, exponent, two mantissa bits, so
// that typical score distributions spread over many bins), then three of 7.
constexpr int kRadixLevels = 4;
__device__ __forceinline__ int DigitShift(int level) { return level == 0 ? 21 : 21 - 7 * level; }
__device__ __forceinline__ int DigitBins(int level) { return level == 0 ? 2048 : 128; }
constexpr int kMaxBins = 2048;

struct TopKShared {
  uint32_t count[kMaxBins];
  int32_t scan_i[32];
  int32_t total_i;
  double scan_d[32];
  uint32_t found[4];
  double found_d[2];
};
// CoverCountDevice's extra shared memory: the running sums per bin, and one slot per
// thread for summing a warp's values that fall into one bin before a single atomic.
struct CoverShared {
  double sum[kMaxBins];
  double lane_value[1024];
};

// count[bin] += 1 for each calling lane, one atomic per distinct bin in the warp (score
// distributions crowd into few bins; same-address atomics would serialise).
__device__ __forceinline__ void CountInBin(uint32_t* count, uint32_t bin) {
  const unsigned active = __activemask();
  const unsigned peers = __match_any_sync(active, bin);
  if ((threadIdx.x & 31) == __ffs(peers) - 1) atomicAdd(&count[bin], __popc(peers));
}

template <int kThreads, class T>
__device__ T BlockExclusiveSum(T v, T* warp_totals, T* total_out) {
  static_assert(kThreads % 32 == 0 && kThreads <= 1024);
  constexpr int kWarps = kThreads / 32;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  T incl = v;
#pragma unroll
  for (int off = 1; off < 32; off *= 2) {
    const T y = __shfl_up_sync(kFullMask, incl, off);
    if (lane >= off) incl += y;
  }
  if (lane == 31) warp_totals[warp] = incl;
  __syncthreads();
  if (warp == 0) {
    T w = lane < kWarps ? warp_totals[lane] : T(0);
    T wi = w;
#pragma unroll
    for (int off = 1; off < 32; off *= 2) {
      const T y = __shfl_up_sync(kFullMask, wi, off);
      if (lane >= off) wi += y;
    }
    if (lane < kWarps) warp_totals[lane] = wi - w;
    if (lane == kWarps - 1 && total_out != nullptr) *total_out = wi;
  }
  __syncthreads();
  const T result = warp_totals[warp] + incl - v;
  __syncthreads();
  return result;
}

// The key threshold of a top-k: T such that fewer than k keys exceed T and at least k
// are >= T; *need_eq = how many keys equal to T the top-k takes (k - count above T).
// REQUIRES 1 <= k <= n. key_at(i) must be cheap and deterministic.
template <int kThreads, class KeyAt>
__device__ void RadixThreshold(const KeyAt& key_at, int n, int k, TopKShared& sm,
                               uint32_t* threshold, int* need_eq) {
  uint32_t prefix = 0, mask = 0;
  int remaining = k;
  for (int level = 0; level < kRadixLevels; ++level) {
    const int shift = DigitShift(level), bins = DigitBins(level);
    for (int b = threadIdx.x; b < bins; b += kThreads) sm.count[b] = 0;
    __syncthreads();
    for (int i = threadIdx.x; i < n; i += kThreads) {
      const uint32_t key = key_at(i);
      if ((key & mask) == prefix) CountInBin(sm.count, (key >> shift) & (bins - 1));
    }
    __syncthreads();
    // Bins in descending order; each thread owns a run of them.
    const int per = (bins + kThreads - 1) / kThreads;
    int local = 0;
    for (int j = 0; j < per; ++j) {
      const int d = threadIdx.x * per + j;
      if (d < bins) local += sm.count[bins - 1 - d];
    }
    int above = BlockExclusiveSum<kThreads>(local, sm.scan_i, static_cast<int*>(nullptr));
    if (above < remaining && remaining <= above + local) {
      for (int j = 0; j < per; ++j) {
        const int bin = bins - 1 - (threadIdx.x * per + j);
        const int c = sm.count[bin];
        if (above + c >= remaining) {
          sm.found[0] = bin;
          sm.found[1] = above;
          break;
        }
        above += c;
      }
    }
    __syncthreads();
    prefix |= sm.found[0] << shift;
    mask |= static_cast<uint32_t>(bins - 1) << shift;
    remaining -= static_cast<int>(sm.found[1]);
    __syncthreads();
  }
  *threshold = prefix;
  *need_eq = remaining;
}

// Writes, in ascending order, the indices of the k largest keys (ties to the lower index)
// to out[0, k). REQUIRES 0 <= k. Returns min(k, n).
template <int kThreads, class KeyAt>
__device__ int SelectTopKSorted(const KeyAt& key_at, int n, int k, TopKShared& sm, int32_t* out) {
  if (k >= n) {
    for (int i = threadIdx.x; i < n; i += kThreads) out[i] = i;
    return n;
  }
  if (k <= 0) return 0;
  uint32_t t;
  int need_eq;
  RadixThreshold<kThreads>(key_at, n, k, sm, &t, &need_eq);
  // Each thread walks one contiguous segment so that the output stays in index order.
  const int seg = (n + kThreads - 1) / kThreads;
  const int begin = min(n, static_cast<int>(threadIdx.x) * seg), end = min(n, begin + seg);
  int eq = 0;
  for (int i = begin; i < end; ++i) eq += key_at(i) == t;
  int eq_rank = BlockExclusiveSum<kThreads>(eq, sm.scan_i, static_cast<int*>(nullptr));
  int sel = 0;
  {
    int r = eq_rank;
    for (int i = begin; i < end; ++i) {
      const uint32_t key = key_at(i);
      if (key > t) {
        ++sel;
      } else if (key == t) {
        sel += r < need_eq;
        ++r;
      }
    }
  }
  int pos = BlockExclusiveSum<kThreads>(sel, sm.scan_i, static_cast<int*>(nullptr));
  for (int i = begin; i < end; ++i) {
    const uint32_t key = key_at(i);
    if (key > t) {
      out[pos++] = i;
    } else if (key == t) {
      if (eq_rank < need_eq) out[pos++] = i;
      ++eq_rank;
    }
  }
  return k;
}

// The reference's CoverCount over n values: the number of largest values whose running
// sum (largest first) stays <= target (kStrict: < target), plus one, at most n. Values
// must be >= 0, except that entries to leave out may be given as -1 (they sort last and
// never count before the crossing). Sums in double.
template <int kThreads, bool kStrict, class ValueAt>
__device__ int CoverCountDevice(const ValueAt& value_at, int n, double target, TopKShared& sm,
                                CoverShared& cs) {
  auto crosses = [&](double sum) { return kStrict ? sum >= target : sum > target; };
  uint32_t prefix = 0, mask = 0;
  double above_sum = 0;
  int above_count = 0;
  for (int level = 0; level < kRadixLevels; ++level) {
    const int shift = DigitShift(level), bins = DigitBins(level);
    for (int b = threadIdx.x; b < bins; b += kThreads) {
      sm.count[b] = 0;
      cs.sum[b] = 0;
    }
    if (threadIdx.x == 0) sm.found[2] = 0;
    __syncthreads();
    for (int i = threadIdx.x; i < n; i += kThreads) {
      const float v = value_at(i);
      const uint32_t key = OrderedKey(v);
      if ((key & mask) == prefix) {
        const int b = (key >> shift) & (bins - 1);
        // One atomic per distinct bin in the warp for the count and for the sum.
        const unsigned active = __activemask();
        const unsigned peers = __match_any_sync(active, static_cast<uint32_t>(b));
        cs.lane_value[threadIdx.x] = static_cast<double>(v);
        __syncwarp(active);
        if ((threadIdx.x & 31) == __ffs(peers) - 1) {
          double group_sum = 0;
          const int warp_base = threadIdx.x & ~31;
          for (unsigned m = peers; m != 0; m &= m - 1) {
            group_sum += cs.lane_value[warp_base + __ffs(m) - 1];
          }
          atomicAdd(&sm.count[b], __popc(peers));
          atomicAdd(&cs.sum[b], group_sum);
        }
        __syncwarp(active);
      }
    }
    __syncthreads();
    const int per = (bins + kThreads - 1) / kThreads;
    int local_c = 0;
    double local_s = 0;
    for (int j = 0; j < per; ++j) {
      const int d = threadIdx.x * per + j;
      if (d < bins) {
        local_c += sm.count[bins - 1 - d];
        local_s += cs.sum[bins - 1 - d];
      }
    }
    int c_before = BlockExclusiveSum<kThreads>(local_c, sm.scan_i, &sm.total_i);
    double s_before =
        BlockExclusiveSum<kThreads>(local_s, sm.scan_d, static_cast<double*>(nullptr));
    // The bin where the running sum first crosses the target.
    if (!crosses(above_sum + s_before) && crosses(above_sum + s_before + local_s)) {
      for (int j = 0; j < per; ++j) {
        const int bin = bins - 1 - (threadIdx.x * per + j);
        if (crosses(above_sum + s_before + cs.sum[bin])) {
          sm.found[0] = bin;
          sm.found[1] = c_before;
          sm.found[2] = 1;
          sm.found_d[0] = s_before;
          break;
        }
        s_before += cs.sum[bin];
        c_before += sm.count[bin];
      }
    }
    __syncthreads();
    if (sm.found[2] == 0) {
      // Every value left fits under the target (at a deeper level: float sums rounded
      // across the split of a bin), so the next smaller value is the one that crosses.
      const int fit = level == 0 ? n : above_count + sm.total_i + 1;
      __syncthreads();
      return min(fit, n);
    }
    const uint32_t bin = sm.found[0];
    above_count += static_cast<int>(sm.found[1]);
    above_sum += sm.found_d[0];
    prefix |= bin << shift;
    mask |= static_cast<uint32_t>(bins - 1) << shift;
    if (level == kRadixLevels - 1) {
      // All remaining values equal v: take as many as still stay under the target.
      const double v = KeyValue(prefix);
      const int c_eq = sm.count[bin];
      int m = c_eq;
      if (v > 0) {
        const double room = (target - above_sum) / v;
        const double fit = kStrict ? ceil(room) - 1 : floor(room);
        m = fit < 0 ? 0 : static_cast<int>(min(static_cast<double>(c_eq), fit));
      }
      __syncthreads();
      return min(above_count + m + 1, n);
    }
    __syncthreads();
  }
  return n;
}

// ---- Tensor cores (mma.sync m16n8k16, bf16 in, f32 accumulate) ----

__device__ __forceinline__ void MmaBf16(float* c, const uint32_t* a, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// 16 bytes global -> shared, zero-filled when !valid.
__device__ __forceinline__ void CopyAsync16(void* smem, const void* gmem, bool valid) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  const int bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(bytes));
}
__device__ __forceinline__ void CopyAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int kPending>
__device__ __forceinline__ void CopyAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}

// Four 8x8 bf16 matrices from shared memory (each lane gives one 16-byte row address:
// lanes 0-7 the rows of matrix 0, 8-15 of matrix 1, ...), one register each.
__device__ __forceinline__ void LoadMatrixX4(const void* row, uint32_t* r) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}

// Two consecutive bf16 as one 32-bit register (the low element first).
__device__ __forceinline__ uint32_t LoadPair(const __nv_bfloat16* p) {
  return *reinterpret_cast<const uint32_t*>(p);
}

}  // namespace sf::cuda::select_internal

#endif  // SF_KERNELS_CUDA_ATTENTION_SELECT_DEVICE_CUH_
