// Element types of checkpoint tensors (the safetensors dtype strings) and their
// conversion to float32, which is what the CPU backend computes in.
#ifndef SF_WORKER_MODEL_DTYPE_H_
#define SF_WORKER_MODEL_DTYPE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace sf::model {

enum class DType {
  kF64,
  kF32,
  kF16,
  kBF16,
  kI64,
  kI32,
  kI16,
  kI8,
  kU64,
  kU32,
  kU16,
  kU8,
  kBool,
  kF8E4M3,
  kF8E5M2,
};

// The safetensors spelling ("F32", "BF16", ...).
absl::string_view DTypeName(DType dtype);
// Parses a safetensors dtype string; nullopt when unknown.
std::optional<DType> ParseDType(absl::string_view name);
size_t DTypeSize(DType dtype);
// True for the types the engine converts to float32 (F32, F16, BF16).
bool IsFloatWeightType(DType dtype);

float Bf16ToFloat(uint16_t bits);
float F16ToFloat(uint16_t bits);
// Round-to-nearest-even, as torch does when casting float32 to bfloat16.
uint16_t FloatToBf16(float value);

// Converts `count` little-endian elements of `dtype` at `src` to float32.
// REQUIRES: IsFloatWeightType(dtype); `src` holds count * DTypeSize(dtype) bytes
// (no alignment needed).
void ConvertToFloat(DType dtype, const void* src, size_t count, float* dst);

}  // namespace sf::model

#endif  // SF_WORKER_MODEL_DTYPE_H_
