#include "kernels/cpu/attention.h"

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cpu/method_params.h"
#include "methods/registry.h"

namespace sf::kernels {
namespace {

using ::sf::testing::StatusIs;
using ::testing::HasSubstr;

Tensor RandomTensor(int64_t h, int64_t l, int64_t d, uint64_t seed, double scale = 1.0) {
  Tensor t(h, l, d);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n(0.0f, static_cast<float>(scale));
  for (float& x : t.data) x = n(rng);
  return t;
}

struct Qkv {
  Tensor q, k, v;
  AttentionInput Input(int64_t q_begin = 0) const {
    return {q.View().Rows(q_begin, q.len - q_begin), k.View(), v.View(), q_begin};
  }
};

Qkv RandomQkv(int64_t hq, int64_t hkv, int64_t l, int64_t d, uint64_t seed) {
  // Scale 2 makes the softmax peaked enough for selections to matter.
  return {RandomTensor(hq, l, d, seed, 2.0), RandomTensor(hkv, l, d, seed + 1, 2.0),
          RandomTensor(hkv, l, d, seed + 2)};
}

// Brute-force masked dense attention in double, the mask taken from the selection.
std::vector<double> MaskedReference(const AttentionInput& in, const Selection& sel) {
  const int64_t hq = in.q.heads, lq = in.q.len, d = in.q.dim;
  std::vector<double> out(hq * lq * d, 0.0);
  std::vector<KeyRange> ranges;
  for (int64_t h = 0; h < hq; ++h) {
    const int64_t kvh = h / (hq / in.k.heads);
    for (int64_t i = 0; i < lq; ++i) {
      const int64_t pos = in.q_offset + i;
      sel.Row(h, i, &ranges);
      std::vector<char> mask(pos + 1, 0);
      for (const KeyRange& r : ranges) {
        EXPECT_LT(r.begin, r.end);
        EXPECT_LE(r.end, pos + 1) << "selection is not causal";
        for (int64_t j = r.begin; j < std::min(r.end, pos + 1); ++j) mask[j] = 1;
      }
      std::vector<double> s(pos + 1, -INFINITY);
      double m = -INFINITY;
      for (int64_t j = 0; j <= pos; ++j) {
        if (!mask[j]) continue;
        double dot = 0;
        for (int64_t x = 0; x < d; ++x) {
          dot += static_cast<double>(in.q.Row(h, i)[x]) * in.k.Row(kvh, j)[x];
        }
        s[j] = dot / std::sqrt(static_cast<double>(d));
        m = std::max(m, s[j]);
      }
      double z = 0;
      for (int64_t j = 0; j <= pos; ++j) {
        if (!mask[j]) continue;
        const double p = std::exp(s[j] - m);
        z += p;
        for (int64_t x = 0; x < d; ++x) out[(h * lq + i) * d + x] += p * in.v.Row(kvh, j)[x];
      }
      for (int64_t x = 0; x < d; ++x) out[(h * lq + i) * d + x] /= z;
    }
  }
  return out;
}

struct Case {
  std::string method;
  ParamMap params;
  bool decode;
};

// Small-scale parameters for every method, valid at length ~100.
std::vector<Case> SmallCases() {
  return {
      {"dense", {}, false},
      {"block_sparse", {{"block", int64_t{8}}, {"block_budget", int64_t{5}}}, false},
      {"vertical_slash",
       {{"last_q", int64_t{16}},
        {"sink", int64_t{2}},
        {"local", int64_t{4}},
        {"verticals", int64_t{12}},
        {"slashes", int64_t{10}}},
       false},
      {"flexprefill", {{"gamma", 0.6}, {"min_budget", int64_t{8}}, {"last_q", int64_t{16}}}, false},
      {"flexprefill",
       {{"gamma", 0.6},
        {"min_budget", int64_t{8}},
        {"block", int64_t{16}},
        {"tau", 0.9},
        {"variant", std::string("original")}},
       false},
      {"xattention", {{"block", int64_t{16}}, {"stride", int64_t{4}}, {"threshold", 0.8}}, false},
      {"streaming", {{"sink", int64_t{2}}, {"window", int64_t{16}}}, false},
      {"oracle_topk", {{"top_k", int64_t{20}}}, false},
      {"dense", {}, true},
      {"streaming", {{"sink", int64_t{2}}, {"window", int64_t{16}}}, true},
      {"oracle_topk", {{"top_k", int64_t{20}}}, true},
      {"snapkv",
       {{"window", int64_t{16}},
        {"pool", int64_t{5}},
        {"keep_first", int64_t{2}},
        {"keep_last", int64_t{8}},
        {"token_capacity", int64_t{30}}},
       true},
      {"ada_snapkv",
       {{"window", int64_t{16}},
        {"pool", int64_t{5}},
        {"keep_first", int64_t{2}},
        {"keep_last", int64_t{8}},
        {"token_capacity", int64_t{30}}},
       true},
      {"quest", {{"page", int64_t{8}}, {"token_budget", int64_t{24}}}, true},
      {"quest", {{"page", int64_t{8}}, {"token_budget", int64_t{24}}, {"gqa_shared", false}}, true},
  };
}

constexpr int64_t kPrompt = 80;  // decode cases: the last rows are decode steps

absl::StatusOr<AttentionResult> RunCase(const Case& c, const Qkv& qkv) {
  SF_ASSIGN_OR_RETURN(MethodParams p, ParseMethodParams(c.method, c.params));
  if (!c.decode) return PrefillAttention(c.method, p, qkv.Input());
  return DecodeAttention(c.method, p, qkv.Input(kPrompt), qkv.q.View().Rows(0, kPrompt));
}

class EveryMethod : public ::testing::TestWithParam<int64_t> {};

TEST_P(EveryMethod, OddLength_MatchesMaskedDenseReferenceInDouble) {
  const int64_t len = GetParam();
  const int64_t dim = len == 131 ? 128 : 64;
  const Qkv qkv = RandomQkv(4, 2, len, dim, 17 + len);
  for (const Case& c : SmallCases()) {
    SCOPED_TRACE(c.method + (c.decode ? " (decode)" : " (prefill)"));
    SF_ASSERT_OK_AND_ASSIGN(AttentionResult r, RunCase(c, qkv));
    const AttentionInput in = qkv.Input(c.decode ? kPrompt : 0);
    const std::vector<double> ref = MaskedReference(in, *r.selection);
    ASSERT_EQ(ref.size(), r.output.data.size());
    double max_err = 0;
    for (size_t x = 0; x < ref.size(); ++x) {
      // One float rounding of the output on top of float64 agreement.
      max_err = std::max(max_err,
                         std::abs(r.output.data[x] - ref[x]) / (std::abs(ref[x]) * 1.2e-7 + 1e-12));
    }
    EXPECT_LE(max_err, 1.0) << "error beyond one float rounding";
    EXPECT_GT(r.density(), 0.0);
    EXPECT_LE(r.density(), 1.0);
  }
}

INSTANTIATE_TEST_SUITE_P(Lengths, EveryMethod, ::testing::Values(97, 131));

TEST(EveryMethod, CompressionOne_EqualsDense) {
  const Qkv qkv = RandomQkv(4, 2, 101, 64, 5);
  SF_ASSERT_OK_AND_ASSIGN(MethodParams dense_params, ParseMethodParams("dense", {}));
  SF_ASSERT_OK_AND_ASSIGN(AttentionResult dense,
                          PrefillAttention("dense", dense_params, qkv.Input()));
  SF_ASSERT_OK_AND_ASSIGN(
      AttentionResult dense_decode,
      DecodeAttention("dense", dense_params, qkv.Input(kPrompt), qkv.q.View().Rows(0, kPrompt)));
  for (Case c : SmallCases()) {
    SCOPED_TRACE(c.method);
    if (c.method == "flexprefill") {
      c.params["gamma"] = 1.0;
    } else if (c.method == "xattention") {
      c.params["threshold"] = 1.0;
    } else {
      SF_ASSERT_OK_AND_ASSIGN(c.params, ParamsForCompression(c.method, c.params, 1.0, 101));
    }
    if (c.method == "snapkv" || c.method == "ada_snapkv") c.params["token_capacity"] = kPrompt;
    SF_ASSERT_OK_AND_ASSIGN(AttentionResult r, RunCase(c, qkv));
    const AttentionResult& want = c.decode ? dense_decode : dense;
    EXPECT_DOUBLE_EQ(r.density(), 1.0);
    EXPECT_EQ(r.output.data, want.output.data);
  }
}

// Runs `method` at increasing budgets and checks that the measured density never drops.
void ExpectMonotone(const Qkv& qkv, const std::string& method, ParamMap base,
                    const std::string& param, std::vector<ParamValue> budgets, bool decode) {
  double last = 0;
  for (const ParamValue& b : budgets) {
    base[param] = b;
    SF_ASSERT_OK_AND_ASSIGN(AttentionResult r, RunCase({method, base, decode}, qkv));
    EXPECT_GE(r.density(), last) << method << " at " << param;
    last = r.density();
  }
  EXPECT_GT(last, 0);
}

TEST(EveryMethod, MeasuredDensity_MonotoneInBudget) {
  const Qkv qkv = RandomQkv(4, 2, 113, 64, 9);
  ExpectMonotone(qkv, "block_sparse", {{"block", int64_t{8}}}, "block_budget",
                 {int64_t{3}, int64_t{5}, int64_t{9}, int64_t{15}}, false);
  ExpectMonotone(qkv, "vertical_slash",
                 {{"last_q", int64_t{16}}, {"sink", int64_t{2}}, {"local", int64_t{4}}},
                 "verticals", {int64_t{4}, int64_t{10}, int64_t{40}, int64_t{113}}, false);
  ExpectMonotone(qkv, "flexprefill", {{"min_budget", int64_t{4}}, {"last_q", int64_t{16}}}, "gamma",
                 {0.2, 0.5, 0.8, 0.95, 1.0}, false);
  ExpectMonotone(qkv, "xattention", {{"block", int64_t{16}}, {"stride", int64_t{4}}}, "threshold",
                 {0.1, 0.5, 0.8, 0.95, 1.0}, false);
  ExpectMonotone(qkv, "streaming", {{"sink", int64_t{2}}}, "window",
                 {int64_t{4}, int64_t{16}, int64_t{64}}, false);
  ExpectMonotone(qkv, "oracle_topk", {}, "top_k", {int64_t{1}, int64_t{10}, int64_t{113}}, false);
  const ParamMap snap = {{"window", int64_t{16}},
                         {"pool", int64_t{5}},
                         {"keep_first", int64_t{2}},
                         {"keep_last", int64_t{8}}};
  ExpectMonotone(qkv, "snapkv", snap, "token_capacity", {int64_t{10}, int64_t{30}, int64_t{80}},
                 true);
  ExpectMonotone(qkv, "ada_snapkv", snap, "token_capacity", {int64_t{10}, int64_t{30}, int64_t{80}},
                 true);
  ExpectMonotone(qkv, "quest", {{"page", int64_t{8}}}, "token_budget",
                 {int64_t{8}, int64_t{24}, int64_t{64}, int64_t{120}}, true);
}

// --- Selections on hand-built inputs -------------------------------------------------

constexpr int64_t kLen = 256, kDim = 64;

// Noise-level queries and keys; returns the tensors for the tests to plant patterns in.
Qkv QuietQkv(uint64_t seed) {
  return {RandomTensor(2, kLen, kDim, seed, 0.3), RandomTensor(1, kLen, kDim, seed + 1, 0.3),
          RandomTensor(1, kLen, kDim, seed + 2)};
}

// Plants a needle: key `col` and every query share a strong direction.
void PlantNeedle(Qkv* t, int64_t col) {
  for (int64_t h = 0; h < t->q.heads; ++h) {
    for (int64_t i = col; i < kLen; ++i) t->q.Row(h, i)[5] += 3.0f;
  }
  t->k.Row(0, col)[5] += 6.0f;
}

bool RowHas(const Selection& s, int64_t h, int64_t i, int64_t key) {
  std::vector<KeyRange> r;
  s.Row(h, i, &r);
  for (const KeyRange& kr : r) {
    if (kr.begin <= key && key < kr.end) return true;
  }
  return false;
}

TEST(Selection, NeedleColumn_IsChosenByEveryMethod) {
  Qkv t = QuietQkv(3);
  const int64_t needle = 117;
  PlantNeedle(&t, needle);
  const std::vector<Case> cases = {
      {"block_sparse", {{"block", int64_t{16}}, {"block_budget", int64_t{4}}}, false},
      {"vertical_slash",
       {{"last_q", int64_t{32}},
        {"local", int64_t{8}},
        {"verticals", int64_t{8}},
        {"slashes", int64_t{8}}},
       false},
      {"flexprefill", {{"gamma", 0.3}, {"min_budget", int64_t{8}}, {"last_q", int64_t{32}}}, false},
      {"xattention", {{"block", int64_t{16}}, {"stride", int64_t{4}}, {"threshold", 0.3}}, false},
      {"oracle_topk", {{"top_k", int64_t{8}}}, false},
      {"snapkv",
       {{"window", int64_t{32}},
        {"pool", int64_t{3}},
        {"keep_first", int64_t{4}},
        {"keep_last", int64_t{16}},
        {"token_capacity", int64_t{32}}},
       true},
      {"ada_snapkv",
       {{"window", int64_t{32}},
        {"pool", int64_t{3}},
        {"keep_first", int64_t{4}},
        {"keep_last", int64_t{16}},
        {"token_capacity", int64_t{32}}},
       true},
      {"quest", {{"page", int64_t{16}}, {"token_budget", int64_t{32}}}, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.method);
    SF_ASSERT_OK_AND_ASSIGN(MethodParams p, ParseMethodParams(c.method, c.params));
    absl::StatusOr<AttentionResult> r =
        c.decode ? DecodeAttention(c.method, p, t.Input(200), t.q.View().Rows(0, 200))
                 : PrefillAttention(c.method, p, t.Input());
    SF_ASSERT_OK(r.status());
    const int64_t last = t.q.len - (c.decode ? 200 : 0) - 1;
    EXPECT_TRUE(RowHas(*r->selection, 0, last, needle));
    EXPECT_TRUE(RowHas(*r->selection, 1, last, needle));
    EXPECT_LT(r->density(), 0.6);
  }
}

TEST(Selection, StrongDiagonal_IsChosen) {
  Qkv t = QuietQkv(4);
  const int64_t offset = 97;
  // Query i matches key i - offset through a position code shared by both.
  std::mt19937_64 rng(11);
  std::normal_distribution<float> n(0.0f, 1.0f);
  for (int64_t j = 0; j + offset < kLen; ++j) {
    std::vector<float> code(kDim);
    for (float& x : code) x = n(rng) * 0.6f;
    for (int64_t x = 0; x < kDim; ++x) {
      t.k.Row(0, j)[x] += code[x];
      for (int64_t h = 0; h < 2; ++h) t.q.Row(h, j + offset)[x] += code[x];
    }
  }
  for (const Case& c : std::vector<Case>{
           {"vertical_slash",
            {{"last_q", int64_t{32}},
             {"local", int64_t{8}},
             {"verticals", int64_t{8}},
             {"slashes", int64_t{9}}},
            false},
           // The 64 forced local diagonals count in the budget (as in the study): 72 leaves 8.
           {"flexprefill",
            {{"gamma", 0.3}, {"min_budget", int64_t{72}}, {"last_q", int64_t{32}}},
            false},
           {"oracle_topk", {{"top_k", int64_t{4}}}, false}}) {
    SCOPED_TRACE(c.method);
    SF_ASSERT_OK_AND_ASSIGN(AttentionResult r, RunCase(c, t));
    for (int64_t i : {100, 180, 255}) EXPECT_TRUE(RowHas(*r.selection, 1, i, i - offset)) << i;
  }
}

TEST(Selection, ForcedSinkAndLocalTokens_AlwaysPresent) {
  Qkv t = QuietQkv(5);
  PlantNeedle(&t, 150);  // a strong competitor for the budget
  const std::vector<std::pair<Case, std::pair<int64_t, int64_t>>> cases = {
      // (case, (sink tokens, local tokens)) that every row must contain
      {{"vertical_slash",
        {{"last_q", int64_t{32}},
         {"sink", int64_t{4}},
         {"local", int64_t{8}},
         {"verticals", int64_t{4}},
         {"slashes", int64_t{8}}},
        false},
       {4, 8}},
      {{"block_sparse", {{"block", int64_t{16}}, {"block_budget", int64_t{3}}}, false}, {16, 17}},
      {{"streaming", {{"sink", int64_t{4}}, {"window", int64_t{8}}}, false}, {4, 8}},
      {{"xattention", {{"block", int64_t{16}}, {"stride", int64_t{4}}, {"threshold", 0.1}}, false},
       {16, 1}},
      {{"flexprefill",
        {{"gamma", 0.1}, {"min_budget", int64_t{1}}, {"last_q", int64_t{32}}},
        false},
       {4, 64}},
  };
  for (const auto& [c, forced] : cases) {
    SCOPED_TRACE(c.method);
    SF_ASSERT_OK_AND_ASSIGN(AttentionResult r, RunCase(c, t));
    for (int64_t h = 0; h < 2; ++h) {
      for (int64_t i = 0; i < kLen; i += 7) {
        for (int64_t j = 0; j < std::min(forced.first, i + 1); ++j) {
          ASSERT_TRUE(RowHas(*r.selection, h, i, j)) << "sink " << j << " row " << i;
        }
        for (int64_t j = std::max<int64_t>(0, i - forced.second + 1); j <= i; ++j) {
          ASSERT_TRUE(RowHas(*r.selection, h, i, j)) << "local " << j << " row " << i;
        }
      }
    }
  }
  // SnapKV family: first keep_first and last keep_last prompt tokens are kept.
  for (const char* method : {"snapkv", "ada_snapkv"}) {
    SF_ASSERT_OK_AND_ASSIGN(MethodParams p,
                            ParseMethodParams(method, {{"window", int64_t{32}},
                                                       {"keep_first", int64_t{4}},
                                                       {"keep_last", int64_t{16}},
                                                       {"token_capacity", int64_t{24}}}));
    SF_ASSERT_OK_AND_ASSIGN(
        KeptTokens kept, CompressKv(method, p, t.q.View().Rows(160, 40), t.k.View().Rows(0, 200)));
    for (const auto& head : kept.per_kv_head) {
      for (int64_t j : {0, 1, 2, 3, 184, 199}) {
        EXPECT_TRUE(std::binary_search(head.begin(), head.end(), j)) << method << " " << j;
      }
    }
  }
}

TEST(QuestPageIndex, CurrentPageAlwaysChosen_AndBudgetRespected) {
  const Qkv t = RandomQkv(4, 2, 203, 64, 21);
  QuestPageIndex index(t.k.View(), 16);
  const auto pages = index.Select(t.q.View(), 202, 3, /*gqa_shared=*/true);
  for (int64_t h = 0; h < 4; ++h) {
    ASSERT_EQ(pages[h].size(), 4u);
    EXPECT_EQ(pages[h].back(), 202 / 16);
  }
  EXPECT_EQ(pages[0], pages[1]);  // shared within the GQA group
}

// --- Parameters and the compression mapping -----------------------------------------

TEST(MethodParams, InvalidParameters_NameTheParameter) {
  const Qkv t = RandomQkv(2, 1, 64, 64, 1);
  auto prefill = [&](const std::string& m, const ParamMap& map) -> absl::Status {
    SF_ASSIGN_OR_RETURN(MethodParams p, ParseMethodParams(m, map));
    return PrefillAttention(m, p, t.Input()).status();
  };
  auto decode = [&](const std::string& m, const ParamMap& map) -> absl::Status {
    SF_ASSIGN_OR_RETURN(MethodParams p, ParseMethodParams(m, map));
    return DecodeAttention(m, p, t.Input(48), t.q.View().Rows(0, 48)).status();
  };
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_THAT(prefill("block_sparse", {{"block", int64_t{0}}, {"block_budget", int64_t{3}}}),
              StatusIs(kInvalid, HasSubstr("'block'")));
  EXPECT_THAT(prefill("block_sparse", {{"block", int64_t{16}}, {"block_budget", int64_t{5}}}),
              StatusIs(kInvalid, HasSubstr("'block_budget'")));
  EXPECT_THAT(prefill("block_sparse", {{"block", int64_t{16}}}),
              StatusIs(kInvalid, HasSubstr("'block_budget'")));
  EXPECT_THAT(prefill("vertical_slash", {{"verticals", int64_t{65}}, {"slashes", int64_t{64}}}),
              StatusIs(kInvalid, HasSubstr("'verticals'")));
  EXPECT_THAT(prefill("vertical_slash", {{"verticals", int64_t{8}}, {"slashes", int64_t{8}}}),
              StatusIs(kInvalid, HasSubstr("'slashes'")));
  EXPECT_THAT(prefill("streaming", {{"window", int64_t{65}}}),
              StatusIs(kInvalid, HasSubstr("'window'")));
  EXPECT_THAT(prefill("oracle_topk", {{"top_k", int64_t{100}}}),
              StatusIs(kInvalid, HasSubstr("'top_k'")));
  EXPECT_THAT(prefill("xattention", {{"block", int64_t{16}}, {"stride", int64_t{5}}}),
              StatusIs(kInvalid, HasSubstr("'stride'")));
  EXPECT_THAT(prefill("flexprefill", {{"gamma", 1.5}}), StatusIs(kInvalid, HasSubstr("'gamma'")));
  EXPECT_THAT(prefill("flexprefill", {{"variant", std::string("mine")}}),
              StatusIs(kInvalid, HasSubstr("'variant'")));
  EXPECT_THAT(prefill("dense", {{"block", int64_t{3}}}), StatusIs(kInvalid, HasSubstr("'block'")));
  EXPECT_THAT(prefill("quest", {{"token_budget", int64_t{16}}}),
              StatusIs(kInvalid, HasSubstr("decode method")));
  EXPECT_THAT(decode("quest", {{"page", int64_t{16}}, {"token_budget", int64_t{20}}}),
              StatusIs(kInvalid, HasSubstr("'token_budget'")));
  EXPECT_THAT(decode("quest", {{"page", int64_t{16}}, {"token_budget", int64_t{80}}}),
              StatusIs(kInvalid, HasSubstr("'token_budget'")));
  EXPECT_THAT(decode("snapkv", {{"token_capacity", int64_t{49}}}),
              StatusIs(kInvalid, HasSubstr("'token_capacity'")));
  EXPECT_THAT(decode("snapkv", {{"token_capacity", int64_t{20}}, {"pool", int64_t{4}}}),
              StatusIs(kInvalid, HasSubstr("'pool'")));
  EXPECT_THAT(decode("ada_snapkv", {{"token_capacity", int64_t{10}}, {"keep_last", int64_t{16}}}),
              StatusIs(kInvalid, HasSubstr("'token_capacity'")));
  EXPECT_THAT(decode("block_sparse", {{"block_budget", int64_t{3}}}),
              StatusIs(kInvalid, HasSubstr("prefill method")));
  EXPECT_THAT(ParseMethodParams("sparse_magic", {}), StatusIs(kInvalid, HasSubstr("sparse_magic")));
}

TEST(MethodParams, CompressionMapping_RoundTripsToTheTarget) {
  for (const std::string m : {"block_sparse", "vertical_slash", "streaming", "snapkv", "ada_snapkv",
                              "quest", "oracle_topk"}) {
    SCOPED_TRACE(m);
    for (double target : {2.0, 5.0, 10.0, 20.0}) {
      SF_ASSERT_OK_AND_ASSIGN(ParamMap p, ParamsForCompression(m, {}, target, 16384));
      SF_ASSERT_OK_AND_ASSIGN(double back, NominalCompression(m, p, 16384));
      EXPECT_NEAR(back / target, 1.0, 0.05) << target;
    }
    SF_ASSERT_OK_AND_ASSIGN(ParamMap one, ParamsForCompression(m, {}, 1.0, 16384));
    SF_ASSERT_OK_AND_ASSIGN(double back, NominalCompression(m, one, 16384));
    EXPECT_DOUBLE_EQ(back, 1.0);
  }
  for (const std::string m : {"streaming", "oracle_topk"}) {
    SF_ASSERT_OK_AND_ASSIGN(ParamMap p, ParamsForCompression(m, {}, 8.0, 8192, Phase::kDecode));
    SF_ASSERT_OK_AND_ASSIGN(double back, NominalCompression(m, p, 8192, Phase::kDecode));
    EXPECT_NEAR(back, 8.0, 0.01) << m;
  }
  EXPECT_THAT(ParamsForCompression("flexprefill", {}, 5.0, 4096),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("gamma")));
  EXPECT_THAT(ParamsForCompression("quest", {}, 0.5, 4096),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("compression")));
}

}  // namespace
}  // namespace sf::kernels

namespace sf::kernels {
namespace {

// SelectedPairs counts line and block patterns in closed form: it must equal the pairs
// the executor walks row by row, from the first row and from a later one, and
// DescribeSelection must give the structure behind them.
TEST(SelectedPairs, ClosedForms_EqualTheRowByRowCount) {
  const Qkv qkv = RandomQkv(4, 2, 301, 64, 11);
  struct Case {
    std::string method;
    ParamMap params;
  };
  const std::vector<Case> cases = {
      {"vertical_slash",
       {{"verticals", int64_t{40}}, {"slashes", int64_t{70}}, {"last_q", int64_t{32}}}},
      {"flexprefill", {{"gamma", 0.7}, {"min_budget", int64_t{8}}, {"last_q", int64_t{32}}}},
      {"block_sparse", {{"block", int64_t{16}}, {"block_budget", int64_t{5}}}},
      {"xattention", {{"block", int64_t{32}}, {"stride", int64_t{4}}, {"threshold", 0.8}}},
      {"streaming", {{"window", int64_t{50}}}},
  };
  for (const Case& c : cases) {
    for (int64_t begin : {int64_t{0}, int64_t{123}}) {
      SCOPED_TRACE(c.method + " from row " + std::to_string(begin));
      SF_ASSERT_OK_AND_ASSIGN(MethodParams typed, ParseMethodParams(c.method, c.params));
      const AttentionInput in = qkv.Input(begin);
      SF_ASSERT_OK_AND_ASSIGN(SelectionResult s, PrefillSelect(c.method, typed, in));
      const AttentionResult r = AttendSelected(in, s.selection);
      EXPECT_DOUBLE_EQ(SelectedPairs(*s.selection, in), r.pairs_computed);
      const SelectionStructure st = DescribeSelection(*s.selection);
      ASSERT_EQ(st.columns.size(), 4u);
      if (c.method == "vertical_slash") {
        EXPECT_EQ(st.columns[0].size(), 40u);
        EXPECT_EQ(st.offsets[0].size(), 70u);
      }
      if (c.method == "block_sparse") {
        EXPECT_EQ(st.block, 16);
      }
    }
  }
}

}  // namespace
}  // namespace sf::kernels
