// The CPU reference of every sparse-attention method: one entry point for prefill and
// one for decode, returning the output plus what was computed (the selection, measured
// density, estimation FLOPs). These functions are each method's definition; CUDA
// kernels must match them. Scores, softmax and outputs are accumulated in double.
#ifndef SF_KERNELS_CPU_ATTENTION_H_
#define SF_KERNELS_CPU_ATTENTION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernels/cpu/method_params.h"
#include "kernels/cpu/tensor.h"

namespace sf::kernels {

// Q, K, V of one layer. GQA: query head h reads KV head h / (Hq / Hkv); K/V are never
// copied per query head. Query row i sits at position q_offset + i; it may attend to
// keys 0..q_offset + i (causal). REQUIRES Hq % Hkv == 0, equal dims, k.len == v.len,
// q_offset + q.len <= k.len.
struct AttentionInput {
  TensorView q;  // [Hq, Lq, D]
  TensorView k;  // [Hkv, Lk, D]
  TensorView v;  // [Hkv, Lk, D]
  int64_t q_offset = 0;

  int64_t group() const { return q.heads / k.heads; }
};

// Checks shapes and the causal layout; InvalidArgument naming the field otherwise.
absl::Status ValidateInput(const AttentionInput& input);

// Half-open key range [begin, end).
struct KeyRange {
  int64_t begin;
  int64_t end;
};

// What a method chose: for each query head and query row, the keys it attends to.
// Rows are produced on demand (a 16K x 16K selection does not fit in memory as lists).
// Thread-safe for concurrent Row() calls. A selection may refer to the input it was
// built from (oracle_topk): keep that input's memory alive while using it.
class Selection {
 public:
  virtual ~Selection() = default;
  // Replaces *out with the sorted, disjoint, non-empty ranges of keys chosen for query
  // row `i` (0-based in the call's queries) of query head `h`.
  virtual void Row(int64_t h, int64_t i, std::vector<KeyRange>* out) const = 0;
};

struct AttentionResult {
  Tensor output;  // [Hq, Lq, D]
  std::shared_ptr<const Selection> selection;
  std::vector<double> row_lse;  // [Hq * Lq] log-sum-exp of each row's scores
  double pairs_computed = 0;    // query-key pairs attended, all heads
  double pairs_causal = 0;      // causal pairs of the same rows, all heads
  double estimation_flops = 0;  // cost of choosing the selection, all heads
  // pairs_computed / pairs_causal, and its inverse, the measured compression.
  double density() const { return pairs_causal > 0 ? pairs_computed / pairs_causal : 1.0; }
  double compression() const { return pairs_computed > 0 ? pairs_causal / pairs_computed : 1.0; }
};

// A method's choice without the attention itself (for calibration and for checking
// CUDA selections).
struct SelectionResult {
  std::shared_ptr<const Selection> selection;
  double estimation_flops = 0;
};

// Prefill: every query row of `input` attends to the keys `method` selects (its CPU
// selection, kernels/cpu/cpu_method.h; `params` must come from ParseMethodParams for
// the same method). Methods that run only in decode and invalid parameters (budget
// larger than the sequence, block 0, ...) -> InvalidArgument naming the parameter.
absl::StatusOr<AttentionResult> PrefillAttention(absl::string_view method,
                                                 const MethodParams& params,
                                                 const AttentionInput& input);

// PrefillAttention's selection step alone; same errors.
absl::StatusOr<SelectionResult> PrefillSelect(absl::string_view method, const MethodParams& params,
                                              const AttentionInput& input);

// Decode: the queries of `steps` (positions steps.q_offset ... = P ...) are decode steps
// after a prompt of P = steps.q_offset tokens. `observation_q` holds the prompt's last
// queries ([Hq, W, D], positions P - W .. P - 1), used by the SnapKV family to choose
// what to evict from the prompt's cache; tokens generated after the prompt are always
// kept. Methods that run only in prefill -> InvalidArgument.
absl::StatusOr<AttentionResult> DecodeAttention(absl::string_view method,
                                                const MethodParams& params,
                                                const AttentionInput& steps,
                                                const TensorView& observation_q);

// DecodeAttention's selection step alone; same errors.
absl::StatusOr<SelectionResult> DecodeSelect(absl::string_view method, const MethodParams& params,
                                             const AttentionInput& steps,
                                             const TensorView& observation_q);

// Query-key pairs `selection` chooses over the rows of `input`, all heads.
double SelectedPairs(const Selection& selection, const AttentionInput& input);

// KV compression after prefill (the methods whose decode evicts: the SnapKV family,
// streaming, dense): the prompt positions kept per KV head, sorted. `keys` is
// [Hkv, P, D]; `observation_q` as above. Other methods -> InvalidArgument.
struct KeptTokens {
  std::vector<std::vector<int64_t>> per_kv_head;
  double estimation_flops = 0;
};
absl::StatusOr<KeptTokens> CompressKv(absl::string_view method, const MethodParams& params,
                                      const TensorView& observation_q, const TensorView& keys);

// Quest's page metadata: per KV head and page, the element-wise min and max of keys.
class QuestPageIndex {
 public:
  // Pages over keys [0, keys.len) of each KV head. REQUIRES page >= 1.
  QuestPageIndex(const TensorView& keys, int64_t page);
  // Extends the metadata with the keys of positions [len(), keys.len).
  void Append(const TensorView& keys);
  int64_t len() const { return len_; }
  // Pages chosen for the decode query `q` ([Hq] rows of D; q.Row(h, row)) at position
  // len() - 1: the current page plus the `budget_pages` best earlier pages by
  // sum_d max(q_d min_d, q_d max_d) (summed over a GQA group when shared); all earlier
  // pages when there are no more than budget_pages. Result [Hq] sorted page lists.
  std::vector<std::vector<int64_t>> Select(const TensorView& q, int64_t row, int64_t budget_pages,
                                           bool gqa_shared) const;

 private:
  int64_t page_;
  int64_t dim_;
  int64_t kv_heads_;
  int64_t len_ = 0;
  std::vector<float> min_;  // [kv_heads, pages, dim]
  std::vector<float> max_;
  int64_t pages_capacity_ = 0;
};

// The structure behind a selection, where it has one, for comparisons with other
// implementations: per query head the columns and diagonal offsets (pos - key) of line
// patterns (vertical_slash, flexprefill), the key blocks chosen per query block
// (block_sparse, xattention, flexprefill's query-aware heads), the pages of the first
// row of per-step page selections (quest) or the prompt tokens kept after eviction (the
// SnapKV family). Empty for other shapes.
struct SelectionStructure {
  std::vector<std::vector<int64_t>> columns;              // [Hq] sorted
  std::vector<std::vector<int64_t>> offsets;              // [Hq] sorted
  int64_t block = 0;                                      // block size of `blocks`
  std::vector<std::vector<std::vector<int64_t>>> blocks;  // [Hq][query block] key blocks
  int64_t page = 0;                                       // page size of `pages`
  std::vector<std::vector<int64_t>> pages;                // [Hq] sorted pages of row 0
  std::vector<std::vector<int64_t>> kept;                 // [Hq] sorted kept prompt tokens
};
SelectionStructure DescribeSelection(const Selection& selection);

// Computes attention for each query row over the keys `selection` gives, in double.
// This is the executor every method shares; exposed for tests and for CUDA comparisons.
AttentionResult AttendSelected(const AttentionInput& input,
                               std::shared_ptr<const Selection> selection);

// Runs fn(h) for h in [0, n) on up to `threads` threads (0 = hardware concurrency).
void ParallelFor(int64_t n, int threads, const std::function<void(int64_t)>& fn);

}  // namespace sf::kernels

#endif  // SF_KERNELS_CPU_ATTENTION_H_
