// sfctl tokenize: text on stdin to token ids (a JSON array) with a model's own tokenizer,
// or ids back to text with --decode, so users can check what a prompt becomes.
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/command.h"
#include "nlohmann/json.hpp"
#include "worker/model/chat_template.h"
#include "worker/model/tokenizer.h"

namespace sf::cli {
namespace {

struct TokenizeOptions {
  std::string tokenizer_path;
  std::string model_dir;
  bool add_special = false;
  bool parse_special = false;
  bool decode = false;
  bool skip_special = false;
  bool count = false;
  std::string chat;
};

absl::StatusOr<std::vector<TokenId>> ParseIds(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_array()) {
    return absl::InvalidArgumentError(
        "--decode reads a JSON array of token ids on stdin, e.g. [9906, 1917]");
  }
  std::vector<TokenId> ids;
  for (size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_number_integer()) {
      return absl::InvalidArgumentError(
          absl::StrCat("element ", i, " of the input array is not an integer token id"));
    }
    const int64_t v = j[i].get<int64_t>();
    if (v < INT32_MIN || v > INT32_MAX) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", v, " is out of range"));
    }
    ids.push_back(static_cast<TokenId>(v));
  }
  return ids;
}

absl::Status RunTokenize(const TokenizeOptions& opt, Io& io) {
  if (opt.tokenizer_path.empty() == opt.model_dir.empty()) {
    return absl::InvalidArgumentError("give exactly one of --tokenizer PATH or --model DIR");
  }
  absl::StatusOr<std::unique_ptr<HfTokenizer>> loaded =
      opt.model_dir.empty() ? HfTokenizer::FromFile(opt.tokenizer_path)
                            : HfTokenizer::FromModelDir(opt.model_dir);
  if (!loaded.ok()) return loaded.status();
  const HfTokenizer& tok = **loaded;
  const std::string input((std::istreambuf_iterator<char>(io.in)),
                          std::istreambuf_iterator<char>());

  if (opt.decode) {
    absl::StatusOr<std::vector<TokenId>> ids = ParseIds(input);
    if (!ids.ok()) return ids.status();
    absl::StatusOr<std::string> text = tok.Decode(*ids, opt.skip_special);
    if (!text.ok()) return text.status();
    io.out << *text;
    return absl::OkStatus();
  }

  std::vector<TokenId> ids;
  if (!opt.chat.empty()) {
    ChatFormat format;
    if (opt.chat == "auto") {
      format = DetectChatFormat(tok);
    } else {
      absl::StatusOr<ChatFormat> parsed = ParseChatFormat(opt.chat);
      if (!parsed.ok()) return parsed.status();
      format = *parsed;
    }
    absl::StatusOr<std::vector<TokenId>> chat = EncodeChat(format, tok, {{"user", input}});
    if (!chat.ok()) return chat.status();
    ids = *std::move(chat);
  } else {
    if (opt.add_special && tok.AddsBos() && tok.BosId().has_value()) ids.push_back(*tok.BosId());
    const std::vector<TokenId> body = tok.Encode(input, opt.parse_special);
    ids.insert(ids.end(), body.begin(), body.end());
  }
  if (opt.count) {
    io.out << ids.size() << "\n";
  } else {
    io.out << "[" << absl::StrJoin(ids, ", ") << "]\n";
  }
  return absl::OkStatus();
}

}  // namespace

void AddTokenizeCommand(CLI::App& app, Io& io, int* exit_code) {
  auto opt = std::make_shared<TokenizeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "tokenize",
      "Encode stdin with a model's tokenizer and print the ids as a JSON array "
      "(no special tokens added unless asked), or decode a JSON array of ids with --decode.\n"
      "Example: echo -n 'Hello world' | sfctl tokenize --model /models/Llama-3.1-8B");
  cmd->add_option("--tokenizer", opt->tokenizer_path,
                  "Path of a Hugging Face tokenizer.json (tokenizer_config.json beside it is "
                  "read too)");
  cmd->add_option("--model", opt->model_dir, "A Hugging Face model folder with tokenizer.json");
  cmd->add_flag("--add-special", opt->add_special,
                "Prepend BOS when the model's tokenizer config adds it");
  cmd->add_flag("--parse-special", opt->parse_special,
                "Encode text such as <|eot_id|> as its special token (default: as plain text)");
  cmd->add_option("--chat", opt->chat,
                  "Wrap stdin as one user message in a chat format: auto (from "
                  "tokenizer_config.json), chatml, llama3 or raw");
  cmd->add_flag("--count", opt->count, "Print only the number of tokens");
  cmd->add_flag("--decode", opt->decode, "Read a JSON array of ids on stdin and print the text");
  cmd->add_flag("--skip-special", opt->skip_special, "With --decode: leave out special tokens");
  cmd->callback([opt, &io, exit_code] { *exit_code = ReportStatus(RunTokenize(*opt, io), io); });
}

}  // namespace sf::cli
