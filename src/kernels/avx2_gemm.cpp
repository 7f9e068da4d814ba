// AVX2 (+FMA, F16C) prefill GEMM, its SIMD panel packers, and the dispatched attention kernel.
//
// Performance reasoning:
//  * Packing (see gemm.h for the format) is a 4-byte transpose of 8 rows at a time done with
//    in-lane unpacks (8 shuffles per 8 rows x 16 bytes), and nibble expansion happens after the
//    transpose, on 8 rows at once. It runs once per 16-row panel and is reused by every token of
//    the batch, so its cost is ~1/n_tokens of the GEMM.
//  * The microkernel keeps both halves (8 rows each) of one panel in registers and multiplies
//    them with 2 tokens at a time: each weight load feeds 2 PMADDUBSW, each 4-byte activation
//    broadcast feeds 2. Per-block scales are applied once per 32 elements (cvt + mul + 2 FMA),
//    not per element. u8 weights <= 63 keep PMADDUBSW's int16 pair sums exact (2*63*127 < 32767);
//    Q8_0 panels (u up to 255) would saturate, so Q8_0 has no GEMM below the VNNI level.
//  * Attention converts each F16 K/V row once (VCVTPH2PS) into a stack buffer and uses it for all
//    query heads of the KV group; softmax uses a vectorised exp.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "avx2_simd.h"
#include "blocks.h"
#include "isa_kernels.h"
#include "modu/core/fp16.h"
#include "modu/kernels/gemm.h"

namespace modu::kern {

using namespace modu::blk;
using namespace modu::kern::avx2;

namespace {

inline __m128i ld128(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
inline void st256(uint8_t* p, __m256i v) { _mm256_store_si256(reinterpret_cast<__m256i*>(p), v); }

// 16 bytes at `off` from each of 8 rows -> o[j]: dword j of rows 0..3 (low lane), rows 4..7 (high).
inline void tr8x4(const uint8_t* const* rows, size_t off, __m256i o[4]) {
  __m256i y[4];
  for (int l = 0; l < 4; ++l) y[l] = _mm256_set_m128i(ld128(rows[4 + l] + off), ld128(rows[l] + off));
  const __m256i t0 = _mm256_unpacklo_epi32(y[0], y[1]), t1 = _mm256_unpackhi_epi32(y[0], y[1]);
  const __m256i t2 = _mm256_unpacklo_epi32(y[2], y[3]), t3 = _mm256_unpackhi_epi32(y[2], y[3]);
  o[0] = _mm256_unpacklo_epi64(t0, t2);
  o[1] = _mm256_unpackhi_epi64(t0, t2);
  o[2] = _mm256_unpacklo_epi64(t1, t3);
  o[3] = _mm256_unpackhi_epi64(t1, t3);
}

struct PanelRows {
  const uint8_t* r[16];
  PanelRows(const void* w, size_t rb, int64_t nrows) {
    for (int64_t i = 0; i < 16; ++i) r[i] = static_cast<const uint8_t*>(w) + (size_t)(i < nrows ? i : 0) * rb;
  }
};

inline void put_scales(uint8_t* blk, int r, float dw, float mw) {
  std::memcpy(blk + 512 + 4 * r, &dw, 4);
  std::memcpy(blk + 576 + 4 * r, &mw, 4);
}

void pack_q4_0(const void* w, size_t rb, int64_t nrows, int64_t k, void* panel) {
  const PanelRows pr(w, rb, nrows);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  for (int64_t b = 0; b < k / 32; ++b) {
    uint8_t* blk = static_cast<uint8_t*>(panel) + b * kGemmBlockBytes;
    for (int h = 0; h < 2; ++h) {
      __m256i o[4];
      tr8x4(pr.r + 8 * h, b * sizeof(BlockQ4_0) + 2, o);
      for (int j = 0; j < 4; ++j) {
        st256(blk + j * 64 + h * 32, _mm256_and_si256(o[j], m4));
        st256(blk + (4 + j) * 64 + h * 32, _mm256_and_si256(_mm256_srli_epi16(o[j], 4), m4));
      }
    }
    for (int r = 0; r < 16; ++r) {
      const float dw = r < nrows ? h2f(reinterpret_cast<const BlockQ4_0*>(pr.r[r])[b].d) : 0.0f;
      put_scales(blk, r, dw, 8.0f * dw);
    }
  }
}

void pack_q8_0(const void* w, size_t rb, int64_t nrows, int64_t k, void* panel) {
  const PanelRows pr(w, rb, nrows);
  const __m256i bias = _mm256_set1_epi8((char)0x80);
  for (int64_t b = 0; b < k / 32; ++b) {
    uint8_t* blk = static_cast<uint8_t*>(panel) + b * kGemmBlockBytes;
    for (int h = 0; h < 2; ++h)
      for (int half = 0; half < 2; ++half) {
        __m256i o[4];
        tr8x4(pr.r + 8 * h, b * sizeof(BlockQ8_0) + 2 + 16 * half, o);
        for (int j = 0; j < 4; ++j) st256(blk + (4 * half + j) * 64 + h * 32, _mm256_xor_si256(o[j], bias));
      }
    for (int r = 0; r < 16; ++r) {
      const float dw = r < nrows ? h2f(reinterpret_cast<const BlockQ8_0*>(pr.r[r])[b].d) : 0.0f;
      put_scales(blk, r, dw, 128.0f * dw);
    }
  }
}

// Repacked layouts (repack.h): 4 consecutive 4-byte lanes of a 64-byte piece are 4 blocks' worth
// of one element group, so one tr8x4 per (piece, 4 blocks, 8 rows) feeds 4 panel blocks.
enum class R16 { kQ4_0, kQ8_0, kQ4_K, kQ5_K };
template <R16 kKind>
void pack_r16(const void* w, size_t rb, int64_t nrows, int64_t k, void* panel) {
  const PanelRows pr(w, rb, nrows);
  const __m256i m4 = _mm256_set1_epi8(0x0F), m10 = _mm256_set1_epi8(0x10);
  constexpr bool kNibbles = kKind != R16::kQ8_0, kQ5 = kKind == R16::kQ5_K;
  constexpr size_t kGroup = kKind == R16::kQ4_0 ? 288 : kKind == R16::kQ8_0 ? 544 : kQ5 ? 352 : 288;
  constexpr int kPieces = kNibbles ? 4 : 8;
  for (int64_t g = 0; g < k / 512; ++g) {
    for (int q = 0; q < 4; ++q) {
      uint8_t* blk[4];
      for (int i = 0; i < 4; ++i) blk[i] = static_cast<uint8_t*>(panel) + (size_t)(16 * g + 4 * q + i) * kGemmBlockBytes;
      for (int h = 0; h < 2; ++h) {
        __m256i hb[4];  // Q5_K_R16: the 5th bits of sub-blocks 4q..4q+3 (bit 2j + half of each byte)
        if constexpr (kQ5) tr8x4(pr.r + 8 * h, (size_t)g * kGroup + 256 + 16 * q, hb);
        for (int j = 0; j < kPieces; ++j) {
          __m256i o[4];
          tr8x4(pr.r + 8 * h, (size_t)g * kGroup + 64 * j + 16 * q, o);
          for (int i = 0; i < 4; ++i) {
            if constexpr (kNibbles) {
              __m256i lo = _mm256_and_si256(o[i], m4), hi = _mm256_and_si256(_mm256_srli_epi16(o[i], 4), m4);
              if constexpr (kQ5) {
                lo = _mm256_or_si256(lo, _mm256_and_si256(bit_to_4(hb[i], 2 * j), m10));
                hi = _mm256_or_si256(hi, _mm256_and_si256(bit_to_4(hb[i], 2 * j + 1), m10));
              }
              st256(blk[i] + j * 64 + h * 32, lo);
              st256(blk[i] + (4 + j) * 64 + h * 32, hi);
            } else {
              st256(blk[i] + j * 64 + h * 32, o[i]);  // already q + 128
            }
          }
        }
      }
      for (int i = 0; i < 4; ++i) {
        const int l = 4 * q + i;
        for (int r = 0; r < 16; ++r) {
          const uint8_t* gr = pr.r[r] + (size_t)g * kGroup;
          float dw = 0.0f, mw = 0.0f;
          if (r < nrows) {
            uint16_t hd;
            if constexpr (kKind == R16::kQ4_K || kQ5) {
              constexpr size_t sc = kQ5 ? 320 : 256, dd = sc + kR16KScaleBytes;  // scales, d[2], dmin[2]
              int s6, m6;
              r16_kscale_get(gr + sc, l, &s6, &m6);
              std::memcpy(&hd, gr + dd + 2 * (l / 8), 2);
              dw = h2f(hd) * (float)s6;
              std::memcpy(&hd, gr + dd + 4 + 2 * (l / 8), 2);
              mw = h2f(hd) * (float)m6;
            } else {
              std::memcpy(&hd, gr + (kKind == R16::kQ4_0 ? 256 : 512) + 2 * l, 2);
              dw = h2f(hd);
              mw = (kKind == R16::kQ4_0 ? 8.0f : 128.0f) * dw;
            }
          }
          put_scales(blk[i], r, dw, mw);
        }
      }
    }
  }
}

void pack_q4_k(const void* w, size_t rb, int64_t nrows, int64_t k, void* panel) {
  const PanelRows pr(w, rb, nrows);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  for (int64_t sb = 0; sb < k / QK_K; ++sb) {
    uint8_t* base = static_cast<uint8_t*>(panel) + sb * 8 * kGemmBlockBytes;
    for (int c = 0; c < 4; ++c) {
      uint8_t* lo_blk = base + (2 * c) * kGemmBlockBytes;
      uint8_t* hi_blk = lo_blk + kGemmBlockBytes;
      for (int h = 0; h < 2; ++h)
        for (int half = 0; half < 2; ++half) {
          __m256i o[4];
          tr8x4(pr.r + 8 * h, sb * sizeof(BlockQ4_K) + 16 + 32 * c + 16 * half, o);
          for (int j = 0; j < 4; ++j) {
            st256(lo_blk + (4 * half + j) * 64 + h * 32, _mm256_and_si256(o[j], m4));
            st256(hi_blk + (4 * half + j) * 64 + h * 32, _mm256_and_si256(_mm256_srli_epi16(o[j], 4), m4));
          }
        }
    }
    for (int r = 0; r < 16; ++r) {
      const BlockQ4_K& x = reinterpret_cast<const BlockQ4_K*>(pr.r[r])[sb];
      const float d = h2f(x.d), dmin = h2f(x.dmin);
      for (int j = 0; j < 8; ++j) {
        uint8_t sc, m;
        k4_scale_min(j, x.scales, &sc, &m);
        const bool real = r < nrows;
        put_scales(base + j * kGemmBlockBytes, r, real ? d * (float)sc : 0.0f, real ? dmin * (float)m : 0.0f);
      }
    }
  }
}

// Q6_K_R16 rows -> 16-scale panels (gemm.h). In the repacked group every 4 consecutive values of a
// block half are one dword (low nibbles at 64 j + 4 b, high bits at 256 + 64 h + 4 b), exactly the
// 4 bytes a panel row holds per element group, so one 8-row gather per dword position and a few
// in-lane shifts and masks build each 32-byte half of a panel group: no byte shuffles. The scalar
// reference unpacked value by value and took 4x the GEMM's own time at 128 tokens.
void pack_q6_k_r16(const void* w, size_t rb, int64_t nrows, int64_t k, void* panel) {
  constexpr size_t kGroup = 420;  // repack.cpp: 16 blocks of 32
  const uint8_t* base = static_cast<const uint8_t*>(w);
  alignas(32) int32_t off[16];
  for (int r = 0; r < 16; ++r) off[r] = (int32_t)((r < nrows ? r : 0) * rb);
  const __m256i vo[2] = {_mm256_load_si256(reinterpret_cast<const __m256i*>(off)),
                         _mm256_load_si256(reinterpret_cast<const __m256i*>(off + 8))};
  const __m256i m4 = _mm256_set1_epi32(0x0F0F0F0F), m2 = _mm256_set1_epi32(0x03030303);
  uint8_t* out = static_cast<uint8_t*>(panel);
  for (int64_t g = 0; g < k / 512; ++g) {
    const uint8_t* gp = base + g * kGroup;
    float d[16][2];
    for (int r = 0; r < 16; ++r)
      for (int s = 0; s < 2; ++s) {
        uint16_t h;
        std::memcpy(&h, gp + off[r] + 416 + 2 * s, 2);
        d[r][s] = h2f(h);
      }
    for (int b = 0; b < 16; ++b) {
      uint8_t* blk = out + (size_t)(g * 16 + b) * kGemm16BlockBytes;
      for (int h2 = 0; h2 < 2; ++h2) {  // rows 8 h2 .. 8 h2 + 7
        auto gather = [&](size_t at) {
          return _mm256_i32gather_epi32(reinterpret_cast<const int*>(gp + at), vo[h2], 1);
        };
        const __m256i hb0 = gather(256 + 4 * (size_t)b), hb1 = gather(320 + 4 * (size_t)b);
        for (int j = 0; j < 4; ++j) {
          const __m256i lo = gather(64 * (size_t)j + 4 * (size_t)b);
          const __m256i u0 = _mm256_or_si256(_mm256_and_si256(lo, m4),
                                             _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(hb0, 2 * j), m2), 4));
          const __m256i u1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(lo, 4), m4),
                                             _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(hb1, 2 * j), m2), 4));
          st256(blk + j * 64 + h2 * 32, u0);
          st256(blk + (4 + j) * 64 + h2 * 32, u1);
        }
      }
      for (int h = 0; h < 2; ++h)
        for (int r = 0; r < 16; ++r) {
          const float dw = r < nrows ? d[r][b / 8] * (float)(int8_t)gp[off[r] + 384 + 16 * h + b] : 0.0f;  // (not -0)
          const float mw = 32.0f * dw;
          std::memcpy(blk + 512 + 64 * h + 4 * r, &dw, 4);
          std::memcpy(blk + 640 + 64 * h + 4 * r, &mw, 4);
        }
    }
  }
}

// One panel (2 x 8 rows) x T tokens. acc: int32 per (half, token) for the current block part.
// G16: the 16-scale panels (gemm.h kGemm16BlockBytes): the int32 sums of each half block (groups
// 0-3 and 4-7) are scaled on their own, and the half's product and offset are subtracted before
// they join the running sum (they nearly cancel where values centre on 32, Q3_K / Q6_K; adding
// both separately cost ~1e-4 of relative accuracy). Its epilogue runs twice per block, ~15% more
// work per block than the 32-element format; the dot part, which dominates, is the same.
template <int T, bool G16>
inline void tile(const uint8_t* pan, int64_t nb, const GemmAct& a, int64_t t0, float* y, int64_t ldy, int64_t nr) {
  constexpr size_t kBlockBytes = G16 ? kGemm16BlockBytes : kGemmBlockBytes;
  constexpr int kParts = G16 ? 2 : 1, kGroups = 8 / kParts;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 f[2][T];
  for (int h = 0; h < 2; ++h)
    for (int t = 0; t < T; ++t) f[h][t] = _mm256_setzero_ps();
  const int8_t* aq = a.q + t0 * a.k;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* pb = pan + b * kBlockBytes;
    for (int part = 0; part < kParts; ++part) {
      __m256i acc[2][T];
      for (int h = 0; h < 2; ++h)
        for (int t = 0; t < T; ++t) acc[h][t] = _mm256_setzero_si256();
      for (int g = kGroups * part; g < kGroups * (part + 1); ++g) {
        const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(pb + g * 64));
        const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(pb + g * 64 + 32));
        for (int t = 0; t < T; ++t) {
          int32_t v;
          std::memcpy(&v, aq + t * a.k + b * 32 + g * 4, 4);
          const __m256i av = _mm256_set1_epi32(v);
          acc[0][t] = _mm256_add_epi32(acc[0][t], _mm256_madd_epi16(_mm256_maddubs_epi16(w0, av), ones));
          acc[1][t] = _mm256_add_epi32(acc[1][t], _mm256_madd_epi16(_mm256_maddubs_epi16(w1, av), ones));
        }
      }
      for (int h = 0; h < 2; ++h) {
        const size_t at_dw = G16 ? 512 + 64 * part + 32 * h : 512 + 32 * h, at_mw = G16 ? 640 + 64 * part + 32 * h : 576 + 32 * h;
        const __m256 dw = _mm256_load_ps(reinterpret_cast<const float*>(pb + at_dw));
        const __m256 mw = _mm256_load_ps(reinterpret_cast<const float*>(pb + at_mw));
        for (int t = 0; t < T; ++t) {
          const int64_t i = (t0 + t) * nb + b;
          const __m256 scale = _mm256_mul_ps(dw, _mm256_broadcast_ss(a.d + i));
          if constexpr (G16) {
            const __m256 off = _mm256_mul_ps(mw, _mm256_broadcast_ss(a.s16 + 2 * i + part));
            f[h][t] = _mm256_add_ps(f[h][t], _mm256_fmsub_ps(_mm256_cvtepi32_ps(acc[h][t]), scale, off));
          } else {
            f[h][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[h][t]), scale, f[h][t]);
            f[h][t] = _mm256_fnmadd_ps(mw, _mm256_broadcast_ss(a.s + i), f[h][t]);
          }
        }
      }
    }
  }
  for (int t = 0; t < T; ++t) {
    float* yt = y + (t0 + t) * ldy;
    if (nr >= 16) {
      _mm256_storeu_ps(yt, f[0][t]);
      _mm256_storeu_ps(yt + 8, f[1][t]);
    } else {
      alignas(32) float tmp[16];
      _mm256_store_ps(tmp, f[0][t]);
      _mm256_store_ps(tmp + 8, f[1][t]);
      std::memcpy(yt, tmp, (size_t)nr * 4);
    }
  }
}

template <bool G16>
void gemm_panels(const void* panels, int64_t n_panels, int64_t rows, const GemmAct& a, int64_t n_tok, float* y,
                 int64_t ldy) {
  const int64_t nb = a.k / 32;
  const size_t ps = G16 ? gemm16_panel_bytes(a.k) : gemm_panel_bytes(a.k);
  for (int64_t p = 0; p < n_panels; ++p) {
    const uint8_t* pan = static_cast<const uint8_t*>(panels) + p * ps;
    const int64_t nr = std::min<int64_t>(16, rows - p * 16);
    float* yp = y + p * 16;
    int64_t t = 0;
    for (; t + 2 <= n_tok; t += 2) tile<2, G16>(pan, nb, a, t, yp, ldy, nr);
    if (t < n_tok) tile<1, G16>(pan, nb, a, t, yp, ldy, nr);
  }
}

// ---------------------------------------------------------------- attention
// ---------------------------------------------------------------- SwiGLU
// silu(g) * u with sigmoid(g) from e = exp(-|g|) <= 1 (exp_neg's range, no overflow for any g):
// sigmoid = 1 / (1 + e) for g >= 0, e / (1 + e) for g < 0. Eight lanes per step with one divide,
// against a libm expf call per element in the scalar loop (the FFN activation of every prefill
// token was ~6% of prefill time that way).
void swiglu(float* gate, const float* up, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 e = exp_neg(_mm256_or_ps(g, sign));  // exp(-|g|)
    const __m256 num = _mm256_blendv_ps(one, e, g);   // sign bit of g set: e
    const __m256 s = _mm256_div_ps(num, _mm256_add_ps(one, e));
    _mm256_storeu_ps(gate + i, _mm256_mul_ps(_mm256_mul_ps(g, s), _mm256_loadu_ps(up + i)));
  }
  if (i < n) ref::swiglu(gate + i, up + i, n - i);
}

// ---------------------------------------------------------------- GELU (vision encoders)
// tanh(u) = sign(u) (1 - e) / (1 + e) with e = exp(-2|u|) <= 1, and sigmoid as in swiglu: eight
// lanes per step against two libm calls per element (the encoder's FFN activation was ~10% of an
// image's encode time in scalar form).
void gelu_tanh(float* x, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f), half = _mm256_set1_ps(0.5f), sign = _mm256_set1_ps(-0.0f);
  const __m256 c = _mm256_set1_ps(0.7978845608028654f), c3 = _mm256_set1_ps(0.044715f), two = _mm256_set1_ps(2.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256 u = _mm256_mul_ps(c, _mm256_fmadd_ps(_mm256_mul_ps(c3, v), _mm256_mul_ps(v, v), v));
    const __m256 au = _mm256_andnot_ps(sign, u);
    const __m256 e = exp_neg(_mm256_mul_ps(_mm256_sub_ps(_mm256_setzero_ps(), two), au));
    const __m256 t = _mm256_or_ps(_mm256_div_ps(_mm256_sub_ps(one, e), _mm256_add_ps(one, e)), _mm256_and_ps(sign, u));
    _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, t)));
  }
  if (i < n) ref::gelu_tanh(x + i, n - i);
}

void gelu_quick(float* x, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f), k = _mm256_set1_ps(1.702f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256 g = _mm256_mul_ps(k, v);
    const __m256 e = exp_neg(_mm256_or_ps(g, sign));  // exp(-|g|)
    const __m256 num = _mm256_blendv_ps(one, e, g);
    _mm256_storeu_ps(x + i, _mm256_mul_ps(v, _mm256_div_ps(num, _mm256_add_ps(one, e))));
  }
  if (i < n) ref::gelu_quick(x + i, n - i);
}

// ---------------------------------------------------------------- RMS norm, F16 rows
// Both run on the calling thread between two decode matmuls, while the other threads only wait
// (twice a layer for the norm, once for each K and V row stored): the scalar forms took ~2.5 us
// (a d = 2048 norm) and ~2 us (1024 halves) there. The sum of squares stays in double (exactly
// the reference's terms, only the order differs); the scaling is the reference's two float
// multiplies. F16C's VCVTPS2PH with round-to-nearest-even gives fp32_to_fp16's bytes for every
// input, NaNs included (quiet bit set, payload's top bits kept).
void rms_norm(const float* x, const float* w, int64_t d, float eps, float* out) {
  __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 16 <= d; i += 16) {
    const __m256d a = _mm256_cvtps_pd(_mm_loadu_ps(x + i)), b = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4));
    const __m256d c = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 8)), e = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 12));
    s0 = _mm256_fmadd_pd(a, a, s0);
    s1 = _mm256_fmadd_pd(b, b, s1);
    s2 = _mm256_fmadd_pd(c, c, s2);
    s3 = _mm256_fmadd_pd(e, e, s3);
  }
  alignas(32) double part[4];
  _mm256_store_pd(part, _mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3)));
  double ss = (part[0] + part[1]) + (part[2] + part[3]);
  for (int64_t j = i; j < d; ++j) ss += (double)x[j] * x[j];
  const float scale = (float)(1.0 / std::sqrt(ss / (double)d + (double)eps));
  const __m256 vs = _mm256_set1_ps(scale);
  for (i = 0; i + 8 <= d; i += 8)
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs), _mm256_loadu_ps(w + i)));
  for (; i < d; ++i) out[i] = x[i] * scale * w[i];
}

void f32_to_f16_row(const float* src, void* dst, int64_t n) {
  uint16_t* y = static_cast<uint16_t*>(dst);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) y[i] = fp32_to_fp16(src[i]);
}

// Row p of K or V as floats into buf (hd elements).
inline void load_row(const void* base, int64_t p, size_t stride, int64_t hd, bool f16, float* buf) {
  const uint8_t* row = static_cast<const uint8_t*>(base) + (size_t)p * stride;
  if (!f16) {
    std::memcpy(buf, row, (size_t)hd * 4);
    return;
  }
  const uint16_t* h = reinterpret_cast<const uint16_t*>(row);
  int64_t i = 0;
  for (; i + 8 <= hd; i += 8) _mm256_storeu_ps(buf + i, _mm256_cvtph_ps(ld128(reinterpret_cast<const uint8_t*>(h + i))));
  for (; i < hd; ++i) buf[i] = h2f(h[i]);
}

// K/V rows of one head are hd * elem bytes (128 for hd = 64 in F16) one cache row apart (all KV
// heads, ~1 KiB): a strided walk the hardware prefetchers follow poorly, so at long context the
// score and V passes waited on DRAM (bench-1b decode at depth 2048 streamed the cache at ~4 GB/s).
// Each pass prefetches the row kAttnPrefetchRows ahead.
constexpr int64_t kAttnPrefetchRows = kAttnPrefetchPositions;
inline void prefetch_row(const void* base, int64_t p, size_t stride, size_t bytes) {
  const char* r = static_cast<const char*>(base) + (size_t)p * stride;
  for (size_t o = 0; o < bytes; o += 64) _mm_prefetch(r + o, _MM_HINT_T0);
}

inline float dot(const float* a, const float* b, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  float s = hsum(_mm256_add_ps(s0, s1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// Scores for the common GQA case of 4 query heads: two K rows x 4 heads = 8 dot products per step,
// sharing each K load between the heads, reduced together with one HADD tree (7 HADDs + 1 permute
// for 8 results) instead of 8 separate horizontal sums.
inline void scores4(const float* q, const void* k, size_t stride, int64_t n_pos, int64_t hd, bool f16, float scale,
                    float* sc, float* buf0, float* buf1) {
  int64_t p = 0;
  const __m256 vs = _mm256_set1_ps(scale);
  const size_t row_bytes = (size_t)hd * (f16 ? 2 : 4);
  for (; p + 2 <= n_pos; p += 2) {
    if (p + kAttnPrefetchRows + 1 < n_pos) {
      prefetch_row(k, p + kAttnPrefetchRows, stride, row_bytes);
      prefetch_row(k, p + kAttnPrefetchRows + 1, stride, row_bytes);
    }
    load_row(k, p, stride, hd, f16, buf0);
    load_row(k, p + 1, stride, hd, f16, buf1);
    __m256 a[8];
    for (auto& x : a) x = _mm256_setzero_ps();
    for (int64_t i = 0; i < hd; i += 8) {
      const __m256 k0 = _mm256_load_ps(buf0 + i), k1 = _mm256_load_ps(buf1 + i);
      for (int g = 0; g < 4; ++g) {
        const __m256 qv = _mm256_loadu_ps(q + g * hd + i);
        a[g] = _mm256_fmadd_ps(qv, k0, a[g]);
        a[4 + g] = _mm256_fmadd_ps(qv, k1, a[4 + g]);
      }
    }
    const __m256 h0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    const __m256 h1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
    const __m256 r = _mm256_mul_ps(vs, _mm256_add_ps(_mm256_permute2f128_ps(h0, h1, 0x20), _mm256_permute2f128_ps(h0, h1, 0x31)));
    alignas(32) float o[8];
    _mm256_store_ps(o, r);
    for (int g = 0; g < 4; ++g) {
      sc[g * n_pos + p] = o[g];
      sc[g * n_pos + p + 1] = o[4 + g];
    }
  }
  for (; p < n_pos; ++p) {
    load_row(k, p, stride, hd, f16, buf0);
    for (int g = 0; g < 4; ++g) sc[g * n_pos + p] = dot(q + g * hd, buf0, hd) * scale;
  }
}

// V accumulation with the outputs in registers: 16 columns x up to 4 heads per pass over the
// positions (8 accumulators), converting V's F16 straight from the cache row.
inline void accumulate_v4(const float* w, int64_t ng, const void* v, size_t stride, int64_t n_pos, int64_t hd,
                          bool f16, float* out) {
  for (int64_t i = 0; i < hd; i += 16) {
    __m256 a[4][2];
    for (auto& x : a) x[0] = x[1] = _mm256_setzero_ps();
    for (int64_t p = 0; p < n_pos; ++p) {
      const uint8_t* row = static_cast<const uint8_t*>(v) + (size_t)p * stride;
      if (i == 0 && p + kAttnPrefetchRows < n_pos) prefetch_row(v, p + kAttnPrefetchRows, stride, (size_t)hd * (f16 ? 2 : 4));
      __m256 v0, v1;
      if (f16) {
        v0 = _mm256_cvtph_ps(ld128(row + 2 * i));
        v1 = _mm256_cvtph_ps(ld128(row + 2 * i + 16));
      } else {
        v0 = _mm256_loadu_ps(reinterpret_cast<const float*>(row) + i);
        v1 = _mm256_loadu_ps(reinterpret_cast<const float*>(row) + i + 8);
      }
      for (int64_t g = 0; g < ng; ++g) {
        const __m256 wv = _mm256_set1_ps(w[g * n_pos + p]);
        a[g][0] = _mm256_fmadd_ps(wv, v0, a[g][0]);
        a[g][1] = _mm256_fmadd_ps(wv, v1, a[g][1]);
      }
    }
    for (int64_t g = 0; g < ng; ++g) {
      _mm256_storeu_ps(out + g * hd + i, a[g][0]);
      _mm256_storeu_ps(out + g * hd + i + 8, a[g][1]);
    }
  }
}

void attention(const float* q, int64_t ng, const void* k, const void* v, size_t kv_stride, int64_t n_pos, int64_t hd,
               bool f16, float scale, float* out, float* scratch, float* lse) {
  alignas(32) float buf[1024], buf1[1024];
  MODU_CHECK(hd <= 1024);
  const bool fast = hd % 16 == 0;
  if (fast && ng == 4) {
    scores4(q, k, kv_stride, n_pos, hd, f16, scale, scratch, buf, buf1);
  } else {
    for (int64_t p = 0; p < n_pos; ++p) {  // scores: each K row converted once, dotted with all ng heads
      if (p + kAttnPrefetchRows < n_pos) prefetch_row(k, p + kAttnPrefetchRows, kv_stride, (size_t)hd * (f16 ? 2 : 4));
      load_row(k, p, kv_stride, hd, f16, buf);
      for (int64_t g = 0; g < ng; ++g) scratch[g * n_pos + p] = dot(q + g * hd, buf, hd) * scale;
    }
  }
  for (int64_t g = 0; g < ng; ++g) {  // softmax per head
    float* s = scratch + g * n_pos;
    __m256 mx = _mm256_set1_ps(-INFINITY);
    int64_t p = 0;
    for (; p + 8 <= n_pos; p += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(s + p));
    alignas(32) float m8[8];
    _mm256_store_ps(m8, mx);
    float m = *std::max_element(m8, m8 + 8);
    for (; p < n_pos; ++p) m = std::max(m, s[p]);
    __m256 sum = _mm256_setzero_ps();
    const __m256 vm = _mm256_set1_ps(m);
    for (p = 0; p + 8 <= n_pos; p += 8) {
      const __m256 e = exp_neg(_mm256_sub_ps(_mm256_loadu_ps(s + p), vm));
      _mm256_storeu_ps(s + p, e);
      sum = _mm256_add_ps(sum, e);
    }
    float tot = hsum(sum);
    for (; p < n_pos; ++p) tot += (s[p] = std::exp(s[p] - m));
    if (lse) lse[g] = m + std::log(tot);
    const float inv = 1.0f / tot;
    for (p = 0; p < n_pos; ++p) s[p] *= inv;
  }
  if (fast) {
    for (int64_t g0 = 0; g0 < ng; g0 += 4)
      accumulate_v4(scratch + g0 * n_pos, std::min<int64_t>(4, ng - g0), v, kv_stride, n_pos, hd, f16, out + g0 * hd);
    return;
  }
  std::fill(out, out + ng * hd, 0.0f);
  for (int64_t p = 0; p < n_pos; ++p) {  // V accumulation: each V row converted once
    if (p + kAttnPrefetchRows < n_pos) prefetch_row(v, p + kAttnPrefetchRows, kv_stride, (size_t)hd * (f16 ? 2 : 4));
    load_row(v, p, kv_stride, hd, f16, buf);
    for (int64_t g = 0; g < ng; ++g) {
      float* o = out + g * hd;
      const __m256 wv = _mm256_set1_ps(scratch[g * n_pos + p]);
      int64_t i = 0;
      for (; i + 8 <= hd; i += 8)
        _mm256_storeu_ps(o + i, _mm256_fmadd_ps(wv, _mm256_load_ps(buf + i), _mm256_loadu_ps(o + i)));
      for (; i < hd; ++i) o[i] += scratch[g * n_pos + p] * buf[i];
    }
  }
}

double probe_read(const void* p, size_t bytes) {
  const __m256i* v = static_cast<const __m256i*>(p);
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 4 <= bytes / 32; i += 4) {
    a0 = _mm256_add_epi64(a0, _mm256_load_si256(v + i));
    a1 = _mm256_add_epi64(a1, _mm256_load_si256(v + i + 1));
    a2 = _mm256_add_epi64(a2, _mm256_load_si256(v + i + 2));
    a3 = _mm256_add_epi64(a3, _mm256_load_si256(v + i + 3));
  }
  alignas(32) int64_t l[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(l), _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)));
  return (double)(l[0] + l[1] + l[2] + l[3]);
}

// Peak probes: named accumulators that pass through an empty asm each iteration stay in registers
// (an array indexed in a loop goes to the stack and adds a store-to-load forward to every chain),
// and the multiplicands pass through it too, so the multiply is not hoisted out of the loop.
#define MODU_PROBE_KEEP10(a, b)                                                                            \
  __asm__ volatile("" : "+x"(a##0), "+x"(a##1), "+x"(a##2), "+x"(a##3), "+x"(a##4), "+x"(a##5), "+x"(a##6), \
                   "+x"(a##7), "+x"(a##8), "+x"(a##9), "+x"(b))

// 10 independent FMA chains (4-cycle latency x 2 ports + slack); returns flops (2 per lane-FMA).
double probe_fma(int64_t iters) {
  __m256 a0 = _mm256_set1_ps(1.0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0,
         a9 = a0;
  __m256 m = _mm256_set1_ps(0.999999f);
  const __m256 c = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
    a0 = _mm256_fmadd_ps(a0, m, c), a1 = _mm256_fmadd_ps(a1, m, c), a2 = _mm256_fmadd_ps(a2, m, c);
    a3 = _mm256_fmadd_ps(a3, m, c), a4 = _mm256_fmadd_ps(a4, m, c), a5 = _mm256_fmadd_ps(a5, m, c);
    a6 = _mm256_fmadd_ps(a6, m, c), a7 = _mm256_fmadd_ps(a7, m, c), a8 = _mm256_fmadd_ps(a8, m, c);
    a9 = _mm256_fmadd_ps(a9, m, c);
    MODU_PROBE_KEEP10(a, m);
  }
  const __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                                 _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)),
                                               _mm256_add_ps(a8, a9)));
  volatile float sink = hsum(s);
  (void)sink;
  return (double)iters * 10 * 8 * 2;
}

// 10 independent int8 dot chains of the AVX2 kernels' step (PMADDUBSW, PMADDWD, add); returns ops
// (2 per int8 multiply-add).
double probe_dot(int64_t iters) {
  __m256i a0 = _mm256_set1_epi32(1), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0,
          a9 = a0;
  __m256i u = _mm256_set1_epi8(3);
  const __m256i s = _mm256_set1_epi8(-2), ones = _mm256_set1_epi16(1);
  auto dp = [&](__m256i acc) { return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), ones)); };
  for (int64_t it = 0; it < iters; ++it) {
    a0 = dp(a0), a1 = dp(a1), a2 = dp(a2), a3 = dp(a3), a4 = dp(a4);
    a5 = dp(a5), a6 = dp(a6), a7 = dp(a7), a8 = dp(a8), a9 = dp(a9);
    MODU_PROBE_KEEP10(a, u);
  }
  const __m256i t = _mm256_add_epi32(
      _mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3)),
      _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(a4, a5), _mm256_add_epi32(a6, a7)), _mm256_add_epi32(a8, a9)));
  volatile int sink = hsum_i32(t);
  (void)sink;
  return (double)iters * 10 * 32 * 2;
}
#undef MODU_PROBE_KEEP10

}  // namespace

void fill_avx2_gemm(KernelTable* t) {
  t->gemm_pack[(int)DType::Q4_0] = pack_q4_0;
  t->gemm_pack[(int)DType::Q4_K] = pack_q4_k;
  t->gemm_pack[(int)DType::Q4_1] = ref::gemm_pack(DType::Q4_1);
  t->gemm_pack[(int)DType::Q5_0] = ref::gemm_pack(DType::Q5_0);
  t->gemm_pack[(int)DType::Q5_1] = ref::gemm_pack(DType::Q5_1);
  t->gemm_pack[(int)DType::Q5_K] = ref::gemm_pack(DType::Q5_K);
  t->gemm_pack[(int)DType::Q8_0] = nullptr;  // u8 up to 255 would saturate PMADDUBSW (see top)
  t->gemm_pack[(int)DType::Q4_0_R16] = pack_r16<R16::kQ4_0>;
  t->gemm_pack[(int)DType::Q4_K_R16] = pack_r16<R16::kQ4_K>;
  t->gemm_pack[(int)DType::Q5_K_R16] = pack_r16<R16::kQ5_K>;
  t->gemm_pack[(int)DType::Q8_0_R16] = nullptr;  // as Q8_0
  t->gemm16 = gemm_panels<true>;
  t->gemm16_pack[(int)DType::Q6_K_R16] = pack_q6_k_r16;
  t->gemm = gemm_panels<false>;
  t->gemm_f32 = gemm_f32_avx2;
  t->attention = attention;
  t->attention_block = attention_block_avx2;
  t->swiglu = swiglu;
  t->gelu_tanh = gelu_tanh;
  t->gelu_quick = gelu_quick;
  t->rms_norm = rms_norm;
  t->quantize_row[(int)DType::F16] = f32_to_f16_row;
  t->probe_read = probe_read;
  t->probe_fma = probe_fma;
  t->probe_dot = probe_dot;
}

GemmPackFn avx2_pack_q8_0() { return pack_q8_0; }
GemmPackFn avx2_pack_q8_0_r16() { return pack_r16<R16::kQ8_0>; }

}  // namespace modu::kern
