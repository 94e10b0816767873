// Internal: the text of the files under tasks/data/, embedded at build time
// (tasks/embed_file.cmake writes their definitions).
#ifndef SF_TASKS_DATA_FILES_H_
#define SF_TASKS_DATA_FILES_H_

namespace sf::tasks {

extern const char kWordsTxt[];
extern const char kStoryTemplatesTxt[];

}  // namespace sf::tasks

#endif  // SF_TASKS_DATA_FILES_H_
