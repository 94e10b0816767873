// Test helper for the sweep spec corpus (tests/data/specs/README.md): the folder the
// corpus specs resolve relative paths against, with the models and data they name.
#ifndef SF_COMMON_TESTING_SPEC_CORPUS_H_
#define SF_COMMON_TESTING_SPEC_CORPUS_H_

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_replace.h"
#include "common/testing/model_fixture.h"

namespace sf::testing {

// The repository root (ctest sets SF_SOURCE_DIR; else the current folder).
inline std::filesystem::path SourceDir() {
  const char* dir = std::getenv("SF_SOURCE_DIR");
  return dir != nullptr ? std::filesystem::path(dir) : std::filesystem::current_path();
}

// Builds models/tiny-llama, models/tiny-qwen, models/no-config and data/squad.json under
// `dir`.
inline void WriteCorpusWorld(const std::filesystem::path& dir) {
  WriteModel(dir / "models/tiny-llama");
  WriteModel(
      dir / "models/tiny-qwen",
      absl::StrReplaceAll(kTinyLlamaConfig, {{"LlamaForCausalLM", "Qwen2ForCausalLM"},
                                             {"\"vocab_size\": 256", "\"vocab_size\": 300"}}),
      1200);
  std::filesystem::create_directories(dir / "models/no-config");
  WriteFile(dir / "data/squad.json", R"({"data": []})");
}

// The .yaml files of a corpus folder, sorted.
inline std::vector<std::filesystem::path> CorpusFiles(const std::string& sub) {
  std::vector<std::filesystem::path> files;
  for (const auto& e :
       std::filesystem::directory_iterator(SourceDir() / "tests/data/specs" / sub)) {
    if (e.path().extension() == ".yaml") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace sf::testing

#endif  // SF_COMMON_TESTING_SPEC_CORPUS_H_
