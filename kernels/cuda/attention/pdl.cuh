// Internal to kernels/cuda/attention: programmatic dependent launch (sm_90) for the
// chains of small decode kernels (select -> split-KV -> combine), so that a kernel's
// CTAs are launched while its predecessor finishes instead of after it.
//
// A kernel launched with LaunchPdl must call PdlEnter() before its first global memory
// access: it waits until the previous kernel in the stream has completed and its writes
// are visible, then lets the next kernel start launching.
#ifndef SF_KERNELS_CUDA_ATTENTION_PDL_CUH_
#define SF_KERNELS_CUDA_ATTENTION_PDL_CUH_

#include <cuda_runtime.h>

#include <cstdlib>
#include <utility>

namespace sf::cuda::pdl_internal {

__device__ __forceinline__ void PdlEnter() {
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
}

// SF_DECODE_PDL=0 turns the attribute off (plain stream order), for the benchmark's
// comparison; the kernels are correct either way.
inline bool PdlEnabled() {
  const char* env = std::getenv("SF_DECODE_PDL");
  return env == nullptr || env[0] != '0';
}

template <typename... Params, typename... Args>
cudaError_t LaunchPdl(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                      cudaStream_t stream, Args&&... args) {
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute[0].val.programmaticStreamSerializationAllowed = 1;
  config.attrs = attribute;
  config.numAttrs = PdlEnabled() ? 1 : 0;
  return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

}  // namespace sf::cuda::pdl_internal

#endif  // SF_KERNELS_CUDA_ATTENTION_PDL_CUH_
