// A trained zoo model (models/zoo/, docs/zoo.md) on one task with the CPU engine: its
// dense score must be the figure its model card reports. models/zoo/<name>/scores.json
// (tools/zoo/collect_scores.py writes it from the dense sweep the cards come from) names
// that sweep's spec and, for each row, the job's key; the row marked "ci" is rerun here as
// exactly that job (same spec expansion, same key), and its mean must also appear in the
// card (README.md).
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "common/spec.h"
#include "common/testing/spec_corpus.h"
#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "worker/engine_evaluator.h"

namespace sf::worker {
namespace {

std::string ReadText(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

struct CiRow {
  std::string spec;  // relative to the repository root
  std::string key;   // the job key's first 12 hex digits, as sfctl's results print it
  double mean = 0;
  int64_t n = 0;
};

// The row of `scores` marked "ci"; an empty key when there is none.
CiRow FindCiRow(const nlohmann::json& scores) {
  CiRow row;
  row.spec = scores.value("spec", "");
  for (const nlohmann::json& r : scores.value("rows", nlohmann::json::array())) {
    if (!r.value("ci", false)) continue;
    row.key = r.at("key").get<std::string>();
    row.mean = r.at("mean").get<double>();
    row.n = r.at("n").get<int64_t>();
  }
  return row;
}

TEST(ZooScore, LargestModel_DenseScoreMatchesItsCard) {
  const std::filesystem::path root = sf::testing::SourceDir();
  const std::filesystem::path dir = root / "models/zoo/zoo-l";
  const nlohmann::json scores = nlohmann::json::parse(ReadText(dir / "scores.json"), nullptr,
                                                      /*allow_exceptions=*/false);
  ASSERT_FALSE(scores.is_discarded()) << dir / "scores.json"
                                      << " is missing or not JSON";
  const CiRow row = FindCiRow(scores);
  ASSERT_FALSE(row.key.empty()) << dir / "scores.json"
                                << " has no row marked \"ci\"";

  SpecOptions options;
  options.base_dir = root.string();
  SF_ASSERT_OK_AND_ASSIGN(SweepSpec spec, LoadSweepSpec((root / row.spec).string(), options));
  SF_ASSERT_OK_AND_ASSIGN(std::vector<JobSpec> jobs, ExpandSweep(spec));
  const JobSpec* job = nullptr;
  for (const JobSpec& j : jobs) {
    if (j.key.starts_with(row.key)) job = &j;
  }
  ASSERT_NE(job, nullptr) << row.spec << " has no job with key " << row.key
                          << ": the spec or the model changed since the card was written "
                          << "(tools/zoo/collect_scores.py makes scores.json again)";
  ASSERT_EQ(job->prefill.name, "dense");
  ASSERT_EQ(job->decode.name, "dense");

  EngineEvaluatorOptions engine_options;
  engine_options.num_threads = 2;
  EngineEvaluator evaluator(engine_options);
  std::vector<double> sample_scores;
  CancelFlag never;
  absl::StatusOr<EvalSummary> summary = evaluator.Run(
      *job, {},
      [&](const SampleOutcome& s) {
        sample_scores.push_back(s.score);
        return absl::OkStatus();
      },
      never);
  ASSERT_TRUE(summary.ok()) << summary.status();
  ASSERT_EQ(static_cast<int64_t>(sample_scores.size()), row.n);
  double mean = 0;
  for (double s : sample_scores) mean += s;
  mean /= static_cast<double>(sample_scores.size());
  std::printf("zoo-l %s at %lld: mean %.4f over %zu samples, card %.4f\n", job->task.name.c_str(),
              static_cast<long long>(job->sequence_length), mean, sample_scores.size(), row.mean);
  // Greedy decoding in float32 is deterministic on one machine; another CPU's GEMM
  // kernels may round differently and flip a near-tie token, so allow one sample.
  EXPECT_NEAR(mean, row.mean, 1.0 / static_cast<double>(row.n) + 1e-9)
      << job->task.name << " at " << job->sequence_length << " on zoo-l";

  const std::string card = ReadText(dir / "README.md");
  EXPECT_TRUE(absl::StrContains(card, absl::StrFormat("%.3f (n=%d)", row.mean, row.n)))
      << dir / "README.md"
      << " does not report " << row.mean << " for " << job->task.name << " at "
      << job->sequence_length << " (tools/zoo/write_card.py --scores writes it)";
}

}  // namespace
}  // namespace sf::worker
