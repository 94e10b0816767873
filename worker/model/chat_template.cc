#include "worker/model/chat_template.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"

namespace sf {
namespace {

// A rendered prompt as a list of parts: special tokens (by text) and plain text.
struct Part {
  bool special;
  std::string text;
};

// Python's str.strip() (what Jinja's trim does) for ASCII whitespace.
std::string Trim(absl::string_view s) { return std::string(absl::StripAsciiWhitespace(s)); }

std::vector<Part> Parts(ChatFormat format, const HfTokenizer& tok,
                        const std::vector<ChatMessage>& messages, const ChatOptions& options) {
  std::vector<Part> parts;
  auto special = [&](absl::string_view t) { parts.push_back({true, std::string(t)}); };
  auto text = [&](std::string t) {
    if (!t.empty()) parts.push_back({false, std::move(t)});
  };
  switch (format) {
    case ChatFormat::kRaw: {
      if (tok.AddsBos() && tok.BosId().has_value()) {
        auto bos = tok.Decode({*tok.BosId()});
        if (bos.ok()) special(*bos);
      }
      for (const ChatMessage& m : messages) text(m.content);
      break;
    }
    case ChatFormat::kLlama3: {
      // Llama 3's template: bos_token, then per message a header, the trimmed content
      // and <|eot_id|>; it always ends with the assistant header.
      const std::string bos =
          tok.config().bos_token.empty() ? "<|begin_of_text|>" : tok.config().bos_token;
      special(bos);
      for (const ChatMessage& m : messages) {
        special("<|start_header_id|>");
        text(m.role);
        special("<|end_header_id|>");
        text("\n\n" + Trim(m.content));
        special("<|eot_id|>");
      }
      if (options.add_generation_prompt) {
        special("<|start_header_id|>");
        text("assistant");
        special("<|end_header_id|>");
        text("\n\n");
      }
      break;
    }
    case ChatFormat::kChatMl: {
      for (const ChatMessage& m : messages) {
        special("<|im_start|>");
        text(m.role + "\n" + m.content);
        special("<|im_end|>");
        text("\n");
      }
      if (options.add_generation_prompt) {
        special("<|im_start|>");
        text("assistant\n");
        if (options.disable_thinking) {
          // <think> and </think> are (non-special) added tokens in Qwen3's vocabulary.
          text("<think>\n\n</think>\n\n");
        }
      }
      break;
    }
  }
  // Adjacent text parts are encoded together, as the rendered string would be.
  std::vector<Part> merged;
  for (Part& p : parts) {
    if (!p.special && !merged.empty() && !merged.back().special) {
      merged.back().text += p.text;
    } else {
      merged.push_back(std::move(p));
    }
  }
  return merged;
}

}  // namespace

absl::StatusOr<ChatFormat> ParseChatFormat(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "raw" || lower == "none") return ChatFormat::kRaw;
  if (lower == "chatml" || lower == "qwen") return ChatFormat::kChatMl;
  if (lower == "llama3" || lower == "llama-3") return ChatFormat::kLlama3;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown chat format \"", name, "\"; use one of: raw, chatml, llama3"));
}

absl::string_view ChatFormatName(ChatFormat format) {
  switch (format) {
    case ChatFormat::kRaw:
      return "raw";
    case ChatFormat::kChatMl:
      return "chatml";
    case ChatFormat::kLlama3:
      return "llama3";
  }
  return "raw";
}

ChatFormat DetectChatFormat(const HfTokenizer& tokenizer) {
  const std::string& tmpl = tokenizer.config().chat_template;
  if (tmpl.find("<|im_start|>") != std::string::npos) return ChatFormat::kChatMl;
  if (tmpl.find("<|start_header_id|>") != std::string::npos) return ChatFormat::kLlama3;
  if (!tmpl.empty()) return ChatFormat::kRaw;  // some other template: do not guess
  if (tokenizer.TokenToId("<|im_start|>") && tokenizer.TokenToId("<|im_end|>")) {
    return ChatFormat::kChatMl;
  }
  if (tokenizer.TokenToId("<|start_header_id|>") && tokenizer.TokenToId("<|eot_id|>")) {
    return ChatFormat::kLlama3;
  }
  return ChatFormat::kRaw;
}

std::string RenderChat(ChatFormat format, const HfTokenizer& tokenizer,
                       const std::vector<ChatMessage>& messages, const ChatOptions& options) {
  std::string out;
  for (const Part& p : Parts(format, tokenizer, messages, options)) out += p.text;
  return out;
}

absl::StatusOr<std::vector<TokenId>> EncodeChat(ChatFormat format, const HfTokenizer& tokenizer,
                                                const std::vector<ChatMessage>& messages,
                                                const ChatOptions& options) {
  std::vector<TokenId> ids;
  for (const Part& p : Parts(format, tokenizer, messages, options)) {
    if (p.special) {
      std::optional<TokenId> id = tokenizer.TokenToId(p.text);
      if (!id.has_value()) {
        return absl::FailedPreconditionError(
            absl::StrCat("chat format ", ChatFormatName(format), " needs the token ", p.text,
                         ", which tokenizer ", tokenizer.Name(),
                         " lacks; pick the model's own format (--chat auto) or raw"));
      }
      ids.push_back(*id);
    } else {
      std::vector<TokenId> part = tokenizer.Encode(p.text, /*parse_special=*/false);
      ids.insert(ids.end(), part.begin(), part.end());
    }
  }
  return ids;
}

}  // namespace sf
