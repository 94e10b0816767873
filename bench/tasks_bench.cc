// Sample generation speed: 100 samples per task at 128K tokens (default), sized with
// the two test tokenizers, or with real tokenizer.json files given by --tokenizer.
// Prints a table.
//   tasks_bench [--length L] [--samples N] [--task NAME] [--tokenizer PATH]...
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "tasks/task.h"
#include "tasks/testing/fake_tokenizers.h"
#include "tasks/testing/length_check.h"
#include "worker/model/tokenizer.h"

namespace {

// Counts how often, and how much text, the tasks tokenize.
class CountingTokenizer : public sf::Tokenizer {
 public:
  explicit CountingTokenizer(const sf::Tokenizer& inner) : inner_(inner) {}
  std::vector<sf::TokenId> Encode(absl::string_view text, bool ps) const override {
    Note(text);
    return inner_.Encode(text, ps);
  }
  absl::StatusOr<std::string> Decode(const std::vector<sf::TokenId>& ids, bool s) const override {
    return inner_.Decode(ids, s);
  }
  int64_t CountTokens(absl::string_view text) const override {
    Note(text);
    return inner_.CountTokens(text);
  }
  int64_t VocabSize() const override { return inner_.VocabSize(); }
  std::string Name() const override { return inner_.Name(); }
  int64_t calls() const { return calls_; }
  int64_t chars() const { return chars_; }
  void Reset() { calls_ = chars_ = 0; }

 private:
  void Note(absl::string_view text) const {
    ++calls_;
    chars_ += static_cast<int64_t>(text.size());
  }
  const sf::Tokenizer& inner_;
  mutable std::atomic<int64_t> calls_{0}, chars_{0};
};

}  // namespace

int main(int argc, char** argv) {
  int64_t length = 131072;
  int samples = 100;
  std::string only;
  std::vector<std::string> real_paths;  // --tokenizer PATH/tokenizer.json (repeatable)
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--tokenizer") == 0) real_paths.push_back(argv[i + 1]);
    if (std::strcmp(argv[i], "--length") == 0) length = std::atoll(argv[i + 1]);
    if (std::strcmp(argv[i], "--samples") == 0) samples = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--task") == 0) only = argv[i + 1];
  }
  const std::string dir = (std::filesystem::temp_directory_path() / "sf_tasks_bench").string();
  std::filesystem::create_directories(dir);
  sf::tasks::testing::WriteLengthTestDatasets(dir);
  sf::tasks::testing::WordPieceTokenizer words;
  sf::tasks::testing::ChunkTokenizer chunks;
  std::vector<const sf::Tokenizer*> tokenizers{&words, &chunks};
  std::vector<std::unique_ptr<sf::HfTokenizer>> real;
  for (const std::string& path : real_paths) {
    auto tok = sf::HfTokenizer::FromFile(path);
    if (!tok.ok()) {
      std::fprintf(stderr, "tasks_bench: %s\n", tok.status().ToString().c_str());
      return 2;
    }
    real.push_back(std::move(*tok));
    tokenizers = {};
  }
  for (const auto& t : real) tokenizers.push_back(t.get());
  std::printf("length %lld, %d samples per task\n", static_cast<long long>(length), samples);
  std::printf("%-16s %-15s %9s %10s %12s %14s %12s\n", "task", "tokenizer", "total_s", "ms/sample",
              "counts/smp", "chars_counted", "min..max_tok");
  for (const sf::tasks::TaskInfo& info : sf::tasks::AllTasks()) {
    if (!only.empty() && info.name != only) continue;
    for (const sf::Tokenizer* inner : tokenizers) {
      CountingTokenizer tok(*inner);
      auto task = sf::tasks::CreateTask(
          info.name, sf::tasks::testing::LengthTestParams(info.name, length, dir));
      if (!task.ok()) {
        std::printf("%-16s %s\n", info.name.c_str(), task.status().ToString().c_str());
        continue;
      }
      int64_t lo = INT64_MAX, hi = 0, prompt_chars = 0;
      const auto start = std::chrono::steady_clock::now();
      for (int i = 0; i < samples; ++i) {
        auto s = (*task)->Generate(tok, {length}, 43, i);
        if (!s.ok()) {
          std::printf("%-16s sample %d: %s\n", info.name.c_str(), i, s.status().ToString().c_str());
          return 1;
        }
        lo = std::min(lo, s->prompt_tokens + 64);
        hi = std::max(hi, s->prompt_tokens + 64);
        prompt_chars += static_cast<int64_t>(s->prompt.size());
      }
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("%-16s %-15s %9.2f %10.1f %12.2f %13.2fx %6lld..%lld\n", info.name.c_str(),
                  inner->Name().c_str(), secs, 1000 * secs / samples,
                  static_cast<double>(tok.calls()) / samples,
                  static_cast<double>(tok.chars()) / std::max<int64_t>(1, prompt_chars),
                  static_cast<long long>(lo), static_cast<long long>(hi));
    }
  }
  return 0;
}
