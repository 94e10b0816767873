// Test-only helpers: read the committed fixtures of tests/data/analysis/ (the data
// sets and their scipy/statsmodels reference outputs) and parse the GLM CSV files.
#ifndef SF_ANALYSIS_TEST_FIXTURES_H_
#define SF_ANALYSIS_TEST_FIXTURES_H_

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace sf::analysis::testing {

// Contents of tests/data/analysis/<name> (SF_SOURCE_DIR is set by sf_test).
inline std::string ReadFixture(const std::string& name) {
  const char* root = std::getenv("SF_SOURCE_DIR");
  const std::string path =
      std::string(root != nullptr ? root : ".") + "/tests/data/analysis/" + name;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read fixture " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline nlohmann::json ReadJsonFixture(const std::string& name) {
  return nlohmann::json::parse(ReadFixture(name));
}

struct GlmRow {
  std::string task;
  double n_params, seq_len, compression, score, samples;
};

// Rows of a glm_*.csv fixture (header task,N,L,C,score,n).
inline std::vector<GlmRow> ReadGlmCsv(const std::string& name) {
  std::vector<GlmRow> rows;
  std::vector<std::string> lines = absl::StrSplit(ReadFixture(name), '\n', absl::SkipEmpty());
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> f = absl::StrSplit(lines[i], ',');
    GlmRow r;
    r.task = f.at(0);
    EXPECT_TRUE(absl::SimpleAtod(f.at(1), &r.n_params) && absl::SimpleAtod(f.at(2), &r.seq_len) &&
                absl::SimpleAtod(f.at(3), &r.compression) && absl::SimpleAtod(f.at(4), &r.score) &&
                absl::SimpleAtod(f.at(5), &r.samples))
        << name << " line " << i + 1;
    rows.push_back(r);
  }
  return rows;
}

}  // namespace sf::analysis::testing

#endif  // SF_ANALYSIS_TEST_FIXTURES_H_
