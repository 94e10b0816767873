#include "methods/registry.h"

#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace sf {
namespace {

TEST(MethodCatalog, HasTheStudyMethodsWithUniqueNames) {
  std::set<std::string> names;
  for (const MethodInfo& m : AllMethods()) EXPECT_TRUE(names.insert(m.name).second) << m.name;
  for (const char* n : {"dense", "block_sparse", "vertical_slash", "flexprefill", "xattention",
                        "streaming", "snapkv", "ada_snapkv", "quest", "oracle_topk"}) {
    EXPECT_NE(FindMethod(n), nullptr) << n;
  }
  EXPECT_EQ(FindMethod("desne"), nullptr);
}

TEST(MethodCatalog, BudgetParamIsAParameterOfItsMethod) {
  for (const MethodInfo& m : AllMethods()) {
    if (std::string(m.name) == "dense") {
      EXPECT_STREQ(m.budget_param, "");
      continue;
    }
    EXPECT_NE(FindParam(m, m.budget_param), nullptr) << m.name;
  }
}

TEST(MethodCatalog, DefaultsLieWithinBounds) {
  for (const MethodInfo& m : AllMethods()) {
    for (const MethodParam& p : m.params) {
      if ((p.type == ParamType::kInt || p.type == ParamType::kFloat) && *p.default_value) {
        const double v = std::stod(p.default_value);
        EXPECT_GE(v, p.min) << m.name << "." << p.name;
        EXPECT_LE(v, p.max) << m.name << "." << p.name;
      }
    }
  }
}

TEST(MethodCatalog, StudyDefaults) {
  EXPECT_STREQ(FindParam(*FindMethod("snapkv"), "pool")->default_value, "21");
  EXPECT_STREQ(FindParam(*FindMethod("vertical_slash"), "last_q")->default_value, "256");
  EXPECT_STREQ(FindParam(*FindMethod("quest"), "page")->default_value, "16");
  EXPECT_STREQ(FindParam(*FindMethod("block_sparse"), "block")->default_value, "16");
}

}  // namespace
}  // namespace sf

namespace sf {
namespace {

TEST(MethodRegistry, EveryMethodDeclaresWhatItsRuleNeeds) {
  for (const MethodInfo& m : AllMethods()) {
    SCOPED_TRACE(m.name);
    EXPECT_FALSE(m.phases.empty());
    EXPECT_TRUE(m.phases.Contains(m.default_phases));
    EXPECT_NE(m.estimation_flops, nullptr);
    if (m.budget_rule == BudgetRule::kClosedForm) {
      EXPECT_NE(m.map_compression, nullptr);
      EXPECT_NE(m.nominal_compression, nullptr);
    }
    if (m.budget_rule == BudgetRule::kNone) {
      EXPECT_STREQ(m.budget_param, "");
    }
  }
  EXPECT_EQ(BaselineMethod().budget_rule, BudgetRule::kNone);
}

// The closed forms invert: the nominal compression of the mapped budget is the target
// (within the rounding of an integer budget), and compression 1 gives compression 1.
TEST(MethodRegistry, ClosedFormsRoundTrip) {
  for (const MethodInfo& m : AllMethods()) {
    if (m.budget_rule != BudgetRule::kClosedForm) continue;
    for (Phase phase : {Phase::kPrefill, Phase::kDecode}) {
      if (!m.phases.Has(phase)) continue;
      SCOPED_TRACE(absl::StrCat(m.name, " ", PhaseName(phase)));
      for (double target : {1.0, 2.0, 4.0, 10.0}) {
        absl::StatusOr<ParamMap> p = ParamsForCompression(m.name, {}, target, 16384, phase);
        ASSERT_TRUE(p.ok()) << p.status();
        absl::StatusOr<double> back = NominalCompression(m.name, *p, 16384, phase);
        ASSERT_TRUE(back.ok()) << back.status();
        EXPECT_NEAR(*back / target, 1.0, 0.05) << target;
      }
    }
  }
}

TEST(MethodRegistry, UnknownNamesAndMassThresholdsAreErrors) {
  EXPECT_FALSE(LookUpMethod("sparse_magic").ok());
  EXPECT_EQ(ParamsForCompression("sparse_magic", {}, 2, 1024).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParamsForCompression("xattention", {}, 2, 1024).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(NominalCompression("flexprefill", {}, 1024).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(EstimationFlops("sparse_magic", {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sf
