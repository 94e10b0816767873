// Property test for the spec parser: random mutations of valid specs never crash and
// either parse (and expand within the limit) or give errors located in the file.
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/spec.h"
#include "common/testing/spec_corpus.h"
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

// Fragments that stress YAML structure and the spec's typing.
const char* const kTokens[] = {"[",          "]",
                               "{",          "}",
                               ",",          ": ",
                               "- ",         "#",
                               "&a ",        "*a",
                               "!!str ",     "<<: ",
                               "~",          "null",
                               "\"",         "'",
                               "|",          ">",
                               "\t",         "\n",
                               "  ",         "1e999",
                               "-1",         "0",
                               "0.5",        "nan",
                               "true",       "99999999999999999999",
                               "[[[[[[",     "{a: {b: {c: [",
                               "name",       "compression",
                               "dense",      "phase: both",
                               "samples",    "path: models/tiny-llama",
                               "\xff\xfe",   "\\u0000",
                               "%YAML 1.2\n"};

std::string Mutate(const std::string& text, std::mt19937_64& rng) {
  std::string out = text;
  auto pick = [&rng](size_t n) { return n == 0 ? 0 : static_cast<size_t>(rng() % n); };
  const int edits = 1 + static_cast<int>(rng() % 3);
  for (int e = 0; e < edits; ++e) {
    switch (rng() % 6) {
      case 0: {  // replace one byte
        if (out.empty()) break;
        out[pick(out.size())] = static_cast<char>(32 + rng() % 95);
        break;
      }
      case 1: {  // delete a range
        if (out.empty()) break;
        const size_t at = pick(out.size());
        out.erase(at, 1 + pick(20));
        break;
      }
      case 2: {  // insert a token
        const char* token = kTokens[pick(std::size(kTokens))];
        out.insert(pick(out.size() + 1), token);
        break;
      }
      case 3: {  // duplicate a line
        std::vector<std::string> lines = absl::StrSplit(out, '\n');
        const size_t i = pick(lines.size());
        lines.insert(lines.begin() + static_cast<long>(i), lines[i]);
        out = absl::StrJoin(lines, "\n");
        break;
      }
      case 4: {  // swap two lines
        std::vector<std::string> lines = absl::StrSplit(out, '\n');
        std::swap(lines[pick(lines.size())], lines[pick(lines.size())]);
        out = absl::StrJoin(lines, "\n");
        break;
      }
      case 5: {  // change a line's indentation
        std::vector<std::string> lines = absl::StrSplit(out, '\n');
        std::string& line = lines[pick(lines.size())];
        if (rng() % 2 == 0) {
          line.insert(0, std::string(1 + pick(4), ' '));
        } else if (!line.empty() && line[0] == ' ') {
          line.erase(0, 1);
        }
        out = absl::StrJoin(lines, "\n");
        break;
      }
    }
  }
  return out;
}

TEST(SpecFuzz, MutatedSpecs_ParseOrGiveLocatedErrors) {
  const fs::path dir = sf::testing::FreshTestDir();
  sf::testing::WriteCorpusWorld(dir);
  SpecOptions options;
  options.base_dir = dir.string();
  options.max_jobs = 5000;
  std::vector<std::string> seeds;
  for (const fs::path& f : sf::testing::CorpusFiles("good")) seeds.push_back(Slurp(f));
  seeds.push_back(Slurp(sf::testing::SourceDir() / "examples/quickstart.yaml"));
  ASSERT_GE(seeds.size(), 4u);

  std::mt19937_64 rng(20261128);
  int parsed = 0, rejected = 0;
  constexpr int kIterations = 3000;
  for (int i = 0; i < kIterations; ++i) {
    const std::string text = Mutate(seeds[i % seeds.size()], rng);
    std::vector<SpecError> errors;
    absl::StatusOr<SweepSpec> spec = ParseSweepSpec(text, "fuzz.yaml", options, &errors);
    if (spec.ok()) {
      ++parsed;
      EXPECT_TRUE(errors.empty());
      EXPECT_LE(spec->grid_size, options.max_jobs);
      absl::StatusOr<std::vector<JobSpec>> jobs = ExpandSweep(*spec);
      ASSERT_TRUE(jobs.ok()) << jobs.status() << "\n--- input ---\n" << text;
      EXPECT_LE(static_cast<int64_t>(jobs->size()), spec->grid_size);
      continue;
    }
    ++rejected;
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument) << text;
    ASSERT_FALSE(errors.empty()) << "--- input ---\n" << text;
    const int line_count = 1 + static_cast<int>(std::count(text.begin(), text.end(), '\n'));
    for (const SpecError& e : errors) {
      EXPECT_EQ(e.file, "fuzz.yaml");
      EXPECT_GE(e.line, 1) << e.ToString() << "\n--- input ---\n" << text;
      EXPECT_LE(e.line, line_count + 1) << e.ToString();
      EXPECT_GE(e.column, 1) << e.ToString();
      EXPECT_FALSE(e.message.empty());
    }
  }
  // Both outcomes occur, so the mutations exercise the parser's paths.
  EXPECT_GT(parsed, kIterations / 20);
  EXPECT_GT(rejected, kIterations / 4);
  std::cout << "parsed " << parsed << ", rejected " << rejected << " of " << kIterations << "\n";
}

}  // namespace
}  // namespace sf
