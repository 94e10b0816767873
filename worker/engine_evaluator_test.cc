#include "worker/engine_evaluator.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "common/model_cost.h"
#include "common/qwen25_shapes.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/model/testing/real_tokenizers.h"
#include "worker/model/tiny_model.h"

namespace sf::worker {
namespace {

namespace fs = std::filesystem;

// ruler_niah's fixed parts alone take ~620 Llama 3 tokens, so 512 cannot fit.
constexpr int64_t kLength = 1024;

std::string* model_dir = nullptr;

void RemoveModelDir() {
  std::error_code ec;
  fs::remove_all(*model_dir, ec);
}

// One tiny random Llama with the real Llama 3 tokenizer, written once per binary.
const std::string& TinyModelDir() {
  static const std::string* dir = [] {
    model_dir = new std::string(sf::testing::FreshTestDir("tiny_model").string());
    model::TinyModelOptions options;
    options.vocab_size = 0;  // the tokenizer's
    options.hidden_size = 32;
    options.intermediate_size = 64;
    options.num_heads = 4;
    options.num_kv_heads = 2;
    options.tie_word_embeddings = true;
    options.tokenizer_json = sf::testing::RealTokenizerPath("llama3");
    std::atexit(RemoveModelDir);
    absl::Status written = model::WriteTinyModel(*model_dir, options);
    EXPECT_TRUE(written.ok()) << written;
    return model_dir;
  }();
  return *dir;
}

JobSpec MakeJob(const std::string& prefill, ParamMap prefill_params, const std::string& decode,
                ParamMap decode_params) {
  JobSpec job;
  job.model.name = "tiny-llama";
  job.model.path = TinyModelDir();
  job.sequence_length = kLength;
  job.prefill.name = prefill;
  job.prefill.params = std::move(prefill_params);
  job.decode.name = decode;
  job.decode.params = std::move(decode_params);
  job.task.name = "ruler_niah";
  job.task.samples = 2;
  job.seed = 7;
  job.generation.max_new_tokens = 8;
  job.key = "test";
  return job;
}

struct Collected {
  std::vector<SampleOutcome> samples;
  absl::StatusOr<EvalSummary> summary;
};

Collected RunJob(EngineEvaluator& evaluator, const JobSpec& job,
                 const absl::flat_hash_set<int32_t>& done = {}, CancelFlag* cancel = nullptr) {
  Collected c;
  CancelFlag never;
  CancelFlag& flag = cancel != nullptr ? *cancel : never;
  c.summary = evaluator.Run(
      job, done,
      [&](const SampleOutcome& s) {
        c.samples.push_back(s);
        if (cancel != nullptr) cancel->Cancel();
        return absl::OkStatus();
      },
      flag);
  return c;
}

void ExpectWellFormed(const Collected& c, bool dense) {
  ASSERT_TRUE(c.summary.ok()) << c.summary.status();
  ASSERT_EQ(c.samples.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const SampleOutcome& s = c.samples[i];
    EXPECT_EQ(s.index, i);
    EXPECT_GE(s.score, 0.0);
    EXPECT_LE(s.score, 1.0);
    EXPECT_GE(s.input_tokens, static_cast<int64_t>(0.9 * kLength));
    EXPECT_LE(s.input_tokens, kLength);
    EXPECT_GT(s.output_tokens, 0);
    EXPECT_LE(s.output_tokens, 8);
    EXPECT_FALSE(s.target.empty());
    if (dense) {
      EXPECT_DOUBLE_EQ(s.measured_density, 1.0);
    } else {
      EXPECT_LT(s.measured_density, 1.0);
      EXPECT_GT(s.measured_density, 0.0);
    }
  }
  EXPECT_GT(c.summary->flops_prefill, 0);
  EXPECT_GT(c.summary->flops_decode, 0);
  EXPECT_GT(c.summary->tokens_per_second, 0);
  EXPECT_EQ(c.summary->metric.empty(), false);
  // The architecture travels with the result; the tiny model is marked random.
  ASSERT_TRUE(c.summary->model.has_value());
  EXPECT_EQ(c.summary->model->hidden_size, 32);
  EXPECT_EQ(c.summary->model->num_layers, 2);
  EXPECT_TRUE(c.summary->model->tie_word_embeddings);
  EXPECT_GT(c.summary->model->NumParameters(), 0);
  EXPECT_TRUE(c.summary->model->random_weights);
  if (dense) {
    EXPECT_DOUBLE_EQ(c.summary->measured_compression, 1.0);
  } else {
    EXPECT_GT(c.summary->measured_compression, 1.0);
  }
}

TEST(EngineEvaluator, DenseDense_TwoSamplesInOrder) {
  EngineEvaluator evaluator({.num_threads = 2});
  ExpectWellFormed(RunJob(evaluator, MakeJob("dense", {}, "dense", {})), /*dense=*/true);
}

// The recorded FLOPs of a dense job are the cost model's of each sample's sizes, which is
// what the analysis computes for a result without recorded figures.
TEST(EngineEvaluator, DenseDense_RecordsTheCostModelOfEachSample) {
  EngineEvaluator evaluator({.num_threads = 2});
  Collected c = RunJob(evaluator, MakeJob("dense", {}, "dense", {}));
  ASSERT_TRUE(c.summary.ok()) << c.summary.status();
  ASSERT_TRUE(c.summary->model.has_value());
  const model::CostModel cost(*c.summary->model);
  model::FlopsBreakdown sum;
  for (const SampleOutcome& s : c.samples) {
    const model::FlopsBreakdown f = cost.Nominal(s.input_tokens, s.output_tokens, 1.0, 1.0, 0.0);
    sum.prefill_linear += f.prefill_linear;
    sum.prefill_attention += f.prefill_attention;
    sum.decode_linear += f.decode_linear;
    sum.decode_attention += f.decode_attention;
  }
  EXPECT_DOUBLE_EQ(c.summary->flops_prefill, sum.Prefill());
  EXPECT_DOUBLE_EQ(c.summary->flops_decode, sum.Decode());
  EXPECT_DOUBLE_EQ(c.summary->flops_indexing, 0.0);
}

TEST(EngineEvaluator, StreamingPrefill_MeasuresSparsity) {
  EngineEvaluator evaluator({.num_threads = 2});
  JobSpec job = MakeJob("streaming", {{"sink", int64_t{4}}, {"window", int64_t{128}}}, "dense", {});
  ExpectWellFormed(RunJob(evaluator, job), /*dense=*/false);
}

TEST(EngineEvaluator, VerticalSlashPrefill_MeasuresSparsity) {
  EngineEvaluator evaluator({.num_threads = 2});
  JobSpec job =
      MakeJob("vertical_slash",
              {{"last_q", int64_t{64}}, {"verticals", int64_t{128}}, {"slashes", int64_t{128}}},
              "dense", {});
  Collected c = RunJob(evaluator, job);
  ExpectWellFormed(c, /*dense=*/false);
  ASSERT_TRUE(c.summary.ok());
  EXPECT_GT(c.summary->flops_indexing, 0);
}

TEST(EngineEvaluator, SnapKvDecode_EvictsAndMeasuresSparsity) {
  EngineEvaluator evaluator({.num_threads = 2});
  JobSpec job = MakeJob(
      "dense", {}, "snapkv",
      {{"window", int64_t{32}}, {"keep_last", int64_t{32}}, {"token_capacity", int64_t{128}}});
  Collected c = RunJob(evaluator, job);
  ExpectWellFormed(c, /*dense=*/false);
  ASSERT_TRUE(c.summary.ok());
  EXPECT_GT(c.summary->flops_indexing, 0);
}

TEST(EngineEvaluator, QuestDecode_SelectsPagesAndMeasuresSparsity) {
  EngineEvaluator evaluator({.num_threads = 2});
  JobSpec job =
      MakeJob("dense", {}, "quest", {{"page", int64_t{16}}, {"token_budget", int64_t{128}}});
  Collected c = RunJob(evaluator, job);
  ExpectWellFormed(c, /*dense=*/false);
  ASSERT_TRUE(c.summary.ok());
  EXPECT_GT(c.summary->flops_indexing, 0);
}

TEST(EngineEvaluator, OtherDecodeMethods_RunSparse) {
  EngineEvaluator evaluator({.num_threads = 2});
  const std::vector<std::pair<std::string, ParamMap>> methods = {
      {"ada_snapkv",
       {{"window", int64_t{32}}, {"keep_last", int64_t{32}}, {"token_capacity", int64_t{128}}}},
      {"streaming", {{"sink", int64_t{4}}, {"window", int64_t{128}}}},
      {"oracle_topk", {{"top_k", int64_t{128}}}},
  };
  for (const auto& [name, params] : methods) {
    SCOPED_TRACE(name);
    ExpectWellFormed(RunJob(evaluator, MakeJob("dense", {}, name, params)), /*dense=*/false);
  }
}

TEST(EngineEvaluator, SamplesDone_AreSkipped) {
  EngineEvaluator evaluator({.num_threads = 2});
  Collected c = RunJob(evaluator, MakeJob("dense", {}, "dense", {}), {0});
  ASSERT_TRUE(c.summary.ok()) << c.summary.status();
  ASSERT_EQ(c.samples.size(), 1u);
  EXPECT_EQ(c.samples[0].index, 1);
}

TEST(EngineEvaluator, Cancel_StopsBeforeNextSample) {
  EngineEvaluator evaluator({.num_threads = 2});
  CancelFlag cancel;  // the sink cancels after the first sample
  Collected c = RunJob(evaluator, MakeJob("dense", {}, "dense", {}), {}, &cancel);
  EXPECT_EQ(c.summary.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(c.samples.size(), 1u);
}

TEST(EngineEvaluator, CanRun_RefusesWhatItCannotRun) {
  EngineEvaluator evaluator;
  EXPECT_EQ(evaluator.CanRun(MakeJob("dense", {}, "block_sparse", {})).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(evaluator.CanRun(MakeJob("no_such", {}, "dense", {})).code(),
            absl::StatusCode::kFailedPrecondition);
  JobSpec bad_task = MakeJob("dense", {}, "dense", {});
  bad_task.task.name = "no_such_task";
  EXPECT_EQ(evaluator.CanRun(bad_task).code(), absl::StatusCode::kInvalidArgument);
  JobSpec no_model = MakeJob("dense", {}, "dense", {});
  no_model.model.path = "/nonexistent/model";
  EXPECT_EQ(evaluator.CanRun(no_model).code(), absl::StatusCode::kFailedPrecondition);
  SF_EXPECT_OK(evaluator.CanRun(MakeJob("dense", {}, "dense", {})));
  EXPECT_THAT(evaluator.Backends(), ::testing::ElementsAre("cpu"));
}

TEST(ChooseDType, AutoIsBf16OnCuda_Float32OnCpu) {
  SF_ASSERT_OK_AND_ASSIGN(model::ComputeDType on_gpu,
                          ChooseDType("auto", model::BackendKind::kCuda));
  EXPECT_EQ(on_gpu, model::ComputeDType::kBfloat16);
  SF_ASSERT_OK_AND_ASSIGN(model::ComputeDType bf16,
                          ChooseDType("bfloat16", model::BackendKind::kCuda));
  EXPECT_EQ(bf16, model::ComputeDType::kBfloat16);
  SF_ASSERT_OK_AND_ASSIGN(model::ComputeDType on_cpu,
                          ChooseDType("auto", model::BackendKind::kCpu));
  EXPECT_EQ(on_cpu, model::ComputeDType::kFloat32);
  SF_ASSERT_OK_AND_ASSIGN(model::ComputeDType f32,
                          ChooseDType("float32", model::BackendKind::kCuda));
  EXPECT_EQ(f32, model::ComputeDType::kFloat32);
  EXPECT_EQ(ChooseDType("bfloat16", model::BackendKind::kCpu).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ChooseDType("fp8", model::BackendKind::kCuda).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ChooseBackend, AutoPrefersCudaWhenOffered_CudaWithoutDeviceIsRefused) {
  SF_ASSERT_OK_AND_ASSIGN(model::BackendKind auto_gpu, ChooseBackend("auto", {"cuda", "cpu"}));
  EXPECT_EQ(auto_gpu, model::BackendKind::kCuda);
  SF_ASSERT_OK_AND_ASSIGN(model::BackendKind auto_cpu, ChooseBackend("auto", {"cpu"}));
  EXPECT_EQ(auto_cpu, model::BackendKind::kCpu);
  SF_ASSERT_OK_AND_ASSIGN(model::BackendKind cpu, ChooseBackend("cpu", {"cuda", "cpu"}));
  EXPECT_EQ(cpu, model::BackendKind::kCpu);
  EXPECT_EQ(ChooseBackend("cuda", {"cpu"}).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ChooseBackend("tpu", {"cpu"}).status().code(), absl::StatusCode::kInvalidArgument);
  EngineEvaluatorOptions options;
  options.backend = model::BackendKind::kCuda;
  EXPECT_EQ(EngineEvaluator(options).Backends(), std::vector<std::string>{"cuda"});
}

model::ModelConfig Qwen72BConfig() { return model::Qwen25Shape("qwen2.5-72b", 0).value(); }

TEST(PlaceEngineOnGpusTest, Qwen72B_CutOverTheFewestGpusThatHoldIt) {
  constexpr int64_t kGiB = int64_t{1} << 30;
  model::EngineOptions options;
  options.backend = model::BackendKind::kCuda;
  options.dtype = model::ComputeDType::kBfloat16;
  // About 148 GiB at 32K: two 79 GiB GPUs of four.
  ASSERT_THAT(
      PlaceEngineOnGpus(Qwen72BConfig(), 32768 + 64, std::vector<int64_t>(4, 79 * kGiB), &options),
      ::sf::testing::IsOk());
  EXPECT_EQ(model::DescribeStages(options.layer_stages), "[0,40)@0 [40,80)@1");
  // About 178 GiB at 128K: three.
  ASSERT_THAT(
      PlaceEngineOnGpus(Qwen72BConfig(), 131072 + 64, std::vector<int64_t>(4, 79 * kGiB), &options),
      ::sf::testing::IsOk());
  EXPECT_EQ(options.layer_stages.size(), 3u) << model::DescribeStages(options.layer_stages);
  EXPECT_THAT(PlaceEngineOnGpus(Qwen72BConfig(), 131072, {139 * kGiB}, &options),
              ::sf::testing::StatusIs(absl::StatusCode::kResourceExhausted,
                                      ::testing::HasSubstr("80-layer model for 131072 tokens")));
}

TEST(PlaceEngineOnGpusTest, SmallModel_OneGpuWithTheMostRoom_CpuUntouched) {
  model::ModelConfig c = Qwen72BConfig();
  c.num_layers = 2;
  model::EngineOptions options;
  options.backend = model::BackendKind::kCuda;
  options.dtype = model::ComputeDType::kBfloat16;
  ASSERT_THAT(PlaceEngineOnGpus(c, 4096, {int64_t{20} << 30, int64_t{60} << 30}, &options),
              ::sf::testing::IsOk());
  EXPECT_TRUE(options.layer_stages.empty());
  EXPECT_EQ(options.cuda_device, 1);
  model::EngineOptions cpu;
  ASSERT_THAT(PlaceEngineOnGpus(Qwen72BConfig(), 4096, {1}, &cpu), ::sf::testing::IsOk());
  EXPECT_TRUE(cpu.layer_stages.empty());
  EXPECT_EQ(cpu.cuda_device, 0);
}

}  // namespace
}  // namespace sf::worker
