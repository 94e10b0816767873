// Conversions between sf::JobSpec (common/job.h) and its wire form sf.v1.JobSpec,
// shared by sfctl (submit), the coordinator and the worker.
#ifndef SF_PROTO_JOB_CONVERT_H_
#define SF_PROTO_JOB_CONVERT_H_

#include "common/job.h"
#include "sf/v1/job.pb.h"

namespace sf {

v1::JobSpec JobSpecToProto(const JobSpec& job);
// Lossless inverse of JobSpecToProto. A ParamValue with no value set becomes int 0.
JobSpec JobSpecFromProto(const v1::JobSpec& job);
// The wire form of a job's GPU memory profile (JobSpecToProto's gpu_memory).
v1::GpuMemoryProfile GpuMemoryProfileToProto(const model::LayerMemoryProfile& profile);

}  // namespace sf

#endif  // SF_PROTO_JOB_CONVERT_H_
