// Shared by the length tests (fast and slow): every task at the given lengths with both
// test tokenizers must land in [0.9 L, L] once the chat template's tokens are added,
// identically when generated twice.
#ifndef SF_TASKS_TESTING_LENGTH_CHECK_H_
#define SF_TASKS_TESTING_LENGTH_CHECK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/job.h"
#include "common/tokenizer.h"

namespace sf::tasks::testing {

// Writes SQuAD / QuALITY / TOEFL-shaped files of generated documents large enough to fill
// 128K tokens into `dir`, and returns the parameters (path included) for `task` at
// `length`: the defaults, except where a default cannot fit a short length (16 story
// questions at 2K, say), which the study never ran.
ParamMap LengthTestParams(const std::string& task, int64_t length, const std::string& dir);

// Writes gen_squad.json and gen_leval.jsonl (800 generated documents of 120 words each,
// enough for 128K tokens) into `dir`.
void WriteLengthTestDatasets(const std::string& dir);

// Runs the check with gtest assertions, with `tokenizers` (empty: the two test ones).
void CheckLengths(const std::vector<int64_t>& lengths, int samples_per_length,
                  std::vector<const Tokenizer*> tokenizers = {});

}  // namespace sf::tasks::testing

#endif  // SF_TASKS_TESTING_LENGTH_CHECK_H_
