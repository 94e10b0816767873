// The real Llama 3 and Qwen3 tokenizer.json files for tests, fetched by
// deploy/fetch-tokenizers.sh (make deps runs it). Tests fail, never skip, without them.
#ifndef SF_WORKER_MODEL_TESTING_REAL_TOKENIZERS_H_
#define SF_WORKER_MODEL_TESTING_REAL_TOKENIZERS_H_

#include <string>

#include "worker/model/tokenizer.h"

namespace sf::testing {

// $SF_TOKENIZER_DIR/<name>/tokenizer.json, else the npm folder under the source tree.
// `name` is "llama3" or "qwen3".
std::string RealTokenizerPath(const std::string& name);

// Loaded once per process (each file is ~10 MB of JSON); aborts the test binary with a
// message saying how to fetch the files when they are missing.
const HfTokenizer& LoadRealTokenizer(const std::string& name);

}  // namespace sf::testing

#endif  // SF_WORKER_MODEL_TESTING_REAL_TOKENIZERS_H_
