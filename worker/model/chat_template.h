// Chat prompt formats written out in C++ (no Jinja): ChatML (Qwen) and Llama 3, chosen
// from tokenizer_config.json or by the user, plus raw text. See docs/tokenizer.md.
#ifndef SF_WORKER_MODEL_CHAT_TEMPLATE_H_
#define SF_WORKER_MODEL_CHAT_TEMPLATE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/tokenizer.h"
#include "worker/model/tokenizer.h"

namespace sf {

enum class ChatFormat {
  kRaw,     // the user text as is (BOS per the tokenizer config)
  kChatMl,  // <|im_start|>role\ncontent<|im_end|>\n ... (Qwen2/2.5/3)
  kLlama3,  // <|begin_of_text|><|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|> ...
};

// "raw", "chatml" (alias "qwen"), "llama3". InvalidArgument lists the names otherwise.
absl::StatusOr<ChatFormat> ParseChatFormat(absl::string_view name);
absl::string_view ChatFormatName(ChatFormat format);

// The format the model's files ask for: markers in the config's chat_template text
// first, then which special tokens the vocabulary has; kRaw when neither says.
ChatFormat DetectChatFormat(const HfTokenizer& tokenizer);

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

struct ChatOptions {
  // Append the assistant header so the model answers next (what generation wants).
  bool add_generation_prompt = true;
  // Qwen3 only: an empty <think></think> block after the assistant header, which is what
  // its template emits for enable_thinking=false.
  bool disable_thinking = false;
};

// The prompt as text, exactly what the model's Jinja template renders for these
// messages (kRaw: the contents concatenated, BOS text first when the tokenizer adds it).
std::string RenderChat(ChatFormat format, const HfTokenizer& tokenizer,
                       const std::vector<ChatMessage>& messages, const ChatOptions& options = {});

// The prompt as ids. Template markers become their special-token ids, while message
// contents are encoded with parse_special=false, so text that spells "<|im_end|>" in a
// message cannot inject a control token. FailedPrecondition when the tokenizer lacks a
// token the format needs (e.g. llama3 format with a Qwen tokenizer).
absl::StatusOr<std::vector<TokenId>> EncodeChat(ChatFormat format, const HfTokenizer& tokenizer,
                                                const std::vector<ChatMessage>& messages,
                                                const ChatOptions& options = {});

}  // namespace sf

#endif  // SF_WORKER_MODEL_CHAT_TEMPLATE_H_
