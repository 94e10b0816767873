#include "worker/model/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace sf::model {

KvCache::KvCache(int num_layers, int num_kv_heads, int head_dim, int page_size)
    : num_layers_(num_layers),
      num_kv_heads_(num_kv_heads),
      head_dim_(head_dim),
      page_size_(page_size),
      heads_(static_cast<size_t>(num_layers) * num_kv_heads) {
  SF_CHECK(num_layers > 0 && num_kv_heads > 0 && head_dim > 0 && page_size > 0);
}

int64_t KvCache::num_pages(int layer, int head) const {
  return (length(layer, head) + page_size_ - 1) / page_size_;
}

void KvCache::Grow(HeadCache& h, int64_t rows) {
  const size_t need = static_cast<size_t>(rows) * head_dim_;
  if (h.keys.size() >= need) return;
  size_t cap = std::max<size_t>(need, h.keys.size() * 2);
  cap = (cap + head_dim_ * page_size_ - 1) / (head_dim_ * page_size_) * (head_dim_ * page_size_);
  h.keys.resize(cap);
  h.values.resize(cap);
  h.positions.resize(cap / head_dim_);
  const size_t pages = cap / head_dim_ / page_size_;
  h.kmin.resize(pages * head_dim_);
  h.kmax.resize(pages * head_dim_);
}

void KvCache::UpdatePages(HeadCache& h, int64_t from_row) {
  const int64_t first_page = from_row / page_size_;
  const int64_t pages = (h.length + page_size_ - 1) / page_size_;
  for (int64_t p = first_page; p < pages; ++p) {
    float* mn = h.kmin.data() + p * head_dim_;
    float* mx = h.kmax.data() + p * head_dim_;
    std::fill(mn, mn + head_dim_, std::numeric_limits<float>::infinity());
    std::fill(mx, mx + head_dim_, -std::numeric_limits<float>::infinity());
    const int64_t end = std::min<int64_t>(h.length, (p + 1) * page_size_);
    for (int64_t r = p * page_size_; r < end; ++r) {
      const float* k = h.keys.data() + r * head_dim_;
      for (int d = 0; d < head_dim_; ++d) {
        mn[d] = std::min(mn[d], k[d]);
        mx[d] = std::max(mx[d], k[d]);
      }
    }
  }
}

void KvCache::Append(int layer, int n, const float* k, const float* v, int64_t row_stride,
                     int64_t first_position) {
  for (int head = 0; head < num_kv_heads_; ++head) {
    HeadCache& h = Head(layer, head);
    Grow(h, h.length + n);
    for (int i = 0; i < n; ++i) {
      const int64_t row = h.length + i;
      std::memcpy(h.keys.data() + row * head_dim_, k + i * row_stride + head * head_dim_,
                  sizeof(float) * head_dim_);
      std::memcpy(h.values.data() + row * head_dim_, v + i * row_stride + head * head_dim_,
                  sizeof(float) * head_dim_);
      h.positions[row] = first_position + i;
    }
    const int64_t from = h.length;
    h.length += n;
    UpdatePages(h, from);
  }
}

absl::Status KvCache::Compact(int layer, int head, absl::Span<const int64_t> slots) {
  if (layer < 0 || layer >= num_layers_ || head < 0 || head >= num_kv_heads_) {
    return absl::InvalidArgumentError(absl::StrCat("no cache for layer ", layer, " head ", head));
  }
  HeadCache& h = Head(layer, head);
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i] < 0 || slots[i] >= h.length || (i > 0 && slots[i] <= slots[i - 1])) {
      return absl::InvalidArgumentError(absl::StrCat("Compact(layer ", layer, ", head ", head,
                                                     "): slot list must be strictly increasing "
                                                     "within [0, ",
                                                     h.length, "); entry ", i, " is ", slots[i]));
    }
  }
  // Rows only move towards the front, so an in-place forward copy is safe.
  for (size_t i = 0; i < slots.size(); ++i) {
    const int64_t src = slots[i];
    const int64_t dst = static_cast<int64_t>(i);
    if (src == dst) continue;
    std::memmove(h.keys.data() + dst * head_dim_, h.keys.data() + src * head_dim_,
                 sizeof(float) * head_dim_);
    std::memmove(h.values.data() + dst * head_dim_, h.values.data() + src * head_dim_,
                 sizeof(float) * head_dim_);
    h.positions[dst] = h.positions[src];
  }
  h.length = static_cast<int64_t>(slots.size());
  UpdatePages(h, 0);
  return absl::OkStatus();
}

void KvCache::Clear() {
  for (HeadCache& h : heads_) h.length = 0;
}

void KvCache::Reserve(int64_t rows) {
  for (HeadCache& h : heads_) Grow(h, rows);
}

int64_t KvCache::BytesUsed() const {
  int64_t rows = 0;
  for (const HeadCache& h : heads_) rows += h.length;
  return rows * 2 * head_dim_ * static_cast<int64_t>(sizeof(float));
}

}  // namespace sf::model
