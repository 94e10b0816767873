#include "tasks/words.h"

#include "absl/strings/str_split.h"
#include "tasks/data_files.h"

namespace sf::tasks {

const std::vector<std::string>& EnglishWords() {
  static const std::vector<std::string>* const words = [] {
    auto* out = new std::vector<std::string>();
    for (absl::string_view w : absl::StrSplit(kWordsTxt, '\n', absl::SkipEmpty())) {
      out->emplace_back(w);
    }
    return out;
  }();
  return *words;
}

}  // namespace sf::tasks
