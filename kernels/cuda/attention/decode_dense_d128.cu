// One instantiated variant of the split-KV decode kernel (decode_split_kv.cuh):
// DenseRows rows, head dim 128.
#include "kernels/cuda/attention/decode_split_kv_impl.cuh"

namespace sf::cuda::decode_internal {
SF_INSTANTIATE_SPLIT_KV(128, DenseRows)
}  // namespace sf::cuda::decode_internal
