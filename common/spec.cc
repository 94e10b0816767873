#include "common/spec.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/budget_mapping.h"
#include "common/did_you_mean.h"
#include "common/gpu_memory.h"
#include "common/job_key.h"
#include "common/logging.h"
#include "common/status.h"
#include "common/sweep_name.h"
#include "tasks/task.h"
#include "yaml-cpp/yaml.h"

namespace sf {
namespace {

namespace fs = std::filesystem;

constexpr const char* kTopKeys[] = {"name",    "description", "models",     "sequence_lengths",
                                    "methods", "tasks",       "generation", "seed",
                                    "seeds",   "limits"};
constexpr const char* kModelKeys[] = {"name", "path", "gpus"};
constexpr const char* kGenerationKeys[] = {"max_new_tokens", "greedy"};
constexpr const char* kLimitKeys[] = {"max_jobs"};
constexpr const char* kTaskKnownKeys[] = {"name", "samples", "path"};
constexpr int64_t kDefaultSamples = 100;

// The closest candidate to `word`, if it is close enough to be a plausible typo.
std::optional<std::string> Closest(absl::string_view word,
                                   const std::vector<std::string>& candidates) {
  return ClosestName(word, candidates);
}

std::string DidYouMean(absl::string_view word, const std::vector<std::string>& candidates) {
  std::optional<std::string> c = Closest(word, candidates);
  return c.has_value() ? absl::StrCat("; did you mean '", *c, "'?") : std::string();
}

std::string FormatValue(const ParamValue& v) {
  if (const int64_t* i = std::get_if<int64_t>(&v)) return absl::StrCat(*i);
  if (const double* d = std::get_if<double>(&v)) return absl::StrCat(*d);
  if (const bool* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  return std::get<std::string>(v);
}

const char* TypeName(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Scalar:
      return "a scalar";
    default:
      return "nothing";
  }
}

// A plain (unquoted) scalar may be a number or a boolean; a quoted one is always text.
bool IsPlain(const YAML::Node& node) { return node.Tag() == "?"; }

// Saturating product, so that an absurd grid reports a size instead of overflowing.
int64_t SatMul(int64_t a, int64_t b) {
  if (a == 0 || b == 0) return 0;
  if (a > std::numeric_limits<int64_t>::max() / b) return std::numeric_limits<int64_t>::max();
  return a * b;
}

class SpecParser {
 public:
  SpecParser(std::string file, const SpecOptions& options)
      : file_(std::move(file)), options_(options) {}

  std::optional<SweepSpec> Parse(absl::string_view text);
  std::vector<SpecError>& errors() { return errors_; }

 private:
  struct Entry {
    std::string key;
    YAML::Node key_node;
    YAML::Node value;
  };

  void Error(const YAML::Mark& mark, std::string message) {
    SpecError e;
    e.file = file_;
    if (!mark.is_null()) {
      e.line = mark.line + 1;
      e.column = mark.column + 1;
    }
    e.message = std::move(message);
    errors_.push_back(std::move(e));
  }

  // The entries of a map in file order. Reports duplicate keys and, when `allowed` is
  // given, unknown keys with a suggestion; both are left out of the result.
  std::vector<Entry> Entries(const YAML::Node& map, absl::string_view context,
                             const std::vector<std::string>* allowed);

  std::optional<int64_t> Int(const YAML::Node& node, const std::string& what, int64_t min,
                             int64_t max, const char* list_hint = nullptr);
  std::optional<double> Double(const YAML::Node& node, const std::string& what, double min,
                               double max);
  std::optional<bool> Bool(const YAML::Node& node, const std::string& what);
  std::optional<std::string> String(const YAML::Node& node, const std::string& what);
  // A scalar or a non-empty list of scalars, as a list of nodes.
  std::optional<std::vector<YAML::Node>> ScalarOrList(const YAML::Node& node,
                                                      const std::string& what);
  std::optional<ParamValue> CatalogValue(const YAML::Node& node, const MethodParam& param,
                                         const std::string& what);
  ParamValue FreeValue(const YAML::Node& node);
  // Reports values of `values` that repeat an earlier one.
  void CheckUnique(const std::vector<YAML::Node>& nodes, const std::vector<std::string>& values,
                   const std::string& what);
  std::string Resolve(const std::string& path) const;

  void ParseModels(const YAML::Node& node, SweepSpec* spec);
  void ParseLengths(const YAML::Node& node, SweepSpec* spec);
  void ParseMethods(const YAML::Node& node, SweepSpec* spec);
  // One entry of `methods`: its name, phases, compression targets and parameter lists,
  // checked, then expanded into variants.
  struct MethodEntry {
    const MethodInfo* info = nullptr;
    std::string where;  // "method <name>", the prefix of its messages
    YAML::Node node;
    bool ok = true;
    std::vector<PhaseSet> phases;  // one variant per element
    std::optional<YAML::Node> phase_node;
    bool compression_given = false;
    std::optional<std::vector<double>> compression;
    // Parameter axes in the order given: (parameter, values), and where each was given.
    std::vector<std::pair<const MethodParam*, std::vector<ParamValue>>> axes;
    std::vector<std::pair<const MethodParam*, YAML::Node>> given;
  };
  void ParseMethod(const YAML::Node& node, int entry, SweepSpec* spec);
  const MethodInfo* ParseMethodName(const YAML::Node& node);
  void ParseMethodPhases(const YAML::Node& value, MethodEntry* m);
  void ParseMethodCompression(const Entry& e, MethodEntry* m);
  void ParseMethodParam(const Entry& e, MethodEntry* m);
  void CheckMethodEntry(MethodEntry* m);
  void AddMethodVariants(const MethodEntry& m, int entry, SweepSpec* spec);
  void ParseTasks(const YAML::Node& node, SweepSpec* spec);
  void ParseTask(const YAML::Node& node, SweepSpec* spec);
  void ParseGeneration(const YAML::Node& node, SweepSpec* spec);
  void ParseSeeds(const YAML::Node& seed, const YAML::Node& seeds, SweepSpec* spec);

  std::string file_;
  const SpecOptions& options_;
  std::vector<SpecError> errors_;
  std::vector<std::string> method_detail_;
  std::vector<std::string> task_detail_;
};

std::vector<SpecParser::Entry> SpecParser::Entries(const YAML::Node& map, absl::string_view context,
                                                   const std::vector<std::string>* allowed) {
  std::vector<Entry> out;
  std::map<std::string, YAML::Mark> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    const YAML::Node key_node = it->first;
    if (!key_node.IsScalar()) {
      Error(key_node.Mark(),
            absl::StrCat("a key in ", context, " must be a plain name, not ", TypeName(key_node)));
      continue;
    }
    const std::string key = key_node.Scalar();
    auto [pos, inserted] = seen.emplace(key, key_node.Mark());
    if (!inserted) {
      Error(key_node.Mark(),
            absl::StrCat("duplicate key '", key, "' in ", context, " (first given at line ",
                         pos->second.line + 1, "); keep one"));
      continue;
    }
    if (allowed != nullptr && std::find(allowed->begin(), allowed->end(), key) == allowed->end()) {
      Error(key_node.Mark(),
            absl::StrCat("unknown key '", key, "' in ", context, DidYouMean(key, *allowed),
                         " (known: ", absl::StrJoin(*allowed, ", "), ")"));
      continue;
    }
    out.push_back({key, key_node, it->second});
  }
  return out;
}

std::optional<int64_t> SpecParser::Int(const YAML::Node& node, const std::string& what, int64_t min,
                                       int64_t max, const char* list_hint) {
  if (node.IsSequence()) {
    Error(node.Mark(),
          absl::StrCat("a list where a number is expected: ", what, " takes one integer",
                       list_hint != nullptr ? absl::StrCat("; ", list_hint) : ""));
    return std::nullopt;
  }
  if (!node.IsScalar()) {
    Error(node.Mark(), absl::StrCat(what, " must be an integer, got ", TypeName(node)));
    return std::nullopt;
  }
  int64_t v = 0;
  if (!IsPlain(node) || !absl::SimpleAtoi(node.Scalar(), &v)) {
    Error(node.Mark(), absl::StrCat(what, " must be an integer, got '", node.Scalar(), "'"));
    return std::nullopt;
  }
  if (v < min || v > max) {
    Error(node.Mark(), absl::StrCat(what, " is ", v, "; it must be ",
                                    max == std::numeric_limits<int64_t>::max()
                                        ? absl::StrCat("at least ", min)
                                        : absl::StrCat("between ", min, " and ", max)));
    return std::nullopt;
  }
  return v;
}

std::optional<double> SpecParser::Double(const YAML::Node& node, const std::string& what,
                                         double min, double max) {
  if (node.IsSequence()) {
    Error(node.Mark(),
          absl::StrCat("a list where a number is expected: ", what, " takes one number here"));
    return std::nullopt;
  }
  double v = 0;
  if (!node.IsScalar() || !IsPlain(node) || !absl::SimpleAtod(node.Scalar(), &v) ||
      !std::isfinite(v)) {
    Error(node.Mark(),
          absl::StrCat(what, " must be a number, got ",
                       node.IsScalar() ? absl::StrCat("'", node.Scalar(), "'") : TypeName(node)));
    return std::nullopt;
  }
  if (v < min || v > max) {
    Error(node.Mark(), absl::StrCat(what, " is ", v, "; it must be between ", min, " and ", max));
    return std::nullopt;
  }
  return v;
}

std::optional<bool> SpecParser::Bool(const YAML::Node& node, const std::string& what) {
  if (node.IsScalar() && IsPlain(node)) {
    const std::string& s = node.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  Error(node.Mark(),
        absl::StrCat(what, " must be true or false, got ",
                     node.IsScalar() ? absl::StrCat("'", node.Scalar(), "'") : TypeName(node)));
  return std::nullopt;
}

std::optional<std::string> SpecParser::String(const YAML::Node& node, const std::string& what) {
  if (!node.IsScalar() || node.Scalar().empty()) {
    Error(node.Mark(), absl::StrCat(what, " must be a non-empty text value, got ",
                                    node.IsScalar() ? "an empty value" : TypeName(node)));
    return std::nullopt;
  }
  return node.Scalar();
}

std::optional<std::vector<YAML::Node>> SpecParser::ScalarOrList(const YAML::Node& node,
                                                                const std::string& what) {
  std::vector<YAML::Node> out;
  if (node.IsScalar()) {
    out.push_back(node);
    return out;
  }
  if (!node.IsSequence()) {
    Error(node.Mark(),
          absl::StrCat(what, " must be a value or a list of values, got ", TypeName(node)));
    return std::nullopt;
  }
  if (node.size() == 0) {
    Error(node.Mark(), absl::StrCat(what, " is an empty list; give at least one value"));
    return std::nullopt;
  }
  bool ok = true;
  for (const YAML::Node& item : node) {
    if (!item.IsScalar()) {
      Error(item.Mark(), absl::StrCat("each value of ", what, " must be a single value, got ",
                                      TypeName(item), "; lists do not nest"));
      ok = false;
      continue;
    }
    out.push_back(item);
  }
  if (!ok) return std::nullopt;
  return out;
}

void SpecParser::CheckUnique(const std::vector<YAML::Node>& nodes,
                             const std::vector<std::string>& values, const std::string& what) {
  std::map<std::string, size_t> first;
  for (size_t i = 0; i < values.size(); ++i) {
    auto [it, inserted] = first.emplace(values[i], i);
    if (!inserted) {
      Error(nodes[i].Mark(), absl::StrCat("duplicate value ", values[i], " in ", what, " (also at ",
                                          nodes[it->second].Mark().line + 1, ":",
                                          nodes[it->second].Mark().column + 1, "); remove one"));
    }
  }
}

std::optional<ParamValue> SpecParser::CatalogValue(const YAML::Node& node, const MethodParam& param,
                                                   const std::string& what) {
  switch (param.type) {
    case ParamType::kInt: {
      // The catalog writes "no upper bound" as infinity.
      const int64_t lo = static_cast<int64_t>(std::max(param.min, -9.0e18));
      const int64_t hi = std::isinf(param.max) ? std::numeric_limits<int64_t>::max()
                                               : static_cast<int64_t>(param.max);
      auto v = Int(node, what, lo, hi);
      if (!v.has_value()) return std::nullopt;
      return ParamValue(*v);
    }
    case ParamType::kFloat: {
      auto v = Double(node, what, param.min, param.max);
      if (!v.has_value()) return std::nullopt;
      return ParamValue(*v);
    }
    case ParamType::kBool: {
      auto v = Bool(node, what);
      if (!v.has_value()) return std::nullopt;
      return ParamValue(*v);
    }
    case ParamType::kString: {
      auto v = String(node, what);
      if (!v.has_value()) return std::nullopt;
      const std::vector<std::string> choices = absl::StrSplit(param.choices, '|');
      if (std::find(choices.begin(), choices.end(), *v) == choices.end()) {
        Error(node.Mark(), absl::StrCat(what, " is '", *v, "'; choose one of ",
                                        absl::StrJoin(choices, ", "), DidYouMean(*v, choices)));
        return std::nullopt;
      }
      return ParamValue(*v);
    }
  }
  return std::nullopt;
}

ParamValue SpecParser::FreeValue(const YAML::Node& node) {
  const std::string& s = node.Scalar();
  if (IsPlain(node)) {
    int64_t i = 0;
    if (absl::SimpleAtoi(s, &i)) return i;
    double d = 0;
    if (absl::SimpleAtod(s, &d) && std::isfinite(d)) return d;
    if (s == "true" || s == "True") return true;
    if (s == "false" || s == "False") return false;
  }
  return s;
}

std::string SpecParser::Resolve(const std::string& path) const {
  fs::path p(path);
  if (p.is_relative()) {
    std::error_code ec;
    const fs::path base =
        options_.base_dir.empty() ? fs::current_path(ec) : fs::path(options_.base_dir);
    p = base / p;
  }
  std::error_code ec;
  const fs::path absolute = fs::absolute(p, ec);
  return (ec ? p : absolute).lexically_normal().string();
}

void SpecParser::ParseModels(const YAML::Node& node, SweepSpec* spec) {
  if (!node.IsSequence() || node.size() == 0) {
    Error(node.Mark(),
          node.IsSequence()
              ? "models is an empty list; give at least one {name, path}"
              : absl::StrCat("models must be a list of {name, path, gpus}, got ", TypeName(node)));
    return;
  }
  static const std::vector<std::string> allowed(std::begin(kModelKeys), std::end(kModelKeys));
  std::map<std::string, int> names;
  for (const YAML::Node& item : node) {
    if (!item.IsMap()) {
      Error(item.Mark(),
            absl::StrCat("each model must be a map {name: ..., path: ...}, got ", TypeName(item)));
      continue;
    }
    ModelEntry model;
    const size_t errors_before = errors_.size();
    const std::vector<Entry> entries = Entries(item, "a model", &allowed);
    // A misspelt key already explains a missing name or path.
    bool ok = errors_.size() == errors_before;
    std::optional<YAML::Node> path_node;
    for (const Entry& e : entries) {
      if (e.key == "name") {
        auto v = String(e.value, "model name");
        ok &= v.has_value();
        if (v) {
          auto [it, inserted] = names.emplace(*v, e.value.Mark().line + 1);
          if (!inserted) {
            Error(e.value.Mark(), absl::StrCat("duplicate model name '", *v, "' (first at line ",
                                               it->second, "); give each model its own name"));
            ok = false;
          }
          model.ref.name = *v;
        }
      } else if (e.key == "path") {
        auto v = String(e.value, "model path");
        ok &= v.has_value();
        if (v) {
          model.ref.path = Resolve(*v);
          path_node.emplace(e.value);
        }
      } else if (e.key == "gpus") {
        auto v = Int(e.value, "gpus", 0, 1024);
        ok &= v.has_value();
        if (v) model.ref.gpus = static_cast<int>(*v);
      }
    }
    if (model.ref.name.empty() && ok) {
      Error(item.Mark(), "model has no name; add `name: <short name>`");
      ok = false;
    }
    if (!path_node.has_value()) {
      if (ok) Error(item.Mark(), "model has no path; add `path: <Hugging Face model folder>`");
      continue;
    }
    absl::StatusOr<ModelInfo> info = InspectModel(model.ref.path);
    if (!info.ok()) {
      Error(path_node->Mark(), std::string(info.status().message()));
      continue;
    }
    model.info = *std::move(info);
    model.ref.identity = model.info.identity;
    if (ok) spec->models.push_back(std::move(model));
  }
}

void SpecParser::ParseLengths(const YAML::Node& node, SweepSpec* spec) {
  auto nodes = ScalarOrList(node, "sequence_lengths");
  if (!nodes) return;
  std::vector<std::string> texts;
  std::vector<YAML::Node> kept;
  for (const YAML::Node& n : *nodes) {
    auto v = Int(n, "a sequence length", 1, int64_t{1} << 24);
    if (!v) continue;
    spec->sequence_lengths.push_back(*v);
    texts.push_back(absl::StrCat(*v));
    kept.push_back(n);
  }
  CheckUnique(kept, texts, "sequence_lengths");
}

void SpecParser::ParseMethods(const YAML::Node& node, SweepSpec* spec) {
  if (!node.IsSequence() || node.size() == 0) {
    Error(node.Mark(), node.IsSequence()
                           ? "methods is an empty list; give at least one method (e.g. dense)"
                           : absl::StrCat("methods must be a list of method names or maps, got ",
                                          TypeName(node)));
    return;
  }
  int entry = 0;
  for (const YAML::Node& item : node) ParseMethod(item, entry++, spec);
}

const MethodInfo* SpecParser::ParseMethodName(const YAML::Node& node) {
  std::vector<std::string> known;
  for (const MethodInfo& m : AllMethods()) known.push_back(m.name);
  std::optional<YAML::Node> name_node;
  if (node.IsScalar()) {
    name_node.emplace(node);
  } else if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (it->first.IsScalar() && it->first.Scalar() == "name" && !name_node.has_value()) {
        name_node.emplace(it->second);
      }
    }
    if (!name_node.has_value()) {
      Error(node.Mark(),
            "method has no name; add `name: <method>` (known: " + absl::StrJoin(known, ", ") + ")");
      return nullptr;
    }
  } else {
    Error(node.Mark(),
          absl::StrCat("each method must be a name or a map with `name`, got ", TypeName(node)));
    return nullptr;
  }
  auto name = String(*name_node, "method name");
  if (!name) return nullptr;
  const MethodInfo* info = FindMethod(*name);
  if (info == nullptr) {
    Error(name_node->Mark(), absl::StrCat("unknown method '", *name, "'", DidYouMean(*name, known),
                                          " (known: ", absl::StrJoin(known, ", "), ")"));
  }
  return info;
}

void SpecParser::ParseMethodPhases(const YAML::Node& value, MethodEntry* m) {
  const MethodInfo& info = *m->info;
  m->phase_node.emplace(value);
  auto nodes = ScalarOrList(value, m->where + " phase");
  if (!nodes) {
    m->ok = false;
    return;
  }
  std::vector<std::string> texts;
  for (const YAML::Node& n : *nodes) {
    const std::string s = n.Scalar();
    texts.push_back(s);
    std::optional<PhaseSet> p;
    if (s == "prefill") p = PhaseSet::Of(Phase::kPrefill);
    if (s == "decode") p = PhaseSet::Of(Phase::kDecode);
    if (s == "both") p = PhaseSet::Both();
    if (!p) {
      Error(n.Mark(), absl::StrCat(m->where, ": phase '", s, "' is not prefill, decode or both"));
      m->ok = false;
      continue;
    }
    if (!info.phases.Contains(*p)) {
      Error(n.Mark(), absl::StrCat(info.name, " runs only in ", info.phases.Name(),
                                   "; remove `phase` or set it to ", info.phases.Name()));
      m->ok = false;
      continue;
    }
    m->phases.push_back(*p);
  }
  CheckUnique(*nodes, texts, m->where + " phase");
}

void SpecParser::ParseMethodCompression(const Entry& e, MethodEntry* m) {
  m->compression_given = true;
  if (!SupportsCompressionTarget(*m->info)) {
    absl::Status s = ApplyCompressionTarget(*m->info, 1, 1, Phase::kPrefill, nullptr);
    Error(e.key_node.Mark(), std::string(s.message()));
    m->ok = false;
    return;
  }
  auto nodes = ScalarOrList(e.value, m->where + " compression");
  if (!nodes) {
    m->ok = false;
    return;
  }
  m->compression.emplace();
  std::vector<std::string> texts;
  std::vector<YAML::Node> kept;
  for (const YAML::Node& n : *nodes) {
    double c = 0;
    if (!IsPlain(n) || !absl::SimpleAtod(n.Scalar(), &c) || !std::isfinite(c)) {
      Error(n.Mark(),
            absl::StrCat(m->where, " compression must be a number, got '", n.Scalar(), "'"));
      m->ok = false;
      continue;
    }
    if (c < 1) {
      Error(n.Mark(),
            absl::StrCat(m->where, " compression ", n.Scalar(),
                         " is below 1: compression is 1/(1 - sparsity), so 1 is dense and "
                         "10 keeps a tenth; use values >= 1"));
      m->ok = false;
      continue;
    }
    m->compression->push_back(c);
    texts.push_back(absl::StrCat(c));
    kept.push_back(n);
  }
  CheckUnique(kept, texts, m->where + " compression");
}

void SpecParser::ParseMethodParam(const Entry& e, MethodEntry* m) {
  const MethodParam* param = FindParam(*m->info, e.key);
  m->given.emplace_back(param, e.key_node);
  const std::string what = absl::StrCat(m->where, " ", param->name);
  auto nodes = ScalarOrList(e.value, what);
  if (!nodes) {
    m->ok = false;
    return;
  }
  std::vector<ParamValue> values;
  std::vector<std::string> texts;
  std::vector<YAML::Node> kept;
  for (const YAML::Node& n : *nodes) {
    auto v = CatalogValue(n, *param, what);
    if (!v) {
      m->ok = false;
      continue;
    }
    values.push_back(*v);
    texts.push_back(FormatValue(*v));
    kept.push_back(n);
  }
  CheckUnique(kept, texts, what);
  m->axes.emplace_back(param, std::move(values));
}

void SpecParser::CheckMethodEntry(MethodEntry* m) {
  const MethodInfo& info = *m->info;
  if (m->phases.empty() && m->ok) {
    if (!info.default_phases.empty()) {
      m->phases.push_back(info.default_phases);
    } else {
      Error(m->phase_node.has_value() ? m->phase_node->Mark() : m->node.Mark(),
            absl::StrCat(info.name,
                         " can run in either phase; add `phase: prefill`, `phase: decode`, "
                         "`phase: both` or a list of them"));
      m->ok = false;
    }
  }
  // Budget: natively or from compression, not both; every other parameter needs a value.
  for (const auto& [param, key_node] : m->given) {
    if (m->compression_given && IsSetByCompression(info, param->name)) {
      Error(key_node.Mark(),
            absl::StrCat(m->where, ": `", param->name,
                         "` is derived from `compression`; give one or the other, not both"));
      m->ok = false;
    }
  }
  for (const MethodParam& p : info.params) {
    const bool present = std::any_of(m->given.begin(), m->given.end(),
                                     [&p](const auto& g) { return g.first == &p; });
    if (present || p.default_value[0] != '\0') continue;
    if (m->compression_given && IsSetByCompression(info, p.name)) continue;
    const bool is_budget = std::string(p.name) == info.budget_param;
    Error(m->node.Mark(), absl::StrCat(m->where, " needs `", p.name, "` (", p.help, ")",
                                       is_budget && SupportsCompressionTarget(info)
                                           ? " or `compression: [...]` targets"
                                           : "",
                                       "; it has no default"));
    m->ok = false;
  }
}

void SpecParser::AddMethodVariants(const MethodEntry& m, int entry, SweepSpec* spec) {
  const MethodInfo& info = *m.info;
  const bool has_compression = m.compression.has_value();
  // Refuse before building the variants, so that an absurd entry costs no memory.
  int64_t variants = SatMul(static_cast<int64_t>(m.phases.size()),
                            has_compression ? static_cast<int64_t>(m.compression->size()) : 1);
  for (const auto& axis : m.axes)
    variants = SatMul(variants, static_cast<int64_t>(axis.second.size()));
  if (variants > options_.max_jobs) {
    Error(m.node.Mark(),
          absl::StrCat(m.where, " expands to ", variants, " variants, more than the limit of ",
                       options_.max_jobs, " jobs; shorten its parameter lists"));
    return;
  }
  // Defaults, then the cartesian product of the given axes.
  std::vector<ParamMap> combos = {DefaultParams(info)};
  for (const auto& [param, values] : m.axes) {
    std::vector<ParamMap> next;
    next.reserve(combos.size() * values.size());
    for (const ParamMap& c : combos) {
      for (const ParamValue& v : values) {
        ParamMap p = c;
        p[param->name] = v;
        next.push_back(std::move(p));
      }
    }
    combos = std::move(next);
  }
  std::vector<std::optional<double>> targets;
  if (has_compression) {
    targets.assign(m.compression->begin(), m.compression->end());
  } else {
    targets.push_back(std::nullopt);
  }
  int64_t count = 0;
  for (PhaseSet phases : m.phases) {
    for (const ParamMap& params : combos) {
      for (const std::optional<double>& target : targets) {
        MethodVariant v;
        v.method.name = info.name;
        v.method.params = params;
        v.method.compression = target;
        v.phases = phases;
        v.entry = entry;
        if (const YAML::Mark mark = m.node.Mark(); !mark.is_null()) {
          v.line = mark.line + 1;
          v.column = mark.column + 1;
        }
        spec->methods.push_back(std::move(v));
        ++count;
      }
    }
  }
  std::string detail = absl::StrCat(info.name, " ", count);
  std::vector<std::string> parts;
  if (m.phases.size() > 1) parts.push_back(absl::StrCat("phase ", m.phases.size()));
  for (const auto& [param, values] : m.axes) {
    if (values.size() > 1) parts.push_back(absl::StrCat(param->name, " ", values.size()));
  }
  if (has_compression) parts.push_back(absl::StrCat("compression ", m.compression->size()));
  if (!parts.empty()) absl::StrAppend(&detail, " (", absl::StrJoin(parts, " x "), ")");
  method_detail_.push_back(std::move(detail));
}

void SpecParser::ParseMethod(const YAML::Node& node, int entry, SweepSpec* spec) {
  MethodEntry m;
  m.info = ParseMethodName(node);
  if (m.info == nullptr) return;
  m.where = absl::StrCat("method ", m.info->name);
  m.node = node;
  std::vector<Entry> entries;
  if (node.IsMap()) {
    std::vector<std::string> allowed = {"name", "phase", "compression"};
    for (const MethodParam& p : m.info->params) allowed.push_back(p.name);
    entries = Entries(node, m.where, &allowed);
  }
  for (const Entry& e : entries) {
    if (e.key == "name") continue;
    if (e.key == "phase") {
      ParseMethodPhases(e.value, &m);
    } else if (e.key == "compression") {
      ParseMethodCompression(e, &m);
    } else {
      ParseMethodParam(e, &m);
    }
  }
  CheckMethodEntry(&m);
  if (!m.ok) return;
  AddMethodVariants(m, entry, spec);
}

void SpecParser::ParseTasks(const YAML::Node& node, SweepSpec* spec) {
  if (!node.IsSequence() || node.size() == 0) {
    Error(node.Mark(),
          node.IsSequence()
              ? "tasks is an empty list; give at least one {name, samples}"
              : absl::StrCat("tasks must be a list of task names or maps, got ", TypeName(node)));
    return;
  }
  for (const YAML::Node& item : node) ParseTask(item, spec);
}

void SpecParser::ParseTask(const YAML::Node& node, SweepSpec* spec) {
  std::vector<std::string> known;
  for (const tasks::TaskInfo& t : tasks::AllTasks()) known.push_back(t.name);
  std::optional<YAML::Node> name_node;
  std::vector<Entry> entries;
  if (node.IsScalar()) {
    name_node.emplace(node);
  } else if (node.IsMap()) {
    entries = Entries(node, "a task", nullptr);
    for (const Entry& e : entries) {
      if (e.key == "name") name_node.emplace(e.value);
    }
    if (!name_node.has_value()) {
      Error(node.Mark(),
            "task has no name; add `name: <task>` (known: " + absl::StrJoin(known, ", ") + ")");
      return;
    }
  } else {
    Error(node.Mark(),
          absl::StrCat("each task must be a name or a map with `name`, got ", TypeName(node)));
    return;
  }
  auto name = String(*name_node, "task name");
  if (!name) return;
  absl::StatusOr<const tasks::TaskInfo*> found = tasks::FindTask(*name);
  if (!found.ok()) {
    Error(name_node->Mark(), absl::StrCat("unknown task '", *name, "'", DidYouMean(*name, known),
                                          " (known: ", absl::StrJoin(known, ", "), ")"));
    return;
  }
  const tasks::TaskInfo* info = *found;
  const std::string where = absl::StrCat("task ", info->name);
  static const std::vector<std::string> known_keys(std::begin(kTaskKnownKeys),
                                                   std::end(kTaskKnownKeys));
  bool ok = true;
  TaskChoice base;
  base.name = info->name;
  base.samples = kDefaultSamples;
  bool has_path = false;
  std::vector<std::pair<std::string, std::vector<ParamValue>>> axes;
  for (const Entry& e : entries) {
    if (e.key == "name") continue;
    if (e.key == "samples") {
      auto v = Int(e.value, where + " samples", 1, 1000000,
                   "list several task entries to run different sample counts");
      ok &= v.has_value();
      if (v) base.samples = static_cast<int32_t>(*v);
    } else if (e.key == "path") {
      auto v = String(e.value, where + " path");
      if (!v) {
        ok = false;
        continue;
      }
      const std::string resolved = Resolve(*v);
      std::error_code ec;
      if (fs::is_regular_file(resolved, ec)) {
        base.data_identity = absl::StrCat("file ", fs::path(resolved).filename().string(), " ",
                                          fs::file_size(resolved, ec));
      } else if (fs::is_directory(resolved, ec)) {
        std::vector<std::string> files;
        for (const fs::directory_entry& f : fs::directory_iterator(resolved, ec)) {
          if (f.is_regular_file(ec)) {
            files.push_back(absl::StrCat(f.path().filename().string(), " ", f.file_size(ec)));
          }
        }
        std::sort(files.begin(), files.end());
        base.data_identity = absl::StrCat("dir ", absl::StrJoin(files, ";"));
      } else {
        Error(e.value.Mark(), absl::StrCat(where, " path ", resolved,
                                           " does not exist; point it at the dataset file"));
        ok = false;
        continue;
      }
      base.params["path"] = resolved;
      has_path = true;
    } else {
      const bool declared =
          std::any_of(info->params.begin(), info->params.end(),
                      [&e](const tasks::ParamSpec& p) { return p.name == e.key; });
      if (auto close = Closest(e.key, known_keys); !declared && close.has_value()) {
        Error(e.key_node.Mark(), absl::StrCat("unknown key '", e.key, "' in ", where,
                                              "; did you mean '", *close, "'?"));
        ok = false;
        continue;
      }
      auto nodes = ScalarOrList(e.value, absl::StrCat(where, " ", e.key));
      if (!nodes) {
        ok = false;
        continue;
      }
      std::vector<ParamValue> values;
      std::vector<std::string> texts;
      // Every value is checked against the task's declaration now, so that a typo or a
      // value out of range fails validation instead of every job on the workers.
      bool valid = true;
      for (const YAML::Node& n : *nodes) {
        values.push_back(FreeValue(n));
        texts.push_back(FormatValue(values.back()));
        absl::Status checked = tasks::CheckParam(*info, e.key, values.back());
        if (!checked.ok()) {
          Error(declared ? n.Mark() : e.key_node.Mark(), std::string(checked.message()));
          valid = false;
          if (!declared) break;  // one error per unknown name
        }
      }
      if (!valid) {
        ok = false;
        continue;
      }
      CheckUnique(*nodes, texts, absl::StrCat(where, " ", e.key));
      axes.emplace_back(e.key, std::move(values));
    }
  }
  if (info->ReadsDatasetFile() && !has_path && ok) {
    Error(node.Mark(), absl::StrCat(where, " reads a local dataset; add `path: <file>`"));
    ok = false;
  }
  if (!ok) return;
  int64_t variants = 1;
  for (const auto& axis : axes)
    variants = SatMul(variants, static_cast<int64_t>(axis.second.size()));
  if (variants > options_.max_jobs) {
    Error(node.Mark(),
          absl::StrCat(where, " expands to ", variants, " variants, more than the limit of ",
                       options_.max_jobs, " jobs; shorten its parameter lists"));
    return;
  }
  std::vector<TaskChoice> combos = {base};
  for (const auto& [key, values] : axes) {
    std::vector<TaskChoice> next;
    for (const TaskChoice& c : combos) {
      for (const ParamValue& v : values) {
        TaskChoice t = c;
        t.params[key] = v;
        next.push_back(std::move(t));
      }
    }
    combos = std::move(next);
  }
  std::string detail = absl::StrCat(info->name, " ", combos.size());
  std::vector<std::string> parts;
  for (const auto& [key, values] : axes) {
    if (values.size() > 1) parts.push_back(absl::StrCat(key, " ", values.size()));
  }
  if (!parts.empty()) absl::StrAppend(&detail, " (", absl::StrJoin(parts, " x "), ")");
  task_detail_.push_back(std::move(detail));
  for (TaskChoice& t : combos) spec->tasks.push_back(std::move(t));
}

void SpecParser::ParseGeneration(const YAML::Node& node, SweepSpec* spec) {
  if (!node.IsMap()) {
    Error(node.Mark(),
          absl::StrCat("generation must be a map {max_new_tokens, greedy}, got ", TypeName(node)));
    return;
  }
  static const std::vector<std::string> allowed(std::begin(kGenerationKeys),
                                                std::end(kGenerationKeys));
  for (const Entry& e : Entries(node, "generation", &allowed)) {
    if (e.key == "max_new_tokens") {
      auto v = Int(e.value, "generation.max_new_tokens", 0, 1 << 20);
      if (v) spec->generation.max_new_tokens = static_cast<int32_t>(*v);
    } else if (e.key == "greedy") {
      auto v = Bool(e.value, "generation.greedy");
      if (v) spec->generation.greedy = *v;
    }
  }
}

void SpecParser::ParseSeeds(const YAML::Node& seed, const YAML::Node& seeds, SweepSpec* spec) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  if (seed.IsDefined() && seeds.IsDefined()) {
    Error(seeds.Mark(), "give either `seed` or `seeds`, not both");
    return;
  }
  if (seed.IsDefined()) {
    auto v = Int(seed, "seed", 0, kMax, "use `seeds: [...]` for several");
    if (v) spec->seeds.push_back(static_cast<uint64_t>(*v));
    return;
  }
  if (seeds.IsDefined()) {
    auto nodes = ScalarOrList(seeds, "seeds");
    if (!nodes) return;
    std::vector<std::string> texts;
    std::vector<YAML::Node> kept;
    for (const YAML::Node& n : *nodes) {
      auto v = Int(n, "a seed", 0, kMax);
      if (!v) continue;
      spec->seeds.push_back(static_cast<uint64_t>(*v));
      texts.push_back(absl::StrCat(*v));
      kept.push_back(n);
    }
    CheckUnique(kept, texts, "seeds");
    return;
  }
  spec->seeds.push_back(0);
}

// Where a second YAML document of `text` starts: the first line with content after a
// document marker (`---` or `...` at column 0) that follows content, or that marker
// when nothing follows it; nullopt for one document. YAML forbids these markers at
// column 0 inside a document, so the scan is exact. (yaml-cpp's LoadAll can loop
// without end on some malformed input, so it is not used to count documents.)
std::optional<YAML::Mark> SecondDocument(absl::string_view text) {
  bool content = false;
  std::optional<YAML::Mark> marker;
  int line = 0;
  for (absl::string_view l : absl::StrSplit(text, '\n')) {
    const bool is_marker = (absl::StartsWith(l, "---") || absl::StartsWith(l, "...")) &&
                           (l.size() == 3 || l[3] == ' ' || l[3] == '\t' || l[3] == '\r');
    const absl::string_view body = absl::StripLeadingAsciiWhitespace(l);
    const bool has_content =
        !is_marker && !body.empty() && body[0] != '#' && !(l[0] == '%' && !content);
    if (is_marker && content && !marker) {
      marker.emplace();
      marker->line = line;
    } else if (has_content && marker) {
      marker->column = static_cast<int>(l.size() - body.size());
      marker->line = line;
      return marker;
    }
    content = content || has_content;
    ++line;
  }
  return marker;
}

std::optional<SweepSpec> SpecParser::Parse(absl::string_view text) {
  if (std::optional<YAML::Mark> second = SecondDocument(text)) {
    // Only the first would be read: say so rather than ignore the rest.
    Error(*second,
          "a sweep spec is one YAML document; this file holds another after `---` "
          "(put each sweep in its own file)");
    return std::nullopt;
  }
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    Error(e.mark, absl::StrCat("not valid YAML: ", e.msg));
    return std::nullopt;
  }
  if (!root.IsMap()) {
    // An empty document has no position of its own: point at the start of the file.
    Error(root.Mark().is_null() ? YAML::Mark() : root.Mark(),
          absl::StrCat("a sweep spec is a map with name, models, sequence_lengths, "
                       "methods and tasks; this file holds ",
                       TypeName(root)));
    return std::nullopt;
  }
  SweepSpec spec;
  spec.source = file_;
  static const std::vector<std::string> allowed(std::begin(kTopKeys), std::end(kTopKeys));
  std::map<std::string, YAML::Node> top;
  for (Entry& e : Entries(root, "the sweep spec", &allowed)) top.emplace(e.key, e.value);
  auto get = [&top](const char* key) {
    auto it = top.find(key);
    return it == top.end() ? YAML::Node(YAML::NodeType::Undefined) : it->second;
  };
  auto require = [&](const char* key, const char* hint) {
    YAML::Node n = get(key);
    if (!n.IsDefined()) Error(root.Mark(), absl::StrCat("missing `", key, "`: ", hint));
    return n;
  };

  if (YAML::Node n = get("name"); n.IsDefined()) {
    if (auto v = String(n, "name")) {
      spec.name = *v;
      if (!IsValidSweepName(*v)) {
        Error(n.Mark(), absl::StrCat("name '", v->substr(0, 64), v->size() > 64 ? "...'" : "'",
                                     " must be ", kSweepNameRule));
      }
    }
  } else {
    spec.name = fs::path(file_).stem().string();
    if (!IsValidSweepName(spec.name)) {
      Error(root.Mark(),
            absl::StrCat("without `name:`, the sweep is named after the file, and '", spec.name,
                         "' is not a sweep name (", kSweepNameRule, "): add `name: ...`"));
    }
  }
  if (YAML::Node n = get("description"); n.IsDefined() && !n.IsScalar()) {
    Error(n.Mark(), "description must be text");
  }
  if (YAML::Node n = require("models", "list the models as {name, path}"); n.IsDefined()) {
    ParseModels(n, &spec);
  }
  if (YAML::Node n = require("sequence_lengths", "list the prompt lengths, e.g. [16384, 32768]");
      n.IsDefined()) {
    ParseLengths(n, &spec);
  }
  if (YAML::Node n = require("methods", "list the attention methods, e.g. [dense]");
      n.IsDefined()) {
    ParseMethods(n, &spec);
  }
  if (YAML::Node n = require("tasks", "list the tasks, e.g. [{name: ruler_niah, samples: 100}]");
      n.IsDefined()) {
    ParseTasks(n, &spec);
  }
  if (YAML::Node n = get("generation"); n.IsDefined()) ParseGeneration(n, &spec);
  ParseSeeds(get("seed"), get("seeds"), &spec);

  spec.max_jobs = options_.max_jobs;
  std::optional<YAML::Node> limit_node;
  if (YAML::Node n = get("limits"); n.IsDefined()) {
    if (!n.IsMap()) {
      Error(n.Mark(), absl::StrCat("limits must be a map {max_jobs}, got ", TypeName(n)));
    } else {
      static const std::vector<std::string> limit_keys(std::begin(kLimitKeys),
                                                       std::end(kLimitKeys));
      for (const Entry& e : Entries(n, "limits", &limit_keys)) {
        if (auto v = Int(e.value, "limits.max_jobs", 1, std::numeric_limits<int64_t>::max())) {
          limit_node.emplace(e.value);
          if (*v > options_.max_jobs) {
            Error(e.value.Mark(), absl::StrCat("limits.max_jobs ", *v,
                                               " is above the configured limit ", options_.max_jobs,
                                               "; lower it (or raise the configured limit, "
                                               "e.g. `sfctl validate --max-jobs`)"));
          } else {
            spec.max_jobs = *v;
          }
        }
      }
    }
  }
  if (!errors_.empty()) return std::nullopt;

  const int64_t method_count = static_cast<int64_t>(spec.methods.size());
  spec.axes = {
      {"models", static_cast<int64_t>(spec.models.size()), ""},
      {"sequence_lengths", static_cast<int64_t>(spec.sequence_lengths.size()), ""},
      {"methods", method_count, absl::StrJoin(method_detail_, ", ")},
      {"tasks", static_cast<int64_t>(spec.tasks.size()), absl::StrJoin(task_detail_, ", ")},
      {"seeds", static_cast<int64_t>(spec.seeds.size()), ""},
  };
  spec.grid_size = 1;
  std::vector<std::string> factors;
  for (const GridAxis& a : spec.axes) {
    spec.grid_size = SatMul(spec.grid_size, a.size);
    factors.push_back(absl::StrCat(a.name, " ", a.size));
  }
  if (spec.grid_size > spec.max_jobs) {
    Error(limit_node.has_value() ? limit_node->Mark() : root.Mark(),
          absl::StrCat("the grid has ", spec.grid_size, " jobs (", absl::StrJoin(factors, " x "),
                       "), more than the limit of ", spec.max_jobs,
                       "; shrink an axis or split the sweep",
                       limit_node.has_value() ? " or raise limits.max_jobs" : ""));
    return std::nullopt;
  }
  return spec;
}

}  // namespace

std::string SpecError::ToString() const {
  if (line <= 0) return absl::StrCat(file, ": error: ", message);
  return absl::StrCat(file, ":", line, ":", column, ": error: ", message);
}

absl::StatusOr<SweepSpec> ParseSweepSpec(absl::string_view yaml_text, absl::string_view filename,
                                         const SpecOptions& options,
                                         std::vector<SpecError>* errors) {
  SpecParser parser(std::string(filename), options);
  std::optional<SweepSpec> spec = parser.Parse(yaml_text);
  if (spec.has_value() && parser.errors().empty()) return *std::move(spec);
  // In file order, so that a reader can fix them top to bottom.
  std::stable_sort(parser.errors().begin(), parser.errors().end(),
                   [](const SpecError& a, const SpecError& b) {
                     return std::pair(a.line, a.column) < std::pair(b.line, b.column);
                   });
  std::vector<std::string> lines;
  for (const SpecError& e : parser.errors()) lines.push_back(e.ToString());
  if (errors != nullptr) {
    errors->insert(errors->end(), parser.errors().begin(), parser.errors().end());
  }
  return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
}

namespace {

// The node at the dotted `path` under `root`, made a map level by level.
absl::StatusOr<YAML::Node> OverrideTarget(YAML::Node root, const std::vector<std::string>& path,
                                          const std::string& override_text) {
  YAML::Node node = root;
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    YAML::Node child = node[path[i]];
    if (child.IsDefined() && !child.IsNull() && !child.IsMap()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--set ", override_text, ": '", path[i], "' is not a map in the spec"));
    }
    node.reset(child);
  }
  return node;
}

}  // namespace

absl::StatusOr<std::string> ApplySpecOverrides(absl::string_view yaml_text,
                                               const std::vector<std::string>& overrides) {
  if (overrides.empty()) return std::string(yaml_text);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("the spec is not valid YAML, so --set cannot apply: ", e.what()));
  }
  if (!root.IsMap()) {
    return absl::InvalidArgumentError("the spec is not a YAML map, so --set cannot apply");
  }
  const std::vector<std::string> top(std::begin(kTopKeys), std::end(kTopKeys));
  std::string header = "# with overrides (sfctl --set):";
  for (const std::string& text : overrides) {
    const size_t eq = text.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--set ", text, ": write key=value, e.g. --set sequence_lengths=[4096]"));
    }
    std::vector<std::string> path = absl::StrSplit(text.substr(0, eq), '.');
    if (path[0] == "lengths") path[0] = "sequence_lengths";
    if (std::find(top.begin(), top.end(), path[0]) == top.end()) {
      return absl::InvalidArgumentError(absl::StrCat("--set ", text, ": unknown key '", path[0],
                                                     "'", DidYouMean(path[0], top),
                                                     " (keys: ", absl::StrJoin(top, ", "), ")"));
    }
    YAML::Node value;
    try {
      value = YAML::Load(text.substr(eq + 1));
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat("--set ", text, ": the value is not YAML: ", e.what()));
    }
    SF_ASSIGN_OR_RETURN(YAML::Node parent, OverrideTarget(root, path, text));
    parent[path.back()] = value;
    absl::StrAppend(&header, " ", text);
  }
  YAML::Emitter out;
  out << root;
  return absl::StrCat(header, "\n", out.c_str(), "\n");
}

absl::StatusOr<SweepSpec> LoadSweepSpec(const std::string& path, const SpecOptions& options,
                                        std::vector<SpecError>* errors) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read sweep spec ", path, "; check the file name"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return ParseSweepSpec(text.str(), path, options, errors);
}

absl::StatusOr<std::vector<JobSpec>> ExpandSweep(const SweepSpec& spec, ExpandStats* stats) {
  ExpandStats local;
  std::vector<JobSpec> jobs;
  jobs.reserve(static_cast<size_t>(std::min<int64_t>(spec.grid_size, spec.max_jobs)));
  absl::flat_hash_set<std::string> keys;
  keys.reserve(jobs.capacity());
  const int64_t new_tokens =
      spec.generation.max_new_tokens > 0 ? spec.generation.max_new_tokens : kEstimateNewTokens;
  MethodChoice dense;
  for (const ModelEntry& model : spec.models) {
    for (int64_t length : spec.sequence_lengths) {
      const int64_t memory = EstimateMemoryBytes(model.info, length, new_tokens);
      // What the CUDA engine holds, in the checkpoint's dtype (bf16 for real models),
      // split by layer for placement over a worker's GPUs (common/gpu_memory.h).
      const model::LayerMemoryProfile gpu_memory = model::ProfileGpuMemory(
          model.info.config,
          {.element_bytes = model.info.config.DtypeBytes(), .prefill_chunk_tokens = 8192},
          length + new_tokens);
      for (const MethodVariant& variant : spec.methods) {
        MethodChoice method = variant.method;
        if (method.compression.has_value()) {
          const MethodInfo* info = FindMethod(method.name);
          SF_CHECK(info != nullptr) << method.name;
          // A method run in both phases takes its prefill budget (the phase it is
          // mostly measured in); decode-only variants map per decode step.
          absl::Status s = ApplyCompressionTarget(
              *info, length, *method.compression,
              variant.phases.Has(Phase::kPrefill) ? Phase::kPrefill : Phase::kDecode,
              &method.params);
          if (!s.ok()) {
            const std::string at =
                variant.line > 0 ? absl::StrCat(":", variant.line, ":", variant.column) : "";
            return Annotate(s, absl::StrCat(spec.source, at, ": method ", method.name));
          }
        }
        const bool in_prefill = variant.phases.Has(Phase::kPrefill);
        const bool in_decode = variant.phases.Has(Phase::kDecode);
        const double c = method.compression.value_or(1.0);
        const double prefill_c = in_prefill ? c : 1.0;
        const double decode_c = in_decode ? c : 1.0;
        const double flops =
            EstimateSampleFlops(model.info, length, new_tokens, prefill_c, decode_c);
        for (const TaskChoice& task : spec.tasks) {
          for (uint64_t seed : spec.seeds) {
            ++local.grid_size;
            JobSpec job;
            job.model = model.ref;
            job.sequence_length = length;
            job.prefill = in_prefill ? method : dense;
            job.decode = in_decode ? method : dense;
            job.task = task;
            job.seed = seed;
            job.generation = spec.generation;
            job.key = JobKey(job);
            if (!keys.insert(job.key).second) {
              ++local.duplicates;
              continue;
            }
            job.memory_bytes = memory;
            job.gpu_memory = gpu_memory;
            job.cost = flops * task.samples;
            jobs.push_back(std::move(job));
          }
        }
      }
    }
  }
  if (stats != nullptr) *stats = local;
  return jobs;
}

}  // namespace sf
