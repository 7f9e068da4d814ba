// Dense float32 matrix multiply for training: C (+)= A B, row-major, threaded over rows of C.
// Each element of C is summed in a fixed order, so results do not depend on the thread count.
#pragma once

#include <cstdint>

#include "modu/core/threadpool.h"

namespace modu::train {

// C[M,N] = (accumulate ? C : 0) + A[M,K] * B[K,N]; lda/ldb/ldc are row strides in elements.
void gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
          int64_t ldc, bool accumulate, ThreadPool& pool);
void gemm(int64_t M, int64_t N, int64_t K, const double* A, int64_t lda, const double* B, int64_t ldb, double* C,
          int64_t ldc, bool accumulate, ThreadPool& pool);

// dst[c, r] = src[r, c] for src [rows, cols].
template <class T>
void transpose(const T* src, int64_t rows, int64_t cols, T* dst);

namespace detail {
// Rows [m0, m1) of C; the body is compiled once per ISA (gemm_body.h).
using GemmRowsFn = void (*)(int64_t m0, int64_t m1, int64_t N, int64_t K, const float* A, int64_t lda,
                            const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate);
void gemm_rows_generic(int64_t, int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t, float*,
                       int64_t, bool);
void gemm_rows_avx2(int64_t, int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t, float*,
                    int64_t, bool);
void gemm_rows_avx512(int64_t, int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t, float*,
                      int64_t, bool);
}  // namespace detail

}  // namespace modu::train

namespace modu::train {
// Single-threaded variants for use inside an already parallel region.
void gemm_serial(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
                 int64_t ldc, bool accumulate);
void gemm_serial(int64_t M, int64_t N, int64_t K, const double* A, int64_t lda, const double* B, int64_t ldb,
                 double* C, int64_t ldc, bool accumulate);
}  // namespace modu::train
