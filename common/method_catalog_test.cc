#include "common/method_catalog.h"

#include <set>
#include <string>

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
