#include "worker/model/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <queue>
#include <sstream>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "common/status.h"
#include "common/utf8.h"
#include "nlohmann/json.hpp"

namespace sf {
namespace {

using json = nlohmann::json;

// ---------------------------------------------------------------------------
// GPT-2 byte-level alphabet: each byte is shown as a printable code point so that
// vocab and merges are text. Tokens are converted back to raw bytes at load time, so
// encoding never maps text into this alphabet.

std::array<uint32_t, 256> ByteToCodePoint() {
  std::array<uint32_t, 256> map{};
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
    map[b] = printable ? static_cast<uint32_t>(b) : next++;
  }
  return map;
}

// Converts a byte-level token ("Ġthe") to its bytes (" the"); false if a code point is
// outside the alphabet or the text is not UTF-8.
bool ByteLevelToBytes(absl::string_view token, std::string* bytes) {
  static const absl::flat_hash_map<uint32_t, uint8_t>* const kReverse = [] {
    auto* m = new absl::flat_hash_map<uint32_t, uint8_t>();
    const std::array<uint32_t, 256> fwd = ByteToCodePoint();
    for (int b = 0; b < 256; ++b) (*m)[fwd[b]] = static_cast<uint8_t>(b);
    return m;
  }();
  bytes->clear();
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(token.data());
  utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(token.size());
  while (left > 0) {
    utf8proc_int32_t cp;
    const utf8proc_ssize_t n = utf8proc_iterate(p, left, &cp);
    if (n <= 0) return false;
    auto it = kReverse->find(static_cast<uint32_t>(cp));
    if (it == kReverse->end()) return false;
    bytes->push_back(static_cast<char>(it->second));
    p += n;
    left -= n;
  }
  return true;
}

// Length of the invalid run at the start of `s` (at least 1 when s starts invalid).
size_t InvalidUtf8Prefix(absl::string_view s) {
  size_t i = 0;
  while (i < s.size() && ValidUtf8PrefixLength(s.substr(i, 4)) == 0) ++i;
  return i;
}

std::string Hex64(uint64_t v, int digits) {
  std::string s = absl::StrFormat("%016x", v);
  return s.substr(0, digits);
}

uint64_t Fnv1a(absl::string_view s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

absl::Status FieldError(absl::string_view origin, absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(origin, ": field ", field, ": ", what));
}

// ---------------------------------------------------------------------------
// PCRE2 regex with UTF + UCP, JIT-compiled when the library supports it.

class Regex {
 public:
  static absl::StatusOr<std::unique_ptr<Regex>> Compile(absl::string_view pattern, bool literal,
                                                        absl::string_view origin,
                                                        absl::string_view field) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    uint32_t options = PCRE2_UTF | PCRE2_UCP;
    if (literal) options = PCRE2_UTF | PCRE2_LITERAL;  // UCP is not allowed with LITERAL
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                     options, &error, &offset, nullptr);
    if (code == nullptr) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(error, buf, sizeof(buf));
      return FieldError(origin, field,
                        absl::StrCat("regex does not compile at offset ", offset, ": ",
                                     reinterpret_cast<const char*>(buf)));
    }
    auto re = std::unique_ptr<Regex>(new Regex(code));
    re->jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    return re;
  }
  ~Regex() { pcre2_code_free(code_); }

  // Calls on_match(begin, end) for each successive non-overlapping match in `text`
  // (valid UTF-8). Empty matches are skipped.
  template <typename F>
  void ForEachMatch(absl::string_view text, F&& on_match) const {
    thread_local MatchState state;
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    size_t pos = 0;
    while (pos < text.size()) {
      int rc = jit_
                   ? pcre2_jit_match(code_, subject, text.size(), pos, 0, state.data, state.context)
                   : pcre2_match(code_, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, state.data,
                                 state.context);
      if (rc == PCRE2_ERROR_NOMATCH) return;
      if (rc < 0) {
        // Resource limits only (the pattern compiled and the input is valid UTF-8):
        // keep the rest as one piece rather than dropping text.
        on_match(pos, text.size());
        return;
      }
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(state.data);
      size_t b = ov[0], e = ov[1];
      if (e == b) {
        // Step over one code point so an empty match cannot loop.
        size_t next = b + 1;
        while (next < text.size() && (static_cast<unsigned char>(text[next]) & 0xC0) == 0x80) {
          ++next;
        }
        pos = next;
        continue;
      }
      on_match(b, e);
      pos = e;
    }
  }

 private:
  struct MatchState {
    MatchState() {
      data = pcre2_match_data_create(1, nullptr);
      context = pcre2_match_context_create(nullptr);
      stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
      pcre2_jit_stack_assign(context, nullptr, stack);
    }
    ~MatchState() {
      pcre2_jit_stack_free(stack);
      pcre2_match_context_free(context);
      pcre2_match_data_free(data);
    }
    pcre2_match_data* data;
    pcre2_match_context* context;
    pcre2_jit_stack* stack;
  };

  explicit Regex(pcre2_code* code) : code_(code) {}
  pcre2_code* code_;
  bool jit_ = false;
};

// The GPT-2 split that ByteLevel applies when its use_regex is true.
constexpr absl::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct PreTokenizerStep {
  enum class Kind { kSplit, kByteLevel };
  Kind kind;
  std::unique_ptr<Regex> regex;  // null for a ByteLevel step with use_regex false
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
  bool add_prefix_space = false;
};

enum class NormalizerKind { kNfc, kNfd, kNfkc, kNfkd };

struct AddedToken {
  std::string content;
  TokenId id;
  bool special;
  bool lstrip;
  bool rstrip;
  bool single_word;
};

// A byte trie over added-token texts for leftmost-longest matching.
struct TrieNode {
  absl::flat_hash_map<unsigned char, int> next;
  int token = -1;  // index into added tokens, or -1
};

bool IsSpaceByte(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

bool IsWordByte(unsigned char c) { return c >= 0x80 || std::isalnum(c) || c == '_'; }

}  // namespace

// ---------------------------------------------------------------------------

struct HfTokenizer::Impl {
  std::string origin;
  std::string name;
  TokenizerConfig config;
  bool template_adds_bos = false;
  std::optional<TokenId> template_bos;

  std::vector<NormalizerKind> normalizers;
  std::vector<PreTokenizerStep> pre_tokenizer;
  bool ignore_merges = false;

  // Vocabulary as raw bytes.
  absl::flat_hash_map<std::string, TokenId> bytes_to_id;
  std::vector<std::string> id_to_bytes;  // decode text per id (added tokens: their content)
  std::vector<bool> is_special;
  std::array<TokenId, 256> byte_id{};
  // (left << 32 | right) -> (rank, merged id)
  absl::flat_hash_map<uint64_t, std::pair<int32_t, TokenId>> merges;

  std::vector<AddedToken> added;
  absl::flat_hash_map<std::string, TokenId> added_by_text;
  std::vector<TrieNode> trie;
  std::array<bool, 256> trie_first{};         // bytes that start any added token
  std::array<bool, 256> trie_first_normal{};  // ... any non-special one

  // Word cache: a word's ids depend only on its bytes. Sharded so threads rarely meet.
  static constexpr int kShards = 16;
  static constexpr size_t kMaxShardEntries = 1 << 16;
  static constexpr size_t kMaxCachedWord = 64;
  struct Shard {
    mutable absl::Mutex mu;
    absl::flat_hash_map<std::string, std::vector<TokenId>> words ABSL_GUARDED_BY(mu);
  };
  mutable std::array<Shard, kShards> cache;

  void BpeWord(absl::string_view word, std::vector<TokenId>* out) const;
  void BpeWordUncached(absl::string_view word, std::vector<TokenId>* out) const;
  void EncodeSegment(absl::string_view text, std::vector<TokenId>* out) const;
  void EncodeValidSegment(absl::string_view text, std::vector<TokenId>* out) const;
  void Encode(absl::string_view text, bool parse_special, std::vector<TokenId>* out) const;

  // The steps of HfTokenizer::FromJson, in order; each names the field it rejects.
  // `max_id` collects the largest token id seen.
  absl::Status ParseModel(const json& doc, const json& model, TokenId* max_id);
  absl::Status ParseAddedTokens(const json& doc, TokenId* max_id);
  absl::Status BuildIdTables(TokenId max_id);
  absl::Status ParseMerges(const json& model);
  void ParsePostProcessor(const json& doc);

  std::pair<int32_t, TokenId> Merge(TokenId left, TokenId right) const {
    auto it = merges.find((static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
                          static_cast<uint32_t>(right));
    if (it == merges.end()) return {std::numeric_limits<int32_t>::max(), -1};
    return it->second;
  }
};

void HfTokenizer::Impl::BpeWordUncached(absl::string_view word, std::vector<TokenId>* out) const {
  const size_t n = word.size();
  if (ignore_merges) {
    auto it = bytes_to_id.find(word);
    if (it != bytes_to_id.end()) {
      out->push_back(it->second);
      return;
    }
  }
  constexpr int32_t kNone = std::numeric_limits<int32_t>::max();
  if (n <= 128) {
    // Short words: arrays of symbols and of the rank of each adjacent pair; each step
    // merges the leftmost lowest-ranked pair, as Hugging Face's heap does.
    TokenId syms[128];
    int32_t ranks[128];
    TokenId merged[128];
    size_t m = n;
    for (size_t i = 0; i < n; ++i) syms[i] = byte_id[static_cast<unsigned char>(word[i])];
    for (size_t i = 0; i + 1 < m; ++i) std::tie(ranks[i], merged[i]) = Merge(syms[i], syms[i + 1]);
    while (m > 1) {
      size_t best = 0;
      int32_t best_rank = kNone;
      for (size_t i = 0; i + 1 < m; ++i) {
        if (ranks[i] < best_rank) best_rank = ranks[i], best = i;
      }
      if (best_rank == kNone) break;
      syms[best] = merged[best];
      for (size_t i = best + 1; i + 1 < m; ++i) {
        syms[i] = syms[i + 1];
        ranks[i] = ranks[i + 1];
        merged[i] = merged[i + 1];
      }
      --m;
      if (best + 1 < m) std::tie(ranks[best], merged[best]) = Merge(syms[best], syms[best + 1]);
      if (best > 0) std::tie(ranks[best - 1], merged[best - 1]) = Merge(syms[best - 1], syms[best]);
    }
    out->insert(out->end(), syms, syms + m);
    return;
  }
  // Long words (whitespace runs, long digit-free strings): linked list + min-heap of
  // candidate merges ordered by (rank, position); stale entries are skipped on pop.
  std::vector<TokenId> sym(n);
  std::vector<int> prev(n), next(n);
  for (size_t i = 0; i < n; ++i) {
    sym[i] = byte_id[static_cast<unsigned char>(word[i])];
    prev[i] = static_cast<int>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int>(i + 1) : -1;
  }
  struct Cand {
    int32_t rank;
    int pos;
    TokenId left, right, merged;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int pos) {
    if (pos < 0 || next[pos] < 0) return;
    auto [rank, id] = Merge(sym[pos], sym[next[pos]]);
    if (rank != kNone) heap.push({rank, pos, sym[pos], sym[next[pos]], id});
  };
  for (size_t i = 0; i + 1 < n; ++i) push(static_cast<int>(i));
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    const int r = next[c.pos];
    if (sym[c.pos] != c.left || r < 0 || sym[r] != c.right) continue;  // stale
    sym[c.pos] = c.merged;
    sym[r] = -1;
    next[c.pos] = next[r];
    if (next[r] >= 0) prev[next[r]] = c.pos;
    push(prev[c.pos]);
    push(c.pos);
  }
  for (int i = 0; i >= 0; i = next[i]) out->push_back(sym[i]);
}

void HfTokenizer::Impl::BpeWord(absl::string_view word, std::vector<TokenId>* out) const {
  if (word.empty()) return;
  if (word.size() == 1) {
    out->push_back(byte_id[static_cast<unsigned char>(word[0])]);
    return;
  }
  if (ignore_merges) {
    // A whole word in the vocabulary is one token; no need for the cache's lock.
    auto it = bytes_to_id.find(word);
    if (it != bytes_to_id.end()) {
      out->push_back(it->second);
      return;
    }
  }
  if (word.size() > kMaxCachedWord) {
    BpeWordUncached(word, out);
    return;
  }
  const size_t h = absl::HashOf(word);
  Shard& shard = cache[h % kShards];
  {
    absl::MutexLock lock(&shard.mu);
    auto it = shard.words.find(word);
    if (it != shard.words.end()) {
      out->insert(out->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t start = out->size();
  BpeWordUncached(word, out);
  absl::MutexLock lock(&shard.mu);
  if (shard.words.size() >= kMaxShardEntries) shard.words.clear();
  shard.words.emplace(std::string(word), std::vector<TokenId>(out->begin() + start, out->end()));
}

void HfTokenizer::Impl::EncodeValidSegment(absl::string_view text,
                                           std::vector<TokenId>* out) const {
  std::string normalized;
  if (!normalizers.empty()) {
    // Code points below U+0300 are stable under every normal form used here, and their
    // UTF-8 lead bytes are below 0xCC: such text needs no work.
    bool stable = true;
    for (char c : text) {
      if (static_cast<unsigned char>(c) >= 0xCC) {
        stable = false;
        break;
      }
    }
    if (!stable) {
      normalized.assign(text.data(), text.size());
      for (NormalizerKind kind : normalizers) {
        int options = UTF8PROC_STABLE;
        switch (kind) {
          case NormalizerKind::kNfc:
            options |= UTF8PROC_COMPOSE;
            break;
          case NormalizerKind::kNfd:
            options |= UTF8PROC_DECOMPOSE;
            break;
          case NormalizerKind::kNfkc:
            options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
            break;
          case NormalizerKind::kNfkd:
            options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
            break;
        }
        utf8proc_uint8_t* result = nullptr;
        const utf8proc_ssize_t len =
            utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(normalized.data()),
                         static_cast<utf8proc_ssize_t>(normalized.size()), &result,
                         static_cast<utf8proc_option_t>(options));
        if (len >= 0 && result != nullptr) normalized.assign(reinterpret_cast<char*>(result), len);
        std::free(result);
      }
      text = normalized;
    }
  }

  // The common case (Llama 3, Qwen): one isolating split; words go straight to BPE.
  if (pre_tokenizer.size() == 1 && pre_tokenizer[0].regex != nullptr &&
      pre_tokenizer[0].behavior == SplitBehavior::kIsolated && !pre_tokenizer[0].invert &&
      !pre_tokenizer[0].add_prefix_space) {
    size_t last = 0;
    pre_tokenizer[0].regex->ForEachMatch(text, [&](size_t b, size_t e) {
      if (b > last) BpeWord(text.substr(last, b - last), out);
      BpeWord(text.substr(b, e - b), out);
      last = e;
    });
    if (last < text.size()) BpeWord(text.substr(last), out);
    return;
  }
  // Pieces flow through the pre-tokenizer steps; pieces that a step rewrites (prefix
  // space) live in `owned`.
  std::vector<absl::string_view> pieces{text};
  std::vector<absl::string_view> next_pieces;
  std::deque<std::string> owned;
  for (const PreTokenizerStep& step : pre_tokenizer) {
    next_pieces.clear();
    for (absl::string_view piece : pieces) {
      if (step.kind == PreTokenizerStep::Kind::kByteLevel && step.add_prefix_space &&
          (piece.empty() || piece[0] != ' ')) {
        owned.push_back(absl::StrCat(" ", piece));
        piece = owned.back();
      }
      if (step.regex == nullptr) {
        next_pieces.push_back(piece);
        continue;
      }
      // Split into (span, is_match) parts, then apply the behaviour.
      struct Part {
        size_t b, e;
        bool match;
      };
      std::vector<Part> parts;
      size_t last = 0;
      step.regex->ForEachMatch(piece, [&](size_t b, size_t e) {
        if (b > last) parts.push_back({last, b, false});
        parts.push_back({b, e, true});
        last = e;
      });
      if (last < piece.size()) parts.push_back({last, piece.size(), false});
      if (step.invert) {
        for (Part& p : parts) p.match = !p.match;
      }
      auto sub = [&](const Part& p) { return piece.substr(p.b, p.e - p.b); };
      switch (step.behavior) {
        case SplitBehavior::kIsolated:
          for (const Part& p : parts) next_pieces.push_back(sub(p));
          break;
        case SplitBehavior::kRemoved:
          for (const Part& p : parts) {
            if (!p.match) next_pieces.push_back(sub(p));
          }
          break;
        case SplitBehavior::kMergedWithPrevious: {
          bool prev_open = false;  // last pushed piece is a gap a match may join
          for (const Part& p : parts) {
            if (p.match && prev_open) {
              absl::string_view& back = next_pieces.back();
              back = absl::string_view(back.data(), back.size() + (p.e - p.b));
              prev_open = false;
            } else {
              next_pieces.push_back(sub(p));
              prev_open = !p.match;
            }
          }
          break;
        }
        case SplitBehavior::kMergedWithNext: {
          bool pending = false;  // last pushed piece is a match waiting for a gap
          for (const Part& p : parts) {
            if (!p.match && pending) {
              absl::string_view& back = next_pieces.back();
              back = absl::string_view(back.data(), back.size() + (p.e - p.b));
              pending = false;
            } else {
              next_pieces.push_back(sub(p));
              pending = p.match;
            }
          }
          break;
        }
        case SplitBehavior::kContiguous: {
          bool prev_match = false;
          for (const Part& p : parts) {
            if (p.match && prev_match) {
              absl::string_view& back = next_pieces.back();
              back = absl::string_view(back.data(), back.size() + (p.e - p.b));
            } else {
              next_pieces.push_back(sub(p));
            }
            prev_match = p.match;
          }
          break;
        }
      }
    }
    std::swap(pieces, next_pieces);
  }
  for (absl::string_view piece : pieces) BpeWord(piece, out);
}

void HfTokenizer::Impl::EncodeSegment(absl::string_view text, std::vector<TokenId>* out) const {
  // Invalid UTF-8 never reaches the normaliser or the regex: each invalid byte is its
  // own word, so every input encodes and decodes back to its bytes.
  while (!text.empty()) {
    const size_t valid = ValidUtf8PrefixLength(text);
    if (valid > 0) EncodeValidSegment(text.substr(0, valid), out);
    text.remove_prefix(valid);
    const size_t invalid = InvalidUtf8Prefix(text);
    for (size_t i = 0; i < invalid; ++i)
      out->push_back(byte_id[static_cast<unsigned char>(text[i])]);
    text.remove_prefix(invalid);
  }
}

void HfTokenizer::Impl::Encode(absl::string_view text, bool parse_special,
                               std::vector<TokenId>* out) const {
  const std::array<bool, 256>& first = parse_special ? trie_first : trie_first_normal;
  size_t seg_begin = 0;
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    if (!first[static_cast<unsigned char>(text[i])]) {
      ++i;
      continue;
    }
    // Longest added token starting at i.
    int node = 0;
    int found = -1;
    size_t found_end = 0;
    for (size_t j = i; j < n; ++j) {
      auto it = trie[node].next.find(static_cast<unsigned char>(text[j]));
      if (it == trie[node].next.end()) break;
      node = it->second;
      const int t = trie[node].token;
      if (t >= 0 && (parse_special || !added[t].special)) found = t, found_end = j + 1;
    }
    if (found >= 0 && added[found].single_word) {
      const bool left_ok = i == 0 || !IsWordByte(static_cast<unsigned char>(text[i - 1]));
      const bool right_ok =
          found_end == n || !IsWordByte(static_cast<unsigned char>(text[found_end]));
      if (!left_ok || !right_ok) found = -1;
    }
    if (found < 0) {
      ++i;
      continue;
    }
    const AddedToken& tok = added[found];
    size_t seg_end = i;
    if (tok.lstrip) {
      while (seg_end > seg_begin && IsSpaceByte(text[seg_end - 1])) --seg_end;
    }
    EncodeSegment(text.substr(seg_begin, seg_end - seg_begin), out);
    out->push_back(tok.id);
    i = found_end;
    if (tok.rstrip) {
      while (i < n && IsSpaceByte(text[i])) ++i;
    }
    seg_begin = i;
  }
  EncodeSegment(text.substr(seg_begin), out);
}

// ---------------------------------------------------------------------------
// Loading.

namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(
        "cannot open ", path,
        ": give the path of a Hugging Face tokenizer.json (or a model folder that has one)"));
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading ", path));
  return buf.str();
}

absl::StatusOr<json> ParseJson(absl::string_view text, absl::string_view origin) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": not valid JSON: ", e.what()));
  }
}

// A token field of tokenizer_config.json: a string, null, or an AddedToken object.
absl::StatusOr<std::string> TokenField(const json& cfg, const char* key, absl::string_view origin) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return std::string();
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    auto c = it->find("content");
    if (c != it->end() && c->is_string()) return c->get<std::string>();
  }
  return FieldError(origin, key, "expected a string, null or an object with \"content\"");
}

absl::Status ParseNormalizer(const json& n, absl::string_view origin, const std::string& field,
                             std::vector<NormalizerKind>* out) {
  if (n.is_null()) return absl::OkStatus();
  if (!n.is_object() || !n.contains("type") || !n["type"].is_string()) {
    return FieldError(origin, field, "expected an object with a string \"type\"");
  }
  const std::string type = n["type"].get<std::string>();
  if (type == "Sequence") {
    auto it = n.find("normalizers");
    if (it == n.end() || !it->is_array()) {
      return FieldError(origin, field + ".normalizers", "expected an array");
    }
    for (size_t i = 0; i < it->size(); ++i) {
      SF_RETURN_IF_ERROR(
          ParseNormalizer((*it)[i], origin, absl::StrCat(field, ".normalizers[", i, "]"), out));
    }
    return absl::OkStatus();
  }
  if (type == "NFC") {
    out->push_back(NormalizerKind::kNfc);
  } else if (type == "NFD") {
    out->push_back(NormalizerKind::kNfd);
  } else if (type == "NFKC") {
    out->push_back(NormalizerKind::kNfkc);
  } else if (type == "NFKD") {
    out->push_back(NormalizerKind::kNfkd);
  } else {
    return FieldError(origin, field + ".type",
                      absl::StrCat("normalizer \"", type,
                                   "\" is not supported (supported: NFC, NFD, NFKC, NFKD, "
                                   "Sequence)"));
  }
  return absl::OkStatus();
}

absl::Status ParsePreTokenizer(const json& p, absl::string_view origin, const std::string& field,
                               std::vector<PreTokenizerStep>* out) {
  if (p.is_null()) return absl::OkStatus();
  if (!p.is_object() || !p.contains("type") || !p["type"].is_string()) {
    return FieldError(origin, field, "expected an object with a string \"type\"");
  }
  const std::string type = p["type"].get<std::string>();
  if (type == "Sequence") {
    auto it = p.find("pretokenizers");
    if (it == p.end() || !it->is_array()) {
      return FieldError(origin, field + ".pretokenizers", "expected an array");
    }
    for (size_t i = 0; i < it->size(); ++i) {
      SF_RETURN_IF_ERROR(
          ParsePreTokenizer((*it)[i], origin, absl::StrCat(field, ".pretokenizers[", i, "]"), out));
    }
    return absl::OkStatus();
  }
  PreTokenizerStep step;
  if (type == "ByteLevel") {
    step.kind = PreTokenizerStep::Kind::kByteLevel;
    step.add_prefix_space = p.value("add_prefix_space", false);
    if (p.value("use_regex", true)) {
      SF_ASSIGN_OR_RETURN(step.regex, Regex::Compile(kGpt2Pattern, false, origin, field));
    } else if (!step.add_prefix_space) {
      return absl::OkStatus();  // a no-op: bytes are mapped by the model
    }
    out->push_back(std::move(step));
    return absl::OkStatus();
  }
  if (type == "Split") {
    step.kind = PreTokenizerStep::Kind::kSplit;
    auto pat = p.find("pattern");
    if (pat == p.end() || !pat->is_object()) {
      return FieldError(origin, field + ".pattern",
                        "expected {\"Regex\": ...} or {\"String\": ...}");
    }
    if (pat->contains("Regex") && (*pat)["Regex"].is_string()) {
      SF_ASSIGN_OR_RETURN(step.regex, Regex::Compile((*pat)["Regex"].get<std::string>(), false,
                                                     origin, field + ".pattern.Regex"));
    } else if (pat->contains("String") && (*pat)["String"].is_string()) {
      SF_ASSIGN_OR_RETURN(step.regex, Regex::Compile((*pat)["String"].get<std::string>(), true,
                                                     origin, field + ".pattern.String"));
    } else {
      return FieldError(origin, field + ".pattern",
                        "expected {\"Regex\": ...} or {\"String\": ...}");
    }
    const std::string behavior = p.value("behavior", std::string("Isolated"));
    if (behavior == "Isolated") {
      step.behavior = SplitBehavior::kIsolated;
    } else if (behavior == "Removed") {
      step.behavior = SplitBehavior::kRemoved;
    } else if (behavior == "MergedWithPrevious") {
      step.behavior = SplitBehavior::kMergedWithPrevious;
    } else if (behavior == "MergedWithNext") {
      step.behavior = SplitBehavior::kMergedWithNext;
    } else if (behavior == "Contiguous") {
      step.behavior = SplitBehavior::kContiguous;
    } else {
      return FieldError(origin, field + ".behavior",
                        absl::StrCat("unknown behavior \"", behavior, "\""));
    }
    step.invert = p.value("invert", false);
    out->push_back(std::move(step));
    return absl::OkStatus();
  }
  return FieldError(origin, field + ".type",
                    absl::StrCat("pre-tokenizer \"", type,
                                 "\" is not supported (supported: Split, ByteLevel, Sequence)"));
}

bool HasByteLevel(const json& j, const char* list_key) {
  if (!j.is_object()) return false;
  const std::string type = j.value("type", std::string());
  if (type == "ByteLevel") return true;
  if (type == "Sequence" && j.contains(list_key) && j[list_key].is_array()) {
    for (const json& sub : j[list_key]) {
      if (HasByteLevel(sub, list_key)) return true;
    }
  }
  return false;
}

}  // namespace

absl::StatusOr<TokenizerConfig> ParseTokenizerConfig(absl::string_view text,
                                                     absl::string_view origin) {
  SF_ASSIGN_OR_RETURN(json cfg, ParseJson(text, origin));
  if (!cfg.is_object()) return FieldError(origin, "(top level)", "expected a JSON object");
  TokenizerConfig out;
  SF_ASSIGN_OR_RETURN(out.bos_token, TokenField(cfg, "bos_token", origin));
  SF_ASSIGN_OR_RETURN(out.eos_token, TokenField(cfg, "eos_token", origin));
  SF_ASSIGN_OR_RETURN(out.pad_token, TokenField(cfg, "pad_token", origin));
  if (auto it = cfg.find("add_bos_token"); it != cfg.end() && !it->is_null()) {
    if (!it->is_boolean()) return FieldError(origin, "add_bos_token", "expected true or false");
    out.add_bos_token = it->get<bool>();
  }
  if (auto it = cfg.find("chat_template"); it != cfg.end() && !it->is_null()) {
    if (it->is_string()) {
      out.chat_template = it->get<std::string>();
    } else if (it->is_array()) {
      // Named templates: [{"name": "default", "template": "..."}, ...]; use "default".
      for (const json& t : *it) {
        if (t.is_object() && t.value("name", std::string()) == "default" &&
            t.contains("template") && t["template"].is_string()) {
          out.chat_template = t["template"].get<std::string>();
        }
      }
    } else {
      return FieldError(origin, "chat_template", "expected a string or a list of named templates");
    }
  }
  return out;
}

absl::Status HfTokenizer::Impl::ParseModel(const json& doc, const json& model, TokenId* max_id) {
  const std::string model_type = model.value("type", std::string("BPE"));
  if (model_type != "BPE") {
    return FieldError(origin, "model.type",
                      absl::StrCat("\"", model_type, "\" is not supported (only byte-level BPE)"));
  }
  if (model.value("byte_fallback", false)) {
    return FieldError(origin, "model.byte_fallback",
                      "byte-fallback (SentencePiece-style) BPE is not supported; only byte-level "
                      "BPE (Llama 3, Qwen2/3, GPT-2 style) is");
  }
  if (!HasByteLevel(doc.value("pre_tokenizer", json()), "pretokenizers") ||
      !HasByteLevel(doc.value("decoder", json()), "decoders")) {
    return FieldError(origin, "pre_tokenizer/decoder",
                      "no ByteLevel step: only byte-level BPE tokenizers are supported");
  }
  ignore_merges = model.value("ignore_merges", false);
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    auto it = model.find(key);
    if (it != model.end() && !it->is_null() &&
        !(it->is_string() && it->get<std::string>().empty())) {
      return FieldError(origin, absl::StrCat("model.", key),
                        "subword prefixes/suffixes are not supported (byte-level BPE has none)");
    }
  }

  auto vocab_it = model.find("vocab");
  if (vocab_it == model.end() || !vocab_it->is_object()) {
    return FieldError(origin, "model.vocab", "missing or not an object");
  }
  std::string bytes;
  bytes_to_id.reserve(vocab_it->size());
  for (auto it = vocab_it->begin(); it != vocab_it->end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() > std::numeric_limits<TokenId>::max() / 2) {
      return FieldError(origin, absl::StrCat("model.vocab[\"", it.key(), "\"]"),
                        "expected a non-negative integer id");
    }
    const TokenId id = it.value().get<TokenId>();
    if (!ByteLevelToBytes(it.key(), &bytes)) {
      return FieldError(
          origin, absl::StrCat("model.vocab[\"", it.key(), "\"]"),
          "token is not in the byte-level alphabet; only byte-level BPE is supported");
    }
    bytes_to_id[bytes] = id;
    *max_id = std::max(*max_id, id);
  }

  return absl::OkStatus();
}

absl::Status HfTokenizer::Impl::ParseAddedTokens(const json& doc, TokenId* max_id) {
  if (auto at = doc.find("added_tokens"); at != doc.end() && !at->is_null()) {
    if (!at->is_array()) return FieldError(origin, "added_tokens", "expected an array");
    for (size_t i = 0; i < at->size(); ++i) {
      const json& t = (*at)[i];
      const std::string field = absl::StrCat("added_tokens[", i, "]");
      if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() ||
          !t.contains("content") || !t["content"].is_string() ||
          t["content"].get<std::string>().empty()) {
        return FieldError(origin, field,
                          "expected an object with an integer \"id\" and a non-empty \"content\"");
      }
      const int64_t id = t["id"].get<int64_t>();
      if (id < 0 || id > std::numeric_limits<TokenId>::max() / 2) {
        return FieldError(origin, field + ".id", "out of range");
      }
      AddedToken tok{t["content"].get<std::string>(), static_cast<TokenId>(id),
                     t.value("special", false),       t.value("lstrip", false),
                     t.value("rstrip", false),        t.value("single_word", false)};
      *max_id = std::max(*max_id, tok.id);
      added_by_text[tok.content] = tok.id;
      added.push_back(std::move(tok));
    }
  }
  return absl::OkStatus();
}

// Token id -> bytes, the special-token flags, the added-token trie and the 256 byte ids.
absl::Status HfTokenizer::Impl::BuildIdTables(TokenId max_id) {
  if (max_id < 0) return FieldError(origin, "model.vocab", "is empty");
  id_to_bytes.resize(max_id + 1);
  is_special.assign(max_id + 1, false);
  for (const auto& [b, id] : bytes_to_id) id_to_bytes[id] = b;
  trie.emplace_back();
  for (size_t i = 0; i < added.size(); ++i) {
    const AddedToken& tok = added[i];
    id_to_bytes[tok.id] = tok.content;
    is_special[tok.id] = tok.special;
    int node = 0;
    for (unsigned char c : tok.content) {
      auto it = trie[node].next.find(c);
      if (it == trie[node].next.end()) {
        trie.emplace_back();
        const int created = static_cast<int>(trie.size()) - 1;
        trie[node].next[c] = created;
        node = created;
      } else {
        node = it->second;
      }
    }
    trie[node].token = static_cast<int>(i);
    const unsigned char c0 = static_cast<unsigned char>(tok.content[0]);
    trie_first[c0] = true;
    if (!tok.special) trie_first_normal[c0] = true;
  }
  for (int b = 0; b < 256; ++b) {
    auto it = bytes_to_id.find(std::string(1, static_cast<char>(b)));
    if (it == bytes_to_id.end()) {
      return FieldError(origin, "model.vocab",
                        absl::StrFormat("has no token for byte 0x%02x; a byte-level vocabulary "
                                        "has all 256",
                                        b));
    }
    byte_id[b] = it->second;
  }

  return absl::OkStatus();
}

// Merges: "a b" strings (older files) or ["a", "b"] pairs (newer ones).
absl::Status HfTokenizer::Impl::ParseMerges(const json& model) {
  auto merges_it = model.find("merges");
  if (merges_it == model.end() || !merges_it->is_array()) {
    return FieldError(origin, "model.merges", "missing or not an array");
  }
  merges.reserve(merges_it->size());
  std::string left, right;
  for (size_t i = 0; i < merges_it->size(); ++i) {
    const json& m = (*merges_it)[i];
    std::string a, b;
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) {
        return FieldError(origin, absl::StrCat("model.merges[", i, "]"),
                          absl::StrCat("\"", s, "\" is not two tokens separated by one space"));
      }
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      return FieldError(origin, absl::StrCat("model.merges[", i, "]"),
                        "expected \"a b\" or [\"a\", \"b\"]");
    }
    if (!ByteLevelToBytes(a, &left) || !ByteLevelToBytes(b, &right)) {
      return FieldError(origin, absl::StrCat("model.merges[", i, "]"),
                        "token is not in the byte-level alphabet");
    }
    auto l = bytes_to_id.find(left);
    auto r = bytes_to_id.find(right);
    auto merged = bytes_to_id.find(left + right);
    if (l == bytes_to_id.end() || r == bytes_to_id.end() || merged == bytes_to_id.end()) {
      return FieldError(origin, absl::StrCat("model.merges[", i, "]"),
                        absl::StrCat("\"", a, " ", b, "\" uses a token missing from model.vocab"));
    }
    const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(l->second)) << 32) |
                         static_cast<uint32_t>(r->second);
    // The first (lowest-ranked) occurrence of a pair wins, as in Hugging Face.
    merges.emplace(key, std::make_pair(static_cast<int32_t>(i), merged->second));
  }

  return absl::OkStatus();
}

// A TemplateProcessing post-processor whose single-sequence template starts with a
// special token adds that token (Llama 3's own files add <|begin_of_text|> this way).
void HfTokenizer::Impl::ParsePostProcessor(const json& doc) {
  const json post = doc.value("post_processor", json());
  std::vector<const json*> processors;
  if (post.is_object() && post.value("type", std::string()) == "Sequence" &&
      post.contains("processors") && post["processors"].is_array()) {
    for (const json& p : post["processors"]) processors.push_back(&p);
  } else if (post.is_object()) {
    processors.push_back(&post);
  }
  for (const json* p : processors) {
    if (p->value("type", std::string()) != "TemplateProcessing") continue;
    auto single = p->find("single");
    if (single == p->end() || !single->is_array() || single->empty()) continue;
    const json& first = (*single)[0];
    if (first.is_object() && first.contains("SpecialToken") && first["SpecialToken"].is_object()) {
      const std::string id = first["SpecialToken"].value("id", std::string());
      auto it = added_by_text.find(id);
      if (it != added_by_text.end()) {
        template_adds_bos = true;
        template_bos = it->second;
      }
    }
  }
}

absl::StatusOr<std::unique_ptr<HfTokenizer>> HfTokenizer::FromJson(absl::string_view tokenizer_json,
                                                                   absl::string_view config_json,
                                                                   absl::string_view origin) {
  SF_ASSIGN_OR_RETURN(json doc, ParseJson(tokenizer_json, origin));
  if (!doc.is_object()) return FieldError(origin, "(top level)", "expected a JSON object");
  auto impl = std::make_unique<Impl>();
  impl->origin = std::string(origin);
  impl->name = "hf-bpe-" + Hex64(Fnv1a(tokenizer_json), 12);
  auto model_it = doc.find("model");
  if (model_it == doc.end() || !model_it->is_object()) {
    return FieldError(origin, "model", "missing or not an object");
  }
  TokenId max_id = -1;
  SF_RETURN_IF_ERROR(impl->ParseModel(doc, *model_it, &max_id));
  SF_RETURN_IF_ERROR(impl->ParseAddedTokens(doc, &max_id));
  SF_RETURN_IF_ERROR(impl->BuildIdTables(max_id));
  SF_RETURN_IF_ERROR(impl->ParseMerges(*model_it));
  SF_RETURN_IF_ERROR(
      ParseNormalizer(doc.value("normalizer", json()), origin, "normalizer", &impl->normalizers));
  SF_RETURN_IF_ERROR(ParsePreTokenizer(doc.value("pre_tokenizer", json()), origin, "pre_tokenizer",
                                       &impl->pre_tokenizer));
  impl->ParsePostProcessor(doc);
  if (!config_json.empty()) {
    SF_ASSIGN_OR_RETURN(
        impl->config,
        ParseTokenizerConfig(config_json, absl::StrCat(origin, " (tokenizer_config.json)")));
  }
  return std::unique_ptr<HfTokenizer>(new HfTokenizer(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<HfTokenizer>> HfTokenizer::FromFile(
    const std::string& tokenizer_json_path) {
  SF_ASSIGN_OR_RETURN(std::string text, ReadFile(tokenizer_json_path));
  const size_t slash = tokenizer_json_path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? std::string(".") : tokenizer_json_path.substr(0, slash);
  const std::string config_path = dir + "/tokenizer_config.json";
  std::string config;
  if (std::ifstream probe(config_path); probe.good()) {
    SF_ASSIGN_OR_RETURN(config, ReadFile(config_path));
    if (config.empty()) config = "{}";
  }
  return FromJson(text, config, tokenizer_json_path);
}

absl::StatusOr<std::unique_ptr<HfTokenizer>> HfTokenizer::FromModelDir(const std::string& dir) {
  // Name the real problem: a wrong folder is not a missing tokenizer.json.
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::NotFoundError(
        absl::StrCat("model folder ", dir, " does not exist (looking for ", dir,
                     "/tokenizer.json); give the path of a Hugging Face model folder (config.json, "
                     "*.safetensors, tokenizer.json), e.g. one written by sfctl make-tiny-model"));
  }
  if (!std::filesystem::exists(std::filesystem::path(dir) / "tokenizer.json", ec)) {
    return absl::NotFoundError(absl::StrCat(
        "model folder ", dir,
        " has no tokenizer.json; copy the model's tokenizer.json from its Hugging Face "
        "repository there"));
  }
  return FromFile(dir + "/tokenizer.json");
}

HfTokenizer::HfTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HfTokenizer::~HfTokenizer() = default;

std::vector<TokenId> HfTokenizer::Encode(absl::string_view text, bool parse_special) const {
  std::vector<TokenId> ids;
  ids.reserve(text.size() / 3 + 4);
  impl_->Encode(text, parse_special, &ids);
  return ids;
}

int64_t HfTokenizer::CountTokens(absl::string_view text) const {
  // Task generators count many prompts: reuse one buffer per thread instead of
  // allocating an id vector per call. Huge texts shrink it back afterwards.
  thread_local std::vector<TokenId> ids;
  ids.clear();
  impl_->Encode(text, /*parse_special=*/false, &ids);
  const int64_t count = static_cast<int64_t>(ids.size());
  if (ids.capacity() > (size_t{1} << 22)) std::vector<TokenId>().swap(ids);
  return count;
}

absl::StatusOr<std::string> HfTokenizer::Decode(const std::vector<TokenId>& ids,
                                                bool skip_special) const {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    const TokenId id = ids[i];
    if (id < 0 || id >= static_cast<TokenId>(impl_->id_to_bytes.size())) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", id, " at position ", i, " is outside the vocabulary [0, ",
                       impl_->id_to_bytes.size(), ") of ", impl_->origin));
    }
    if (skip_special && impl_->is_special[id]) continue;
    out += impl_->id_to_bytes[id];
  }
  return out;
}

int64_t HfTokenizer::VocabSize() const { return static_cast<int64_t>(impl_->id_to_bytes.size()); }
std::string HfTokenizer::Name() const { return impl_->name; }

std::optional<TokenId> HfTokenizer::TokenToId(absl::string_view text) const {
  if (auto it = impl_->added_by_text.find(text); it != impl_->added_by_text.end()) {
    return it->second;
  }
  // Vocabulary tokens are stored as bytes; text spells them directly.
  if (auto it = impl_->bytes_to_id.find(text); it != impl_->bytes_to_id.end()) return it->second;
  return std::nullopt;
}

bool HfTokenizer::IsSpecial(TokenId id) const {
  return id >= 0 && id < static_cast<TokenId>(impl_->is_special.size()) && impl_->is_special[id];
}

const TokenizerConfig& HfTokenizer::config() const { return impl_->config; }

bool HfTokenizer::AddsBos() const {
  if (impl_->config.add_bos_token.has_value()) {
    return *impl_->config.add_bos_token && BosId().has_value();
  }
  return impl_->template_adds_bos;
}

std::optional<TokenId> HfTokenizer::BosId() const {
  if (!impl_->config.bos_token.empty()) return TokenToId(impl_->config.bos_token);
  return impl_->template_bos;
}

std::optional<TokenId> HfTokenizer::EosId() const {
  if (impl_->config.eos_token.empty()) return std::nullopt;
  return TokenToId(impl_->config.eos_token);
}

}  // namespace sf
