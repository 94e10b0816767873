#include "tasks/testing/fake_tokenizers.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace sf::tasks::testing {
namespace {

// Calls emit(begin, end) for each token of `text`.
template <typename F>
void Split(absl::string_view text, F emit) {
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    size_t start = i;
    if (text[i] == ' ' && i + 1 < n && absl::ascii_isalpha(text[i + 1])) ++i;
    if (absl::ascii_isalpha(text[i])) {
      size_t letters = 0;
      while (i < n && absl::ascii_isalpha(text[i]) && letters < 5) {
        ++i;
        ++letters;
      }
    } else if (absl::ascii_isdigit(text[i])) {
      size_t digits = 0;
      while (i < n && absl::ascii_isdigit(text[i]) && digits < 3) {
        ++i;
        ++digits;
      }
    } else {
      ++i;
    }
    emit(start, i);
  }
}

}  // namespace

std::vector<TokenId> WordPieceTokenizer::Encode(absl::string_view text, bool) const {
  std::vector<TokenId> out;
  Split(text, [&](size_t b, size_t e) {
    uint32_t h = 2166136261u;
    for (size_t i = b; i < e; ++i) h = (h ^ static_cast<unsigned char>(text[i])) * 16777619u;
    out.push_back(static_cast<TokenId>(h % 65536));
  });
  return out;
}

absl::StatusOr<std::string> WordPieceTokenizer::Decode(const std::vector<TokenId>&, bool) const {
  return absl::UnimplementedError("the test word-piece tokenizer hashes tokens; it cannot decode");
}

int64_t WordPieceTokenizer::CountTokens(absl::string_view text) const {
  int64_t count = 0;
  Split(text, [&](size_t, size_t) { ++count; });
  return count;
}

std::vector<TokenId> ChunkTokenizer::Encode(absl::string_view text, bool) const {
  std::vector<TokenId> out;
  for (size_t i = 0; i < text.size(); i += 3) {
    TokenId id = 0;
    for (size_t j = i; j < i + 3 && j < text.size(); ++j) {
      id = (id << 8) | static_cast<unsigned char>(text[j]);
    }
    out.push_back(id);
  }
  return out;
}

absl::StatusOr<std::string> ChunkTokenizer::Decode(const std::vector<TokenId>& ids, bool) const {
  std::string out;
  for (TokenId id : ids) {
    if (id < 0 || id >= (1 << 24)) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", id, " is not a 3-byte chunk"));
    }
    std::string chunk;
    for (; id != 0; id >>= 8) chunk.insert(chunk.begin(), static_cast<char>(id & 0xff));
    out += chunk;
  }
  return out;
}

}  // namespace sf::tasks::testing
