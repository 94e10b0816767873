#include "worker/model/safetensors.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "common/logging.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/model/test_util.h"
#include "worker/model/tiny_model.h"

namespace sf::model {
namespace {

namespace fs = std::filesystem;
using ::sf::model::testing::FreshTestDir;
using ::sf::testing::IsOk;
using ::sf::testing::StatusIs;
using ::testing::HasSubstr;

std::string FloatBytes(const std::vector<float>& v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), v.data(), s.size());
  return s;
}

std::vector<TensorToWrite> SampleTensors() {
  return {
      {"a", DType::kF32, {2, 3}, FloatBytes({1, 2, 3, 4, 5, 6})},
      {"b", DType::kBF16, {2}, std::string("\x80\x3f\x00\xc0", 4)},  // 1.0, -2.0
      {"c", DType::kF16, {1}, std::string("\x00\x3c", 2)},           // 1.0
  };
}

std::string ValidFile() {
  absl::StatusOr<std::string> s = SerializeSafetensors(SampleTensors(), {{"format", "pt"}});
  SF_CHECK(s.ok());
  return *s;
}

// Builds a file from a header text and `data_bytes` bytes of zeros.
std::string FileWithHeader(const std::string& header, size_t data_bytes) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + std::string(data_bytes, '\0');
}

TEST(SafetensorsHeader, RoundTrip_ParsesWhatWasWritten) {
  const std::string file = ValidFile();
  SF_ASSERT_OK_AND_ASSIGN(SafetensorsHeader h, ParseSafetensorsHeader(file, "mem"));
  ASSERT_EQ(h.tensors.size(), 3u);
  EXPECT_EQ(h.tensors[0].name, "a");
  EXPECT_EQ(h.tensors[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(h.tensors[1].dtype, DType::kBF16);
  EXPECT_EQ(h.metadata.at("format"), "pt");
  EXPECT_EQ(h.data_offset % 8, 0u);
  EXPECT_EQ(h.data_offset + h.tensors.back().end, file.size());
}

TEST(SafetensorsHeader, TooShort_IsDataLoss) {
  EXPECT_THAT(ParseSafetensorsHeader("abc", "x.safetensors"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("x.safetensors")));
}

TEST(SafetensorsHeader, HugeLengthField_IsRejectedWithoutReading) {
  std::string file = ValidFile();
  for (int i = 0; i < 8; ++i) file[i] = '\xff';
  EXPECT_THAT(ParseSafetensorsHeader(file, "x"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("header length")));
}

TEST(SafetensorsHeader, Truncated_IsDataLossSayingSo) {
  const std::string file = ValidFile();
  EXPECT_THAT(ParseSafetensorsHeader(absl::string_view(file).substr(0, file.size() - 3), "x"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("truncated")));
  EXPECT_THAT(ParseSafetensorsHeader(absl::string_view(file).substr(0, 20), "x"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("truncated")));
}

TEST(SafetensorsHeader, MalformedEntries_NameTheProblem) {
  struct Case {
    std::string header;
    size_t data;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {R"({"t": {"dtype": "F33", "shape": [1], "data_offsets": [0, 4]}})", 4, "unknown dtype"},
      {R"({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}})", 4, "needs 8 bytes"},
      {R"({"t": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4, "non-negative"},
      {R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}})", 4, "before begin"},
      {R"({"t": {"dtype": "F32", "shape": [1]}})", 4, "data_offsets"},
      {R"({"t": {"shape": [1], "data_offsets": [0, 4]}})", 4, "dtype"},
      {R"({"t": [1, 2]})", 0, "not an object"},
      {R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
           "u": {"dtype": "F32", "shape": [1], "data_offsets": [2, 6]}})",
       6, "overlaps"},
      {R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", 8, "hole"},
      {R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", 9, "not described"},
      {R"({"t": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 4]}})", 4,
       "absurd shape"},
      {R"({"__metadata__": {"k": 3}})", 0, "not a string"},
      {R"([1, 2])", 0, "not start with"},
      {R"({"t": )", 0, "not valid JSON"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(ParseSafetensorsHeader(FileWithHeader(c.header, c.data), "f.safetensors"),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.expect)))
        << c.header;
  }
}

TEST(SafetensorsHeader, EmptyTensorAndEmptyFile_AreValid) {
  SF_EXPECT_OK(ParseSafetensorsHeader(
      FileWithHeader(R"({"t": {"dtype": "F32", "shape": [0, 3], "data_offsets": [0, 0]}})", 0),
      "x"));
  SF_EXPECT_OK(ParseSafetensorsHeader(FileWithHeader("{}", 0), "x"));
}

// Random corruption of a valid file (bit flips anywhere in the header, random bytes,
// truncations, length-field edits) must give a clean error or a header whose every
// tensor lies inside the file: never a crash, hang or out-of-range view.
TEST(SafetensorsHeader, Fuzz_CorruptFilesNeverCrash) {
  const std::string valid = ValidFile();
  std::mt19937_64 rng(12345);
  int accepted = 0, rejected = 0;
  for (int iter = 0; iter < 5000; ++iter) {
    std::string f = valid;
    const int mutations = 1 + static_cast<int>(rng() % 4);
    for (int m = 0; m < mutations; ++m) {
      switch (rng() % 5) {
        case 0:  // flip a bit in the length field or header
          f[rng() % std::min<size_t>(f.size(), 8 + 200)] ^= static_cast<char>(1u << (rng() % 8));
          break;
        case 1:  // random byte in the header
          f[8 + rng() % (std::min<size_t>(f.size(), 200) - 8)] = static_cast<char>(rng() % 256);
          break;
        case 2:  // truncate
          f.resize(rng() % (f.size() + 1));
          break;
        case 3: {  // replace a digit, shifting offsets and shapes
          const size_t pos = f.find_first_of("0123456789", 8 + rng() % 100);
          if (pos != std::string::npos && pos < f.size())
            f[pos] = static_cast<char>('0' + rng() % 10);
          break;
        }
        case 4:  // append junk
          f.append(rng() % 16, static_cast<char>(rng() % 256));
          break;
      }
      if (f.size() < 9) break;
    }
    absl::StatusOr<SafetensorsHeader> h = ParseSafetensorsHeader(f, "fuzz");
    if (!h.ok()) {
      ++rejected;
      EXPECT_FALSE(h.status().message().empty());
      continue;
    }
    ++accepted;
    for (const TensorInfo& t : h->tensors) {
      ASSERT_LE(t.begin, t.end);
      ASSERT_LE(h->data_offset + t.end, f.size());
      ASSERT_EQ(static_cast<uint64_t>(t.NumElements()) * DTypeSize(t.dtype), t.end - t.begin);
    }
  }
  EXPECT_GT(rejected, 1000);  // the mutations do corrupt
  EXPECT_GT(accepted + rejected, 4999);
}

TEST(Checkpoint, SingleFile_ReadsTensorsAsFloat) {
  const std::string dir = FreshTestDir();
  SF_ASSERT_OK_AND_ASSIGN(std::string bytes, SerializeSafetensors(SampleTensors()));
  SF_ASSERT_OK(WriteFileAtomically(dir + "/model.safetensors", bytes));
  SF_ASSERT_OK_AND_ASSIGN(auto ckpt, Checkpoint::Open(dir));
  SF_ASSERT_OK_AND_ASSIGN(std::vector<float> a, ckpt->ReadFloat("a", {2, 3}));
  EXPECT_EQ(a, (std::vector<float>{1, 2, 3, 4, 5, 6}));
  SF_ASSERT_OK_AND_ASSIGN(std::vector<float> b, ckpt->ReadFloat("b", {2}));
  EXPECT_EQ(b, (std::vector<float>{1.0f, -2.0f}));
  SF_ASSERT_OK_AND_ASSIGN(std::vector<float> c, ckpt->ReadFloat("c", {1}));
  EXPECT_EQ(c, (std::vector<float>{1.0f}));
  EXPECT_THAT(ckpt->Get("nope"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("'nope'")));
  EXPECT_THAT(ckpt->Get("a", {3, 2}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'a'"), HasSubstr("[2, 3]"), HasSubstr("[3, 2]"))));
}

TEST(Checkpoint, EmptyFolder_IsNotFoundSayingWhatIsNeeded) {
  EXPECT_THAT(Checkpoint::Open(FreshTestDir()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("model.safetensors")));
}

class ShardedCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir();
    TinyModelOptions o;
    o.num_shards = 3;
    o.dtype = DType::kF32;
    SF_ASSERT_OK(WriteTinyModel(dir_, o));
  }
  std::string dir_;
};

TEST_F(ShardedCheckpoint, Opens_AllTensorsReachable) {
  SF_ASSERT_OK_AND_ASSIGN(auto ckpt, Checkpoint::Open(dir_));
  EXPECT_EQ(ckpt->Files().size(), 3u);
  EXPECT_TRUE(ckpt->Has("model.embed_tokens.weight"));
  EXPECT_TRUE(ckpt->Has("lm_head.weight"));
  SF_EXPECT_OK(ckpt->Get("model.layers.1.mlp.down_proj.weight", {64, 128}));
}

TEST_F(ShardedCheckpoint, MissingShard_IsNotFoundNamingIt) {
  fs::remove(dir_ + "/model-00002-of-00003.safetensors");
  EXPECT_THAT(Checkpoint::Open(dir_),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("shard 2 of 3"), HasSubstr("model-00002-of-00003"))));
}

TEST_F(ShardedCheckpoint, TruncatedShard_IsDataLossNamingIt) {
  const std::string path = dir_ + "/model-00003-of-00003.safetensors";
  fs::resize_file(path, fs::file_size(path) - 100);
  EXPECT_THAT(Checkpoint::Open(dir_),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("model-00003-of-00003"), HasSubstr("truncated"))));
}

TEST_F(ShardedCheckpoint, IndexNamesAbsentTensor_IsInvalidArgument) {
  std::ofstream(dir_ + "/model.safetensors.index.json")
      << R"({"weight_map": {"ghost.weight": "model-00001-of-00003.safetensors"}})";
  EXPECT_THAT(Checkpoint::Open(dir_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ghost.weight")));
}

TEST_F(ShardedCheckpoint, IndexEscapingTheFolder_IsRejected) {
  std::ofstream(dir_ + "/model.safetensors.index.json")
      << R"({"weight_map": {"x": "../model-00001-of-00003.safetensors"}})";
  EXPECT_THAT(Checkpoint::Open(dir_), StatusIs(absl::StatusCode::kInvalidArgument,
                                               HasSubstr("not a file in the model folder")));
}

TEST(DType, Conversions_MatchKnownBitPatterns) {
  EXPECT_EQ(Bf16ToFloat(0x3f80), 1.0f);
  EXPECT_EQ(F16ToFloat(0x3c00), 1.0f);
  EXPECT_EQ(F16ToFloat(0xc000), -2.0f);
  EXPECT_EQ(F16ToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(FloatToBf16(1.0f), 0x3f80);
  // Ties round to even: 1 + 2^-8 lies halfway between two bf16 values.
  EXPECT_EQ(FloatToBf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  EXPECT_EQ(FloatToBf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_EQ(ParseDType("BF16"), DType::kBF16);
  EXPECT_FALSE(ParseDType("bf16").has_value());
}

}  // namespace
}  // namespace sf::model
