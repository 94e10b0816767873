// The story tasks: a multi-chapter narrative built from tasks/data/story_templates.txt
// (a unique town and trader per chapter, one purchase of a unique item per chapter
// unless the chapter is chosen to have none, sometimes a sale of an earlier item).
//   story_retrieval: which town / trader / item in chapter N, several questions at once;
//   story_multihop:  the last item bought before a named item;
//   story_filtering: the chapters without a purchase.
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/logging.h"
#include "tasks/data_files.h"
#include "tasks/fit.h"
#include "tasks/prompt.h"
#include "tasks/rng.h"
#include "tasks/scoring.h"
#include "tasks/task_list.h"

namespace sf::tasks {
namespace {

using Sections = std::map<std::string, std::vector<std::string>>;

const Sections& Templates() {
  static const Sections* const sections = [] {
    auto* out = new Sections();
    std::string current;
    for (absl::string_view line : absl::StrSplit(kStoryTemplatesTxt, '\n')) {
      line = absl::StripAsciiWhitespace(line);
      if (line.empty() || line[0] == '#') continue;
      if (line.front() == '[' && line.back() == ']') {
        current = std::string(line.substr(1, line.size() - 2));
        continue;
      }
      SF_CHECK(!current.empty()) << "story_templates.txt: entry before the first section";
      (*out)[current].emplace_back(line);
    }
    return out;
  }();
  return *sections;
}

const std::vector<std::string>& Section(const std::string& name) {
  auto it = Templates().find(name);
  SF_CHECK(it != Templates().end() && !it->second.empty()) << "missing story section " << name;
  return it->second;
}

struct Chapter {
  int64_t id = 0;  // 1-based
  std::string place, person, event;
  std::string bought;  // empty: no purchase in this chapter
  std::string sold;
  std::string text;
};

struct StoryOptions {
  std::string hero;
  int64_t talk_lines = 3;
  double sell_chance = 0.5;
};

// Upper bounds of the unique-name spaces: a story cannot have more chapters.
int64_t MaxChapters() {
  return std::min<int64_t>(Section("place_starts").size() * Section("place_ends").size(),
                           Section("given_names").size() * Section("family_names").size());
}

std::string Fill(const std::string& tmpl, const StoryOptions& o, const Chapter& c,
                 const std::string& item) {
  return absl::StrReplaceAll(tmpl, {{"{hero}", o.hero},
                                    {"{place}", c.place},
                                    {"{person}", c.person},
                                    {"{event}", c.event},
                                    {"{item}", item}});
}

// Chapters 1..n of the story seeded `seed`; chapters whose 1-based id is in `no_purchase`
// buy nothing. A pure function of its arguments.
std::vector<Chapter> WriteStory(uint64_t seed, const StoryOptions& o, int64_t n,
                                const std::set<int64_t>& no_purchase) {
  absl::flat_hash_set<std::string> places, persons, items;
  std::vector<std::string> inventory;
  std::vector<Chapter> out;
  auto unique = [&](absl::flat_hash_set<std::string>& used, auto make) {
    for (;;) {
      std::string s = make();
      if (used.insert(s).second) return s;
    }
  };
  for (int64_t i = 1; i <= n; ++i) {
    // Each chapter draws from its own generator, so a chapter's text hardly depends on
    // how many chapters follow or which ones buy nothing: the length search then sees
    // prompts that grow smoothly with n.
    Rng rng(seed ^ (static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15ULL));
    Chapter c;
    c.id = i;
    c.place = unique(places, [&] {
      return absl::StrCat(rng.Pick(Section("place_starts")), rng.Pick(Section("place_ends")));
    });
    c.person = unique(persons, [&] {
      return absl::StrCat(rng.Pick(Section("given_names")), " ", rng.Pick(Section("family_names")));
    });
    c.event = rng.Pick(Section("events"));
    std::vector<std::string> lines;
    for (const char* s : {"arrival", "purpose", "event", "meeting"}) {
      lines.push_back(Fill(rng.Pick(Section(s)), o, c, ""));
    }
    std::vector<std::string> talk = Section("talk");
    rng.Shuffle(talk);
    for (int64_t t = 0; t < o.talk_lines && t < static_cast<int64_t>(talk.size()); ++t) {
      lines.push_back(Fill(talk[t], o, c, ""));
    }
    if (!no_purchase.contains(i)) {
      c.bought = unique(items, [&] {
        return absl::StrCat(rng.Pick(Section("item_adjectives")), " ",
                            rng.Pick(Section("item_materials")), " ",
                            rng.Pick(Section("item_kinds")));
      });
      lines.push_back(Fill(rng.Pick(Section("buy")), o, c, c.bought));
    }
    // Only items bought in earlier chapters are sold, so a sale never hides a purchase.
    if (!inventory.empty() && rng.Chance(o.sell_chance)) {
      const size_t k = rng.Below(inventory.size());
      c.sold = inventory[k];
      inventory.erase(inventory.begin() + static_cast<ptrdiff_t>(k));
      lines.push_back(Fill(rng.Pick(Section("sell")), o, c, c.sold));
    }
    if (!c.bought.empty()) inventory.push_back(c.bought);
    for (const char* s : {"farewell", "leaving", "aside"}) {
      lines.push_back(Fill(rng.Pick(Section(s)), o, c, ""));
    }
    c.text = absl::StrCat("Chapter ", i, ":\n", absl::StrJoin(lines, " "));
    out.push_back(std::move(c));
  }
  return out;
}

// Story filler units: n = chapters * kPadSlots + pad. The pad (0 to kPadSlots - 1 scenery
// sentences in a prologue) lets short lengths land inside the 10% window although a
// chapter is ~200 tokens; kPadSlots sentences weigh about one chapter, so the prompt
// still grows with n.
constexpr int64_t kPadSlots = 16;
int64_t ChaptersOf(int64_t n) { return n / kPadSlots; }

std::string Context(const std::vector<Chapter>& chapters, int64_t n, uint64_t pad_seed) {
  std::string out;
  const int64_t pad = n % kPadSlots;
  if (pad > 0) {
    // Distinct sentences while they last (kPadSlots - 1 <= the section's size).
    Rng rng(pad_seed);
    std::vector<std::string> pool = Section("aside");
    rng.Shuffle(pool);
    std::vector<std::string> lines;
    for (int64_t i = 0; i < pad; ++i) lines.push_back(pool[i % pool.size()]);
    out = absl::StrCat("Prologue:\n", absl::StrJoin(lines, " "));
  }
  for (const Chapter& c : chapters) absl::StrAppend(&out, out.empty() ? "" : "\n\n", c.text);
  return out;
}

// "1=item;2=;3=item" (empty: no purchase), so tests and people can check answers.
std::string Purchases(const std::vector<Chapter>& chapters) {
  std::vector<std::string> parts;
  for (const Chapter& c : chapters) parts.push_back(absl::StrCat(c.id, "=", c.bought));
  return absl::StrJoin(parts, ";");
}

int64_t MaxUnits() { return MaxChapters() * kPadSlots + kPadSlots - 1; }

std::string StoryIntro() {
  return "Below is a story in numbered chapters. In each chapter the protagonist travels to a "
         "town, meets a trader and may buy or sell items. Each chapter has its own town and "
         "trader, every item is one of a kind, and items can change hands. Read the story "
         "carefully "
         "and answer from what it says.";
}

// Lower case, single spaces, no leading article, no trailing full stop.
std::string NormalizeName(absl::string_view text) {
  std::string s = NormalizeSpaces(text);
  for (const char* article : {"the ", "a ", "an "}) {
    if (absl::StartsWith(s, article)) {
      s = s.substr(strlen(article));
      break;
    }
  }
  while (!s.empty() && (s.back() == '.' || s.back() == ' ')) s.pop_back();
  return s;
}

class StoryTask : public Task {
 public:
  StoryTask(std::string name, const ParamMap& p)
      : name_(std::move(name)), policy_(AnswerPolicy::FromParams(p)) {
    options_.hero = StringParam(p, "protagonist");
    options_.talk_lines = IntParam(p, "talk_lines");
  }
  const std::string& name() const override { return name_; }

 protected:
  uint64_t StorySeed(uint64_t seed, int64_t index) const {
    return Rng::ForStream(seed + static_cast<uint64_t>(index), name_, "story").Next();
  }
  std::string name_;
  StoryOptions options_;
  AnswerPolicy policy_;
};

// ---------------------------------------------------------------- story_retrieval

class RetrievalTask : public StoryTask {
 public:
  explicit RetrievalTask(const ParamMap& p)
      : StoryTask("story_retrieval", p), queries_(IntParam(p, "num_queries")) {}

  absl::StatusOr<Sample> Generate(const Tokenizer& tok, const PromptBudget& budget, uint64_t seed,
                                  int64_t index) const override {
    const uint64_t story_seed = StorySeed(seed, index);
    const uint64_t ask_seed =
        Rng::ForStream(seed + static_cast<uint64_t>(index), name_, "questions").Next();
    auto build = [&](int64_t n) {
      std::vector<Chapter> chapters = WriteStory(story_seed, options_, ChaptersOf(n), {});
      Rng ask(ask_seed);
      std::vector<int64_t> picked = ask.Distinct(queries_, ChaptersOf(n));
      ask.Shuffle(picked);
      Sample out;
      out.context = Context(chapters, n, story_seed ^ 0x5eed);
      out.metadata["chapters"] = absl::StrCat(chapters.size());
      out.metadata["purchases"] = Purchases(chapters);
      std::vector<std::string> gold, kinds;
      for (int64_t q = 0; q < queries_; ++q) {
        const Chapter& c = chapters[picked[q]];
        const int64_t kind = static_cast<int64_t>(ask.Below(3));
        static constexpr const char* kAsk[] = {"which town did the protagonist visit?",
                                               "which trader did the protagonist meet?",
                                               "which item did the protagonist buy?"};
        static constexpr const char* kKind[] = {"place", "person", "item"};
        out.questions.push_back(absl::StrCat(q + 1, ". In Chapter ", c.id, ", ", kAsk[kind]));
        out.answers.push_back(kind == 0 ? c.place : kind == 1 ? c.person : c.bought);
        gold.push_back(absl::StrCat(q + 1, ". ", out.answers.back()));
        kinds.push_back(absl::StrCat(c.id, ":", kKind[kind]));
      }
      out.gold = absl::StrJoin(gold, "\n");
      out.metadata["asked"] = absl::StrJoin(kinds, " ");
      out.prompt =
          BuildPrompt({StoryIntro(),
                       out.questions,
                       out.context,
                       "1. first answer\n2. second answer\n(one numbered line per question)",
                       {"Answer each question on its own line, with its number.",
                        "Give just the name of the town, trader or item, as written in "
                        "the story, without 'the' or 'a'."}});
      return out;
    };
    return BuildFitted(name_, seed, index, tok, budget, queries_ * kPadSlots, MaxUnits(), build);
  }

  ScoreResult Score(const Sample& sample, absl::string_view prediction) const override {
    ScoreResult r;
    std::optional<std::string> text = AnswerToScore(prediction, policy_, &r);
    if (!text) return r;
    const std::map<int, std::string> lines = NumberedLines(*text);
    int right = 0;
    for (size_t i = 0; i < sample.answers.size(); ++i) {
      auto it = lines.find(static_cast<int>(i + 1));
      if (it != lines.end() && NormalizeName(it->second) == NormalizeName(sample.answers[i])) {
        ++right;
      }
    }
    r.score = sample.answers.empty() ? 0.0 : static_cast<double>(right) / sample.answers.size();
    r.details = absl::StrCat(right, " of ", sample.answers.size(), " answers right");
    return r;
  }

 private:
  int64_t queries_;
};

// ---------------------------------------------------------------- story_multihop

class MultihopTask : public StoryTask {
 public:
  explicit MultihopTask(const ParamMap& p) : StoryTask("story_multihop", p) {}

  absl::StatusOr<Sample> Generate(const Tokenizer& tok, const PromptBudget& budget, uint64_t seed,
                                  int64_t index) const override {
    const uint64_t story_seed = StorySeed(seed, index);
    const double u = Rng::ForStream(seed + static_cast<uint64_t>(index), name_, "target").Unit();
    auto build = [&](int64_t n) {
      std::vector<Chapter> chapters = WriteStory(story_seed, options_, ChaptersOf(n), {});
      // Any chapter but the first; every chapter buys one item, so the answer is the
      // previous chapter's purchase.
      const int64_t t = 1 + static_cast<int64_t>(u * static_cast<double>(ChaptersOf(n) - 1));
      Sample out;
      out.context = Context(chapters, n, story_seed ^ 0x5eed);
      out.metadata["chapters"] = absl::StrCat(chapters.size());
      out.metadata["purchases"] = Purchases(chapters);
      out.questions = {absl::StrCat("Which item did the protagonist buy last before buying the ",
                                    chapters[t].bought, "?")};
      out.answers = {chapters[t - 1].bought};
      out.gold = chapters[t - 1].bought;
      out.metadata["target_chapter"] = absl::StrCat(chapters[t].id);
      out.metadata["answer_chapter"] = absl::StrCat(chapters[t - 1].id);
      out.prompt = BuildPrompt({StoryIntro(),
                                out.questions,
                                out.context,
                                "item name",
                                {"Give only the item's name, exactly as written in the story, "
                                 "without 'the' or 'a'."}});
      return out;
    };
    return BuildFitted(name_, seed, index, tok, budget, 2 * kPadSlots, MaxUnits(), build);
  }

  ScoreResult Score(const Sample& sample, absl::string_view prediction) const override {
    ScoreResult r;
    std::optional<std::string> text = AnswerToScore(prediction, policy_, &r);
    if (!text) return r;
    const std::string got = NormalizeName(*text);
    if (got.empty() && policy_.missing == MissingAnswer::kDrop) {
      r.counted = false;
      r.answered = false;
      r.details = "empty answer (not counted)";
      return r;
    }
    r.score = got == NormalizeName(sample.answers.at(0)) ? 1.0 : 0.0;
    r.details = absl::StrCat("answered '", got, "', expected '", sample.answers.at(0), "'");
    return r;
  }
};

// ---------------------------------------------------------------- story_filtering

class FilteringTask : public StoryTask {
 public:
  explicit FilteringTask(const ParamMap& p)
      : StoryTask("story_filtering", p), k_(IntParam(p, "chapters_in_question")) {}

  absl::StatusOr<Sample> Generate(const Tokenizer& tok, const PromptBudget& budget, uint64_t seed,
                                  int64_t index) const override {
    const uint64_t story_seed = StorySeed(seed, index);
    const uint64_t pick_seed =
        Rng::ForStream(seed + static_cast<uint64_t>(index), name_, "no_purchase").Next();
    auto build = [&](int64_t n) {
      // Positions scale with the chapter count (probing past collisions), so that the
      // chosen chapters move little as the length search changes n.
      Rng pick(pick_seed);
      const int64_t chapters_n = ChaptersOf(n);
      std::set<int64_t> none;
      for (int64_t j = 0; j < k_; ++j) {
        int64_t id = 1 + static_cast<int64_t>(pick.Unit() * static_cast<double>(chapters_n));
        while (none.contains(id)) id = id % chapters_n + 1;
        none.insert(id);
      }
      std::vector<Chapter> chapters = WriteStory(story_seed, options_, ChaptersOf(n), none);
      Sample out;
      out.context = Context(chapters, n, story_seed ^ 0x5eed);
      out.metadata["chapters"] = absl::StrCat(chapters.size());
      out.metadata["purchases"] = Purchases(chapters);
      out.questions = {absl::StrCat("In which chapters did the protagonist buy nothing? Exactly ",
                                    k_, k_ == 1 ? " chapter has" : " chapters have",
                                    " no purchase.")};
      for (int64_t id : none) out.answers.push_back(absl::StrCat(id));
      out.gold = absl::StrJoin(out.answers, ", ");
      out.prompt = BuildPrompt({StoryIntro(),
                                out.questions,
                                out.context,
                                "chapter number, chapter number, ...",
                                {"Give only the chapter numbers, separated by commas."}});
      return out;
    };
    return BuildFitted(name_, seed, index, tok, budget, (k_ + 1) * kPadSlots, MaxUnits(), build);
  }

  ScoreResult Score(const Sample& sample, absl::string_view prediction) const override {
    ScoreResult r;
    std::optional<std::string> text = AnswerToScore(prediction, policy_, &r);
    if (!text) return r;
    // "Chapter 3, Chapter 7" is read by its chapter numbers; otherwise every number counts.
    std::set<std::string> chapter_refs, numbers;
    const std::string lower = AsciiLower(*text);
    std::vector<std::string> tokens =
        absl::StrSplit(lower, absl::ByAnyChar(" ,;\t\r\n"), absl::SkipEmpty());
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string digits;
      for (char c : tokens[i]) {
        if (absl::ascii_isdigit(c)) digits.push_back(c);
      }
      int64_t v;
      if (digits.empty() || !absl::SimpleAtoi(digits, &v)) continue;
      numbers.insert(absl::StrCat(v));
      if (i > 0 && tokens[i - 1] == "chapter") chapter_refs.insert(absl::StrCat(v));
    }
    const std::set<std::string>& got = chapter_refs.empty() ? numbers : chapter_refs;
    const std::set<std::string> want(sample.answers.begin(), sample.answers.end());
    r.score = Iou(got, want, 1.0);
    r.details = absl::StrCat("IoU of {", absl::StrJoin(got, ", "), "} with {",
                             absl::StrJoin(want, ", "), "}");
    return r;
  }

 private:
  int64_t k_;
};

std::vector<ParamSpec> StoryParams(std::vector<ParamSpec> extra) {
  extra.push_back({"protagonist", std::string("Arion"), "the protagonist's name"});
  extra.push_back({"talk_lines", int64_t{3}, "small-talk sentences per chapter", 0, 14});
  return extra;
}

}  // namespace

TaskInfo StoryRetrievalInfo() {
  return {"story_retrieval",
          "a multi-chapter story; several questions about the town, trader or item of given "
          "chapters",
          "accuracy (fraction of questions answered right)",
          StoryParams({{"num_queries", int64_t{16}, "questions asked at once", 1, 256},
                       MissingAnswerParam("whole_text"),
                       DropEmptyOutputParam(false)}),
          [](const ParamMap& p) -> absl::StatusOr<std::unique_ptr<Task>> {
            return std::make_unique<RetrievalTask>(p);
          }};
}

TaskInfo StoryMultihopInfo() {
  return {"story_multihop", "a multi-chapter story; the last item bought before a named item",
          "accuracy", StoryParams({MissingAnswerParam("drop"), DropEmptyOutputParam(true)}),
          [](const ParamMap& p) -> absl::StatusOr<std::unique_ptr<Task>> {
            return std::make_unique<MultihopTask>(p);
          }};
}

TaskInfo StoryFilteringInfo() {
  return {"story_filtering", "a multi-chapter story; the chapters in which nothing is bought",
          "IoU of the chapter sets",
          StoryParams({{"chapters_in_question", int64_t{3}, "chapters without a purchase", 1, 256},
                       MissingAnswerParam("zero"),
                       DropEmptyOutputParam(true)}),
          [](const ParamMap& p) -> absl::StatusOr<std::unique_ptr<Task>> {
            return std::make_unique<FilteringTask>(p);
          }};
}

}  // namespace sf::tasks
