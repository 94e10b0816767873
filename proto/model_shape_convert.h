// Conversions between the one model description (common/model_config.h) and its wire
// form sf.v1.ModelShape, which a worker records with each result so that the analysis
// needs no model files.
#ifndef SF_PROTO_MODEL_SHAPE_CONVERT_H_
#define SF_PROTO_MODEL_SHAPE_CONVERT_H_

#include "common/model_config.h"
#include "sf/v1/job.pb.h"

namespace sf {

// The shape of `config`, its parameter count (ModelShape::NumParameters) and whether its
// weights are random (make-tiny-model).
v1::ModelShape ModelShapeToProto(const model::ModelConfig& config);

// The shape of a recorded result. The wire form has no o_proj or MLP biases (false here);
// its `params` field keeps the recorded count, which is the authority for N.
model::ModelShape ModelShapeFromProto(const v1::ModelShape& shape);

}  // namespace sf

#endif  // SF_PROTO_MODEL_SHAPE_CONVERT_H_
