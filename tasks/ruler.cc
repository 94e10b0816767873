// The three RULER-style synthetic tasks: ruler_niah (several needles among key-value
// lines), ruler_vt (variable-tracking chains among noise) and ruler_cwe (the frequent
// words of a numbered word list).
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "tasks/fit.h"
#include "tasks/prompt.h"
#include "tasks/rng.h"
#include "tasks/scoring.h"
#include "tasks/task_list.h"
#include "tasks/words.h"

namespace sf::tasks {
namespace {

constexpr int64_t kManyUnits = int64_t{1} << 40;

// Places `special` items among `filler` ones: item j goes before filler position
// floor(u_j * (n + 1)), ties kept in j order. A pure function of n for fixed draws.
template <typename F>
std::vector<std::string> Interleave(int64_t n, const std::vector<double>& u,
                                    const std::vector<std::string>& special, F filler) {
  std::vector<std::pair<int64_t, size_t>> at;
  for (size_t j = 0; j < special.size(); ++j) {
    at.push_back({static_cast<int64_t>(u[j] * static_cast<double>(n + 1)), j});
  }
  std::sort(at.begin(), at.end());
  std::vector<std::string> out;
  out.reserve(n + special.size());
  size_t next = 0;
  for (int64_t i = 0; i <= n; ++i) {
    while (next < at.size() && at[next].first == i) out.push_back(special[at[next++].second]);
    if (i < n) out.push_back(filler(i));
  }
  return out;
}

// ---------------------------------------------------------------- ruler_niah

class NiahTask : public Task {
 public:
  explicit NiahTask(const ParamMap& p)
      : queries_(IntParam(p, "num_queries")),
        groups_(IntParam(p, "key_groups")),
        group_chars_(IntParam(p, "group_chars")),
        policy_(AnswerPolicy::FromParams(p)) {}

  const std::string& name() const override { return name_; }

  absl::StatusOr<Sample> Generate(const Tokenizer& tok, const PromptBudget& budget, uint64_t seed,
                                  int64_t index) const override {
    const uint64_t s = seed + static_cast<uint64_t>(index);
    Rng rng = Rng::ForStream(s, name_, "needles");
    absl::flat_hash_set<std::string> used;
    std::vector<std::string> keys, values, needles;
    for (int64_t i = 0; i < queries_; ++i) {
      keys.push_back(Unique(rng, used));
      values.push_back(Unique(rng, used));
      needles.push_back(Line(keys.back(), values.back()));
    }
    std::vector<double> u;
    for (int64_t i = 0; i < queries_; ++i) u.push_back(rng.Unit());
    // Distractors come from their own stream, drawn as far as the fit asks.
    Rng hay_rng = Rng::ForStream(s, name_, "haystack");
    std::vector<std::string> hay;
    auto build = [&](int64_t n) {
      while (static_cast<int64_t>(hay.size()) < n) {
        std::string k = Unique(hay_rng, used);
        hay.push_back(Line(k, Unique(hay_rng, used)));
      }
      Sample out;
      out.context = absl::StrJoin(
          Interleave(n, u, needles, [&](int64_t i) -> const std::string& { return hay[i]; }), " ");
      out.questions = {absl::StrCat(
          "Give the value of each of these keys, in this order: ", absl::StrJoin(keys, ", "), ".")};
      std::vector<std::string> gold;
      for (int64_t i = 0; i < queries_; ++i) {
        gold.push_back(absl::StrCat(i + 1, ". The answer for ", keys[i], " is ", values[i], "."));
      }
      out.answers = values;
      out.gold = absl::StrJoin(gold, "\n");
      out.metadata["keys"] = absl::StrJoin(keys, " ");
      out.prompt = BuildPrompt(
          {"The text below is a list of sentences, each giving the value of one key. Keys and "
           "values are random strings of letters and digits.",
           out.questions,
           out.context,
           "1. The answer for <first key> is <its value>.\n2. The answer for <second key> is "
           "<its value>.\n(one numbered line per key)",
           {"Answer the keys in the order they were asked, one numbered line each.",
            "Copy keys and values exactly as written in the text."}});
      return out;
    };
    return BuildFitted(name_, seed, index, tok, budget, 0, kManyUnits, build);
  }

  ScoreResult Score(const Sample& sample, absl::string_view prediction) const override {
    ScoreResult r;
    std::optional<std::string> text = AnswerToScore(prediction, policy_, &r);
    if (!text) return r;
    const std::vector<std::string> keys =
        absl::StrSplit(sample.metadata.at("keys"), ' ', absl::SkipEmpty());
    const std::map<int, std::string> lines = NumberedLines(*text);
    int right = 0;
    for (size_t i = 0; i < keys.size(); ++i) {
      auto it = lines.find(static_cast<int>(i + 1));
      if (it == lines.end()) continue;
      // "The answer for KEY is[:] VALUE[.]", compared without case.
      const std::string line = NormalizeSpaces(it->second);
      const size_t at = line.find("answer for ");
      if (at == std::string::npos) continue;
      std::vector<std::string> words = absl::StrSplit(line.substr(at + 11), ' ');
      if (words.size() < 3 || (words[1] != "is" && words[1] != "is:")) continue;
      std::string value = words[2];
      while (!value.empty() && value.back() == '.') value.pop_back();
      if (words[0] == AsciiLower(keys[i]) && value == AsciiLower(sample.answers[i])) ++right;
    }
    r.score = keys.empty() ? 0.0 : static_cast<double>(right) / keys.size();
    r.details = absl::StrCat(right, " of ", keys.size(), " values right");
    return r;
  }

 private:
  std::string Unique(Rng& rng, absl::flat_hash_set<std::string>& used) const {
    static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    for (;;) {
      std::string s;
      for (int64_t g = 0; g < groups_; ++g) {
        if (g > 0) s.push_back('-');
        for (int64_t c = 0; c < group_chars_; ++c) s.push_back(kAlphabet[rng.Below(36)]);
      }
      if (used.insert(s).second) return s;
    }
  }
  static std::string Line(const std::string& k, const std::string& v) {
    return absl::StrCat("The value for key ", k, " is: ", v, ".");
  }

  std::string name_ = "ruler_niah";
  int64_t queries_, groups_, group_chars_;
  AnswerPolicy policy_;
};

// ---------------------------------------------------------------- ruler_vt

constexpr char kVtNoise[] =
    "The river bends twice before the mill. A cart waits by the old gate. Evening comes slowly "
    "here.";

class VtTask : public Task {
 public:
  explicit VtTask(const ParamMap& p)
      : chains_(IntParam(p, "num_chains")),
        hops_(IntParam(p, "num_hops")),
        policy_(AnswerPolicy::FromParams(p)) {}

  const std::string& name() const override { return name_; }

  absl::StatusOr<Sample> Generate(const Tokenizer& tok, const PromptBudget& budget, uint64_t seed,
                                  int64_t index) const override {
    const uint64_t s = seed + static_cast<uint64_t>(index);
    Rng rng = Rng::ForStream(s, name_, "chains");
    absl::flat_hash_set<std::string> used_vars;
    absl::flat_hash_set<int64_t> used_values;
    std::vector<std::string> statements, target_vars;
    std::string target_value;
    for (int64_t c = 0; c < chains_; ++c) {
      int64_t value;
      do {
        value = 10000 + static_cast<int64_t>(rng.Below(90000));
      } while (!used_values.insert(value).second);
      std::string prev;
      for (int64_t h = 0; h <= hops_; ++h) {
        std::string var;
        do {
          var.clear();
          for (int i = 0; i < 5; ++i) var.push_back(static_cast<char>('A' + rng.Below(26)));
        } while (!used_vars.insert(var).second);
        statements.push_back(h == 0 ? absl::StrCat("VAR ", var, " = ", value, ".")
                                    : absl::StrCat("VAR ", var, " = VAR ", prev, "."));
        if (c == 0) target_vars.push_back(var);
        prev = var;
      }
      if (c == 0) target_value = absl::StrCat(value);
    }
    std::vector<double> u;
    for (size_t i = 0; i < statements.size(); ++i) u.push_back(rng.Unit());
    const std::string noise = kVtNoise;
    auto build = [&](int64_t n) {
      Sample out;
      out.context = absl::StrJoin(
          Interleave(n, u, statements, [&](int64_t) -> const std::string& { return noise; }), " ");
      out.questions = {absl::StrCat("Which variables hold the value ", target_value,
                                    "? A variable holds it if it is assigned ", target_value,
                                    " directly, or assigned a variable that holds it.")};
      out.answers = target_vars;
      out.gold = absl::StrJoin(target_vars, " ");
      out.metadata["target_value"] = target_value;
      out.prompt = BuildPrompt(
          {"The text below hides variable assignments among other sentences. An assignment either "
           "gives a variable a number (\"VAR ABCDE = 12345.\") or makes it equal to another "
           "variable (\"VAR FGHIJ = VAR ABCDE.\"). Variable names are five capital letters; the "
           "assignments may come in any order.",
           out.questions,
           out.context,
           "NAME1 NAME2 NAME3 ...",
           {"List only the names of the variables that hold the value, in any order, separated "
            "by spaces.",
            "Leave out the word VAR and any punctuation."}});
      return out;
    };
    return BuildFitted(name_, seed, index, tok, budget, 0, kManyUnits, build);
  }

  ScoreResult Score(const Sample& sample, absl::string_view prediction) const override {
    ScoreResult r;
    std::optional<std::string> text = AnswerToScore(prediction, policy_, &r);
    if (!text) return r;
    std::set<std::string> got;
    for (absl::string_view w :
         absl::StrSplit(*text, absl::ByAnyChar(" \t\r\n"), absl::SkipEmpty())) {
      std::string up = absl::AsciiStrToUpper(w);
      if (up != "VAR") got.insert(up);
    }
    const std::set<std::string> want(sample.answers.begin(), sample.answers.end());
    r.score = Iou(got, want, 1.0);
    r.details = absl::StrCat("IoU of {", absl::StrJoin(got, " "), "} with {",
                             absl::StrJoin(want, " "), "}");
    return r;
  }

 private:
  std::string name_ = "ruler_vt";
  int64_t chains_, hops_;
  AnswerPolicy policy_;
};

// ---------------------------------------------------------------- ruler_cwe

class CweTask : public Task {
 public:
  explicit CweTask(const ParamMap& p)
      : common_(IntParam(p, "num_common_words")),
        common_freq_(IntParam(p, "common_word_frequency")),
        rare_freq_(IntParam(p, "rare_word_frequency")),
        policy_(AnswerPolicy::FromParams(p)) {}

  const std::string& name() const override { return name_; }

  absl::StatusOr<Sample> Generate(const Tokenizer& tok, const PromptBudget& budget, uint64_t seed,
                                  int64_t index) const override {
    const uint64_t s = seed + static_cast<uint64_t>(index);
    std::vector<const std::string*> words;
    for (const std::string& w : EnglishWords()) words.push_back(&w);
    Rng rng = Rng::ForStream(s, name_, "words");
    rng.Shuffle(words);
    const uint64_t order_seed = rng.Next();
    std::vector<std::string> common;
    for (int64_t i = 0; i < common_; ++i) common.push_back(*words[i]);
    const std::string question =
        absl::StrCat("Exactly ", common_, " words of the list appear ", common_freq_,
                     " times each; every other word appears ", rare_freq_,
                     " times. The order is random. Which are the ", common_, " words that appear ",
                     common_freq_, " times?");
    auto build = [&](int64_t n) {
      std::vector<const std::string*> list;
      list.reserve(common_ * common_freq_ + n * rare_freq_);
      for (int64_t r = 0; r < common_freq_; ++r) {
        for (int64_t i = 0; i < common_; ++i) list.push_back(words[i]);
      }
      for (int64_t r = 0; r < rare_freq_; ++r) {
        for (int64_t i = 0; i < n; ++i) list.push_back(words[common_ + i]);
      }
      Rng order(order_seed);
      order.Shuffle(list);
      Sample out;
      for (size_t i = 0; i < list.size(); ++i) {
        absl::StrAppend(&out.context, i == 0 ? "" : "\n", i + 1, ". ", *list[i]);
      }
      out.questions = {question};
      out.answers = common;
      std::vector<std::string> gold;
      for (int64_t i = 0; i < common_; ++i) gold.push_back(absl::StrCat(i + 1, ". ", common[i]));
      out.gold = absl::StrJoin(gold, "\n");
      out.metadata["num_rare_words"] = absl::StrCat(n);
      out.prompt = BuildPrompt(
          {"Below is a numbered list of words. Find the words that occur most often. Count by "
           "reading the list yourself; do not write or run code.",
           out.questions,
           out.context,
           absl::StrCat("1. first_word\n2. second_word\n...\n", common_, ". last_word"),
           {absl::StrCat("Give exactly ", common_, " words, one per line, numbered 1 to ", common_,
                         ".")}});
      return out;
    };
    const int64_t available = static_cast<int64_t>(words.size()) - common_;
    return BuildFitted(name_, seed, index, tok, budget, 1, available, build);
  }

  ScoreResult Score(const Sample& sample, absl::string_view prediction) const override {
    ScoreResult r;
    std::optional<std::string> text = AnswerToScore(prediction, policy_, &r);
    if (!text) return r;
    std::set<std::string> got;
    for (const auto& [number, rest] : NumberedLines(*text)) got.insert(NormalizeSpaces(rest));
    const std::set<std::string> want(sample.answers.begin(), sample.answers.end());
    r.score = Iou(got, want, 0.0);
    r.details = absl::StrCat("IoU of {", absl::StrJoin(got, ", "), "} with {",
                             absl::StrJoin(want, ", "), "}");
    return r;
  }

 private:
  std::string name_ = "ruler_cwe";
  int64_t common_, common_freq_, rare_freq_;
  AnswerPolicy policy_;
};

}  // namespace

TaskInfo RulerNiahInfo() {
  return {"ruler_niah",
          "needles in a haystack: several keys queried at once among 'The value for key K is: V.' "
          "lines",
          "accuracy (fraction of keys answered right)",
          {{"num_queries", int64_t{4}, "needles queried at once", 1, 64},
           {"key_groups", int64_t{4}, "dash-separated groups in each key and value", 1, 16},
           {"group_chars", int64_t{8}, "characters per group", 2, 32},
           MissingAnswerParam("whole_text"),
           DropEmptyOutputParam(false)},
          [](const ParamMap& p) -> absl::StatusOr<std::unique_ptr<Task>> {
            return std::make_unique<NiahTask>(p);
          }};
}

TaskInfo RulerVtInfo() {
  return {"ruler_vt",
          "variable tracking: chains of assignments hidden among noise; name every variable "
          "holding the first chain's value",
          "IoU of the variable sets",
          {{"num_chains", int64_t{8}, "assignment chains (the first is asked about)", 1, 256},
           {"num_hops", int64_t{4}, "copy assignments per chain", 1, 64},
           MissingAnswerParam("whole_text"),
           DropEmptyOutputParam(false)},
          [](const ParamMap& p) -> absl::StatusOr<std::unique_ptr<Task>> {
            return std::make_unique<VtTask>(p);
          }};
}

TaskInfo RulerCweInfo() {
  return {"ruler_cwe",
          "common words extraction: the frequent words of a numbered list; rare words fill the "
          "length",
          "IoU of the word sets",
          {{"num_common_words", int64_t{10}, "words to find", 1, 1000},
           {"common_word_frequency", int64_t{30}, "occurrences of each common word", 2, 100000},
           {"rare_word_frequency", int64_t{3}, "occurrences of each rare word", 1, 100000},
           MissingAnswerParam("zero"),
           DropEmptyOutputParam(false)},
          [](const ParamMap& p) -> absl::StatusOr<std::unique_ptr<Task>> {
            if (IntParam(p, "common_word_frequency") <= IntParam(p, "rare_word_frequency")) {
              return absl::InvalidArgumentError(absl::StrCat(
                  "task ruler_cwe: common_word_frequency (", IntParam(p, "common_word_frequency"),
                  ") must be greater than rare_word_frequency (",
                  IntParam(p, "rare_word_frequency"), ")"));
            }
            return std::make_unique<CweTask>(p);
          }};
}

}  // namespace sf::tasks
