#include "common/spec.h"

#include <filesystem>
#include <map>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/testing/model_fixture.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sf {
namespace {

using ::sf::testing::IsOk;
using ::sf::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::SizeIs;

class SpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = sf::testing::FreshTestDir();
    sf::testing::WriteModel(dir_ / "models/tiny");
    sf::testing::WriteModel(
        dir_ / "models/small",
        absl::StrReplaceAll(sf::testing::kTinyLlamaConfig,
                            {{"\"num_hidden_layers\": 2", "\"num_hidden_layers\": 4"}}),
        4000);
    options_.base_dir = dir_.string();
  }

  absl::StatusOr<SweepSpec> Parse(const std::string& yaml,
                                  std::vector<SpecError>* errors = nullptr) {
    return ParseSweepSpec(yaml, "sweep.yaml", options_, errors);
  }

  std::filesystem::path dir_;
  SpecOptions options_;
};

constexpr char kBasic[] = R"(name: basic
models:
  - {name: tiny, path: models/tiny}
  - {name: small, path: models/small, gpus: 1}
sequence_lengths: [512, 1024]
methods:
  - dense
  - {name: vertical_slash, compression: [2, 4]}
  - {name: snapkv, token_capacity: [64, 128]}
  - {name: streaming, phase: [prefill, decode], compression: 2}
tasks:
  - {name: ruler_niah, samples: 5}
  - {name: story_retrieval, samples: 3, num_queries: [4, 8]}
generation: {max_new_tokens: 32, greedy: true}
seeds: [1, 2]
)";

TEST_F(SpecTest, Basic_ParsesAxes) {
  SF_ASSERT_OK_AND_ASSIGN(SweepSpec spec, Parse(kBasic));
  EXPECT_EQ(spec.name, "basic");
  ASSERT_THAT(spec.models, SizeIs(2));
  EXPECT_EQ(spec.models[1].ref.gpus, 1);
  EXPECT_EQ(spec.models[0].ref.path, (dir_ / "models/tiny").lexically_normal().string());
  EXPECT_EQ(spec.models[0].ref.identity.size(), 64u);
  EXPECT_NE(spec.models[0].ref.identity, spec.models[1].ref.identity);
  EXPECT_EQ(spec.sequence_lengths, (std::vector<int64_t>{512, 1024}));
  // dense 1 + vertical_slash 2 + snapkv 2 + streaming 2 phases x 1 compression.
  EXPECT_THAT(spec.methods, SizeIs(7));
  // ruler_niah 1 + story_retrieval 2 num_queries values.
  EXPECT_THAT(spec.tasks, SizeIs(3));
  EXPECT_EQ(spec.seeds, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(spec.generation.max_new_tokens, 32);
  EXPECT_EQ(spec.grid_size, 2 * 2 * 7 * 3 * 2);
  ASSERT_THAT(spec.axes, SizeIs(5));
  EXPECT_EQ(spec.axes[2].name, "methods");
  EXPECT_THAT(spec.axes[2].detail, HasSubstr("vertical_slash 2 (compression 2)"));
}

TEST_F(SpecTest, Expand_CountsKeysAndPairsPhases) {
  SF_ASSERT_OK_AND_ASSIGN(SweepSpec spec, Parse(kBasic));
  ExpandStats stats;
  SF_ASSERT_OK_AND_ASSIGN(std::vector<JobSpec> jobs, ExpandSweep(spec, &stats));
  EXPECT_EQ(stats.grid_size, spec.grid_size);
  EXPECT_EQ(stats.duplicates, 0);
  EXPECT_THAT(jobs, SizeIs(spec.grid_size));
  std::set<std::string> keys;
  for (const JobSpec& job : jobs) {
    keys.insert(job.key);
    EXPECT_GT(job.memory_bytes, 0);
    EXPECT_GT(job.cost, 0);
    // Exactly one phase is non-dense unless the method runs in both or is dense.
    if (job.prefill.name == "vertical_slash") {
      EXPECT_EQ(job.decode.name, "dense");
    }
    if (job.decode.name == "snapkv") {
      EXPECT_EQ(job.prefill.name, "dense");
    }
  }
  EXPECT_THAT(keys, SizeIs(jobs.size()));
}

TEST_F(SpecTest, Expand_MapsCompressionPerLength) {
  SF_ASSERT_OK_AND_ASSIGN(SweepSpec spec, Parse(kBasic));
  SF_ASSERT_OK_AND_ASSIGN(std::vector<JobSpec> jobs, ExpandSweep(spec));
  std::map<std::pair<int64_t, double>, int64_t> verticals;
  for (const JobSpec& job : jobs) {
    if (job.prefill.name != "vertical_slash") continue;
    ASSERT_TRUE(job.prefill.compression.has_value());
    const int64_t v = std::get<int64_t>(job.prefill.params.at("verticals"));
    const int64_t s = std::get<int64_t>(job.prefill.params.at("slashes"));
    EXPECT_EQ(v + s, job.sequence_length / static_cast<int64_t>(*job.prefill.compression));
    verticals[{job.sequence_length, *job.prefill.compression}] = v;
    // Defaults are filled in.
    EXPECT_EQ(std::get<int64_t>(job.prefill.params.at("last_q")), 256);
  }
  EXPECT_THAT(verticals, SizeIs(4));
  EXPECT_GT((verticals[{1024, 2.0}]), (verticals[{512, 2.0}]));
  EXPECT_GT((verticals[{512, 2.0}]), (verticals[{512, 4.0}]));
}

// A compression that leaves SnapKV fewer rows than it always keeps would fail every
// sample of the job: the expansion refuses it, at the method's line.
TEST_F(SpecTest, Expand_SnapKvCapacityBelowItsKeptRows_IsRefusedAtItsLine) {
  SF_ASSERT_OK_AND_ASSIGN(SweepSpec spec, Parse(R"(models: [{name: tiny, path: models/tiny}]
sequence_lengths: [1024]
methods:
  - dense
  - {name: snapkv, compression: [2, 8]}
tasks: [ruler_niah]
)"));
  absl::StatusOr<std::vector<JobSpec>> jobs = ExpandSweep(spec);
  ASSERT_FALSE(jobs.ok());
  EXPECT_EQ(jobs.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(jobs.status().message(),
              AllOf(HasSubstr("sweep.yaml:5:5: method snapkv"), HasSubstr("compression 8"),
                    HasSubstr("keeps 128 rows"), HasSubstr("keep_first + keep_last (132)"),
                    HasSubstr("lower keep_last")));
  // With the kept rows scaled down it expands.
  SF_ASSERT_OK_AND_ASSIGN(SweepSpec fixed, Parse(R"(models: [{name: tiny, path: models/tiny}]
sequence_lengths: [1024]
methods:
  - dense
  - {name: snapkv, compression: [2, 8], keep_last: 64}
tasks: [ruler_niah]
)"));
  SF_ASSERT_OK_AND_ASSIGN(std::vector<JobSpec> ok, ExpandSweep(fixed));
  EXPECT_THAT(ok, SizeIs(3));
}

TEST_F(SpecTest, Expand_StreamingPhaseListGivesBothPairings) {
  SF_ASSERT_OK_AND_ASSIGN(SweepSpec spec, Parse(kBasic));
  SF_ASSERT_OK_AND_ASSIGN(std::vector<JobSpec> jobs, ExpandSweep(spec));
  int prefill = 0, decode = 0;
  for (const JobSpec& job : jobs) {
    if (job.prefill.name == "streaming") {
      EXPECT_EQ(job.decode.name, "dense");
      ++prefill;
    }
    if (job.decode.name == "streaming") {
      EXPECT_EQ(job.prefill.name, "dense");
      EXPECT_EQ(std::get<int64_t>(job.decode.params.at("window")) +
                    std::get<int64_t>(job.decode.params.at("sink")),
                job.sequence_length / 2);
      ++decode;
    }
  }
  EXPECT_EQ(prefill, decode);
  EXPECT_GT(prefill, 0);
}

TEST_F(SpecTest, Expand_DuplicateEntriesAreDeduplicated) {
  const std::string yaml = R"(name: dup
models: [{name: tiny, path: models/tiny}, {name: tiny-again, path: models/tiny}]
sequence_lengths: [512]
methods: [dense, {name: snapkv, token_capacity: 64}, {name: snapkv, window: 256, token_capacity: 64}]
tasks: [ruler_niah]
)";
  SF_ASSERT_OK_AND_ASSIGN(SweepSpec spec, Parse(yaml));
  EXPECT_EQ(spec.grid_size, 2 * 3);
  ExpandStats stats;
  SF_ASSERT_OK_AND_ASSIGN(std::vector<JobSpec> jobs, ExpandSweep(spec, &stats));
  // The same folder under two names is one model; window 256 is snapkv's default.
  EXPECT_THAT(jobs, SizeIs(2));
  EXPECT_EQ(stats.duplicates, 4);
  EXPECT_EQ(jobs[0].model.name, "tiny");
}

TEST_F(SpecTest, Expand_LongerAndDenserJobsCostMore) {
  SF_ASSERT_OK_AND_ASSIGN(SweepSpec spec, Parse(kBasic));
  SF_ASSERT_OK_AND_ASSIGN(std::vector<JobSpec> jobs, ExpandSweep(spec));
  auto find = [&](const std::string& model, int64_t length, const std::string& prefill,
                  std::optional<double> c) -> const JobSpec& {
    for (const JobSpec& j : jobs) {
      if (j.model.name == model && j.sequence_length == length && j.prefill.name == prefill &&
          j.prefill.compression == c && j.decode.name == "dense" && j.task.name == "ruler_niah")
        return j;
    }
    ADD_FAILURE() << "no job " << model << " " << length << " " << prefill;
    return jobs.front();
  };
  EXPECT_GT(find("tiny", 1024, "dense", std::nullopt).cost,
            find("tiny", 512, "dense", std::nullopt).cost);
  EXPECT_GT(find("small", 512, "dense", std::nullopt).cost,
            find("tiny", 512, "dense", std::nullopt).cost);
  EXPECT_GT(find("tiny", 1024, "dense", std::nullopt).cost,
            find("tiny", 1024, "vertical_slash", 4.0).cost);
  EXPECT_GT(find("tiny", 1024, "dense", std::nullopt).memory_bytes,
            find("tiny", 512, "dense", std::nullopt).memory_bytes);
  EXPECT_GT(find("small", 512, "dense", std::nullopt).memory_bytes,
            find("tiny", 512, "dense", std::nullopt).memory_bytes);
  // The GPU memory profile: per layer, longer sequences hold more KV cache.
  const JobSpec short_job = find("tiny", 512, "dense", std::nullopt);
  const JobSpec long_job = find("tiny", 1024, "dense", std::nullopt);
  ASSERT_TRUE(short_job.gpu_memory.has_value());
  ASSERT_TRUE(long_job.gpu_memory.has_value());
  EXPECT_EQ(short_job.gpu_memory->layers, 2);
  EXPECT_TRUE(short_job.gpu_memory->Validate().ok());
  EXPECT_GE(long_job.gpu_memory->per_layer_bytes, short_job.gpu_memory->per_layer_bytes);
  EXPECT_GT(short_job.gpu_memory->first_stage_bytes, 0);
}

TEST_F(SpecTest, Defaults_SeedZeroSamplesHundredNameFromFile) {
  const std::string yaml = R"(models: [{name: tiny, path: models/tiny}]
sequence_lengths: 512
methods: [dense]
tasks: [ruler_niah]
)";
  SF_ASSERT_OK_AND_ASSIGN(SweepSpec spec, Parse(yaml));
  EXPECT_EQ(spec.name, "sweep");
  EXPECT_EQ(spec.seeds, (std::vector<uint64_t>{0}));
  ASSERT_THAT(spec.tasks, SizeIs(1));
  EXPECT_EQ(spec.tasks[0].samples, 100);
  EXPECT_EQ(spec.generation.max_new_tokens, 0);
}

TEST_F(SpecTest, Errors_AllCollectedWithLocations) {
  const std::string yaml = R"(name: bad
models: [{name: tiny, path: models/tiny}]
sequence_lenghts: [512]
methods:
  - vertical_slsh
  - {name: snapkv, compression: [0.5, 2]}
tasks: [{name: ruler_niah, samples: [1, 2]}]
)";
  std::vector<SpecError> errors;
  absl::StatusOr<SweepSpec> spec = Parse(yaml, &errors);
  EXPECT_THAT(spec,
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("sweep.yaml:3:1: error: unknown key 'sequence_lenghts'"),
                             HasSubstr("did you mean 'sequence_lengths'?"),
                             HasSubstr("sweep.yaml:5:5: error: unknown method 'vertical_slsh'; "
                                       "did you mean 'vertical_slash'?"),
                             HasSubstr("sweep.yaml:6:34: error: method snapkv compression 0.5 "
                                       "is below 1"),
                             HasSubstr("sweep.yaml:7:37: error: a list where a number is "
                                       "expected: task ruler_niah samples"))));
  // Plus "missing sequence_lengths" since the misspelt key does not count.
  EXPECT_THAT(errors, SizeIs(5));
  for (const SpecError& e : errors) {
    EXPECT_EQ(e.file, "sweep.yaml");
    EXPECT_GE(e.line, 1);
    EXPECT_GE(e.column, 1);
  }
}

// Task parameters are checked against the task's declarations when the spec is
// validated, not on the worker.
TEST_F(SpecTest, TaskParameters_ValidatedWithDidYouMean) {
  const std::string yaml = R"(name: params
models: [{name: tiny, path: models/tiny}]
sequence_lengths: [512]
methods: [dense]
tasks:
  - {name: ruler_vt, num_hop: 2}
  - {name: ruler_niah, num_queries: [4, 0]}
  - {name: ruler_cwe, num_common_words: many}
)";
  std::vector<SpecError> errors;
  EXPECT_THAT(
      Parse(yaml, &errors),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("sweep.yaml:6:22: error: task ruler_vt: unknown parameter "
                               "'num_hop'; known: "),
                     HasSubstr("did you mean 'num_hops'?"),
                     HasSubstr("sweep.yaml:7:41: error: task ruler_niah: parameter "
                               "'num_queries' = 0 is out of range [1, 64]"),
                     HasSubstr("sweep.yaml:8:41: error: task ruler_cwe: parameter "
                               "'num_common_words' must be an integer, got a string (many)"))));
  EXPECT_THAT(errors, SizeIs(3));
  EXPECT_THAT(Parse(R"(models: [{name: tiny, path: models/tiny}]
sequence_lengths: [512]
methods: [dense]
tasks: [{name: ruler_vt, num_hops: [2, 3]}]
)"),
              IsOk());
}

TEST_F(SpecTest, Overrides_ReplaceKeysAndAreRecorded) {
  absl::StatusOr<std::string> text = ApplySpecOverrides(
      kBasic, {"lengths=[4096]", "tasks=[ruler_niah]", "generation.max_new_tokens=8"});
  ASSERT_THAT(text, IsOk());
  EXPECT_THAT(*text, HasSubstr("# with overrides (sfctl --set): lengths=[4096] "
                               "tasks=[ruler_niah] generation.max_new_tokens=8\n"));
  absl::StatusOr<SweepSpec> spec = Parse(*text);
  ASSERT_THAT(spec, IsOk());
  EXPECT_THAT(spec->sequence_lengths, ::testing::ElementsAre(4096));
  ASSERT_THAT(spec->tasks, SizeIs(1));
  EXPECT_EQ(spec->tasks[0].name, "ruler_niah");
  EXPECT_EQ(spec->generation.max_new_tokens, 8);
  EXPECT_THAT(spec->models, SizeIs(2));  // untouched keys stay

  EXPECT_EQ(*ApplySpecOverrides(kBasic, {}), kBasic);
  EXPECT_THAT(ApplySpecOverrides(kBasic, {"sequence_lenghts=[1]"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("unknown key 'sequence_lenghts'; did you mean "
                                 "'sequence_lengths'?")));
  EXPECT_THAT(ApplySpecOverrides(kBasic, {"seed"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("write key=value")));
  EXPECT_THAT(ApplySpecOverrides(kBasic, {"tasks=[unclosed"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is not YAML")));
}

TEST_F(SpecTest, GridOverLimit_ReportsSizeAndAxes) {
  options_.max_jobs = 10;
  const std::string yaml = R"(models: [{name: tiny, path: models/tiny}]
sequence_lengths: [512, 1024, 2048]
methods: [dense, {name: snapkv, token_capacity: [16, 32, 64]}]
tasks: [ruler_niah]
)";
  EXPECT_THAT(Parse(yaml), StatusIs(absl::StatusCode::kInvalidArgument,
                                    HasSubstr("the grid has 12 jobs (models 1 x sequence_lengths 3 "
                                              "x methods 4 x tasks 1 x seeds 1), more than the "
                                              "limit of 10")));
  options_.max_jobs = 12;
  EXPECT_TRUE(Parse(yaml).ok());
}

TEST_F(SpecTest, HugeEntry_RefusedBeforeExpanding) {
  std::string values;
  for (int i = 1; i <= 200; ++i) absl::StrAppend(&values, i == 1 ? "" : ", ", i);
  const std::string yaml = absl::StrCat(
      "models: [{name: tiny, path: models/tiny}]\nsequence_lengths: [", values,
      "]\nmethods: [{name: snapkv, window: [", values, "], pool: [", values, "], token_capacity: [",
      values, "]}]\ntasks: [ruler_niah]\nseeds: [", values, "]\n");
  EXPECT_THAT(Parse(yaml),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("method snapkv expands to 8000000 variants, more than the limit "
                                 "of 100000 jobs")));
}

TEST_F(SpecTest, GridProductOverLimit_Refused) {
  std::string values;
  for (int i = 1; i <= 300; ++i) absl::StrAppend(&values, i == 1 ? "" : ", ", i);
  const std::string yaml =
      absl::StrCat("models: [{name: tiny, path: models/tiny}]\nsequence_lengths: [", values,
                   "]\nmethods: [{name: snapkv, token_capacity: [", values,
                   "]}]\ntasks: [ruler_niah]\nseeds: [", values, "]\n");
  EXPECT_THAT(Parse(yaml), StatusIs(absl::StatusCode::kInvalidArgument,
                                    HasSubstr("the grid has 27000000 jobs")));
}

TEST_F(SpecTest, LoadSweepSpec_MissingFileIsNotFound) {
  EXPECT_THAT(LoadSweepSpec((dir_ / "nope.yaml").string(), options_),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope.yaml")));
}

TEST_F(SpecTest, SweepNameTheCoordinatorRefuses_ErrorAtItsLine) {
  std::string yaml = kBasic;
  yaml.replace(0, std::string("name: basic").size(), "name: my sweep!");
  auto spec = Parse(yaml);
  EXPECT_THAT(spec.status(), StatusIs(absl::StatusCode::kInvalidArgument,
                                      AllOf(HasSubstr("sweep.yaml:1:7: error: name 'my sweep!'"),
                                            HasSubstr("[A-Za-z0-9._-]"))));
  yaml.replace(0, std::string("name: my sweep!").size(), "name: " + std::string(129, 'n'));
  EXPECT_THAT(Parse(yaml).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("sweep.yaml:1:7")));
}

TEST_F(SpecTest, SecondYamlDocument_RefusedAtItsLine) {
  const std::string yaml = std::string(kBasic) + "---\nname: other\n";
  EXPECT_THAT(Parse(yaml).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("sweep.yaml:17:1"), HasSubstr("one YAML document"))));
  // A document marker before the only document is fine.
  EXPECT_THAT(Parse(std::string("---\n") + kBasic).status(), IsOk());
}

TEST(EditDistance, ClassicCases) {
  EXPECT_EQ(EditDistance("", ""), 0);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3);
  EXPECT_EQ(EditDistance("snapkv", "snapkv"), 0);
  EXPECT_EQ(EditDistance("abc", ""), 3);
}

}  // namespace
}  // namespace sf
