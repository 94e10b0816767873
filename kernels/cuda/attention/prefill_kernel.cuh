// The prefill main loop shared by the dense and sparse variants (FlashAttention-3's
// design): a producer warpgroup whose one thread issues TMA loads of Q and of K/V tiles
// into a ring of shared-memory stages completing on mbarriers, and two consumer
// warpgroups (64 query rows each) that compute S = Q K^T and O += P V with wgmma, the
// online softmax in registers between them. Included only by the per-variant .cu files.
#ifndef SF_KERNELS_CUDA_ATTENTION_PREFILL_KERNEL_CUH_
#define SF_KERNELS_CUDA_ATTENTION_PREFILL_KERNEL_CUH_

#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/attention/hopper_ptx.cuh"
#include "kernels/cuda/attention/prefill_launch.h"
#include "kernels/cuda/attention/prefill_walk.cuh"

namespace sf::cuda::prefill_internal {

// Tile sizes per head dim, in one place. kBlockM query rows per tile (two consumer
// warpgroups of 64), kBlockN keys per K/V stage.
template <int kHeadDim>
struct TileConfig;
template <>
struct TileConfig<64> {
  static constexpr int kBlockN = 128;
  static constexpr int kStages = 3;
};
template <>
struct TileConfig<128> {
  static constexpr int kBlockN = 128;
  // Three stages fill the shared memory (226.9 of 227 KB): the producer can hold the next
  // query tile's first K/V while the current tile's last two are in use.
  static constexpr int kStages = 3;
};
template <>
struct TileConfig<256> {
  static constexpr int kBlockN = 64;
  static constexpr int kStages = 2;
};

inline constexpr int kBlockM = kQueryRows;
inline constexpr int kConsumerWarpgroups = 2;
inline constexpr int kThreads = 128 * (1 + kConsumerWarpgroups);
inline constexpr int kSwizzleBytes = 128;  // one 64-column bf16 chunk per swizzled row
// setmaxnreg budgets (128 x producer + 256 x consumer <= 64K registers): a producer that
// only issues TMA copies needs few; one that also gathers rows needs more.
template <bool kGathers>
struct RegisterSplit {
  static constexpr int kProducer = kGathers ? 56 : 24;
  static constexpr int kConsumer = kGathers ? 224 : 240;
};

template <int kHeadDim>
struct SmemLayout {
  static constexpr int kBlockN = TileConfig<kHeadDim>::kBlockN;
  static constexpr int kStages = TileConfig<kHeadDim>::kStages;
  static constexpr int kChunks = kHeadDim / 64;
  static constexpr int kQChunkBytes = kBlockM * kSwizzleBytes;
  static constexpr int kKvChunkBytes = kBlockN * kSwizzleBytes;
  static constexpr int kQBytes = kChunks * kQChunkBytes;
  static constexpr int kKvStageBytes = kChunks * kKvChunkBytes;
  static constexpr int kKOffset = kQBytes;
  static constexpr int kVOffset = kKOffset + kStages * kKvStageBytes;
  static constexpr int kBarrierOffset = kVOffset + kStages * kKvStageBytes;
  // q_full, q_empty, then per stage k_full, v_full, k_empty, v_empty.
  static constexpr int kBarriers = 2 + 4 * kStages;
  static constexpr int kInfoOffset = (kBarrierOffset + 8 * kBarriers + 63) / 64 * 64;
  static constexpr int kScratchOffset = kInfoOffset + kStages * sizeof(TileInfo);
  // The query tile whose Q the buffer holds (-1: no more), after the walk's 16 cursors.
  static constexpr int kQueryIndexOffset = kScratchOffset + 16 * sizeof(int);
  // +1024: the dynamic buffer is aligned up to 1024 bytes for the 128-byte swizzle.
  static constexpr int kBytes = kQueryIndexOffset + 4 * sizeof(int) + 1024;
  static_assert(kBytes <= 227 * 1024, "over sm_90's 227 KB of shared memory per block");
};

// One consumer warpgroup's state for its 64 query rows: the O accumulator, running row
// max and sum (two rows per thread), and the wgmma steps, split into issue and wait so the
// main loop can overlap them.
template <int kHeadDim>
struct Consumer {
  static constexpr int kBlockN = TileConfig<kHeadDim>::kBlockN;
  using L = SmemLayout<kHeadDim>;
  using Scores = float[kBlockN / 2];
  using Probs = uint32_t[kBlockN / 16][4];

  float o[kHeadDim / 2];
  float row_max[2];
  float row_sum[2];

  __device__ __forceinline__ void Reset() {
#pragma unroll
    for (int i = 0; i < kHeadDim / 2; ++i) o[i] = 0.f;
    row_max[0] = row_max[1] = -INFINITY;
    row_sum[0] = row_sum[1] = 0.f;
  }

  // Issues S = Q K^T over the head dim, in 16-wide steps of the 64-column swizzled chunks.
  static __device__ __forceinline__ void IssueScores(Scores& s, uint32_t q_addr, uint32_t k_addr) {
    hopper::WgmmaFence();
#pragma unroll
    for (int step = 0; step < kHeadDim / 16; ++step) {
      const int chunk = step / 4, within = (step % 4) * 32;
      const uint64_t da = hopper::MakeSmemDesc(q_addr + chunk * L::kQChunkBytes + within, 16, 1024);
      const uint64_t db =
          hopper::MakeSmemDesc(k_addr + chunk * L::kKvChunkBytes + within, 16, 1024);
      hopper::WgmmaSS(s, da, db, step > 0 ? 1 : 0);
    }
    hopper::WgmmaCommit();
  }

  // Masks keys after each row's position.
  static __device__ __forceinline__ void MaskCausal(Scores& s, int key0, int row_pos_lo, int lane) {
#pragma unroll
    for (int i = 0; i < kBlockN / 2; ++i) {
      const int key = key0 + 8 * (i / 4) + 2 * (lane % 4) + (i % 2);
      const int pos = row_pos_lo + 8 * ((i / 2) % 2);
      if (key > pos) s[i] = -INFINITY;
    }
  }

  // Applies a sparse tile's mask (and the causal one) to the scores. `row_in_tile`: the
  // thread's first row within the 128-row query tile.
  static __device__ __forceinline__ void MaskSparse(Scores& s, const TileInfo* info, int key0,
                                                    int row_pos_lo, int row_in_tile, int lane,
                                                    int block_shift) {
    if (info->kind == kBlockMask) {
      const uint64_t mask = info->cols[0] | static_cast<uint64_t>(info->cols[1]) << 32;
      const int per_row = kBlockN >> block_shift;
#pragma unroll
      for (int i = 0; i < kBlockN / 2; ++i) {
        const int key_in = 8 * (i / 4) + 2 * (lane % 4) + (i % 2);
        const int r = row_in_tile + 8 * ((i / 2) % 2);
        const int bit = (r >> block_shift) * per_row + (key_in >> block_shift);
        const bool keep = ((mask >> bit) & 1) && key0 + key_in <= row_pos_lo + 8 * ((i / 2) % 2);
        if (!keep) s[i] = -INFINITY;
      }
    } else if (info->kind == kGathered) {
      const int count = info->count;
#pragma unroll
      for (int i = 0; i < kBlockN / 2; ++i) {
        const int slot = 8 * (i / 4) + 2 * (lane % 4) + (i % 2);
        const int key = slot < count ? info->gathered[slot] : INT_MAX;
        if (key > row_pos_lo + 8 * ((i / 2) % 2)) s[i] = -INFINITY;
      }
    } else {
      MaskLines(s, info, key0, row_pos_lo, lane);
    }
  }

  // The kLineMask case of MaskSparse. Element i of the thread's scores is key key0 + 2q +
  // m, m = 8 (i / 4) + i % 2 (q = lane % 4), in row r = (i / 2) % 2 at position
  // row_pos_lo + 8r: its column bit is bit m % 32 of cols[i / 16] >> 2q, and its offset
  // p - k - diag_lo is top_r - m (top_r = row_pos_lo + 8r - key0 - diag_lo - 2q), so the
  // diagonal bits of a row's offsets [top_r - kSpan, top_r] are funnel-shifted once into
  // registers and every element tests a bit at a constant position.
  static __device__ __forceinline__ void MaskLines(Scores& s, const TileInfo* info, int key0,
                                                   int row_pos_lo, int lane) {
    constexpr int kSpan = kBlockN - 7;  // the largest m
    constexpr int kWindowWords = (kSpan + 32) / 32;
    const int q = lane % 4;
    uint32_t cols[kBlockN / 32];
#pragma unroll
    for (int w = 0; w < kBlockN / 32; ++w) cols[w] = info->cols[w] >> (2 * q);
    uint32_t window[2][kWindowWords];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      // >= 0: a row of the tile is at or after pmin, and diag_lo = pmin - (key0 + kBlockN - 1).
      const int lo = row_pos_lo + 8 * r - key0 - info->diag_lo - 2 * q - kSpan;
      const int a = lo >> 5, shift = lo & 31;
#pragma unroll
      for (int k = 0; k < kWindowWords; ++k) {
        // Rows past the call's last query may reach past the 8 words; they are not stored.
        const uint32_t low = a + k < 8 ? info->diags[a + k] : 0u;
        const uint32_t high = a + k + 1 < 8 ? info->diags[a + k + 1] : 0u;
        window[r][k] = __funnelshift_r(low, high, shift);
      }
    }
    const int col_limit = row_pos_lo - key0 - 2 * q;  // causal: m <= col_limit + 8r
#pragma unroll
    for (int i = 0; i < kBlockN / 2; ++i) {
      const int r = (i / 2) % 2, m = 8 * (i / 4) + (i % 2);
      const bool col = ((cols[i / 16] >> (m & 31)) & 1) && m <= col_limit + 8 * r;
      // Diagonal offsets are >= 0, so a listed diagonal is causal by itself.
      const int b = kSpan - m;
      const bool diag = (window[r][b >> 5] >> (b & 31)) & 1;
      if (!(col || diag)) s[i] = -INFINITY;
    }
  }

  // Online softmax over one tile: updates the running max and sum, turns s into exp2 terms
  // and returns in alpha the factor O must be scaled by before this tile's P V is added.
  __device__ __forceinline__ void Softmax(Scores& s, float scale_log2, float (&alpha)[2]) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float mx = row_max[r];
#pragma unroll
      for (int i = 0; i < kBlockN / 2; ++i)
        if ((i / 2) % 2 == r) mx = fmaxf(mx, s[i]);
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      // A row that has seen only masked keys keeps max -inf; subtract 0 then (exp2(-inf) = 0).
      const float base = mx == -INFINITY ? 0.f : mx * scale_log2;
      alpha[r] = exp2f(row_max[r] * scale_log2 - base);
      row_max[r] = mx;
      float sum = row_sum[r] * alpha[r];
#pragma unroll
      for (int i = 0; i < kBlockN / 2; ++i) {
        if ((i / 2) % 2 == r) {
          s[i] = exp2f(fmaf(s[i], scale_log2, -base));
          sum += s[i];
        }
      }
      row_sum[r] = sum;
    }
  }

  __device__ __forceinline__ void RescaleO(const float (&alpha)[2]) {
#pragma unroll
    for (int i = 0; i < kHeadDim / 2; ++i) o[i] *= alpha[(i / 2) % 2];
  }

  // P as bf16 A fragments: the k16 slice kk of the scores is accumulator chunks 2kk, 2kk+1.
  static __device__ __forceinline__ void ToProbs(const Scores& s, Probs& p) {
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        __nv_bfloat162 pair = __floats2bfloat162_rn(s[8 * kk + 2 * j], s[8 * kk + 2 * j + 1]);
        p[kk][j] = *reinterpret_cast<uint32_t*>(&pair);
      }
    }
  }

  // Issues O += P V: P from registers, V N-major in shared memory.
  __device__ __forceinline__ void IssueValues(const Probs& p, uint32_t v_addr) {
    hopper::WgmmaFence();
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
      const uint64_t db =
          hopper::MakeSmemDesc(v_addr + kk * 16 * kSwizzleBytes, L::kKvChunkBytes, 1024);
      hopper::WgmmaRS(o, p[kk], db);
    }
    hopper::WgmmaCommit();
  }

  // Normalises and writes this thread's rows (bf16) and their log-sum-exp.
  __device__ __forceinline__ void Store(const KernelArgs& a, int head, int row_lo, int lane,
                                        float softmax_scale) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float sum = row_sum[r];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      const int row = row_lo + 8 * r;
      if (row >= a.num_queries) continue;
      const float inv = sum > 0.f ? 1.f / sum : 0.f;
      __nv_bfloat16* out = a.out + row * a.out_row_stride + head * a.out_head_stride;
#pragma unroll
      for (int i = 0; i < kHeadDim / 2; i += 4) {
        const int col = 8 * (i / 4) + 2 * (lane % 4);
        const int idx = i + 2 * r;
        *reinterpret_cast<__nv_bfloat162*>(out + col) =
            __floats2bfloat162_rn(o[idx] * inv, o[idx + 1] * inv);
      }
      if (a.lse != nullptr && lane % 4 == 0) {
        a.lse[static_cast<int64_t>(head) * a.num_queries + row] =
            sum > 0.f ? row_max[r] * softmax_scale + logf(sum) : -INFINITY;
      }
    }
  }
};

// The shared-memory ring of K/V stages and its barriers. Stage uses are numbered across
// every query tile a CTA processes (`use`); use u sits in stage u % kStages and completes
// phase (u / kStages) of each of that stage's four barriers: the end-of-walk marker too,
// which the producer publishes with plain arrivals on k_full and v_full (after the stage's
// previous V is released, so that its v_full phase is complete) and the consumers release
// on k_empty and v_empty. Were one use to skip a barrier, that barrier's parity would run
// one phase behind from then on and its waits would return a use early.
template <int kHeadDim>
struct Ring {
  using L = SmemLayout<kHeadDim>;
  uint8_t* smem;
  uint64_t* q_full;
  uint64_t* q_empty;
  uint64_t* k_full;
  uint64_t* v_full;
  uint64_t* k_empty;
  uint64_t* v_empty;
  TileInfo* info;    // [kStages], written by the producer before it arrives on k_full
  int* query_index;  // the query tile in the Q buffer, written before q_full's arrival
  __device__ __forceinline__ uint32_t K(int stage) const {
    return hopper::SmemAddr(smem + L::kKOffset + stage * L::kKvStageBytes);
  }
  __device__ __forceinline__ uint32_t V(int stage) const {
    return hopper::SmemAddr(smem + L::kVOffset + stage * L::kKvStageBytes);
  }
  static __device__ __forceinline__ int Stage(uint32_t use) { return use % L::kStages; }
  static __device__ __forceinline__ uint32_t Parity(uint32_t use) { return (use / L::kStages) & 1; }
  // The parity to wait on k_empty / v_empty before use `use` refills its stage.
  static __device__ __forceinline__ uint32_t ReuseParity(uint32_t use) {
    return ((use / L::kStages) + 1) & 1;
  }
};

// Where a consumer thread's rows sit.
struct RowPlace {
  int lane;
  int row_in_tile;   // first of the thread's rows within the 128-row query tile
  int row_lo;        // first of the thread's two rows (the other is row_lo + 8), in the call
  int pos_lo;        // its position
  int wg_first_pos;  // position of the warpgroup's first row
};

// Named barriers 1 and 2 order the two consumer warpgroups' wgmma issue (0 is
// __syncthreads).
inline constexpr uint32_t kSchedulerBarrier0 = 1;
// Named barrier 3: the producer warpgroup's threads when they gather rows together.
inline constexpr uint32_t kProducerBarrier = 3;

// One arrival per consumer warp, after the warp's reads of the stage are done.
__device__ __forceinline__ void ReleaseByWarp(uint64_t* bar, int lane) {
  __syncwarp();
  if (lane == 0) hopper::MbarArrive(bar);
}

// Whether stage use `next_use` is already published and is the end-of-walk marker, looked
// up by lane 0 without waiting; the warp agrees on the answer. Lets the consumers release
// Q as soon as the last scores are done, so the next query tile's Q loads during the
// last softmax, P V and the epilogue.
template <int kHeadDim>
__device__ __forceinline__ bool NextIsEnd(const Ring<kHeadDim>& ring, uint32_t next_use, int lane) {
  using R = Ring<kHeadDim>;
  int end = 0;
  if (lane == 0) {
    const int s = R::Stage(next_use);
    end = hopper::MbarTestWait(&ring.k_full[s], R::Parity(next_use)) && ring.info[s].tile < 0;
  }
  return __shfl_sync(0xffffffffu, end, 0) != 0;
}

// Whether key tile `tile` (stage use `use`) is a query tile's last, so that Q can be
// released: the dense walk ends at key tile 0, known without the peek at the next stage
// (a barrier test, a shared load and a shuffle on every tile's path to its softmax) that
// the other walks need to find the end marker.
template <int kHeadDim, WalkMode kMode>
__device__ __forceinline__ bool IsLastTile(const Ring<kHeadDim>& ring, int tile, uint32_t use,
                                           int lane) {
  if constexpr (kMode == WalkMode::kDense) {
    return tile == 0;
  } else {
    return NextIsEnd(ring, use + 1, lane);
  }
}

// Masks a tile's scores as its TileInfo says: the causal mask only where the tile reaches
// past the warpgroup's first position, sparse masks only on partial tiles. The dense walk
// hands out full tiles only, so its consumers carry no sparse-mask code (with it, ptxas
// spills in the overlapped loop, where scores, probabilities and O are all live).
template <int kHeadDim, WalkMode kMode>
__device__ __forceinline__ void MaskTile(typename Consumer<kHeadDim>::Scores& sc,
                                         const TileInfo* info, int tile, const RowPlace& at,
                                         int block_shift) {
  constexpr int kBlockN = TileConfig<kHeadDim>::kBlockN;
  const int key0 = tile * kBlockN;
  if (kMode != WalkMode::kDense && info->kind != kFullTile) {
    Consumer<kHeadDim>::MaskSparse(sc, info, key0, at.pos_lo, at.row_in_tile, at.lane, block_shift);
  } else if (key0 + kBlockN - 1 > at.wg_first_pos) {
    Consumer<kHeadDim>::MaskCausal(sc, key0, at.pos_lo, at.lane);
  }
}

// The straightforward order: scores, softmax, P V, each waited for before the next.
// Returns the next stage use.
template <int kHeadDim, WalkMode kMode>
__device__ __forceinline__ uint32_t ConsumeSerial(Consumer<kHeadDim>& c, const Ring<kHeadDim>& ring,
                                                  uint32_t use, uint32_t q_addr, const RowPlace& at,
                                                  const KernelArgs& args) {
  using R = Ring<kHeadDim>;
  for (;; ++use) {
    const int s = R::Stage(use);
    typename Consumer<kHeadDim>::Scores sc;
    typename Consumer<kHeadDim>::Probs pr;
    float alpha[2];
    hopper::MbarWait(&ring.k_full[s], R::Parity(use));
    const TileInfo* info = ring.info + s;
    const int tile = info->tile;
    if (tile < 0) {
      ReleaseByWarp(ring.q_empty, at.lane);
      ReleaseByWarp(&ring.k_empty[s], at.lane);
      ReleaseByWarp(&ring.v_empty[s], at.lane);
      return use + 1;
    }
    Consumer<kHeadDim>::IssueScores(sc, q_addr, ring.K(s));
    hopper::WgmmaWait<0>();
    hopper::FenceRegisters(sc);
    MaskTile<kHeadDim, kMode>(sc, info, tile, at, args.block_shift);
    ReleaseByWarp(&ring.k_empty[s], at.lane);
    c.Softmax(sc, args.scale_log2, alpha);
    c.RescaleO(alpha);
    Consumer<kHeadDim>::ToProbs(sc, pr);
    hopper::MbarWait(&ring.v_full[s], R::Parity(use));
    c.IssueValues(pr, ring.V(s));
    hopper::WgmmaWait<0>();
    hopper::FenceRegisters(c.o);
    ReleaseByWarp(&ring.v_empty[s], at.lane);
  }
}

// FlashAttention-3's order: the scores of tile i+1 and P V of tile i are in flight while
// the softmax of tile i+1 runs (intra-warpgroup overlap), and the two warpgroups take
// turns issuing their GEMMs (named barriers), so one's softmax overlaps the other's GEMMs.
// Both warpgroups read the same walk, so they take the same number of turns. Returns the
// next stage use.
template <int kHeadDim, WalkMode kMode>
__device__ __forceinline__ uint32_t ConsumeOverlapped(Consumer<kHeadDim>& c,
                                                      const Ring<kHeadDim>& ring, uint32_t use,
                                                      uint32_t q_addr, const RowPlace& at, int wg,
                                                      const KernelArgs& args) {
  using C = Consumer<kHeadDim>;
  using R = Ring<kHeadDim>;
  int s = R::Stage(use);
  hopper::MbarWait(&ring.k_full[s], R::Parity(use));
  int tile = ring.info[s].tile;
  if (tile < 0) {  // nothing to visit
    ReleaseByWarp(ring.q_empty, at.lane);
    ReleaseByWarp(&ring.k_empty[s], at.lane);
    ReleaseByWarp(&ring.v_empty[s], at.lane);
    return use + 1;
  }
  const uint32_t my_turn = kSchedulerBarrier0 + wg;
  const uint32_t their_turn = kSchedulerBarrier0 + (1 - wg);
  constexpr uint32_t kBoth = 256;
  // Warpgroup 0 issues first.
  if (wg == 1) hopper::NamedBarrierArrive(their_turn, kBoth);
  typename C::Scores sc;
  typename C::Probs pr;
  float alpha[2];

  hopper::NamedBarrierSync(my_turn, kBoth);
  C::IssueScores(sc, q_addr, ring.K(s));
  hopper::NamedBarrierArrive(their_turn, kBoth);
  hopper::WgmmaWait<0>();
  hopper::FenceRegisters(sc);
  bool q_released = IsLastTile<kHeadDim, kMode>(ring, tile, use, at.lane);
  if (q_released) ReleaseByWarp(ring.q_empty, at.lane);
  MaskTile<kHeadDim, kMode>(sc, ring.info + s, tile, at, args.block_shift);
  ReleaseByWarp(&ring.k_empty[s], at.lane);
  c.Softmax(sc, args.scale_log2, alpha);
  C::ToProbs(sc, pr);

  int prev = s;
  uint32_t prev_use = use;
  for (++use;; ++use) {
    s = R::Stage(use);
    hopper::MbarWait(&ring.k_full[s], R::Parity(use));
    const TileInfo* info = ring.info + s;
    tile = info->tile;
    if (tile < 0) break;
    hopper::NamedBarrierSync(my_turn, kBoth);
    C::IssueScores(sc, q_addr, ring.K(s));
    c.RescaleO(alpha);
    hopper::MbarWait(&ring.v_full[prev], R::Parity(prev_use));
    c.IssueValues(pr, ring.V(prev));
    hopper::NamedBarrierArrive(their_turn, kBoth);
    hopper::WgmmaWait<1>();  // the scores; P V may still run
    hopper::FenceRegisters(sc);
    if (!q_released && IsLastTile<kHeadDim, kMode>(ring, tile, use, at.lane)) {
      ReleaseByWarp(ring.q_empty, at.lane);
      q_released = true;
    }
    MaskTile<kHeadDim, kMode>(sc, info, tile, at, args.block_shift);
    ReleaseByWarp(&ring.k_empty[s], at.lane);
    c.Softmax(sc, args.scale_log2, alpha);
    hopper::WgmmaWait<0>();
    hopper::FenceRegisters(c.o);
    ReleaseByWarp(&ring.v_empty[prev], at.lane);
    C::ToProbs(sc, pr);
    prev = s;
    prev_use = use;
  }
  // `use` is the end marker: Q is no longer read, and the marker's stage is done with.
  if (!q_released) ReleaseByWarp(ring.q_empty, at.lane);
  ReleaseByWarp(&ring.k_empty[s], at.lane);
  ReleaseByWarp(&ring.v_empty[s], at.lane);

  hopper::NamedBarrierSync(my_turn, kBoth);
  c.RescaleO(alpha);
  hopper::MbarWait(&ring.v_full[prev], R::Parity(prev_use));
  c.IssueValues(pr, ring.V(prev));
  // Warpgroup 1 started with one extra arrival; its last one would have no partner.
  if (wg == 0) hopper::NamedBarrierArrive(their_turn, kBoth);
  hopper::WgmmaWait<0>();
  hopper::FenceRegisters(c.o);
  ReleaseByWarp(&ring.v_empty[prev], at.lane);
  return use + 1;
}

// The CTA's next query tile: blockIdx.x first, then blockIdx.x + gridDim.x, ... or, with a
// tile counter, whichever tile no CTA has taken yet (tiles of uneven work then balance
// across CTAs: each takes the next when its producer is free).
__device__ __forceinline__ int NextQueryTile(const KernelArgs& args, int index, int count) {
  if (count == 0) return blockIdx.x;
  if (args.tile_counter == nullptr) return index + gridDim.x;
  return gridDim.x + atomicAdd(args.tile_counter, 1);
}

// Publishes the CTA's query tile number `count` (`index`, or -1 past the last tile) in the
// Q buffer once the consumers have released the previous one, and loads its Q.
template <int kHeadDim>
__device__ __forceinline__ void PublishQueryTile(const Ring<kHeadDim>& ring,
                                                 const CUtensorMap* q_map, int index,
                                                 const QueryTile& qt, int count) {
  using L = SmemLayout<kHeadDim>;
  if (count > 0) hopper::MbarWait(ring.q_empty, (count - 1) & 1);
  *ring.query_index = index;
  if (index < 0) {
    hopper::MbarArrive(ring.q_full);  // the end: no copy
    return;
  }
  hopper::MbarArriveExpectTx(ring.q_full, L::kQBytes);
  for (int c = 0; c < L::kChunks; ++c) {
    hopper::TmaLoad3d(q_map, ring.q_full, ring.smem + c * L::kQChunkBytes, c * 64, qt.head,
                      qt.m_block * kBlockM);
  }
}

// The producer thread for one query tile: per visited key tile its TileInfo, K and V into
// the next stage; a TileInfo with tile -1 (a plain arrival on k_full) ends the walk.
// Returns the next stage use.
template <int kHeadDim, typename Walk>
__device__ __forceinline__ uint32_t Produce(Walk& walk, const Ring<kHeadDim>& ring, uint32_t use,
                                            const CUtensorMap* k_map, const CUtensorMap* v_map,
                                            int kv_head) {
  using L = SmemLayout<kHeadDim>;
  using R = Ring<kHeadDim>;
  constexpr int kBlockN = L::kBlockN;
  for (;; ++use) {
    const int s = R::Stage(use);
    if (use >= L::kStages) hopper::MbarWait(&ring.k_empty[s], R::ReuseParity(use));
    TileInfo* info = ring.info + s;
    if (!walk.Next(info)) {
      info->tile = -1;
      // v_empty first: once k_full is out, the consumers release the marker itself, and a
      // later wait for the previous use's phase would look one phase too far.
      if (use >= L::kStages) hopper::MbarWait(&ring.v_empty[s], R::ReuseParity(use));
      hopper::MbarArrive(&ring.v_full[s]);
      hopper::MbarArrive(&ring.k_full[s]);
      return use + 1;
    }
    const int n = info->tile;
    uint8_t* k_dst = ring.smem + L::kKOffset + s * L::kKvStageBytes;
    hopper::MbarArriveExpectTx(&ring.k_full[s], L::kKvStageBytes);
    for (int c = 0; c < L::kChunks; ++c) {
      hopper::TmaLoad3d(k_map, &ring.k_full[s], k_dst + c * L::kKvChunkBytes, c * 64, n * kBlockN,
                        kv_head);
    }
    if (use >= L::kStages) hopper::MbarWait(&ring.v_empty[s], R::ReuseParity(use));
    uint8_t* v_dst = ring.smem + L::kVOffset + s * L::kKvStageBytes;
    hopper::MbarArriveExpectTx(&ring.v_full[s], L::kKvStageBytes);
    for (int c = 0; c < L::kChunks; ++c) {
      hopper::TmaLoad3d(v_map, &ring.v_full[s], v_dst + c * L::kKvChunkBytes, c * 64, n * kBlockN,
                        kv_head);
    }
  }
}

// Copies the K and V rows `info->gathered` into a stage in the layout TMA writes (rows of
// 128 bytes per 64-column chunk, 16-byte units swizzled by row % 8), rows past `count` as
// zeros; every producer thread takes its share, waits for its copies and fences them for
// the tensor cores.
template <int kHeadDim>
__device__ __forceinline__ void GatherRows(const KernelArgs& a, const TileInfo* info, int kv_head,
                                           uint8_t* k_dst, uint8_t* v_dst, int tid) {
  using L = SmemLayout<kHeadDim>;
  constexpr int kUnitsPerRow = L::kChunks * 8;
  constexpr int kUnits = L::kBlockN * kUnitsPerRow;
  const int count = info->count;
  const int64_t head_off = static_cast<int64_t>(kv_head) * a.kv_head_stride;
  // The stage was last read by the consumers' wgmma (the async proxy); these are generic
  // writes, ordered after those reads only through a proxy fence.
  hopper::FenceProxyAsyncShared();
  for (int u = tid; u < kUnits; u += 128) {
    const int row = u / kUnitsPerRow, chunk = (u % kUnitsPerRow) / 8, unit = u % 8;
    const uint32_t dst_off =
        chunk * L::kKvChunkBytes + row * kSwizzleBytes + ((unit ^ (row & 7)) << 4);
    const bool valid = row < count;
    const int64_t src_off =
        head_off + (valid ? static_cast<int64_t>(info->gathered[row]) * a.kv_row_stride : 0) +
        chunk * 64 + unit * 8;
    hopper::CpAsync16(k_dst + dst_off, a.k + src_off, valid);
    hopper::CpAsync16(v_dst + dst_off, a.v + src_off, valid);
  }
  hopper::CpAsyncWaitAll();
  hopper::FenceProxyAsyncShared();
}

// The producer for one query tile when the walk may gather rows: the whole producer
// warpgroup loops together; warp 0 walks (its lanes share the searches and bitmaps),
// thread 0 issues the TMA copies, all 128 threads copy gathered rows. Returns the next
// stage use.
template <int kHeadDim, typename Walk>
__device__ __forceinline__ uint32_t ProduceCollective(Walk& walk, const Ring<kHeadDim>& ring,
                                                      uint32_t use, const CUtensorMap* k_map,
                                                      const CUtensorMap* v_map, int kv_head,
                                                      const KernelArgs& args) {
  using L = SmemLayout<kHeadDim>;
  using R = Ring<kHeadDim>;
  constexpr int kBlockN = L::kBlockN;
  const int tid = threadIdx.x;
  for (;; ++use) {
    const int s = R::Stage(use);
    TileInfo* info = ring.info + s;
    if (tid < 32) {
      if (use >= L::kStages) hopper::MbarWait(&ring.k_empty[s], R::ReuseParity(use));
      const bool more = walk.Next(info);
      __syncwarp();  // lane 0's scalar fields, read by the whole warp below
      if (!more && tid == 0) info->tile = -1;
      // The marker and gathered rows complete v_full with a plain arrival below: the
      // stage's previous V must be done with first.
      if ((!more || info->kind == kGathered) && use >= L::kStages) {
        hopper::MbarWait(&ring.v_empty[s], R::ReuseParity(use));
      }
    }
    hopper::NamedBarrierSync(kProducerBarrier, 128);
    const int tile = info->tile;
    const int kind = info->kind;
    uint8_t* k_dst = ring.smem + L::kKOffset + s * L::kKvStageBytes;
    uint8_t* v_dst = ring.smem + L::kVOffset + s * L::kKvStageBytes;
    if (tile < 0) {
      // Everyone has read the marker before thread 0 lets the consumers reuse the stage.
      hopper::NamedBarrierSync(kProducerBarrier, 128);
      if (tid == 0) {
        hopper::MbarArrive(&ring.v_full[s]);
        hopper::MbarArrive(&ring.k_full[s]);
      }
      return use + 1;
    }
    if (kind == kGathered) {
      GatherRows<kHeadDim>(args, info, kv_head, k_dst, v_dst, tid);
      hopper::NamedBarrierSync(kProducerBarrier, 128);
      if (tid == 0) {
        hopper::MbarArrive(&ring.k_full[s]);
        hopper::MbarArrive(&ring.v_full[s]);
      }
      continue;
    }
    if (tid != 0) continue;
    hopper::MbarArriveExpectTx(&ring.k_full[s], L::kKvStageBytes);
    for (int c = 0; c < L::kChunks; ++c) {
      hopper::TmaLoad3d(k_map, &ring.k_full[s], k_dst + c * L::kKvChunkBytes, c * 64,
                        tile * kBlockN, kv_head);
    }
    if (use >= L::kStages) hopper::MbarWait(&ring.v_empty[s], R::ReuseParity(use));
    hopper::MbarArriveExpectTx(&ring.v_full[s], L::kKvStageBytes);
    for (int c = 0; c < L::kChunks; ++c) {
      hopper::TmaLoad3d(v_map, &ring.v_full[s], v_dst + c * L::kKvChunkBytes, c * 64,
                        tile * kBlockN, kv_head);
    }
  }
}

template <int kHeadDim, WalkMode kMode>
struct WalkFor;
template <int kHeadDim>
struct WalkFor<kHeadDim, WalkMode::kDense> {
  using Type = DenseWalk<TileConfig<kHeadDim>::kBlockN>;
};
template <int kHeadDim>
struct WalkFor<kHeadDim, WalkMode::kBlocks> {
  using Type = BlockWalk<TileConfig<kHeadDim>::kBlockN>;
};
template <int kHeadDim>
struct WalkFor<kHeadDim, WalkMode::kLines> {
  using Type = LineWalk<TileConfig<kHeadDim>::kBlockN>;
};

// Query tile `index` in longest-first order: the last query tiles (most keys) of every
// head first; heads of one GQA group next to each other so their K/V reads meet in L2.
__device__ __forceinline__ QueryTile QueryTileAt(const KernelArgs& args, int index, int* kv_head,
                                                 int* pos0) {
  QueryTile qt;
  qt.m_block = args.num_m_blocks - 1 - index / args.num_q_heads;
  qt.head = index % args.num_q_heads;
  *kv_head = qt.head / args.group;
  const int kv_len = args.kv_lengths != nullptr ? args.kv_lengths[*kv_head] : args.max_kv_length;
  *pos0 = kv_len - args.num_queries;  // position of query 0
  qt.pmin = *pos0 + qt.m_block * kBlockM;
  qt.pmax = *pos0 + min(qt.m_block * kBlockM + kBlockM - 1, args.num_queries - 1);
  return qt;
}

// Persistent: each CTA takes query tiles blockIdx.x, + gridDim.x, ... so the producer
// loads the next tile's Q and K/V while the consumers finish the last one.
template <int kHeadDim, WalkMode kMode, bool kOverlap>
__global__ void __launch_bounds__(kThreads, 1)
    PrefillKernel(const __grid_constant__ CUtensorMap q_map,
                  const __grid_constant__ CUtensorMap k_map,
                  const __grid_constant__ CUtensorMap v_map, const KernelArgs args) {
  using L = SmemLayout<kHeadDim>;
  constexpr int kStages = L::kStages;
  extern __shared__ uint8_t smem_raw[];
  uint8_t* smem = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) &
                                             ~static_cast<uintptr_t>(1023));
  uint64_t* bars = reinterpret_cast<uint64_t*>(smem + L::kBarrierOffset);
  Ring<kHeadDim> ring{smem,
                      bars,
                      bars + 1,
                      bars + 2,
                      bars + 2 + kStages,
                      bars + 2 + 2 * kStages,
                      bars + 2 + 3 * kStages,
                      reinterpret_cast<TileInfo*>(smem + L::kInfoOffset),
                      reinterpret_cast<int*>(smem + L::kQueryIndexOffset)};
  const int num_tiles = args.num_m_blocks * args.num_q_heads;
  using Walk = typename WalkFor<kHeadDim, kMode>::Type;

  if (threadIdx.x == 0) {
    hopper::MbarInit(ring.q_full, 1);
    hopper::MbarInit(ring.q_empty, 4 * kConsumerWarpgroups);  // one arrival per consumer warp
    for (int s = 0; s < kStages; ++s) {
      hopper::MbarInit(&ring.k_full[s], 1);
      hopper::MbarInit(&ring.v_full[s], 1);
      hopper::MbarInit(&ring.k_empty[s], 4 * kConsumerWarpgroups);
      hopper::MbarInit(&ring.v_empty[s], 4 * kConsumerWarpgroups);
    }
    hopper::FenceBarrierInit();
  }
  __syncthreads();

  if (threadIdx.x < 128) {
    // Producer warpgroup: thread 0 walks the tiles and issues the copies (when the walk
    // gathers rows, warp 0 walks and all 128 threads copy).
    hopper::SetMaxRegsDec<RegisterSplit<Walk::kGathers>::kProducer>();
    if (!Walk::kGathers && threadIdx.x != 0) return;
    if (threadIdx.x == 0) {
      hopper::PrefetchTensorMap(&q_map);
      hopper::PrefetchTensorMap(&k_map);
      hopper::PrefetchTensorMap(&v_map);
    }
    uint32_t use = 0;
    int index = 0;
    for (int count = 0;; ++count) {
      Walk walk;
      if (threadIdx.x == 0) {
        index = NextQueryTile(args, index, count);
        if (index >= num_tiles) index = -1;
        int kv_head, pos0;
        const QueryTile qt = QueryTileAt(args, max(index, 0), &kv_head, &pos0);
        PublishQueryTile(ring, &q_map, index, qt, count);
        if (!Walk::kGathers && index >= 0) {
          walk.Init(args, qt, reinterpret_cast<int*>(smem + L::kScratchOffset));
        }
      }
      if constexpr (Walk::kGathers) {
        // The warpgroup learns the tile from thread 0; the slot is next written after the
        // barriers of this tile's walk.
        hopper::NamedBarrierSync(kProducerBarrier, 128);
        index = *ring.query_index;
        if (index >= 0 && threadIdx.x < 32) {
          int kv_head, pos0;
          const QueryTile qt = QueryTileAt(args, index, &kv_head, &pos0);
          walk.Init(args, qt, reinterpret_cast<int*>(smem + L::kScratchOffset));
        }
      }
      if (index < 0) break;
      const int kv_head = (index % args.num_q_heads) / args.group;  // as QueryTileAt
      if constexpr (Walk::kGathers) {
        use = ProduceCollective<kHeadDim>(walk, ring, use, &k_map, &v_map, kv_head, args);
      } else {
        use = Produce<kHeadDim>(walk, ring, use, &k_map, &v_map, kv_head);
      }
    }
    return;
  }

  hopper::SetMaxRegsInc<RegisterSplit<Walk::kGathers>::kConsumer>();
  const int wg = threadIdx.x / 128 - 1;
  const int t = threadIdx.x % 128;
  const uint32_t q_addr = hopper::SmemAddr(smem) + 64 * wg * kSwizzleBytes;
  uint32_t use = 0;
  for (int count = 0;; ++count) {
    hopper::MbarWait(ring.q_full, count & 1);
    const int index = *ring.query_index;
    if (index < 0) break;
    int kv_head, pos0;
    const QueryTile qt = QueryTileAt(args, index, &kv_head, &pos0);
    RowPlace at;
    at.lane = t % 32;
    at.row_in_tile = 64 * wg + 16 * (t / 32) + at.lane / 4;
    at.row_lo = qt.m_block * kBlockM + at.row_in_tile;
    at.pos_lo = pos0 + at.row_lo;
    at.wg_first_pos = qt.pmin + 64 * wg;
    Consumer<kHeadDim> c;
    c.Reset();
    if constexpr (kOverlap) {
      use = ConsumeOverlapped<kHeadDim, kMode>(c, ring, use, q_addr, at, wg, args);
    } else {
      use = ConsumeSerial<kHeadDim, kMode>(c, ring, use, q_addr, at, args);
    }
    c.Store(args, qt.head, at.row_lo, at.lane, args.softmax_scale);
  }
}

template <int kHeadDim, WalkMode kMode>
absl::Status LaunchPrefill(const TensorMaps& maps, const KernelArgs& args, bool overlap,
                           cudaStream_t stream) {
  auto* kernel =
      overlap ? &PrefillKernel<kHeadDim, kMode, true> : &PrefillKernel<kHeadDim, kMode, false>;
  constexpr int kSmem = SmemLayout<kHeadDim>::kBytes;
  cudaError_t err =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem);
  if (err != cudaSuccess) {
    return absl::InternalError(absl::StrCat("prefill: raising shared memory to ", kSmem,
                                            " bytes: ", cudaGetErrorString(err)));
  }
  const dim3 grid(std::min(args.num_m_blocks * args.num_q_heads, args.num_sms));
  kernel<<<grid, kThreads, kSmem, stream>>>(maps.q, maps.k, maps.v, args);
  err = cudaGetLastError();
  if (err != cudaSuccess) {
    return absl::InternalError(absl::StrCat("prefill kernel (head_dim ", kHeadDim,
                                            kMode == WalkMode::kDense    ? ""
                                            : kMode == WalkMode::kBlocks ? ", blocks"
                                                                         : ", lines",
                                            ") launch: ", cudaGetErrorString(err)));
  }
  return absl::OkStatus();
}

}  // namespace sf::cuda::prefill_internal

#endif  // SF_KERNELS_CUDA_ATTENTION_PREFILL_KERNEL_CUH_
