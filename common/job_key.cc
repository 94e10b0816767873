#include "common/job_key.h"

#include <cstdio>
#include <variant>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "common/version.h"

namespace sf {
namespace {

// %.17g round-trips every double, so equal values print equally and unequal ones differ.
std::string CanonicalDouble(double v) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

void AppendString(std::string* out, const std::string& s) {
  absl::StrAppend(out, s.size(), ":", s);
}

void AppendValue(std::string* out, const ParamValue& v) {
  if (const int64_t* i = std::get_if<int64_t>(&v)) {
    absl::StrAppend(out, "i", *i);
  } else if (const double* d = std::get_if<double>(&v)) {
    absl::StrAppend(out, "f", CanonicalDouble(*d));
  } else if (const bool* b = std::get_if<bool>(&v)) {
    absl::StrAppend(out, *b ? "btrue" : "bfalse");
  } else {
    out->push_back('s');
    AppendString(out, std::get<std::string>(v));
  }
}

void AppendParams(std::string* out, const ParamMap& params) {
  absl::StrAppend(out, "{", params.size(), "|");
  for (const auto& [name, value] : params) {
    AppendString(out, name);
    out->push_back('=');
    AppendValue(out, value);
    out->push_back(';');
  }
  out->push_back('}');
}

void AppendMethod(std::string* out, const char* phase, const MethodChoice& m) {
  absl::StrAppend(out, phase, "=");
  AppendString(out, m.name);
  AppendParams(out, m.params);
  if (m.compression.has_value()) {
    absl::StrAppend(out, " compression=", CanonicalDouble(*m.compression));
  }
  out->push_back('\n');
}

}  // namespace

std::string CanonicalJobText(const JobSpec& job) {
  std::string out = "sf-job-key-v1\nengine=";
  AppendString(&out, kEngineVersion);
  out += "\nmodel=";
  AppendString(&out, job.model.identity);
  absl::StrAppend(&out, "\nsequence_length=", job.sequence_length, "\n");
  AppendMethod(&out, "prefill", job.prefill);
  AppendMethod(&out, "decode", job.decode);
  out += "task=";
  AppendString(&out, job.task.name);
  absl::StrAppend(&out, " samples=", job.task.samples, " data=");
  AppendString(&out, job.task.data_identity);
  if (job.task.data_identity.empty()) {
    AppendParams(&out, job.task.params);
  } else {
    // The dataset's identity stands for its path: moving the file keeps the key.
    ParamMap params = job.task.params;
    params.erase("path");
    AppendParams(&out, params);
  }
  absl::StrAppend(&out, "\nseed=", job.seed,
                  "\ngeneration=max_new_tokens:", job.generation.max_new_tokens,
                  ",greedy:", job.generation.greedy ? 1 : 0, "\n");
  return out;
}

std::string JobKey(const JobSpec& job) { return Sha256Hex(CanonicalJobText(job)); }

}  // namespace sf
