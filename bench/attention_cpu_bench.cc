// Times the CPU reference of each prefill and decode method on structured Q/K/V and
// prints a table: wall time, pairs computed, effective GFLOP/s and estimation cost.
//   attention_cpu_bench [length=4096] [heads=8] [kv_heads=2] [head_dim=64] [compression=5]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "kernels/cpu/fidelity.h"
#include "methods/registry.h"

namespace {

int64_t Arg(int argc, char** argv, int i, int64_t fallback) {
  return argc > i ? std::atoll(argv[i]) : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sf;
  using namespace sf::kernels;
  const GeneratorOptions opts{Arg(argc, argv, 1, 4096), Arg(argc, argv, 2, 8),
                              Arg(argc, argv, 3, 2), Arg(argc, argv, 4, 64), 1};
  const double compression = argc > 5 ? std::atof(argv[5]) : 5.0;
  absl::StatusOr<LayerQkv> qkv = GenerateStructuredQkv(opts);
  if (!qkv.ok()) {
    std::fprintf(stderr, "%s\n", std::string(qkv.status().message()).c_str());
    return 2;
  }
  std::printf("L=%lld Hq=%lld Hkv=%lld D=%lld compression=%.3g\n",
              static_cast<long long>(opts.length), static_cast<long long>(opts.heads),
              static_cast<long long>(opts.kv_heads), static_cast<long long>(opts.head_dim),
              compression);
  std::printf("%-8s %-14s %9s %9s %12s %10s %10s\n", "phase", "method", "measured", "seconds",
              "Mpairs", "GFLOP/s", "est_GFLOP");
  for (Phase phase : {Phase::kPrefill, Phase::kDecode}) {
    const DenseReference ref = ComputeDenseReference(*qkv, phase, 64);
    for (const MethodInfo& m : AllMethods()) {
      if (!m.phases.Has(phase)) continue;
      const double c = m.budget_rule == BudgetRule::kNone ? 1.0 : compression;
      absl::StatusOr<ParamMap> p = CalibrateBudget(m.name, {}, c, *qkv, ref);
      if (!p.ok()) continue;
      absl::StatusOr<FidelityResult> f = MeasureFidelity(m.name, *p, *qkv, ref);
      if (!f.ok()) {
        std::printf("%-8s %-14s n/a: %s\n", PhaseName(phase), m.name,
                    std::string(f.status().message()).c_str());
        continue;
      }
      const double pairs = ref.result.pairs_causal / f->measured_compression;
      // 4 flops per pair and head dim: q.k and p.v, one multiply-add each.
      const double gflops = 4.0 * opts.head_dim * pairs / f->seconds / 1e9;
      std::printf("%-8s %-14s %9.2f %9.3f %12.1f %10.2f %10.3f\n", PhaseName(phase), m.name,
                  f->measured_compression, f->seconds, pairs / 1e6, gflops,
                  f->estimation_flops / 1e9);
    }
  }
  return 0;
}
