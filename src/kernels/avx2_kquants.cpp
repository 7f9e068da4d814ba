// AVX2 kernels for the K-quant dots Q4_K, Q5_K and Q6_K x Q8_K (Q4_K_M / Q5_K_M models are mostly
// these; Q2_K and Q3_K fall back to the scalar reference).
//
// Performance notes: a super-block covers 256 elements, so the per-block overhead (scale unpacking,
// one float convert + FMA) is amortised over 8 maddubs. The min/offset terms never touch the
// weights: they are folded in via the activation's precomputed bsums (sum of 16 q8 values), which
// replaces a per-element subtraction by one madd over 16 int16 per super-block.
#include "avx2_simd.h"
#include "blocks.h"
#include "isa_kernels.h"

namespace modu::kern {

using namespace modu::blk;
using namespace modu::kern::avx2;

namespace {

inline __m256i ld256(const void* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

float dot_q4_k(int64_t n, const void* w, const void* a) {
  const BlockQ4_K* x = static_cast<const BlockQ4_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  __m256 acc = _mm256_setzero_ps(), acc_m = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const float d = y[b].d * h2f(x[b].d);
    const float dmin = y[b].d * h2f(x[b].dmin);
    uint8_t sc[8], mn[8];
    for (int j = 0; j < 8; ++j) k4_scale_min(j, x[b].scales, &sc[j], &mn[j]);

    // Mins: sum_j mn[j] * (bsums[2j] + bsums[2j+1]) as one madd of 16 int16 pairs.
    const __m256i mins16 = _mm256_setr_epi16(mn[0], mn[0], mn[1], mn[1], mn[2], mn[2], mn[3], mn[3], mn[4], mn[4],
                                             mn[5], mn[5], mn[6], mn[6], mn[7], mn[7]);
    const __m256i pm = _mm256_madd_epi16(ld256(y[b].bsums), mins16);
    acc_m = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(pm), acc_m);

    // 4 chunks of 64 elements: low nibbles = sub-block 2c, high nibbles = 2c+1.
    __m256i sumi = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      const __m256i q = ld256(x[b].qs + 32 * c);
      const __m256i lo = _mm256_and_si256(q, low4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
      // maddubs pairs <= 15*127*2, then madd by the 6-bit scale: exact in int32.
      const __m256i plo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, ld256(y[b].qs + 64 * c)), _mm256_set1_epi16(sc[2 * c]));
      const __m256i phi =
          _mm256_madd_epi16(_mm256_maddubs_epi16(hi, ld256(y[b].qs + 64 * c + 32)), _mm256_set1_epi16(sc[2 * c + 1]));
      sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(plo, phi));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum(acc) - hsum(acc_m);
}

// Q5_K = Q4_K plus a 5th bit per element: qh[l] bit j belongs to element 32j + l, so for 64-element
// chunk c the low-nibble half takes bit 2c and the high half bit 2c+1 (values <= 31: maddubs-safe).
float dot_q5_k(int64_t n, const void* w, const void* a) {
  const BlockQ5_K* x = static_cast<const BlockQ5_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  const __m256i low4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
  __m256 acc = _mm256_setzero_ps(), acc_m = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const float d = y[b].d * h2f(x[b].d);
    const float dmin = y[b].d * h2f(x[b].dmin);
    uint8_t sc[8], mn[8];
    for (int j = 0; j < 8; ++j) k4_scale_min(j, x[b].scales, &sc[j], &mn[j]);
    const __m256i mins16 = _mm256_setr_epi16(mn[0], mn[0], mn[1], mn[1], mn[2], mn[2], mn[3], mn[3], mn[4], mn[4],
                                             mn[5], mn[5], mn[6], mn[6], mn[7], mn[7]);
    acc_m = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(_mm256_madd_epi16(ld256(y[b].bsums), mins16)), acc_m);
    const __m256i qh = ld256(x[b].qh);
    __m256i sumi = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      const __m256i q = ld256(x[b].qs + 32 * c);
      // (qh >> k) & 1 per byte, moved to bit 4; the 16-bit shift leaks only bits the mask drops.
      const __m256i hlo = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one), 4);
      const __m256i hhi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one), 4);
      const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, low4), hlo);
      const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), low4), hhi);
      const __m256i plo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, ld256(y[b].qs + 64 * c)), _mm256_set1_epi16(sc[2 * c]));
      const __m256i phi =
          _mm256_madd_epi16(_mm256_maddubs_epi16(hi, ld256(y[b].qs + 64 * c + 32)), _mm256_set1_epi16(sc[2 * c + 1]));
      sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(plo, phi));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum(acc) - hsum(acc_m);
}

float dot_q6_k(int64_t n, const void* w, const void* a) {
  const BlockQ6_K* x = static_cast<const BlockQ6_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i m2 = _mm256_set1_epi8(0x03), m30 = _mm256_set1_epi8(0x30);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const float d = y[b].d * h2f(x[b].d);
    const int8_t* sc = x[b].scales;
    // Weights are stored as q+32 (0..63, fine for maddubs' unsigned side); the -32 is applied once:
    // sum_j sc_j * sum(q8 in j) * 32 from bsums.
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc)));
    const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(ld256(y[b].bsums), sc16), 5);

    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i ql0 = ld256(x[b].ql + 64 * h), ql1 = ld256(x[b].ql + 64 * h + 32);
      const __m256i qh = ld256(x[b].qh + 32 * h);
      // Element groups of 32 within this half: g0 = ql0 low | qh bits 0-1, g1 = ql1 low | bits 2-3,
      // g2 = ql0 high | bits 4-5, g3 = ql1 high | bits 6-7. Shifts are 16-bit but the masks applied
      // afterwards drop any bits that crossed a byte boundary.
      __m256i q[4];
      q[0] = _mm256_or_si256(_mm256_and_si256(ql0, low4), _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4));
      q[1] = _mm256_or_si256(_mm256_and_si256(ql1, low4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4));
      q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4), _mm256_and_si256(qh, m30));
      q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4), _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
      for (int g = 0; g < 4; ++g) {
        const int k = 8 * h + 2 * g;  // 16-element sub-blocks k (low 128-bit lane) and k+1 (high lane)
        const __m256i s = _mm256_set_m128i(_mm_set1_epi16(sc[k + 1]), _mm_set1_epi16(sc[k]));
        const __m256i p = _mm256_maddubs_epi16(q[g], ld256(y[b].qs + 128 * h + 32 * g));  // <= 63*127*2
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, s));
      }
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_sub_epi32(sumi, offset)), acc);
  }
  return hsum(acc);
}

}  // namespace

void fill_avx2_kquants(KernelTable* t) {
  t->vec_dot[(int)DType::Q4_K] = dot_q4_k;
  t->vec_dot[(int)DType::Q5_K] = dot_q5_k;
  t->vec_dot[(int)DType::Q6_K] = dot_q6_k;
}

}  // namespace modu::kern
