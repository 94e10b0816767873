// block_sparse's parameters, typed: the one declaration its CPU selection
// (kernels/cpu/methods/block_sparse.cc) and its CUDA selection
// (kernels/cuda/attention/select_block_sparse.cu) read. Names, defaults and bounds are the
// registry's (methods/block_sparse.cc).
#ifndef SF_KERNELS_CPU_METHODS_BLOCK_SPARSE_H_
#define SF_KERNELS_CPU_METHODS_BLOCK_SPARSE_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "common/job.h"
#include "kernels/cpu/method_params.h"
#include "methods/params.h"

namespace sf::kernels {

struct BlockSparseParams {
  int64_t block = 16;        // query and key block size
  int64_t block_budget = 0;  // key blocks per query block, forced ones included
};

// The typed parameters read through `reader` (defaults filled, types and the
// registry's bounds checked). InvalidArgument naming the parameter otherwise.
absl::StatusOr<BlockSparseParams> BlockSparseParamsFrom(const ParamReader& reader);

// The same from a ParamMap of this method; a parameter it does not declare is
// InvalidArgument too.
absl::StatusOr<BlockSparseParams> BlockSparseParamsFrom(const ParamMap& params);

// The CPU selection bound to `p` as the CUDA selection takes it: the registry's bounds
// are not checked here (ParseMethodParams checks them); the selection's own checks run
// when it runs. For checking a CUDA selection against the reference.
MethodParams BlockSparseMethodParams(const BlockSparseParams& p);

}  // namespace sf::kernels

#endif  // SF_KERNELS_CPU_METHODS_BLOCK_SPARSE_H_
