// The study's nine tasks, by name: what the sweep spec accepts. Parameters beyond
// `samples` and `path` are the tasks library's to validate; this table only names tasks.
#ifndef SF_COMMON_TASK_CATALOG_H_
#define SF_COMMON_TASK_CATALOG_H_

#include <span>

#include "absl/strings/string_view.h"

namespace sf {

struct TaskInfo {
  const char* name;
  // True for tasks read from a local dataset file the user points at with `path`.
  bool needs_path;
  const char* summary;
};

// Every task, in a stable order.
std::span<const TaskInfo> AllTasks();

// The task named `name`, or nullptr.
const TaskInfo* FindTask(absl::string_view name);

}  // namespace sf

#endif  // SF_COMMON_TASK_CATALOG_H_
