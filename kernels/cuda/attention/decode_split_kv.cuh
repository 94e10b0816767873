// Internal to kernels/cuda/attention: the split-KV decode kernel shared by dense and
// sparse decode (decode.h), templated on head dim and on where its rows come from.
// Included by decode.cu (planning, combine, dispatch) and by one decode_<source>_d<D>.cu
// per instantiated variant.
//
// Layout of the work: CTA (split s, unit u, sequence b) of kWarps warps reads the
// selected rows [s * chunk, (s + 1) * chunk) of one KV head for up to 8 query heads of its
// GQA group; warp w takes tiles of 16 rows w, w + kWarps, ...; each thread loads the
// next tile into registers while it computes on the current one (or, head dims 64 and
// 128 with SF_DECODE_PIPELINE=smem, copies the 16-byte pieces it will need two tiles
// ahead into its own shared-memory slots with cp.async: measured slower, kept to compare).
// Scores use mma.m16n8k16 with the queries as A (rows = heads; rows 8-15 are zero) and K
// as B; the output uses O^T = V^T P^T so that P comes straight from the score fragments
// and no accumulator row is wasted. Any consistent permutation of head dims or keys
// inside a tile leaves q.k and sum_k p v unchanged; the kernel picks one per operand so
// that every thread's loads are 16 bytes wide and the fragments need only byte permutes.
#ifndef SF_KERNELS_CUDA_ATTENTION_DECODE_SPLIT_KV_CUH_
#define SF_KERNELS_CUDA_ATTENTION_DECODE_SPLIT_KV_CUH_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace sf::cuda::decode_internal {

inline constexpr int kWarps = 4;
inline constexpr int kThreads = kWarps * 32;
inline constexpr int kTileRows = 16;
inline constexpr int kHeadsPerUnit = 8;  // query heads per CTA (the mma's N)

// Everything the kernel needs besides its row source; plain values, passed by value.
struct SplitKvArgs {
  const __nv_bfloat16* q = nullptr;
  int64_t q_batch_stride = 0;
  int64_t q_head_stride = 0;
  const __nv_bfloat16* k = nullptr;
  const __nv_bfloat16* v = nullptr;
  const void* const* k_seqs = nullptr;
  const void* const* v_seqs = nullptr;
  int64_t kv_batch_stride = 0;
  int64_t kv_head_stride = 0;
  int64_t kv_row_stride = 0;
  int32_t num_q_heads = 0;
  int32_t num_kv_heads = 0;
  int32_t group = 1;            // num_q_heads / num_kv_heads
  bool per_query_head = false;  // unit = one query head (its own list) instead of 8
  int32_t head_blocks = 1;      // ceil(group / 8) when !per_query_head
  float scale_log2 = 1.0f;      // softmax_scale * log2(e)
  int64_t chunk = 0;
  int32_t num_splits = 1;
  __nv_bfloat16* out = nullptr;
  int64_t out_batch_stride = 0;
  int64_t out_head_stride = 0;
  float* lse = nullptr;      // [batch][num_q_heads] or nullptr
  float* part_o = nullptr;   // [batch][num_q_heads][num_splits][D] (num_splits > 1)
  float* part_ml = nullptr;  // [batch][num_q_heads][num_splits][2]: max (log2), sum
};

// Row sources: Bind(b, list, kv_head) gives the selected rows of one list; row(v) is the
// cache row of the v-th selected row, or -1 for one to skip.
struct DenseRows {
  const int32_t* lengths = nullptr;  // [batch][num_kv_heads] or nullptr
  int32_t num_kv_heads = 0;
  int64_t max_len = 0;
  struct Bound {
    int64_t n;
    __device__ int64_t count() const { return n; }
    __device__ int64_t row(int64_t v) const { return v < n ? v : -1; }
  };
  __device__ Bound Bind(int b, int list, int g) const {
    return {lengths != nullptr ? lengths[b * num_kv_heads + g] : max_len};
  }
};

struct PageRows {
  const int32_t* lengths = nullptr;
  int32_t num_kv_heads = 0;
  int64_t max_len = 0;
  int32_t lists_per_batch = 0;
  int32_t page = 16;
  const int32_t* offsets = nullptr;
  const int32_t* pages = nullptr;
  struct Bound {
    const int32_t* pages;
    int64_t n;    // selected pages * page
    int64_t len;  // rows held
    int32_t page;
    __device__ int64_t count() const { return n; }
    __device__ int64_t row(int64_t v) const {
      if (v >= n) return -1;
      const int32_t i = static_cast<int32_t>(v / page);
      const int64_t r =
          static_cast<int64_t>(pages[i]) * page + (v - static_cast<int64_t>(i) * page);
      return r < len ? r : -1;
    }
  };
  __device__ Bound Bind(int b, int list, int g) const {
    const int32_t* o = offsets + b * lists_per_batch + list;
    const int64_t len = lengths != nullptr ? lengths[b * num_kv_heads + g] : max_len;
    return {pages + o[0], static_cast<int64_t>(o[1] - o[0]) * page, len, page};
  }
};

struct GatheredRows {
  const int32_t* lengths = nullptr;
  int32_t num_kv_heads = 0;
  int64_t max_len = 0;
  int32_t lists_per_batch = 0;
  const int32_t* offsets = nullptr;
  const int32_t* rows = nullptr;
  struct Bound {
    const int32_t* rows;
    int64_t n;
    int64_t len;
    __device__ int64_t count() const { return n; }
    __device__ int64_t row(int64_t v) const {
      if (v >= n) return -1;
      const int64_t r = rows[v];
      return r < len ? r : -1;
    }
  };
  __device__ Bound Bind(int b, int list, int g) const {
    const int32_t* o = offsets + b * lists_per_batch + list;
    const int64_t len = lengths != nullptr ? lengths[b * num_kv_heads + g] : max_len;
    return {rows + o[0], static_cast<int64_t>(o[1] - o[0]), len};
  }
};

// Launches the split-KV kernel on grid (num_splits, units, batch); returns the launch
// error. Instantiated in decode_<source>_d<D>.cu.
template <int D, class Source>
cudaError_t LaunchSplitKv(const SplitKvArgs& args, const Source& source, dim3 grid,
                          cudaStream_t stream);
// Resident CTAs per multiprocessor of that kernel (for choosing num_splits).
template <int D, class Source>
int SplitKvBlocksPerSm();

#define SF_DECLARE_SPLIT_KV(D, Source)                                                          \
  extern template cudaError_t LaunchSplitKv<D, Source>(const SplitKvArgs&, const Source&, dim3, \
                                                       cudaStream_t);                           \
  extern template int SplitKvBlocksPerSm<D, Source>();
SF_DECLARE_SPLIT_KV(64, DenseRows)
SF_DECLARE_SPLIT_KV(128, DenseRows)
SF_DECLARE_SPLIT_KV(256, DenseRows)
SF_DECLARE_SPLIT_KV(64, PageRows)
SF_DECLARE_SPLIT_KV(128, PageRows)
SF_DECLARE_SPLIT_KV(256, PageRows)
SF_DECLARE_SPLIT_KV(64, GatheredRows)
SF_DECLARE_SPLIT_KV(128, GatheredRows)
SF_DECLARE_SPLIT_KV(256, GatheredRows)
#undef SF_DECLARE_SPLIT_KV

}  // namespace sf::cuda::decode_internal

#endif  // SF_KERNELS_CUDA_ATTENTION_DECODE_SPLIT_KV_CUH_
