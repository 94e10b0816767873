// Tokenizers for tests of the tasks only (not production): they size prompts with
// different tokens-per-character ratios and boundary behaviour, as real BPE ones do.
#ifndef SF_TASKS_TESTING_FAKE_TOKENIZERS_H_
#define SF_TASKS_TESTING_FAKE_TOKENIZERS_H_

#include <string>
#include <vector>

#include "common/tokenizer.h"

namespace sf::tasks::testing {

// GPT-like word pieces: a letter run with its leading space is one token, cut into
// pieces of at most 5 letters; a digit run is cut into pieces of 3; every other
// character is one token. About 4 characters per token on English text.
class WordPieceTokenizer : public Tokenizer {
 public:
  std::vector<TokenId> Encode(absl::string_view text, bool parse_special = false) const override;
  absl::StatusOr<std::string> Decode(const std::vector<TokenId>& ids,
                                     bool skip_special = false) const override;
  int64_t CountTokens(absl::string_view text) const override;
  int64_t VocabSize() const override { return 65536; }
  std::string Name() const override { return "test-wordpiece"; }
};

// Fixed chunks of 3 bytes (the last may be shorter): about 3 characters per token, and
// every boundary shifts when text is concatenated, which stresses the length search.
class ChunkTokenizer : public Tokenizer {
 public:
  std::vector<TokenId> Encode(absl::string_view text, bool parse_special = false) const override;
  absl::StatusOr<std::string> Decode(const std::vector<TokenId>& ids,
                                     bool skip_special = false) const override;
  int64_t CountTokens(absl::string_view text) const override {
    return static_cast<int64_t>((text.size() + 2) / 3);
  }
  int64_t VocabSize() const override { return 1 << 24; }
  std::string Name() const override { return "test-chunk3"; }
};

}  // namespace sf::tasks::testing

#endif  // SF_TASKS_TESTING_FAKE_TOKENIZERS_H_
