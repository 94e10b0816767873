#include "worker/model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace sf::model {
namespace {

using Json = nlohmann::json;

uint64_t LoadLe64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// Multiplies with an overflow check against `limit`.
bool MulWithin(uint64_t a, uint64_t b, uint64_t limit, uint64_t* out) {
  if (a != 0 && b > limit / a) return false;
  *out = a * b;
  return *out <= limit;
}

absl::Status Malformed(absl::string_view source, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("malformed safetensors header in ", source, ": ", what,
                   "; the file is corrupt or not a safetensors file: re-download or re-save it"));
}

absl::StatusOr<TensorInfo> ParseTensorEntry(const std::string& name, const Json& entry,
                                            absl::string_view source) {
  const std::string where = absl::StrCat("tensor '", name, "'");
  if (!entry.is_object()) return Malformed(source, absl::StrCat(where, " is not an object"));
  TensorInfo info;
  info.name = name;
  auto dtype_it = entry.find("dtype");
  if (dtype_it == entry.end() || !dtype_it->is_string()) {
    return Malformed(source, absl::StrCat(where, " has no string field 'dtype'"));
  }
  std::optional<DType> dtype = ParseDType(dtype_it->get_ref<const std::string&>());
  if (!dtype) {
    return Malformed(source, absl::StrCat(where, " has unknown dtype '",
                                          dtype_it->get_ref<const std::string&>(), "'"));
  }
  info.dtype = *dtype;
  auto shape_it = entry.find("shape");
  if (shape_it == entry.end() || !shape_it->is_array()) {
    return Malformed(source, absl::StrCat(where, " has no array field 'shape'"));
  }
  if (shape_it->size() > 16) return Malformed(source, absl::StrCat(where, " has over 16 dims"));
  uint64_t elements = 1;
  for (const Json& dim : *shape_it) {
    if (!dim.is_number_unsigned()) {
      return Malformed(source, absl::StrCat(where,
                                            " has a shape entry that is not a "
                                            "non-negative integer: ",
                                            dim.dump()));
    }
    const uint64_t d = dim.get<uint64_t>();
    if (!MulWithin(elements, d, uint64_t{1} << 62, &elements)) {
      return Malformed(source, absl::StrCat(where, " has an absurd shape ", shape_it->dump()));
    }
    info.shape.push_back(static_cast<int64_t>(d));
  }
  auto off_it = entry.find("data_offsets");
  if (off_it == entry.end() || !off_it->is_array() || off_it->size() != 2 ||
      !(*off_it)[0].is_number_unsigned() || !(*off_it)[1].is_number_unsigned()) {
    return Malformed(source,
                     absl::StrCat(where, " needs 'data_offsets' as two non-negative integers"));
  }
  info.begin = (*off_it)[0].get<uint64_t>();
  info.end = (*off_it)[1].get<uint64_t>();
  if (info.end < info.begin) {
    return Malformed(source, absl::StrCat(where, " has data_offsets end ", info.end,
                                          " before begin ", info.begin));
  }
  uint64_t bytes = 0;
  if (!MulWithin(elements, DTypeSize(info.dtype), uint64_t{1} << 62, &bytes) ||
      bytes != info.end - info.begin) {
    return Malformed(source, absl::StrCat(where, " of shape ", ShapeToString(info.shape), " ",
                                          DTypeName(info.dtype), " needs ", bytes,
                                          " bytes but data_offsets span ", info.end - info.begin));
  }
  return info;
}

}  // namespace

int64_t TensorInfo::NumElements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeToString(absl::Span<const int64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

absl::StatusOr<SafetensorsHeader> ParseSafetensorsHeader(absl::string_view file,
                                                         absl::string_view source) {
  if (file.size() < 8) {
    return absl::DataLossError(absl::StrCat(source, " is ", file.size(),
                                            " bytes, too short for a safetensors header; the "
                                            "file is truncated: re-download it"));
  }
  const uint64_t header_len = LoadLe64(file.data());
  if (header_len < 2 || header_len > kMaxSafetensorsHeaderBytes) {
    return Malformed(source, absl::StrCat("header length field is ", header_len, " (expected 2 to ",
                                          kMaxSafetensorsHeaderBytes, ")"));
  }
  if (header_len > file.size() - 8) {
    return absl::DataLossError(absl::StrCat(source, " is truncated: its header needs ",
                                            header_len + 8, " bytes but the file has ", file.size(),
                                            "; re-download it"));
  }
  const absl::string_view text = file.substr(8, header_len);
  if (text.front() != '{') return Malformed(source, "header does not start with '{'");
  Json json = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return Malformed(source, "header is not valid JSON");
  if (!json.is_object()) return Malformed(source, "header is not a JSON object");

  SafetensorsHeader header;
  header.data_offset = 8 + header_len;
  for (auto it = json.begin(); it != json.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it.value().is_object()) return Malformed(source, "__metadata__ is not an object");
      for (auto m = it.value().begin(); m != it.value().end(); ++m) {
        if (!m.value().is_string()) {
          return Malformed(source,
                           absl::StrCat("__metadata__ value for '", m.key(), "' is not a string"));
        }
        header.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    SF_ASSIGN_OR_RETURN(TensorInfo info, ParseTensorEntry(it.key(), it.value(), source));
    header.tensors.push_back(std::move(info));
  }
  std::sort(header.tensors.begin(), header.tensors.end(),
            [](const TensorInfo& a, const TensorInfo& b) {
              return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
            });
  uint64_t expected = 0;
  for (const TensorInfo& t : header.tensors) {
    if (t.begin != expected) {
      return Malformed(source, absl::StrCat("tensor '", t.name, "' starts at byte ", t.begin,
                                            " of the data section, expected ", expected,
                                            t.begin < expected ? " (it overlaps the previous one)"
                                                               : " (a hole before it)"));
    }
    expected = t.end;
  }
  const uint64_t data_size = file.size() - header.data_offset;
  if (expected > data_size) {
    return absl::DataLossError(
        absl::StrCat(source, " is truncated: its tensors need ", header.data_offset + expected,
                     " bytes but the file has ", file.size(), "; re-download it"));
  }
  if (expected < data_size) {
    return Malformed(source, absl::StrCat(data_size - expected,
                                          " bytes after the last tensor are not described"));
  }
  return header;
}

absl::StatusOr<std::unique_ptr<MappedFile>> MappedFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    const std::string msg = absl::StrCat("cannot open ", path, ": ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(msg) : absl::PermissionDeniedError(msg);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::FailedPreconditionError(absl::StrCat(path, " is not a regular file"));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  void* data = nullptr;
  if (size > 0) {
    data = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (data == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      return absl::InternalError(absl::StrCat("mmap of ", path, " failed: ", std::strerror(err)));
    }
  }
  ::close(fd);
  return std::unique_ptr<MappedFile>(new MappedFile(path, data, size));
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(data_, size_);
}

SafetensorsFile::SafetensorsFile(std::unique_ptr<MappedFile> file, SafetensorsHeader header)
    : file_(std::move(file)), header_(std::move(header)) {
  for (size_t i = 0; i < header_.tensors.size(); ++i) index_[header_.tensors[i].name] = i;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  SF_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> file, MappedFile::Open(path));
  SF_ASSIGN_OR_RETURN(SafetensorsHeader header, ParseSafetensorsHeader(file->bytes(), path));
  return std::unique_ptr<SafetensorsFile>(new SafetensorsFile(std::move(file), std::move(header)));
}

const TensorInfo* SafetensorsFile::Find(absl::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

TensorView SafetensorsFile::View(const TensorInfo& info) const {
  return TensorView{&info, file_->bytes().data() + header_.data_offset + info.begin};
}

absl::StatusOr<std::unique_ptr<Checkpoint>> Checkpoint::Open(const std::string& model_dir) {
  namespace fs = std::filesystem;
  auto ckpt = std::make_unique<Checkpoint>();
  ckpt->dir_ = model_dir;
  const fs::path dir(model_dir);
  const fs::path index_path = dir / "model.safetensors.index.json";
  const fs::path single_path = dir / "model.safetensors";
  std::error_code ec;
  if (fs::exists(index_path, ec)) {
    SF_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(index_path.string()));
    Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded() || !json.is_object() || !json.contains("weight_map") ||
        !json["weight_map"].is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(
          index_path.string(), " is not valid JSON with an object 'weight_map'; re-download it"));
    }
    std::set<std::string> shard_files;
    std::vector<std::pair<std::string, std::string>> entries;
    for (auto it = json["weight_map"].begin(); it != json["weight_map"].end(); ++it) {
      if (!it.value().is_string()) {
        return absl::InvalidArgumentError(absl::StrCat(index_path.string(), ": weight_map entry '",
                                                       it.key(), "' is not a file name"));
      }
      const std::string file = it.value().get<std::string>();
      if (file.empty() || file.find('/') != std::string::npos || file == "..") {
        return absl::InvalidArgumentError(absl::StrCat(index_path.string(), ": weight_map entry '",
                                                       it.key(), "' names '", file,
                                                       "', not a file in the model folder"));
      }
      entries.emplace_back(it.key(), file);
      shard_files.insert(file);
    }
    // Shards open in name order so "shard i of n" matches model-0000i-of-0000n.
    const std::vector<std::string> files(shard_files.begin(), shard_files.end());
    std::map<std::string, const SafetensorsFile*> opened;
    for (size_t i = 0; i < files.size(); ++i) {
      const std::string path = (dir / files[i]).string();
      absl::StatusOr<std::unique_ptr<SafetensorsFile>> shard = SafetensorsFile::Open(path);
      if (!shard.ok()) {
        return Annotate(shard.status(),
                        absl::StrCat("loading shard ", i + 1, " of ", files.size(), " (", files[i],
                                     ", listed in model.safetensors.index.json)"));
      }
      opened[files[i]] = shard->get();
      ckpt->files_.push_back(*std::move(shard));
    }
    for (const auto& [name, file] : entries) {
      const SafetensorsFile* shard = opened[file];
      if (shard->Find(name) == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(
            "model.safetensors.index.json in ", model_dir, " puts tensor '", name, "' in ", file,
            ", which has no such tensor; the index and shards "
            "disagree: re-download the model"));
      }
      ckpt->where_[name] = shard;
    }
    return ckpt;
  }
  if (!fs::exists(single_path, ec)) {
    return absl::NotFoundError(
        absl::StrCat(model_dir,
                     " has neither model.safetensors nor model.safetensors.index.json; point "
                     "at a Hugging Face model folder with safetensors weights"));
  }
  SF_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file,
                      SafetensorsFile::Open(single_path.string()));
  for (const TensorInfo& t : file->header().tensors) ckpt->where_[t.name] = file.get();
  ckpt->files_.push_back(std::move(file));
  return ckpt;
}

bool Checkpoint::Has(absl::string_view name) const { return where_.find(name) != where_.end(); }

absl::StatusOr<TensorView> Checkpoint::Get(absl::string_view name,
                                           absl::Span<const int64_t> expected_shape) const {
  auto it = where_.find(name);
  if (it == where_.end()) {
    return absl::NotFoundError(
        absl::StrCat("tensor '", name, "' is missing from the checkpoint in ", dir_, " (",
                     where_.size(), " tensors); the weights do not match config.json"));
  }
  const TensorInfo* info = it->second->Find(name);
  if (!expected_shape.empty() && !std::equal(info->shape.begin(), info->shape.end(),
                                             expected_shape.begin(), expected_shape.end())) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", name, "' in ", it->second->path(), " has shape ",
                     ShapeToString(info->shape), " but config.json implies ",
                     ShapeToString(expected_shape), "; the weights do not match config.json"));
  }
  return it->second->View(*info);
}

absl::StatusOr<std::vector<float>> Checkpoint::ReadFloat(
    absl::string_view name, absl::Span<const int64_t> expected_shape) const {
  SF_ASSIGN_OR_RETURN(TensorView view, Get(name, expected_shape));
  if (!IsFloatWeightType(view.info->dtype)) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' has dtype ",
                                                   DTypeName(view.info->dtype),
                                                   "; the engine reads F32, F16 and BF16 weights"));
  }
  std::vector<float> out(static_cast<size_t>(view.NumElements()));
  ConvertToFloat(view.info->dtype, view.data, out.size(), out.data());
  return out;
}

std::vector<std::string> Checkpoint::TensorNames() const {
  std::vector<std::string> names;
  for (const auto& [name, unused] : where_) names.push_back(name);
  return names;
}

std::vector<std::string> Checkpoint::Files() const {
  std::vector<std::string> out;
  for (const auto& f : files_) out.push_back(f->path());
  return out;
}

absl::StatusOr<std::string> SerializeSafetensors(
    const std::vector<TensorToWrite>& tensors, const std::map<std::string, std::string>& metadata) {
  Json header = Json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::set<std::string> names;
  for (const TensorToWrite& t : tensors) {
    if (!names.insert(t.name).second || t.name == "__metadata__") {
      return absl::InvalidArgumentError(absl::StrCat("tensor name '", t.name, "' repeats"));
    }
    int64_t elements = 1;
    for (int64_t d : t.shape) elements *= d;
    if (static_cast<uint64_t>(elements) * DTypeSize(t.dtype) != t.bytes.size()) {
      return absl::InvalidArgumentError(absl::StrCat("tensor '", t.name, "' has ", t.bytes.size(),
                                                     " bytes, shape ", ShapeToString(t.shape),
                                                     " needs ", elements * DTypeSize(t.dtype)));
    }
    header[t.name] = {{"dtype", std::string(DTypeName(t.dtype))},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string text = header.dump();
  while (text.size() % 8 != 0) text.push_back(' ');
  std::string out;
  out.reserve(8 + text.size() + offset);
  uint64_t len = text.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((len >> (8 * i)) & 0xff));
  out += text;
  for (const TensorToWrite& t : tensors) out += t.bytes;
  return out;
}

absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return absl::PermissionDeniedError(absl::StrCat("cannot write ", tmp));
    f.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    if (!f) return absl::DataLossError(absl::StrCat("short write to ", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec)
    return absl::InternalError(absl::StrCat("rename ", tmp, " -> ", path, ": ", ec.message()));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace sf::model
