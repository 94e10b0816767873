// Mean pooling of query and key blocks on the GPU (block_sparse, flexprefill's original
// variant). Internal to kernels/cuda/attention.
#ifndef SF_KERNELS_CUDA_ATTENTION_SELECT_BLOCKS_CUH_
#define SF_KERNELS_CUDA_ATTENTION_SELECT_BLOCKS_CUH_

#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"

namespace sf::cuda::select_internal {

// Rows [start + b * block, min(start + (b + 1) * block, end)) of each head of a bf16
// tensor (element (h, r, x) at src[h * head_stride + r * row_stride + x]) averaged in
// float32 into out[h][b][x], for b in [0, blocks). REQUIRES every range non-empty.
struct PoolRowsArgs {
  const void* src = nullptr;
  int64_t head_stride = 0;
  int64_t row_stride = 0;
  int heads = 0;
  int dim = 0;
  int64_t start = 0;
  int64_t block = 0;
  int64_t end = 0;
  int blocks = 0;
  float* out = nullptr;
};
absl::Status LaunchPoolRows(const PoolRowsArgs& args, cudaStream_t stream);

// Variable-length block lists into a BlockSelection's CSR: offsets[0..lists] from
// counts[lists] (one scan), then list i copied from staging + i * stride.
absl::Status LaunchPackBlockLists(const int32_t* counts, const int32_t* staging, int64_t lists,
                                  int stride, int32_t* offsets, int32_t* key_blocks,
                                  cudaStream_t stream);

}  // namespace sf::cuda::select_internal

#endif  // SF_KERNELS_CUDA_ATTENTION_SELECT_BLOCKS_CUH_
