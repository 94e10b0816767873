// block_sparse on the CPU: mean-pooled q.k per (query block, key block), the top
// `block_budget` key blocks per query block, sink / diagonal / previous blocks forced
// (MInference's _build_block_index as the study uses it; docs/methods.md).
#include "kernels/cpu/methods/block_sparse.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "kernels/cpu/cpu_method.h"
#include "kernels/cpu/methods/method_list.h"
#include "kernels/cpu/selection_internal.h"
#include "methods/registry.h"

namespace sf::kernels {
namespace {

using internal::HeadPattern;

class BlockSparse : public CpuMethod {
 public:
  BlockSparse(const MethodInfo& info, int64_t block, int64_t budget)
      : CpuMethod(info), block_(block), budget_(budget) {}

  absl::StatusOr<SelectionResult> SelectPrefill(const AttentionInput& in) const override {
    const int64_t nb = (in.k.len + block_ - 1) / block_;
    if (budget_ > nb) {
      return internal::TooLarge("block_sparse", "block_budget", budget_, nb,
                                absl::StrCat("the sequence's number of blocks of ", block_));
    }
    const auto pooled_k = internal::PoolKeys(in.k, block_);
    const int64_t first_qb = in.q_offset / block_;
    const int64_t last_qb = (in.q_offset + in.q.len - 1) / block_;
    std::vector<HeadPattern> heads(in.q.heads);
    ParallelFor(in.q.heads, 0, [&](int64_t h) {
      HeadPattern& hp = heads[h];
      hp.block = block_;
      hp.blocks.resize(last_qb + 1);
      const int64_t kvh = h / in.group();
      for (int64_t qb = first_qb; qb <= last_qb; ++qb) {
        auto [rb, re] = internal::QueryRowsOfBlock(in, block_, qb);
        const std::vector<double> pq = internal::MeanRows(in.q, h, rb, re);
        std::vector<double> score(qb + 1);
        std::vector<char> forced(qb + 1, 0);
        for (int64_t kb = 0; kb <= qb; ++kb) score[kb] = internal::DotD(pq, pooled_k[kvh][kb]);
        forced[0] = forced[qb] = 1;
        if (qb >= 1) forced[qb - 1] = 1;
        const int64_t n_forced = std::min<int64_t>(qb + 1, qb >= 1 ? (qb >= 2 ? 3 : 2) : 1);
        hp.blocks[qb] = internal::TopKIndices(score, forced, std::max(budget_, n_forced));
      }
    });
    const double nqb = static_cast<double>(last_qb - first_qb + 1);
    const double flops =
        in.q.heads * (in.q.len * in.q.dim + nqb * (first_qb + last_qb + 2) / 2.0 * 2.0 * in.q.dim) +
        in.k.heads * static_cast<double>(in.k.len) * in.k.dim;
    return internal::PatternResult(std::move(heads), in.q_offset, flops);
  }

 private:
  int64_t block_;   // query and key block size
  int64_t budget_;  // key blocks per query block, forced ones included
};

absl::StatusOr<std::shared_ptr<const CpuMethod>> Bind(const ParamReader& r) {
  SF_ASSIGN_OR_RETURN(const BlockSparseParams p, BlockSparseParamsFrom(r));
  return std::make_shared<BlockSparse>(r.method(), p.block, p.block_budget);
}

}  // namespace

absl::StatusOr<BlockSparseParams> BlockSparseParamsFrom(const ParamReader& r) {
  BlockSparseParams p;
  SF_ASSIGN_OR_RETURN(p.block, r.Int("block"));
  SF_ASSIGN_OR_RETURN(p.block_budget, r.Int("block_budget"));
  return p;
}

absl::StatusOr<BlockSparseParams> BlockSparseParamsFrom(const ParamMap& params) {
  SF_ASSIGN_OR_RETURN(const MethodInfo* method, LookUpMethod("block_sparse"));
  const ParamReader reader(*method, params);
  SF_RETURN_IF_ERROR(reader.CheckNamesKnown());
  return BlockSparseParamsFrom(reader);
}

MethodParams BlockSparseMethodParams(const BlockSparseParams& p) {
  const MethodInfo* method = FindMethod("block_sparse");
  return MethodParams(std::make_shared<BlockSparse>(*method, p.block, p.block_budget));
}

CpuMethodEntry BlockSparseCpu() { return {.name = "block_sparse", .bind = Bind}; }

}  // namespace sf::kernels
