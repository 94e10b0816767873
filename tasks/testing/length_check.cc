#include "tasks/testing/length_check.h"

#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tasks/rng.h"
#include "tasks/task.h"
#include "tasks/testing/fake_tokenizers.h"
#include "tasks/words.h"

namespace sf::tasks::testing {
namespace {

constexpr int kDocs = 800;
constexpr int kWordsPerDoc = 120;

std::string Doc(Rng& rng) {
  std::vector<std::string> words;
  for (int w = 0; w < kWordsPerDoc; ++w) words.push_back(rng.Pick(EnglishWords()));
  return absl::StrJoin(words, " ") + ".";
}

// Counts tokenizer calls, to hold the length search to a few counts per sample.
class CountingTokenizer : public Tokenizer {
 public:
  explicit CountingTokenizer(const Tokenizer& inner) : inner_(inner) {}
  std::vector<TokenId> Encode(absl::string_view text, bool parse_special) const override {
    ++calls_;
    return inner_.Encode(text, parse_special);
  }
  absl::StatusOr<std::string> Decode(const std::vector<TokenId>& ids, bool skip) const override {
    return inner_.Decode(ids, skip);
  }
  int64_t CountTokens(absl::string_view text) const override {
    ++calls_;
    return inner_.CountTokens(text);
  }
  int64_t VocabSize() const override { return inner_.VocabSize(); }
  std::string Name() const override { return inner_.Name(); }
  int64_t TakeCalls() const { return calls_.exchange(0); }

 private:
  const Tokenizer& inner_;
  mutable std::atomic<int64_t> calls_{0};
};

}  // namespace

void WriteLengthTestDatasets(const std::string& dir) {
  Rng rng(2025);
  std::ofstream squad(dir + "/gen_squad.json");
  squad << "{\"version\": \"v2.0\", \"data\": [{\"title\": \"generated\", \"paragraphs\": [";
  for (int d = 0; d < kDocs; ++d) {
    const std::string doc = Doc(rng);
    const std::string answer = doc.substr(0, doc.find(' '));
    squad << (d ? "," : "") << "{\"context\": \"" << doc << "\", \"qas\": [{\"id\": \"" << d
          << "\", \"question\": \"Which word opens it?\", "
          << "\"is_impossible\": false, \"answers\": [{\"text\": \"" << answer
          << "\", \"answer_start\": 0}]}]}";
  }
  squad << "]}]}\n";
  std::ofstream leval(dir + "/gen_leval.jsonl");
  for (int d = 0; d < kDocs; ++d) {
    leval << "{\"context\": \"" << Doc(rng)
          << "\", \"questions\": [\"Question: which is it? Options: A.one B.two C.three D.four\"], "
          << "\"answer\": [\"" << static_cast<char>('A' + rng.Below(4)) << "\"]}\n";
  }
}

ParamMap LengthTestParams(const std::string& task, int64_t length, const std::string& dir) {
  ParamMap p;
  if (task == "qa_squad") p["path"] = dir + "/gen_squad.json";
  if (task == "qa_quality" || task == "qa_toefl") p["path"] = dir + "/gen_leval.jsonl";
  if (length < 8192 && task == "story_retrieval") p["num_queries"] = int64_t{2};
  if (length < 2048 && task == "story_filtering") p["chapters_in_question"] = int64_t{1};
  if (length < 4096 && task == "ruler_cwe") p["common_word_frequency"] = int64_t{6};
  return p;
}

void CheckLengths(const std::vector<int64_t>& lengths, int samples_per_length,
                  std::vector<const Tokenizer*> tokenizers) {
  // A directory of this process's own: the three length tests run in parallel under
  // ctest -j, and a shared file would be rewritten while another test reads it.
  std::string dir_template = ::testing::TempDir() + "sf_length_XXXXXX";
  ASSERT_NE(mkdtemp(dir_template.data()), nullptr) << "mkdtemp " << dir_template;
  const std::string dir = dir_template;
  struct RemoveDir {
    std::string path;
    ~RemoveDir() { std::filesystem::remove_all(path); }
  } remove_dir{dir};
  WriteLengthTestDatasets(dir);
  WordPieceTokenizer words;
  ChunkTokenizer chunks;
  if (tokenizers.empty()) tokenizers = {&words, &chunks};
  for (const TaskInfo& info : AllTasks()) {
    for (const Tokenizer* inner : tokenizers) {
      CountingTokenizer counting(*inner);
      const Tokenizer* tok = &counting;
      for (int64_t length : lengths) {
        auto task = CreateTask(info.name, LengthTestParams(info.name, length, dir));
        ASSERT_TRUE(task.ok()) << task.status();
        const PromptBudget budget{length, 64, 0};
        for (int index = 0; index < samples_per_length; ++index) {
          SCOPED_TRACE(absl::StrCat(info.name, " ", tok->Name(), " L=", length, " #", index));
          counting.TakeCalls();
          absl::StatusOr<Sample> s = (*task)->Generate(*tok, budget, 43, index);
          ASSERT_TRUE(s.ok()) << s.status();
          // A few whole-prompt counts (QA tasks also count one gold prompt per question
          // the first time a tokenizer meets it).
          EXPECT_LE(counting.TakeCalls(), 10 + index + 1);
          const int64_t tokens = tok->CountTokens(s->prompt);
          EXPECT_EQ(tokens, s->prompt_tokens);
          // With the template's tokens, in [0.9 L, L].
          EXPECT_LE(tokens + budget.template_overhead, length);
          EXPECT_GE(tokens + budget.template_overhead, (length * 9 + 9) / 10);
          if (index == 0) {
            absl::StatusOr<Sample> again = (*task)->Generate(*tok, budget, 43, index);
            ASSERT_TRUE(again.ok()) << again.status();
            EXPECT_EQ(again->prompt, s->prompt);
          }
        }
      }
    }
  }
}

}  // namespace sf::tasks::testing
