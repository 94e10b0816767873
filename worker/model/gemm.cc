#include "worker/model/gemm.h"

#include <cblas.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace sf::model {
namespace {

// OpenBLAS's own threads would compete with the engine's pool, which already splits
// every GEMM: run each call in the calling thread. Done once, before the first call.
void UseCallingThreadOnly() {
  static const bool once = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)once;
}

}  // namespace

void GemmNT(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
            int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  if (m == 0 || n == 0) return;
  UseCallingThreadOnly();
  if (m == 1) {  // decode: one row, a matrix-vector product (OpenBLAS's GEMV is faster)
    cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<blasint>(n), static_cast<blasint>(k), 1.0f,
                b, static_cast<blasint>(ldb), a, 1, accumulate ? 1.0f : 0.0f, c, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(m),
              static_cast<blasint>(n), static_cast<blasint>(k), 1.0f, a, static_cast<blasint>(lda),
              b, static_cast<blasint>(ldb), accumulate ? 1.0f : 0.0f, c, static_cast<blasint>(ldc));
}

void GemmNN(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
            int64_t ldb, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  UseCallingThreadOnly();
  if (m == 1) {
    cblas_sgemv(CblasRowMajor, CblasTrans, static_cast<blasint>(k), static_cast<blasint>(n), 1.0f,
                b, static_cast<blasint>(ldb), a, 1, 0.0f, c, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(m),
              static_cast<blasint>(n), static_cast<blasint>(k), 1.0f, a, static_cast<blasint>(lda),
              b, static_cast<blasint>(ldb), 0.0f, c, static_cast<blasint>(ldc));
}

std::string GemmBackendName() {
  std::string config = openblas_get_config();
  absl::StripTrailingAsciiWhitespace(&config);
  return absl::StrCat(config, " (kernels: ", openblas_get_corename(), ")");
}

}  // namespace sf::model
