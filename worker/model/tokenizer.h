// Byte-level BPE tokenizer read from a Hugging Face tokenizer.json (Llama 3, Qwen2/3,
// GPT-2 style files) and the few tokenizer_config.json fields the engine needs (BOS/EOS,
// chat template). See docs/tokenizer.md for what is supported and how it is checked.
#ifndef SF_WORKER_MODEL_TOKENIZER_H_
#define SF_WORKER_MODEL_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/tokenizer.h"

namespace sf {

// The fields of tokenizer_config.json that matter for prompts. Token fields hold the
// token's text ("<|begin_of_text|>"); they are empty when the file has none (or null).
struct TokenizerConfig {
  std::string bos_token;
  std::string eos_token;
  std::string pad_token;
  // add_bos_token as written; nullopt when the file does not say (then the
  // tokenizer.json post-processor decides, see HfTokenizer::AddsBos).
  std::optional<bool> add_bos_token;
  // The Jinja chat template's text (only inspected, never executed); empty when absent.
  std::string chat_template;
};

// Parses tokenizer_config.json text. `origin` (a path) prefixes error messages.
// InvalidArgument names the field when the JSON or a field's type is wrong.
absl::StatusOr<TokenizerConfig> ParseTokenizerConfig(absl::string_view json,
                                                     absl::string_view origin);

class HfTokenizer final : public Tokenizer {
 public:
  // Reads `tokenizer_json_path` and, when it exists, tokenizer_config.json in the same
  // folder. NotFound when the tokenizer file is missing; InvalidArgument naming the file
  // and the field (e.g. "model.merges[12]") when its content is malformed or uses a
  // feature this implementation does not support.
  static absl::StatusOr<std::unique_ptr<HfTokenizer>> FromFile(
      const std::string& tokenizer_json_path);
  // FromFile(dir + "/tokenizer.json").
  static absl::StatusOr<std::unique_ptr<HfTokenizer>> FromModelDir(const std::string& dir);
  // Builds from file contents; `config_json` may be empty (no tokenizer_config.json).
  // `origin` names the source in error messages.
  static absl::StatusOr<std::unique_ptr<HfTokenizer>> FromJson(absl::string_view tokenizer_json,
                                                               absl::string_view config_json,
                                                               absl::string_view origin);

  ~HfTokenizer() override;
  HfTokenizer(const HfTokenizer&) = delete;
  HfTokenizer& operator=(const HfTokenizer&) = delete;

  // Never fails: bytes that are not valid UTF-8 bypass normalisation and the split regex
  // and are encoded as single-byte tokens, so Decode(Encode(t)) == t for every input
  // whose normaliser (NFC) leaves it unchanged.
  std::vector<TokenId> Encode(absl::string_view text, bool parse_special = false) const override;
  // The bytes the tokens stand for (added tokens as their text). The result can be
  // invalid UTF-8 when `ids` cut a character in two (a prefix of a generation).
  absl::StatusOr<std::string> Decode(const std::vector<TokenId>& ids,
                                     bool skip_special = false) const override;
  // Encode(text).size(), without allocating per call (a reused per-thread buffer).
  int64_t CountTokens(absl::string_view text) const override;
  int64_t VocabSize() const override;
  // "hf-bpe-" + the first 12 hex digits of a hash of tokenizer.json: stable job keys.
  std::string Name() const override;

  // The id of an added or vocabulary token spelled `text`; nullopt if none.
  std::optional<TokenId> TokenToId(absl::string_view text) const;
  // True for added tokens marked "special" (what skip_special drops).
  bool IsSpecial(TokenId id) const;
  const TokenizerConfig& config() const;
  // Whether a prompt starts with BOS: tokenizer_config.json's add_bos_token when it is
  // set, otherwise whether tokenizer.json's TemplateProcessing post-processor adds it.
  bool AddsBos() const;
  // The BOS id when the config names a bos_token that exists; nullopt otherwise.
  std::optional<TokenId> BosId() const;
  std::optional<TokenId> EosId() const;

 private:
  struct Impl;
  explicit HfTokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sf

#endif  // SF_WORKER_MODEL_TOKENIZER_H_
