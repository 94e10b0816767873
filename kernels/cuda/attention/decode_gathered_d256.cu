// One instantiated variant of the split-KV decode kernel (decode_split_kv.cuh):
// GatheredRows rows, head dim 256.
#include "kernels/cuda/attention/decode_split_kv_impl.cuh"

namespace sf::cuda::decode_internal {
SF_INSTANTIATE_SPLIT_KV(256, GatheredRows)
}  // namespace sf::cuda::decode_internal
