// Register-blocked GEMM body (4 rows x 2 vectors of C per micro-tile, K blocked for cache),
// included by one .cpp per ISA with GEMM_FN naming the function and GEMM_VEC the vector width.
#include <cstring>

namespace modu::train::detail {

namespace {
constexpr int kVec = GEMM_VEC;  // floats per vector
typedef float vecf __attribute__((vector_size(kVec * 4)));
inline vecf loadu(const float* p) { vecf v; std::memcpy(&v, p, sizeof v); return v; }
inline void storeu(float* p, vecf v) { std::memcpy(p, &v, sizeof v); }
}  // namespace

void GEMM_FN(int64_t m0, int64_t m1, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
             float* C, int64_t ldc, bool accumulate) {
  constexpr int64_t MR = 4, NR = 2 * kVec, KC = 256, MC = 64;
  if (!accumulate)
    for (int64_t i = m0; i < m1; ++i) std::memset(C + i * ldc, 0, sizeof(float) * N);
  const int64_t n_full = N / NR * NR;
  for (int64_t k0 = 0; k0 < K; k0 += KC) {
    const int64_t k1 = k0 + KC < K ? k0 + KC : K;
    for (int64_t ib = m0; ib < m1; ib += MC) {
      const int64_t ie = ib + MC < m1 ? ib + MC : m1;
      for (int64_t j = 0; j < n_full; j += NR) {
        int64_t i = ib;
        for (; i + MR <= ie; i += MR) {
          float* c0 = C + i * ldc + j;
          vecf c00 = loadu(c0), c01 = loadu(c0 + kVec);
          vecf c10 = loadu(c0 + ldc), c11 = loadu(c0 + ldc + kVec);
          vecf c20 = loadu(c0 + 2 * ldc), c21 = loadu(c0 + 2 * ldc + kVec);
          vecf c30 = loadu(c0 + 3 * ldc), c31 = loadu(c0 + 3 * ldc + kVec);
          const float* a = A + i * lda;
          for (int64_t k = k0; k < k1; ++k) {
            const vecf b0 = loadu(B + k * ldb + j), b1 = loadu(B + k * ldb + j + kVec);
            const float a0 = a[k], a1 = a[lda + k], a2 = a[2 * lda + k], a3 = a[3 * lda + k];
            c00 += a0 * b0; c01 += a0 * b1;
            c10 += a1 * b0; c11 += a1 * b1;
            c20 += a2 * b0; c21 += a2 * b1;
            c30 += a3 * b0; c31 += a3 * b1;
          }
          storeu(c0, c00); storeu(c0 + kVec, c01);
          storeu(c0 + ldc, c10); storeu(c0 + ldc + kVec, c11);
          storeu(c0 + 2 * ldc, c20); storeu(c0 + 2 * ldc + kVec, c21);
          storeu(c0 + 3 * ldc, c30); storeu(c0 + 3 * ldc + kVec, c31);
        }
        for (; i < ie; ++i) {
          float* c = C + i * ldc + j;
          vecf x0 = loadu(c), x1 = loadu(c + kVec);
          for (int64_t k = k0; k < k1; ++k) {
            const float a = A[i * lda + k];
            x0 += a * loadu(B + k * ldb + j);
            x1 += a * loadu(B + k * ldb + j + kVec);
          }
          storeu(c, x0); storeu(c + kVec, x1);
        }
      }
      for (int64_t i = ib; i < ie; ++i)  // leftover columns
        for (int64_t j = n_full; j < N; ++j) {
          float s = C[i * ldc + j];
          for (int64_t k = k0; k < k1; ++k) s += A[i * lda + k] * B[k * ldb + j];
          C[i * ldc + j] = s;
        }
    }
  }
}

}  // namespace modu::train::detail
