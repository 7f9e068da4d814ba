// GEMM dispatch (ISA chosen once from CPUID; MODU_ISA=scalar forces the baseline) and threading.
#include "gemm.h"

#include <cstdlib>
#include <cstring>
#include <string>

namespace modu::train {

namespace {
detail::GemmRowsFn pick() {
  const char* env = std::getenv("MODU_ISA");
  const std::string isa = env ? env : "";
  __builtin_cpu_init();
  if (isa != "scalar" && isa != "avx2" && __builtin_cpu_supports("avx512f")) return detail::gemm_rows_avx512;
  if (isa != "scalar" && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return detail::gemm_rows_avx2;
  return detail::gemm_rows_generic;
}

detail::GemmRowsFn gemm_fn() {
  static const detail::GemmRowsFn fn = pick();
  return fn;
}

void gemm_rows_f64(int64_t m0, int64_t m1, int64_t N, int64_t K, const double* A, int64_t lda, const double* B,
                   int64_t ldb, double* C, int64_t ldc, bool accumulate) {
  for (int64_t i = m0; i < m1; ++i) {
    double* c = C + i * ldc;
    if (!accumulate) std::memset(c, 0, sizeof(double) * N);
    for (int64_t k = 0; k < K; ++k) {
      const double a = A[i * lda + k];
      const double* b = B + k * ldb;
      for (int64_t j = 0; j < N; ++j) c[j] += a * b[j];
    }
  }
}
}  // namespace

void gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
          int64_t ldc, bool accumulate, ThreadPool& pool) {
  const detail::GemmRowsFn fn = gemm_fn();
  pool.parallel_for(M, [&](int64_t m0, int64_t m1) { fn(m0, m1, N, K, A, lda, B, ldb, C, ldc, accumulate); }, 4);
}

void gemm(int64_t M, int64_t N, int64_t K, const double* A, int64_t lda, const double* B, int64_t ldb, double* C,
          int64_t ldc, bool accumulate, ThreadPool& pool) {
  pool.parallel_for(M, [&](int64_t m0, int64_t m1) { gemm_rows_f64(m0, m1, N, K, A, lda, B, ldb, C, ldc, accumulate); });
}

void gemm_serial(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
                 int64_t ldc, bool accumulate) {
  gemm_fn()(0, M, N, K, A, lda, B, ldb, C, ldc, accumulate);
}

void gemm_serial(int64_t M, int64_t N, int64_t K, const double* A, int64_t lda, const double* B, int64_t ldb,
                 double* C, int64_t ldc, bool accumulate) {
  gemm_rows_f64(0, M, N, K, A, lda, B, ldb, C, ldc, accumulate);
}

template <class T>
void transpose(const T* src, int64_t rows, int64_t cols, T* dst) {
  constexpr int64_t BS = 32;
  for (int64_t r0 = 0; r0 < rows; r0 += BS)
    for (int64_t c0 = 0; c0 < cols; c0 += BS)
      for (int64_t r = r0; r < rows && r < r0 + BS; ++r)
        for (int64_t c = c0; c < cols && c < c0 + BS; ++c) dst[c * rows + r] = src[r * cols + c];
}
template void transpose<float>(const float*, int64_t, int64_t, float*);
template void transpose<double>(const double*, int64_t, int64_t, double*);

}  // namespace modu::train
