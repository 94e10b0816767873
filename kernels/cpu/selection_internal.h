// Internal to kernels/cpu: the selection shapes the methods build, and helpers they
// share (top-k with forced entries, exact causal softmax rows).
#ifndef SF_KERNELS_CPU_SELECTION_INTERNAL_H_
#define SF_KERNELS_CPU_SELECTION_INTERNAL_H_

#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
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

// InvalidArgument: parameter `param` of `method` is `value`, larger than `what` (`limit`).
absl::Status TooLarge(absl::string_view method, absl::string_view param, int64_t value,
                      int64_t limit, absl::string_view what);

// Mean of rows [begin, end) of head h of t, in double.
std::vector<double> MeanRows(const TensorView& t, int64_t h, int64_t begin, int64_t end);
double DotD(const std::vector<double>& a, const std::vector<double>& b);
// Pooled key blocks per KV head: [Hkv][nb] mean vectors.
std::vector<std::vector<std::vector<double>>> PoolKeys(const TensorView& k, int64_t block);
// Query rows of the input that fall into the query block qb (by position): [begin, end).
std::pair<int64_t, int64_t> QueryRowsOfBlock(const AttentionInput& in, int64_t block, int64_t qb);
// Column mass and diagonal mass of the last `last_q` query rows of head h (causal
// softmax rows, summed), over keys [0, Lk) and offsets [0, Lk).
void ColumnAndDiagonalMass(const AttentionInput& in, int64_t h, int64_t last_q,
                           std::vector<double>* columns, std::vector<double>* diagonals);
// TopKIndices with the first `forced_prefix` entries forced.
std::vector<int64_t> ForcedTopK(const std::vector<double>& score, int64_t forced_prefix, int64_t k);

// A selection made of one HeadPattern per query head.
inline SelectionResult PatternResult(std::vector<HeadPattern> heads, int64_t q_offset,
                                     double estimation_flops) {
  return SelectionResult{std::make_shared<PatternSelection>(std::move(heads), q_offset),
                         estimation_flops};
}

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
