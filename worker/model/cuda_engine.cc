// The CUDA backend: the CPU engine's float32 weights on the device, linear layers as cuBLAS
// SGEMMs, the other steps as kernels/cuda/engine_ops, the KV cache on the device. Dense
// attention runs on the device; any other hook runs on the host over a host KvCache that
// mirrors the device cache (synced lazily, re-uploaded when a hook compacts it), so the
// hooks see exactly what the CPU engine gives them. See docs/engine.md.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/engine_ops.h"
#include "kernels/device.h"
#include "worker/model/engine.h"
#include "worker/model/forward_engine.h"
#include "worker/model/safetensors.h"
#include "worker/model/thread_pool.h"
#include "worker/model/weights.h"

namespace sf::model {
namespace {

using cuda::CudaStatus;

// Rows of the MLP computed at once, bounding the gate/up activations' memory in long
// prefills.
constexpr int64_t kMlpChunkRows = 4096;

absl::Status CublasStatus(cublasStatus_t status, const char* what) {
  if (status == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, ": ", cublasGetStatusName(status), " (",
                                          cublasGetStatusString(status), ")"));
}

// One device allocation of T; growing it drops its contents.
template <typename T>
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

  // Makes room for at least `count` elements (contents are lost when it grows).
  absl::Status Reserve(int64_t count) {
    if (count <= size_) return absl::OkStatus();
    if (ptr_ != nullptr) cudaFree(ptr_);
    ptr_ = nullptr;
    size_ = 0;
    SF_CUDA_RETURN_IF_ERROR(cudaMalloc(&ptr_, static_cast<size_t>(count) * sizeof(T)));
    size_ = count;
    return absl::OkStatus();
  }
  absl::Status Upload(const std::vector<T>& host) {
    SF_RETURN_IF_ERROR(Reserve(static_cast<int64_t>(host.size())));
    if (host.empty()) return absl::OkStatus();
    return CudaStatus(
        cudaMemcpy(ptr_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice),
        "cudaMemcpy (upload)");
  }
  T* get() const { return ptr_; }
  int64_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  T* ptr_ = nullptr;
  int64_t size_ = 0;
};

struct DeviceLinear {
  int64_t in = 0;
  int64_t out = 0;
  DeviceArray<float> weight;
  DeviceArray<float> bias;  // empty: no bias
};

struct DeviceLayer {
  DeviceArray<float> input_norm, post_norm;
  DeviceLinear qkv, o, gate_up, down;
};

absl::Status UploadLinear(Linear& host, DeviceLinear* dev) {
  dev->in = host.in;
  dev->out = host.out;
  SF_RETURN_IF_ERROR(dev->weight.Upload(host.weight));
  SF_RETURN_IF_ERROR(dev->bias.Upload(host.bias));
  host.weight = {};
  host.bias = {};
  return absl::OkStatus();
}

class CudaEngine : public ForwardEngine {
 public:
  CudaEngine(ModelConfig config, const EngineOptions& options)
      : config_(std::move(config)),
        options_(options),
        pool_(options.num_threads),
        host_cache_(static_cast<int>(config_.num_layers), static_cast<int>(config_.num_kv_heads),
                    static_cast<int>(config_.head_dim), options.page_size) {}

  ~CudaEngine() override {
    if (cublas_ != nullptr) cublasDestroy(cublas_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  absl::Status Init(const Checkpoint& ckpt) {
    const ModelConfig& c = config_;
    if (c.head_dim % 2 != 0 || c.head_dim > 256) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the CUDA engine needs an even head_dim of at most 256; this model has ", c.head_dim));
    }
    if (c.num_heads % c.num_kv_heads != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          c.num_heads, " attention heads do not divide into ", c.num_kv_heads, " KV heads"));
    }
    SF_CUDA_RETURN_IF_ERROR(cudaSetDevice(0));
    cudaDeviceProp prop;
    SF_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, 0));
    device_name_ = prop.name;
    SF_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    SF_RETURN_IF_ERROR(CublasStatus(cublasCreate(&cublas_), "cublasCreate"));
    SF_RETURN_IF_ERROR(CublasStatus(cublasSetStream(cublas_, stream_), "cublasSetStream"));
    // Plain float32 SGEMM: no TF32 tensor cores, so results match the CPU engine to 1e-4.
    SF_RETURN_IF_ERROR(
        CublasStatus(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH), "cublasSetMathMode"));

    SF_ASSIGN_OR_RETURN(ModelWeights w, LoadModelWeights(ckpt, c));
    SF_RETURN_IF_ERROR(embed_.Upload(w.embed));
    w.embed = {};
    layers_.resize(w.layers.size());
    for (size_t i = 0; i < w.layers.size(); ++i) {
      LayerWeights& host = w.layers[i];
      DeviceLayer& dev = layers_[i];
      SF_RETURN_IF_ERROR(dev.input_norm.Upload(host.input_norm));
      SF_RETURN_IF_ERROR(dev.post_norm.Upload(host.post_norm));
      SF_RETURN_IF_ERROR(UploadLinear(host.qkv, &dev.qkv));
      SF_RETURN_IF_ERROR(UploadLinear(host.o, &dev.o));
      SF_RETURN_IF_ERROR(UploadLinear(host.gate_up, &dev.gate_up));
      SF_RETURN_IF_ERROR(UploadLinear(host.down, &dev.down));
      host = {};
    }
    SF_RETURN_IF_ERROR(final_norm_.Upload(w.final_norm));
    SF_RETURN_IF_ERROR(UploadLinear(w.lm_head, &lm_head_));
    SF_ASSIGN_OR_RETURN(RopeTable rope, ComputeRope(c));
    attention_scaling_ = rope.attention_scaling;
    SF_RETURN_IF_ERROR(inv_freq_.Upload(rope.inv_freq));

    const size_t slots = static_cast<size_t>(c.num_layers * c.num_kv_heads);
    lengths_host_.assign(slots, 0);
    SF_RETURN_IF_ERROR(lengths_.Reserve(static_cast<int64_t>(slots)));
    SF_CUDA_RETURN_IF_ERROR(cudaMemset(lengths_.get(), 0, slots * sizeof(int64_t)));
    kv_keys_.resize(static_cast<size_t>(c.num_layers));
    kv_values_.resize(static_cast<size_t>(c.num_layers));
    device_positions_.assign(static_cast<size_t>(c.num_layers), 0);
    synced_positions_.assign(static_cast<size_t>(c.num_layers), 0);
    SF_RETURN_IF_ERROR(GrowCache(std::max<int64_t>(options_.reserve_tokens, 256)));
    // The uploads above ran on the legacy default stream, which does not order the
    // non-blocking stream_: wait for them before any kernel reads the weights.
    return CudaStatus(cudaDeviceSynchronize(), "uploading the weights");
  }

  const ModelConfig& config() const override { return config_; }

  void Reset() override {
    host_cache_.Clear();
    std::fill(lengths_host_.begin(), lengths_host_.end(), 0);
    std::fill(device_positions_.begin(), device_positions_.end(), 0);
    std::fill(synced_positions_.begin(), synced_positions_.end(), 0);
    const absl::Status s = CudaStatus(
        cudaMemsetAsync(lengths_.get(), 0, lengths_host_.size() * sizeof(int64_t), stream_),
        "resetting the KV cache lengths");
    if (!s.ok() && deferred_error_.ok()) deferred_error_ = s;
    position_ = 0;
  }

  int64_t position() const override { return position_; }

  // The host mirror, brought up to date; edits to it (Compact, Clear) reach the device
  // at the next Prefill or Decode.
  KvCache& cache() override {
    for (int l = 0; l < config_.num_layers; ++l) {
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
  std::string BackendName() const override { return absl::StrCat("cuda(", device_name_, ")"); }

 private:
  int num_kv_heads() const { return static_cast<int>(config_.num_kv_heads); }
  int64_t& length(int layer, int head) {
    return lengths_host_[static_cast<size_t>(layer * config_.num_kv_heads + head)];
  }
  cuda::DeviceKvLayer KvLayer(int layer) const {
    cuda::DeviceKvLayer kv;
    kv.keys = kv_keys_[static_cast<size_t>(layer)].get();
    kv.values = kv_values_[static_cast<size_t>(layer)].get();
    kv.lengths = lengths_.get() + layer * config_.num_kv_heads;
    kv.capacity = capacity_;
    kv.num_kv_heads = num_kv_heads();
    kv.head_dim = static_cast<int>(config_.head_dim);
    return kv;
  }

  // Makes room for `rows` rows per head, keeping what the cache holds.
  absl::Status GrowCache(int64_t rows) {
    if (rows <= capacity_) return absl::OkStatus();
    // A quarter more than asked, so decoding does not grow it every step, and no doubling,
    // so a long prompt does not take twice its memory.
    const int64_t wanted = std::max(rows, capacity_ + capacity_ / 4);
    const int64_t new_capacity = (wanted + 255) / 256 * 256;
    const int64_t d = config_.head_dim, heads = config_.num_kv_heads;
    for (int64_t l = 0; l < config_.num_layers; ++l) {
      for (auto* arrays : {&kv_keys_, &kv_values_}) {
        DeviceArray<float> grown;
        SF_RETURN_IF_ERROR(
            Annotate(grown.Reserve(heads * new_capacity * d),
                     absl::StrCat("growing the KV cache to ", new_capacity, " tokens per head")));
        DeviceArray<float>& old = (*arrays)[static_cast<size_t>(l)];
        if (capacity_ > 0) {
          const size_t old_pitch = static_cast<size_t>(capacity_ * d) * sizeof(float);
          SF_CUDA_RETURN_IF_ERROR(cudaMemcpy2DAsync(
              grown.get(), static_cast<size_t>(new_capacity * d) * sizeof(float), old.get(),
              old_pitch, old_pitch, static_cast<size_t>(heads), cudaMemcpyDeviceToDevice, stream_));
          SF_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
        }
        old = std::move(grown);
      }
    }
    capacity_ = new_capacity;
    return absl::OkStatus();
  }

  // Appends to the host mirror the rows of `layer` the device holds and the host does not
  // (those appended since the last sync: the same positions for every head).
  absl::Status SyncLayerToHost(int layer) {
    const size_t li = static_cast<size_t>(layer);
    const int64_t pending = device_positions_[li] - synced_positions_[li];
    if (pending == 0) return absl::OkStatus();
    const int64_t d = config_.head_dim, heads = config_.num_kv_heads;
    staging_k_.resize(static_cast<size_t>(pending * heads * d));
    staging_v_.resize(staging_k_.size());
    const size_t row_bytes = static_cast<size_t>(d) * sizeof(float);
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
    host_cache_.Append(layer, static_cast<int>(pending), staging_k_.data(), staging_v_.data(),
                       heads * d, synced_positions_[li]);
    synced_positions_[li] = device_positions_[li];
    return absl::OkStatus();
  }

  // After a hook (or a caller through cache()) changed the host mirror of `layer`, makes
  // the device cache hold the same rows. No copy when nothing changed.
  absl::Status ReconcileLayer(int layer) {
    const size_t li = static_cast<size_t>(layer);
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
      const size_t bytes = static_cast<size_t>(rows * d) * sizeof(float);
      const int64_t offset = h * capacity_ * d;
      if (bytes > 0) {
        SF_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(kv_keys_[li].get() + offset,
                                                host_cache_.keys(layer, h), bytes,
                                                cudaMemcpyHostToDevice, stream_));
        SF_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(kv_values_[li].get() + offset,
                                                host_cache_.values(layer, h), bytes,
                                                cudaMemcpyHostToDevice, stream_));
      }
      length(layer, h) = rows;
    }
    int64_t* lengths = &length(layer, 0);
    SF_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(lengths_.get() + layer * config_.num_kv_heads, lengths,
                                            sizeof(int64_t) * num_kv_heads(),
                                            cudaMemcpyHostToDevice, stream_));
    // The host buffers must outlive the copies.
    return CudaStatus(cudaStreamSynchronize(stream_), "uploading the compacted KV cache");
  }

  // y[n][out] (=|+=) x[n][in] W^T (+ b), rows of y ldy floats apart.
  absl::Status Gemm(const DeviceLinear& lin, const float* weight, const float* x, int64_t n,
                    float* y, int64_t ldy, bool accumulate) {
    if (lin.out > INT_MAX || lin.in > INT_MAX || n > INT_MAX || ldy > INT_MAX) {
      return absl::InvalidArgumentError("GEMM dimensions exceed cuBLAS's int range");
    }
    const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    // Row-major y = x W^T is column-major y^T = W^T(op T on W's [in x out]) x^T.
    SF_RETURN_IF_ERROR(
        CublasStatus(cublasSgemm(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(lin.out),
                                 static_cast<int>(n), static_cast<int>(lin.in), &alpha, weight,
                                 static_cast<int>(lin.in), x, static_cast<int>(lin.in), &beta, y,
                                 static_cast<int>(ldy)),
                     "cublasSgemm"));
    if (!lin.bias.empty()) return cuda::AddBias(y, lin.bias.get(), n, lin.out, ldy, stream_);
    return absl::OkStatus();
  }
  absl::Status Gemm(const DeviceLinear& lin, const float* x, int64_t n, float* y, bool accumulate) {
    return Gemm(lin, lin.weight.get(), x, n, y, lin.out, accumulate);
  }

  absl::Status ReserveBuffers(int64_t n, int64_t logit_rows) {
    const ModelConfig& c = config_;
    const int64_t H = c.hidden_size, d = c.head_dim, I = c.intermediate_size;
    const int64_t qkv_width = (c.num_heads + 2 * c.num_kv_heads) * d;
    const int64_t mlp_rows = std::min(n, kMlpChunkRows);
    SF_RETURN_IF_ERROR(tokens_.Reserve(n));
    SF_RETURN_IF_ERROR(x_.Reserve(n * H));
    SF_RETURN_IF_ERROR(h_.Reserve(n * H));
    SF_RETURN_IF_ERROR(qkv_.Reserve(n * qkv_width));
    SF_RETURN_IF_ERROR(attn_.Reserve(n * c.num_heads * d));
    SF_RETURN_IF_ERROR(gate_up_.Reserve(mlp_rows * 2 * I));
    SF_RETURN_IF_ERROR(act_.Reserve(mlp_rows * I));
    SF_RETURN_IF_ERROR(logits_.Reserve(logit_rows * c.vocab_size));
    return absl::OkStatus();
  }

  // Dense pairs of the layer's call, as DensePairs(call) on the host mirror's lengths.
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

  absl::StatusOr<std::vector<float>> Forward(absl::Span<const TokenId> tokens, bool all_positions,
                                             AttentionPhase phase) override {
    if (!deferred_error_.ok()) {
      return Annotate(std::exchange(deferred_error_, absl::OkStatus()),
                      "an earlier CUDA engine operation failed; call Reset");
    }
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
      for (int l = 0; l < c.num_layers; ++l) SF_RETURN_IF_ERROR(ReconcileLayer(l));
    }
    const int64_t H = c.hidden_size, d = c.head_dim, I = c.intermediate_size;
    const int64_t q_width = c.num_heads * d, kv_width = c.num_kv_heads * d;
    const int64_t qkv_width = q_width + 2 * kv_width;
    const int64_t pos0 = position_;
    const int64_t first_row = all_positions ? 0 : n - 1;
    const int64_t rows = n - first_row;
    const float eps = static_cast<float>(c.rms_norm_eps);

    SF_RETURN_IF_ERROR(ReserveBuffers(n, rows));
    const int64_t max_length = *std::max_element(lengths_host_.begin(), lengths_host_.end()) + n;
    SF_RETURN_IF_ERROR(GrowCache(max_length));
    SF_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(tokens_.get(), tokens.data(),
                                            static_cast<size_t>(n) * sizeof(TokenId),
                                            cudaMemcpyHostToDevice, stream_));
    SF_RETURN_IF_ERROR(cuda::EmbeddingGather(embed_.get(), tokens_.get(), n, H, x_.get(), stream_));

    AttentionHook* hook = phase == AttentionPhase::kPrefill ? prefill_hook_ : decode_hook_;
    AttentionStats& stats = phase == AttentionPhase::kPrefill ? counters_.prefill_attention
                                                              : counters_.decode_attention;
    for (int li = 0; li < c.num_layers; ++li) {
      DeviceLayer& L = layers_[static_cast<size_t>(li)];
      SF_RETURN_IF_ERROR(cuda::RmsNorm(x_.get(), L.input_norm.get(), n, H, eps, h_.get(), stream_));
      SF_RETURN_IF_ERROR(Gemm(L.qkv, h_.get(), n, qkv_.get(), false));
      SF_RETURN_IF_ERROR(cuda::ApplyRope(qkv_.get(), n, qkv_width, c.num_heads + c.num_kv_heads, d,
                                         inv_freq_.get(), attention_scaling_, pos0, stream_));
      SF_RETURN_IF_ERROR(cuda::AppendKv(KvLayer(li), qkv_.get() + q_width,
                                        qkv_.get() + q_width + kv_width, n, qkv_width, stream_));
      for (int h = 0; h < num_kv_heads(); ++h) length(li, h) += n;
      device_positions_[static_cast<size_t>(li)] = pos0 + n;

      // The hooks' view of this layer: host copies of the queries and of the cache, made
      // once and only when a hook that is not exactly dense runs.
      bool on_host = false;
      AttentionCall call;
      call.layer = li;
      call.phase = phase;
      call.num_queries = static_cast<int>(n);
      call.num_q_heads = static_cast<int>(c.num_heads);
      call.num_kv_heads = static_cast<int>(c.num_kv_heads);
      call.head_dim = static_cast<int>(d);
      call.q_row_stride = q_width;  // the host copy made by to_host
      call.softmax_scale = 1.0f / std::sqrt(static_cast<float>(d));
      call.first_position = pos0;
      call.cache = &host_cache_;
      call.out_row_stride = q_width;
      call.pool = &pool_;
      auto to_host = [&]() -> absl::Status {
        if (on_host) return absl::OkStatus();
        SF_RETURN_IF_ERROR(SyncLayerToHost(li));
        // Only the queries of each q/k/v row (keys and values reach the hook through the
        // cache mirror).
        q_host_.resize(static_cast<size_t>(n * q_width));
        attn_host_.resize(static_cast<size_t>(n * q_width));
        const size_t q_bytes = static_cast<size_t>(q_width) * sizeof(float);
        SF_CUDA_RETURN_IF_ERROR(cudaMemcpy2DAsync(
            q_host_.data(), q_bytes, qkv_.get(), static_cast<size_t>(qkv_width) * sizeof(float),
            q_bytes, static_cast<size_t>(n), cudaMemcpyDeviceToHost, stream_));
        SF_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
        call.q = q_host_.data();
        call.out = attn_host_.data();
        on_host = true;
        return absl::OkStatus();
      };

      if (hook->IsExactDense()) {
        cuda::AttentionArgs args;
        args.q = qkv_.get();
        args.q_row_stride = qkv_width;
        args.layer = KvLayer(li);
        args.n = n;
        args.num_q_heads = static_cast<int>(c.num_heads);
        args.softmax_scale = call.softmax_scale;
        args.max_length = 0;
        for (int h = 0; h < num_kv_heads(); ++h)
          args.max_length = std::max(args.max_length, length(li, h));
        args.out = attn_.get();
        args.out_row_stride = q_width;
        if (n == 1) {
          SF_RETURN_IF_ERROR(workspace_.Reserve(cuda::DecodeWorkspaceFloats(
              static_cast<int>(c.num_heads), static_cast<int>(d), args.max_length)));
          args.workspace = workspace_.get();
        }
        SF_RETURN_IF_ERROR(Annotate(cuda::CausalAttention(args, stream_),
                                    absl::StrCat("dense attention, layer ", li)));
        const double pairs = DensePairsOf(li, n);
        stats.pairs_computed += pairs;
        stats.pairs_dense += pairs;
      } else {
        SF_RETURN_IF_ERROR(to_host());
        SF_RETURN_IF_ERROR(Annotate(hook->Attend(call, &stats),
                                    absl::StrCat(hook->Name(), " attention, layer ", li)));
        SF_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(attn_.get(), attn_host_.data(),
                                                attn_host_.size() * sizeof(float),
                                                cudaMemcpyHostToDevice, stream_));
      }
      if (phase == AttentionPhase::kPrefill) {
        // As the CPU engine: the prefill method's AfterPrefill, then the decode method's
        // (SnapKV-style eviction). Exactly dense hooks have nothing to do there.
        for (AttentionHook* after : {prefill_hook_, decode_hook_}) {
          if (after == decode_hook_ && decode_hook_ == prefill_hook_) break;
          if (after->IsExactDense()) continue;
          SF_RETURN_IF_ERROR(to_host());
          SF_RETURN_IF_ERROR(Annotate(after->AfterPrefill(call),
                                      absl::StrCat(after->Name(), " after prefill, layer ", li)));
        }
      }
      if (on_host) {
        SF_RETURN_IF_ERROR(ReconcileLayer(li));
        // attn_host_ is read by the upload above; keep it until the stream has it.
        SF_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
      }

      SF_RETURN_IF_ERROR(Gemm(L.o, attn_.get(), n, x_.get(), true));
      SF_RETURN_IF_ERROR(cuda::RmsNorm(x_.get(), L.post_norm.get(), n, H, eps, h_.get(), stream_));
      for (int64_t r0 = 0; r0 < n; r0 += kMlpChunkRows) {
        const int64_t m = std::min(kMlpChunkRows, n - r0);
        SF_RETURN_IF_ERROR(Gemm(L.gate_up, h_.get() + r0 * H, m, gate_up_.get(), false));
        SF_RETURN_IF_ERROR(cuda::SiluMul(gate_up_.get(), m, I, act_.get(), stream_));
        SF_RETURN_IF_ERROR(Gemm(L.down, act_.get(), m, x_.get() + r0 * H, true));
      }
    }
    position_ += n;
    SF_RETURN_IF_ERROR(cuda::RmsNorm(x_.get() + first_row * H, final_norm_.get(), rows, H, eps,
                                     h_.get(), stream_));
    const float* head = c.tie_word_embeddings ? embed_.get() : lm_head_.weight.get();
    SF_RETURN_IF_ERROR(Gemm(lm_head_, head, h_.get(), rows, logits_.get(), c.vocab_size, false));
    std::vector<float> logits(static_cast<size_t>(rows * c.vocab_size));
    SF_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(logits.data(), logits_.get(),
                                            logits.size() * sizeof(float), cudaMemcpyDeviceToHost,
                                            stream_));
    SF_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
    return logits;
  }

  ModelConfig config_;
  EngineOptions options_;
  ThreadPool pool_;  // for hooks on the host
  std::string device_name_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;

  DeviceArray<float> embed_;
  std::vector<DeviceLayer> layers_;
  DeviceArray<float> final_norm_;
  DeviceLinear lm_head_;  // weight empty when tied to embed_
  DeviceArray<float> inv_freq_;
  float attention_scaling_ = 1.0f;

  // The device KV cache: per layer [num_kv_heads][capacity_][head_dim], lengths per
  // (layer, head) on the device and mirrored in lengths_host_.
  std::vector<DeviceArray<float>> kv_keys_, kv_values_;
  DeviceArray<int64_t> lengths_;
  std::vector<int64_t> lengths_host_;
  int64_t capacity_ = 0;
  // Per layer: positions appended on the device, and those the host mirror holds.
  std::vector<int64_t> device_positions_, synced_positions_;
  KvCache host_cache_;
  bool host_exposed_ = false;  // cache() was called: check for edits before each run
  std::vector<float> staging_k_, staging_v_, q_host_, attn_host_;

  // Activations, grown to the largest run so far.
  DeviceArray<TokenId> tokens_;
  DeviceArray<float> x_, h_, qkv_, attn_, gate_up_, act_, logits_, workspace_;

  DenseAttention dense_;
  AttentionHook* prefill_hook_ = &dense_;
  AttentionHook* decode_hook_ = &dense_;
  int64_t position_ = 0;
  absl::Status deferred_error_;  // from Reset or cache(), which cannot return one
};

}  // namespace

absl::StatusOr<std::unique_ptr<Engine>> CreateCudaEngine(const std::string& model_dir,
                                                         const EngineOptions& options) {
  SF_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(model_dir));
  if (options.rope_override) config.rope = *options.rope_override;
  if (options.page_size <= 0) {
    return absl::InvalidArgumentError("EngineOptions.page_size must be positive");
  }
  if (const std::string reason = NoDeviceReason(); !reason.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the CUDA backend needs a GPU: ", reason, "; use the cpu backend"));
  }
  SF_ASSIGN_OR_RETURN(std::unique_ptr<Checkpoint> ckpt, Checkpoint::Open(model_dir));
  auto engine = std::make_unique<CudaEngine>(std::move(config), options);
  SF_RETURN_IF_ERROR(
      Annotate(engine->Init(*ckpt), absl::StrCat("loading ", model_dir, " on the CUDA backend")));
  return std::unique_ptr<Engine>(std::move(engine));
}

}  // namespace sf::model
