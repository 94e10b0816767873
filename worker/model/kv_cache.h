// The key/value cache: per layer and per KV head, keys and values as rows of
// head_dim floats (RoPE already applied to keys), each head with its own length so
// eviction methods (SnapKV family) can keep different tokens per head, and per-page
// key min/max (Quest) kept up to date as rows are appended or compacted.
#ifndef SF_WORKER_MODEL_KV_CACHE_H_
#define SF_WORKER_MODEL_KV_CACHE_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace sf::model {

class KvCache {
 public:
  // REQUIRES: all arguments positive.
  KvCache(int num_layers, int num_kv_heads, int head_dim, int page_size = 16);

  int num_layers() const { return num_layers_; }
  int num_kv_heads() const { return num_kv_heads_; }
  int head_dim() const { return head_dim_; }
  int page_size() const { return page_size_; }

  // Rows held for (layer, head); slot i is row i. Rows stay in the order they were
  // kept, which is position order unless a method reorders them.
  int64_t length(int layer, int head) const { return Head(layer, head).length; }
  // Row-major [length][head_dim]. Pointers stay valid until the next Append or
  // Reserve on this (layer, head).
  const float* keys(int layer, int head) const { return Head(layer, head).keys.data(); }
  const float* values(int layer, int head) const { return Head(layer, head).values.data(); }
  // Original token position of each row (for methods that keep sinks or windows).
  const int64_t* positions(int layer, int head) const { return Head(layer, head).positions.data(); }

  // Quest metadata: for page p (rows [p * page_size, (p + 1) * page_size) clipped to
  // length), the element-wise min and max of its keys, row-major [num_pages][head_dim].
  int64_t num_pages(int layer, int head) const;
  const float* page_key_min(int layer, int head) const { return Head(layer, head).kmin.data(); }
  const float* page_key_max(int layer, int head) const { return Head(layer, head).kmax.data(); }

  // Appends `n` rows to every head of `layer`. `k` and `v` are [n][num_kv_heads][head_dim]
  // (the projection's natural layout, rows `row_stride` floats apart); positions are
  // first_position, first_position + 1, ...
  void Append(int layer, int n, const float* k, const float* v, int64_t row_stride,
              int64_t first_position);

  // Keeps only `slots` (strictly increasing, each < length) of (layer, head), in that
  // order, and recomputes its page metadata. InvalidArgument on a bad slot list.
  absl::Status Compact(int layer, int head, absl::Span<const int64_t> slots);

  // Empties every head (capacity is kept).
  void Clear();
  // Reserves room for `rows` rows per head, so appends do not reallocate.
  void Reserve(int64_t rows);
  // Bytes of keys and values held (rows * 2 * head_dim * 4, summed over heads).
  int64_t BytesUsed() const;

 private:
  struct HeadCache {
    int64_t length = 0;
    std::vector<float> keys, values;  // sized to capacity * head_dim
    std::vector<int64_t> positions;
    std::vector<float> kmin, kmax;  // [pages][head_dim]
  };
  HeadCache& Head(int layer, int head) { return heads_[layer * num_kv_heads_ + head]; }
  const HeadCache& Head(int layer, int head) const { return heads_[layer * num_kv_heads_ + head]; }
  void Grow(HeadCache& h, int64_t rows);
  void UpdatePages(HeadCache& h, int64_t from_row);

  int num_layers_;
  int num_kv_heads_;
  int head_dim_;
  int page_size_;
  std::vector<HeadCache> heads_;
};

}  // namespace sf::model

#endif  // SF_WORKER_MODEL_KV_CACHE_H_
