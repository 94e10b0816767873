// Causal prefill attention for Hopper (sm_90a), bf16 in and out, float32 accumulation:
// dense, and index-driven sparse over a BlockSelection. One main loop serves both: TMA
// loads K/V tiles into a shared-memory ring, two consumer warpgroups compute Q K^T and
// P V with wgmma. GQA reads each KV head in place (query head h uses KV head
// h / (num_q_heads / num_kv_heads)); causality follows AttentionParams (query j sees rows
// [0, kv_length - num_queries + j]), so chunked prefill over an existing cache works.
#ifndef SF_KERNELS_CUDA_ATTENTION_PREFILL_H_
#define SF_KERNELS_CUDA_ATTENTION_PREFILL_H_

#include "absl/status/status.h"
#include "kernels/cuda/attention/params.h"
#include "kernels/cuda/attention/selection.h"

namespace sf::cuda {

// The version of the Hopper attention kernels (this header and decode.h), recorded with
// each result the engine computes with them; it changes when their numerics or the
// selections they accept change.
inline constexpr char kHopperKernelsVersion[] = "cuda-hopper-3";

// Pairs computed: each sparse kernel attends exactly the pairs its selection names, so
// the measured density is the selection's own; callers count it on the host from the same
// lists (e.g. kernels::SelectedPairs on the CPU selection); the kernels do not report it.
//
// The consumers' main-loop order. kOverlapped (the default, FlashAttention-3's): the scores
// of the next key tile and P V of the current one are in flight during the softmax, and
// the two consumer warpgroups take turns issuing GEMMs. kSerial waits for each GEMM before
// the next step: the simplest order, kept to measure what the overlap buys.
enum class PrefillSchedule { kOverlapped, kSerial };
//
// Work balance: one CTA per SM takes query tiles (128 rows of one head) longest first;
// when there are more tiles than SMs, each CTA takes the next tile no CTA has taken yet
// from a device counter: 4 bytes from the stream's memory pool (cudaMallocAsync), zeroed
// and freed in stream order, so calls on other streams never share one.

// Dense causal prefill. Writes every element of params.out (and params.lse when set).
// REQUIRES (InvalidArgument naming the field otherwise): dtype kBf16; head_dim 64, 128
// or 256; num_q_heads a positive multiple of num_kv_heads; 1 <= num_queries <=
// max_kv_length < 2^31; q, k, v, out 16-byte aligned, every stride a multiple of 8
// elements. When kv_lengths is set, every kv_lengths[g] must lie in
// [num_queries, max_kv_length] (it is read on the device, not checked).
absl::Status PrefillDense(const AttentionParams& params,
                          PrefillSchedule schedule = PrefillSchedule::kOverlapped);

// Block-sparse causal prefill: query block b of a head sees the keys of the key blocks
// its list names, causal inside (selection.h); lists per query head or per KV head.
// `selection.block`: a multiple of 128, or 16, 32 or 64 (then 128-row tiles carry a mask of
// their sub-blocks). A row that sees no key is written as 0 with lse -inf. Same
// requirements as PrefillDense, plus num_query_blocks == ceil(num_queries / block) and
// sorted lists (InvalidArgument naming the field otherwise; list contents are read on the
// device, not checked).
absl::Status PrefillBlockSparse(const AttentionParams& params, const BlockSelection& selection,
                                PrefillSchedule schedule = PrefillSchedule::kOverlapped);

// Line-pattern causal prefill (vertical_slash, streaming, flexprefill's line heads): query
// row i at position p = kv_length - num_queries + i sees key k <= p iff k is one of its
// head's columns or p - k one of its diagonal offsets (selection.h); exactly that set. The
// kernel visits only key tiles some column or diagonal touches; tiles the lines cover
// entirely run unmasked. Rows that see no key: 0, lse -inf. Same requirements as
// PrefillDense; lists sorted ascending, diagonals >= 0.
absl::Status PrefillLines(const AttentionParams& params, const LineSelection& selection,
                          PrefillSchedule schedule = PrefillSchedule::kOverlapped);

}  // namespace sf::cuda

#endif  // SF_KERNELS_CUDA_ATTENTION_PREFILL_H_
