// Which key tiles one query tile (128 rows of one head) visits, and how each must be
// masked: the producer thread walks them and writes one TileInfo per shared-memory stage
// beside the K/V it loads; the consumers read it after the stage's barrier completes.
// Dense: every causal tile. Blocks: the union of the listed key blocks of the tile's query
// blocks (a 64-bit block mask when blocks are smaller than the tiles). Lines: the tiles
// any listed column or diagonal touches, with the tile's column and diagonal bitmaps.
#ifndef SF_KERNELS_CUDA_ATTENTION_PREFILL_WALK_CUH_
#define SF_KERNELS_CUDA_ATTENTION_PREFILL_WALK_CUH_

#include <climits>
#include <cstdint>

#include "kernels/cuda/attention/prefill_launch.h"

namespace sf::cuda::prefill_internal {

inline constexpr int kQueryRows = 128;  // rows of a query tile

enum TileKind : int32_t {
  kFullTile = 0,   // every causal pair of the tile is selected
  kBlockMask = 1,  // mask64: bit (row / block) * (kBlockN / block) + key / block
  kLineMask = 2,   // columns and diagonals bitmaps
};

// 64 bytes per stage.
struct TileInfo {
  int32_t tile;     // key tile index (keys [tile * kBlockN, ...)); -1 ends the walk
  int32_t kind;     // TileKind
  int32_t diag_lo;  // kLineMask: the diagonal offset of bit 0 of `diags`
  int32_t unused;
  uint32_t cols[4];   // kLineMask: bit j = key tile * kBlockN + j is a column;
                      // kBlockMask: cols[0] | cols[1] << 32 is the block mask
  uint32_t diags[8];  // kLineMask: bit j = offset diag_lo + j is a diagonal
};

// The rows of a query tile, as positions.
struct QueryTile {
  int m_block;
  int head;
  int pmin;  // position of the tile's first row
  int pmax;  // position of its last row inside the call
};

__device__ __forceinline__ int ListHead(const KernelArgs& a, int list_heads, int head) {
  return list_heads == a.num_q_heads ? head : head / a.group;
}

// Dense: tiles from the last causal one down to 0 (masked tiles first).
template <int kBlockN>
struct DenseWalk {
  int next;
  __device__ __forceinline__ void Init(const KernelArgs&, const QueryTile& q, int*) {
    next = q.pmax / kBlockN;
  }
  __device__ __forceinline__ bool Next(TileInfo* info) {
    if (next < 0) return false;
    info->tile = next--;
    info->kind = kFullTile;
    return true;
  }
};

// Blocks: block >= 128 (a multiple of 128 and of kBlockN): each listed block is
// block / kBlockN full tiles. block < 128 (dividing 128): a merge of the sorted lists of
// the tile's 128 / block query blocks, each tile with the mask of listed sub-blocks.
// Cursors live in shared memory (`scratch`, 16 ints) to keep the producer's registers
// few.
template <int kBlockN>
struct BlockWalk {
  const int32_t* keys;
  int* cursor;  // [0, 8) positions, [8, 16) ends
  int rows;     // query blocks in the tile (fine mode)
  int sub;      // coarse: tiles per block; fine: key sub-blocks per tile
  int shift;    // log2(block)
  bool fine;
  uint64_t full_mask;

  __device__ __forceinline__ void Init(const KernelArgs& a, const QueryTile& q, int* scratch) {
    keys = a.key_blocks;
    cursor = scratch;
    shift = a.block_shift;
    const int lh = ListHead(a, a.list_heads, q.head);
    fine = a.block < kQueryRows;
    if (!fine) {
      const int idx = lh * a.num_query_blocks + q.m_block * kQueryRows / a.block;
      cursor[0] = a.offsets[idx];
      cursor[8] = a.offsets[idx + 1];
      sub = a.block / kBlockN;
      cursor[1] = 0;  // tile within the current block
      return;
    }
    const int per_tile = kQueryRows >> shift;
    const int first = q.m_block * per_tile;
    rows = min(per_tile, a.num_query_blocks - first);
    sub = kBlockN >> shift;
    for (int r = 0; r < rows; ++r) {
      const int idx = lh * a.num_query_blocks + first + r;
      cursor[r] = a.offsets[idx];
      cursor[8 + r] = a.offsets[idx + 1];
    }
    const int bits = rows * sub;
    full_mask = bits >= 64 ? ~0ull : (1ull << bits) - 1;
  }

  __device__ __forceinline__ bool Next(TileInfo* info) {
    if (!fine) {
      if (cursor[0] >= cursor[8]) return false;
      info->tile = keys[cursor[0]] * sub + cursor[1];
      info->kind = kFullTile;
      if (++cursor[1] == sub) {
        cursor[1] = 0;
        ++cursor[0];
      }
      return true;
    }
    int tile = INT_MAX;
    for (int r = 0; r < rows; ++r) {
      if (cursor[r] < cursor[8 + r]) tile = min(tile, keys[cursor[r]] / sub);
    }
    if (tile == INT_MAX) return false;
    uint64_t mask = 0;
    for (int r = 0; r < rows; ++r) {
      int c = cursor[r];
      const int end = cursor[8 + r];
      for (; c < end; ++c) {
        const int key_block = keys[c];
        if (key_block / sub != tile) break;
        mask |= 1ull << (r * sub + key_block % sub);
      }
      cursor[r] = c;
    }
    info->tile = tile;
    info->kind = mask == full_mask ? kFullTile : kBlockMask;
    info->cols[0] = static_cast<uint32_t>(mask);
    info->cols[1] = static_cast<uint32_t>(mask >> 32);
    return true;
  }
};

// Lines: key k is selected for position p iff k is a listed column or p - k a listed
// diagonal. Tiles come in ascending order from two sorted streams: the columns' tiles,
// and the diagonals' bands (diagonal d covers keys [pmin - d, pmax - d]), walked from the
// largest d down so bands ascend.
template <int kBlockN>
struct LineWalk {
  const int32_t* columns;
  const int32_t* diagonals;
  int col;  // first column whose tile may still come
  int col_end;
  int diag;  // largest diagonal whose band may still reach the next tile
  int diag_begin;
  int next_tile;  // smallest tile not yet produced
  int pmin, pmax;

  __device__ __forceinline__ void Init(const KernelArgs& a, const QueryTile& q, int*) {
    const int lh = ListHead(a, a.line_heads, q.head);
    columns = a.columns;
    diagonals = a.diagonals;
    col = a.column_offsets[lh];
    col_end = a.column_offsets[lh + 1];
    diag_begin = a.diagonal_offsets[lh];
    diag = a.diagonal_offsets[lh + 1] - 1;
    while (diag >= diag_begin && diagonals[diag] > q.pmax) --diag;  // no key at all
    next_tile = 0;
    pmin = q.pmin;
    pmax = q.pmax;
  }

  __device__ __forceinline__ int NextColumnTile() {
    while (col < col_end && columns[col] / kBlockN < next_tile) ++col;
    return col < col_end && columns[col] <= pmax ? columns[col] / kBlockN : INT_MAX;
  }
  __device__ __forceinline__ int NextDiagonalTile() {
    for (; diag >= diag_begin; --diag) {
      const int d = diagonals[diag];
      if ((pmax - d) / kBlockN < next_tile) continue;
      return max(max(pmin - d, 0) / kBlockN, next_tile);
    }
    return INT_MAX;
  }

  __device__ __forceinline__ bool Next(TileInfo* info) {
    const int tile = min(NextColumnTile(), NextDiagonalTile());
    if (tile == INT_MAX) return false;
    next_tile = tile + 1;
    const int key0 = tile * kBlockN;
#pragma unroll
    for (int w = 0; w < 4; ++w) info->cols[w] = 0;
#pragma unroll
    for (int w = 0; w < 8; ++w) info->diags[w] = 0;
    int num_cols = 0;
    for (int c = col; c < col_end && columns[c] < key0 + kBlockN; ++c, ++num_cols) {
      const int j = columns[c] - key0;
      info->cols[j >> 5] |= 1u << (j & 31);
    }
    // Offsets any pair of the tile can have: [pmin - (key0 + kBlockN - 1), pmax - key0].
    const int diag_lo = pmin - (key0 + kBlockN - 1);
    const int valid_lo = max(diag_lo, 0), valid_hi = pmax - key0;
    int num_valid = 0;
    for (int i = diag; i >= diag_begin; --i) {
      const int d = diagonals[i];
      if (d < diag_lo) break;
      if (d > valid_hi) continue;
      const int j = d - diag_lo;
      info->diags[j >> 5] |= 1u << (j & 31);
      num_valid += d >= valid_lo;
    }
    info->tile = tile;
    const bool full = num_cols == kBlockN || num_valid == valid_hi - valid_lo + 1;
    info->kind = full ? kFullTile : kLineMask;
    info->diag_lo = diag_lo;
    return true;
  }
};

}  // namespace sf::cuda::prefill_internal

#endif  // SF_KERNELS_CUDA_ATTENTION_PREFILL_WALK_CUH_
