// AVX-512 prefill GEMM microkernel, included by avx512.cpp and avx512vnni.cpp (anonymous namespace:
// each gets its own copy; with __AVX512VNNI__ the int8 step is one VPDPBUSD, else PMADDUBSW+PMADDWD).
//
// Performance reasoning: a 64-byte load of a packed panel block group is 4 elements of 16 rows
// (gemm.h), so one VPDPBUSD against a 4-byte activation broadcast yields 16 per-row partial sums
// with no horizontal reduction. The tile is 2 panels (32 rows) x 4 tokens: per group of 4 elements
// 2 weight loads + 4 broadcasts feed 8 VPDPBUSD, so every weight byte loaded from L1/L2 is used
// for 4 tokens and every activation broadcast for 32 rows. 8 int32 + 8 float accumulators + 2
// weights fit the 32 zmm registers. Block scales cost cvt + mul + 2 FMA per 8 VPDPBUSD (the
// activation scale varies per block, so it cannot be hoisted).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "modu/kernels/gemm.h"

namespace {

inline __m512i dp_acc(__m512i acc, __m512i u, __m512i s) {
#ifdef __AVX512VNNI__
  return _mm512_dpbusd_epi32(acc, u, s);
#else
  return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
#endif
}

// G16: the 16-scale panels (gemm.h kGemm16BlockBytes): the int32 sums of each half block (groups
// 0-3, 4-7) are scaled on their own, and the half's product and offset are subtracted before they
// join the running sum (they nearly cancel where values centre on 32: Q3_K, Q6_K).
template <int NP, int T, bool G16>
inline void gemm_tile(const uint8_t* pan, size_t ps, int64_t nb, const modu::GemmAct& a, int64_t t0, float* y,
                      int64_t ldy, int64_t nr) {
  constexpr size_t kBlockBytes = G16 ? modu::kGemm16BlockBytes : modu::kGemmBlockBytes;
  constexpr int kParts = G16 ? 2 : 1, kGroups = 8 / kParts;
  __m512 f[NP][T];
  for (int p = 0; p < NP; ++p)
    for (int t = 0; t < T; ++t) f[p][t] = _mm512_setzero_ps();
  const int8_t* aq = a.q + t0 * a.k;
  const float* ad = a.d + t0 * nb;
  const float* as = G16 ? a.s16 + t0 * nb * 2 : a.s + t0 * nb;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* pb = pan + b * kBlockBytes;
    for (int part = 0; part < kParts; ++part) {
      __m512i acc[NP][T];
      for (int p = 0; p < NP; ++p)
        for (int t = 0; t < T; ++t) acc[p][t] = _mm512_setzero_si512();
      for (int g = kGroups * part; g < kGroups * (part + 1); ++g) {
        __m512i w[NP];
        for (int p = 0; p < NP; ++p) w[p] = _mm512_load_si512(pb + p * ps + g * 64);
        for (int t = 0; t < T; ++t) {
          int32_t v;
          std::memcpy(&v, aq + t * a.k + b * 32 + g * 4, 4);
          const __m512i av = _mm512_set1_epi32(v);
          for (int p = 0; p < NP; ++p) acc[p][t] = dp_acc(acc[p][t], w[p], av);
        }
      }
      for (int p = 0; p < NP; ++p) {
        const __m512 dw = _mm512_load_ps(pb + p * ps + (G16 ? 512 + 64 * part : 512));
        const __m512 mw = _mm512_load_ps(pb + p * ps + (G16 ? 640 + 64 * part : 576));
        for (int t = 0; t < T; ++t) {
          const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(ad[t * nb + b]));
          if constexpr (G16) {
            const __m512 off = _mm512_mul_ps(mw, _mm512_set1_ps(as[t * nb * 2 + 2 * b + part]));
            f[p][t] = _mm512_add_ps(f[p][t], _mm512_fmsub_ps(_mm512_cvtepi32_ps(acc[p][t]), scale, off));
          } else {
            f[p][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[p][t]), scale, f[p][t]);
            f[p][t] = _mm512_fnmadd_ps(mw, _mm512_set1_ps(as[t * nb + b]), f[p][t]);
          }
        }
      }
    }
  }
  for (int p = 0; p < NP; ++p) {
    const int64_t left = nr - 16 * p;
    const __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << std::max<int64_t>(0, left)) - 1);
    for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(y + (t0 + t) * ldy + 16 * p, m, f[p][t]);
  }
}

template <int NP, bool G16>
inline void gemm_panels(const uint8_t* pan, size_t ps, int64_t nb, const modu::GemmAct& a, int64_t n_tok, float* y,
                        int64_t ldy, int64_t nr) {
  int64_t t = 0;
  for (; t + 4 <= n_tok; t += 4) gemm_tile<NP, 4, G16>(pan, ps, nb, a, t, y, ldy, nr);
  switch (n_tok - t) {
    case 3: gemm_tile<NP, 3, G16>(pan, ps, nb, a, t, y, ldy, nr); break;
    case 2: gemm_tile<NP, 2, G16>(pan, ps, nb, a, t, y, ldy, nr); break;
    case 1: gemm_tile<NP, 1, G16>(pan, ps, nb, a, t, y, ldy, nr); break;
    default: break;
  }
}

template <bool G16>
void gemm512(const void* panels, int64_t n_panels, int64_t rows, const modu::GemmAct& a, int64_t n_tok, float* y,
             int64_t ldy) {
  const int64_t nb = a.k / 32;
  const size_t ps = G16 ? modu::gemm16_panel_bytes(a.k) : modu::gemm_panel_bytes(a.k);
  int64_t p = 0;
  for (; p + 2 <= n_panels; p += 2)
    gemm_panels<2, G16>(static_cast<const uint8_t*>(panels) + p * ps, ps, nb, a, n_tok, y + p * 16, ldy, rows - p * 16);
  if (p < n_panels)
    gemm_panels<1, G16>(static_cast<const uint8_t*>(panels) + p * ps, ps, nb, a, n_tok, y + p * 16, ldy, rows - p * 16);
}

}  // namespace

// ---------------------------------------------------------------- roofline probes (modu bench --roofline)
namespace {

// Streaming read with 4 independent 512-bit accumulators (enough loads in flight to saturate DRAM).
double probe_read512(const void* p, size_t bytes) {
  const __m512i* v = static_cast<const __m512i*>(p);
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 4 <= bytes / 64; i += 4) {
    a0 = _mm512_add_epi64(a0, _mm512_load_si512(v + i));
    a1 = _mm512_add_epi64(a1, _mm512_load_si512(v + i + 1));
    a2 = _mm512_add_epi64(a2, _mm512_load_si512(v + i + 2));
    a3 = _mm512_add_epi64(a3, _mm512_load_si512(v + i + 3));
  }
  return (double)_mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
}

// Peak probes. The accumulators are named variables, and every one of them passes through an empty
// asm each iteration: an array indexed in a loop is kept on the stack by GCC, which put a
// store-to-load forward (~5 cycles) into every chain and measured 0.8 VPDPBUSD per cycle on a core
// that issues more. The multiplicands also pass through the asm, so nothing is hoisted out.
#define MODU_PROBE_KEEP12(a, b)                                                                                \
  __asm__ volatile("" : "+v"(a##0), "+v"(a##1), "+v"(a##2), "+v"(a##3), "+v"(a##4), "+v"(a##5), "+v"(a##6), \
                   "+v"(a##7), "+v"(a##8), "+v"(a##9), "+v"(a##10), "+v"(a##11), "+v"(b))

// 12 independent FMA chains (covers 4-cycle latency x 2 ports + slack); returns flops (2 per lane-FMA).
double probe_fma512(int64_t iters) {
  __m512 a0 = _mm512_set1_ps(1.0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0,
         a9 = a0, a10 = a0, a11 = a0;
  __m512 m = _mm512_set1_ps(0.999999f);
  const __m512 c = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
    a0 = _mm512_fmadd_ps(a0, m, c), a1 = _mm512_fmadd_ps(a1, m, c), a2 = _mm512_fmadd_ps(a2, m, c);
    a3 = _mm512_fmadd_ps(a3, m, c), a4 = _mm512_fmadd_ps(a4, m, c), a5 = _mm512_fmadd_ps(a5, m, c);
    a6 = _mm512_fmadd_ps(a6, m, c), a7 = _mm512_fmadd_ps(a7, m, c), a8 = _mm512_fmadd_ps(a8, m, c);
    a9 = _mm512_fmadd_ps(a9, m, c), a10 = _mm512_fmadd_ps(a10, m, c), a11 = _mm512_fmadd_ps(a11, m, c);
    MODU_PROBE_KEEP12(a, m);
  }
  const __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                                 _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)),
                                               _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11))));
  volatile float sink = _mm512_reduce_add_ps(s);
  (void)sink;
  return (double)iters * 12 * 16 * 2;
}

// 12 independent int8 dot chains with the level's primitive (VPDPBUSD, or PMADDUBSW+PMADDWD+add);
// returns ops (2 per int8 multiply-add).
double probe_dot512(int64_t iters) {
  __m512i a0 = _mm512_set1_epi32(1), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0,
          a9 = a0, a10 = a0, a11 = a0;
  __m512i u = _mm512_set1_epi8(3);
  const __m512i s = _mm512_set1_epi8(-2);
  for (int64_t it = 0; it < iters; ++it) {
    a0 = dp_acc(a0, u, s), a1 = dp_acc(a1, u, s), a2 = dp_acc(a2, u, s), a3 = dp_acc(a3, u, s);
    a4 = dp_acc(a4, u, s), a5 = dp_acc(a5, u, s), a6 = dp_acc(a6, u, s), a7 = dp_acc(a7, u, s);
    a8 = dp_acc(a8, u, s), a9 = dp_acc(a9, u, s), a10 = dp_acc(a10, u, s), a11 = dp_acc(a11, u, s);
    MODU_PROBE_KEEP12(a, u);
  }
  const __m512i t = _mm512_add_epi32(
      _mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3)),
      _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a4, a5), _mm512_add_epi32(a6, a7)),
                       _mm512_add_epi32(_mm512_add_epi32(a8, a9), _mm512_add_epi32(a10, a11))));
  volatile int sink = _mm512_reduce_add_epi32(t);
  (void)sink;
  return (double)iters * 12 * 64 * 2;
}
#undef MODU_PROBE_KEEP12

}  // namespace
