// The fast fidelity table (MeasureFidelityTable): statistics shared between the
// requests of one method, and one float32 pass over (head, tile of rows) that computes
// dense attention once and every request's sparse attention over its selected pairs.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <tuple>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/method_catalog.h"
#include "common/status.h"
#include "kernels/cpu/fidelity.h"
#include "kernels/cpu/fidelity_internal.h"
#include "kernels/cpu/selection_internal.h"

namespace sf::kernels {
namespace {

// The project builds without -march (Eigen would be compiled for SSE2 only here). Each
// kernel body is compiled twice, for AVX2 + FMA and for the baseline, and the CPU picks
// at run time. (target_clones("arch=haswell") would test for that exact CPU model.)
#define SF_ALWAYS_INLINE __attribute__((always_inline)) inline
#if defined(__x86_64__) && defined(__GNUC__)
bool HasAvx2Fma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}
#define SF_DISPATCH(name, params, args)                                           \
  __attribute__((target("avx2,fma"))) void name##Avx2 params { name##Body args; } \
  void name##Base params { name##Body args; }                                     \
  void name params {                                                              \
    if (HasAvx2Fma()) {                                                           \
      name##Avx2 args;                                                            \
    } else {                                                                      \
      name##Base args;                                                            \
    }                                                                             \
  }
#else
#define SF_DISPATCH(name, params, args) \
  void name params { name##Body args; }
#endif

typedef float V8 __attribute__((vector_size(32)));
// The helpers below take and return 32-byte vectors; they are internal and always
// inlined into the cloned kernels, so the ABI note GCC gives for them does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"
constexpr int64_t kKeyBlock = 16;   // keys per packed block (two V8)
constexpr int64_t kTile = 16;       // query rows per unit of work
constexpr int64_t kKeyChunk = 512;  // keys whose V rows stay in cache (128 KB at D = 64)

SF_ALWAYS_INLINE V8 Load8(const float* p) {
  V8 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
SF_ALWAYS_INLINE void Store8(float* p, V8 v) { std::memcpy(p, &v, sizeof(v)); }

// K of every KV head packed as [Hkv][ceil(L/16)][D][16] (zero padded), so that the
// score kernel reads 16 keys of one dimension with two vector loads.
struct PackedKeys {
  int64_t blocks = 0, dim = 0;
  std::vector<float> data;
  const float* Block(int64_t kvh, int64_t b) const {
    return data.data() + (kvh * blocks + b) * dim * kKeyBlock;
  }
};

PackedKeys PackKeys(const TensorView& k) {
  PackedKeys p;
  p.blocks = (k.len + kKeyBlock - 1) / kKeyBlock;
  p.dim = k.dim;
  p.data.assign(k.heads * p.blocks * k.dim * kKeyBlock, 0.0f);
  for (int64_t h = 0; h < k.heads; ++h) {
    for (int64_t j = 0; j < k.len; ++j) {
      float* dst = p.data.data() + (h * p.blocks + j / kKeyBlock) * k.dim * kKeyBlock;
      const float* src = k.Row(h, j);
      for (int64_t x = 0; x < k.dim; ++x) dst[x * kKeyBlock + j % kKeyBlock] = src[x];
    }
  }
  return p;
}

// s[r * ld + j] = q_r . k_j for rows r < rows (row r at q + r * q_stride, already
// scaled) and key blocks [0, nblocks) of KV head kvh.
SF_ALWAYS_INLINE void ScoresBody(const float* q, int64_t q_stride, int64_t rows,
                                 const PackedKeys& pk, int64_t kvh, int64_t nblocks, float* s,
                                 int64_t ld) {
  const int64_t d = pk.dim;
  for (int64_t b = 0; b < nblocks; ++b) {
    const float* kb = pk.Block(kvh, b);
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4) {
      const float *q0 = q + r * q_stride, *q1 = q0 + q_stride, *q2 = q1 + q_stride,
                  *q3 = q2 + q_stride;
      V8 a0 = {}, a1 = {}, b0 = {}, b1 = {}, c0 = {}, c1 = {}, e0 = {}, e1 = {};
      for (int64_t x = 0; x < d; ++x) {
        const V8 k0 = Load8(kb + x * kKeyBlock), k1 = Load8(kb + x * kKeyBlock + 8);
        a0 += q0[x] * k0;
        a1 += q0[x] * k1;
        b0 += q1[x] * k0;
        b1 += q1[x] * k1;
        c0 += q2[x] * k0;
        c1 += q2[x] * k1;
        e0 += q3[x] * k0;
        e1 += q3[x] * k1;
      }
      float* o = s + r * ld + b * kKeyBlock;
      Store8(o, a0);
      Store8(o + 8, a1);
      Store8(o + ld, b0);
      Store8(o + ld + 8, b1);
      Store8(o + 2 * ld, c0);
      Store8(o + 2 * ld + 8, c1);
      Store8(o + 3 * ld, e0);
      Store8(o + 3 * ld + 8, e1);
    }
    for (; r < rows; ++r) {
      const float* q0 = q + r * q_stride;
      V8 a0 = {}, a1 = {};
      for (int64_t x = 0; x < d; ++x) {
        a0 += q0[x] * Load8(kb + x * kKeyBlock);
        a1 += q0[x] * Load8(kb + x * kKeyBlock + 8);
      }
      Store8(s + r * ld + b * kKeyBlock, a0);
      Store8(s + r * ld + b * kKeyBlock + 8, a1);
    }
  }
}
SF_DISPATCH(Scores,
            (const float* q, int64_t q_stride, int64_t rows, const PackedKeys& pk, int64_t kvh,
             int64_t nblocks, float* s, int64_t ld),
            (q, q_stride, rows, pk, kvh, nblocks, s, ld))

// exp(x) for x <= 0 (x below -87 gives 0), relative error ~2e-7: range reduction to
// 2^n * e^r with |r| <= ln2/2 and a degree-6 polynomial.
typedef int32_t I8 __attribute__((vector_size(32)));

SF_ALWAYS_INLINE V8 ExpNonPositive(V8 x) {
  const I8 under = x < -87.0f;  // all-ones lanes where the result underflows
  x = under ? V8{} - 87.0f : x;
  const V8 t = x * 1.44269504088896341f;
  const V8 magic = V8{} + 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const V8 n = (t + magic) - magic;
  const V8 r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-06f;
  V8 p = V8{} + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const I8 e = (__builtin_convertvector(n, I8) + 127) << 23;
  V8 scale;
  std::memcpy(&scale, &e, sizeof(scale));
  V8 out = p * scale;
  I8 bits;
  std::memcpy(&bits, &out, sizeof(bits));
  bits &= ~under;
  std::memcpy(&out, &bits, sizeof(out));
  return out;
}

// For each row r: m = max of s[0, n_r), s[j] = exp(s[j] - m) for j < n_r and 0 up to
// `width` (a multiple of 8); returns sums in z[r] and maxima in m[r].
SF_ALWAYS_INLINE void SoftmaxRowsBody(float* s, int64_t ld, int64_t rows, const int64_t* n,
                                      int64_t width, float* m, double* z) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = s + r * ld;
    V8 vmx = V8{} - INFINITY;
    int64_t j8 = 0;
    for (; j8 + 8 <= n[r]; j8 += 8) {
      const V8 x = Load8(row + j8);
      vmx = x > vmx ? x : vmx;
    }
    float lanes_mx[8];
    Store8(lanes_mx, vmx);
    float mx = -INFINITY;
    for (float x : lanes_mx) mx = std::max(mx, x);
    for (int64_t j = j8; j < n[r]; ++j) mx = std::max(mx, row[j]);
    for (int64_t j = n[r]; j < width; ++j) row[j] = -INFINITY;
    double total = 0;
    for (int64_t j = 0; j < width; j += 64) {
      V8 sum = {};
      const int64_t e = std::min(width, j + 64);
      for (int64_t x = j; x < e; x += 8) {
        const V8 p = ExpNonPositive(Load8(row + x) - mx);
        Store8(row + x, p);
        sum += p;
      }
      float lanes[8];
      Store8(lanes, sum);
      total += ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) +
               ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    }
    m[r] = mx;
    z[r] = total;
  }
}
SF_DISPATCH(SoftmaxRows,
            (float* s, int64_t ld, int64_t rows, const int64_t* n, int64_t width, float* m,
             double* z),
            (s, ld, rows, n, width, m, z))

// out[r][x] = sum_j p[r * ld + j] v_j[x] over keys [0, n), for rows < rows (zeros in p
// where a row does not attend). d must be a multiple of 16.
SF_ALWAYS_INLINE void DensePvBody(const float* p, int64_t ld, int64_t rows, const float* v,
                                  int64_t v_stride, int64_t n, int64_t d, float* out) {
  // Chunks of keys whose V rows stay in cache while every row of the tile uses them.
  for (int64_t j0 = 0; j0 < n; j0 += kKeyChunk) {
    const int64_t j1 = std::min(n, j0 + kKeyChunk);
    for (int64_t r0 = 0; r0 < rows; r0 += 4) {
      const int64_t nr = std::min<int64_t>(4, rows - r0);
      const float* pr[4];
      for (int64_t r = 0; r < 4; ++r) pr[r] = p + (r0 + std::min(r, nr - 1)) * ld;
      for (int64_t x = 0; x < d; x += 16) {
        V8 a[4][2];
        for (int64_t r = 0; r < 4; ++r) {
          const int64_t rr = r0 + std::min(r, nr - 1);
          a[r][0] = Load8(out + rr * d + x);
          a[r][1] = Load8(out + rr * d + x + 8);
        }
        for (int64_t j = j0; j < j1; ++j) {
          const V8 v0 = Load8(v + j * v_stride + x), v1 = Load8(v + j * v_stride + x + 8);
          for (int r = 0; r < 4; ++r) {
            a[r][0] += pr[r][j] * v0;
            a[r][1] += pr[r][j] * v1;
          }
        }
        for (int64_t r = 0; r < nr; ++r) {
          Store8(out + (r0 + r) * d + x, a[r][0]);
          Store8(out + (r0 + r) * d + x + 8, a[r][1]);
        }
      }
    }
  }
}
SF_DISPATCH(DensePv,
            (const float* p, int64_t ld, int64_t rows, const float* v, int64_t v_stride, int64_t n,
             int64_t d, float* out),
            (p, ld, rows, v, v_stride, n, d, out))

// out[x] += sum over j in the key ranges of p[j] v_j[x] (d a multiple of 16), in chunks
// of 64 columns that keep the accumulators in registers; returns the sum of p over the
// ranges.
SF_ALWAYS_INLINE double RangePvBody(const KeyRange* ranges, int64_t n_ranges, const float* p,
                                    const float* v, int64_t v_stride, int64_t d, float* out) {
  double z = 0;
  for (int64_t r = 0; r < n_ranges; ++r) {
    for (int64_t j = ranges[r].begin; j < ranges[r].end; ++j) z += p[j];
  }
  int64_t x0 = 0;
  for (; x0 + 64 <= d; x0 += 64) {  // eight accumulators stay in registers
    V8 a0 = Load8(out + x0), a1 = Load8(out + x0 + 8), a2 = Load8(out + x0 + 16),
       a3 = Load8(out + x0 + 24), a4 = Load8(out + x0 + 32), a5 = Load8(out + x0 + 40),
       a6 = Load8(out + x0 + 48), a7 = Load8(out + x0 + 56);
    for (int64_t r = 0; r < n_ranges; ++r) {
      for (int64_t j = ranges[r].begin; j < ranges[r].end; ++j) {
        const float* row = v + j * v_stride + x0;
        const float w = p[j];
        a0 += w * Load8(row);
        a1 += w * Load8(row + 8);
        a2 += w * Load8(row + 16);
        a3 += w * Load8(row + 24);
        a4 += w * Load8(row + 32);
        a5 += w * Load8(row + 40);
        a6 += w * Load8(row + 48);
        a7 += w * Load8(row + 56);
      }
    }
    Store8(out + x0, a0);
    Store8(out + x0 + 8, a1);
    Store8(out + x0 + 16, a2);
    Store8(out + x0 + 24, a3);
    Store8(out + x0 + 32, a4);
    Store8(out + x0 + 40, a5);
    Store8(out + x0 + 48, a6);
    Store8(out + x0 + 56, a7);
  }
  for (; x0 < d; x0 += 16) {
    V8 a0 = Load8(out + x0), a1 = Load8(out + x0 + 8);
    for (int64_t r = 0; r < n_ranges; ++r) {
      for (int64_t j = ranges[r].begin; j < ranges[r].end; ++j) {
        a0 += p[j] * Load8(v + j * v_stride + x0);
        a1 += p[j] * Load8(v + j * v_stride + x0 + 8);
      }
    }
    Store8(out + x0, a0);
    Store8(out + x0 + 8, a1);
  }
  return z;
}
double RangePvAvx2(const KeyRange* ranges, int64_t n_ranges, const float* p, const float* v,
                   int64_t v_stride, int64_t d, float* out) __attribute__((target("avx2,fma")));
double RangePvAvx2(const KeyRange* ranges, int64_t n_ranges, const float* p, const float* v,
                   int64_t v_stride, int64_t d, float* out) {
  return RangePvBody(ranges, n_ranges, p, v, v_stride, d, out);
}
double RangePv(const KeyRange* ranges, int64_t n_ranges, const float* p, const float* v,
               int64_t v_stride, int64_t d, float* out) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (HasAvx2Fma()) return RangePvAvx2(ranges, n_ranges, p, v, v_stride, d, out);
#endif
  return RangePvBody(ranges, n_ranges, p, v, v_stride, d, out);
}

// The k-th largest (1 <= k <= n) of x[0, n); afterwards x[0, k) holds the k largest.
// Quickselect whose partition has no data-dependent branch (which side a score falls on
// is unpredictable, and std::nth_element spent most of its time mispredicting); `tmp`
// has room for n floats.
float KthLargest(float* x, int64_t n, int64_t k, float* tmp) {
  const int64_t t = k - 1;  // position in descending order
  int64_t lo = 0, hi = n;
  while (hi - lo > 32) {
    const float a = x[lo], b = x[lo + (hi - lo) / 2], c = x[hi - 1];
    const float pivot = std::max(std::min(a, b), std::min(std::max(a, b), c));
    int64_t front = lo, back = hi;
    for (int64_t i = lo; i < hi; ++i) {
      const float v = x[i];
      tmp[front] = v;
      tmp[back - 1] = v;
      front += v > pivot;
      back -= v < pivot;
    }
    std::copy(tmp + lo, tmp + front, x + lo);
    std::fill(x + front, x + back, pivot);
    std::copy(tmp + back, tmp + hi, x + back);
    if (t < front) {
      hi = front;
    } else if (t < back) {
      return pivot;
    } else {
      lo = back;
    }
  }
  std::sort(x + lo, x + hi, std::greater<float>());
  return x[t];
}

bool IsDecodeMethod(const MethodInfo& m) { return m.phase == MethodPhase::kDecode; }

// One request after calibration and selection.
struct Prepared {
  absl::Status status;
  FidelityResult result;
  std::shared_ptr<const Selection> selection;  // null for dense and oracle_topk
  int64_t oracle_k = 0;                        // oracle_topk: keys per row
  bool dense = false;
  double seconds = 0;
};

// Statistics computed once per table and shared by the requests that need them.
class StatsCache {
 public:
  explicit StatsCache(const AttentionInput& in) : in_(in) {}
  // Computes the line mass of every last_q in one pass over the softmax rows.
  void PrefetchLines(std::vector<int64_t> last_qs) {
    std::sort(last_qs.begin(), last_qs.end());
    last_qs.erase(std::unique(last_qs.begin(), last_qs.end()), last_qs.end());
    for (internal::LineMass& m : internal::ComputeLineMasses(in_, last_qs)) {
      lines_.emplace(m.last_q, std::move(m));
    }
  }
  const internal::LineMass& Lines(int64_t last_q) {
    auto it = lines_.find(last_q);
    if (it == lines_.end())
      it = lines_.emplace(last_q, internal::ComputeLineMass(in_, last_q)).first;
    return it->second;
  }
  const internal::BlockMass& Blocks(int64_t block, int64_t stride) {
    auto key = std::make_pair(block, stride);
    auto it = blocks_.find(key);
    if (it == blocks_.end()) {
      it = blocks_.emplace(key, internal::ComputeXAttentionMass(in_, block, stride)).first;
    }
    return it->second;
  }
  const std::vector<std::vector<double>>& SnapImportance(const SnapKvParams& p,
                                                         const TensorView& obs,
                                                         const TensorView& keys) {
    auto key = std::make_tuple(p.window, p.pool, p.adaptive);
    auto it = snap_.find(key);
    if (it == snap_.end()) {
      // snapkv and ada_snapkv share the softmax rows: compute both reductions.
      auto both = internal::SnapKvImportanceBoth(p.window, p.pool, obs, keys);
      snap_.emplace(std::make_tuple(p.window, p.pool, false), std::move(both.first));
      snap_.emplace(std::make_tuple(p.window, p.pool, true), std::move(both.second));
      it = snap_.find(key);
    }
    return it->second;
  }

 private:
  const AttentionInput& in_;
  std::map<int64_t, internal::LineMass> lines_;
  std::map<std::pair<int64_t, int64_t>, internal::BlockMass> blocks_;
  std::map<std::tuple<int64_t, int64_t, bool>, std::vector<std::vector<double>>> snap_;
};

// The selection of `method` for typed parameters, from the shared statistics where the
// method has them, else the method's own selection step.
absl::StatusOr<SelectionResult> SelectShared(absl::string_view method, const MethodParams& typed,
                                             const AttentionInput& in, const TensorView& obs,
                                             Phase phase, StatsCache& cache) {
  if (const auto* vs = std::get_if<VerticalSlashParams>(&typed)) {
    return internal::VerticalSlashFrom(in, *vs, cache.Lines(std::min(vs->last_q, in.q.len)));
  }
  if (const auto* fp = std::get_if<FlexPrefillParams>(&typed); fp != nullptr && !fp->original) {
    return internal::FlexPrefillStudyFrom(in, *fp, cache.Lines(std::min(fp->last_q, in.q.len)));
  }
  if (const auto* xa = std::get_if<XAttentionParams>(&typed)) {
    if (xa->stride <= xa->block && xa->block % xa->stride == 0) {
      return internal::XAttentionFrom(in, *xa, cache.Blocks(xa->block, xa->stride));
    }
  }
  if (const auto* sk = std::get_if<SnapKvParams>(&typed);
      sk != nullptr && phase == Phase::kDecode) {
    const int64_t prompt = in.q_offset;
    const TensorView keys = in.k.Rows(0, prompt);
    if (obs.len >= 1 && obs.len <= prompt) {
      SF_ASSIGN_OR_RETURN(
          KeptTokens kept,
          internal::SnapKvFrom(*sk, cache.SnapImportance(*sk, obs, keys), obs, keys));
      std::vector<internal::HeadPattern> heads(in.q.heads);
      for (int64_t h = 0; h < in.q.heads; ++h) {
        heads[h].kept = kept.per_kv_head[h / in.group()];
        heads[h].fresh_from = prompt;
      }
      return SelectionResult{
          std::make_shared<internal::PatternSelection>(std::move(heads), in.q_offset),
          kept.estimation_flops};
    }
  }
  return phase == Phase::kPrefill ? PrefillSelect(method, typed, in)
                                  : DecodeSelect(method, typed, in, obs);
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

std::vector<absl::StatusOr<FidelityResult>> MeasureFidelityTable(
    const LayerQkv& qkv, const std::vector<FidelityRequest>& requests,
    const FidelityTableOptions& options) {
  const int64_t len = qkv.k.len;
  const Phase phase = options.phase;
  std::vector<absl::StatusOr<FidelityResult>> out;
  if (phase == Phase::kDecode && (options.decode_steps < 1 || options.decode_steps >= len)) {
    for (size_t i = 0; i < requests.size(); ++i) {
      out.push_back(absl::InvalidArgumentError(
          absl::StrCat("decode steps must lie in [1, ", len - 1, "], got ", options.decode_steps)));
    }
    return out;
  }
  DenseReference ref;  // phase and prompt only: the dense result comes from the pass
  ref.phase = phase;
  ref.prompt = phase == Phase::kDecode ? len - options.decode_steps : 0;
  const AttentionInput in = internal::PhaseInput(qkv, ref);
  const TensorView obs = internal::Observation(qkv, ref);
  StatsCache cache(in);

  // The last-queries statistics of vertical_slash and flexprefill's study variant, for
  // every last_q the requests use, share their softmax rows.
  std::vector<int64_t> last_qs;
  for (const FidelityRequest& rq : requests) {
    const MethodInfo* info = FindMethod(rq.method);
    if (info == nullptr || phase != Phase::kPrefill) continue;
    if (rq.method != "vertical_slash" && rq.method != "flexprefill") continue;
    auto variant = rq.params.find("variant");
    if (variant != rq.params.end() && variant->second == ParamValue(std::string("original"))) {
      continue;
    }
    int64_t last_q = std::atoll(FindParam(*info, "last_q")->default_value);
    auto given = rq.params.find("last_q");
    if (given != rq.params.end()) {
      if (!std::holds_alternative<int64_t>(given->second)) continue;
      last_q = std::get<int64_t>(given->second);
    }
    if (last_q >= 1) last_qs.push_back(std::min(last_q, in.q.len));
  }
  if (!last_qs.empty()) cache.PrefetchLines(last_qs);

  // 1. Calibrate and select every request.
  std::vector<Prepared> prep(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    const FidelityRequest& rq = requests[i];
    Prepared& pr = prep[i];
    const auto start = std::chrono::steady_clock::now();
    pr.status = [&]() -> absl::Status {
      const MethodInfo* info = FindMethod(rq.method);
      if (info == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("unknown attention method '", rq.method, "'"));
      }
      const bool fits =
          info->phase == MethodPhase::kBoth || IsDecodeMethod(*info) == (phase == Phase::kDecode);
      if (!fits) {
        return absl::InvalidArgumentError(
            absl::StrCat("method ", rq.method, " does not run in the ",
                         phase == Phase::kPrefill ? "prefill" : "decode", " phase"));
      }
      SF_ASSIGN_OR_RETURN(ParamMap params,
                          internal::CalibrateWith(rq.method, rq.params, rq.target_compression, qkv,
                                                  ref, [&](const MethodParams& t) {
                                                    return SelectShared(rq.method, t, in, obs,
                                                                        phase, cache);
                                                  }));
      SF_ASSIGN_OR_RETURN(MethodParams typed, ParseMethodParams(rq.method, params));
      SF_ASSIGN_OR_RETURN(SelectionResult sel,
                          SelectShared(rq.method, typed, in, obs, phase, cache));
      pr.result.method = rq.method;
      pr.result.phase = phase;
      pr.result.params = params;
      pr.result.target_compression = rq.target_compression;
      pr.result.estimation_flops = sel.estimation_flops;
      if (const auto* o = std::get_if<OracleTopKParams>(&typed)) {
        pr.oracle_k = o->top_k;
      } else if (std::holds_alternative<DenseParams>(typed)) {
        pr.dense = true;
      } else {
        pr.selection = std::move(sel.selection);
      }
      return absl::OkStatus();
    }();
    pr.seconds = Seconds(start);
  }

  // 2. One pass over (tile, head) units, heavy (late) tiles first.
  const int64_t hq = in.q.heads, lq = in.q.len, d = in.q.dim, lk = in.k.len;
  const int64_t dp = (d + 15) / 16 * 16;  // head dim padded for the vector kernels
  const int64_t ntiles = (lq + kTile - 1) / kTile, units = ntiles * hq;
  const size_t nreq = requests.size();
  const PackedKeys pk = PackKeys(in.k);
  // V padded to dp columns so that the kernels need no tail handling.
  std::vector<float> vpad(in.v.heads * lk * dp, 0.0f);
  for (int64_t h = 0; h < in.v.heads; ++h) {
    for (int64_t j = 0; j < lk; ++j) std::copy_n(in.v.Row(h, j), d, &vpad[(h * lk + j) * dp]);
  }
  struct Acc {
    double recall = 0, err2 = 0, pairs = 0, seconds = 0;
  };
  std::vector<Acc> acc(units * nreq);
  std::vector<double> norm2(units, 0.0), dense_seconds(units, 0.0);
  std::vector<int64_t> oracle_ks;
  for (const Prepared& pr : prep) {
    if (pr.status.ok() && pr.oracle_k > 0) oracle_ks.push_back(pr.oracle_k);
  }
  std::sort(oracle_ks.begin(), oracle_ks.end(), std::greater<int64_t>());
  oracle_ks.erase(std::unique(oracle_ks.begin(), oracle_ks.end()), oracle_ks.end());
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const double dscale = 1.0 / std::sqrt(static_cast<double>(d));

  ParallelFor(units, options.threads, [&](int64_t unit) {
    const int64_t t = ntiles - 1 - unit / hq, h = unit % hq, kvh = h / in.group();
    const int64_t r0 = t * kTile, rows = std::min(lq, r0 + kTile) - r0;
    const int64_t key_end = in.q_offset + r0 + rows;  // keys the tile's last row sees
    const int64_t nblocks = (key_end + kKeyBlock - 1) / kKeyBlock;
    const int64_t width = nblocks * kKeyBlock;
    const float* vh = &vpad[kvh * lk * dp];
    auto start = std::chrono::steady_clock::now();
    // Per-thread buffers: a unit at 16K needs 1 MB of scores, reused across units.
    thread_local std::vector<float> qt, s, raw;
    qt.assign(kTile * dp, 0.0f);
    s.resize(kTile * width);
    for (int64_t r = 0; r < rows; ++r) {
      const float* q = in.q.Row(h, r0 + r);
      for (int64_t x = 0; x < d; ++x) qt[r * dp + x] = q[x] * scale;
    }
    Scores(qt.data(), dp, rows, pk, kvh, nblocks, s.data(), width);
    if (!oracle_ks.empty()) raw.assign(s.begin(), s.begin() + rows * width);  // pre-softmax
    int64_t n[kTile];
    float m[kTile];
    double z[kTile];
    for (int64_t r = 0; r < rows; ++r) n[r] = in.q_offset + r0 + r + 1;
    SoftmaxRows(s.data(), width, rows, n, width, m, z);
    std::vector<float> o_dense(kTile * dp, 0.0f);
    DensePv(s.data(), width, rows, vh, dp, key_end, dp, o_dense.data());
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t x = 0; x < d; ++x) {
        o_dense[r * dp + x] = static_cast<float>(o_dense[r * dp + x] / z[r]);
        norm2[unit] += static_cast<double>(o_dense[r * dp + x]) * o_dense[r * dp + x];
      }
    }
    dense_seconds[unit] = Seconds(start);
    std::vector<float> scratch, scratch_tmp, o(kTile * dp);
    std::vector<std::vector<KeyRange>> ranges(kTile);
    std::vector<KeyRange> clipped;
    // Oracle thresholds per row, for every k (largest first): the k-th largest score.
    std::vector<std::vector<float>> kth(oracle_ks.size(), std::vector<float>(rows));
    if (!oracle_ks.empty()) {
      for (int64_t r = 0; r < rows; ++r) {
        scratch.assign(raw.begin() + r * width, raw.begin() + r * width + n[r]);
        scratch_tmp.resize(n[r]);
        int64_t prev = n[r];
        for (size_t x = 0; x < oracle_ks.size(); ++x) {
          const int64_t k = std::min(oracle_ks[x], n[r]);
          kth[x][r] = KthLargest(scratch.data(), prev, k, scratch_tmp.data());
          prev = k;
        }
      }
    }
    for (size_t c = 0; c < nreq; ++c) {
      const Prepared& pr = prep[c];
      if (!pr.status.ok() || pr.dense) continue;
      start = std::chrono::steady_clock::now();
      Acc& a = acc[unit * nreq + c];
      // The chosen keys of every row of the tile, as sorted ranges.
      int64_t count[kTile];
      for (int64_t r = 0; r < rows; ++r) {
        std::vector<KeyRange>& rg = ranges[r];
        if (pr.oracle_k > 0) {
          const int64_t k = std::min(pr.oracle_k, n[r]);
          const size_t x =
              std::find(oracle_ks.begin(), oracle_ks.end(), pr.oracle_k) - oracle_ks.begin();
          const float th = kth[x][r];
          const float* sr = raw.data() + r * width;
          int64_t ties = k;  // keys equal to the threshold that still fit, lowest first
          for (int64_t j = 0; j < n[r]; ++j) ties -= sr[j] > th ? 1 : 0;
          rg.clear();
          for (int64_t j = 0; j < n[r]; ++j) {
            if (sr[j] < th) continue;
            if (sr[j] == th && ties-- <= 0) continue;
            if (!rg.empty() && rg.back().end == j) {
              ++rg.back().end;
            } else {
              rg.push_back({j, j + 1});
            }
          }
        } else {
          pr.selection->Row(h, r0 + r, &rg);
        }
        count[r] = 0;
        for (const KeyRange& kr : rg) count[r] += kr.end - kr.begin;
        a.pairs += static_cast<double>(count[r]);
      }
      // Sparse outputs over key chunks, so that V rows stay in cache for the whole tile.
      std::fill(o.begin(), o.end(), 0.0f);
      double zs[kTile] = {};
      size_t cursor[kTile] = {};
      for (int64_t c0 = 0; c0 < key_end; c0 += kKeyChunk) {
        const int64_t c1 = std::min(key_end, c0 + kKeyChunk);
        for (int64_t r = 0; r < rows; ++r) {
          const std::vector<KeyRange>& rg = ranges[r];
          clipped.clear();
          for (size_t x = cursor[r]; x < rg.size() && rg[x].begin < c1; ++x) {
            clipped.push_back({std::max(rg[x].begin, c0), std::min(rg[x].end, c1)});
          }
          while (cursor[r] < rg.size() && rg[cursor[r]].end <= c1) ++cursor[r];
          if (clipped.empty()) continue;
          zs[r] += RangePv(clipped.data(), static_cast<int64_t>(clipped.size()),
                           s.data() + r * width, vh, dp, dp, &o[r * dp]);
        }
      }
      for (int64_t r = 0; r < rows; ++r) {
        if (count[r] == 0) {
          // An empty row outputs zeros: its error is |O_dense|^2.
          for (int64_t x = 0; x < d; ++x) a.err2 += std::pow(o_dense[r * dp + x], 2);
          continue;
        }
        if (zs[r] > 0) {
          a.recall += std::min(1.0, zs[r] / z[r]);
          for (int64_t x = 0; x < d; ++x) {
            const double diff = o[r * dp + x] / zs[r] - o_dense[r * dp + x];
            a.err2 += diff * diff;
          }
          continue;
        }
        // Every chosen key is below exp(-87) of the row's maximum: recompute in double
        // around the chosen keys' own maximum (recall is 0 to float precision).
        const float* q = in.q.Row(h, r0 + r);
        std::vector<double> sd, od(d, 0.0);
        std::vector<int64_t> keys;
        double mx = -INFINITY;
        for (const KeyRange& kr : ranges[r]) {
          for (int64_t j = kr.begin; j < kr.end; ++j) {
            keys.push_back(j);
            sd.push_back(internal::Dot(q, in.k.Row(kvh, j), d) * dscale);
            mx = std::max(mx, sd.back());
          }
        }
        double zd = 0;
        for (size_t x = 0; x < keys.size(); ++x) {
          const double e = std::exp(sd[x] - mx);
          zd += e;
          internal::Axpy(e, in.v.Row(kvh, keys[x]), od.data(), d);
        }
        for (int64_t x = 0; x < d; ++x) a.err2 += std::pow(od[x] / zd - o_dense[r * dp + x], 2);
      }
      a.seconds += Seconds(start);
    }
  });

  // 3. Per-head reductions.
  double dense_total = 0;
  for (double x : dense_seconds) dense_total += x;
  const double causal = hq * (2.0 * in.q_offset + lq + 1) * lq / 2.0;
  for (size_t c = 0; c < nreq; ++c) {
    Prepared& pr = prep[c];
    if (!pr.status.ok()) {
      out.push_back(pr.status);
      continue;
    }
    FidelityResult& f = pr.result;
    f.seconds = pr.seconds + (pr.dense ? dense_total : 0.0);
    double pairs = 0;
    for (int64_t h = 0; h < hq; ++h) {
      double recall = 0, err2 = 0, nrm = 0;
      for (int64_t t = 0; t < ntiles; ++t) {
        const int64_t unit = (ntiles - 1 - t) * hq + h;
        const Acc& a = acc[unit * nreq + c];
        recall += a.recall;
        err2 += a.err2;
        nrm += norm2[unit];
        pairs += a.pairs;
        f.seconds += a.seconds;
      }
      f.head_recall.push_back(pr.dense ? 1.0 : recall / lq);
      f.head_error.push_back(pr.dense || nrm <= 0 ? 0.0 : std::sqrt(err2 / nrm));
    }
    f.measured_compression = pr.dense ? 1.0 : causal / pairs;
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace sf::kernels
