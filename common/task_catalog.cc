#include "common/task_catalog.h"

namespace sf {
namespace {

constexpr TaskInfo kTasks[] = {
    {"ruler_niah", false, "RULER needle in a haystack: retrieve the value of a key"},
    {"ruler_vt", false, "RULER variable tracking: follow chains of assignments"},
    {"ruler_cwe", false, "RULER common word extraction: the most frequent words"},
    {"qa_squad", true, "SQuAD questions with distractor documents (token F1)"},
    {"qa_quality", true, "QuALITY multiple choice over long articles"},
    {"qa_toefl", true, "TOEFL listening multiple choice"},
    {"story_retrieval", false, "synthetic story: retrieve facts about chapters"},
    {"story_multihop", false, "synthetic story: combine facts across chapters"},
    {"story_filtering", false, "synthetic story: find the chapters without an event (IoU)"},
};

}  // namespace

std::span<const TaskInfo> AllTasks() { return kTasks; }

const TaskInfo* FindTask(absl::string_view name) {
  for (const TaskInfo& t : kTasks) {
    if (name == t.name) return &t;
  }
  return nullptr;
}

}  // namespace sf
