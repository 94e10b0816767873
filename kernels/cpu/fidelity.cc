#include "kernels/cpu/fidelity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <numeric>
#include <random>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"
#include "kernels/cpu/cpu_method.h"
#include "kernels/cpu/fidelity_internal.h"
#include "methods/registry.h"

namespace sf::kernels {
namespace {

constexpr char kDumpMagic[8] = {'S', 'F', 'Q', 'K', 'V', '0', '0', '1'};

// Random orthonormal D x D basis (Gram-Schmidt on Gaussian vectors), row-major.
std::vector<double> RandomBasis(int64_t d, std::mt19937_64& rng) {
  std::normal_distribution<double> n(0.0, 1.0);
  std::vector<double> b(d * d);
  for (int64_t r = 0; r < d; ++r) {
    double* v = &b[r * d];
    for (;;) {
      for (int64_t x = 0; x < d; ++x) v[x] = n(rng);
      for (int64_t p = 0; p < r; ++p) {
        const double* u = &b[p * d];
        double dot = 0;
        for (int64_t x = 0; x < d; ++x) dot += v[x] * u[x];
        for (int64_t x = 0; x < d; ++x) v[x] -= dot * u[x];
      }
      double norm = 0;
      for (int64_t x = 0; x < d; ++x) norm += v[x] * v[x];
      norm = std::sqrt(norm);
      if (norm > 1e-6) {
        for (int64_t x = 0; x < d; ++x) v[x] /= norm;
        break;
      }
    }
  }
  return b;
}

// Writes basis^T * coords (coords in the basis) into out.
void Rotate(const std::vector<double>& basis, const std::vector<double>& coords, float* out) {
  const int64_t d = static_cast<int64_t>(coords.size());
  for (int64_t x = 0; x < d; ++x) out[x] = 0;
  for (int64_t r = 0; r < d; ++r) {
    if (coords[r] == 0) continue;
    const double* u = &basis[r * d];
    for (int64_t x = 0; x < d; ++x) out[x] += static_cast<float>(coords[r] * u[x]);
  }
}

}  // namespace

absl::StatusOr<LayerQkv> GenerateStructuredQkv(const GeneratorOptions& o) {
  if (o.length < 1 || o.heads < 1 || o.kv_heads < 1 || o.heads % o.kv_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("generator: length, heads and kv_heads must be positive and heads (", o.heads,
                     ") a multiple of kv_heads (", o.kv_heads, ")"));
  }
  if (o.head_dim < 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("generator: head_dim must be at least 64, got ", o.head_dim));
  }
  const int64_t l = o.length, d = o.head_dim, group = o.heads / o.kv_heads;
  const double sqrt_d = std::sqrt(static_cast<double>(d));
  // Coordinates in each KV head's (random) basis: [0, 2R) position code, then sink,
  // stripe, needle directions; the free rest is split between diagonal codes and noise.
  constexpr int64_t kFreqs = 12, kNeedles = 4, kStripes = 24;
  const int64_t c_sink = 2 * kFreqs, c_stripe = c_sink + 1, c_needle = c_stripe + 1;
  const int64_t c_code = c_needle + kNeedles, n_code = (d - c_code) / 2;
  const int64_t c_noise = c_code + n_code, n_noise = d - c_noise;
  // Logit (q . k / sqrt(D)) of each structure, and the standard deviation of noise.
  const double kSink = 10, kLocal = 8, kStripe = 7, kSlash = 10, kNeedle = 14, kNoise = 0.7;
  const double kWindow = 24;  // tokens: width of the local window's Gaussian kernel
  auto amp = [&](double logit) { return std::sqrt(logit * sqrt_d); };
  const double noise = std::sqrt(kNoise * sqrt_d / std::sqrt(static_cast<double>(n_noise)));

  LayerQkv out{Tensor(o.heads, l, d), Tensor(o.kv_heads, l, d), Tensor(o.kv_heads, l, d)};
  std::mt19937_64 rng(o.seed * 0x9E3779B97F4A7C15ull + 7);
  std::normal_distribution<double> n01(0.0, 1.0);
  // Local window: random frequencies ~ N(0, 1/w^2) make E[q_i . k_j] a Gaussian in i - j.
  std::vector<double> omega(kFreqs);
  for (double& w : omega) w = n01(rng) / kWindow;
  // Diagonal codes: one random unit vector per position.
  std::vector<double> codes(l * n_code);
  for (int64_t p = 0; p < l; ++p) {
    double norm = 0;
    for (int64_t x = 0; x < n_code; ++x) norm += std::pow(codes[p * n_code + x] = n01(rng), 2);
    for (int64_t x = 0; x < n_code; ++x) codes[p * n_code + x] /= std::sqrt(norm);
  }
  std::vector<double> coords(d);
  for (int64_t kvh = 0; kvh < o.kv_heads; ++kvh) {
    const std::vector<double> basis = RandomBasis(d, rng);
    std::vector<char> stripe(l, 0);
    for (int64_t s = 0; s < std::min(kStripes, l); ++s) {
      stripe[std::uniform_int_distribution<int64_t>(0, l - 1)(rng)] = 1;
    }
    std::vector<int64_t> needle(kNeedles);
    for (int64_t& p : needle) p = std::uniform_int_distribution<int64_t>(0, l * 7 / 8)(rng);
    for (int64_t j = 0; j < l; ++j) {
      std::fill(coords.begin(), coords.end(), 0.0);
      for (int64_t r = 0; r < kFreqs; ++r) {
        coords[2 * r] = std::cos(omega[r] * j);
        coords[2 * r + 1] = std::sin(omega[r] * j);
      }
      if (j < 4) coords[c_sink] = amp(kSink);
      if (stripe[j]) coords[c_stripe] = amp(kStripe);
      for (int64_t n = 0; n < kNeedles; ++n) {
        if (needle[n] == j) coords[c_needle + n] = amp(kNeedle);
      }
      for (int64_t x = 0; x < n_code; ++x) coords[c_code + x] = amp(kSlash) * codes[j * n_code + x];
      for (int64_t x = 0; x < n_noise; ++x) coords[c_noise + x] = noise * n01(rng);
      Rotate(basis, coords, out.k.Row(kvh, j));
      float* v = out.v.Row(kvh, j);
      for (int64_t x = 0; x < d; ++x) v[x] = static_cast<float>(n01(rng));
    }
    for (int64_t g = 0; g < group; ++g) {
      const int64_t h = kvh * group + g, kind = h % 4;
      const int64_t offset = 64 + 97 * (h + 1) % std::max<int64_t>(l / 4, 1);
      const double local = kind == 0 ? kLocal : 0.75 * kLocal;
      for (int64_t i = 0; i < l; ++i) {
        std::fill(coords.begin(), coords.end(), 0.0);
        for (int64_t r = 0; r < kFreqs; ++r) {
          const double a = local * sqrt_d / kFreqs;
          coords[2 * r] = a * std::cos(omega[r] * i);
          coords[2 * r + 1] = a * std::sin(omega[r] * i);
        }
        coords[c_sink] = amp(kSink) * (kind == 0 ? 1.0 : 0.8);
        if (kind == 1) coords[c_stripe] = amp(kStripe);
        if (kind == 3 && i >= l - l / 8) coords[c_needle + (i % kNeedles)] = amp(kNeedle);
        if (kind == 2 && i >= offset) {
          for (int64_t x = 0; x < n_code; ++x) {
            coords[c_code + x] = amp(kSlash) * codes[(i - offset) * n_code + x];
          }
        }
        for (int64_t x = 0; x < n_noise; ++x) coords[c_noise + x] = noise * n01(rng);
        Rotate(basis, coords, out.q.Row(h, i));
      }
    }
  }
  return out;
}

absl::Status WriteQkvDump(const std::string& path, const LayerQkv& qkv) {
  std::ofstream f(path, std::ios::binary);
  if (!f) return absl::InvalidArgumentError(absl::StrCat("cannot write ", path));
  f.write(kDumpMagic, sizeof(kDumpMagic));
  const int64_t header[4] = {qkv.q.heads, qkv.k.heads, qkv.k.len, qkv.q.dim};
  f.write(reinterpret_cast<const char*>(header), sizeof(header));
  for (const Tensor* t : {&qkv.q, &qkv.k, &qkv.v}) {
    f.write(reinterpret_cast<const char*>(t->data.data()),
            static_cast<std::streamsize>(t->data.size() * sizeof(float)));
  }
  f.close();
  if (!f) return absl::InternalError(absl::StrCat("writing ", path, " failed"));
  return absl::OkStatus();
}

absl::StatusOr<LayerQkv> ReadQkvDump(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return absl::NotFoundError(absl::StrCat("cannot open Q/K/V dump ", path));
  char magic[8];
  int64_t h[4];
  if (!f.read(magic, 8) || std::memcmp(magic, kDumpMagic, 8) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a Q/K/V dump (expected magic SFQKV001; see docs/methods.md)"));
  }
  if (!f.read(reinterpret_cast<char*>(h), sizeof(h))) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": truncated header"));
  }
  const int64_t hq = h[0], hkv = h[1], l = h[2], d = h[3];
  if (hq < 1 || hkv < 1 || hq % hkv != 0 || l < 1 || d < 1 || l > (int64_t{1} << 24) || d > 1024 ||
      hq > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": bad header Hq=", hq, " Hkv=", hkv, " L=", l, " D=", d));
  }
  LayerQkv qkv{Tensor(hq, l, d), Tensor(hkv, l, d), Tensor(hkv, l, d)};
  for (Tensor* t : {&qkv.q, &qkv.k, &qkv.v}) {
    if (!f.read(reinterpret_cast<char*>(t->data.data()),
                static_cast<std::streamsize>(t->data.size() * sizeof(float)))) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": truncated data (header says Hq=", hq,
                                                     " Hkv=", hkv, " L=", l, " D=", d, ")"));
    }
  }
  for (const Tensor* t : {&qkv.q, &qkv.k, &qkv.v}) {
    for (float x : t->data) {
      if (!std::isfinite(x))
        return absl::InvalidArgumentError(absl::StrCat(path, ": non-finite value"));
    }
  }
  return qkv;
}

double FidelityResult::mean_recall() const {
  return head_recall.empty()
             ? 0
             : std::accumulate(head_recall.begin(), head_recall.end(), 0.0) / head_recall.size();
}
double FidelityResult::min_recall() const {
  return head_recall.empty() ? 0 : *std::min_element(head_recall.begin(), head_recall.end());
}
double FidelityResult::mean_error() const {
  return head_error.empty()
             ? 0
             : std::accumulate(head_error.begin(), head_error.end(), 0.0) / head_error.size();
}
double FidelityResult::max_error() const {
  return head_error.empty() ? 0 : *std::max_element(head_error.begin(), head_error.end());
}

namespace internal {

AttentionInput PhaseInput(const LayerQkv& qkv, const DenseReference& ref) {
  const int64_t begin = ref.phase == Phase::kDecode ? ref.prompt : 0;
  return {qkv.q.View().Rows(begin, qkv.q.len - begin), qkv.k.View(), qkv.v.View(), begin};
}

TensorView Observation(const LayerQkv& qkv, const DenseReference& ref) {
  return qkv.q.View().Rows(0, ref.prompt);
}

}  // namespace internal

using internal::Observation;
using internal::PhaseInput;

DenseReference ComputeDenseReference(const LayerQkv& qkv, Phase phase, int64_t decode_steps) {
  DenseReference ref;
  ref.phase = phase;
  ref.prompt = phase == Phase::kDecode ? qkv.k.len - decode_steps : 0;
  const char* dense = BaselineMethod().name;
  absl::StatusOr<MethodParams> params = ParseMethodParams(dense, {});
  SF_CHECK(params.ok()) << params.status();
  absl::StatusOr<AttentionResult> r = PrefillAttention(dense, *params, PhaseInput(qkv, ref));
  SF_CHECK(r.ok()) << r.status();
  ref.result = *std::move(r);
  return ref;
}

absl::StatusOr<FidelityResult> MeasureFidelity(absl::string_view method, const ParamMap& params,
                                               const LayerQkv& qkv,
                                               const DenseReference& reference) {
  SF_ASSIGN_OR_RETURN(MethodParams typed, ParseMethodParams(method, params));
  const AttentionInput in = PhaseInput(qkv, reference);
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<AttentionResult> run =
      reference.phase == Phase::kPrefill
          ? PrefillAttention(method, typed, in)
          : DecodeAttention(method, typed, in, Observation(qkv, reference));
  SF_RETURN_IF_ERROR(run.status());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const AttentionResult& r = *run;
  const AttentionResult& dense = reference.result;
  FidelityResult f;
  f.method = std::string(method);
  f.phase = reference.phase;
  f.params = params;
  f.measured_compression = r.compression();
  f.estimation_flops = r.estimation_flops;
  f.seconds = seconds;
  const int64_t hq = in.q.heads, lq = in.q.len, d = in.q.dim;
  for (int64_t h = 0; h < hq; ++h) {
    double recall = 0, err = 0, norm = 0;
    for (int64_t i = 0; i < lq; ++i) {
      // Dense mass on the selected keys = Z_selected / Z_dense = exp(lse_s - lse_d).
      recall += std::exp(std::min(0.0, r.row_lse[h * lq + i] - dense.row_lse[h * lq + i]));
      const float* a = r.output.Row(h, i);
      const float* b = dense.output.Row(h, i);
      for (int64_t x = 0; x < d; ++x) {
        err += (static_cast<double>(a[x]) - b[x]) * (static_cast<double>(a[x]) - b[x]);
        norm += static_cast<double>(b[x]) * b[x];
      }
    }
    f.head_recall.push_back(recall / lq);
    f.head_error.push_back(norm > 0 ? std::sqrt(err / norm) : 0.0);
  }
  return f;
}

absl::StatusOr<ParamMap> CalibrateClosedForm(const Calibration& c, int64_t seq_len) {
  return ParamsForCompression(c.method.name, c.params, c.compression, seq_len, c.phase);
}

double MeasuredCompression(const Calibration& c, const Selection& selection) {
  const AttentionInput& in = c.input;
  const double causal = in.q.heads * (2.0 * in.q_offset + in.q.len + 1) * in.q.len / 2.0;
  return causal / SelectedPairs(selection, in);
}

absl::StatusOr<ParamMap> CalibrateMassThreshold(const Calibration& c, const char* param) {
  if (c.phase == Phase::kDecode) {
    return absl::InvalidArgumentError(
        absl::StrCat("method ", c.method.name, " is a prefill method"));
  }
  ParamMap p = c.params;
  p[param] = 1.0;
  if (c.compression <= 1.0) return p;
  // Compression falls as the mass threshold grows: bisect on it.
  double lo = 0.0, hi = 1.0, best = 1.0, best_gap = INFINITY;
  for (int it = 0; it < 12; ++it) {
    const double mid = 0.5 * (lo + hi);
    p[param] = mid;
    SF_ASSIGN_OR_RETURN(MethodParams typed, ParseMethodParams(c.method.name, p));
    SF_ASSIGN_OR_RETURN(SelectionResult s, c.select(typed));
    const double measured = MeasuredCompression(c, *s.selection);
    const double gap = std::abs(std::log(measured / c.compression));
    if (gap < best_gap) {
      best_gap = gap;
      best = mid;
    }
    if (measured > c.compression) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  p[param] = best;
  return p;
}

namespace internal {

absl::StatusOr<ParamMap> CalibrateWith(absl::string_view method, const ParamMap& params,
                                       double compression, const LayerQkv& qkv,
                                       const DenseReference& reference, const SelectFn& select) {
  if (!(compression >= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("compression must be >= 1 (1 = dense), got ", compression));
  }
  const MethodInfo* info = FindMethod(method);
  const CpuMethodEntry* entry = FindCpuMethod(method);
  if (info == nullptr || entry == nullptr || entry->calibrate == nullptr) {
    // The closed form at the layer's length (unknown methods get their error there).
    return ParamsForCompression(method, params, compression, qkv.k.len, reference.phase);
  }
  const AttentionInput in = PhaseInput(qkv, reference);
  const Calibration c{*info,           params,           compression, qkv.k.len,
                      reference.phase, reference.prompt, in,          select};
  return entry->calibrate(c);
}

}  // namespace internal

absl::StatusOr<ParamMap> CalibrateBudget(absl::string_view method, const ParamMap& params,
                                         double compression, const LayerQkv& qkv,
                                         const DenseReference& reference) {
  const AttentionInput in = PhaseInput(qkv, reference);
  return internal::CalibrateWith(
      method, params, compression, qkv, reference,
      [&](const MethodParams& typed) { return PrefillSelect(method, typed, in); });
}

}  // namespace sf::kernels
