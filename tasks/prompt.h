// The prompt shape shared by all tasks: instructions, the question(s) before and after
// the context, and the answer asked inside <answer>...</answer>.
#ifndef SF_TASKS_PROMPT_H_
#define SF_TASKS_PROMPT_H_

#include <string>
#include <vector>

namespace sf::tasks {

struct PromptParts {
  std::string intro;                   // what the task is, one paragraph
  std::vector<std::string> questions;  // one or more, stated twice
  std::string context;
  std::string answer_format;       // what the text inside <answer> should look like
  std::vector<std::string> rules;  // task-specific answering rules
};

// The prompt text. Deterministic; the context appears exactly once, between
// "<context>\n" and "\n</context>".
std::string BuildPrompt(const PromptParts& parts);

}  // namespace sf::tasks

#endif  // SF_TASKS_PROMPT_H_
