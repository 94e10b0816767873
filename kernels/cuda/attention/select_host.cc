#include "kernels/cuda/attention/select_host.h"

#include <cstdint>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace sf::cuda::select_internal {
namespace {

absl::Status Bad(absl::string_view method, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(method, " selection: ", what));
}

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

absl::StatusOr<PrefillShape> CheckPrefillShape(const AttentionParams& a, absl::string_view method) {
  if (a.q == nullptr || a.k == nullptr) return Bad(method, "attn.q and attn.k must be given");
  if (a.dtype != AttnDType::kBf16) return Bad(method, "attn.dtype must be kBf16");
  if (a.num_q_heads < 1 || a.num_kv_heads < 1 || a.num_q_heads % a.num_kv_heads != 0) {
    return Bad(method, absl::StrCat("attn.num_q_heads (", a.num_q_heads,
                                    ") must be a positive multiple of attn.num_kv_heads (",
                                    a.num_kv_heads, ")"));
  }
  if (a.head_dim != 64 && a.head_dim != 128 && a.head_dim != 256) {
    return Bad(method, absl::StrCat("attn.head_dim is ", a.head_dim, "; 64, 128 or 256 run"));
  }
  if (a.num_queries < 1 || a.num_queries > a.max_kv_length ||
      a.max_kv_length > std::numeric_limits<int32_t>::max() / 2) {
    return Bad(method, absl::StrCat("need 1 <= attn.num_queries (", a.num_queries,
                                    ") <= attn.max_kv_length (", a.max_kv_length, ") < 2^30"));
  }
  if (a.kv_row_stride < a.head_dim || a.kv_row_stride % 8 != 0 || a.kv_head_stride % 8 != 0 ||
      a.kv_head_stride < a.kv_row_stride * a.max_kv_length) {
    return Bad(method,
               "attn.kv_row_stride must be >= head_dim and a multiple of 8, and "
               "attn.kv_head_stride a multiple of 8 holding max_kv_length rows");
  }
  if (a.q_head_stride < a.head_dim || a.q_head_stride % 2 != 0 || a.q_row_stride % 2 != 0 ||
      a.q_row_stride < int64_t{a.num_q_heads} * a.head_dim) {
    return Bad(method,
               "attn.q_head_stride must be >= head_dim and even, attn.q_row_stride even and "
               ">= num_q_heads * head_dim");
  }
  if (!Aligned16(a.q) || !Aligned16(a.k)) {
    return Bad(method, "attn.q and attn.k must be 16-byte aligned");
  }
  PrefillShape s;
  s.lq = a.num_queries;
  s.lk = a.max_kv_length;
  s.q_offset = s.lk - s.lq;
  s.hq = a.num_q_heads;
  s.hkv = a.num_kv_heads;
  s.group = s.hq / s.hkv;
  s.d = a.head_dim;
  return s;
}

absl::Status CheckCapacity(absl::string_view method, absl::string_view buffer, const void* ptr,
                           int64_t have, int64_t need) {
  if (need > 0 && ptr == nullptr) {
    return Bad(method, absl::StrCat("buffer '", buffer, "' is null; ", need, " entries needed"));
  }
  if (have < need) {
    return Bad(method, absl::StrCat("buffer '", buffer, "' holds ", have, "; ", need,
                                    " needed (see the method's SelectSizes)"));
  }
  return absl::OkStatus();
}

}  // namespace sf::cuda::select_internal
