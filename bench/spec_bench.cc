// Times the sweep spec path for a 100,000-job grid: parse + validate, expansion into jobs
// (budget mapping, keys, estimates, dedup), and key hashing alone. Prints a table.
//   build/bench/spec_bench [--jobs-scale N]   (N seeds: grid = 10,000 x N; default 10)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/job_key.h"
#include "common/spec.h"

namespace {

namespace fs = std::filesystem;

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

std::string Range(int first, int count, int step) {
  std::vector<std::string> v;
  for (int i = 0; i < count; ++i) v.push_back(absl::StrCat(first + i * step));
  return absl::StrCat("[", absl::StrJoin(v, ", "), "]");
}

std::string MakeSpec(int seeds) {
  // 2 models x 5 lengths x 100 method variants x 10 task variants x seeds.
  const std::string comp = Range(2, 20, 1);
  return absl::StrCat(
      "name: bench\nmodels:\n  - {name: a, path: model-a}\n  - {name: b, path: model-b}\n",
      "sequence_lengths: [16384, 32768, 65536, 98304, 131072]\nmethods:\n  - dense\n",
      "  - {name: vertical_slash, compression: ", comp, "}\n",
      "  - {name: block_sparse, compression: ", comp, "}\n",
      "  - {name: snapkv, compression: ", comp, "}\n", "  - {name: ada_snapkv, compression: ", comp,
      "}\n", "  - {name: quest, compression: ", Range(2, 19, 1), "}\n",
      "tasks:\n  - {name: ruler_niah, samples: 100, num_queries: ", Range(1, 5, 1), "}\n",
      "  - {name: story_retrieval, samples: 100, num_queries: ", Range(4, 5, 4), "}\n",
      "seeds: ", Range(1, seeds, 1), "\n");
}

void WriteModel(const fs::path& dir, int layers) {
  fs::create_directories(dir);
  std::ofstream(dir / "config.json")
      << "{\"architectures\": [\"Qwen2ForCausalLM\"], \"hidden_size\": 3584, "
         "\"intermediate_size\": 18944, \"num_hidden_layers\": "
      << layers
      << ", \"num_attention_heads\": 28, \"num_key_value_heads\": 4, \"vocab_size\": 152064,"
         " \"torch_dtype\": \"bfloat16\"}";
}

}  // namespace

int main(int argc, char** argv) {
  int seeds = 10;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--jobs-scale") seeds = std::max(1, std::atoi(argv[i + 1]));
  }
  const fs::path dir = fs::temp_directory_path() / "sf_spec_bench";
  fs::remove_all(dir);
  WriteModel(dir / "model-a", 28);
  WriteModel(dir / "model-b", 48);
  const std::string yaml = MakeSpec(seeds);
  sf::SpecOptions options;
  options.base_dir = dir.string();
  options.max_jobs = 10000 * seeds;

  constexpr int kRuns = 3;
  std::vector<double> parse_s, expand_s, key_s;
  size_t jobs_count = 0;
  for (int run = 0; run < kRuns; ++run) {
    auto t0 = std::chrono::steady_clock::now();
    absl::StatusOr<sf::SweepSpec> spec = sf::ParseSweepSpec(yaml, "bench.yaml", options);
    parse_s.push_back(Seconds(t0));
    if (!spec.ok()) {
      std::fprintf(stderr, "spec_bench: %s\n", std::string(spec.status().message()).c_str());
      return 1;
    }
    t0 = std::chrono::steady_clock::now();
    absl::StatusOr<std::vector<sf::JobSpec>> jobs = sf::ExpandSweep(*spec);
    expand_s.push_back(Seconds(t0));
    if (!jobs.ok()) {
      std::fprintf(stderr, "spec_bench: %s\n", std::string(jobs.status().message()).c_str());
      return 1;
    }
    jobs_count = jobs->size();
    t0 = std::chrono::steady_clock::now();
    size_t checksum = 0;
    for (const sf::JobSpec& job : *jobs) checksum += sf::JobKey(job)[0];
    key_s.push_back(Seconds(t0));
    if (checksum == 0) std::puts("");
  }
  fs::remove_all(dir);
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::printf("sweep spec bench: %zu jobs (grid %d), median of %d runs\n", jobs_count,
              10000 * seeds, kRuns);
  std::printf("%-34s %10s %14s\n", "phase", "ms", "jobs/s");
  auto row = [&](const char* name, double s) {
    std::printf("%-34s %10.1f %14.0f\n", name, s * 1e3, static_cast<double>(jobs_count) / s);
  };
  row("parse + validate", median(parse_s));
  row("expand (map, key, estimate, dedup)", median(expand_s));
  row("key hashing alone (separate pass)", median(key_s));
  row("total (parse + expand)", median(parse_s) + median(expand_s));
  return 0;
}
