// Host-side helpers of the selection entry points (internal to kernels/cuda/attention):
// the checked shape of an AttentionParams and a workspace carved into aligned pieces.
#ifndef SF_KERNELS_CUDA_ATTENTION_SELECT_HOST_H_
#define SF_KERNELS_CUDA_ATTENTION_SELECT_HOST_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernels/cuda/attention/params.h"

namespace sf::cuda::select_internal {

// The prefill shape the selection kernels read off AttentionParams.
struct PrefillShape {
  int64_t lq = 0;        // num_queries
  int64_t lk = 0;        // max_kv_length
  int64_t q_offset = 0;  // lk - lq: position of query row 0
  int32_t hq = 0;
  int32_t hkv = 0;
  int32_t group = 0;  // hq / hkv
  int32_t d = 0;
};

// Checks what every selection kernel relies on: bf16 q and k present, 1 <= num_queries
// <= max_kv_length < 2^31, hq a multiple of hkv, head dim 64/128/256, strides whole
// multiples of 8 elements (16-byte rows; q's head stride of 2) and 16-byte aligned
// pointers. InvalidArgument naming the field otherwise.
absl::StatusOr<PrefillShape> CheckPrefillShape(const AttentionParams& attn,
                                               absl::string_view method);

// Carves a workspace into 256-byte aligned pieces; with a null base it only counts.
class WorkspaceCarver {
 public:
  explicit WorkspaceCarver(void* base) : base_(static_cast<char*>(base)) {}
  template <class T>
  T* Take(int64_t count) {
    const int64_t at = used_;
    used_ += (static_cast<int64_t>(sizeof(T)) * count + 255) / 256 * 256;
    return base_ == nullptr ? nullptr : reinterpret_cast<T*>(base_ + at);
  }
  int64_t used() const { return used_; }

 private:
  char* base_;
  int64_t used_ = 0;
};

// InvalidArgument unless `have` >= `need` for the named buffer of `method`.
absl::Status CheckCapacity(absl::string_view method, absl::string_view buffer, const void* ptr,
                           int64_t have, int64_t need);

}  // namespace sf::cuda::select_internal

#endif  // SF_KERNELS_CUDA_ATTENTION_SELECT_HOST_H_
