#include "tasks/prompt.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace sf::tasks {

std::string BuildPrompt(const PromptParts& parts) {
  const bool several = parts.questions.size() > 1;
  const std::string block =
      absl::StrCat(several ? "<questions>\n" : "<question>\n", absl::StrJoin(parts.questions, "\n"),
                   several ? "\n</questions>" : "\n</question>");
  std::string out;
  absl::StrAppend(&out, parts.intro, "\n\n",
                  several ? "Your questions come first here and once more after the context."
                          : "Your question comes first here and once more after the context.",
                  "\n\n", block, "\n\n<context>\n", parts.context, "\n</context>\n\n",
                  several ? "The questions again:" : "The question again:", "\n", block, "\n\n");
  absl::StrAppend(&out,
                  "How to answer:\n"
                  "- Reason briefly first, saying where in the context you found what you need.\n"
                  "- Then write the final answer between <answer> and </answer>, in this form:\n"
                  "<answer>\n",
                  parts.answer_format, "\n</answer>\n");
  for (const std::string& rule : parts.rules) absl::StrAppend(&out, "- ", rule, "\n");
  absl::StrAppend(&out, "- Put nothing but the answer between the tags.\n");
  return out;
}

}  // namespace sf::tasks
