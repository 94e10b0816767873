// Size limits on the text and list fields of every request the coordinator stores, so
// that one request cannot store megabytes of hostname, model path or spec. The limits
// are per field (docs/coordinator.md, "Limits"); an error names the field's path.
#ifndef SF_COORDINATOR_FIELD_LIMITS_H_
#define SF_COORDINATOR_FIELD_LIMITS_H_

#include <cstddef>

#include "absl/status/status.h"
#include "google/protobuf/message.h"

namespace sf::coordinator {

// Any text field not named below.
inline constexpr size_t kMaxTextBytes = 4096;
// SubmitSweepRequest.spec_yaml: the spec the jobs were expanded from.
inline constexpr size_t kMaxSpecBytes = 4 << 20;
// SampleResult.prediction and .target: generated and reference text of one sample.
inline constexpr size_t kMaxSampleTextBytes = 1 << 20;
// FailRequest.error (stored truncated to its first 16 KiB).
inline constexpr size_t kMaxErrorBytes = 1 << 20;
// Entries of any list field but `jobs` (SubmitSweep) and `samples` (ReportSamples),
// which only the message size bounds.
inline constexpr int kMaxListEntries = 1024;

// OK when every string and bytes field of `request`, at any depth, is within its limit
// and every list within kMaxListEntries; otherwise InvalidArgument naming the first
// field over it, e.g. "jobs[3].model.path is 10485760 bytes; the limit is 4096".
absl::Status CheckFieldLimits(const google::protobuf::Message& request);

}  // namespace sf::coordinator

#endif  // SF_COORDINATOR_FIELD_LIMITS_H_
