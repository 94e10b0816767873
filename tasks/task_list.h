// Internal: the declaration of each task, defined in its own file and collected by the
// registry in task.cc.
#ifndef SF_TASKS_TASK_LIST_H_
#define SF_TASKS_TASK_LIST_H_

#include "tasks/task.h"

namespace sf::tasks {

TaskInfo RulerNiahInfo();
TaskInfo RulerVtInfo();
TaskInfo RulerCweInfo();
TaskInfo QaSquadInfo();
TaskInfo QaQualityInfo();
TaskInfo QaToeflInfo();
TaskInfo StoryRetrievalInfo();
TaskInfo StoryMultihopInfo();
TaskInfo StoryFilteringInfo();

}  // namespace sf::tasks

#endif  // SF_TASKS_TASK_LIST_H_
