// Plain float tensors for the CPU reference attention: an owning [heads, len, dim]
// buffer and a non-owning strided view, so GQA heads and sub-ranges of a sequence are
// addressed without copying.
#ifndef SF_KERNELS_CPU_TENSOR_H_
#define SF_KERNELS_CPU_TENSOR_H_

#include <cstdint>
#include <vector>

namespace sf::kernels {

// A read-only view of [heads, len, dim] floats; `dim` is contiguous.
struct TensorView {
  const float* data = nullptr;
  int64_t heads = 0;
  int64_t len = 0;
  int64_t dim = 0;
  int64_t head_stride = 0;  // floats between heads
  int64_t row_stride = 0;   // floats between rows of one head

  const float* Row(int64_t h, int64_t i) const { return data + h * head_stride + i * row_stride; }
  // Rows [begin, begin + count) of every head, as a view of the same memory.
  TensorView Rows(int64_t begin, int64_t count) const {
    TensorView v = *this;
    v.data = data + begin * row_stride;
    v.len = count;
    return v;
  }
};

// An owning, contiguous [heads, len, dim] float tensor.
struct Tensor {
  int64_t heads = 0;
  int64_t len = 0;
  int64_t dim = 0;
  std::vector<float> data;

  Tensor() = default;
  Tensor(int64_t h, int64_t l, int64_t d) : heads(h), len(l), dim(d), data(h * l * d, 0.0f) {}

  float* Row(int64_t h, int64_t i) { return data.data() + (h * len + i) * dim; }
  const float* Row(int64_t h, int64_t i) const { return data.data() + (h * len + i) * dim; }
  TensorView View() const { return {data.data(), heads, len, dim, len * dim, dim}; }
};

}  // namespace sf::kernels

#endif  // SF_KERNELS_CPU_TENSOR_H_
