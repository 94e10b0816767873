// Entry points of the prefill kernels: validation of AttentionParams, the TMA tensor maps
// (encoded through the driver entry point, so nothing links libcuda) and dispatch on the
// head dim.
#include "kernels/cuda/attention/prefill.h"

#include <cuda.h>
#include <cudaTypedefs.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "kernels/cuda/attention/prefill_launch.h"

namespace sf::cuda {
namespace {

using prefill_internal::KernelArgs;
using prefill_internal::TensorMaps;

absl::StatusOr<PFN_cuTensorMapEncodeTiled_v12000> EncodeTiledFn() {
  static PFN_cuTensorMapEncodeTiled_v12000 fn = nullptr;
  static cudaError_t err = cudaSuccess;
  static std::once_flag once;
  std::call_once(once, [] {
    cudaDriverEntryPointQueryResult query;
    void* ptr = nullptr;
    err = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &ptr, 12000, cudaEnableDefault,
                                           &query);
    if (err == cudaSuccess && query == cudaDriverEntryPointSuccess) {
      fn = reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(ptr);
    }
  });
  if (fn == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("prefill: the CUDA driver has no cuTensorMapEncodeTiled (",
                     cudaGetErrorString(err), "); a driver for CUDA 12 or later is needed"));
  }
  return fn;
}

// A rank-3 bf16 map with a 128-byte swizzle: dims innermost first, strides in elements of
// dims 1 and 2, box (64, box1, box2).
absl::Status EncodeMap(CUtensorMap* map, const void* base, const uint64_t (&dims)[3],
                       int64_t stride1, int64_t stride2, uint32_t box1, uint32_t box2,
                       const char* what) {
  auto fn = EncodeTiledFn();
  if (!fn.ok()) return fn.status();
  const cuuint64_t global_dims[3] = {dims[0], dims[1], dims[2]};
  const cuuint64_t strides[2] = {static_cast<cuuint64_t>(stride1) * 2,
                                 static_cast<cuuint64_t>(stride2) * 2};
  const cuuint32_t box[3] = {64, box1, box2};
  const cuuint32_t element_strides[3] = {1, 1, 1};
  const CUresult res =
      (*fn)(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, const_cast<void*>(base), global_dims, strides,
            box, element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
            CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (res != CUDA_SUCCESS) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prefill: cannot describe ", what, " for the copy engine (cuTensorMapEncodeTiled error ",
        static_cast<int>(res), "); check its pointer alignment (16 bytes) and strides"));
  }
  return absl::OkStatus();
}

absl::Status CheckAligned(const void* p, const char* field) {
  if (p == nullptr) return absl::InvalidArgumentError(absl::StrCat("prefill: ", field, " is null"));
  if (reinterpret_cast<uintptr_t>(p) % 16 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("prefill: ", field, " must be 16-byte aligned"));
  }
  return absl::OkStatus();
}

absl::Status CheckStride(int64_t stride, const char* field) {
  if (stride <= 0 || stride % 8 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("prefill: ", field, " = ", stride,
                                                   " must be a positive multiple of 8 elements"));
  }
  return absl::OkStatus();
}

absl::Status Validate(const AttentionParams& p) {
  if (p.dtype != AttnDType::kBf16) {
    return absl::InvalidArgumentError("prefill: dtype must be kBf16 (the only instantiated type)");
  }
  if (p.head_dim != 64 && p.head_dim != 128 && p.head_dim != 256) {
    return absl::InvalidArgumentError(
        absl::StrCat("prefill: head_dim = ", p.head_dim, "; supported: 64, 128, 256"));
  }
  if (p.num_kv_heads <= 0 || p.num_q_heads <= 0 || p.num_q_heads % p.num_kv_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("prefill: num_q_heads (", p.num_q_heads,
                     ") must be a positive multiple of num_kv_heads (", p.num_kv_heads, ")"));
  }
  if (p.num_queries < 1 || p.num_queries > p.max_kv_length || p.max_kv_length >= (1ll << 31)) {
    return absl::InvalidArgumentError(absl::StrCat("prefill: need 1 <= num_queries (",
                                                   p.num_queries, ") <= max_kv_length (",
                                                   p.max_kv_length, ") < 2^31"));
  }
  if (!(p.softmax_scale > 0.f) || !std::isfinite(p.softmax_scale)) {
    return absl::InvalidArgumentError("prefill: softmax_scale must be positive and finite");
  }
  for (auto [ptr, name] :
       {std::pair<const void*, const char*>{p.q, "q"}, {p.k, "k"}, {p.v, "v"}, {p.out, "out"}}) {
    if (absl::Status s = CheckAligned(ptr, name); !s.ok()) return s;
  }
  for (auto [stride, name] : {std::pair<int64_t, const char*>{p.q_row_stride, "q_row_stride"},
                              {p.q_head_stride, "q_head_stride"},
                              {p.kv_row_stride, "kv_row_stride"},
                              {p.kv_head_stride, "kv_head_stride"},
                              {p.out_row_stride, "out_row_stride"},
                              {p.out_head_stride, "out_head_stride"}}) {
    if (absl::Status s = CheckStride(stride, name); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status BuildMaps(const AttentionParams& p, TensorMaps* maps) {
  const int key_rows = prefill_internal::KeyTileRows(p.head_dim);
  const uint64_t q_dims[3] = {static_cast<uint64_t>(p.head_dim),
                              static_cast<uint64_t>(p.num_q_heads),
                              static_cast<uint64_t>(p.num_queries)};
  const uint64_t kv_dims[3] = {static_cast<uint64_t>(p.head_dim),
                               static_cast<uint64_t>(p.max_kv_length),
                               static_cast<uint64_t>(p.num_kv_heads)};
  if (absl::Status s = EncodeMap(&maps->q, p.q, q_dims, p.q_head_stride, p.q_row_stride, 1,
                                 prefill_internal::kQueryTileRows, "q");
      !s.ok())
    return s;
  if (absl::Status s =
          EncodeMap(&maps->k, p.k, kv_dims, p.kv_row_stride, p.kv_head_stride, key_rows, 1, "k");
      !s.ok())
    return s;
  return EncodeMap(&maps->v, p.v, kv_dims, p.kv_row_stride, p.kv_head_stride, key_rows, 1, "v");
}

// The persistent grid's size: the current device's multiprocessors.
absl::StatusOr<int> MultiprocessorCount() {
  int device = 0, count = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err == cudaSuccess) {
    err = cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device);
  }
  if (err != cudaSuccess || count <= 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "prefill: cannot read the device's multiprocessor count: ", cudaGetErrorString(err)));
  }
  return count;
}

KernelArgs BaseArgs(const AttentionParams& p, int num_sms) {
  KernelArgs a;
  a.num_sms = num_sms;
  a.num_queries = static_cast<int32_t>(p.num_queries);
  a.max_kv_length = static_cast<int32_t>(p.max_kv_length);
  a.kv_lengths = p.kv_lengths;
  a.num_q_heads = p.num_q_heads;
  a.group = p.num_q_heads / p.num_kv_heads;
  a.num_m_blocks = static_cast<int32_t>((p.num_queries + prefill_internal::kQueryTileRows - 1) /
                                        prefill_internal::kQueryTileRows);
  a.softmax_scale = p.softmax_scale;
  a.scale_log2 = p.softmax_scale * static_cast<float>(M_LOG2E);
  a.out = static_cast<__nv_bfloat16*>(p.out);
  a.out_row_stride = p.out_row_stride;
  a.out_head_stride = p.out_head_stride;
  a.lse = p.lse;
  a.k = static_cast<const __nv_bfloat16*>(p.k);
  a.v = static_cast<const __nv_bfloat16*>(p.v);
  a.kv_head_stride = p.kv_head_stride;
  a.kv_row_stride = p.kv_row_stride;
  return a;
}

template <prefill_internal::WalkMode kMode>
absl::Status LaunchForHeadDim(const TensorMaps& maps, const KernelArgs& a, int head_dim,
                              PrefillSchedule schedule, cudaStream_t stream) {
  const bool overlap = schedule == PrefillSchedule::kOverlapped;
  switch (head_dim) {
    case 64:
      return prefill_internal::LaunchPrefill<64, kMode>(maps, a, overlap, stream);
    case 128:
      return prefill_internal::LaunchPrefill<128, kMode>(maps, a, overlap, stream);
    default:
      return prefill_internal::LaunchPrefill<256, kMode>(maps, a, overlap, stream);
  }
}

// With more query tiles than CTAs, a device counter hands out the tiles past the first
// wave, so CTAs whose tiles are light (sparse lists of uneven length) take more of them.
// SF_PREFILL_TILE_ORDER=static keeps the fixed order (CTA c takes c, c + grid, ...), for
// the benchmark's comparison.
bool UseTileCounter(const KernelArgs& a) {
  if (static_cast<int64_t>(a.num_m_blocks) * a.num_q_heads <= a.num_sms) return false;
  const char* env = std::getenv("SF_PREFILL_TILE_ORDER");
  return env == nullptr || std::string_view(env) != "static";
}

// Launches with a zeroed tile counter when UseTileCounter says so. The counter comes from
// the stream's memory pool and goes back to it in stream order, so calls on other streams
// each have their own.
template <prefill_internal::WalkMode kMode>
absl::Status Dispatch(const TensorMaps& maps, const KernelArgs& a, int head_dim,
                      PrefillSchedule schedule, cudaStream_t stream) {
  if (!UseTileCounter(a)) return LaunchForHeadDim<kMode>(maps, a, head_dim, schedule, stream);
  KernelArgs args = a;
  cudaError_t err =
      cudaMallocAsync(reinterpret_cast<void**>(&args.tile_counter), sizeof(int32_t), stream);
  if (err == cudaSuccess) err = cudaMemsetAsync(args.tile_counter, 0, sizeof(int32_t), stream);
  if (err != cudaSuccess) {
    return absl::InternalError(
        absl::StrCat("prefill: allocating the tile counter: ", cudaGetErrorString(err)));
  }
  absl::Status status = LaunchForHeadDim<kMode>(maps, args, head_dim, schedule, stream);
  err = cudaFreeAsync(args.tile_counter, stream);
  if (status.ok() && err != cudaSuccess) {
    status = absl::InternalError(
        absl::StrCat("prefill: freeing the tile counter: ", cudaGetErrorString(err)));
  }
  return status;
}

}  // namespace

namespace prefill_internal {
int KeyTileRows(int head_dim) { return head_dim == 256 ? 64 : 128; }
}  // namespace prefill_internal

absl::Status PrefillDense(const AttentionParams& params, PrefillSchedule schedule) {
  if (absl::Status s = Validate(params); !s.ok()) return s;
  TensorMaps maps;
  if (absl::Status s = BuildMaps(params, &maps); !s.ok()) return s;
  const absl::StatusOr<int> sms = MultiprocessorCount();
  if (!sms.ok()) return sms.status();
  return Dispatch<prefill_internal::WalkMode::kDense>(maps, BaseArgs(params, *sms), params.head_dim,
                                                      schedule, params.stream);
}

static absl::Status CheckListHeads(int32_t count, const AttentionParams& p, const char* field) {
  if (count != p.num_q_heads && count != p.num_kv_heads) {
    return absl::InvalidArgumentError(
        absl::StrCat("prefill: ", field, " = ", count, " must be num_q_heads or num_kv_heads"));
  }
  return absl::OkStatus();
}

absl::Status PrefillBlockSparse(const AttentionParams& params, const BlockSelection& selection,
                                PrefillSchedule schedule) {
  if (absl::Status s = Validate(params); !s.ok()) return s;
  const int b = selection.block;
  const bool coarse = b > 0 && b % 128 == 0;
  const bool fine = b == 16 || b == 32 || b == 64;
  if (!coarse && !fine) {
    return absl::InvalidArgumentError(absl::StrCat("prefill: BlockSelection.block = ", b,
                                                   " must be 16, 32, 64 or a multiple of 128"));
  }
  const int64_t want_blocks = (params.num_queries + b - 1) / b;
  if (selection.num_query_blocks != want_blocks) {
    return absl::InvalidArgumentError(
        absl::StrCat("prefill: BlockSelection.num_query_blocks = ", selection.num_query_blocks,
                     ", expected ceil(num_queries / block) = ", want_blocks));
  }
  if (absl::Status s = CheckListHeads(selection.heads.count, params, "BlockSelection.heads.count");
      !s.ok())
    return s;
  if (selection.offsets == nullptr || selection.key_blocks == nullptr) {
    return absl::InvalidArgumentError("prefill: BlockSelection.offsets/key_blocks is null");
  }
  TensorMaps maps;
  if (absl::Status s = BuildMaps(params, &maps); !s.ok()) return s;
  const absl::StatusOr<int> sms = MultiprocessorCount();
  if (!sms.ok()) return sms.status();
  KernelArgs a = BaseArgs(params, *sms);
  a.list_heads = selection.heads.count;
  a.block = b;
  a.block_shift = fine ? __builtin_ctz(static_cast<unsigned>(b)) : 0;
  a.num_query_blocks = selection.num_query_blocks;
  a.offsets = selection.offsets;
  a.key_blocks = selection.key_blocks;
  return Dispatch<prefill_internal::WalkMode::kBlocks>(maps, a, params.head_dim, schedule,
                                                       params.stream);
}

absl::Status PrefillLines(const AttentionParams& params, const LineSelection& selection,
                          PrefillSchedule schedule) {
  if (absl::Status s = Validate(params); !s.ok()) return s;
  if (absl::Status s = CheckListHeads(selection.heads.count, params, "LineSelection.heads.count");
      !s.ok())
    return s;
  if (selection.column_offsets == nullptr || selection.columns == nullptr ||
      selection.diagonal_offsets == nullptr || selection.diagonals == nullptr) {
    return absl::InvalidArgumentError(
        "prefill: LineSelection.column_offsets/columns/diagonal_offsets/diagonals is null "
        "(give an empty list as offsets {0, 0, ...} and any valid pointer)");
  }
  TensorMaps maps;
  if (absl::Status s = BuildMaps(params, &maps); !s.ok()) return s;
  const absl::StatusOr<int> sms = MultiprocessorCount();
  if (!sms.ok()) return sms.status();
  KernelArgs a = BaseArgs(params, *sms);
  a.line_heads = selection.heads.count;
  a.column_offsets = selection.column_offsets;
  a.columns = selection.columns;
  a.diagonal_offsets = selection.diagonal_offsets;
  a.diagonals = selection.diagonals;
  return Dispatch<prefill_internal::WalkMode::kLines>(maps, a, params.head_dim, schedule,
                                                      params.stream);
}

}  // namespace sf::cuda
