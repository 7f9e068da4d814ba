// AVX2 decode matrix x vector kernels (vec_dot_rows) for Q4_0 and Q8_0: y[r] = dot(W row r, a) for
// a tile of rows per pass, sharing the activation's loads, re-layout, scales and correction terms.
//
// Performance reasoning (see avx512_gemv.h for the full argument): decode is one pass over the
// weights, so what matters is vector uops per weight byte. Per row and 2-block step of Q4_0:
// 2 loads, AND/shift/AND, 2 VPMADDUBSW, 2 VPADDW, 1 VPMADDWD, convert, scale multiply, FMA; the
// activation split into low/high halves (matching the weights' natural nibble order), its
// conversion to float scales and the -8 * sum(y) correction (added in the int16 domain, so the
// nibbles never need the subtract + sign trick) are computed once per kRowTile rows.
#include "avx2_simd.h"
#include "blocks.h"
#include "isa_kernels.h"

namespace modu::kern {

using namespace modu::blk;
using namespace modu::kern::avx2;

namespace {

constexpr int kRowTile = 4;
// Prefetch the bytes the next row tile reads at this step (kRowTile rows down), as the AVX-512
// kernels do (see prefetch_distance in avx512_gemv.h): a short fixed distance re-requests lines
// the rows below are already loading. Into L1, with the tile after it into L2 (as there).
inline size_t prefetch_distance(size_t rb) { return (size_t)kRowTile * rb; }

inline __m128i ld128(const void* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
inline __m256i ld256(const void* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline __m256i join2(const void* p0, const void* p1) { return _mm256_set_m128i(ld128(p1), ld128(p0)); }
// [s0 x4 | s1 x4]: the scales of the two blocks of a step, matching the int32 lanes of the dot.
inline __m256 scales2(float s0, float s1) { return _mm256_set_m128(_mm_set1_ps(s1), _mm_set1_ps(s0)); }

template <int R>
void rows_q4_0(int64_t nb, const uint8_t* w, size_t rb, const BlockQ8_0* y, float* out) {
  const size_t pf = prefetch_distance(rb);
  const __m256i m4 = _mm256_set1_epi8(0x0F), eight = _mm256_set1_epi8(8), ones = _mm256_set1_epi16(1);
  __m256 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const __m256i ylo = join2(y[b].qs, y[b + 1].qs), yhi = join2(y[b].qs + 16, y[b + 1].qs + 16);
    // -8 * (y pair sums) per int16 lane; |value| <= 8 * 4 * 128, and adding it to the nibble
    // products (|.| <= 2 * 2 * 15 * 128) cannot leave int16.
    const __m256i corr = _mm256_sub_epi16(_mm256_setzero_si256(),
                                          _mm256_add_epi16(_mm256_maddubs_epi16(eight, ylo), _mm256_maddubs_epi16(eight, yhi)));
    const float dy0 = h2f(y[b].d), dy1 = h2f(y[b + 1].d);
    for (int r = 0; r < R; ++r) {
      const uint8_t* x = w + (size_t)r * rb + (size_t)b * sizeof(BlockQ4_0);
      _mm_prefetch(reinterpret_cast<const char*>(x + pf), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(x + 2 * pf), _MM_HINT_T1);
      const __m256i q = join2(x + 2, x + 20);
      const __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
      const __m256i p16 = _mm256_add_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(lo, ylo), _mm256_maddubs_epi16(hi, yhi)), corr);
      const __m256i p = _mm256_madd_epi16(p16, ones);
      const BlockQ4_0* xb = reinterpret_cast<const BlockQ4_0*>(x);
      acc[r] = _mm256_fmadd_ps(scales2(h2f(xb[0].d) * dy0, h2f(xb[1].d) * dy1), _mm256_cvtepi32_ps(p), acc[r]);
    }
  }
  if (b < nb) {  // odd last block
    const __m256i yv = ld256(y[b].qs);
    const __m256i corr = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_maddubs_epi16(eight, yv));
    const float dy = h2f(y[b].d);
    for (int r = 0; r < R; ++r) {
      const BlockQ4_0* x = reinterpret_cast<const BlockQ4_0*>(w + (size_t)r * rb) + b;
      const __m256i p = _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(unpack_nibbles(x->qs), yv), corr), ones);
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x->d) * dy), _mm256_cvtepi32_ps(p), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = hsum(acc[r]);
}

// Q8_0: GGML's sign trick per row (|x| unsigned, y signed by x: exact for every int8 weight,
// -128 included), with the activation loads and its scale conversion shared by the tile.
template <int R>
void rows_q8_0(int64_t nb, const uint8_t* w, size_t rb, const BlockQ8_0* y, float* out) {
  const size_t pf = prefetch_distance(rb);
  __m256 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const __m256i yv = ld256(y[b].qs);
    const float dy = h2f(y[b].d);
    for (int r = 0; r < R; ++r) {
      const BlockQ8_0* x = reinterpret_cast<const BlockQ8_0*>(w + (size_t)r * rb) + b;
      _mm_prefetch(reinterpret_cast<const char*>(x) + pf, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(x) + 2 * pf, _MM_HINT_T1);
      const __m256i p = dot_s8(ld256(x->qs), yv);
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x->d) * dy), _mm256_cvtepi32_ps(p), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = hsum(acc[r]);
}

using RowsFn = void (*)(int64_t, const uint8_t*, size_t, const BlockQ8_0*, float*);

// Full tiles of kRowTile rows, then one tile of the 1..3 leftover rows.
inline void drive(const RowsFn fns[kRowTile + 1], int64_t n, const void* w, size_t rb, int64_t nrows, const void* a,
                  float* y) {
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const auto* act = static_cast<const BlockQ8_0*>(a);
  int64_t r = 0;
  for (; r + kRowTile <= nrows; r += kRowTile) fns[kRowTile](n / QK, x + (size_t)r * rb, rb, act, y + r);
  if (r < nrows) fns[nrows - r](n / QK, x + (size_t)r * rb, rb, act, y + r);
}

void dot_rows_q4_0(int64_t n, const void* w, size_t rb, int64_t nrows, const void* a, float* y) {
  static constexpr RowsFn fns[] = {nullptr, rows_q4_0<1>, rows_q4_0<2>, rows_q4_0<3>, rows_q4_0<4>};
  drive(fns, n, w, rb, nrows, a, y);
}
void dot_rows_q8_0(int64_t n, const void* w, size_t rb, int64_t nrows, const void* a, float* y) {
  static constexpr RowsFn fns[] = {nullptr, rows_q8_0<1>, rows_q8_0<2>, rows_q8_0<3>, rows_q8_0<4>};
  drive(fns, n, w, rb, nrows, a, y);
}

}  // namespace

void fill_avx2_gemv(KernelTable* t) {
  t->vec_dot_rows[(int)DType::Q4_0] = dot_rows_q4_0;
  t->vec_dot_rows[(int)DType::Q8_0] = dot_rows_q8_0;
}

}  // namespace modu::kern
