#include "worker/model/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "worker/model/gemm.h"

namespace sf::model {
namespace {

// Query rows per tile: big enough for GEMM efficiency, small enough that the score
// tile (block x keys) stays in cache-friendly sizes.
constexpr int kQueryBlock = 64;

}  // namespace

const char* AttentionBackendName(AttentionBackend backend) {
  switch (backend) {
    case AttentionBackend::kNone:
      return "none";
    case AttentionBackend::kCpu:
      return "cpu";
    case AttentionBackend::kCuda:
      return "cuda";
    case AttentionBackend::kHostMirror:
      return "host-mirror";
  }
  return "none";
}

double DensePairs(const AttentionCall& call) {
  const int group = call.num_q_heads / call.num_kv_heads;
  double pairs = 0;
  for (int h = 0; h < call.num_kv_heads; ++h) {
    const int64_t length = call.device != nullptr ? call.device->host_kv_lengths[h]
                                                  : call.cache->length(call.layer, h);
    const double before = static_cast<double>(length - call.num_queries);
    const double n = call.num_queries;
    pairs += group * (n * before + n * (n + 1) / 2);
  }
  return pairs;
}

absl::Status DenseAttention::Attend(const AttentionCall& call, AttentionStats* stats) {
  if (call.num_q_heads % call.num_kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat("dense attention: ", call.num_q_heads,
                                                   " query heads do not divide into ",
                                                   call.num_kv_heads, " KV heads"));
  }
  const int group = call.num_q_heads / call.num_kv_heads;
  const int d = call.head_dim;
  const int blocks = (call.num_queries + kQueryBlock - 1) / kQueryBlock;
  const int64_t items = static_cast<int64_t>(call.num_q_heads) * blocks;
  call.pool->ParallelFor(items, 1, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scores;
    for (int64_t item = begin; item < end; ++item) {
      // Later blocks see more keys: hand them out first for better balance.
      const int block = blocks - 1 - static_cast<int>(item % blocks);
      const int qh = static_cast<int>(item / blocks);
      const int kvh = qh / group;
      const int64_t len = call.cache->length(call.layer, kvh);
      const int64_t before = len - call.num_queries;
      const int q0 = block * kQueryBlock;
      const int rows = std::min(kQueryBlock, call.num_queries - q0);
      const int64_t keys = before + q0 + rows;  // keys visible to the block's last row
      scores.resize(static_cast<size_t>(rows) * keys);
      GemmNT(rows, keys, d, call.q + q0 * call.q_row_stride + qh * d, call.q_row_stride,
             call.cache->keys(call.layer, kvh), d, scores.data(), keys, /*accumulate=*/false);
      for (int r = 0; r < rows; ++r) {
        float* row = scores.data() + static_cast<int64_t>(r) * keys;
        const int64_t visible = before + q0 + r + 1;
        float mx = -std::numeric_limits<float>::infinity();
        for (int64_t c = 0; c < visible; ++c) {
          row[c] *= call.softmax_scale;
          mx = std::max(mx, row[c]);
        }
        float sum = 0;
        for (int64_t c = 0; c < visible; ++c) {
          row[c] = std::exp(row[c] - mx);
          sum += row[c];
        }
        const float inv = 1.0f / sum;
        for (int64_t c = 0; c < visible; ++c) row[c] *= inv;
        std::fill(row + visible, row + keys, 0.0f);
      }
      GemmNN(rows, d, keys, scores.data(), keys, call.cache->values(call.layer, kvh), d,
             call.out + q0 * call.out_row_stride + qh * d, call.out_row_stride);
    }
  });
  const double pairs = DensePairs(call);
  stats->pairs_computed += pairs;
  stats->pairs_dense += pairs;
  return absl::OkStatus();
}

}  // namespace sf::model
