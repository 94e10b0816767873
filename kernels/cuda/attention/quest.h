// Quest on the GPU (docs/methods.md, "quest"): per KV head and page of `page` cache rows
// the element-wise min and max of the keys, kept up to date as rows are appended; per
// decode step the pages chosen exactly as kernels::QuestPageIndex::Select (kernels/cpu/
// attention.h) chooses them, with no host synchronisation; then sparse decode over those
// pages with the dense kernel's split-KV machinery (decode.h, PagedDecode).
//
// Metadata is bf16, like the keys it summarises: the min and max of bf16 keys are bf16
// values, so it equals the CPU index's float32 metadata of the same keys exactly.
#ifndef SF_KERNELS_CUDA_ATTENTION_QUEST_H_
#define SF_KERNELS_CUDA_ATTENTION_QUEST_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/cuda/attention/decode.h"
#include "kernels/cuda/attention/params.h"
#include "kernels/cuda/attention/selection.h"

namespace sf::cuda {

// One layer's page metadata: min and max, each bf16 [batch][num_kv_heads][max_pages]
// [head_dim] (device, caller-owned; QuestPagesBytes per array).
struct QuestPages {
  void* min = nullptr;
  void* max = nullptr;
  int32_t page = 16;
  int64_t max_pages = 0;  // pages held per (sequence, KV head): >= ceil(capacity / page)
};
int64_t QuestPagesBytes(int32_t batch, int32_t num_kv_heads, int64_t max_pages, int32_t head_dim);

// Recomputes the metadata of every page holding one of the last `appended` rows of each
// (sequence, KV head), i.e. rows [kv_lengths - appended, kv_lengths), from the keys in
// `p` (p.k, strides, kv_lengths, max_kv_length, batch, num_kv_heads, head_dim). Run it
// after each append: appended = the prompt length after prefill, 1 per decode step.
// A page's metadata covers its rows [page * P, kv_length) only.
absl::Status QuestUpdatePages(const AttentionParams& p, const QuestPages& meta, int64_t appended);

// What QuestSelectPages needs besides `p` and the metadata.
struct QuestSelectArgs {
  int64_t budget_pages = 0;  // token_budget / page
  bool gqa_shared = true;    // one list per KV head (scores summed over the group)
  // Also refresh the metadata of the page holding each head's last row (the row this
  // decode step appended), as QuestUpdatePages(p, meta, 1) would, inside the same
  // kernel: a decode step is then QuestSelectPages + PagedDecode.
  bool update_last_page = false;
};

// Workspace bytes QuestSelectPages needs (per-list counters, then page scores). Zero the
// workspace once after allocating it (cudaMemset): each call leaves the counters zero.
int64_t QuestSelectWorkspaceBytes(const AttentionParams& p, const QuestPages& meta,
                                  const QuestSelectArgs& args);

// The pages of this decode step, per list (KV head when gqa_shared, else query head; with
// batch > 1 list b * count + i), written as CSR into `out` (offsets [batch * count + 1],
// pages [batch * count * (budget_pages + 1)] capacity): with c = (kv_length - 1) / page
// the current page, all pages 0..c when c <= budget_pages, else the budget_pages best
// of pages [0, c) by sum_d max(q_d min_d, q_d max_d) (summed over the list's query
// heads; ties to the lower page), then c. Scores are float32 sums of the same terms the
// CPU sums in float64: pages whose scores differ by less than float32 rounding (~1e-6
// relative) may be chosen differently. A head with no rows gets an empty list. One kernel:
// CTAs score slices of the pages; the last CTA of each list to finish selects.
struct QuestSelection {
  int32_t* offsets = nullptr;
  int32_t* pages = nullptr;
};
absl::Status QuestSelectPages(const AttentionParams& p, const QuestPages& meta,
                              const QuestSelectArgs& args, const QuestSelection& out);

// Rows any list of QuestSelectPages can hold: (budget_pages + 1) * page.
inline int64_t QuestMaxSelectedRows(const QuestPages& meta, const QuestSelectArgs& args) {
  return (args.budget_pages + 1) * meta.page;
}

}  // namespace sf::cuda

#endif  // SF_KERNELS_CUDA_ATTENTION_QUEST_H_
