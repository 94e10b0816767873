// Between the prefill entry points (prefill.cu: validation, tensor maps, dispatch) and
// the kernel variants (one .cu per head dim and mode): the kernel's argument block and
// the launch function each variant instantiates.
#ifndef SF_KERNELS_CUDA_ATTENTION_PREFILL_LAUNCH_H_
#define SF_KERNELS_CUDA_ATTENTION_PREFILL_LAUNCH_H_

#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"

namespace sf::cuda::prefill_internal {

// Everything the kernel reads besides the tensor maps; plain values, passed by value.
struct KernelArgs {
  int32_t num_queries = 0;
  int32_t max_kv_length = 0;
  const int32_t* kv_lengths = nullptr;  // device, [num_kv_heads], or nullptr
  int32_t num_q_heads = 0;
  int32_t group = 1;  // num_q_heads / num_kv_heads
  int32_t num_m_blocks = 0;
  int32_t num_sms = 1;  // persistent grid size
  // Device counter of query tiles handed out past the first wave (zero at launch), or
  // nullptr: CTA c then takes tiles c, c + grid, ... in order.
  int32_t* tile_counter = nullptr;
  float softmax_scale = 1.f;
  float scale_log2 = 1.f;  // softmax_scale * log2(e)
  __nv_bfloat16* out = nullptr;
  int64_t out_row_stride = 0;
  int64_t out_head_stride = 0;
  float* lse = nullptr;
  // K and V themselves, for rows copied without the tensor maps (gathered columns).
  const __nv_bfloat16* k = nullptr;
  const __nv_bfloat16* v = nullptr;
  int64_t kv_head_stride = 0;
  int64_t kv_row_stride = 0;
  // WalkMode::kBlocks (BlockSelection): block a multiple of 128, or a power of two in
  // [16, 128) (then block_shift = log2(block)).
  int32_t list_heads = 0;
  int32_t block = 0;
  int32_t block_shift = 0;
  int32_t num_query_blocks = 0;
  const int32_t* offsets = nullptr;
  const int32_t* key_blocks = nullptr;
  // WalkMode::kLines (LineSelection).
  int32_t line_heads = 0;
  const int32_t* column_offsets = nullptr;
  const int32_t* columns = nullptr;
  const int32_t* diagonal_offsets = nullptr;
  const int32_t* diagonals = nullptr;
};

// Which key tiles a query tile visits: all causal ones, a BlockSelection's, or a
// LineSelection's.
enum class WalkMode { kDense, kBlocks, kLines };

// The three tensor maps: Q as (head_dim, num_q_heads, num_queries), K and V as
// (head_dim, max_kv_length, num_kv_heads), 128-byte swizzle, boxes the kernel's tiles.
struct TensorMaps {
  CUtensorMap q;
  CUtensorMap k;
  CUtensorMap v;
};

// Rows of K/V per stage for a head dim (the box height of the K/V maps).
int KeyTileRows(int head_dim);
inline constexpr int kQueryTileRows = 128;

template <int kHeadDim, WalkMode kMode>
absl::Status LaunchPrefill(const TensorMaps& maps, const KernelArgs& args, bool overlap,
                           cudaStream_t stream);

#define SF_PREFILL_VARIANT(hd, mode)                              \
  extern template absl::Status LaunchPrefill<hd, WalkMode::mode>( \
      const TensorMaps&, const KernelArgs&, bool, cudaStream_t);
SF_PREFILL_VARIANT(64, kDense)
SF_PREFILL_VARIANT(128, kDense)
SF_PREFILL_VARIANT(256, kDense)
SF_PREFILL_VARIANT(64, kBlocks)
SF_PREFILL_VARIANT(128, kBlocks)
SF_PREFILL_VARIANT(256, kBlocks)
SF_PREFILL_VARIANT(64, kLines)
SF_PREFILL_VARIANT(128, kLines)
SF_PREFILL_VARIANT(256, kLines)
#undef SF_PREFILL_VARIANT

}  // namespace sf::cuda::prefill_internal

#endif  // SF_KERNELS_CUDA_ATTENTION_PREFILL_LAUNCH_H_
