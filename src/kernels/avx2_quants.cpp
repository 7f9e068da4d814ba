// AVX2+FMA+F16C kernels: float dots (F32/F16/BF16), 32-block quant dots (Q4_0/Q4_1/Q5_0/Q5_1/Q8_0)
// and the activation quantizers (Q8_0/Q8_1/Q8_K, byte-identical to the scalar reference).
//
// Performance model: matrix-vector products are memory bound (one weight byte is used once per
// token), so the goal is to decode each block with a handful of shuffles/ands while keeping the
// FMA/convert latency chain off the critical path with two independent accumulators.
// Integer work per block: one maddubs (u8*s8 -> s16 pairs) + one madd (-> s32), then a single
// float convert + FMA with the combined block scale d_w * d_a.
#include <cmath>

#include "avx2_simd.h"
#include "blocks.h"
#include "isa_kernels.h"

namespace modu::kern {

using namespace modu::blk;
using namespace modu::kern::avx2;

namespace {

// ---------------------------------------------------------------- float formats
// 4 independent accumulators x 8 lanes: FMA latency (4 cycles) x throughput (2/cycle) needs >= 8
// chains in flight for peak, but these loops are load bound, so 4 is enough and keeps the tail small.
float dot_f32(int64_t n, const void* w, const void* a) {
  const float* x = static_cast<const float*>(w);
  const float* y = static_cast<const float*>(a);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), acc3);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), acc0);
  float s = hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
  for (; i < n; ++i) s += x[i] * y[i];
  return s;
}

// F16 weights: VCVTPH2PS widens 8 halves per instruction; half the weight bytes of F32.
float dot_f16(int64_t n, const void* w, const void* a) {
  const uint16_t* x = static_cast<const uint16_t*>(w);
  const float* y = static_cast<const float*>(a);
  auto ld = [&](int64_t i) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))); };
  __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm256_fmadd_ps(ld(i), _mm256_loadu_ps(y + i), acc0);
    acc1 = _mm256_fmadd_ps(ld(i + 8), _mm256_loadu_ps(y + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(ld(i + 16), _mm256_loadu_ps(y + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(ld(i + 24), _mm256_loadu_ps(y + i + 24), acc3);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(ld(i), _mm256_loadu_ps(y + i), acc0);
  float s = hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
  for (; i < n; ++i) s += h2f(x[i]) * y[i];
  return s;
}

// BF16 weights: a bf16 is the top half of an f32, so widening is zero-extend + shift by 16.
float dot_bf16(int64_t n, const void* w, const void* a) {
  const uint16_t* x = static_cast<const uint16_t*>(w);
  const float* y = static_cast<const float*>(a);
  auto ld = [&](int64_t i) {
    const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  };
  __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm256_fmadd_ps(ld(i), _mm256_loadu_ps(y + i), acc0);
    acc1 = _mm256_fmadd_ps(ld(i + 8), _mm256_loadu_ps(y + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(ld(i + 16), _mm256_loadu_ps(y + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(ld(i + 24), _mm256_loadu_ps(y + i + 24), acc3);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(ld(i), _mm256_loadu_ps(y + i), acc0);
  float s = hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
  for (; i < n; ++i) {
    uint32_t u = (uint32_t)x[i] << 16;
    float f;
    std::memcpy(&f, &u, 4);
    s += f * y[i];
  }
  return s;
}

// ---------------------------------------------------------------- 32-element block dots
// Each kernel is written as "int32x8 for block b" + one FMA; the loop body handles two blocks
// with separate accumulators so consecutive convert+FMA chains overlap.
inline __m256i load32(const int8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

template <typename BlockFn>
inline float blocks_loop(int64_t nb, BlockFn fn) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    acc0 = fn(b, acc0);
    acc1 = fn(b + 1, acc1);
  }
  if (b < nb) acc0 = fn(b, acc0);
  return hsum(_mm256_add_ps(acc0, acc1));
}

float dot_q4_0(int64_t n, const void* w, const void* a) {
  const BlockQ4_0* x = static_cast<const BlockQ4_0*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  const __m256i off = _mm256_set1_epi8(8);
  return blocks_loop(n / QK, [&](int64_t b, __m256 acc) {
    const __m256i qx = _mm256_sub_epi8(unpack_nibbles(x[b].qs), off);  // -8..7
    const __m256i p = dot_s8(qx, load32(y[b].qs));
    return _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d)), _mm256_cvtepi32_ps(p), acc);
  });
}

// Q4_1/Q5_1: weights are unsigned, so maddubs takes them directly; the min contributes m * s,
// where s = d_a * sum(q_a) was precomputed by the Q8_1 quantizer.
float dot_q4_1(int64_t n, const void* w, const void* a) {
  const BlockQ4_1* x = static_cast<const BlockQ4_1*>(w);
  const BlockQ8_1* y = static_cast<const BlockQ8_1*>(a);
  float summs = 0;
  const float s = blocks_loop(n / QK, [&](int64_t b, __m256 acc) {
    summs += h2f(x[b].m) * h2f(y[b].s);
    const __m256i p = dot_u8s8(unpack_nibbles(x[b].qs), load32(y[b].qs));
    return _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d)), _mm256_cvtepi32_ps(p), acc);
  });
  return s + summs;
}

float dot_q5_0(int64_t n, const void* w, const void* a) {
  const BlockQ5_0* x = static_cast<const BlockQ5_0*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  const __m256i hi_clear = _mm256_set1_epi8((char)0xF0);
  return blocks_loop(n / QK, [&](int64_t b, __m256 acc) {
    // q - 16 in two's complement: nibble | 0xF0 when bit 4 is clear, the plain nibble when set.
    const __m256i bits = expand_bits(x[b].qh);
    const __m256i qx = _mm256_or_si256(unpack_nibbles(x[b].qs), _mm256_andnot_si256(bits, hi_clear));
    const __m256i p = dot_s8(qx, load32(y[b].qs));
    return _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d)), _mm256_cvtepi32_ps(p), acc);
  });
}

float dot_q5_1(int64_t n, const void* w, const void* a) {
  const BlockQ5_1* x = static_cast<const BlockQ5_1*>(w);
  const BlockQ8_1* y = static_cast<const BlockQ8_1*>(a);
  const __m256i bit4 = _mm256_set1_epi8(0x10);
  float summs = 0;
  const float s = blocks_loop(n / QK, [&](int64_t b, __m256 acc) {
    summs += h2f(x[b].m) * h2f(y[b].s);
    const __m256i bits = expand_bits(x[b].qh);
    const __m256i qx = _mm256_or_si256(unpack_nibbles(x[b].qs), _mm256_and_si256(bits, bit4));
    const __m256i p = dot_u8s8(qx, load32(y[b].qs));
    return _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d)), _mm256_cvtepi32_ps(p), acc);
  });
  return s + summs;
}

float dot_q8_0(int64_t n, const void* w, const void* a) {
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  return blocks_loop(n / QK, [&](int64_t b, __m256 acc) {
    const __m256i p = dot_s8(load32(x[b].qs), load32(y[b].qs));
    return _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d)), _mm256_cvtepi32_ps(p), acc);
  });
}

// ---------------------------------------------------------------- activation quantizers
// These must produce exactly the bytes of the scalar reference (tests compare bitwise), so every
// float operation mirrors it: same multiply by the same reciprocal, and for Q8_0/Q8_1 roundf's
// ties-away-from-zero (emulated below) instead of the hardware's ties-to-even.

inline __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// roundf(v) for |v| < 2^23: truncate, then step away from zero when the dropped fraction >= 0.5.
inline __m256i round_away(__m256 v) {
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 frac = abs_ps(_mm256_sub_ps(v, t));  // exact
  const __m256 step = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(v, _mm256_set1_ps(-0.0f)));
  const __m256 up = _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ), step);
  return _mm256_cvttps_epi32(_mm256_add_ps(t, up));
}

// 4 x int32x8 (32 consecutive values) -> 32 int8 in order. packs interleave 128-bit lanes, and
// the final dword permute restores element order.
inline __m256i pack_i32x4(__m256i i0, __m256i i1, __m256i i2, __m256i i3) {
  const __m256i a = _mm256_packs_epi32(i0, i1), b = _mm256_packs_epi32(i2, i3);
  return _mm256_permutevar8x32_epi32(_mm256_packs_epi16(a, b), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// Quantizes 32 floats with multiplier id; returns the int8 vector and (optionally) their sum.
inline __m256i q8_32(const float* x, float id, int* sum) {
  const __m256 m = _mm256_set1_ps(id);
  const __m256i i0 = round_away(_mm256_mul_ps(_mm256_loadu_ps(x), m));
  const __m256i i1 = round_away(_mm256_mul_ps(_mm256_loadu_ps(x + 8), m));
  const __m256i i2 = round_away(_mm256_mul_ps(_mm256_loadu_ps(x + 16), m));
  const __m256i i3 = round_away(_mm256_mul_ps(_mm256_loadu_ps(x + 24), m));
  if (sum) *sum = hsum_i32(_mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3)));
  return pack_i32x4(i0, i1, i2, i3);
}

inline float amax32(const float* x) {
  const __m256 m = _mm256_max_ps(_mm256_max_ps(abs_ps(_mm256_loadu_ps(x)), abs_ps(_mm256_loadu_ps(x + 8))),
                                 _mm256_max_ps(abs_ps(_mm256_loadu_ps(x + 16)), abs_ps(_mm256_loadu_ps(x + 24))));
  return hmax(m);
}

void quantize_q8_0(const float* src, void* dst, int64_t n) {
  BlockQ8_0* y = static_cast<BlockQ8_0*>(dst);
  for (int64_t b = 0; b < n / QK; ++b, src += QK) {
    const float d = amax32(src) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = (uint16_t)_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[b].qs), q8_32(src, id, nullptr));
  }
}

void quantize_q8_1(const float* src, void* dst, int64_t n) {
  BlockQ8_1* y = static_cast<BlockQ8_1*>(dst);
  for (int64_t b = 0; b < n / QK; ++b, src += QK) {
    const float d = amax32(src) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int sum = 0;
    y[b].d = (uint16_t)_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[b].qs), q8_32(src, id, &sum));
    y[b].s = (uint16_t)_cvtss_sh((float)sum * d, _MM_FROUND_TO_NEAREST_INT);
  }
}

// Q8_K: scale from the signed extreme (first one on ties, like the reference), ties-to-even
// rounding (= the reference's nearest_int = CVTPS2DQ in the default MXCSR mode), and bsums via
// SAD: bias bytes to unsigned (+128), sum 8 at a time with vpsadbw, remove the bias.
void quantize_q8_k(const float* src, void* dst, int64_t n) {
  BlockQ8_K* y = static_cast<BlockQ8_K*>(dst);
  for (int64_t b = 0; b < n / QK_K; ++b, src += QK_K) {
    __m256 m = _mm256_setzero_ps();
    for (int j = 0; j < QK_K; j += 8) m = _mm256_max_ps(m, abs_ps(_mm256_loadu_ps(src + j)));
    const float amax = hmax(m);
    if (amax == 0.0f) {
      std::memset(&y[b], 0, sizeof(BlockQ8_K));
      continue;
    }
    float max = 0;
    for (int j = 0; j < QK_K; j += 8) {
      const __m256 eq = _mm256_cmp_ps(abs_ps(_mm256_loadu_ps(src + j)), _mm256_set1_ps(amax), _CMP_EQ_OQ);
      const int mask = _mm256_movemask_ps(eq);
      if (mask) { max = src[j + __builtin_ctz((unsigned)mask)]; break; }
    }
    const float iscale = -127.f / max;
    const __m256 ms = _mm256_set1_ps(iscale);
    const __m256i lim = _mm256_set1_epi32(127);
    for (int j = 0; j < QK_K; j += 32) {
      __m256i i[4];
      for (int k = 0; k < 4; ++k)
        i[k] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(src + j + 8 * k), ms)), lim);
      const __m256i q = pack_i32x4(i[0], i[1], i[2], i[3]);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[b].qs + j), q);
      const __m256i sad = _mm256_sad_epu8(_mm256_xor_si256(q, _mm256_set1_epi8((char)0x80)), _mm256_setzero_si256());
      alignas(32) int64_t s4[4];
      _mm256_store_si256(reinterpret_cast<__m256i*>(s4), sad);
      y[b].bsums[j / 16] = (int16_t)(s4[0] + s4[1] - 16 * 128);
      y[b].bsums[j / 16 + 1] = (int16_t)(s4[2] + s4[3] - 16 * 128);
    }
    y[b].d = 1 / iscale;
  }
}

}  // namespace

void fill_avx2_quants(KernelTable* t) {
  auto set = [&](DType d, VecDotFn f) { t->vec_dot[(int)d] = f; };
  set(DType::F32, dot_f32);
  set(DType::F16, dot_f16);
  set(DType::BF16, dot_bf16);
  set(DType::Q4_0, dot_q4_0);
  set(DType::Q4_1, dot_q4_1);
  set(DType::Q5_0, dot_q5_0);
  set(DType::Q5_1, dot_q5_1);
  set(DType::Q8_0, dot_q8_0);
  t->quantize_row[(int)DType::Q8_0] = quantize_q8_0;
  t->quantize_row[(int)DType::Q8_1] = quantize_q8_1;
  t->quantize_row[(int)DType::Q8_K] = quantize_q8_k;
}

}  // namespace modu::kern
