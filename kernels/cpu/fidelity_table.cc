// The fast fidelity table (MeasureFidelityTable): statistics shared between the
// requests of one method, and one float32 pass over (head, tile of rows) that computes
// dense attention once and every request's sparse attention over its selected pairs.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "kernels/cpu/cpu_method.h"
#include "kernels/cpu/fidelity.h"
#include "kernels/cpu/fidelity_internal.h"
#include "kernels/cpu/selection_internal.h"
#include "kernels/cpu/shared_stats.h"
#include "methods/registry.h"

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

// One request after calibration and selection.
struct Prepared {
  absl::Status status;
  FidelityResult result;
  std::shared_ptr<const Selection> selection;  // null for dense rows and exact top-k rows
  int64_t oracle_k = 0;                        // exact top-k: keys per row
  bool dense = false;
  double seconds = 0;
};

// The selection of `method` for typed parameters, from the shared statistics where the
// method has them, else the method's own selection step.
absl::StatusOr<SelectionResult> SelectShared(absl::string_view method, const MethodParams& typed,
                                             const AttentionInput& in, const TensorView& obs,
                                             Phase phase, SharedStats& stats) {
  if (auto shared = typed.method().SelectShared(in, obs, phase, stats)) return *std::move(shared);
  return phase == Phase::kPrefill ? PrefillSelect(method, typed, in)
                                  : DecodeSelect(method, typed, in, obs);
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// The last-queries line mass every prefill request reads, for every last_q at once
// (they share their softmax rows).
void PrefetchLineMass(const std::vector<FidelityRequest>& requests, Phase phase,
                      const AttentionInput& in, SharedStats& stats) {
  if (phase != Phase::kPrefill) return;
  std::vector<int64_t> last_qs;
  for (const FidelityRequest& rq : requests) {
    const MethodInfo* info = FindMethod(rq.method);
    const CpuMethodEntry* entry = FindCpuMethod(rq.method);
    if (info == nullptr || entry == nullptr || entry->line_mass_rows == nullptr) continue;
    const std::optional<int64_t> last_q = entry->line_mass_rows(ParamReader(*info, rq.params));
    if (last_q.has_value() && *last_q >= 1) last_qs.push_back(std::min(*last_q, in.q.len));
  }
  if (!last_qs.empty()) stats.PrefetchLines(last_qs);
}

// Calibrates one request and builds its selection.
absl::Status PrepareRequest(const FidelityRequest& rq, const LayerQkv& qkv,
                            const DenseReference& ref, const AttentionInput& in,
                            const TensorView& obs, SharedStats& stats, Prepared* pr) {
  const Phase phase = ref.phase;
  const MethodInfo* info = FindMethod(rq.method);
  if (info == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("unknown attention method '", rq.method, "'"));
  }
  if (!info->phases.Has(phase)) {
    return absl::InvalidArgumentError(
        absl::StrCat("method ", rq.method, " does not run in the ", PhaseName(phase), " phase"));
  }
  SF_ASSIGN_OR_RETURN(ParamMap params,
                      internal::CalibrateWith(rq.method, rq.params, rq.target_compression, qkv, ref,
                                              [&](const MethodParams& t) {
                                                return SelectShared(rq.method, t, in, obs, phase,
                                                                    stats);
                                              }));
  SF_ASSIGN_OR_RETURN(MethodParams typed, ParseMethodParams(rq.method, params));
  SF_ASSIGN_OR_RETURN(SelectionResult sel, SelectShared(rq.method, typed, in, obs, phase, stats));
  pr->result.method = rq.method;
  pr->result.phase = phase;
  pr->result.params = params;
  pr->result.target_compression = rq.target_compression;
  pr->result.estimation_flops = sel.estimation_flops;
  if (typed.method().exact_top_k() > 0) {
    pr->oracle_k = typed.method().exact_top_k();
  } else if (typed.method().attends_every_key()) {
    pr->dense = true;
  } else {
    pr->selection = std::move(sel.selection);
  }
  return absl::OkStatus();
}

// What one (tile, head) unit adds to one request.
struct Acc {
  double recall = 0, err2 = 0, pairs = 0, seconds = 0;
};

// The pass over (tile of kTile query rows, head) units: scores, softmax and dense
// outputs once per unit, then every request's sparse output and recall from the same
// probabilities over its selected ranges only.
class TablePass {
 public:
  TablePass(const AttentionInput& in, const std::vector<Prepared>& prep)
      : in_(in),
        prep_(prep),
        hq_(in.q.heads),
        lq_(in.q.len),
        d_(in.q.dim),
        lk_(in.k.len),
        dp_((d_ + 15) / 16 * 16),
        ntiles_((lq_ + kTile - 1) / kTile),
        nreq_(prep.size()),
        pk_(PackKeys(in.k)),
        vpad_(in.v.heads * lk_ * dp_, 0.0f),
        acc_(units() * nreq_),
        norm2_(units(), 0.0),
        dense_seconds_(units(), 0.0),
        scale_(1.0f / std::sqrt(static_cast<float>(d_))),
        dscale_(1.0 / std::sqrt(static_cast<double>(d_))) {
    // V padded to dp columns so that the kernels need no tail handling.
    for (int64_t h = 0; h < in.v.heads; ++h) {
      for (int64_t j = 0; j < lk_; ++j)
        std::copy_n(in.v.Row(h, j), d_, &vpad_[(h * lk_ + j) * dp_]);
    }
    for (const Prepared& pr : prep_) {
      if (pr.status.ok() && pr.oracle_k > 0) oracle_ks_.push_back(pr.oracle_k);
    }
    std::sort(oracle_ks_.begin(), oracle_ks_.end(), std::greater<int64_t>());
    oracle_ks_.erase(std::unique(oracle_ks_.begin(), oracle_ks_.end()), oracle_ks_.end());
  }

  int64_t units() const { return ntiles_ * hq_; }
  int64_t ntiles() const { return ntiles_; }
  const Acc& acc(int64_t unit, size_t request) const { return acc_[unit * nreq_ + request]; }
  double norm2(int64_t unit) const { return norm2_[unit]; }
  double dense_seconds() const {
    double total = 0;
    for (double x : dense_seconds_) total += x;
    return total;
  }

  // Unit `unit`: tile ntiles - 1 - unit / Hq (heavy, late tiles first), head unit % Hq.
  void Run(int64_t unit);

 private:
  // Per-thread buffers of one unit: a unit at 16K needs 1 MB of scores, reused.
  struct Tile {
    int64_t r0 = 0, rows = 0, key_end = 0, width = 0;
    int64_t n[kTile];  // keys each row sees
    float m[kTile];
    double z[kTile];
    std::vector<float> o_dense;
    std::vector<std::vector<float>> kth;  // per oracle k (largest first), per row
  };
  void ExactTopKRanges(const Tile& t, int64_t k, int64_t r, std::vector<KeyRange>* rg) const;
  void Sparse(int64_t unit, const Tile& t, size_t c);

  const AttentionInput& in_;
  const std::vector<Prepared>& prep_;
  const int64_t hq_, lq_, d_, lk_, dp_, ntiles_;
  const size_t nreq_;
  const PackedKeys pk_;
  std::vector<float> vpad_;
  std::vector<Acc> acc_;
  std::vector<double> norm2_, dense_seconds_;
  std::vector<int64_t> oracle_ks_;
  const float scale_;
  const double dscale_;
  static thread_local std::vector<float> s_, raw_;
};

thread_local std::vector<float> TablePass::s_;
thread_local std::vector<float> TablePass::raw_;

void TablePass::Run(int64_t unit) {
  const int64_t t = ntiles_ - 1 - unit / hq_, h = unit % hq_, kvh = h / in_.group();
  Tile tile;
  tile.r0 = t * kTile;
  tile.rows = std::min(lq_, tile.r0 + kTile) - tile.r0;
  const int64_t rows = tile.rows;
  tile.key_end = in_.q_offset + tile.r0 + rows;  // keys the tile's last row sees
  const int64_t nblocks = (tile.key_end + kKeyBlock - 1) / kKeyBlock;
  tile.width = nblocks * kKeyBlock;
  const int64_t width = tile.width;
  const float* vh = &vpad_[kvh * lk_ * dp_];
  const auto start = std::chrono::steady_clock::now();
  thread_local std::vector<float> qt;
  qt.assign(kTile * dp_, 0.0f);
  s_.resize(kTile * width);
  for (int64_t r = 0; r < rows; ++r) {
    const float* q = in_.q.Row(h, tile.r0 + r);
    for (int64_t x = 0; x < d_; ++x) qt[r * dp_ + x] = q[x] * scale_;
  }
  Scores(qt.data(), dp_, rows, pk_, kvh, nblocks, s_.data(), width);
  if (!oracle_ks_.empty()) raw_.assign(s_.begin(), s_.begin() + rows * width);  // pre-softmax
  for (int64_t r = 0; r < rows; ++r) tile.n[r] = in_.q_offset + tile.r0 + r + 1;
  SoftmaxRows(s_.data(), width, rows, tile.n, width, tile.m, tile.z);
  tile.o_dense.assign(kTile * dp_, 0.0f);
  DensePv(s_.data(), width, rows, vh, dp_, tile.key_end, dp_, tile.o_dense.data());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t x = 0; x < d_; ++x) {
      tile.o_dense[r * dp_ + x] = static_cast<float>(tile.o_dense[r * dp_ + x] / tile.z[r]);
      norm2_[unit] += static_cast<double>(tile.o_dense[r * dp_ + x]) * tile.o_dense[r * dp_ + x];
    }
  }
  dense_seconds_[unit] = Seconds(start);
  // Oracle thresholds per row, for every k (largest first): the k-th largest score.
  tile.kth.assign(oracle_ks_.size(), std::vector<float>(rows));
  if (!oracle_ks_.empty()) {
    std::vector<float> scratch, scratch_tmp;
    for (int64_t r = 0; r < rows; ++r) {
      scratch.assign(raw_.begin() + r * width, raw_.begin() + r * width + tile.n[r]);
      scratch_tmp.resize(tile.n[r]);
      int64_t prev = tile.n[r];
      for (size_t x = 0; x < oracle_ks_.size(); ++x) {
        const int64_t k = std::min(oracle_ks_[x], tile.n[r]);
        tile.kth[x][r] = KthLargest(scratch.data(), prev, k, scratch_tmp.data());
        prev = k;
      }
    }
  }
  for (size_t c = 0; c < nreq_; ++c) {
    const Prepared& pr = prep_[c];
    if (!pr.status.ok() || pr.dense) continue;
    Sparse(unit, tile, c);
  }
}

// The keys of row r whose raw score reaches the row's k-th largest (ties to the lower
// position), as sorted ranges.
void TablePass::ExactTopKRanges(const Tile& t, int64_t oracle_k, int64_t r,
                                std::vector<KeyRange>* rg) const {
  const int64_t k = std::min(oracle_k, t.n[r]);
  const size_t x = std::find(oracle_ks_.begin(), oracle_ks_.end(), oracle_k) - oracle_ks_.begin();
  const float th = t.kth[x][r];
  const float* sr = raw_.data() + r * t.width;
  int64_t ties = k;  // keys equal to the threshold that still fit, lowest first
  for (int64_t j = 0; j < t.n[r]; ++j) ties -= sr[j] > th ? 1 : 0;
  rg->clear();
  for (int64_t j = 0; j < t.n[r]; ++j) {
    if (sr[j] < th) continue;
    if (sr[j] == th && ties-- <= 0) continue;
    if (!rg->empty() && rg->back().end == j) {
      ++rg->back().end;
    } else {
      rg->push_back({j, j + 1});
    }
  }
}

void TablePass::Sparse(int64_t unit, const Tile& t, size_t c) {
  const Prepared& pr = prep_[c];
  const int64_t h = unit % hq_, kvh = h / in_.group(), rows = t.rows;
  const float* vh = &vpad_[kvh * lk_ * dp_];
  const auto start = std::chrono::steady_clock::now();
  Acc& a = acc_[unit * nreq_ + c];
  thread_local std::vector<std::vector<KeyRange>> ranges;
  thread_local std::vector<KeyRange> clipped;
  thread_local std::vector<float> o;
  ranges.resize(kTile);
  o.resize(kTile * dp_);
  // The chosen keys of every row of the tile, as sorted ranges.
  int64_t count[kTile];
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<KeyRange>& rg = ranges[r];
    if (pr.oracle_k > 0) {
      ExactTopKRanges(t, pr.oracle_k, r, &rg);
    } else {
      pr.selection->Row(h, t.r0 + r, &rg);
    }
    count[r] = 0;
    for (const KeyRange& kr : rg) count[r] += kr.end - kr.begin;
    a.pairs += static_cast<double>(count[r]);
  }
  // Sparse outputs over key chunks, so that V rows stay in cache for the whole tile.
  std::fill(o.begin(), o.end(), 0.0f);
  double zs[kTile] = {};
  size_t cursor[kTile] = {};
  for (int64_t c0 = 0; c0 < t.key_end; c0 += kKeyChunk) {
    const int64_t c1 = std::min(t.key_end, c0 + kKeyChunk);
    for (int64_t r = 0; r < rows; ++r) {
      const std::vector<KeyRange>& rg = ranges[r];
      clipped.clear();
      for (size_t x = cursor[r]; x < rg.size() && rg[x].begin < c1; ++x) {
        clipped.push_back({std::max(rg[x].begin, c0), std::min(rg[x].end, c1)});
      }
      while (cursor[r] < rg.size() && rg[cursor[r]].end <= c1) ++cursor[r];
      if (clipped.empty()) continue;
      zs[r] += RangePv(clipped.data(), static_cast<int64_t>(clipped.size()),
                       s_.data() + r * t.width, vh, dp_, dp_, &o[r * dp_]);
    }
  }
  for (int64_t r = 0; r < rows; ++r) {
    if (count[r] == 0) {
      // An empty row outputs zeros: its error is |O_dense|^2.
      for (int64_t x = 0; x < d_; ++x) a.err2 += std::pow(t.o_dense[r * dp_ + x], 2);
      continue;
    }
    if (zs[r] > 0) {
      a.recall += std::min(1.0, zs[r] / t.z[r]);
      for (int64_t x = 0; x < d_; ++x) {
        const double diff = o[r * dp_ + x] / zs[r] - t.o_dense[r * dp_ + x];
        a.err2 += diff * diff;
      }
      continue;
    }
    // Every chosen key is below exp(-87) of the row's maximum: recompute in double
    // around the chosen keys' own maximum (recall is 0 to float precision).
    const float* q = in_.q.Row(h, t.r0 + r);
    std::vector<double> sd, od(d_, 0.0);
    std::vector<int64_t> keys;
    double mx = -INFINITY;
    for (const KeyRange& kr : ranges[r]) {
      for (int64_t j = kr.begin; j < kr.end; ++j) {
        keys.push_back(j);
        sd.push_back(internal::Dot(q, in_.k.Row(kvh, j), d_) * dscale_);
        mx = std::max(mx, sd.back());
      }
    }
    double zd = 0;
    for (size_t x = 0; x < keys.size(); ++x) {
      const double e = std::exp(sd[x] - mx);
      zd += e;
      internal::Axpy(e, in_.v.Row(kvh, keys[x]), od.data(), d_);
    }
    for (int64_t x = 0; x < d_; ++x) a.err2 += std::pow(od[x] / zd - t.o_dense[r * dp_ + x], 2);
  }
  a.seconds += Seconds(start);
}

// Per-head reductions of the pass into each request's result (or its error).
std::vector<absl::StatusOr<FidelityResult>> Reduce(std::vector<Prepared>& prep,
                                                   const TablePass& pass,
                                                   const AttentionInput& in) {
  std::vector<absl::StatusOr<FidelityResult>> out;
  const double dense_total = pass.dense_seconds();
  const int64_t hq = in.q.heads, lq = in.q.len, ntiles = pass.ntiles();
  const double causal = hq * (2.0 * in.q_offset + lq + 1) * lq / 2.0;
  for (size_t c = 0; c < prep.size(); ++c) {
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
        const Acc& a = pass.acc(unit, c);
        recall += a.recall;
        err2 += a.err2;
        nrm += pass.norm2(unit);
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

}  // namespace

std::vector<absl::StatusOr<FidelityResult>> MeasureFidelityTable(
    const LayerQkv& qkv, const std::vector<FidelityRequest>& requests,
    const FidelityTableOptions& options) {
  const int64_t len = qkv.k.len;
  const Phase phase = options.phase;
  if (phase == Phase::kDecode && (options.decode_steps < 1 || options.decode_steps >= len)) {
    std::vector<absl::StatusOr<FidelityResult>> out;
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
  SharedStats stats(in);
  PrefetchLineMass(requests, phase, in, stats);

  // 1. Calibrate and select every request.
  std::vector<Prepared> prep(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto start = std::chrono::steady_clock::now();
    prep[i].status = PrepareRequest(requests[i], qkv, ref, in, obs, stats, &prep[i]);
    prep[i].seconds = Seconds(start);
  }
  // 2. One pass over (tile, head) units, heavy (late) tiles first.
  TablePass pass(in, prep);
  ParallelFor(pass.units(), options.threads, [&](int64_t unit) { pass.Run(unit); });
  // 3. Per-head reductions.
  return Reduce(prep, pass, in);
}

}  // namespace sf::kernels
