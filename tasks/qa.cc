// The QA tasks: a gold document among distractor documents from a local dataset file in
// its public format (SQuAD v2 JSON; QuALITY and TOEFL-QA JSONL), the same question for a
// sample index at every length. qa_squad scores token F1; qa_quality and qa_toefl score
// exact match of option letters.
#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/status.h"
#include "nlohmann/json.hpp"
#include "tasks/fit.h"
#include "tasks/prompt.h"
#include "tasks/rng.h"
#include "tasks/scoring.h"
#include "tasks/task_list.h"

namespace sf::tasks {
namespace {

using nlohmann::json;

struct QaItem {
  size_t doc = 0;
  std::string question;
  std::vector<std::string> answers;  // SQuAD: accepted texts; MCQ: the option letters
};

struct QaDataset {
  std::vector<std::string> docs;
  std::vector<std::vector<std::string>> doc_words;
  std::vector<QaItem> items;
};

enum class Format { kSquad, kQuality, kToefl };

size_t AddDoc(QaDataset& d, std::map<std::string, size_t>& index, const std::string& text) {
  auto [it, inserted] = index.emplace(text, d.docs.size());
  if (inserted) {
    d.docs.push_back(text);
    d.doc_words.push_back(absl::StrSplit(text, absl::ByAnyChar(" \t\r\n"), absl::SkipEmpty()));
  }
  return it->second;
}

absl::StatusOr<std::string> ReadFile(const std::string& task, const std::string& path,
                                     const char* expected) {
  if (path.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("task ", task, ": set the parameter 'path' to ", expected));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("task ", task, ": cannot open dataset file '", path,
                                            "' (expected ", expected, ")"));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Letters(absl::string_view s) {
  std::string out;
  for (char c : s) {
    c = absl::ascii_toupper(c);
    if (c >= 'A' && c <= 'Z') out.push_back(c);
  }
  return out;
}

absl::StatusOr<QaDataset> LoadSquad(const std::string& task, const std::string& path) {
  static constexpr char kExpected[] =
      "a SQuAD v2 JSON file: {\"data\": [{\"paragraphs\": [{\"context\": ..., \"qas\": "
      "[{\"question\": ..., \"answers\": [{\"text\": ...}], \"is_impossible\": ...}]}]}]}";
  SF_ASSIGN_OR_RETURN(std::string text, ReadFile(task, path, kExpected));
  QaDataset d;
  std::map<std::string, size_t> index;
  try {
    const json root = json::parse(text);
    for (const json& article : root.at("data")) {
      for (const json& para : article.at("paragraphs")) {
        const size_t doc = AddDoc(d, index, para.at("context").get<std::string>());
        for (const json& qa : para.at("qas")) {
          if (qa.value("is_impossible", false)) continue;
          QaItem item{doc, qa.at("question").get<std::string>(), {}};
          for (const json& a : qa.at("answers")) item.answers.push_back(a.at("text"));
          if (!item.answers.empty()) d.items.push_back(std::move(item));
        }
      }
    }
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("task ", task, ": dataset file '", path,
                                                   "' is not ", kExpected, ": ", e.what()));
  }
  return d;
}

// QuALITY and TOEFL-QA as JSON lines. Two shapes are read: the one the study used
// (L-Eval's: {"context", "questions": [text with options], "answer": [letters]}) and
// QuALITY's own release ({"article", "questions": [{"question", "options", "gold_label"}]}).
absl::StatusOr<QaDataset> LoadJsonl(const std::string& task, const std::string& path,
                                    Format format) {
  static constexpr char kExpected[] =
      "JSON lines, each {\"context\": text, \"questions\": [text with options], \"answer\": "
      "[letters]} or, for QuALITY's release, {\"article\": text, \"questions\": [{\"question\", "
      "\"options\", \"gold_label\"}]}";
  SF_ASSIGN_OR_RETURN(std::string text, ReadFile(task, path, kExpected));
  QaDataset d;
  std::map<std::string, size_t> index;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    try {
      const json row = json::parse(line);
      if (row.contains("article")) {
        const size_t doc = AddDoc(d, index, row.at("article").get<std::string>());
        for (const json& q : row.at("questions")) {
          std::string question = q.at("question").get<std::string>();
          const json& options = q.at("options");
          for (size_t i = 0; i < options.size(); ++i) {
            absl::StrAppend(&question, "\n", std::string(1, static_cast<char>('A' + i)), ". ",
                            options[i].get<std::string>());
          }
          const int gold = q.at("gold_label").get<int>();
          if (gold < 1 || gold > static_cast<int>(options.size())) {
            throw std::out_of_range(absl::StrCat("gold_label ", gold, " is not an option"));
          }
          d.items.push_back({doc, question, {std::string(1, static_cast<char>('A' + gold - 1))}});
        }
        continue;
      }
      const size_t doc = AddDoc(d, index, row.at("context").get<std::string>());
      const json& questions = row.at("questions");
      const json& answers = row.at("answer");
      if (questions.size() != answers.size()) {
        throw std::out_of_range(
            absl::StrCat(questions.size(), " questions but ", answers.size(), " answers"));
      }
      for (size_t i = 0; i < questions.size(); ++i) {
        std::string q = questions[i].get<std::string>();
        if (format == Format::kToefl && absl::StartsWith(q, "Question: ")) q = q.substr(10);
        std::string a = answers[i].is_array()
                            ? absl::StrJoin(answers[i].get<std::vector<std::string>>(), "")
                            : answers[i].get<std::string>();
        d.items.push_back({doc, std::string(absl::StripAsciiWhitespace(q)), {Letters(a)}});
      }
    } catch (const std::exception& e) {
      return absl::InvalidArgumentError(absl::StrCat("task ", task, ": ", path, ":", line_no,
                                                     ": expected ", kExpected, ": ", e.what()));
    }
  }
  return d;
}

// The same question asked twice about one document is kept once.
void Dedupe(QaDataset& d) {
  std::set<std::pair<std::string, size_t>> seen;
  std::vector<QaItem> kept;
  for (QaItem& item : d.items) {
    if (seen.insert({NormalizeSpaces(item.question), item.doc}).second) {
      kept.push_back(std::move(item));
    }
  }
  d.items = std::move(kept);
}

// Token F1 of the study: punctuation and the words a/an/the/and/or/about/to removed,
// token sets (not bags), rounded to two decimals. "squad" is the official SQuAD metric:
// only articles removed, token bags, no rounding.
std::vector<std::string> F1Tokens(absl::string_view s, bool study) {
  std::string clean;
  for (char c : AsciiLower(s)) {
    if (!absl::ascii_ispunct(c)) clean.push_back(c);
  }
  static const std::set<std::string> kStudyDrop = {"a", "an", "the", "and", "or", "about", "to"};
  static const std::set<std::string> kSquadDrop = {"a", "an", "the"};
  const std::set<std::string>& drop = study ? kStudyDrop : kSquadDrop;
  std::vector<std::string> out;
  for (absl::string_view w : absl::StrSplit(clean, absl::ByAnyChar(" \t\r\n"), absl::SkipEmpty())) {
    if (!drop.contains(std::string(w))) out.emplace_back(w);
  }
  return out;
}

double F1(absl::string_view pred, absl::string_view gold, bool study) {
  std::vector<std::string> p = F1Tokens(pred, study), g = F1Tokens(gold, study);
  if (study) {
    std::set<std::string> ps(p.begin(), p.end()), gs(g.begin(), g.end());
    p.assign(ps.begin(), ps.end());
    g.assign(gs.begin(), gs.end());
  }
  std::map<std::string, int> gc;
  for (const std::string& w : g) ++gc[w];
  int common = 0;
  for (const std::string& w : p) {
    if (gc[w] > 0) {
      --gc[w];
      ++common;
    }
  }
  if (common == 0) return 0.0;
  const double precision = static_cast<double>(common) / p.size();
  const double recall = static_cast<double>(common) / g.size();
  const double f1 = 2 * precision * recall / (precision + recall);
  return study ? std::round(f1 * 100) / 100 : f1;
}

// Option letters of an MCQ answer. Study: every letter A-D of the upper-cased text after
// dropping "Question N" prefixes, sorted (so a stray word adds letters). Strict: the text
// must consist of option letters and separators only, else it is wrong.
std::string McqLetters(absl::string_view text, bool study) {
  std::string s(text);
  std::string out;
  if (study) {
    std::string without;
    for (absl::string_view part : absl::StrSplit(s, "Question")) {
      size_t i = 0;
      while (i < part.size() && (absl::ascii_isspace(part[i]))) ++i;
      size_t j = i;
      while (j < part.size() && absl::ascii_isdigit(part[j])) ++j;
      if (j > i) {
        if (j < part.size() && part[j] == '.') ++j;
        while (j < part.size() && absl::ascii_isspace(part[j])) ++j;
        part = part.substr(j);
      }
      absl::StrAppend(&without, part);
    }
    for (char c : without) {
      c = absl::ascii_toupper(c);
      if (c >= 'A' && c <= 'D') out.push_back(c);
    }
  } else {
    for (char c : s) {
      if (absl::ascii_isspace(c) || c == ',' || c == '.' || c == '(' || c == ')') continue;
      c = absl::ascii_toupper(c);
      if (c < 'A' || c > 'D') return "?";
      out.push_back(c);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

class QaTask : public Task {
 public:
  QaTask(std::string name, Format format, QaDataset data, const ParamMap& p)
      : name_(std::move(name)),
        format_(format),
        data_(std::move(data)),
        max_gold_tokens_(IntParam(p, "max_gold_tokens")),
        policy_(AnswerPolicy::FromParams(p)),
        study_scoring_(StringParam(p, format == Format::kSquad ? "f1" : "mcq_parse") == "study") {}

  const std::string& name() const override { return name_; }

  absl::StatusOr<Sample> Generate(const Tokenizer& tok, const PromptBudget& budget, uint64_t seed,
                                  int64_t index) const override {
    SF_ASSIGN_OR_RETURN(const size_t item_index, PickItem(tok, seed, index));
    const QaItem& item = data_.items[item_index];
    Rng rng = Rng::ForStream(seed + static_cast<uint64_t>(index), name_, "documents");
    std::vector<size_t> others;
    for (size_t i = 0; i < data_.docs.size(); ++i) {
      if (i != item.doc) others.push_back(i);
    }
    rng.Shuffle(others);
    const double u = rng.Unit();
    int64_t total_words = 0;
    for (size_t i : others) total_words += static_cast<int64_t>(data_.doc_words[i].size());
    auto build = [&](int64_t n) {
      // Whole distractor documents while they fit in n words, then a prefix of the next.
      std::vector<std::string> docs;
      int64_t left = n;
      for (size_t i = 0; i < others.size() && left > 0; ++i) {
        const auto& words = data_.doc_words[others[i]];
        if (static_cast<int64_t>(words.size()) <= left) {
          docs.push_back(data_.docs[others[i]]);
          left -= static_cast<int64_t>(words.size());
        } else {
          docs.push_back(absl::StrJoin(words.begin(), words.begin() + left, " "));
          left = 0;
        }
      }
      const size_t gold_at = static_cast<size_t>(u * static_cast<double>(docs.size() + 1));
      docs.insert(docs.begin() + static_cast<ptrdiff_t>(gold_at), data_.docs[item.doc]);
      Sample out;
      for (size_t i = 0; i < docs.size(); ++i) {
        absl::StrAppend(&out.context, i == 0 ? "" : "\n\n", "Document ", i + 1, ":\n", docs[i]);
      }
      out.questions = {absl::StrCat("Question about document ", gold_at + 1, ":\n", item.question)};
      out.answers = item.answers;
      out.gold = item.answers.at(0);
      out.metadata["gold_document"] = absl::StrCat(gold_at + 1);
      out.metadata["documents"] = absl::StrCat(docs.size());
      out.metadata["dataset_item"] = absl::StrCat(item_index);
      out.prompt = Prompt(out.questions, out.context);
      return out;
    };
    return BuildFitted(name_, seed, index, tok, budget, 0, total_words, build);
  }

  ScoreResult Score(const Sample& sample, absl::string_view prediction) const override {
    ScoreResult r;
    std::optional<std::string> text = AnswerToScore(prediction, policy_, &r);
    if (!text) return r;
    const std::string answer(absl::StripAsciiWhitespace(*text));
    if (format_ == Format::kSquad) {
      for (const std::string& gold : sample.answers) {
        r.score = std::max(r.score, F1(answer, gold, study_scoring_));
      }
      r.details = absl::StrCat("best token F1 of '", answer, "' against ", sample.answers.size(),
                               " accepted answers");
      return r;
    }
    const std::string got = McqLetters(answer, study_scoring_);
    const std::string want = McqLetters(sample.answers.at(0), study_scoring_);
    r.score = got == want ? 1.0 : 0.0;
    r.details = absl::StrCat("letters '", got, "', expected '", want, "'");
    return r;
  }

 private:
  std::string Prompt(const std::vector<std::string>& questions, const std::string& context) const {
    const bool mcq = format_ != Format::kSquad;
    return BuildPrompt(
        {"Below are several documents, numbered. The question is about one of them.", questions,
         context, mcq ? "the letter(s) of the correct option(s), e.g. A or BD" : "a short answer",
         mcq ? std::vector<std::string>{"More than one option may be correct; give every "
                                        "correct letter."}
             : std::vector<std::string>{"Answer with a short phrase, not a sentence.",
                                        "Give dates in full only when the question asks for a "
                                        "date; give places in their shortest clear form."}});
  }

  // The index-th question, in an order fixed by the seed, among those whose document
  // and question fit in max_gold_tokens: the same question at every length.
  absl::StatusOr<size_t> PickItem(const Tokenizer& tok, uint64_t seed, int64_t index) const {
    std::vector<size_t> order(data_.items.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    Rng rng = Rng::ForStream(seed, name_, "question_order");
    rng.Shuffle(order);
    int64_t seen = 0;
    for (size_t i : order) {
      if (GoldTokens(tok, i) > max_gold_tokens_) continue;
      if (seen++ == index) return i;
    }
    return absl::FailedPreconditionError(
        absl::StrCat("task ", name_, ": sample ", index, " asked, but the dataset has only ", seen,
                     " questions whose document fits in max_gold_tokens = ", max_gold_tokens_));
  }

  int64_t GoldTokens(const Tokenizer& tok, size_t item) const {
    const std::string key = absl::StrCat(tok.Name(), "/", item);
    {
      absl::MutexLock lock(&mu_);
      auto it = gold_tokens_.find(key);
      if (it != gold_tokens_.end()) return it->second;
    }
    const QaItem& q = data_.items[item];
    const int64_t t =
        tok.CountTokens(Prompt({absl::StrCat("Question about document 1:\n", q.question)},
                               absl::StrCat("Document 1:\n", data_.docs[q.doc])));
    absl::MutexLock lock(&mu_);
    gold_tokens_[key] = t;
    return t;
  }

  std::string name_;
  Format format_;
  QaDataset data_;
  int64_t max_gold_tokens_;
  AnswerPolicy policy_;
  bool study_scoring_;
  mutable absl::Mutex mu_;
  mutable std::map<std::string, int64_t> gold_tokens_ ABSL_GUARDED_BY(mu_);
};

TaskInfo QaInfo(const std::string& name, Format format, const std::string& summary) {
  std::vector<ParamSpec> params = {
      {"path", std::string(), "the dataset file", 0, INT64_MAX, {}, true},
      {"max_gold_tokens", int64_t{8128},
       "questions whose document and prompt exceed this many tokens are skipped, so that every "
       "length from 8K up asks the same questions (the study: 8192 - 64)",
       1},
      MissingAnswerParam("zero"),
      DropEmptyOutputParam(false)};
  if (format == Format::kSquad) {
    params.push_back({"f1",
                      std::string("study"),
                      "study: token sets, also drops and/or/about/to, rounded to 0.01; squad: "
                      "the official SQuAD token F1",
                      0,
                      INT64_MAX,
                      {"study", "squad"}});
  } else {
    params.push_back({"mcq_parse",
                      std::string("study"),
                      "study: every letter A-D in the answer counts; strict: only option "
                      "letters and separators allowed",
                      0,
                      INT64_MAX,
                      {"study", "strict"}});
  }
  return {name, summary,
          format == Format::kSquad ? "token F1 (best over accepted answers)"
                                   : "exact match of option letters",
          params, [name, format](const ParamMap& p) -> absl::StatusOr<std::unique_ptr<Task>> {
            const std::string path = StringParam(p, "path");
            absl::StatusOr<QaDataset> data =
                format == Format::kSquad ? LoadSquad(name, path) : LoadJsonl(name, path, format);
            if (!data.ok()) return data.status();
            Dedupe(*data);
            if (data->items.empty()) {
              return absl::InvalidArgumentError(absl::StrCat("task ", name, ": dataset file '",
                                                             path, "' has no usable questions"));
            }
            return std::make_unique<QaTask>(name, format, *std::move(data), p);
          }};
}

}  // namespace

TaskInfo QaSquadInfo() {
  return QaInfo("qa_squad", Format::kSquad,
                "SQuAD v2 questions (answerable ones) about one document among distractors");
}
TaskInfo QaQualityInfo() {
  return QaInfo("qa_quality", Format::kQuality,
                "QuALITY multiple-choice questions about one story among distractors");
}
TaskInfo QaToeflInfo() {
  return QaInfo("qa_toefl", Format::kToefl,
                "TOEFL-QA multiple-choice questions about one transcript among distractors");
}

}  // namespace sf::tasks
