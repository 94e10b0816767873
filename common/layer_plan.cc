#include "common/layer_plan.h"

#include <algorithm>
#include <numeric>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status.h"

namespace sf::model {
namespace {

double GiB(int64_t bytes) { return static_cast<double>(bytes) / (1 << 30); }

}  // namespace

int64_t LayerMemoryProfile::StageBytes(int64_t first, int64_t end) const {
  int64_t bytes = per_stage_bytes + (end - first) * per_layer_bytes;
  if (first == 0) bytes += first_stage_bytes;
  if (end == layers) bytes += last_stage_bytes;
  if (first == 0 && end == layers) bytes -= shared_end_bytes;
  return bytes;
}

absl::Status LayerMemoryProfile::Validate() const {
  if (layers < 1) return absl::InvalidArgumentError("gpu memory profile: layers must be >= 1");
  const std::pair<const char*, int64_t> sizes[] = {{"per_layer_bytes", per_layer_bytes},
                                                   {"first_stage_bytes", first_stage_bytes},
                                                   {"last_stage_bytes", last_stage_bytes},
                                                   {"per_stage_bytes", per_stage_bytes},
                                                   {"shared_end_bytes", shared_end_bytes}};
  for (const auto& [name, value] : sizes) {
    if (value < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("gpu memory profile: ", name, " is negative (", value, ")"));
    }
  }
  if (shared_end_bytes > std::min(first_stage_bytes, last_stage_bytes)) {
    return absl::InvalidArgumentError(
        "gpu memory profile: shared_end_bytes exceeds first_stage_bytes or last_stage_bytes");
  }
  // Keeps StageBytes inside int64: no real job comes near 2^62 bytes.
  constexpr int64_t kLimit = int64_t{1} << 50;
  if (layers > 1'000'000 || per_layer_bytes > kLimit || first_stage_bytes > kLimit ||
      last_stage_bytes > kLimit || per_stage_bytes > kLimit) {
    return absl::InvalidArgumentError("gpu memory profile: a size is implausibly large");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<LayerStage>> PlanLayerStages(const LayerMemoryProfile& profile,
                                                        absl::Span<const int64_t> device_bytes) {
  SF_RETURN_IF_ERROR(profile.Validate());
  if (device_bytes.empty()) {
    return absl::FailedPreconditionError("no GPU to place the model's layers on");
  }
  for (size_t i = 0; i < device_bytes.size(); ++i) {
    if (device_bytes[i] < 0) {
      return absl::InvalidArgumentError(absl::StrCat("GPU ", i, " has negative memory"));
    }
  }
  // Devices by memory, most first (ties: lower index first).
  std::vector<int> order(device_bytes.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return device_bytes[a] > device_bytes[b]; });
  const int64_t L = profile.layers;
  if (profile.TotalBytes() <= device_bytes[order[0]]) {
    return std::vector<LayerStage>{{order[0], 0, L}};
  }
  const int64_t max_k = std::min<int64_t>(static_cast<int64_t>(order.size()), L);
  for (int64_t k = 2; k <= max_k; ++k) {
    std::vector<int> devices(order.begin(), order.begin() + k);
    std::sort(devices.begin(), devices.end());
    // At most `cap` layers per GPU, each taking as many as fit: the smallest cap that
    // places every layer spreads them most evenly.
    auto place = [&](int64_t cap) -> std::optional<std::vector<LayerStage>> {
      std::vector<LayerStage> stages;
      int64_t first = 0;
      for (int dev : devices) {
        if (first == L) break;
        int64_t count = std::min(cap, L - first);
        while (count > 0 && profile.StageBytes(first, first + count) > device_bytes[dev]) --count;
        if (count == 0) return std::nullopt;
        stages.push_back({dev, first, first + count});
        first += count;
      }
      if (first < L) return std::nullopt;
      return stages;
    };
    int64_t lo = (L + k - 1) / k, hi = L;
    if (!place(hi)) continue;
    while (lo < hi) {
      const int64_t mid = (lo + hi) / 2;
      if (place(mid)) {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    return *place(hi);
  }
  int64_t sum = 0;
  for (int64_t b : device_bytes) sum += b;
  return absl::ResourceExhaustedError(absl::StrFormat(
      "the job needs about %.2f GiB of GPU memory in all (%d layers of %.3f GiB, "
      "embeddings %.2f GiB, lm_head %.2f GiB, %.2f GiB of workspace on every GPU) and its "
      "layers cannot be split over these %d GPUs (%.2f GiB together, the largest %.2f GiB); "
      "it needs more or larger GPUs, or fewer tokens",
      GiB(profile.TotalBytes()), profile.layers, GiB(profile.per_layer_bytes),
      GiB(profile.first_stage_bytes), GiB(profile.last_stage_bytes), GiB(profile.per_stage_bytes),
      static_cast<int>(device_bytes.size()), GiB(sum), GiB(device_bytes[order[0]])));
}

std::string DescribeStages(absl::Span<const LayerStage> stages) {
  std::string out;
  for (const LayerStage& s : stages) {
    absl::StrAppend(&out, out.empty() ? "" : " ", "[", s.first_layer, ",", s.end_layer, ")@",
                    s.device);
  }
  return out;
}

}  // namespace sf::model
