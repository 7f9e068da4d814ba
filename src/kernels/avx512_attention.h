// AVX-512 attention for one token and one KV head's query group (gemm.h's AttnFn), included by
// avx512.cpp and avx512vnni.cpp (anonymous namespace: each gets its own copy).
//
// Performance reasoning. At long context a decoded token reads every cached K and V row of every
// layer (bench-1b at depth 2048: 67 MB a token against 0.6 GB of Q4_0 weights), so the kernel has
// to keep up with memory; the AVX2 kernel spent ~150 uops per position and KV head (K rows
// converted through a buffer and dotted 2 rows at a time with a HADD tree per pair, V in 4 passes
// of 16 columns) and decode at depth 2048 ran at 73% of read bandwidth.
//  * Scores, 16 positions at a time: the 16 K rows are widened to floats once into an L1 buffer;
//    per query head, a zmm of partial products per position (hd / 16 FMAs each) and one
//    transpose-and-add tree (45 shuffles and adds) turns the 16 zmm into 16 scores in one
//    register: ~(hd / 16 + 3) uops per position and head instead of a horizontal sum per score.
//  * V in one pass for up to 4 heads x 64 columns (16 accumulators): per position hd / 16
//    conversions and 4 x hd / 16 FMAs whose weight operand is an embedded broadcast from memory.
//  * Rows 32 positions ahead are prefetched (a head's rows are one cache row, ~1 KiB, apart).
//  * Head sizes that are not a multiple of 16 (or above 256) use the level below's kernel.
#pragma once

#include <algorithm>
#include <cmath>

#include "isa_kernels.h"
#include "modu/kernels/gemm.h"

namespace {

inline modu::AttnFn g_attn_fallback = nullptr;  // the inherited kernel, for the shapes below skips
constexpr int64_t kAttnAhead = modu::kern::kAttnPrefetchPositions;  // positions prefetched ahead

// exp(x) for x <= 0, as the AVX2 kernel's exp_neg (Cephes range reduction, degree-6 polynomial,
// ~2 ulp; below -87.3 it flushes to 0).
inline __m512 exp_neg512(__m512 x) {
  const __mmask16 in_range = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_GE_OQ);
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
  const __m512 fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500E-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507E-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073E-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894E-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459E-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201E-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(fx), _mm512_set1_epi32(127)), 23);
  return _mm512_maskz_mul_ps(in_range, p, _mm512_castsi512_ps(e));
}

// Lane j of the result = the sum of v[j]'s 16 lanes (a transpose-and-add tree: pairs within
// 128-bit lanes, then pairs of 64-bit halves, then 128-bit lanes across registers).
inline __m512 hsum16(const __m512* v) {
  __m512 t[8], u[4], w[2];
  for (int i = 0; i < 8; ++i)
    t[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
  for (int i = 0; i < 4; ++i) {
    const __m512d a = _mm512_castps_pd(t[2 * i]), b = _mm512_castps_pd(t[2 * i + 1]);
    u[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)), _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
  }
  for (int i = 0; i < 2; ++i)
    w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

// 16 floats of a K/V row from element 16 * c on.
inline __m512 row_chunk(const uint8_t* row, int64_t c, bool f16) {
  return f16 ? _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 32 * c)))
             : _mm512_loadu_ps(reinterpret_cast<const float*>(row) + 16 * c);
}

inline void prefetch_kv_row(const uint8_t* row, size_t bytes) {
  for (size_t o = 0; o < bytes; o += 64) _mm_prefetch(reinterpret_cast<const char*>(row + o), _MM_HINT_T0);
}

// V accumulation for GB heads (weights w[g * n_pos + p]) and CB 16-column chunks from chunk c0:
// GB x CB accumulators, one pass over the positions.
template <int GB, int CB>
void accumulate_v512(const float* w, int64_t n_pos, const uint8_t* v, size_t stride, int64_t c0, bool f16,
                     bool prefetch, size_t row_bytes, int64_t hd, float* out) {
  __m512 acc[GB][CB];
  for (auto& a : acc)
    for (auto& x : a) x = _mm512_setzero_ps();
  for (int64_t p = 0; p < n_pos; ++p) {
    const uint8_t* row = v + (size_t)p * stride;
    if (prefetch && p + kAttnAhead < n_pos) prefetch_kv_row(row + (size_t)kAttnAhead * stride, row_bytes);
    __m512 x[CB];
    for (int c = 0; c < CB; ++c) x[c] = row_chunk(row, c0 + c, f16);
    for (int g = 0; g < GB; ++g) {
      const __m512 wg = _mm512_set1_ps(w[g * n_pos + p]);
      for (int c = 0; c < CB; ++c) acc[g][c] = _mm512_fmadd_ps(wg, x[c], acc[g][c]);
    }
  }
  for (int g = 0; g < GB; ++g)
    for (int c = 0; c < CB; ++c) _mm512_storeu_ps(out + g * hd + 16 * (c0 + c), acc[g][c]);
}

// Scores of GB heads (q chunks held in registers) against the m <= 16 positions of one block:
// each K row is widened once into NC registers and dotted with every head; the GB x 16 partial
// products go through L1 (part) into one hsum16 per head.
template <int NC, int GB>
void scores_block(const float* q, int64_t hd, const uint8_t* k, size_t stride, int64_t p0, int64_t m, int64_t n_pos,
                  bool f16, size_t row_bytes, __m512 vscale, float* s) {
  alignas(64) __m512 part[GB][16];
  __m512 qv[GB][NC];
  for (int g = 0; g < GB; ++g)
    for (int c = 0; c < NC; ++c) qv[g][c] = _mm512_loadu_ps(q + g * hd + 16 * c);
  for (int64_t j = 0; j < 16; ++j) {
    if (j >= m) {
      for (int g = 0; g < GB; ++g) part[g][j] = _mm512_setzero_ps();
      continue;
    }
    const uint8_t* row = k + (size_t)(p0 + j) * stride;
    if (p0 + j + kAttnAhead < n_pos) prefetch_kv_row(row + (size_t)kAttnAhead * stride, row_bytes);
    __m512 kr[NC];
    for (int c = 0; c < NC; ++c) kr[c] = row_chunk(row, c, f16);
    for (int g = 0; g < GB; ++g) {
      __m512 a = _mm512_mul_ps(qv[g][0], kr[0]);
      for (int c = 1; c < NC; ++c) a = _mm512_fmadd_ps(qv[g][c], kr[c], a);
      part[g][j] = a;
    }
  }
  for (int g = 0; g < GB; ++g)
    _mm512_mask_storeu_ps(s + g * n_pos + p0, (__mmask16)((1u << m) - 1), _mm512_mul_ps(vscale, hsum16(part[g])));
}

constexpr int64_t kAttnMaxHd = 256;

// Scores of every head against positions p0..p0 + m - 1 for hd 64 and 128 (most models): q in
// registers, each K row widened once per block of 4 (hd 64) or 2 (hd 128) heads.
void scores_in_registers(const float* q, int64_t ng, int64_t hd, const uint8_t* k, size_t stride, int64_t p0,
                         int64_t m, int64_t n_pos, bool f16, size_t row_bytes, __m512 vscale, float* scratch) {
  const bool hd64 = hd == 64;
  const int64_t gstep = hd64 ? 4 : 2;
  for (int64_t g0 = 0; g0 < ng; g0 += gstep) {
    const int64_t gb = std::min(gstep, ng - g0);
    const float* qg = q + g0 * hd;
    float* sg = scratch + g0 * n_pos;
    if (hd64) {
      switch (gb) {
        case 4: scores_block<4, 4>(qg, hd, k, stride, p0, m, n_pos, f16, row_bytes, vscale, sg); break;
        case 3: scores_block<4, 3>(qg, hd, k, stride, p0, m, n_pos, f16, row_bytes, vscale, sg); break;
        case 2: scores_block<4, 2>(qg, hd, k, stride, p0, m, n_pos, f16, row_bytes, vscale, sg); break;
        default: scores_block<4, 1>(qg, hd, k, stride, p0, m, n_pos, f16, row_bytes, vscale, sg); break;
      }
    } else if (gb == 2) {
      scores_block<8, 2>(qg, hd, k, stride, p0, m, n_pos, f16, row_bytes, vscale, sg);
    } else {
      scores_block<8, 1>(qg, hd, k, stride, p0, m, n_pos, f16, row_bytes, vscale, sg);
    }
  }
}

// The same for other head sizes (multiples of 16 up to kAttnMaxHd): the block's K rows widened
// once into an L1 buffer, q read from memory.
void scores_buffered(const float* q, int64_t ng, int64_t hd, const uint8_t* k, size_t stride, int64_t p0, int64_t m,
                     int64_t n_pos, bool f16, size_t row_bytes, __m512 vscale, float* scratch) {
  alignas(64) float kf[16 * kAttnMaxHd];  // 16 K rows as floats
  alignas(64) __m512 part[16];           // per position: partial products of one head
  const int64_t nc = hd / 16;
  for (int64_t j = 0; j < m; ++j) {
    const uint8_t* row = k + (size_t)(p0 + j) * stride;
    if (p0 + j + kAttnAhead < n_pos) prefetch_kv_row(row + (size_t)kAttnAhead * stride, row_bytes);
    for (int64_t c = 0; c < nc; ++c) _mm512_store_ps(kf + j * hd + 16 * c, row_chunk(row, c, f16));
  }
  for (int64_t j = m; j < 16; ++j) part[j] = _mm512_setzero_ps();
  for (int64_t g = 0; g < ng; ++g) {
    const float* qg = q + g * hd;
    for (int64_t j = 0; j < m; ++j) {
      const float* kr = kf + j * hd;
      __m512 a = _mm512_mul_ps(_mm512_loadu_ps(qg), _mm512_load_ps(kr));
      for (int64_t c = 1; c < nc; ++c) a = _mm512_fmadd_ps(_mm512_loadu_ps(qg + 16 * c), _mm512_load_ps(kr + 16 * c), a);
      part[j] = a;
    }
    _mm512_mask_storeu_ps(scratch + g * n_pos + p0, (__mmask16)((1u << m) - 1), _mm512_mul_ps(vscale, hsum16(part)));
  }
}

template <int GB>
void accumulate_v512_cb(int64_t cb, const float* w, int64_t n_pos, const uint8_t* v, size_t stride, int64_t c0,
                        bool f16, bool prefetch, size_t row_bytes, int64_t hd, float* out) {
  switch (cb) {
    case 4: accumulate_v512<GB, 4>(w, n_pos, v, stride, c0, f16, prefetch, row_bytes, hd, out); break;
    case 3: accumulate_v512<GB, 3>(w, n_pos, v, stride, c0, f16, prefetch, row_bytes, hd, out); break;
    case 2: accumulate_v512<GB, 2>(w, n_pos, v, stride, c0, f16, prefetch, row_bytes, hd, out); break;
    default: accumulate_v512<GB, 1>(w, n_pos, v, stride, c0, f16, prefetch, row_bytes, hd, out); break;
  }
}

void attention512(const float* q, int64_t ng, const void* k, const void* v, size_t kv_stride, int64_t n_pos,
                  int64_t hd, bool f16, float scale, float* out, float* scratch, float* lse) {
  if (hd % 16 != 0 || hd > kAttnMaxHd || n_pos <= 0) {
    g_attn_fallback(q, ng, k, v, kv_stride, n_pos, hd, f16, scale, out, scratch, lse);
    return;
  }
  const int64_t nc = hd / 16;
  const size_t row_bytes = (size_t)hd * (f16 ? 2 : 4);
  const uint8_t* kb = static_cast<const uint8_t*>(k);
  const uint8_t* vb = static_cast<const uint8_t*>(v);
  const __m512 vscale = _mm512_set1_ps(scale);
  for (int64_t p0 = 0; p0 < n_pos; p0 += 16) {
    const int64_t m = std::min<int64_t>(16, n_pos - p0);
    if (nc == 4 || nc == 8) {
      scores_in_registers(q, ng, hd, kb, kv_stride, p0, m, n_pos, f16, row_bytes, vscale, scratch);
    } else {
      scores_buffered(q, ng, hd, kb, kv_stride, p0, m, n_pos, f16, row_bytes, vscale, scratch);
    }
  }
  for (int64_t g = 0; g < ng; ++g) {  // softmax per head
    float* s = scratch + g * n_pos;
    __m512 mx = _mm512_set1_ps(-INFINITY);
    int64_t p = 0;
    for (; p + 16 <= n_pos; p += 16) mx = _mm512_max_ps(mx, _mm512_loadu_ps(s + p));
    if (p < n_pos) {  // masked load: the tail of the last head's scores ends the scratch
      const __mmask16 mk = (__mmask16)((1u << (n_pos - p)) - 1);
      mx = _mm512_mask_max_ps(mx, mk, mx, _mm512_maskz_loadu_ps(mk, s + p));
    }
    const float mxs = _mm512_reduce_max_ps(mx);
    const __m512 vm = _mm512_set1_ps(mxs);
    __m512 sum = _mm512_setzero_ps();
    for (p = 0; p + 16 <= n_pos; p += 16) {
      const __m512 e = exp_neg512(_mm512_sub_ps(_mm512_loadu_ps(s + p), vm));
      _mm512_storeu_ps(s + p, e);
      sum = _mm512_add_ps(sum, e);
    }
    if (p < n_pos) {
      const __mmask16 mk = (__mmask16)((1u << (n_pos - p)) - 1);
      const __m512 e = exp_neg512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, s + p), vm));
      _mm512_mask_storeu_ps(s + p, mk, e);
      sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(mk, e));
    }
    const float tot = _mm512_reduce_add_ps(sum);
    if (lse) lse[g] = mxs + std::log(tot);
    const __m512 inv = _mm512_set1_ps(1.0f / tot);
    for (p = 0; p + 16 <= n_pos; p += 16) _mm512_storeu_ps(s + p, _mm512_mul_ps(inv, _mm512_loadu_ps(s + p)));
    if (p < n_pos) {
      const __mmask16 mk = (__mmask16)((1u << (n_pos - p)) - 1);
      _mm512_mask_storeu_ps(s + p, mk, _mm512_mul_ps(inv, _mm512_maskz_loadu_ps(mk, s + p)));
    }
  }
  for (int64_t g0 = 0; g0 < ng; g0 += 4) {
    const int64_t gb = std::min<int64_t>(4, ng - g0);
    for (int64_t c0 = 0; c0 < nc; c0 += 4) {
      const int64_t cb = std::min<int64_t>(4, nc - c0);
      const bool pf = g0 == 0 && c0 == 0;  // the first pass brings the rows in; later ones hit L2
      const float* w = scratch + g0 * n_pos;
      float* o = out + g0 * hd;
      switch (gb) {
        case 4: accumulate_v512_cb<4>(cb, w, n_pos, vb, kv_stride, c0, f16, pf, row_bytes, hd, o); break;
        case 3: accumulate_v512_cb<3>(cb, w, n_pos, vb, kv_stride, c0, f16, pf, row_bytes, hd, o); break;
        case 2: accumulate_v512_cb<2>(cb, w, n_pos, vb, kv_stride, c0, f16, pf, row_bytes, hd, o); break;
        default: accumulate_v512_cb<1>(cb, w, n_pos, vb, kv_stride, c0, f16, pf, row_bytes, hd, o); break;
      }
    }
  }
}

// Installs attention512 over the inherited kernel, which it keeps for the shapes it skips.
inline void fill_attention512(modu::KernelTable* t) {
  if (!g_attn_fallback) g_attn_fallback = t->attention;
  t->attention = attention512;
}

}  // namespace
