// Canonical job keys: a versioned text form of everything that can change a job's result,
// hashed with SHA-256. Equal keys mean reusable results, within and across sweeps.
#ifndef SF_COMMON_JOB_KEY_H_
#define SF_COMMON_JOB_KEY_H_

#include <string>

#include "common/job.h"

namespace sf {

// The canonical text the key hashes: engine version (kEngineVersion), model identity (not
// its name or path), sequence length, both methods with every resolved parameter and the
// nominal compression, task name, samples, parameters and dataset identity, seed and
// generation settings. Parameters print in name order with typed, length-prefixed values,
// so two specs that resolve to the same settings give the same text whatever their YAML
// formatting. Not included: model name/path, gpus, memory and cost estimates (they do not
// change the result).
std::string CanonicalJobText(const JobSpec& job);

// 64 lower-case hex characters: SHA-256 of CanonicalJobText(job).
std::string JobKey(const JobSpec& job);

}  // namespace sf

#endif  // SF_COMMON_JOB_KEY_H_
