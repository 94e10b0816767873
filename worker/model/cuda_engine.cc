// The CUDA backend, one implementation for both element types T (float32 for conformance
// with the CPU engine, bfloat16 for real models): weights read from the checkpoint straight
// onto the device (other float types converted there), linear layers through DeviceGemm
// (cublasSgemm / cuBLASLt bf16 with float32 accumulation), the other steps as
// kernels/cuda/engine_ops, attention through kernels/cuda/attention (AttentionParams), the
// KV cache on the device with per-head lengths. The residual stream is float32 in both;
// o_proj and down_proj accumulate into it (the residual add is the GEMM's beta = 1).
// Long prompts run in chunks (bounded activations); bf16 decode steps replay a CUDA graph.
// A hook with a CUDA implementation runs on the device (AttendOnDevice); any other runs
// on the host over a host KvCache that mirrors the device cache (synced lazily,
// re-uploaded when a hook compacts it), so it sees exactly what the CPU engine gives it.
// An engine may hold a range of the layers only, as one stage of a layer pipeline
// (cuda_pipeline.h): then it embeds tokens only when it holds layer 0, starts from its
// upstream stage's residual stream otherwise, and computes logits only when it holds the
// last layer. See docs/engine.md.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"
#include "kernels/cuda/attention/decode.h"
#include "kernels/cuda/attention/dense.h"
#include "kernels/cuda/attention/params.h"
#include "kernels/cuda/attention/prefill.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/engine_ops.h"
#include "kernels/device.h"
#include "worker/model/cuda_gemm.h"
#include "worker/model/cuda_pipeline.h"
#include "worker/model/dtype.h"
#include "worker/model/engine.h"
#include "worker/model/forward_engine.h"
#include "worker/model/safetensors.h"
#include "worker/model/thread_pool.h"

namespace sf::model {
namespace {

using cuda::bf16;
using cuda::CudaStatus;

// Rows of the MLP computed at once, bounding the gate/up activations' memory.
constexpr int64_t kMlpChunkRows = 4096;
// Rows of logits computed at once when every position's logits are asked for.
constexpr int64_t kLogitRows = 1024;
// The bfloat16 engine's default prefill chunk.
constexpr int64_t kDefaultBf16Chunk = 8192;

double GiB(int64_t bytes) { return static_cast<double>(bytes) / (1 << 30); }

// One device allocation of E; growing it drops its contents. ResourceExhausted when the
// device is out of memory.
template <typename E>
class DeviceArray {
 public:
  DeviceArray() = default;
  ~DeviceArray() {
    if (ptr_ != nullptr) cudaFree(ptr_);
  }
  DeviceArray(DeviceArray&& other) noexcept
      : ptr_(std::exchange(other.ptr_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  DeviceArray& operator=(DeviceArray&& other) noexcept {
    std::swap(ptr_, other.ptr_);
    std::swap(size_, other.size_);
    return *this;
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  // Makes room for at least `count` elements (contents are lost when it grows). Returns
  // whether it reallocated through *moved (when not null).
  absl::Status Reserve(int64_t count, bool* moved = nullptr) {
    if (count <= size_) return absl::OkStatus();
    if (ptr_ != nullptr) cudaFree(ptr_);
    ptr_ = nullptr;
    size_ = 0;
    if (moved != nullptr) *moved = true;
    const size_t bytes = static_cast<size_t>(count) * sizeof(E);
    const cudaError_t err = cudaMalloc(&ptr_, bytes);
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      ptr_ = nullptr;
      size_t free_bytes = 0, total = 0;
      cudaMemGetInfo(&free_bytes, &total);
      return absl::ResourceExhaustedError(
          absl::StrCat("the GPU is out of memory: ", GiB(static_cast<int64_t>(bytes)),
                       " GiB asked, ", GiB(static_cast<int64_t>(free_bytes)), " GiB free of ",
                       GiB(static_cast<int64_t>(total))));
    }
    SF_CUDA_RETURN_IF_ERROR(err);
    size_ = count;
    return absl::OkStatus();
  }
  absl::Status Upload(const std::vector<E>& host) {
    SF_RETURN_IF_ERROR(Reserve(static_cast<int64_t>(host.size())));
    if (host.empty()) return absl::OkStatus();
    return CudaStatus(
        cudaMemcpy(ptr_, host.data(), host.size() * sizeof(E), cudaMemcpyHostToDevice),
        "cudaMemcpy (upload)");
  }
  E* get() const { return ptr_; }
  int64_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  E* ptr_ = nullptr;
  int64_t size_ = 0;
};

// Page-locked host memory of E (for the per-step copies of decode).
template <typename E>
class PinnedArray {
 public:
  ~PinnedArray() {
    if (ptr_ != nullptr) cudaFreeHost(ptr_);
  }
  absl::Status Reserve(int64_t count) {
    if (count <= size_) return absl::OkStatus();
    if (ptr_ != nullptr) cudaFreeHost(ptr_);
    ptr_ = nullptr;
    size_ = 0;
    SF_CUDA_RETURN_IF_ERROR(cudaMallocHost(&ptr_, static_cast<size_t>(count) * sizeof(E)));
    size_ = count;
    return absl::OkStatus();
  }
  E* get() const { return ptr_; }

 private:
  E* ptr_ = nullptr;
  int64_t size_ = 0;
};

template <typename T>
struct DeviceLinear {
  int64_t in = 0;
  int64_t out = 0;
  DeviceArray<T> weight;
  DeviceArray<float> bias;  // empty: no bias
};

template <typename T>
struct DeviceLayer {
  DeviceArray<float> input_norm, post_norm;
  DeviceLinear<T> qkv, o, gate_up, down;
};

template <typename T>
constexpr cuda::AttnDType kAttnDType =
    std::is_same_v<T, float> ? cuda::AttnDType::kF32 : cuda::AttnDType::kBf16;

// Host conversions between T and float for the host mirror of the cache.
template <typename T>
void ToFloat(const T* src, size_t count, float* dst) {
  if constexpr (std::is_same_v<T, float>) {
    std::copy(src, src + count, dst);
  } else {
    ConvertToFloat(DType::kBF16, src, count, dst);
  }
}
template <typename T>
void FromFloat(const float* src, size_t count, T* dst) {
  if constexpr (std::is_same_v<T, float>) {
    std::copy(src, src + count, dst);
  } else {
    for (size_t i = 0; i < count; ++i) {
      __nv_bfloat16_raw raw;
      raw.x = FloatToBf16(src[i]);
      dst[i] = raw;
    }
  }
}

// The engine's dense attention kernels, for exactly dense hooks: the one place that picks
// them. kHopper: the TMA + wgmma prefill and the split-KV tensor-core decode of
// kernels/cuda/attention (prefill.h, decode.h), for bf16 with head_dim 64, 128 or 256 on an
// sm_90 device; kReference: the CUDA-core kernels of dense.h (float32, other head dims,
// other devices, or EngineOptions::reference_attention).
enum class DenseKernels { kReference, kHopper };

absl::Status RunDenseAttention(DenseKernels kernels, const cuda::AttentionParams& p) {
  if (kernels == DenseKernels::kReference) return cuda::DenseAttention(p);
  if (p.num_queries > 1) return cuda::PrefillDense(p);
  return cuda::DenseDecode(p);
}
// Workspace bytes a decode call over `p` needs (p.max_kv_length sizes the split): enough
// for either decode kernel, so a hook given the engine's workspace through the device view
// may run either (attention.h).
absl::StatusOr<int64_t> DenseWorkspaceBytes(DenseKernels kernels, const cuda::AttentionParams& p) {
  const int64_t reference =
      cuda::DenseDecodeWorkspaceBytes(p.num_q_heads, p.head_dim, p.max_kv_length);
  if (kernels == DenseKernels::kReference) return reference;
  SF_ASSIGN_OR_RETURN(cuda::DecodePlan plan, cuda::PlanDenseDecode(p));
  return std::max(reference, plan.workspace_bytes);
}

// Where the weights come from: a checkpoint, or random values drawn on the device.
class WeightReader {
 public:
  virtual ~WeightReader() = default;
  // Writes tensor `name` of `count` elements (checked against `shape`) into dst.
  virtual absl::Status Matrix(const std::string& name, absl::Span<const int64_t> shape, float* dst,
                              cudaStream_t stream) = 0;
  virtual absl::Status Matrix(const std::string& name, absl::Span<const int64_t> shape, bf16* dst,
                              cudaStream_t stream) = 0;
  // A float32 vector (norm weights, biases) on the host.
  virtual absl::StatusOr<std::vector<float>> Vector(const std::string& name, int64_t size,
                                                    bool is_norm) = 0;
  // Passes over `tensors` reads that another pipeline stage makes (a source that numbers
  // its tensors gives each stage the values the whole model holds).
  virtual void Skip(int64_t tensors) {}
};

int64_t Product(absl::Span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

// Reads tensors from a mapped checkpoint: a tensor already in T is copied as is, another
// float type is uploaded raw and converted on the device (no float32 copy on the host).
class CheckpointWeights : public WeightReader {
 public:
  explicit CheckpointWeights(const Checkpoint& ckpt) : ckpt_(ckpt) {}

  absl::Status Matrix(const std::string& name, absl::Span<const int64_t> shape, float* dst,
                      cudaStream_t stream) override {
    return Upload(name, shape, dst, stream);
  }
  absl::Status Matrix(const std::string& name, absl::Span<const int64_t> shape, bf16* dst,
                      cudaStream_t stream) override {
    return Upload(name, shape, dst, stream);
  }
  absl::StatusOr<std::vector<float>> Vector(const std::string& name, int64_t size,
                                            bool is_norm) override {
    const int64_t shape[1] = {size};
    return ckpt_.ReadFloat(name, shape);
  }

 private:
  template <typename T>
  absl::Status Upload(const std::string& name, absl::Span<const int64_t> shape, T* dst,
                      cudaStream_t stream) {
    SF_ASSIGN_OR_RETURN(TensorView view, ckpt_.Get(name, shape));
    const int64_t count = view.NumElements();
    const DType dtype = view.info->dtype;
    const DType native = std::is_same_v<T, float> ? DType::kF32 : DType::kBF16;
    const size_t bytes = static_cast<size_t>(count) * DTypeSize(dtype);
    if (dtype == native) {
      return CudaStatus(cudaMemcpy(dst, view.data, bytes, cudaMemcpyHostToDevice),
                        "uploading a weight");
    }
    cuda::WeightSource source;
    switch (dtype) {
      case DType::kF32:
        source = cuda::WeightSource::kF32;
        break;
      case DType::kF16:
        source = cuda::WeightSource::kF16;
        break;
      case DType::kBF16:
        source = cuda::WeightSource::kBf16;
        break;
      default:
        return absl::InvalidArgumentError(absl::StrCat("tensor ", name, " has dtype ",
                                                       DTypeName(dtype),
                                                       "; the engine reads F32, F16 or BF16"));
    }
    SF_RETURN_IF_ERROR(staging_.Reserve(static_cast<int64_t>(bytes)));
    // The copy goes on `stream`, ahead of the conversion that reads it. A plain cudaMemcpy
    // from pageable memory (the mapped checkpoint) may return before its data reaches the
    // device, and the legacy default stream it runs on does not order the non-blocking
    // `stream`: without this order the conversion can read a stale staging buffer when the
    // copy is slow (another process on the GPU), and the engine computes with wrong weights.
    SF_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(staging_.get(), view.data, bytes, cudaMemcpyHostToDevice, stream));
    SF_RETURN_IF_ERROR(cuda::ConvertWeights(staging_.get(), source, count, dst, stream));
    // The staging buffer is reused by the next tensor.
    return CudaStatus(cudaStreamSynchronize(stream), "converting a weight");
  }

  const Checkpoint& ckpt_;
  DeviceArray<char> staging_;
};

// Random weights drawn on the device (CreateCudaEngineWithRandomWeights).
class RandomWeights : public WeightReader {
 public:
  RandomWeights(uint64_t seed, float init_std) : seed_(seed), std_(init_std) {}

  absl::Status Matrix(const std::string& name, absl::Span<const int64_t> shape, float* dst,
                      cudaStream_t stream) override {
    return cuda::FillRandomNormal(dst, Product(shape), NextSeed(), 0.0f, std_, stream);
  }
  absl::Status Matrix(const std::string& name, absl::Span<const int64_t> shape, bf16* dst,
                      cudaStream_t stream) override {
    return cuda::FillRandomNormal(dst, Product(shape), NextSeed(), 0.0f, std_, stream);
  }
  absl::StatusOr<std::vector<float>> Vector(const std::string& name, int64_t size,
                                            bool is_norm) override {
    // A small host generator (splitmix64 + Box-Muller), rounded to bf16 as the matrices.
    uint64_t state = NextSeed();
    auto next = [&state]() {
      uint64_t z = (state += 0x9e3779b97f4a7c15ull);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      return z ^ (z >> 31);
    };
    std::vector<float> v(static_cast<size_t>(size));
    for (float& x : v) {
      const double u1 = (static_cast<double>(next() >> 11) + 1.0) / 9007199254740992.0;
      const double u2 = static_cast<double>(next() >> 11) / 9007199254740992.0;
      const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
      x = Bf16ToFloat(FloatToBf16(static_cast<float>(is_norm ? 1.0 + 0.1 * z : std_ * z)));
    }
    return v;
  }
  void Skip(int64_t tensors) override { tensors_ += static_cast<uint64_t>(tensors); }

 private:
  uint64_t NextSeed() { return seed_ * 1000003ull + (++tensors_); }
  uint64_t seed_;
  float std_;
  uint64_t tensors_ = 0;
};

template <typename T>
class CudaEngine : public CudaStage {
 public:
  // Holds layers [stage.first_layer, stage.end_layer) on stage.device; `upstream` (not
  // owned) is the stage before it when the range does not start at 0. `mirror` (not
  // owned) is a host KV cache shared with the other stages, or null for its own.
  CudaEngine(ModelConfig config, const EngineOptions& options, const LayerStage& stage,
             const CudaStage* upstream, KvCache* mirror)
      : config_(std::move(config)),
        options_(options),
        stage_(stage),
        upstream_(upstream),
        pool_(options.num_threads),
        own_cache_(static_cast<int>(config_.num_layers), static_cast<int>(config_.num_kv_heads),
                   static_cast<int>(config_.head_dim), options.page_size),
        host_cache_(mirror != nullptr ? *mirror : own_cache_) {}

  ~CudaEngine() override {
    cudaSetDevice(stage_.device);
    if (graph_exec_ != nullptr) cudaGraphExecDestroy(graph_exec_);
    gemm_.reset();
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  absl::Status Init(WeightReader& source) {
    const ModelConfig& c = config_;
    if (c.head_dim % 2 != 0 || c.head_dim > cuda::kDenseMaxHeadDim) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the CUDA engine needs an even head_dim of at most 256; this model has ", c.head_dim));
    }
    if (c.num_heads % c.num_kv_heads != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          c.num_heads, " attention heads do not divide into ", c.num_kv_heads, " KV heads"));
    }
    SF_CUDA_RETURN_IF_ERROR(cudaSetDevice(stage_.device));
    cudaDeviceProp prop;
    SF_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, stage_.device));
    device_name_ = prop.name;
    const bool hopper_shape =
        std::is_same_v<T, bf16> && (c.head_dim == 64 || c.head_dim == 128 || c.head_dim == 256);
    dense_kernels_ = hopper_shape && prop.major == 9 && !options_.reference_attention
                         ? DenseKernels::kHopper
                         : DenseKernels::kReference;
    counters_.attention_kernels =
        dense_kernels_ == DenseKernels::kHopper ? cuda::kHopperKernelsVersion : "cuda-reference";
    SF_RETURN_IF_ERROR(CheckMemory(std::max<int64_t>(options_.reserve_tokens, 256)));
    SF_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    gemm_ = std::make_unique<DeviceGemm>();
    SF_RETURN_IF_ERROR(gemm_->Init(stream_));
    SF_RETURN_IF_ERROR(LoadWeights(source));
    SF_ASSIGN_OR_RETURN(RopeTable rope, ComputeRope(c));
    attention_scaling_ = rope.attention_scaling;
    SF_RETURN_IF_ERROR(inv_freq_.Upload(rope.inv_freq));

    const size_t slots = static_cast<size_t>(c.num_layers * c.num_kv_heads);
    lengths_host_.assign(slots, 0);
    SF_RETURN_IF_ERROR(lengths_.Reserve(static_cast<int64_t>(slots)));
    SF_CUDA_RETURN_IF_ERROR(cudaMemset(lengths_.get(), 0, slots * sizeof(int32_t)));
    kv_keys_.resize(static_cast<size_t>(c.num_layers));
    kv_values_.resize(static_cast<size_t>(c.num_layers));
    page_min_.resize(static_cast<size_t>(c.num_layers));
    page_max_.resize(static_cast<size_t>(c.num_layers));
    device_positions_.assign(static_cast<size_t>(c.num_layers), 0);
    synced_positions_.assign(static_cast<size_t>(c.num_layers), 0);
    mirror_stale_.assign(static_cast<size_t>(c.num_layers), false);
    SF_RETURN_IF_ERROR(GrowCache(std::max<int64_t>(options_.reserve_tokens, 256)));
    SF_RETURN_IF_ERROR(step_host_.Reserve(1));
    SF_RETURN_IF_ERROR(step_dev_.Reserve(1));
    // The uploads above ran on the legacy default stream, which does not order the
    // non-blocking stream_: wait for them before any kernel reads the weights.
    return CudaStatus(cudaDeviceSynchronize(), "uploading the weights");
  }

  const ModelConfig& config() const override { return config_; }

  void Reset() override {
    const absl::Status device = CudaStatus(cudaSetDevice(stage_.device), "cudaSetDevice");
    if (!device.ok() && deferred_error_.ok()) deferred_error_ = device;
    host_cache_.Clear();
    std::fill(lengths_host_.begin(), lengths_host_.end(), 0);
    std::fill(device_positions_.begin(), device_positions_.end(), 0);
    std::fill(synced_positions_.begin(), synced_positions_.end(), 0);
    std::fill(mirror_stale_.begin(), mirror_stale_.end(), false);
    const absl::Status s = CudaStatus(
        cudaMemsetAsync(lengths_.get(), 0, lengths_host_.size() * sizeof(int32_t), stream_),
        "resetting the KV cache lengths");
    if (!s.ok() && deferred_error_.ok()) deferred_error_ = s;
    position_ = 0;
  }

  int64_t position() const override { return position_; }

  // The host mirror, brought up to date; edits to it (Compact, Clear) reach the device
  // at the next Prefill or Decode.
  KvCache& cache() override {
    cudaSetDevice(stage_.device);
    for (int l = first_layer(); l < end_layer(); ++l) {
      const absl::Status s = SyncLayerToHost(l);
      if (!s.ok()) {
        SF_LOG(ERROR) << "CUDA engine: copying the KV cache to the host failed: " << s.message();
        if (deferred_error_.ok()) deferred_error_ = s;
        break;
      }
    }
    host_exposed_ = true;
    return host_cache_;
  }

  void SetAttention(AttentionHook* prefill, AttentionHook* decode) override {
    prefill_hook_ = prefill != nullptr ? prefill : &dense_;
    decode_hook_ = decode != nullptr ? decode : &dense_;
  }
  std::string BackendName() const override {
    return absl::StrCat("cuda(", device_name_, ", ", ComputeDTypeName(Dtype()), ")");
  }
  const LayerStage& stage() const override { return stage_; }
  const float* residual() const override { return x_.get(); }

 private:
  int first_layer() const { return static_cast<int>(stage_.first_layer); }
  int end_layer() const { return static_cast<int>(stage_.end_layer); }
  bool holds_first_layer() const { return stage_.first_layer == 0; }
  bool holds_last_layer() const { return stage_.end_layer == config_.num_layers; }
  GpuMemoryEstimate Estimate(int64_t tokens) const {
    return EstimateGpuMemory(config_, GpuMemorySettingsFor(options_), tokens, stage_.first_layer,
                             stage_.end_layer);
  }
  static constexpr ComputeDType Dtype() {
    return std::is_same_v<T, float> ? ComputeDType::kFloat32 : ComputeDType::kBfloat16;
  }
  int num_kv_heads() const { return static_cast<int>(config_.num_kv_heads); }
  int64_t& length(int layer, int head) {
    return lengths_host_[static_cast<size_t>(layer * config_.num_kv_heads + head)];
  }
  int64_t MaxLength(int layer) {
    int64_t m = 0;
    for (int h = 0; h < num_kv_heads(); ++h) m = std::max(m, length(layer, h));
    return m;
  }
  cuda::DeviceKvLayer<T> KvLayer(int layer) const {
    cuda::DeviceKvLayer<T> kv;
    kv.keys = kv_keys_[static_cast<size_t>(layer)].get();
    kv.values = kv_values_[static_cast<size_t>(layer)].get();
    kv.lengths = lengths_.get() + layer * config_.num_kv_heads;
    kv.capacity = capacity_;
    kv.num_kv_heads = num_kv_heads();
    kv.head_dim = static_cast<int>(config_.head_dim);
    return kv;
  }
  int64_t PagesPerHead() const { return (capacity_ + options_.page_size - 1) / options_.page_size; }

  // ResourceExhausted when a job of `tokens` cannot fit in the device's free memory
  // (counting what this engine already holds as available to it).
  absl::Status CheckMemory(int64_t tokens) {
    size_t free_bytes = 0, total = 0;
    SF_CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free_bytes, &total));
    const GpuMemoryEstimate need = Estimate(tokens);
    const GpuMemoryEstimate held = Estimate(capacity_);
    const int64_t available = static_cast<int64_t>(free_bytes) + (capacity_ > 0 ? held.total() : 0);
    if (need.total() <= available) return absl::OkStatus();
    const std::string layers =
        holds_first_layer() && holds_last_layer()
            ? std::string()
            : absl::StrCat(" for layers [", stage_.first_layer, ", ", stage_.end_layer, ")");
    return absl::ResourceExhaustedError(absl::StrCat(
        "a job of ", tokens, " tokens needs about ", GiB(need.total()), " GiB of GPU memory",
        layers, " (", ComputeDTypeName(Dtype()), " weights ", GiB(need.weights), " + KV cache ",
        GiB(need.kv_cache), " + workspace ", GiB(need.workspace), ") but ", device_name_, " has ",
        GiB(available), " GiB free of ", GiB(static_cast<int64_t>(total)),
        "; use fewer tokens, bfloat16, or a larger GPU"));
  }

  absl::Status LoadLinear(WeightReader& source, const std::string& prefix,
                          const std::vector<std::pair<std::string, int64_t>>& parts, int64_t in,
                          bool with_bias, DeviceLinear<T>* lin) {
    lin->in = in;
    lin->out = 0;
    for (const auto& part : parts) lin->out += part.second;
    SF_RETURN_IF_ERROR(lin->weight.Reserve(lin->out * in));
    std::vector<float> bias;
    int64_t row = 0;
    for (const auto& [name, out] : parts) {
      const int64_t shape[2] = {out, in};
      SF_RETURN_IF_ERROR(
          source.Matrix(prefix + name + ".weight", shape, lin->weight.get() + row * in, stream_));
      if (with_bias) {
        SF_ASSIGN_OR_RETURN(std::vector<float> b,
                            source.Vector(prefix + name + ".bias", out, false));
        bias.insert(bias.end(), b.begin(), b.end());
      }
      row += out;
    }
    return lin->bias.Upload(bias);
  }

  // Reads the embeddings when the stage holds layer 0 (or is the last stage of a model
  // whose lm_head is the embedding matrix), its layers, and the final norm and lm_head
  // when it holds the last layer; every other read is skipped in the order the whole
  // model makes it.
  absl::Status LoadWeights(WeightReader& source) {
    const ModelConfig& c = config_;
    const int64_t H = c.hidden_size;
    if (holds_first_layer() || (holds_last_layer() && c.tie_word_embeddings)) {
      SF_RETURN_IF_ERROR(embed_.Reserve(c.vocab_size * H));
      const int64_t embed_shape[2] = {c.vocab_size, H};
      SF_RETURN_IF_ERROR(
          source.Matrix("model.embed_tokens.weight", embed_shape, embed_.get(), stream_));
    } else {
      source.Skip(1);
    }
    layers_.resize(static_cast<size_t>(c.num_layers));
    for (int64_t i = 0; i < c.num_layers; ++i) {
      if (i < stage_.first_layer || i >= stage_.end_layer) {
        source.Skip(ReadsPerLayer());
        continue;
      }
      SF_RETURN_IF_ERROR(LoadLayer(source, i, &layers_[static_cast<size_t>(i)]));
    }
    if (!holds_last_layer()) return absl::OkStatus();
    SF_ASSIGN_OR_RETURN(std::vector<float> final_norm, source.Vector("model.norm.weight", H, true));
    SF_RETURN_IF_ERROR(final_norm_.Upload(final_norm));
    lm_head_.in = H;
    lm_head_.out = c.vocab_size;
    if (!c.tie_word_embeddings) {
      SF_RETURN_IF_ERROR(LoadLinear(source, "", {{"lm_head", c.vocab_size}}, H, false, &lm_head_));
    }
    return absl::OkStatus();
  }

  // The reads LoadLayer makes of a WeightReader: two norms, then each linear's parts, each
  // part's weight followed by its bias when it has one.
  int64_t ReadsPerLayer() const {
    const ModelConfig& c = config_;
    return 2 + 3 * (c.qkv_bias ? 2 : 1) + (c.o_bias ? 2 : 1) + 3 * (c.mlp_bias ? 2 : 1);
  }

  absl::Status LoadLayer(WeightReader& source, int64_t i, DeviceLayer<T>* layer) {
    const ModelConfig& c = config_;
    const int64_t H = c.hidden_size, d = c.head_dim, I = c.intermediate_size;
    const std::string p = absl::StrCat("model.layers.", i, ".");
    DeviceLayer<T>& L = *layer;
    SF_ASSIGN_OR_RETURN(std::vector<float> in_norm,
                        source.Vector(p + "input_layernorm.weight", H, true));
    SF_RETURN_IF_ERROR(L.input_norm.Upload(in_norm));
    SF_ASSIGN_OR_RETURN(std::vector<float> post_norm,
                        source.Vector(p + "post_attention_layernorm.weight", H, true));
    SF_RETURN_IF_ERROR(L.post_norm.Upload(post_norm));
    SF_RETURN_IF_ERROR(LoadLinear(source, p + "self_attn.",
                                  {{"q_proj", c.num_heads * d},
                                   {"k_proj", c.num_kv_heads * d},
                                   {"v_proj", c.num_kv_heads * d}},
                                  H, c.qkv_bias, &L.qkv));
    SF_RETURN_IF_ERROR(
        LoadLinear(source, p + "self_attn.", {{"o_proj", H}}, c.num_heads * d, c.o_bias, &L.o));
    SF_RETURN_IF_ERROR(LoadLinear(source, p + "mlp.", {{"gate_proj", I}, {"up_proj", I}}, H,
                                  c.mlp_bias, &L.gate_up));
    return LoadLinear(source, p + "mlp.", {{"down_proj", H}}, I, c.mlp_bias, &L.down);
  }

  // Makes room for `rows` rows per head, keeping what the cache holds.
  absl::Status GrowCache(int64_t rows) {
    if (rows <= capacity_) return absl::OkStatus();
    // A quarter more than asked, so decoding does not grow it every step, and no doubling,
    // so a long prompt does not take twice its memory.
    const int64_t wanted = std::max(rows, capacity_ + capacity_ / 4);
    const int64_t new_capacity = (wanted + 255) / 256 * 256;
    if (capacity_ > 0) SF_RETURN_IF_ERROR(CheckMemory(new_capacity));
    const int64_t d = config_.head_dim, heads = config_.num_kv_heads;
    for (int64_t l = first_layer(); l < end_layer(); ++l) {
      for (auto* arrays : {&kv_keys_, &kv_values_}) {
        DeviceArray<T> grown;
        SF_RETURN_IF_ERROR(
            Annotate(grown.Reserve(heads * new_capacity * d),
                     absl::StrCat("growing the KV cache to ", new_capacity, " tokens per head")));
        DeviceArray<T>& old = (*arrays)[static_cast<size_t>(l)];
        if (capacity_ > 0) {
          const size_t old_pitch = static_cast<size_t>(capacity_ * d) * sizeof(T);
          SF_CUDA_RETURN_IF_ERROR(cudaMemcpy2DAsync(
              grown.get(), static_cast<size_t>(new_capacity * d) * sizeof(T), old.get(), old_pitch,
              old_pitch, static_cast<size_t>(heads), cudaMemcpyDeviceToDevice, stream_));
          SF_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
        }
        old = std::move(grown);
      }
    }
    capacity_ = new_capacity;
    ++buffers_generation_;
    if (decode_hook_->WantsPageBounds()) SF_RETURN_IF_ERROR(RebuildPageBounds());
    return absl::OkStatus();
  }

  // (Re)allocates the Quest page bounds of every layer for the current capacity and
  // recomputes them from the cache.
  absl::Status RebuildPageBounds() {
    const int64_t pages = PagesPerHead(), d = config_.head_dim;
    for (int l = first_layer(); l < end_layer(); ++l) {
      const size_t li = static_cast<size_t>(l);
      page_min_[li] = DeviceArray<float>();
      page_max_[li] = DeviceArray<float>();
      SF_RETURN_IF_ERROR(page_min_[li].Reserve(num_kv_heads() * pages * d));
      SF_RETURN_IF_ERROR(page_max_[li].Reserve(num_kv_heads() * pages * d));
      const int64_t longest = MaxLength(l);
      SF_RETURN_IF_ERROR(cuda::UpdatePageBounds(KvLayer(l), longest, options_.page_size, pages,
                                                page_min_[li].get(), page_max_[li].get(), stream_));
    }
    page_bounds_capacity_ = capacity_;
    return absl::OkStatus();
  }

  // Appends to the host mirror the rows of `layer` the device holds and the host does not
  // (those appended since the last sync: the same positions for every head).
  absl::Status SyncLayerToHost(int layer) {
    const size_t li = static_cast<size_t>(layer);
    if (mirror_stale_[li]) {
      return absl::FailedPreconditionError(absl::StrCat(
          "layer ", layer,
          "'s device cache was compacted by a method running on the device; "
          "the host mirror cannot follow it (use that method's device path for both phases)"));
    }
    const int64_t pending = device_positions_[li] - synced_positions_[li];
    if (pending == 0) return absl::OkStatus();
    const int64_t d = config_.head_dim, heads = config_.num_kv_heads;
    staging_k_.resize(static_cast<size_t>(pending * heads * d));
    staging_v_.resize(staging_k_.size());
    const size_t row_bytes = static_cast<size_t>(d) * sizeof(T);
    for (int h = 0; h < heads; ++h) {
      const int64_t first = length(layer, h) - pending;
      const int64_t offset = (h * capacity_ + first) * d;
      SF_CUDA_RETURN_IF_ERROR(
          cudaMemcpy2DAsync(staging_k_.data() + h * d, row_bytes * static_cast<size_t>(heads),
                            kv_keys_[li].get() + offset, row_bytes, row_bytes,
                            static_cast<size_t>(pending), cudaMemcpyDeviceToHost, stream_));
      SF_CUDA_RETURN_IF_ERROR(
          cudaMemcpy2DAsync(staging_v_.data() + h * d, row_bytes * static_cast<size_t>(heads),
                            kv_values_[li].get() + offset, row_bytes, row_bytes,
                            static_cast<size_t>(pending), cudaMemcpyDeviceToHost, stream_));
    }
    SF_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
    staging_float_k_.resize(staging_k_.size());
    staging_float_v_.resize(staging_v_.size());
    ToFloat(staging_k_.data(), staging_k_.size(), staging_float_k_.data());
    ToFloat(staging_v_.data(), staging_v_.size(), staging_float_v_.data());
    host_cache_.Append(layer, static_cast<int>(pending), staging_float_k_.data(),
                       staging_float_v_.data(), heads * d, synced_positions_[li]);
    synced_positions_[li] = device_positions_[li];
    return absl::OkStatus();
  }

  // After a hook (or a caller through cache()) changed the host mirror of `layer`, makes
  // the device cache hold the same rows. No copy when nothing changed.
  absl::Status ReconcileLayer(int layer) {
    const size_t li = static_cast<size_t>(layer);
    if (mirror_stale_[li]) return absl::OkStatus();  // the device is the truth
    const int64_t pending = device_positions_[li] - synced_positions_[li];
    bool changed = false;
    for (int h = 0; h < num_kv_heads() && !changed; ++h) {
      changed = host_cache_.length(layer, h) != length(layer, h) - pending;
    }
    if (!changed) return absl::OkStatus();
    SF_RETURN_IF_ERROR(SyncLayerToHost(layer));
    const int64_t d = config_.head_dim;
    for (int h = 0; h < num_kv_heads(); ++h) {
      const int64_t rows = host_cache_.length(layer, h);
      SF_RETURN_IF_ERROR(GrowCache(rows));
      const int64_t offset = h * capacity_ * d;
      if (rows > 0) {
        upload_k_.resize(static_cast<size_t>(rows * d));
        upload_v_.resize(upload_k_.size());
        FromFloat(host_cache_.keys(layer, h), upload_k_.size(), upload_k_.data());
        FromFloat(host_cache_.values(layer, h), upload_v_.size(), upload_v_.data());
        const size_t bytes = upload_k_.size() * sizeof(T);
        SF_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(kv_keys_[li].get() + offset, upload_k_.data(),
                                                bytes, cudaMemcpyHostToDevice, stream_));
        SF_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(kv_values_[li].get() + offset, upload_v_.data(),
                                                bytes, cudaMemcpyHostToDevice, stream_));
        // upload_k_/v_ are reused by the next head.
        SF_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
      }
      length(layer, h) = rows;
    }
    SF_RETURN_IF_ERROR(UploadLengths(layer));
    return CudaStatus(cudaStreamSynchronize(stream_), "uploading the compacted KV cache");
  }

  absl::Status UploadLengths(int layer) {
    lengths_upload_.resize(static_cast<size_t>(num_kv_heads()));
    for (int h = 0; h < num_kv_heads(); ++h) {
      lengths_upload_[static_cast<size_t>(h)] = static_cast<int32_t>(length(layer, h));
    }
    SF_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(lengths_.get() + layer * config_.num_kv_heads, lengths_upload_.data(),
                        sizeof(int32_t) * num_kv_heads(), cudaMemcpyHostToDevice, stream_));
    return CudaStatus(cudaStreamSynchronize(stream_), "uploading KV cache lengths");
  }

  // y[n][out] (=|+=) x[n][in] W^T (+ b), rows of y ldy elements apart.
  template <typename Out>
  absl::Status Gemm(const DeviceLinear<T>& lin, const T* weight, const T* x, int64_t n, Out* y,
                    int64_t ldy, bool accumulate) {
    SF_RETURN_IF_ERROR(gemm_->Run(weight, lin.out, lin.in, x, n, y, ldy, accumulate));
    if (!lin.bias.empty()) return cuda::AddBias<Out>(y, lin.bias.get(), n, lin.out, ldy, stream_);
    return absl::OkStatus();
  }
  template <typename Out>
  absl::Status Gemm(const DeviceLinear<T>& lin, const T* x, int64_t n, Out* y, bool accumulate) {
    return Gemm(lin, lin.weight.get(), x, n, y, lin.out, accumulate);
  }

  // Grows the activation buffers for runs of n tokens and `logit_rows` rows of logits.
  absl::Status ReserveBuffers(int64_t n, int64_t logit_rows) {
    const ModelConfig& c = config_;
    const int64_t H = c.hidden_size, d = c.head_dim, I = c.intermediate_size;
    const int64_t qkv_width = (c.num_heads + 2 * c.num_kv_heads) * d;
    const int64_t mlp_rows = std::min(n, kMlpChunkRows);
    bool moved = false;
    SF_RETURN_IF_ERROR(tokens_.Reserve(n, &moved));
    SF_RETURN_IF_ERROR(x_.Reserve(n * H, &moved));
    SF_RETURN_IF_ERROR(h_.Reserve(n * H, &moved));
    SF_RETURN_IF_ERROR(qkv_.Reserve(n * qkv_width, &moved));
    SF_RETURN_IF_ERROR(attn_.Reserve(n * c.num_heads * d, &moved));
    SF_RETURN_IF_ERROR(gate_up_.Reserve(mlp_rows * 2 * I, &moved));
    SF_RETURN_IF_ERROR(act_.Reserve(mlp_rows * I, &moved));
    SF_RETURN_IF_ERROR(logits_.Reserve(logit_rows * c.vocab_size, &moved));
    if (moved) ++buffers_generation_;
    return absl::OkStatus();
  }

  // Grows the attention workspace for a decode step over rows up to `max_length`.
  absl::Status ReserveDecodeWorkspace(int64_t max_length) {
    SF_ASSIGN_OR_RETURN(
        int64_t bytes,
        DenseWorkspaceBytes(dense_kernels_, ParamsFor(first_layer(), 1, max_length)));
    bool moved = false;
    SF_RETURN_IF_ERROR(workspace_.Reserve(std::max<int64_t>(bytes, 1), &moved));
    if (moved) ++buffers_generation_;
    return absl::OkStatus();
  }

  // Dense pairs of the layer's call, as DensePairs(call) on the host lengths.
  double DensePairsOf(int layer, int64_t n) {
    const double group = static_cast<double>(config_.num_heads / config_.num_kv_heads);
    double pairs = 0;
    for (int h = 0; h < num_kv_heads(); ++h) {
      const double before = static_cast<double>(length(layer, h) - n);
      const double nn = static_cast<double>(n);
      pairs += group * (nn * before + nn * (nn + 1) / 2);
    }
    return pairs;
  }

  // The kernels' view of layer `li` for n new queries (already appended).
  cuda::AttentionParams ParamsFor(int li, int64_t n, int64_t max_kv_length) {
    const ModelConfig& c = config_;
    const int64_t d = c.head_dim;
    cuda::AttentionParams p;
    p.q = qkv_.get();
    p.q_row_stride = (c.num_heads + 2 * c.num_kv_heads) * d;
    p.q_head_stride = d;
    p.k = kv_keys_[static_cast<size_t>(li)].get();
    p.v = kv_values_[static_cast<size_t>(li)].get();
    p.kv_head_stride = capacity_ * d;
    p.kv_row_stride = d;
    p.kv_lengths = lengths_.get() + li * c.num_kv_heads;
    p.max_kv_length = max_kv_length;
    p.num_queries = n;
    p.num_q_heads = static_cast<int32_t>(c.num_heads);
    p.num_kv_heads = static_cast<int32_t>(c.num_kv_heads);
    p.head_dim = static_cast<int32_t>(d);
    p.softmax_scale = 1.0f / std::sqrt(static_cast<float>(d));
    p.out = attn_.get();
    p.out_row_stride = c.num_heads * d;
    p.out_head_stride = d;
    p.workspace = workspace_.get();
    p.workspace_bytes = workspace_.size();
    p.dtype = kAttnDType<T>;
    p.stream = stream_;
    return p;
  }

  // One layer's attention (and, in prefill, the hooks' AfterPrefill): the engine's dense
  // kernel for an exactly dense hook, the hook's device path when it has one, else the
  // hook on the host over the mirror. Returns where it ran.
  absl::StatusOr<AttentionBackend> Attention(int li, int64_t n, int64_t pos0, AttentionPhase phase,
                                             AttentionStats& stats) {
    const ModelConfig& c = config_;
    const int64_t d = c.head_dim, q_width = c.num_heads * d;
    const int64_t qkv_width = q_width + 2 * c.num_kv_heads * d;
    AttentionHook* hook = phase == AttentionPhase::kPrefill ? prefill_hook_ : decode_hook_;
    const int64_t max_length = MaxLength(li);
    if (n == 1) SF_RETURN_IF_ERROR(ReserveDecodeWorkspace(max_length));
    const cuda::AttentionParams params = ParamsFor(li, n, max_length);

    AttentionCall call;
    call.layer = li;
    call.phase = phase;
    call.num_queries = static_cast<int>(n);
    call.num_q_heads = static_cast<int>(c.num_heads);
    call.num_kv_heads = static_cast<int>(c.num_kv_heads);
    call.head_dim = static_cast<int>(d);
    call.q_row_stride = q_width;  // the host copy made by to_host
    call.softmax_scale = params.softmax_scale;
    call.first_position = pos0;
    call.out_row_stride = q_width;
    call.pool = &pool_;
    DeviceAttentionView view;
    view.params = &params;
    view.keys = kv_keys_[static_cast<size_t>(li)].get();
    view.values = kv_values_[static_cast<size_t>(li)].get();
    view.kv_lengths = lengths_.get() + li * c.num_kv_heads;
    view.capacity = capacity_;
    view.host_kv_lengths = &length(li, 0);
    if (decode_hook_->WantsPageBounds()) {
      view.page_key_min = page_min_[static_cast<size_t>(li)].get();
      view.page_key_max = page_max_[static_cast<size_t>(li)].get();
      view.page_size = options_.page_size;
      view.pages_per_head = PagesPerHead();
    }
    AttentionCall device_call = call;
    device_call.pool = nullptr;
    device_call.device = &view;

    // The hooks' host view of this layer: copies of the queries and of the cache, made
    // once and only when a hook without a device path runs.
    bool on_host = false;
    auto to_host = [&]() -> absl::Status {
      if (on_host) return absl::OkStatus();
      SF_RETURN_IF_ERROR(SyncLayerToHost(li));
      // Only the queries of each q/k/v row (keys and values reach the hook through the
      // cache mirror).
      q_staging_.resize(static_cast<size_t>(n * q_width));
      const size_t q_bytes = static_cast<size_t>(q_width) * sizeof(T);
      SF_CUDA_RETURN_IF_ERROR(cudaMemcpy2DAsync(
          q_staging_.data(), q_bytes, qkv_.get(), static_cast<size_t>(qkv_width) * sizeof(T),
          q_bytes, static_cast<size_t>(n), cudaMemcpyDeviceToHost, stream_));
      SF_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
      q_host_.resize(q_staging_.size());
      ToFloat(q_staging_.data(), q_staging_.size(), q_host_.data());
      attn_host_.resize(static_cast<size_t>(n * q_width));
      call.q = q_host_.data();
      call.out = attn_host_.data();
      call.cache = &host_cache_;
      on_host = true;
      return absl::OkStatus();
    };

    if (hook->IsExactDense()) {
      SF_RETURN_IF_ERROR(Annotate(RunDenseAttention(dense_kernels_, params),
                                  absl::StrCat("dense attention, layer ", li)));
      const double pairs = DensePairsOf(li, n);
      stats.pairs_computed += pairs;
      stats.pairs_dense += pairs;
    } else if (hook->SupportsDevice(device_call)) {
      SF_RETURN_IF_ERROR(
          Annotate(hook->AttendOnDevice(device_call, &stats),
                   absl::StrCat(hook->Name(), " attention on the device, layer ", li)));
    } else {
      SF_RETURN_IF_ERROR(to_host());
      SF_RETURN_IF_ERROR(Annotate(hook->Attend(call, &stats),
                                  absl::StrCat(hook->Name(), " attention, layer ", li)));
      staging_out_.resize(attn_host_.size());
      FromFloat(attn_host_.data(), attn_host_.size(), staging_out_.data());
      SF_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(attn_.get(), staging_out_.data(),
                                              staging_out_.size() * sizeof(T),
                                              cudaMemcpyHostToDevice, stream_));
    }
    bool device_after = false;
    if (phase == AttentionPhase::kPrefill) {
      // As the CPU engine: the prefill method's AfterPrefill, then the decode method's
      // (SnapKV-style eviction). Exactly dense hooks have nothing to do there.
      for (AttentionHook* after : {prefill_hook_, decode_hook_}) {
        if (after == decode_hook_ && decode_hook_ == prefill_hook_) break;
        if (after->IsExactDense()) continue;
        if (after->SupportsDevice(device_call)) {
          SF_RETURN_IF_ERROR(
              Annotate(after->AfterPrefillOnDevice(device_call),
                       absl::StrCat(after->Name(), " after prefill on the device, layer ", li)));
          device_after = true;
          continue;
        }
        SF_RETURN_IF_ERROR(to_host());
        SF_RETURN_IF_ERROR(Annotate(after->AfterPrefill(call),
                                    absl::StrCat(after->Name(), " after prefill, layer ", li)));
      }
    }
    if (device_after) {
      // A device method may have compacted rows: the host mirror no longer follows.
      mirror_stale_[static_cast<size_t>(li)] = true;
    }
    if (on_host) {
      SF_RETURN_IF_ERROR(ReconcileLayer(li));
      // staging_out_ is read by the upload above; keep it until the stream has it.
      SF_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
      return AttentionBackend::kHostMirror;
    }
    return AttentionBackend::kCuda;
  }

  // The residual stream of n tokens into x_: their embeddings (tokens_ on the device) when
  // the stage holds layer 0, else a copy of the upstream stage's residual (peer to peer
  // when ConnectStages enabled it, staged through the host by the runtime otherwise).
  absl::Status StageInput(int64_t n) {
    const int64_t H = config_.hidden_size;
    if (holds_first_layer()) {
      return cuda::EmbeddingGather<T>(embed_.get(), tokens_.get(), n, H, x_.get(), stream_);
    }
    const size_t bytes = static_cast<size_t>(n * H) * sizeof(float);
    const int from = upstream_->stage().device;
    if (from == stage_.device) {
      return CudaStatus(cudaMemcpyAsync(x_.get(), upstream_->residual(), bytes,
                                        cudaMemcpyDeviceToDevice, stream_),
                        "copying the residual stream from the previous stage");
    }
    return CudaStatus(
        cudaMemcpyPeerAsync(x_.get(), stage_.device, upstream_->residual(), from, bytes, stream_),
        "copying the residual stream from the previous stage's GPU");
  }

  // Runs n tokens (already on the device in tokens_) through the stage's layers, leaving
  // the residual stream in x_. Returns where attention ran (host mirror wins).
  absl::StatusOr<AttentionBackend> RunLayers(int64_t n, AttentionPhase phase) {
    const ModelConfig& c = config_;
    const int64_t H = c.hidden_size, d = c.head_dim;
    const int64_t q_width = c.num_heads * d, kv_width = c.num_kv_heads * d;
    const int64_t qkv_width = q_width + 2 * kv_width;
    const int64_t pos0 = position_;
    const float eps = static_cast<float>(c.rms_norm_eps);
    AttentionStats& stats = phase == AttentionPhase::kPrefill ? counters_.prefill_attention
                                                              : counters_.decode_attention;
    AttentionBackend backend = AttentionBackend::kCuda;
    SF_RETURN_IF_ERROR(StageInput(n));
    for (int li = first_layer(); li < end_layer(); ++li) {
      DeviceLayer<T>& L = layers_[static_cast<size_t>(li)];
      SF_RETURN_IF_ERROR(
          cuda::RmsNorm<T>(x_.get(), L.input_norm.get(), n, H, eps, h_.get(), stream_));
      SF_RETURN_IF_ERROR(Gemm(L.qkv, h_.get(), n, qkv_.get(), false));
      SF_RETURN_IF_ERROR(cuda::ApplyRope<T>(qkv_.get(), n, qkv_width, c.num_heads + c.num_kv_heads,
                                            d, inv_freq_.get(), attention_scaling_, pos0, nullptr,
                                            stream_));
      SF_RETURN_IF_ERROR(cuda::AppendKv<T>(KvLayer(li), qkv_.get() + q_width,
                                           qkv_.get() + q_width + kv_width, n, qkv_width, stream_));
      for (int h = 0; h < num_kv_heads(); ++h) length(li, h) += n;
      device_positions_[static_cast<size_t>(li)] = pos0 + n;
      if (decode_hook_->WantsPageBounds()) SF_RETURN_IF_ERROR(UpdatePages(li, n));
      SF_ASSIGN_OR_RETURN(AttentionBackend where, Attention(li, n, pos0, phase, stats));
      if (where == AttentionBackend::kHostMirror) backend = where;
      SF_RETURN_IF_ERROR(Gemm(L.o, attn_.get(), n, x_.get(), true));
      SF_RETURN_IF_ERROR(Mlp(L, n, eps));
    }
    position_ += n;
    return backend;
  }

  absl::Status UpdatePages(int li, int64_t n) {
    if (page_bounds_capacity_ != capacity_) return RebuildPageBounds();
    const size_t i = static_cast<size_t>(li);
    return cuda::UpdatePageBounds(KvLayer(li), n, options_.page_size, PagesPerHead(),
                                  page_min_[i].get(), page_max_[i].get(), stream_);
  }

  // x += down(silu(gate(h)) * up(h)) with h = post_norm(x), in chunks of rows.
  absl::Status Mlp(DeviceLayer<T>& L, int64_t n, float eps) {
    const int64_t H = config_.hidden_size, I = config_.intermediate_size;
    SF_RETURN_IF_ERROR(cuda::RmsNorm<T>(x_.get(), L.post_norm.get(), n, H, eps, h_.get(), stream_));
    for (int64_t r0 = 0; r0 < n; r0 += kMlpChunkRows) {
      const int64_t m = std::min(kMlpChunkRows, n - r0);
      SF_RETURN_IF_ERROR(Gemm(L.gate_up, h_.get() + r0 * H, m, gate_up_.get(), false));
      SF_RETURN_IF_ERROR(cuda::SiluMul<T>(gate_up_.get(), m, I, act_.get(), stream_));
      SF_RETURN_IF_ERROR(Gemm(L.down, act_.get(), m, x_.get() + r0 * H, true));
    }
    return absl::OkStatus();
  }

  // Final norm and lm_head over rows [first_row, first_row + rows) of x_ (float32 logits
  // on the device in logits_).
  absl::Status LogitsOnDevice(int64_t first_row, int64_t rows) {
    const ModelConfig& c = config_;
    const int64_t H = c.hidden_size;
    SF_RETURN_IF_ERROR(cuda::RmsNorm<T>(x_.get() + first_row * H, final_norm_.get(), rows, H,
                                        static_cast<float>(c.rms_norm_eps), h_.get(), stream_));
    const T* head = c.tie_word_embeddings ? embed_.get() : lm_head_.weight.get();
    return Gemm(lm_head_, head, h_.get(), rows, logits_.get(), c.vocab_size, false);
  }

  // Appends the logits of rows [first_row, first_row + rows) of x_ to *out, in blocks.
  absl::Status CopyLogits(int64_t first_row, int64_t rows, std::vector<float>* out) {
    const int64_t V = config_.vocab_size;
    for (int64_t r = 0; r < rows; r += kLogitRows) {
      const int64_t m = std::min(kLogitRows, rows - r);
      SF_RETURN_IF_ERROR(LogitsOnDevice(first_row + r, m));
      const size_t at = out->size();
      out->resize(at + static_cast<size_t>(m * V));
      SF_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(out->data() + at, logits_.get(),
                                              static_cast<size_t>(m * V) * sizeof(float),
                                              cudaMemcpyDeviceToHost, stream_));
      SF_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
    }
    return absl::OkStatus();
  }

  int64_t ChunkFor(AttentionPhase phase, int64_t n) const {
    if (phase != AttentionPhase::kPrefill) return n;
    if (!prefill_hook_->IsExactDense() || !decode_hook_->IsExactDense()) return n;
    int64_t chunk = options_.prefill_chunk_tokens;
    if (chunk <= 0) chunk = std::is_same_v<T, float> ? n : kDefaultBf16Chunk;
    return std::max<int64_t>(1, std::min(chunk, n));
  }

  bool GraphDecode() const {
    return std::is_same_v<T, bf16> && options_.cuda_graphs && decode_hook_->IsExactDense() &&
           !host_exposed_;
  }

  absl::StatusOr<std::vector<float>> Forward(absl::Span<const TokenId> tokens, bool all_positions,
                                             AttentionPhase phase) override {
    if (!deferred_error_.ok()) {
      return Annotate(std::exchange(deferred_error_, absl::OkStatus()),
                      "an earlier CUDA engine operation failed; call Reset");
    }
    SF_CUDA_RETURN_IF_ERROR(cudaSetDevice(stage_.device));
    const ModelConfig& c = config_;
    const int64_t n = static_cast<int64_t>(tokens.size());
    if (n == 0) return absl::InvalidArgumentError("no tokens to run");
    for (int64_t i = 0; i < n; ++i) {
      if (tokens[i] < 0 || tokens[i] >= c.vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat(
            "token ", tokens[i], " at index ", i, " is outside the vocabulary of ", c.vocab_size));
      }
    }
    if (c.sliding_window && position_ + n > *c.sliding_window) {
      return absl::OutOfRangeError(absl::StrCat(
          "sequence of ", position_ + n, " tokens exceeds the model's sliding_window of ",
          *c.sliding_window, "; the engine computes full causal attention only"));
    }
    if (host_exposed_) {
      for (int l = first_layer(); l < end_layer(); ++l) SF_RETURN_IF_ERROR(ReconcileLayer(l));
    }
    const int64_t longest = *std::max_element(lengths_host_.begin(), lengths_host_.end());
    SF_RETURN_IF_ERROR(GrowCache(longest + n));
    AttentionBackend& backend_record =
        phase == AttentionPhase::kPrefill ? counters_.prefill_backend : counters_.decode_backend;
    if (n == 1 && phase == AttentionPhase::kDecode && GraphDecode()) {
      SF_ASSIGN_OR_RETURN(const bool graph_ready, PrepareDecodeGraph());
      if (graph_ready) {
        backend_record = AttentionBackend::kCuda;
        return DecodeStepWithGraph(tokens[0]);
      }
    }

    const int64_t chunk = ChunkFor(phase, n);
    const int64_t last_rows = all_positions ? std::min(chunk, kLogitRows) : 1;
    SF_RETURN_IF_ERROR(ReserveBuffers(chunk, holds_last_layer() ? last_rows : 0));
    std::vector<float> logits;
    AttentionBackend backend = AttentionBackend::kCuda;
    for (int64_t b = 0; b < n; b += chunk) {
      const int64_t m = std::min(chunk, n - b);
      SF_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(tokens_.get(), tokens.data() + b,
                                              static_cast<size_t>(m) * sizeof(TokenId),
                                              cudaMemcpyHostToDevice, stream_));
      SF_ASSIGN_OR_RETURN(AttentionBackend where, RunLayers(m, phase));
      if (where == AttentionBackend::kHostMirror) backend = where;
      if (!holds_last_layer()) {
        // The next stage reads x_ (residual()) once this returns; tokens_ is rewritten by
        // the next chunk's upload.
        SF_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
      } else if (all_positions) {
        SF_RETURN_IF_ERROR(CopyLogits(0, m, &logits));
      } else if (b + m == n) {
        SF_RETURN_IF_ERROR(CopyLogits(m - 1, 1, &logits));
      } else {
        // tokens_ is rewritten by the next chunk's upload.
        SF_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
      }
    }
    backend_record = backend;
    return logits;
  }

  // One decode step replayed from a CUDA graph of the whole forward pass (embedding to
  // logits). The token and position reach the device through a pinned buffer; attention
  // reads each head's length from the device and its grid is sized for the cache
  // capacity, so one graph serves every step until the cache or a buffer is reallocated.
  // The buffers of a graph step, and the graph when they changed since its capture. False
  // when the capture failed: the step then runs with plain launches (the same kernels,
  // so the same results) and the next step captures again. A capture has failed on a GPU
  // only with several engines capturing in one process (sfctl run --workers 12), where a
  // job must not be lost for a step that can run without its graph.
  absl::StatusOr<bool> PrepareDecodeGraph() {
    SF_RETURN_IF_ERROR(ReserveBuffers(1, holds_last_layer() ? 1 : 0));
    SF_RETURN_IF_ERROR(ReserveDecodeWorkspace(capacity_));
    SF_RETURN_IF_ERROR(logits_host_.Reserve(config_.vocab_size));
    if (graph_exec_ != nullptr && graph_generation_ == buffers_generation_) return true;
    const absl::Status captured = CaptureDecodeGraph();
    if (captured.ok()) return true;
    // The thread's last error, cleared so that the plain launches' checks do not report it.
    const cudaError_t last = cudaGetLastError();
    ++graph_capture_failures_;
    SF_LOG(WARNING) << "CUDA engine on " << device_name_ << ": decode graph not captured ("
                    << captured.message() << "; last CUDA error: " << cudaGetErrorName(last) << "; "
                    << graph_capture_failures_
                    << " failed captures in this engine); this step runs with plain launches";
    return false;
  }

  absl::StatusOr<std::vector<float>> DecodeStepWithGraph(TokenId token) {
    const ModelConfig& c = config_;
    step_host_.get()->position = position_;
    step_host_.get()->token = token;
    SF_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(step_dev_.get(), step_host_.get(), sizeof(DecodeStep),
                                            cudaMemcpyHostToDevice, stream_));
    if (!holds_first_layer()) SF_RETURN_IF_ERROR(StageInput(1));
    SF_CUDA_RETURN_IF_ERROR(cudaGraphLaunch(graph_exec_, stream_));
    if (holds_last_layer()) {
      SF_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(logits_host_.get(), logits_.get(),
                                              static_cast<size_t>(c.vocab_size) * sizeof(float),
                                              cudaMemcpyDeviceToHost, stream_));
    }
    SF_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
    for (int l = first_layer(); l < end_layer(); ++l) {
      for (int h = 0; h < num_kv_heads(); ++h) length(l, h) += 1;
      device_positions_[static_cast<size_t>(l)] = position_ + 1;
    }
    for (int l = first_layer(); l < end_layer(); ++l) {
      const double pairs = DensePairsOf(l, 1);
      counters_.decode_attention.pairs_computed += pairs;
      counters_.decode_attention.pairs_dense += pairs;
    }
    position_ += 1;
    if (!holds_last_layer()) return std::vector<float>();
    return std::vector<float>(logits_host_.get(), logits_host_.get() + c.vocab_size);
  }

  absl::Status CaptureDecodeGraph() {
    if (graph_exec_ != nullptr) cudaGraphExecDestroy(graph_exec_);
    graph_exec_ = nullptr;
    const ModelConfig& c = config_;
    const int64_t H = c.hidden_size, d = c.head_dim;
    const int64_t q_width = c.num_heads * d, kv_width = c.num_kv_heads * d;
    const int64_t qkv_width = q_width + 2 * kv_width;
    const float eps = static_cast<float>(c.rms_norm_eps);
    const int32_t* token = &step_dev_.get()->token;
    const int64_t* position = &step_dev_.get()->position;
    SF_CUDA_RETURN_IF_ERROR(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    auto record = [&]() -> absl::Status {
      // A later stage's x_ is filled from its upstream before each replay.
      if (holds_first_layer()) {
        SF_RETURN_IF_ERROR(cuda::EmbeddingGather<T>(embed_.get(), token, 1, H, x_.get(), stream_));
      }
      for (int li = first_layer(); li < end_layer(); ++li) {
        DeviceLayer<T>& L = layers_[static_cast<size_t>(li)];
        SF_RETURN_IF_ERROR(
            cuda::RmsNorm<T>(x_.get(), L.input_norm.get(), 1, H, eps, h_.get(), stream_));
        SF_RETURN_IF_ERROR(Gemm(L.qkv, h_.get(), 1, qkv_.get(), false));
        SF_RETURN_IF_ERROR(cuda::ApplyRope<T>(qkv_.get(), 1, qkv_width,
                                              c.num_heads + c.num_kv_heads, d, inv_freq_.get(),
                                              attention_scaling_, 0, position, stream_));
        SF_RETURN_IF_ERROR(cuda::AppendKv<T>(KvLayer(li), qkv_.get() + q_width,
                                             qkv_.get() + q_width + kv_width, 1, qkv_width,
                                             stream_));
        SF_RETURN_IF_ERROR(RunDenseAttention(dense_kernels_, ParamsFor(li, 1, capacity_)));
        SF_RETURN_IF_ERROR(Gemm(L.o, attn_.get(), 1, x_.get(), true));
        SF_RETURN_IF_ERROR(Mlp(L, 1, eps));
      }
      return holds_last_layer() ? LogitsOnDevice(0, 1) : absl::OkStatus();
    };
    const absl::Status recorded = record();
    if (options_.during_decode_capture) options_.during_decode_capture();
    cudaGraph_t graph = nullptr;
    const cudaError_t ended = cudaStreamEndCapture(stream_, &graph);
    SF_RETURN_IF_ERROR(Annotate(recorded, "capturing the decode graph"));
    SF_CUDA_RETURN_IF_ERROR(ended);
    const cudaError_t inst = cudaGraphInstantiate(&graph_exec_, graph, 0);
    cudaGraphDestroy(graph);
    SF_CUDA_RETURN_IF_ERROR(inst);
    graph_generation_ = buffers_generation_;
    return absl::OkStatus();
  }

  struct DecodeStep {
    int64_t position = 0;
    int32_t token = 0;
  };

  ModelConfig config_;
  EngineOptions options_;
  LayerStage stage_;           // the layers this engine holds, on which device
  const CudaStage* upstream_;  // the stage before, when stage_ does not start at 0
  ThreadPool pool_;            // for hooks on the host
  std::string device_name_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<DeviceGemm> gemm_;

  DeviceArray<T> embed_;
  std::vector<DeviceLayer<T>> layers_;
  DeviceArray<float> final_norm_;
  DeviceLinear<T> lm_head_;  // weight empty when tied to embed_
  DeviceArray<float> inv_freq_;
  float attention_scaling_ = 1.0f;

  // The device KV cache: per layer [num_kv_heads][capacity_][head_dim], lengths per
  // (layer, head) on the device (int32) and mirrored in lengths_host_.
  std::vector<DeviceArray<T>> kv_keys_, kv_values_;
  DeviceArray<int32_t> lengths_;
  std::vector<int64_t> lengths_host_;
  std::vector<int32_t> lengths_upload_;
  int64_t capacity_ = 0;
  DenseKernels dense_kernels_ = DenseKernels::kReference;
  // Quest page bounds per layer, kept when the decode hook wants them.
  std::vector<DeviceArray<float>> page_min_, page_max_;
  int64_t page_bounds_capacity_ = -1;
  // Per layer: positions appended on the device, and those the host mirror holds; a
  // layer whose device cache a device method compacted is stale on the host.
  std::vector<int64_t> device_positions_, synced_positions_;
  std::vector<bool> mirror_stale_;
  KvCache own_cache_;
  KvCache& host_cache_;        // own_cache_, or the mirror a pipeline's stages share
  bool host_exposed_ = false;  // cache() was called: check for edits before each run
  std::vector<T> staging_k_, staging_v_, q_staging_, staging_out_, upload_k_, upload_v_;
  std::vector<float> staging_float_k_, staging_float_v_, q_host_, attn_host_;

  // Activations, grown to the largest chunk so far; x_ (the residual stream) and the
  // logits are float32.
  DeviceArray<TokenId> tokens_;
  DeviceArray<float> x_, logits_;
  DeviceArray<T> h_, qkv_, attn_, gate_up_, act_;
  DeviceArray<char> workspace_;

  // Decode graph: replays while no buffer it uses was reallocated.
  PinnedArray<DecodeStep> step_host_;
  DeviceArray<DecodeStep> step_dev_;
  PinnedArray<float> logits_host_;
  cudaGraphExec_t graph_exec_ = nullptr;
  int64_t buffers_generation_ = 0;
  int64_t graph_generation_ = -1;
  int64_t graph_capture_failures_ = 0;

  DenseAttention dense_;
  AttentionHook* prefill_hook_ = &dense_;
  AttentionHook* decode_hook_ = &dense_;
  int64_t position_ = 0;
  absl::Status deferred_error_;  // from Reset or cache(), which cannot return one
};

absl::Status CheckOptions(const EngineOptions& options) {
  if (options.page_size <= 0) {
    return absl::InvalidArgumentError("EngineOptions.page_size must be positive");
  }
  if (const std::string reason = NoDeviceReason(); !reason.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the CUDA backend needs a GPU: ", reason, "; use the cpu backend"));
  }
  return absl::OkStatus();
}

// A fresh weight reader for each engine a model is loaded into (one per pipeline stage).
using WeightSourceFactory = std::function<std::unique_ptr<WeightReader>()>;

// The engine for options.layer_stages: every layer on options.cuda_device when empty,
// else one CudaEngine per stage, each reading only its own weights, behind the pipeline.
template <typename T>
absl::StatusOr<std::unique_ptr<Engine>> MakeTypedEngine(ModelConfig config,
                                                        const EngineOptions& options,
                                                        const WeightSourceFactory& make_source) {
  int device_count = 0;
  SF_CUDA_RETURN_IF_ERROR(cudaGetDeviceCount(&device_count));
  if (options.layer_stages.empty()) {
    if (options.cuda_device < 0 || options.cuda_device >= device_count) {
      return absl::InvalidArgumentError(absl::StrCat("EngineOptions.cuda_device is ",
                                                     options.cuda_device, " but ", device_count,
                                                     " GPU(s) are visible"));
    }
    const LayerStage whole{options.cuda_device, 0, config.num_layers};
    auto engine =
        std::make_unique<CudaEngine<T>>(std::move(config), options, whole, nullptr, nullptr);
    std::unique_ptr<WeightReader> source = make_source();
    SF_RETURN_IF_ERROR(engine->Init(*source));
    return std::unique_ptr<Engine>(std::move(engine));
  }
  SF_RETURN_IF_ERROR(CheckLayerStages(options.layer_stages, config.num_layers, device_count));
  SF_ASSIGN_OR_RETURN(std::vector<std::string> links, ConnectStages(options.layer_stages));
  auto mirror = std::make_unique<KvCache>(static_cast<int>(config.num_layers),
                                          static_cast<int>(config.num_kv_heads),
                                          static_cast<int>(config.head_dim), options.page_size);
  std::vector<std::unique_ptr<CudaStage>> stages;
  for (size_t i = 0; i < options.layer_stages.size(); ++i) {
    const LayerStage& stage = options.layer_stages[i];
    const CudaStage* upstream = i == 0 ? nullptr : stages.back().get();
    auto engine = std::make_unique<CudaEngine<T>>(config, options, stage, upstream, mirror.get());
    std::unique_ptr<WeightReader> source = make_source();
    SF_RETURN_IF_ERROR(
        Annotate(engine->Init(*source),
                 absl::StrCat("pipeline stage ", i, " (layers [", stage.first_layer, ", ",
                              stage.end_layer, ") on GPU ", stage.device, ")")));
    stages.push_back(std::move(engine));
  }
  return MakeCudaPipeline(std::move(config), options, std::move(stages), std::move(mirror),
                          std::move(links));
}

absl::StatusOr<std::unique_ptr<Engine>> MakeEngine(ModelConfig config, const EngineOptions& options,
                                                   const WeightSourceFactory& make_source) {
  if (options.dtype == ComputeDType::kBfloat16) {
    return MakeTypedEngine<bf16>(std::move(config), options, make_source);
  }
  return MakeTypedEngine<float>(std::move(config), options, make_source);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Engine>> CreateCudaEngine(const std::string& model_dir,
                                                         const EngineOptions& options) {
  SF_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(model_dir));
  if (options.rope_override) config.rope = *options.rope_override;
  SF_RETURN_IF_ERROR(CheckOptions(options));
  SF_ASSIGN_OR_RETURN(std::unique_ptr<Checkpoint> ckpt, Checkpoint::Open(model_dir));
  const Checkpoint& checkpoint = *ckpt;
  absl::StatusOr<std::unique_ptr<Engine>> engine =
      MakeEngine(std::move(config), options,
                 [&checkpoint] { return std::make_unique<CheckpointWeights>(checkpoint); });
  if (!engine.ok()) {
    return Annotate(engine.status(), absl::StrCat("loading ", model_dir, " on the CUDA backend"));
  }
  return engine;
}

absl::StatusOr<std::unique_ptr<Engine>> CreateCudaEngineWithRandomWeights(
    const ModelConfig& config, const EngineOptions& options, uint64_t seed, float init_std) {
  ModelConfig c = config;
  if (options.rope_override) c.rope = *options.rope_override;
  SF_RETURN_IF_ERROR(CheckOptions(options));
  absl::StatusOr<std::unique_ptr<Engine>> engine =
      MakeEngine(std::move(c), options,
                 [seed, init_std] { return std::make_unique<RandomWeights>(seed, init_std); });
  if (!engine.ok()) {
    return Annotate(engine.status(), "creating a random-weight model on the CUDA backend");
  }
  return engine;
}

}  // namespace sf::model
