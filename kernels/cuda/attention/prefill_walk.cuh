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
  kGathered = 3,   // the K/V rows of `gathered` packed into one tile (count of them)
};

inline constexpr int kMaxTileKeys = 128;

// One per stage.
struct TileInfo {
  int32_t tile;                    // key tile index (keys [tile * kBlockN, ...)); -1 ends the walk
  int32_t kind;                    // TileKind
  int32_t diag_lo;                 // kLineMask: the diagonal offset of bit 0 of `diags`
  int32_t count;                   // kGathered: rows in `gathered`
  uint32_t cols[4];                // kLineMask: bit j = key tile * kBlockN + j is a column;
                                   // kBlockMask: cols[0] | cols[1] << 32 is the block mask
  uint32_t diags[8];               // kLineMask: bit j = offset diag_lo + j is a diagonal
  int32_t gathered[kMaxTileKeys];  // kGathered: key positions, ascending
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
  static constexpr bool kGathers = false;
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
  static constexpr bool kGathers = false;
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

// The diagonals' bands over key tiles, ascending: diagonal d covers keys
// [pmin - d, pmax - d] of a query tile, so walking d from the largest down gives bands
// whose both ends ascend.
template <int kBlockN>
struct DiagonalBands {
  const int32_t* diagonals;
  int diag;  // largest diagonal whose band may still reach the tiles asked for
  int begin;
  int pmin, pmax;

  __device__ __forceinline__ void Init(const int32_t* d, int first, int end, const QueryTile& q) {
    diagonals = d;
    begin = first;
    diag = end - 1;
    pmin = q.pmin;
    pmax = q.pmax;
    while (diag >= begin && diagonals[diag] > pmax) --diag;  // no key at all
  }
  // The smallest band tile >= `from` (INT_MAX if none); `from` must not decrease between
  // calls.
  __device__ __forceinline__ int NextTile(int from) {
    for (; diag >= begin; --diag) {
      const int d = diagonals[diag];
      if ((pmax - d) / kBlockN < from) continue;
      return max(max(pmin - d, 0) / kBlockN, from);
    }
    return INT_MAX;
  }
};

// Lines: key k is selected for position p iff k is a listed column or p - k a listed
// diagonal. First the tiles the diagonals' bands touch, ascending, each with bitmaps of
// its columns and diagonals (or unmasked when the lines cover it); then the columns that
// fall outside those tiles, gathered kBlockN at a time into packed tiles (kGathered), so a
// few scattered columns cost a packed tile rather than one tile each.
template <int kBlockN>
struct LineWalk {
  static constexpr bool kGathers = true;
  const int32_t* columns;
  int col;  // phase 1: first column not below the current tile; phase 2: next to place
  int col_begin;
  int col_end;
  DiagonalBands<kBlockN> bands;    // phase 1
  DiagonalBands<kBlockN> covered;  // phase 2: is a column's tile a band tile?
  int next_tile;                   // phase 1: smallest tile not yet produced
  bool gathering;

  __device__ __forceinline__ void Init(const KernelArgs& a, const QueryTile& q, int*) {
    const int lh = ListHead(a, a.line_heads, q.head);
    columns = a.columns;
    col_begin = col = a.column_offsets[lh];
    col_end = a.column_offsets[lh + 1];
    bands.Init(a.diagonals, a.diagonal_offsets[lh], a.diagonal_offsets[lh + 1], q);
    covered = bands;
    next_tile = 0;
    gathering = false;
  }

  __device__ __forceinline__ bool Next(TileInfo* info) {
    if (!gathering) {
      const int tile = bands.NextTile(next_tile);
      if (tile != INT_MAX) {
        next_tile = tile + 1;
        BandTile(tile, info);
        return true;
      }
      gathering = true;
      col = col_begin;
    }
    return Gather(info);
  }

  __device__ __forceinline__ void BandTile(int tile, TileInfo* info) {
    const int key0 = tile * kBlockN;
    // Offsets any pair of the tile can have: [pmin - (key0 + kBlockN - 1), pmax - key0].
    const int diag_lo = bands.pmin - (key0 + kBlockN - 1);
    const int valid_lo = max(diag_lo, 0), valid_hi = bands.pmax - key0;
    // bands.diag is the largest diagonal index whose band reaches this tile or later, so
    // diagonals above valid_hi sit just above the tile's window: skip them, then find the
    // window's lower end by bisection. A window holding every offset in [valid_lo,
    // valid_hi] (diagonals are sorted and distinct) makes the tile full with no bitmaps,
    // which is most band tiles of a dense band (streaming), at O(log) producer work.
    int hi = bands.diag;
    while (hi >= bands.begin && bands.diagonals[hi] > valid_hi) --hi;
    int lo_idx = bands.begin, hi_idx = hi + 1;  // first index with diagonal >= valid_lo
    while (lo_idx < hi_idx) {
      const int mid = (lo_idx + hi_idx) / 2;
      if (bands.diagonals[mid] < valid_lo) {
        lo_idx = mid + 1;
      } else {
        hi_idx = mid;
      }
    }
    info->tile = tile;
    info->diag_lo = diag_lo;
    if (hi - lo_idx + 1 == valid_hi - valid_lo + 1) {
      info->kind = kFullTile;
      return;
    }
    while (col < col_end && columns[col] < key0) ++col;
    uint32_t cols[kBlockN / 32] = {};
    int num_cols = 0;
    for (int c = col; c < col_end && columns[c] < key0 + kBlockN; ++c, ++num_cols) {
      const int j = columns[c] - key0;
      cols[j >> 5] |= 1u << (j & 31);
    }
    if (num_cols == kBlockN) {
      info->kind = kFullTile;
      return;
    }
#pragma unroll
    for (int w = 0; w < kBlockN / 32; ++w) info->cols[w] = cols[w];
#pragma unroll
    for (int w = kBlockN / 32; w < 4; ++w) info->cols[w] = 0;
    // Diagonal bits, descending, one word assembled in a register at a time.
    uint32_t word = 0;
    int word_index = 7;
#pragma unroll
    for (int w = 0; w < 8; ++w) info->diags[w] = 0;
    for (int i = hi; i >= bands.begin; --i) {
      const int d = bands.diagonals[i];
      if (d < diag_lo) break;
      const int j = d - diag_lo;
      if ((j >> 5) != word_index) {
        if (word != 0) info->diags[word_index] = word;
        word = 0;
        word_index = j >> 5;
      }
      word |= 1u << (j & 31);
    }
    if (word != 0) info->diags[word_index] = word;
    info->kind = kLineMask;
  }

  // Up to kBlockN columns <= pmax outside the band tiles, in info->gathered.
  __device__ __forceinline__ bool Gather(TileInfo* info) {
    int count = 0;
    for (; col < col_end && count < kBlockN; ++col) {
      const int c = columns[col];
      if (c > covered.pmax) {
        col = col_end;
        break;
      }
      const int tile = c / kBlockN;
      if (covered.NextTile(tile) == tile) continue;  // handled with its band tile
      info->gathered[count++] = c;
    }
    if (count == 0) return false;
    info->tile = 0;
    info->kind = kGathered;
    info->count = count;
    return true;
  }
};

}  // namespace sf::cuda::prefill_internal

#endif  // SF_KERNELS_CUDA_ATTENTION_PREFILL_WALK_CUH_
