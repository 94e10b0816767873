// Pair counts of device selections and the merge of outputs by head kind (see the header).
// Counts are exact integers (64-bit atomics), so they equal the CPU reference's double
// sums of the same sets bit for bit.
#include <cuda_runtime.h>

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/methods/selection_count.h"

namespace sf::cuda {
namespace {

constexpr int kThreads = 256;

// Entries of the sorted list [begin, end) smaller than x.
__device__ int64_t CountBelow(const int32_t* list, int64_t begin, int64_t end, int64_t x) {
  int64_t lo = begin, hi = end;
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (list[mid] < x) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo - begin;
}

// One CTA per list: columns and diagonals each cover the rows at positions >= their
// value; a column c meets a diagonal o once, at position c + o.
__global__ void CountLinePairsKernel(LineSelection lines, CountedRows rows,
                                     unsigned long long* pairs) {
  const int list = blockIdx.x;
  const int64_t first = rows.q_offset, end = rows.q_offset + rows.num_queries;
  const int64_t c0 = lines.column_offsets[list], c1 = lines.column_offsets[list + 1];
  const int64_t d0 = lines.diagonal_offsets[list], d1 = lines.diagonal_offsets[list + 1];
  auto covered = [&](int64_t start) -> int64_t {
    const int64_t from = start > first ? start : first;
    return end > from ? end - from : 0;
  };
  int64_t sum = 0;
  for (int64_t i = c0 + threadIdx.x; i < c1; i += blockDim.x) {
    const int64_t c = lines.columns[i];
    sum += covered(c);
    // Diagonals o with first <= c + o < end.
    sum -= CountBelow(lines.diagonals, d0, d1, end - c) -
           CountBelow(lines.diagonals, d0, d1, first - c);
  }
  for (int64_t i = d0 + threadIdx.x; i < d1; i += blockDim.x) sum += covered(lines.diagonals[i]);
  const int64_t group = rows.num_q_heads / lines.heads.count;
  if (sum != 0) atomicAdd(pairs, static_cast<unsigned long long>(sum * group));
}

// A thread per (list, query block): earlier key blocks whole, the diagonal one causal.
__global__ void CountBlockPairsKernel(BlockSelection blocks, CountedRows rows,
                                      unsigned long long* pairs) {
  const int64_t lists = static_cast<int64_t>(blocks.heads.count) * blocks.num_query_blocks;
  const int64_t block = blocks.block;
  const int64_t first = rows.q_offset, end = rows.q_offset + rows.num_queries;
  int64_t sum = 0;
  for (int64_t l = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; l < lists;
       l += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t qb = first / block + l % blocks.num_query_blocks;
    const int64_t rb = qb * block > first ? qb * block : first;
    const int64_t re = (qb + 1) * block < end ? (qb + 1) * block : end;
    if (re <= rb) continue;
    for (int64_t i = blocks.offsets[l]; i < blocks.offsets[l + 1]; ++i) {
      const int64_t kb = blocks.key_blocks[i];
      if (kb < qb) {
        sum += block * (re - rb);
      } else if (kb == qb) {
        const int64_t a = rb - qb * block + 1, b = re - qb * block;
        sum += (a + b) * (b - a + 1) / 2;
      }
    }
  }
  const int64_t group = rows.num_q_heads / blocks.heads.count;
  if (sum != 0) atomicAdd(pairs, static_cast<unsigned long long>(sum * group));
}

__global__ void CountHeadsOfKindKernel(const int32_t* head_kinds, int32_t num_heads, int32_t kind,
                                       unsigned long long* count) {
  unsigned long long n = 0;
  for (int h = threadIdx.x; h < num_heads; h += blockDim.x) n += head_kinds[h] == kind ? 1 : 0;
  if (n != 0) atomicAdd(count, n);
}

// A thread per 16 bytes of one (row, head)'s output.
__global__ void CopyHeadsOfKindKernel(const char* src, char* dst, int64_t rows, int32_t heads,
                                      int32_t chunks, int64_t row_bytes, int64_t head_bytes,
                                      const int32_t* head_kinds, int32_t kind) {
  const int64_t total = rows * heads * chunks;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t chunk = t % chunks;
    const int64_t h = (t / chunks) % heads;
    const int64_t r = t / (static_cast<int64_t>(chunks) * heads);
    if (head_kinds[h] != kind) continue;
    const int64_t at = r * row_bytes + h * head_bytes + chunk * 16;
    *reinterpret_cast<uint4*>(dst + at) = *reinterpret_cast<const uint4*>(src + at);
  }
}

int GridFor(int64_t items) {
  const int64_t blocks = (items + kThreads - 1) / kThreads;
  return static_cast<int>(blocks < 4096 ? (blocks > 0 ? blocks : 1) : 4096);
}

absl::Status CheckRows(const CountedRows& rows, int32_t lists, const char* what) {
  if (lists <= 0 || rows.num_q_heads <= 0 || rows.num_q_heads % lists != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", lists, " lists do not divide ", rows.num_q_heads, " query heads"));
  }
  if (rows.num_queries < 0 || rows.q_offset < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": rows must be non-negative (num_queries ", rows.num_queries,
                     ", q_offset ", rows.q_offset, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CountLinePairs(const LineSelection& lines, const CountedRows& rows,
                            unsigned long long* pairs, cudaStream_t stream) {
  SF_RETURN_IF_ERROR(CheckRows(rows, lines.heads.count, "CountLinePairs"));
  if (rows.num_queries == 0) return absl::OkStatus();
  CountLinePairsKernel<<<lines.heads.count, kThreads, 0, stream>>>(lines, rows, pairs);
  return CudaStatus(cudaGetLastError(), "CountLinePairs launch");
}

absl::Status CountBlockPairs(const BlockSelection& blocks, const CountedRows& rows,
                             unsigned long long* pairs, cudaStream_t stream) {
  SF_RETURN_IF_ERROR(CheckRows(rows, blocks.heads.count, "CountBlockPairs"));
  if (blocks.block <= 0 || rows.q_offset % blocks.block != 0) {
    return absl::InvalidArgumentError(absl::StrCat("CountBlockPairs: q_offset ", rows.q_offset,
                                                   " is not a multiple of the block ",
                                                   blocks.block));
  }
  if (rows.num_queries == 0) return absl::OkStatus();
  const int64_t lists = static_cast<int64_t>(blocks.heads.count) * blocks.num_query_blocks;
  CountBlockPairsKernel<<<GridFor(lists), kThreads, 0, stream>>>(blocks, rows, pairs);
  return CudaStatus(cudaGetLastError(), "CountBlockPairs launch");
}

absl::Status CountHeadsOfKind(const int32_t* head_kinds, int32_t num_heads, HeadSelectionKind kind,
                              unsigned long long* count, cudaStream_t stream) {
  if (num_heads <= 0) return absl::OkStatus();
  CountHeadsOfKindKernel<<<1, kThreads, 0, stream>>>(head_kinds, num_heads,
                                                     static_cast<int32_t>(kind), count);
  return CudaStatus(cudaGetLastError(), "CountHeadsOfKind launch");
}

absl::Status CopyHeadsOfKind(const AttentionParams& p, const void* src, void* dst,
                             const int32_t* head_kinds, HeadSelectionKind kind) {
  if (p.dtype != AttnDType::kBf16 || p.head_dim % 8 != 0 || p.out_row_stride % 8 != 0 ||
      p.out_head_stride % 8 != 0) {
    return absl::InvalidArgumentError(
        "CopyHeadsOfKind: bf16 outputs with head_dim and strides multiples of 8 elements");
  }
  const int32_t chunks = p.head_dim / 8;
  const int64_t total = p.num_queries * p.num_q_heads * chunks;
  if (total == 0) return absl::OkStatus();
  CopyHeadsOfKindKernel<<<GridFor(total), kThreads, 0, p.stream>>>(
      static_cast<const char*>(src), static_cast<char*>(dst), p.num_queries, p.num_q_heads, chunks,
      p.out_row_stride * 2, p.out_head_stride * 2, head_kinds, static_cast<int32_t>(kind));
  return CudaStatus(cudaGetLastError(), "CopyHeadsOfKind launch");
}

}  // namespace sf::cuda
