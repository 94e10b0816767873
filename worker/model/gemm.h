// Single-precision GEMMs of the CPU engine, on OpenBLAS (which picks AVX2 / AVX-512
// kernels for the running CPU at load time, so one x86-64 binary uses the vector units of
// whatever machine runs it). Matrices are row-major with explicit leading dimensions.
#ifndef SF_WORKER_MODEL_GEMM_H_
#define SF_WORKER_MODEL_GEMM_H_

#include <cstdint>
#include <string>

namespace sf::model {

// c[m][n] (=, or += when `accumulate`) a[m][k] * b[n][k]^T.
// REQUIRES: m, n, k >= 0; lda >= k, ldb >= k, ldc >= n; c does not alias a or b.
// Single-threaded in the calling thread: callers split the work over their own pool.
void GemmNT(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
            int64_t ldb, float* c, int64_t ldc, bool accumulate);

// c[m][n] = a[m][k] * b[k][n].
// REQUIRES: as GemmNT, with ldb >= n.
void GemmNN(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
            int64_t ldb, float* c, int64_t ldc);

// "OpenBLAS 0.3.21 ... (kernels: Cooperlake)": the library and the kernel family it
// chose for this CPU, for logs and benchmarks.
std::string GemmBackendName();

}  // namespace sf::model

#endif  // SF_WORKER_MODEL_GEMM_H_
