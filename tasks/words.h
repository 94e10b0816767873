// The English word list used by ruler_cwe: tasks/data/words.txt (filtered from Debian's
// wamerican by tasks/data/make_words.sh), compiled into the library so that samples do
// not depend on files present at run time.
#ifndef SF_TASKS_WORDS_H_
#define SF_TASKS_WORDS_H_

#include <string>
#include <vector>

namespace sf::tasks {

// Sorted, unique, lowercase ASCII words of 4 to 8 letters.
const std::vector<std::string>& EnglishWords();

}  // namespace sf::tasks

#endif  // SF_TASKS_WORDS_H_
