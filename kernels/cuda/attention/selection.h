// Device forms of the selections that sparse methods produce and attention kernels
// consume. They mirror the CPU reference's kernels::SelectionStructure
// (kernels/cpu/attention.h: DescribeSelection), so a selection built on the GPU can be
// compared with the CPU's as sets, and any method whose choice has one of these shapes
// runs on the shared kernels without a kernel of its own.
//
// Lists are CSR: the entries of list i are items[offsets[i] .. offsets[i + 1]), sorted
// ascending, no duplicates. All pointers are device pointers, int32.
#ifndef SF_KERNELS_CUDA_ATTENTION_SELECTION_H_
#define SF_KERNELS_CUDA_ATTENTION_SELECTION_H_

#include <cstdint>

namespace sf::cuda {

// Who a list belongs to. A method that chooses per query head gives num_q_heads lists
// (list head = query head); one that shares its choice across a GQA group gives
// num_kv_heads lists (query head h uses list h / (num_q_heads / num_kv_heads)), which
// lets a kernel read each key block once for the whole group.
struct ListHeads {
  int32_t count = 0;  // num_q_heads or num_kv_heads
};

// Prefill, line patterns (vertical_slash, flexprefill's study variant, streaming): query
// row i (position p = kv_length - num_queries + i) of a head sees key k <= p iff
//   k is one of the head's columns, or p - k is one of the head's diagonal offsets.
// streaming is columns [0, sink) and offsets [0, window).
struct LineSelection {
  ListHeads heads;
  const int32_t* column_offsets = nullptr;    // [heads.count + 1]
  const int32_t* columns = nullptr;           // key positions
  const int32_t* diagonal_offsets = nullptr;  // [heads.count + 1]
  const int32_t* diagonals = nullptr;         // p - k values, >= 0
};

// Prefill, block patterns (block_sparse, xattention, flexprefill's query-aware heads):
// query block b (rows [b * block, (b + 1) * block) of the call) of a head sees every key of
// each listed key block (keys [c * block, (c + 1) * block)), causal inside: key k <= p.
struct BlockSelection {
  ListHeads heads;
  int32_t block = 0;             // query and key block size
  int32_t num_query_blocks = 0;  // ceil(num_queries / block)
  // List of (head, query block) is head * num_query_blocks + query block.
  const int32_t* offsets = nullptr;  // [heads.count * num_query_blocks + 1]
  const int32_t* key_blocks = nullptr;
};

// Prefill, a shape chosen per query head (flexprefill's original variant): query head h
// uses its lists in `lines` when head_kinds[h] is kLines and its lists in `blocks` when it
// is kBlocks; the other form's lists of that head are empty (zero-length CSR entries for
// the head, and for each of its query blocks). Both forms list per query head. A kernel
// that runs one form skips heads of the other kind.
enum class HeadSelectionKind : int32_t { kLines = 0, kBlocks = 1 };
struct MixedSelection {
  LineSelection lines;
  BlockSelection blocks;
  const int32_t* head_kinds = nullptr;  // [num_q_heads] HeadSelectionKind values
};

// Decode, token eviction (snapkv, ada_snapkv, streaming's CompressKv): the cache rows
// kept per KV head after prefill (positions < prompt length, sorted). The kernels compact
// the cache to these rows; later decode steps read kv_lengths.
struct KeptRows {
  int32_t num_kv_heads = 0;
  const int32_t* offsets = nullptr;  // [num_kv_heads + 1]
  const int32_t* rows = nullptr;
};

// Decode, page selection (quest): the pages of `page` rows each query head (or GQA
// group, per `heads`) reads in this step; rows past kv_lengths are never read.
struct PageSelection {
  ListHeads heads;
  int32_t page = 0;
  const int32_t* offsets = nullptr;  // [heads.count + 1]
  const int32_t* pages = nullptr;
};

}  // namespace sf::cuda

#endif  // SF_KERNELS_CUDA_ATTENTION_SELECTION_H_
