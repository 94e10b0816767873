// The tokenizer interface shared by the engine (worker/model/ implements it for
// Hugging Face tokenizer.json files) and the task generators (which size prompts in
// the model's own tokens). Implementations are immutable after construction and
// safe to call from several threads.
#ifndef SF_COMMON_TOKENIZER_H_
#define SF_COMMON_TOKENIZER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sf {

using TokenId = int32_t;

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Token ids of `text`, with no special tokens added (no BOS). Text that spells a
  // special token (e.g. "<|im_start|>") is encoded as that token only when
  // `parse_special` is true, otherwise as plain text.
  virtual std::vector<TokenId> Encode(absl::string_view text, bool parse_special = false) const = 0;

  // Text of `ids`. InvalidArgument names the first id outside the vocabulary.
  virtual absl::StatusOr<std::string> Decode(const std::vector<TokenId>& ids,
                                             bool skip_special = false) const = 0;

  // Number of tokens Encode(text) returns; implementations may count faster.
  virtual int64_t CountTokens(absl::string_view text) const { return Encode(text).size(); }

  virtual int64_t VocabSize() const = 0;
  // A short name for logs and job keys, e.g. "llama3" or the file's hash.
  virtual std::string Name() const = 0;
};

}  // namespace sf

#endif  // SF_COMMON_TOKENIZER_H_
