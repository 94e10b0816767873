#include "proto/job_convert.h"

#include "gtest/gtest.h"

namespace sf {
namespace {

TEST(JobConvertTest, RoundTrip_KeepsEveryField) {
  JobSpec job;
  job.model = {"qwen2.5-7b", "/models/q", "cfg:abc", 1};
  job.sequence_length = 32768;
  job.prefill.name = "vertical_slash";
  job.prefill.params = {
      {"budget", int64_t{2048}}, {"ratio", 0.25}, {"causal", true}, {"mode", std::string("fast")}};
  job.prefill.compression = 10.0;
  job.decode.name = "quest";
  job.decode.params = {{"page", int64_t{16}}};
  job.task = {"ruler_niah", {{"path", std::string("data/x.json")}}, 100};
  job.seed = 43;
  job.generation = {1024, false};
  job.key = "deadbeef";
  job.memory_bytes = 1LL << 34;
  job.cost = 3.5;

  JobSpec back = JobSpecFromProto(JobSpecToProto(job));
  EXPECT_EQ(back.model.name, job.model.name);
  EXPECT_EQ(back.model.path, job.model.path);
  EXPECT_EQ(back.model.identity, job.model.identity);
  EXPECT_EQ(back.model.gpus, job.model.gpus);
  EXPECT_EQ(back.sequence_length, job.sequence_length);
  EXPECT_EQ(back.prefill.name, job.prefill.name);
  EXPECT_EQ(back.prefill.params, job.prefill.params);
  EXPECT_EQ(back.prefill.compression, job.prefill.compression);
  EXPECT_EQ(back.decode.params, job.decode.params);
  EXPECT_FALSE(back.decode.compression.has_value());
  EXPECT_EQ(back.task.name, job.task.name);
  EXPECT_EQ(back.task.params, job.task.params);
  EXPECT_EQ(back.task.samples, job.task.samples);
  EXPECT_EQ(back.seed, job.seed);
  EXPECT_EQ(back.generation.max_new_tokens, 1024);
  EXPECT_FALSE(back.generation.greedy);
  EXPECT_EQ(back.key, job.key);
  EXPECT_EQ(back.memory_bytes, job.memory_bytes);
  EXPECT_EQ(back.cost, job.cost);
  EXPECT_FALSE(back.gpu_memory.has_value());
}

TEST(JobConvertTest, RoundTrip_KeepsTheGpuMemoryProfile) {
  JobSpec job;
  job.gpu_memory = model::LayerMemoryProfile{.layers = 80,
                                             .per_layer_bytes = 1LL << 31,
                                             .first_stage_bytes = 3,
                                             .last_stage_bytes = 4,
                                             .per_stage_bytes = 5,
                                             .shared_end_bytes = 2};
  const JobSpec back = JobSpecFromProto(JobSpecToProto(job));
  ASSERT_TRUE(back.gpu_memory.has_value());
  EXPECT_EQ(back.gpu_memory->layers, 80);
  EXPECT_EQ(back.gpu_memory->per_layer_bytes, 1LL << 31);
  EXPECT_EQ(back.gpu_memory->first_stage_bytes, 3);
  EXPECT_EQ(back.gpu_memory->last_stage_bytes, 4);
  EXPECT_EQ(back.gpu_memory->per_stage_bytes, 5);
  EXPECT_EQ(back.gpu_memory->shared_end_bytes, 2);
}

}  // namespace
}  // namespace sf
