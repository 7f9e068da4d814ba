// AVX-512 (F/BW/VL) kernel bodies, included by avx512.cpp and avx512vnni.cpp. The only difference
// between the two builds is the int8 dot primitive: with __AVX512VNNI__ one VPDPBUSD replaces
// VPMADDUBSW + VPMADDWD (one uop instead of two, and no int16 saturation step).
// Everything is in an anonymous namespace, so each including file gets its own copy.
#pragma once

// GCC 12's avx512fintrin.h builds some results from _mm512_undefined_*(), which trips
// -W(maybe-)uninitialized false positives after inlining; they are noise in these two TUs only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "blocks.h"
#include "modu/kernels/dispatch.h"

namespace {

using namespace modu::blk;

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

// ---------------------------------------------------------------- int8 dot primitives
inline __m512i dot_u8s8(__m512i ux, __m512i y) {
#ifdef __AVX512VNNI__
  return _mm512_dpbusd_epi32(_mm512_setzero_si512(), ux, y);
#else
  return _mm512_madd_epi16(_mm512_maddubs_epi16(ux, y), _mm512_set1_epi16(1));
#endif
}
// AVX-512 has no VPSIGNB; negate y under x's sign mask instead and use |x| as the unsigned side.
inline __m512i dot_s8(__m512i x, __m512i y) {
  const __mmask64 neg = _mm512_movepi8_mask(x);
  const __m512i sy = _mm512_mask_sub_epi8(y, neg, _mm512_setzero_si512(), y);
  return dot_u8s8(_mm512_abs_epi8(x), sy);
}
inline __m256i dot_u8s8_256(__m256i ux, __m256i y) {
#ifdef __AVX512VNNI__
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), ux, y);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(ux, y), _mm256_set1_epi16(1));
#endif
}
inline __m256i dot_s8_256(__m256i x, __m256i y) {
  return dot_u8s8_256(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// ---------------------------------------------------------------- float formats
// 16 lanes x 4 accumulators per iteration; the tail (n % 16) uses masked loads, so no scalar loop.
template <typename Load>
inline float dot_float_rows(int64_t n, const float* y, Load ld) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    acc0 = _mm512_fmadd_ps(ld(i, (__mmask16)0xFFFF), _mm512_loadu_ps(y + i), acc0);
    acc1 = _mm512_fmadd_ps(ld(i + 16, (__mmask16)0xFFFF), _mm512_loadu_ps(y + i + 16), acc1);
    acc2 = _mm512_fmadd_ps(ld(i + 32, (__mmask16)0xFFFF), _mm512_loadu_ps(y + i + 32), acc2);
    acc3 = _mm512_fmadd_ps(ld(i + 48, (__mmask16)0xFFFF), _mm512_loadu_ps(y + i + 48), acc3);
  }
  for (; i + 16 <= n; i += 16) acc0 = _mm512_fmadd_ps(ld(i, (__mmask16)0xFFFF), _mm512_loadu_ps(y + i), acc0);
  if (i < n) {
    const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
    acc1 = _mm512_fmadd_ps(ld(i, m), _mm512_maskz_loadu_ps(m, y + i), acc1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
}

float dot_f32(int64_t n, const void* w, const void* a) {
  const float* x = static_cast<const float*>(w);
  return dot_float_rows(n, static_cast<const float*>(a),
                        [x](int64_t i, __mmask16 m) { return _mm512_maskz_loadu_ps(m, x + i); });
}

float dot_f16(int64_t n, const void* w, const void* a) {
  const uint16_t* x = static_cast<const uint16_t*>(w);
  return dot_float_rows(n, static_cast<const float*>(a), [x](int64_t i, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x + i));
  });
}

float dot_bf16(int64_t n, const void* w, const void* a) {
  const uint16_t* x = static_cast<const uint16_t*>(w);
  return dot_float_rows(n, static_cast<const float*>(a), [x](int64_t i, __mmask16 m) {
    const __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, x + i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
  });
}

// ---------------------------------------------------------------- 32-element block dots
// Two blocks per 512-bit register: bytes 0..31 = block b, 32..63 = block b+1, so each 256-bit half
// reduces to that block's int32x8 and one FMA applies both block scales (blended per half).
// An odd final block goes through the 256-bit path.

inline __m512i load2(const int8_t* p0, const int8_t* p1) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p0))),
                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p1)), 1);
}
// Nibbles of two blocks -> [b0 lo16 | b0 hi16 | b1 lo16 | b1 hi16].
inline __m512i nibbles2(const uint8_t* qs0, const uint8_t* qs1) {
  const __m256i t = _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs1)),
                                     _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs0)));
  const __m256i lo = _mm256_and_si256(t, _mm256_set1_epi8(0x0F));
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(t, 4), _mm256_set1_epi8(0x0F));
  const __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);  // [lo0 lo1 hi0 hi1]
  return _mm512_shuffle_i64x2(v, v, _MM_SHUFFLE(3, 1, 2, 0));                // [lo0 hi0 lo1 hi1]
}
inline __m256i nibbles1(const uint8_t* qs) {
  const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F));
}
inline __m256i ld256(const int8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline __m512 scales2(float s0, float s1) {
  return _mm512_mask_blend_ps((__mmask16)0xFF00, _mm512_set1_ps(s0), _mm512_set1_ps(s1));
}
inline uint32_t qh32(const uint8_t* p) { uint32_t v; std::memcpy(&v, p, 4); return v; }
inline __mmask64 qh64(const uint8_t* p0, const uint8_t* p1) { return (uint64_t)qh32(p0) | ((uint64_t)qh32(p1) << 32); }
inline __mmask32 qh_mask32(const uint8_t* p) { return (__mmask32)qh32(p); }

// pair(b, acc512) handles blocks b, b+1; single(b, acc256) the odd tail block.
template <typename Pair, typename Single>
inline float blocks2(int64_t nb, Pair pair, Single single) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 4 <= nb; b += 4) {
    acc0 = pair(b, acc0);
    acc1 = pair(b + 2, acc1);
  }
  if (b + 2 <= nb) { acc0 = pair(b, acc0); b += 2; }
  __m256 tail = _mm256_setzero_ps();
  if (b < nb) tail = single(b, tail);
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) + hsum256(tail);
}

float dot_q4_0(int64_t n, const void* w, const void* a) {
  const BlockQ4_0* x = static_cast<const BlockQ4_0*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  return blocks2(
      n / QK,
      [&](int64_t b, __m512 acc) {
        const __m512i qx = _mm512_sub_epi8(nibbles2(x[b].qs, x[b + 1].qs), _mm512_set1_epi8(8));
        const __m512i p = dot_s8(qx, load2(y[b].qs, y[b + 1].qs));
        const __m512 s = scales2(h2f(x[b].d) * h2f(y[b].d), h2f(x[b + 1].d) * h2f(y[b + 1].d));
        return _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(p), acc);
      },
      [&](int64_t b, __m256 acc) {
        const __m256i p = dot_s8_256(_mm256_sub_epi8(nibbles1(x[b].qs), _mm256_set1_epi8(8)), ld256(y[b].qs));
        return _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d)), _mm256_cvtepi32_ps(p), acc);
      });
}

float dot_q4_1(int64_t n, const void* w, const void* a) {
  const BlockQ4_1* x = static_cast<const BlockQ4_1*>(w);
  const BlockQ8_1* y = static_cast<const BlockQ8_1*>(a);
  float summs = 0;
  for (int64_t b = 0; b < n / QK; ++b) summs += h2f(x[b].m) * h2f(y[b].s);
  return summs + blocks2(
      n / QK,
      [&](int64_t b, __m512 acc) {
        const __m512i p = dot_u8s8(nibbles2(x[b].qs, x[b + 1].qs), load2(y[b].qs, y[b + 1].qs));
        const __m512 s = scales2(h2f(x[b].d) * h2f(y[b].d), h2f(x[b + 1].d) * h2f(y[b + 1].d));
        return _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(p), acc);
      },
      [&](int64_t b, __m256 acc) {
        const __m256i p = dot_u8s8_256(nibbles1(x[b].qs), ld256(y[b].qs));
        return _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d)), _mm256_cvtepi32_ps(p), acc);
      });
}

// Q5: the 32 high bits of a block map 1:1 onto its 32 bytes, so qh is used directly as a byte mask.
float dot_q5_0(int64_t n, const void* w, const void* a) {
  const BlockQ5_0* x = static_cast<const BlockQ5_0*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  return blocks2(
      n / QK,
      [&](int64_t b, __m512 acc) {
        const __m512i nib = nibbles2(x[b].qs, x[b + 1].qs);
        // bit clear -> nibble - 16 == nibble | 0xF0 (two's complement); bit set -> nibble.
        const __m512i qx = _mm512_mask_blend_epi8(qh64(x[b].qh, x[b + 1].qh),
                                                  _mm512_or_si512(nib, _mm512_set1_epi8((char)0xF0)), nib);
        const __m512i p = dot_s8(qx, load2(y[b].qs, y[b + 1].qs));
        const __m512 s = scales2(h2f(x[b].d) * h2f(y[b].d), h2f(x[b + 1].d) * h2f(y[b + 1].d));
        return _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(p), acc);
      },
      [&](int64_t b, __m256 acc) {
        const __m256i nib = nibbles1(x[b].qs);
        const __m256i qx =
            _mm256_mask_blend_epi8(qh_mask32(x[b].qh), _mm256_or_si256(nib, _mm256_set1_epi8((char)0xF0)), nib);
        const __m256i p = dot_s8_256(qx, ld256(y[b].qs));
        return _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d)), _mm256_cvtepi32_ps(p), acc);
      });
}

float dot_q5_1(int64_t n, const void* w, const void* a) {
  const BlockQ5_1* x = static_cast<const BlockQ5_1*>(w);
  const BlockQ8_1* y = static_cast<const BlockQ8_1*>(a);
  float summs = 0;
  for (int64_t b = 0; b < n / QK; ++b) summs += h2f(x[b].m) * h2f(y[b].s);
  return summs + blocks2(
      n / QK,
      [&](int64_t b, __m512 acc) {
        const __m512i nib = nibbles2(x[b].qs, x[b + 1].qs);
        const __m512i qx = _mm512_mask_blend_epi8(qh64(x[b].qh, x[b + 1].qh), nib,
                                                  _mm512_or_si512(nib, _mm512_set1_epi8(0x10)));
        const __m512i p = dot_u8s8(qx, load2(y[b].qs, y[b + 1].qs));
        const __m512 s = scales2(h2f(x[b].d) * h2f(y[b].d), h2f(x[b + 1].d) * h2f(y[b + 1].d));
        return _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(p), acc);
      },
      [&](int64_t b, __m256 acc) {
        const __m256i nib = nibbles1(x[b].qs);
        const __m256i qx = _mm256_mask_blend_epi8(qh_mask32(x[b].qh), nib, _mm256_or_si256(nib, _mm256_set1_epi8(0x10)));
        const __m256i p = dot_u8s8_256(qx, ld256(y[b].qs));
        return _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d)), _mm256_cvtepi32_ps(p), acc);
      });
}

float dot_q8_0(int64_t n, const void* w, const void* a) {
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  return blocks2(
      n / QK,
      [&](int64_t b, __m512 acc) {
        const __m512i p = dot_s8(load2(x[b].qs, x[b + 1].qs), load2(y[b].qs, y[b + 1].qs));
        const __m512 s = scales2(h2f(x[b].d) * h2f(y[b].d), h2f(x[b + 1].d) * h2f(y[b + 1].d));
        return _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(p), acc);
      },
      [&](int64_t b, __m256 acc) {
        const __m256i p = dot_s8_256(ld256(x[b].qs), ld256(y[b].qs));
        return _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d)), _mm256_cvtepi32_ps(p), acc);
      });
}

// ---------------------------------------------------------------- activation quantizers
// Byte-identical to the scalar reference (see avx2_quants.cpp for the rounding argument).
// AVX512F lacks float and/or (those are AVX512DQ), so sign manipulation goes through integer ops.
inline __m512 sign_of_one(__m512 v) {
  return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(_mm512_set1_ps(1.0f)),
                                             _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(INT32_MIN))));
}
// roundf (ties away from zero) for |v| < 2^23.
inline __m512i round_away(__m512 v) {
  const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __mmask16 up = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
  return _mm512_cvttps_epi32(_mm512_mask_add_ps(t, up, t, sign_of_one(v)));
}

void quantize_q8_0_or_1(const float* src, int8_t* qs, uint16_t* d_out, uint16_t* s_out) {
  const __m512 v0 = _mm512_loadu_ps(src), v1 = _mm512_loadu_ps(src + 16);
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  const __m512i i0 = round_away(_mm512_mul_ps(v0, _mm512_set1_ps(id)));
  const __m512i i1 = round_away(_mm512_mul_ps(v1, _mm512_set1_ps(id)));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(qs), _mm512_cvtepi32_epi8(i0));  // values fit: no saturation needed
  _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + 16), _mm512_cvtepi32_epi8(i1));
  *d_out = (uint16_t)_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
  if (s_out) {
    const int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
    *s_out = (uint16_t)_cvtss_sh((float)sum * d, _MM_FROUND_TO_NEAREST_INT);
  }
}

void quantize_q8_0(const float* src, void* dst, int64_t n) {
  BlockQ8_0* y = static_cast<BlockQ8_0*>(dst);
  for (int64_t b = 0; b < n / QK; ++b) quantize_q8_0_or_1(src + QK * b, y[b].qs, &y[b].d, nullptr);
}

void quantize_q8_1(const float* src, void* dst, int64_t n) {
  BlockQ8_1* y = static_cast<BlockQ8_1*>(dst);
  for (int64_t b = 0; b < n / QK; ++b) quantize_q8_0_or_1(src + QK * b, y[b].qs, &y[b].d, &y[b].s);
}

// Q8_K: one 16-float vector is exactly one bsums group, so each bsum is a single reduce.
void quantize_q8_k(const float* src, void* dst, int64_t n) {
  BlockQ8_K* y = static_cast<BlockQ8_K*>(dst);
  for (int64_t b = 0; b < n / QK_K; ++b, src += QK_K) {
    __m512 m = _mm512_setzero_ps();
    for (int j = 0; j < QK_K; j += 16) m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(src + j)));
    const float amax = _mm512_reduce_max_ps(m);
    if (amax == 0.0f) {
      std::memset(&y[b], 0, sizeof(BlockQ8_K));
      continue;
    }
    float max = 0;  // the first element with |x| == amax, sign included (reference tie rule)
    for (int j = 0; j < QK_K; j += 16) {
      const __mmask16 eq = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(src + j)), _mm512_set1_ps(amax), _CMP_EQ_OQ);
      if (eq) { max = src[j + __builtin_ctz((unsigned)eq)]; break; }
    }
    const float iscale = -127.f / max;
    const __m512 ms = _mm512_set1_ps(iscale);
    for (int j = 0; j < QK_K; j += 16) {
      const __m512i i = _mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(src + j), ms)),
                                         _mm512_set1_epi32(127));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].qs + j), _mm512_cvtepi32_epi8(i));
      y[b].bsums[j / 16] = (int16_t)_mm512_reduce_add_epi32(i);
    }
    y[b].d = 1 / iscale;
  }
}

// Installs this build's kernels; K-quant dots stay as inherited from the AVX2 table.
inline void fill_table(modu::KernelTable* t) {
  using modu::DType;
  t->vec_dot[(int)DType::F32] = dot_f32;
  t->vec_dot[(int)DType::F16] = dot_f16;
  t->vec_dot[(int)DType::BF16] = dot_bf16;
  t->vec_dot[(int)DType::Q4_0] = dot_q4_0;
  t->vec_dot[(int)DType::Q4_1] = dot_q4_1;
  t->vec_dot[(int)DType::Q5_0] = dot_q5_0;
  t->vec_dot[(int)DType::Q5_1] = dot_q5_1;
  t->vec_dot[(int)DType::Q8_0] = dot_q8_0;
  t->quantize_row[(int)DType::Q8_0] = quantize_q8_0;
  t->quantize_row[(int)DType::Q8_1] = quantize_q8_1;
  t->quantize_row[(int)DType::Q8_K] = quantize_q8_k;
}

}  // namespace
