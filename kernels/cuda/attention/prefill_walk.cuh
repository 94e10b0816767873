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

// The last index i in [lo, hi) of the ascending `a` with a[i] <= x, or lo - 1, found by
// one thread (bisection).
__device__ __forceinline__ int LastAtMost(const int32_t* a, int lo, int hi, int x) {
  while (lo < hi) {
    const int mid = (lo + hi) >> 1;
    if (a[mid] <= x) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo - 1;
}

// The same, found by a whole warp (every lane passes the same arguments and gets the
// answer): each round the lanes probe 32 evenly spaced entries, so a list of n entries
// costs about log32(n) dependent loads instead of log2(n). `value`, if given, receives
// a[i] when i >= lo.
__device__ __forceinline__ int WarpLastAtMost(const int32_t* a, int lo, int hi, int x, int lane,
                                              int* value = nullptr) {
  while (hi - lo > 32) {
    const int step = (hi - lo + 31) / 32;
    const int i = lo + lane * step;
    const uint32_t at_most = __ballot_sync(0xffffffffu, i < hi && a[i] <= x);
    if (at_most == 0) return lo - 1;
    lo += (31 - __clz(at_most)) * step;
    hi = min(lo + step, hi);
  }
  const int i = lo + lane;
  const int v = i < hi ? a[i] : INT_MAX;
  const uint32_t at_most = __ballot_sync(0xffffffffu, v <= x);
  const int last = 31 - __clz(at_most);  // __clz(0) = 32: -1, so lo - 1
  if (value != nullptr) *value = __shfl_sync(0xffffffffu, v, last & 31);
  return lo + last;
}

// OR of each lane's `bit` (ascending with the lane; -1 past `last_lane`) into word w of
// lane w's `word`, one warp reduction per word the bits touch.
__device__ __forceinline__ void WarpOrBits(int bit, int last_lane, int lane, uint32_t* word) {
  const int first_word = __shfl_sync(0xffffffffu, bit, 0) >> 5;
  const int last_word = __shfl_sync(0xffffffffu, bit, last_lane) >> 5;
  for (int w = first_word; w <= last_word; ++w) {
    const uint32_t mine = bit >= 0 && (bit >> 5) == w ? 1u << (bit & 31) : 0u;
    const uint32_t all = __reduce_or_sync(0xffffffffu, mine);
    if (lane == w) *word |= all;
  }
}

// Lines: key k is selected for position p iff k is a listed column or p - k a listed
// diagonal. First the tiles the diagonals' bands touch, ascending, each with bitmaps of
// its columns and diagonals (or unmasked when the lines cover it); then the columns that
// fall outside those tiles, gathered kBlockN at a time into packed tiles (kGathered), so a
// few scattered columns cost a packed tile rather than one tile each.
//
// Diagonal d covers keys [pmin - d, pmax - d] of a query tile, so key tile t is a band
// tile iff some diagonal lies in t's window of offsets [pmin - t * kBlockN - (kBlockN - 1),
// pmax - t * kBlockN]. Every look-up is a search of the sorted lists (no scan proportional
// to their length), and the whole of warp 0 of the producer walks together: the searches
// and bitmaps use its 32 lanes, so thousands of diagonals or columns (a streaming window, a
// near-dense list) cost a few dependent loads per key tile.
template <int kBlockN>
struct LineWalk {
  static constexpr bool kGathers = true;  // and warp 0 of the producer walks together
  const int32_t* columns;
  const int32_t* diagonals;
  int col;  // band phase: no column below it is in a later tile; gather phase: next to place
  int col_begin, col_end;
  int diag_begin;
  int diag_limit;  // one past the last diagonal <= pmax (larger ones reach no key)
  int diag_top;    // band phase: one past the last diagonal that may reach a later tile
  int top_value;   // diagonals[diag_top - 1] (when diag_top > diag_begin)
  int pmin, pmax;
  int next_tile;  // band phase: smallest tile not yet produced
  int lane;
  bool gathering;

  __device__ __forceinline__ void Init(const KernelArgs& a, const QueryTile& q, int*) {
    const int lh = ListHead(a, a.line_heads, q.head);
    lane = threadIdx.x % 32;
    columns = a.columns;
    col_begin = col = a.column_offsets[lh];
    col_end = a.column_offsets[lh + 1];
    diagonals = a.diagonals;
    diag_begin = a.diagonal_offsets[lh];
    pmin = q.pmin;
    pmax = q.pmax;
    diag_limit =
        WarpLastAtMost(diagonals, diag_begin, a.diagonal_offsets[lh + 1], pmax, lane, &top_value) +
        1;
    diag_top = diag_limit;
    next_tile = 0;
    gathering = false;
  }

  // Warp-collective; lane 0 writes the scalar fields of `info`.
  __device__ __forceinline__ bool Next(TileInfo* info) {
    if (!gathering) {
      const int tile = NextBandTile(next_tile);
      if (tile != INT_MAX) {
        next_tile = tile + 1;
        BandTile(tile, diag_top - 1, info);
        return true;
      }
      gathering = true;
      col = col_begin;
    }
    return Gather(info);
  }

  // The smallest band tile >= `from` (INT_MAX if none); `from` must not decrease between
  // calls. The largest diagonal whose band reaches `from` or later starts the lowest band;
  // it becomes diag_top - 1. The offsets are distinct, so it is at most d - x entries
  // below the previous one (d its offset, x the bound): exactly there when the offsets
  // run consecutively (a streaming window), which one load checks first; otherwise a
  // search of those d - x entries.
  __device__ __forceinline__ int NextBandTile(int from) {
    if (diag_top <= diag_begin) return INT_MAX;
    const int x = pmax - from * kBlockN;
    int i = diag_top - 1, d = top_value;
    if (d > x) {
      const int guess = i - (d - x);
      if (guess >= diag_begin && diagonals[guess] == x) {
        i = guess;
        d = x;
      } else {
        i = WarpLastAtMost(diagonals, max(guess, diag_begin), i, x, lane, &d);
      }
    }
    diag_top = i + 1;
    top_value = d;
    if (i < diag_begin) return INT_MAX;
    return max(max(pmin - d, 0) / kBlockN, from);
  }

  // Band tile `tile` whose last diagonal is index `hi`: the diagonal NextBandTile found is
  // in the tile's window, and any larger one <= pmax - from * kBlockN would have a band
  // tile in [from, tile).
  __device__ __forceinline__ void BandTile(int tile, int hi, TileInfo* info) {
    const int key0 = tile * kBlockN;
    // Offsets any pair of the tile can have: [pmin - (key0 + kBlockN - 1), pmax - key0].
    const int diag_lo = pmin - (key0 + kBlockN - 1);
    const int valid_lo = max(diag_lo, 0), valid_hi = pmax - key0;
    if (lane == 0) {
      info->tile = tile;
      info->diag_lo = diag_lo;
    }
    // The diagonals are sorted and distinct, so indices [hi - n, hi] (n = valid_hi -
    // valid_lo) hold offsets <= valid_lo, equal only if all of [valid_lo, valid_hi] are
    // listed: then the tile is full with no bitmaps (most band tiles of a dense band or of
    // a near-dense list), at one load.
    const int first = hi - (valid_hi - valid_lo);
    if (first >= diag_begin && diagonals[first] == valid_lo) {
      if (lane == 0) info->kind = kFullTile;
      return;
    }
    // The tile's diagonals: indices [lo, hi], lo after `first`.
    const int lo_from = first >= diag_begin ? first + 1 : diag_begin;
    const int lo = WarpLastAtMost(diagonals, lo_from, hi + 1, valid_lo - 1, lane) + 1;
    // The tile's columns: indices [c0, c1).
    const int c0 = WarpLastAtMost(columns, col, col_end, key0 - 1, lane) + 1;
    // At most kBlockN distinct columns in the tile.
    const int c1 =
        WarpLastAtMost(columns, c0, min(col_end, c0 + kBlockN), key0 + kBlockN - 1, lane) + 1;
    col = c1;
    if (c1 - c0 == kBlockN) {
      if (lane == 0) info->kind = kFullTile;
      return;
    }
    // The entries 4 chunks of 32 at a time (independent loads, one wait), then one
    // reduction per word they touch.
    uint32_t cols = 0;  // lane w < kBlockN / 32: word w
    OrChunks<kBlockN / 32>(columns, c0, c1 - 1, key0, &cols);
    uint32_t diags = 0;  // lane w < 8: word w
    for (int base = lo; base <= hi; base += 128) OrChunks<4>(diagonals, base, hi, diag_lo, &diags);
    if (lane < 4) info->cols[lane] = cols;
    if (lane < 8) info->diags[lane] = diags;
    if (lane == 0) info->kind = kLineMask;
  }

  // ORs bits list[i] - zero for i in [first, min(last, first + 32 * kChunks - 1)] into
  // lane w's word w (warp-collective).
  template <int kChunks>
  __device__ __forceinline__ void OrChunks(const int32_t* list, int first, int last, int zero,
                                           uint32_t* word) const {
    int bits[kChunks];
#pragma unroll
    for (int k = 0; k < kChunks; ++k) {
      const int i = first + 32 * k + lane;
      bits[k] = i <= last ? list[i] - zero : -1;
    }
#pragma unroll
    for (int k = 0; k < kChunks; ++k) {
      const int base = first + 32 * k;
      if (base <= last) WarpOrBits(bits[k], min(last - base, 31), lane, word);
    }
  }

  // Whether key tile `tile` is a band tile (one thread).
  __device__ __forceinline__ bool IsBandTile(int tile) const {
    const int i = LastAtMost(diagonals, diag_begin, diag_limit, pmax - tile * kBlockN);
    return i >= diag_begin && max(pmin - diagonals[i], 0) / kBlockN <= tile;
  }

  // Up to kBlockN columns <= pmax outside the band tiles, in info->gathered, ascending:
  // 32 columns at a time, one per lane, packed in order with a ballot.
  __device__ __forceinline__ bool Gather(TileInfo* info) {
    int count = 0;
    while (col < col_end && count < kBlockN) {
      const int i = col + lane;
      const int c = i < col_end ? columns[i] : INT_MAX;
      const bool take = c <= pmax && !IsBandTile(c / kBlockN);
      const uint32_t past = __ballot_sync(0xffffffffu, i < col_end && c > pmax);
      const uint32_t takes = __ballot_sync(0xffffffffu, take);
      const int slot = count + __popc(takes & ((1u << lane) - 1));
      const bool put = take && slot < kBlockN;
      if (put) info->gathered[slot] = c;
      const uint32_t puts = __ballot_sync(0xffffffffu, put);
      count += __popc(puts);
      if (puts != takes) {  // the tile is full: resume after the last column placed
        col += 32 - __clz(puts);
        break;
      }
      col = past != 0 ? col_end : col + 32;
    }
    if (count == 0) return false;
    if (lane == 0) {
      info->tile = 0;
      info->kind = kGathered;
      info->count = count;
    }
    return true;
  }
};

}  // namespace sf::cuda::prefill_internal

#endif  // SF_KERNELS_CUDA_ATTENTION_PREFILL_WALK_CUH_
