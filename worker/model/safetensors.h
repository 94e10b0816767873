// Safetensors checkpoints: a strict header parser (never trusts the file), read-only
// memory maps of single or sharded files (model.safetensors.index.json), lookups by
// tensor name with shape checks, and a writer used by the tiny-model generator.
#ifndef SF_WORKER_MODEL_SAFETENSORS_H_
#define SF_WORKER_MODEL_SAFETENSORS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "worker/model/dtype.h"

namespace sf::model {

// Largest header accepted (the reference implementation's limit): a corrupt length
// field must not make us allocate or scan gigabytes.
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull << 20;

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  // Byte range inside the data section (which starts after the header).
  uint64_t begin = 0;
  uint64_t end = 0;

  int64_t NumElements() const;
};

struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;  // in file (offset) order
  std::map<std::string, std::string> metadata;
  uint64_t data_offset = 0;  // 8 + header length
};

// Parses and validates the header of a whole safetensors file held in `file`.
// Checks: length field sane and inside the file; header is a JSON object; every
// tensor has a known dtype, a shape of non-negative dims, data_offsets [begin, end]
// with end - begin == elements * dtype size (no overflow); tensors cover the data
// section exactly, without overlap or holes. `source` names the file in messages.
// Returns InvalidArgument (malformed) or DataLoss (truncated) with what is wrong.
absl::StatusOr<SafetensorsHeader> ParseSafetensorsHeader(absl::string_view file,
                                                         absl::string_view source);

// A read-only private memory map of a whole file; unmapped on destruction.
class MappedFile {
 public:
  static absl::StatusOr<std::unique_ptr<MappedFile>> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  absl::string_view bytes() const { return {static_cast<const char*>(data_), size_}; }
  const std::string& path() const { return path_; }

 private:
  MappedFile(std::string path, void* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::string path_;
  void* data_;
  size_t size_;
};

// A view of one tensor's bytes inside a mapped file.
struct TensorView {
  const TensorInfo* info = nullptr;
  const void* data = nullptr;  // not necessarily aligned
  int64_t NumElements() const { return info->NumElements(); }
};

// One mapped safetensors file.
class SafetensorsFile {
 public:
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);

  const SafetensorsHeader& header() const { return header_; }
  const std::string& path() const { return file_->path(); }
  // nullptr when the file has no tensor of that name.
  const TensorInfo* Find(absl::string_view name) const;
  TensorView View(const TensorInfo& info) const;

 private:
  SafetensorsFile(std::unique_ptr<MappedFile> file, SafetensorsHeader header);
  std::unique_ptr<MappedFile> file_;
  SafetensorsHeader header_;
  std::map<std::string, size_t, std::less<>> index_;
};

// All weights of a Hugging Face model folder: model.safetensors, or the shards named
// by model.safetensors.index.json. Files are mapped, nothing is copied.
class Checkpoint {
 public:
  // NotFound when the folder has neither file or a shard is missing; DataLoss when a
  // shard is truncated; InvalidArgument for a malformed header or index, or an index
  // entry whose tensor is absent from its shard. Errors name the file.
  static absl::StatusOr<std::unique_ptr<Checkpoint>> Open(const std::string& model_dir);

  // The tensor `name`; NotFound names it and the folder. When `expected_shape` is not
  // empty, a different shape is InvalidArgument naming both shapes.
  absl::StatusOr<TensorView> Get(absl::string_view name,
                                 absl::Span<const int64_t> expected_shape = {}) const;
  bool Has(absl::string_view name) const;
  // Reads `name` converted to float32 (shape-checked as Get); InvalidArgument when its
  // dtype is not F32, F16 or BF16.
  absl::StatusOr<std::vector<float>> ReadFloat(absl::string_view name,
                                               absl::Span<const int64_t> expected_shape) const;

  std::vector<std::string> TensorNames() const;
  // Files mapped, in index order (one for an unsharded checkpoint).
  std::vector<std::string> Files() const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile*, std::less<>> where_;
};

// A tensor to write: raw little-endian bytes of `dtype` with `shape`.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::string bytes;
};

// Serialises tensors in safetensors format (header padded with spaces to a multiple
// of 8 bytes, tensors in the given order). InvalidArgument when a tensor's byte size
// does not match its shape or names repeat.
absl::StatusOr<std::string> SerializeSafetensors(
    const std::vector<TensorToWrite>& tensors,
    const std::map<std::string, std::string>& metadata = {});

// Writes `contents` to `path` atomically (temp file, then rename).
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents);
// Reads a whole (small) file, e.g. config.json.
absl::StatusOr<std::string> ReadSmallFile(const std::string& path);

std::string ShapeToString(absl::Span<const int64_t> shape);

}  // namespace sf::model

#endif  // SF_WORKER_MODEL_SAFETENSORS_H_
