// Times the analysis on a study-sized synthetic sweep (Qwen2.5 7B-72B x 9 tasks x 4
// lengths x dense + 7 methods x 4 compressions, 100 samples a point) and prints a table:
//   analysis_bench [out_dir]   (default /tmp/sf_analysis_bench)
#include <cmath>
#include <cstdio>
#include <random>
#include <string>

#include "analysis/glm.h"
#include "analysis/report.h"
#include "common/clock.h"

namespace {

sf::analysis::AnalysisInput StudySweep() {
  using sf::analysis::ResultPoint;
  sf::analysis::AnalysisInput in;
  const std::pair<const char*, sf::analysis::ModelShape> models[] = {
      {"qwen2.5-7b", sf::analysis::Qwen25_7B()},
      {"qwen2.5-14b", sf::analysis::Qwen25_14B()},
      {"qwen2.5-32b", sf::analysis::Qwen25_32B()},
      {"qwen2.5-72b", sf::analysis::Qwen25_72B()}};
  const char* tasks[] = {"ruler_niah",      "ruler_vt",       "ruler_cwe",
                         "qa_squad",        "qa_quality",     "qa_toefl",
                         "story_retrieval", "story_multihop", "story_filtering"};
  const std::pair<const char*, const char*> methods[] = {
      {"block_sparse", "prefill"}, {"vertical_slash", "prefill"}, {"flexprefill", "prefill"},
      {"xattention", "prefill"},   {"snapkv", "decode"},          {"ada_snapkv", "decode"},
      {"quest", "decode"}};
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  int task_index = 0;
  for (const char* task : tasks) {
    const double delta = 0.3 * (task_index++ % 5) - 0.6;
    for (const auto& [model, shape] : models) {
      for (int64_t len : {16384, 32768, 65536, 131072}) {
        auto make = [&](const char* method, const char* phase, double comp) {
          ResultPoint p;
          p.model = model;
          p.shape = shape;
          p.task = task;
          p.seq_len = len;
          p.method = method;
          p.phase = phase;
          p.nominal_compression = comp;
          p.decode_tokens = 64;
          const double prob = sf::analysis::Sigmoid(
              -18.0 + delta + std::log(sf::analysis::TotalParams(shape)) -
              0.3 * std::log(static_cast<double>(len)) - 0.5 * std::log(comp));
          for (int64_t i = 0; i < 100; ++i) p.samples.push_back({i, unif(rng) < prob ? 1.0 : 0.0});
          in.points.push_back(std::move(p));
        };
        make("dense", "", 1.0);
        for (const auto& [method, phase] : methods) {
          for (double comp : {2.0, 5.0, 10.0, 20.0}) make(method, phase, comp);
        }
      }
    }
  }
  return in;
}

double Seconds(absl::Time start) { return absl::ToDoubleSeconds(sf::RealClock().Now() - start); }

}  // namespace

int main(int argc, char** argv) {
  const std::string out = argc > 1 ? argv[1] : "/tmp/sf_analysis_bench";
  absl::Time t0 = sf::RealClock().Now();
  const sf::analysis::AnalysisInput input = StudySweep();
  const double gen = Seconds(t0);
  size_t samples = 0;
  for (const auto& p : input.points) samples += p.samples.size();

  t0 = sf::RealClock().Now();
  absl::StatusOr<sf::analysis::AnalysisResults> r = sf::analysis::Analyze(input, {});
  const double analyze = Seconds(t0);
  if (!r.ok()) {
    std::fprintf(stderr, "Analyze: %s\n", std::string(r.status().message()).c_str());
    return 1;
  }
  sf::analysis::ReportOptions no_plots;
  no_plots.render_plots = false;
  t0 = sf::RealClock().Now();
  absl::Status s = sf::analysis::WriteReport(input, no_plots, out + "/scripts_only");
  const double scripts = Seconds(t0);
  t0 = sf::RealClock().Now();
  if (s.ok()) s = sf::analysis::WriteReport(input, {}, out + "/full");
  const double full = Seconds(t0);
  if (!s.ok()) {
    std::fprintf(stderr, "WriteReport: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  std::printf("%-44s %12s\n", "step", "seconds");
  std::printf("%-44s %12.3f\n", "generate sweep", gen);
  std::printf("%-44s %12.3f\n", "Analyze (tests, frontiers, 2 fits + 6 refits)", analyze);
  std::printf("%-44s %12.3f\n", "WriteReport, scripts and tables only", scripts);
  std::printf("%-44s %12.3f\n", "WriteReport with gnuplot PNG+SVG", full);
  std::printf("points %zu, samples %zu, curves %zu, preserved rows %zu, missing %zu\n",
              input.points.size(), samples, r->curves.size(), r->preserved.size(),
              r->missing.size());
  for (const auto& f : r->fits) {
    if (!f.fit) continue;
    std::printf("%s fit: %d points, %d IRLS iterations, c_lnC %.4f (+- %.4f)\n", f.phase.c_str(),
                f.fit->n_points, f.fit->iterations, f.fit->Coefficient("c_lnC"),
                f.fit->standard_errors.back());
  }
  return 0;
}
