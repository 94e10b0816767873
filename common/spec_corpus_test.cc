// Runs every spec of tests/data/specs and examples/{quickstart,miniature}.yaml against its stated
// expectations (errors at a line and column with a message, or a job count).
#include "common/testing/spec_corpus.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/spec.h"
#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace sf {
namespace {

namespace fs = std::filesystem;

std::string Slurp(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Expectation {
  int line = 0;
  int column = 0;
  std::string text;
};

struct Expectations {
  std::vector<Expectation> errors;
  int error_count = -1;
  int64_t jobs = -1;
};

Expectations ReadExpectations(const std::string& text) {
  Expectations out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::ConsumePrefix(&line, "# expect: ")) {
      std::vector<absl::string_view> parts = absl::StrSplit(line, absl::MaxSplits(':', 2));
      Expectation e;
      if (parts.size() == 3 && absl::SimpleAtoi(parts[0], &e.line) &&
          absl::SimpleAtoi(parts[1], &e.column)) {
        e.text = std::string(absl::StripLeadingAsciiWhitespace(parts[2]));
        out.errors.push_back(e);
      } else {
        ADD_FAILURE() << "malformed expectation: " << line;
      }
    } else if (absl::ConsumePrefix(&line, "# expect-count: ")) {
      EXPECT_TRUE(absl::SimpleAtoi(line, &out.error_count)) << line;
    } else if (absl::ConsumePrefix(&line, "# expect-jobs: ")) {
      EXPECT_TRUE(absl::SimpleAtoi(line, &out.jobs)) << line;
    }
  }
  return out;
}

class SpecCorpusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = sf::testing::FreshTestDir();
    sf::testing::WriteCorpusWorld(dir_);
    options_.base_dir = dir_.string();
  }
  fs::path dir_;
  SpecOptions options_;
};

TEST_F(SpecCorpusTest, BadSpecs_ReportEachExpectedErrorAtItsPosition) {
  const auto files = sf::testing::CorpusFiles("bad");
  ASSERT_GE(files.size(), 20u);
  for (const fs::path& file : files) {
    SCOPED_TRACE(file.filename().string());
    const std::string text = Slurp(file);
    const Expectations want = ReadExpectations(text);
    ASSERT_FALSE(want.errors.empty()) << "a bad spec must state its expected errors";
    std::vector<SpecError> errors;
    absl::StatusOr<SweepSpec> spec =
        ParseSweepSpec(text, file.filename().string(), options_, &errors);
    ASSERT_FALSE(spec.ok()) << "parsed, but should fail";
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
    std::vector<std::string> got;
    for (const SpecError& e : errors) got.push_back(e.ToString());
    const std::string all = absl::StrJoin(got, "\n");
    for (const Expectation& w : want.errors) {
      bool found = false;
      for (const SpecError& e : errors) {
        found |= e.line == w.line && e.column == w.column && absl::StrContains(e.message, w.text);
      }
      EXPECT_TRUE(found) << "missing " << w.line << ":" << w.column << ": " << w.text << "\ngot:\n"
                         << all;
    }
    if (want.error_count >= 0) {
      EXPECT_EQ(static_cast<int>(errors.size()), want.error_count) << all;
    }
    // The status carries the same lines as the error list.
    EXPECT_EQ(spec.status().message(), all);
  }
}

TEST_F(SpecCorpusTest, GoodSpecs_ExpandToTheStatedJobCount) {
  auto files = sf::testing::CorpusFiles("good");
  ASSERT_GE(files.size(), 3u);
  // The examples name the model zoo, so they resolve against the repository root.
  const fs::path examples = sf::testing::SourceDir() / "examples";
  files.push_back(examples / "quickstart.yaml");
  files.push_back(examples / "miniature.yaml");
  for (const fs::path& file : files) {
    SCOPED_TRACE(file.filename().string());
    const std::string text = Slurp(file);
    const Expectations want = ReadExpectations(text);
    SpecOptions options = options_;
    if (file.parent_path() == examples) options.base_dir = sf::testing::SourceDir().string();
    SF_ASSERT_OK_AND_ASSIGN(SweepSpec spec, ParseSweepSpec(text, file.string(), options));
    ExpandStats stats;
    SF_ASSERT_OK_AND_ASSIGN(std::vector<JobSpec> jobs, ExpandSweep(spec, &stats));
    EXPECT_EQ(stats.grid_size, spec.grid_size);
    EXPECT_EQ(static_cast<int64_t>(jobs.size()), spec.grid_size - stats.duplicates);
    ASSERT_GE(want.jobs, 0) << "a good spec must state `# expect-jobs: N`";
    EXPECT_EQ(static_cast<int64_t>(jobs.size()), want.jobs);
  }
}

}  // namespace
}  // namespace sf
