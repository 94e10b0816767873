// Internal to kernels/cpu: the selection shapes the methods build, and helpers they
// share (top-k with forced entries, exact causal softmax rows).
#ifndef SF_KERNELS_CPU_SELECTION_INTERNAL_H_
#define SF_KERNELS_CPU_SELECTION_INTERNAL_H_

#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/cpu/attention.h"

namespace sf::kernels::internal {

inline constexpr int64_t kAll = std::numeric_limits<int64_t>::max() / 4;

// The keys one query head may attend to, as a union of simple shapes, each clipped to
// the causal prefix [0, pos] of the query at position pos.
struct HeadPattern {
  int64_t sink = 0;                             // keys [0, sink)
  int64_t window = 0;                           // keys [pos - window + 1, pos]; kAll = every key
  std::vector<int64_t> columns;                 // sorted key positions (vertical lines)
  std::vector<int64_t> offsets;                 // sorted diagonal offsets pos - j (slash lines)
  int64_t block = 0;                            // block size of `blocks`
  std::vector<std::vector<int64_t>> blocks;     // per query block (pos / block): key blocks
  std::vector<int64_t> kept;                    // sorted key positions kept after eviction
  int64_t fresh_from = -1;                      // keys [fresh_from, pos] (decode: generated tokens)
  int64_t page = 0;                             // page size of `row_pages`
  std::vector<std::vector<int64_t>> row_pages;  // per query row: sorted pages
};

class PatternSelection : public Selection {
 public:
  PatternSelection(std::vector<HeadPattern> heads, int64_t q_offset)
      : heads_(std::move(heads)), q_offset_(q_offset) {}
  void Row(int64_t h, int64_t i, std::vector<KeyRange>* out) const override;
  // Pairs chosen for rows [0, rows) of head h: counted in closed form for patterns made
  // only of lines (columns + diagonals) or only of blocks, else row by row. Equal to
  // the sum of the Row() range lengths.
  double Pairs(int64_t h, int64_t rows) const;
  const std::vector<HeadPattern>& heads() const { return heads_; }

 private:
  std::vector<HeadPattern> heads_;  // one per query head
  int64_t q_offset_;
};

// Column and diagonal mass of the last `last_q` query rows of each query head: sums of
// causal softmax rows over keys [0, Lk) and offsets [0, Lk) (vertical_slash, the study's
// flexprefill). Independent of the budget, so calibration computes it once.
struct LineMass {
  int64_t last_q = 0;
  std::vector<std::vector<double>> columns;    // [Hq][Lk]
  std::vector<std::vector<double>> diagonals;  // [Hq][Lk]
};
LineMass ComputeLineMass(const AttentionInput& in, int64_t last_q);
// The same for several last_q at once (each REQUIRES <= q.len), sharing the softmax rows;
// each result equals ComputeLineMass's bit for bit.
std::vector<LineMass> ComputeLineMasses(const AttentionInput& in,
                                        const std::vector<int64_t>& last_qs);

// XAttention's antidiagonal block mass per query head and query block: mass[h][qb][kb].
struct BlockMass {
  int64_t block = 0;
  int64_t stride = 0;
  std::vector<std::vector<std::vector<double>>> mass;
  double flops = 0;  // all heads
};
BlockMass ComputeXAttentionMass(const AttentionInput& in, int64_t block, int64_t stride);

// The selections of the methods from precomputed statistics (the same result as
// PrefillSelect; the statistics must come from the same input and last_q / block,
// stride). Parameter errors as PrefillSelect.
absl::StatusOr<SelectionResult> VerticalSlashFrom(const AttentionInput& in,
                                                  const VerticalSlashParams& p,
                                                  const LineMass& mass);
// REQUIRES !p.original and mass.last_q == min(p.last_q, in.q.len).
absl::StatusOr<SelectionResult> FlexPrefillStudyFrom(const AttentionInput& in,
                                                     const FlexPrefillParams& p,
                                                     const LineMass& mass);
absl::StatusOr<SelectionResult> XAttentionFrom(const AttentionInput& in, const XAttentionParams& p,
                                               const BlockMass& mass);

// SnapKV importance per KV head over the prompt (window- and group-reduced, pooled):
// independent of the capacity. `adaptive` = ada_snapkv's max reduction.
std::vector<std::vector<double>> SnapKvImportance(const SnapKvParams& p, const TensorView& obs,
                                                  const TensorView& keys);
// Both reductions at once from the same softmax rows: {snapkv's, ada_snapkv's}.
std::pair<std::vector<std::vector<double>>, std::vector<std::vector<double>>> SnapKvImportanceBoth(
    int64_t window, int64_t pool, const TensorView& obs, const TensorView& keys);
// The kept tokens from the importance; InvalidArgument for a bad capacity.
absl::StatusOr<KeptTokens> SnapKvFrom(const SnapKvParams& p,
                                      const std::vector<std::vector<double>>& importance,
                                      const TensorView& obs, const TensorView& keys);

// Exact top-k per query by q.k (ties to the lower position), computed when asked.
class OracleSelection : public Selection {
 public:
  OracleSelection(const AttentionInput& input, int64_t top_k) : input_(input), top_k_(top_k) {}
  void Row(int64_t h, int64_t i, std::vector<KeyRange>* out) const override;

 private:
  AttentionInput input_;
  int64_t top_k_;
};

// Indices of the k largest `scores` (entries with forced[i] first, then by score
// descending, ties to the lower index), returned in ascending order. k is clamped to
// scores.size().
std::vector<int64_t> TopKIndices(const std::vector<double>& scores, const std::vector<char>& forced,
                                 int64_t k);

// Number of largest entries whose cumulative sum first exceeds `mass` (the study's
// score_cover_topk: count(cumsum <= mass) + 1), at most x.size().
int64_t CoverCount(std::vector<double> x, double mass);

// softmax(q_row . k_j / sqrt(D)) over keys j in [0, pos], in double, into *p.
void CausalSoftmaxRow(const float* q_row, const TensorView& k, int64_t kv_head, int64_t pos,
                      std::vector<double>* p);

// Dot products and axpy accumulated in double with eight partial sums in a fixed
// order, so that every instruction set (the AVX2 clone or the baseline) rounds alike.
double Dot(const float* a, const float* b, int64_t d);
double Dot(const double* a, const float* b, int64_t d);
// acc[x] += p * v[x]
void Axpy(double p, const float* v, double* acc, int64_t d);

}  // namespace sf::kernels::internal

#endif  // SF_KERNELS_CPU_SELECTION_INTERNAL_H_
