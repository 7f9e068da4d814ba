// Scalar references for the prefill GEMM (panel packing per dtype, the panel x activation product)
// and for attention. They define the semantics in gemm.h; SIMD levels must pack byte-identically
// and compute the same sums up to float summation order. Also the scalar level's table entries.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "blocks.h"
#include "modu/core/fp16.h"
#include "modu/kernels/gemm.h"

namespace modu {

using namespace modu::blk;

namespace {

// Unpacks one 32-element block `b` of a row into u[32], *dw, *mw (w = dw * u - mw).
template <DType T>
void unpack_block(const uint8_t* row, int64_t b, uint8_t u[32], float* dw, float* mw) {
  if constexpr (T == DType::Q4_0 || T == DType::Q4_1) {
    using B = std::conditional_t<T == DType::Q4_0, BlockQ4_0, BlockQ4_1>;
    const B& x = reinterpret_cast<const B*>(row)[b];
    for (int i = 0; i < 16; ++i) { u[i] = x.qs[i] & 0xF; u[i + 16] = x.qs[i] >> 4; }
    *dw = fp16_to_fp32(x.d);
    if constexpr (T == DType::Q4_0) *mw = 8.0f * *dw; else *mw = -fp16_to_fp32(x.m);
  } else if constexpr (T == DType::Q5_0 || T == DType::Q5_1) {
    using B = std::conditional_t<T == DType::Q5_0, BlockQ5_0, BlockQ5_1>;
    const B& x = reinterpret_cast<const B*>(row)[b];
    uint32_t qh;
    std::memcpy(&qh, x.qh, 4);
    for (int i = 0; i < 16; ++i) {
      u[i] = (uint8_t)((x.qs[i] & 0xF) | (((qh >> i) & 1) << 4));
      u[i + 16] = (uint8_t)((x.qs[i] >> 4) | (((qh >> (i + 16)) & 1) << 4));
    }
    *dw = fp16_to_fp32(x.d);
    if constexpr (T == DType::Q5_0) *mw = 16.0f * *dw; else *mw = -fp16_to_fp32(x.m);
  } else if constexpr (T == DType::Q8_0) {
    const BlockQ8_0& x = reinterpret_cast<const BlockQ8_0*>(row)[b];
    for (int i = 0; i < 32; ++i) u[i] = (uint8_t)(x.qs[i] + 128);
    *dw = fp16_to_fp32(x.d);
    *mw = 128.0f * *dw;
  } else if constexpr (T == DType::Q4_K || T == DType::Q5_K) {
    using B = std::conditional_t<T == DType::Q4_K, BlockQ4_K, BlockQ5_K>;
    const B& x = reinterpret_cast<const B*>(row)[b / 8];
    const int j = (int)(b % 8);
    uint8_t sc, m;
    k4_scale_min(j, x.scales, &sc, &m);
    const uint8_t* qs = x.qs + 32 * (j / 2);
    for (int i = 0; i < 32; ++i) {
      u[i] = (j & 1) ? (qs[i] >> 4) : (qs[i] & 0xF);
      if constexpr (T == DType::Q5_K) u[i] |= (uint8_t)(((x.qh[i] >> j) & 1) << 4);
    }
    *dw = fp16_to_fp32(x.d) * (float)sc;
    *mw = fp16_to_fp32(x.dmin) * (float)m;
  } else if constexpr (T == DType::Q4_0_R16 || T == DType::Q8_0_R16) {  // repack.h layouts
    const bool q4 = T == DType::Q4_0_R16;
    const uint8_t* g = row + (size_t)(b / 16) * (q4 ? 288 : 544);
    const int lane = (int)(b % 16);
    for (int i = 0; i < 32; ++i) {
      const uint8_t byte = g[64 * (q4 ? (i % 16) / 4 : i / 4) + 4 * lane + i % 4];
      u[i] = q4 ? (uint8_t)(i < 16 ? byte & 0xF : byte >> 4) : byte;
    }
    uint16_t h;
    std::memcpy(&h, g + (q4 ? 256 : 512) + 2 * lane, 2);
    *dw = fp16_to_fp32(h);
    *mw = (q4 ? 8.0f : 128.0f) * *dw;
  } else if constexpr (T == DType::Q4_K_R16) {  // sub-block b % 16 of a 288-byte group
    const uint8_t* g = row + (size_t)(b / 16) * 288;
    const int l = (int)(b % 16);
    for (int i = 0; i < 32; ++i) {
      const uint8_t byte = g[64 * ((i % 16) / 4) + 4 * l + i % 4];
      u[i] = (uint8_t)(i < 16 ? byte & 0xF : byte >> 4);
    }
    uint16_t d, dmin;
    std::memcpy(&d, g + 280 + 2 * (l / 8), 2);
    std::memcpy(&dmin, g + 284 + 2 * (l / 8), 2);
    int sc, m;
    r16_kscale_get(g + 256, l, &sc, &m);
    *dw = fp16_to_fp32(d) * (float)sc;
    *mw = fp16_to_fp32(dmin) * (float)m;
  } else if constexpr (T == DType::Q5_K_R16) {  // sub-block b % 16 of a 352-byte group
    const uint8_t* g = row + (size_t)(b / 16) * 352;
    const int l = (int)(b % 16);
    for (int i = 0; i < 32; ++i) {
      const int half = i / 16, p = (i % 16) / 4, k = i % 4;
      u[i] = (uint8_t)(((g[64 * p + 4 * l + k] >> (4 * half)) & 0xF) | (((g[256 + 4 * l + k] >> (2 * p + half)) & 1) << 4));
    }
    uint16_t d, dmin;
    std::memcpy(&d, g + 344 + 2 * (l / 8), 2);
    std::memcpy(&dmin, g + 348 + 2 * (l / 8), 2);
    int sc, m;
    r16_kscale_get(g + 320, l, &sc, &m);
    *dw = fp16_to_fp32(d) * (float)sc;
    *mw = fp16_to_fp32(dmin) * (float)m;
  }
}

template <DType T>
void pack_ref(const void* w, size_t row_bytes, int64_t nrows, int64_t k, void* panel) {
  uint8_t* out = static_cast<uint8_t*>(panel);
  const int64_t nb = k / 32;
  for (int64_t r = 0; r < kGemmPanelRows; ++r) {
    const bool real = r < nrows;
    const uint8_t* row = static_cast<const uint8_t*>(w) + (size_t)(real ? r : 0) * row_bytes;
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t u[32];
      float dw, mw;
      unpack_block<T>(row, b, u, &dw, &mw);
      uint8_t* blk = out + (size_t)b * kGemmBlockBytes;
      for (int e = 0; e < 32; ++e) blk[(e / 4) * 64 + r * 4 + e % 4] = u[e];
      if (!real) dw = mw = 0.0f;
      std::memcpy(blk + 512 + 4 * r, &dw, 4);
      std::memcpy(blk + 576 + 4 * r, &mw, 4);
    }
  }
}

// Unpacks one 32-element block `b` of a row of a 16-scale dtype into u[32] and per-half
// dw[2], mw[2] (w = dw[h] * u - mw[h] for elements 16h..16h+15).
template <DType T>
void unpack_block16(const uint8_t* row, int64_t b, uint8_t u[32], float dw[2], float mw[2]) {
  if constexpr (T == DType::Q6_K) {  // d * sc * (q - 32), q 0..63
    const BlockQ6_K& x = reinterpret_cast<const BlockQ6_K*>(row)[b / 8];
    const int e0 = 32 * (int)(b % 8);
    for (int i = 0; i < 32; ++i) u[i] = (uint8_t)(q6k_value(x, e0 + i) + 32);
    for (int h = 0; h < 2; ++h) {
      dw[h] = fp16_to_fp32(x.d) * (float)x.scales[(e0 + 16 * h) / 16];
      mw[h] = 32.0f * dw[h];
    }
  } else if constexpr (T == DType::Q3_K) {  // d * (sc - 32) * q3 with q3 = u - 32 in -4..3: Q6_K's
    // form, so a Q3_K panel is byte for byte that of its widened Q6_K_R16 repacking (repack.h)
    const BlockQ3_K& x = reinterpret_cast<const BlockQ3_K*>(row)[b / 8];
    int8_t sc[16];
    q3k_scales(x.scales, sc);
    const int e0 = 32 * (int)(b % 8);
    for (int i = 0; i < 32; ++i) {
      const int e = e0 + i, hh = e / 128, j = (e % 128) / 32, l = e % 32;
      const int q2 = (x.qs[32 * hh + l] >> (2 * j)) & 3, hb = (x.hmask[l] >> (4 * hh + j)) & 1;
      u[i] = (uint8_t)(q2 + 28 + 4 * hb);
    }
    for (int h = 0; h < 2; ++h) {
      dw[h] = fp16_to_fp32(x.d) * (float)sc[(e0 + 16 * h) / 16];
      mw[h] = 32.0f * dw[h];
    }
  } else if constexpr (T == DType::Q2_K) {  // d * sc * q - dmin * m, q 0..3
    const BlockQ2_K& x = reinterpret_cast<const BlockQ2_K*>(row)[b / 8];
    const int e0 = 32 * (int)(b % 8);
    for (int i = 0; i < 32; ++i) {
      const int e = e0 + i;
      u[i] = (uint8_t)((x.qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3);
    }
    for (int h = 0; h < 2; ++h) {
      const uint8_t sm = x.scales[(e0 + 16 * h) / 16];
      dw[h] = fp16_to_fp32(x.d) * (float)(sm & 0xF);
      mw[h] = fp16_to_fp32(x.dmin) * (float)(sm >> 4);
    }
  } else if constexpr (T == DType::Q6_K_R16) {  // block b % 16 of a 420-byte group (repack.cpp)
    const uint8_t* g = row + (size_t)(b / 16) * 420;
    const int l = (int)(b % 16);
    for (int i = 0; i < 32; ++i) {
      const int half = i / 16, j = (i % 16) / 4, k = i % 4;
      const int lo = (g[64 * j + 4 * l + k] >> (4 * half)) & 0xF;
      const int hi = (g[256 + 64 * half + 4 * l + k] >> (2 * j)) & 3;
      u[i] = (uint8_t)(lo | (hi << 4));
    }
    uint16_t d;
    std::memcpy(&d, g + 416 + 2 * (l / 8), 2);
    for (int h = 0; h < 2; ++h) {
      dw[h] = fp16_to_fp32(d) * (float)(int8_t)g[384 + 16 * h + l];
      mw[h] = 32.0f * dw[h];
    }
  } else if constexpr (T == DType::Q2_K_R16) {  // block b % 16 of a 168-byte group
    const uint8_t* g = row + (size_t)(b / 16) * 168;
    const int l = (int)(b % 16);
    for (int i = 0; i < 32; ++i) {
      const int half = i / 16, j = (i % 16) / 4, k = i % 4;
      u[i] = (uint8_t)((g[64 * half + 4 * l + k] >> (2 * j)) & 3);
    }
    uint16_t d, dmin;
    std::memcpy(&d, g + 160 + 2 * (l / 8), 2);
    std::memcpy(&dmin, g + 164 + 2 * (l / 8), 2);
    for (int h = 0; h < 2; ++h) {
      const uint8_t sm = g[128 + 16 * h + l];
      dw[h] = fp16_to_fp32(d) * (float)(sm & 0xF);
      mw[h] = fp16_to_fp32(dmin) * (float)(sm >> 4);
    }
  }
}

template <DType T>
void pack16_ref(const void* w, size_t row_bytes, int64_t nrows, int64_t k, void* panel) {
  uint8_t* out = static_cast<uint8_t*>(panel);
  for (int64_t r = 0; r < kGemmPanelRows; ++r) {
    const bool real = r < nrows;
    const uint8_t* row = static_cast<const uint8_t*>(w) + (size_t)(real ? r : 0) * row_bytes;
    for (int64_t b = 0; b < k / 32; ++b) {
      uint8_t u[32];
      float dw[2], mw[2];
      unpack_block16<T>(row, b, u, dw, mw);
      uint8_t* blk = out + (size_t)b * kGemm16BlockBytes;
      for (int e = 0; e < 32; ++e) blk[(e / 4) * 64 + r * 4 + e % 4] = u[e];
      for (int h = 0; h < 2; ++h) {
        if (!real) dw[h] = mw[h] = 0.0f;
        std::memcpy(blk + 512 + 64 * h + 4 * r, &dw[h], 4);
        std::memcpy(blk + 640 + 64 * h + 4 * r, &mw[h], 4);
      }
    }
  }
}

// The panel x activation product of both formats: per (row, block) the int32 sum of u * q, scaled
// by dw * d and offset by mw * s, once per block (32-element panels) or per half block (G16).
template <bool G16>
void gemm_ref(const void* panels, int64_t n_panels, int64_t rows, const GemmAct& act, int64_t n_tok, float* y,
              int64_t ldy) {
  constexpr int kParts = G16 ? 2 : 1, kPartLen = 32 / kParts;
  const size_t bb = G16 ? kGemm16BlockBytes : kGemmBlockBytes;
  const int64_t nb = act.k / 32;
  const size_t pb = G16 ? gemm16_panel_bytes(act.k) : gemm_panel_bytes(act.k);
  for (int64_t p = 0; p < n_panels; ++p) {
    const uint8_t* pan = static_cast<const uint8_t*>(panels) + p * pb;
    for (int64_t r = 0; r < kGemmPanelRows && p * kGemmPanelRows + r < rows; ++r) {
      for (int64_t t = 0; t < n_tok; ++t) {
        float acc = 0;
        for (int64_t b = 0; b < nb; ++b) {
          const uint8_t* blk = pan + b * bb;
          for (int h = 0; h < kParts; ++h) {
            int32_t isum = 0;
            for (int e = kPartLen * h; e < kPartLen * (h + 1); ++e)
              isum += (int32_t)blk[(e / 4) * 64 + r * 4 + e % 4] * act.q[t * act.k + 32 * b + e];
            float dw, mw;
            std::memcpy(&dw, blk + (G16 ? 512 + 64 * h : 512) + 4 * r, 4);
            std::memcpy(&mw, blk + (G16 ? 640 + 64 * h : 576) + 4 * r, 4);
            const float s = G16 ? act.s16[t * 2 * nb + 2 * b + h] : act.s[t * nb + b];
            acc += dw * act.d[t * nb + b] * (float)isum - mw * s;
          }
        }
        y[t * ldy + p * kGemmPanelRows + r] = acc;
      }
    }
  }
}

}  // namespace

void gemm_act_from_q8_0(const void* q8_0, int64_t n_tok, int64_t k, int8_t* q, float* d, float* s, float* s16) {
  gemm_act_from_q8_0(q8_0, n_tok, k, q, d, s);
  for (int64_t b = 0; b < n_tok * (k / 32); ++b)
    for (int h = 0; h < 2; ++h) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) sum += q[32 * b + 16 * h + i];
      s16[2 * b + h] = d[b] * (float)sum;
    }
}

void gemm_act_from_q8_0(const void* q8_0, int64_t n_tok, int64_t k, int8_t* q, float* d, float* s) {
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(q8_0);
  const int64_t nb = n_tok * (k / 32);
  for (int64_t b = 0; b < nb; ++b) {
    std::memcpy(q + 32 * b, x[b].qs, 32);
    int sum = 0;
    for (int i = 0; i < 32; ++i) sum += x[b].qs[i];
    d[b] = fp16_to_fp32(x[b].d);
    s[b] = d[b] * (float)sum;
  }
}

namespace ref {

GemmPackFn gemm_pack(DType t) {
  switch (t) {
    case DType::Q4_0: return pack_ref<DType::Q4_0>;
    case DType::Q4_1: return pack_ref<DType::Q4_1>;
    case DType::Q5_0: return pack_ref<DType::Q5_0>;
    case DType::Q5_1: return pack_ref<DType::Q5_1>;
    case DType::Q8_0: return pack_ref<DType::Q8_0>;
    case DType::Q4_K: return pack_ref<DType::Q4_K>;
    case DType::Q5_K: return pack_ref<DType::Q5_K>;
    case DType::Q4_0_R16: return pack_ref<DType::Q4_0_R16>;
    case DType::Q8_0_R16: return pack_ref<DType::Q8_0_R16>;
    case DType::Q4_K_R16: return pack_ref<DType::Q4_K_R16>;
    case DType::Q5_K_R16: return pack_ref<DType::Q5_K_R16>;
    default: return nullptr;
  }
}


GemmPackFn gemm16_pack(DType t) {
  switch (t) {
    case DType::Q2_K: return pack16_ref<DType::Q2_K>;
    case DType::Q3_K: return pack16_ref<DType::Q3_K>;
    case DType::Q6_K: return pack16_ref<DType::Q6_K>;
    case DType::Q2_K_R16: return pack16_ref<DType::Q2_K_R16>;
    case DType::Q6_K_R16: return pack16_ref<DType::Q6_K_R16>;
    default: return nullptr;
  }
}

void gemm(const void* panels, int64_t n_panels, int64_t rows, const GemmAct& act, int64_t n_tok, float* y,
          int64_t ldy) {
  gemm_ref<false>(panels, n_panels, rows, act, n_tok, y, ldy);
}
void gemm16(const void* panels, int64_t n_panels, int64_t rows, const GemmAct& act, int64_t n_tok, float* y,
            int64_t ldy) {
  gemm_ref<true>(panels, n_panels, rows, act, n_tok, y, ldy);
}

void attention(const float* q, int64_t ng, const void* k, const void* v, size_t kv_stride, int64_t n_pos,
               int64_t hd, bool f16, float scale, float* out, float* scratch, float* lse) {
  auto elem = [&](const void* base, int64_t p, int64_t i) {
    const uint8_t* row = static_cast<const uint8_t*>(base) + (size_t)p * kv_stride;
    return f16 ? fp16_to_fp32(reinterpret_cast<const uint16_t*>(row)[i]) : reinterpret_cast<const float*>(row)[i];
  };
  for (int64_t g = 0; g < ng; ++g) {
    float* sc = scratch + g * n_pos;
    float mx = -INFINITY;
    for (int64_t p = 0; p < n_pos; ++p) {
      float s = 0;
      for (int64_t i = 0; i < hd; ++i) s += q[g * hd + i] * elem(k, p, i);
      sc[p] = s * scale;
      mx = std::max(mx, sc[p]);
    }
    float sum = 0;
    for (int64_t p = 0; p < n_pos; ++p) sum += (sc[p] = std::exp(sc[p] - mx));
    if (lse) lse[g] = mx + std::log(sum);
    float* o = out + g * hd;
    std::fill(o, o + hd, 0.0f);
    for (int64_t p = 0; p < n_pos; ++p) {
      const float wgt = sc[p] / sum;
      for (int64_t i = 0; i < hd; ++i) o[i] += wgt * elem(v, p, i);
    }
  }
}

void gemm_f32(const float* w, size_t ldw, int64_t rows, const float* x, size_t ldx, int64_t n_tok, int64_t k, float* y,
              size_t ldy) {
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t r = 0; r < rows; ++r) {
      float s = 0;
      for (int64_t i = 0; i < k; ++i) s += w[r * ldw + i] * x[t * ldx + i];
      y[t * ldy + r] = s;
    }
}

void attention_block(const float* q, size_t q_ld, int64_t n_q, const float* kt, const float* v, size_t v_ld,
                     int64_t n_kv, int64_t hd, float scale, float* out, size_t out_ld, float* scratch) {
  for (int64_t i = 0; i < n_q; ++i) {
    float* sc = scratch + i * n_kv;
    float mx = -INFINITY;
    for (int64_t p = 0; p < n_kv; ++p) {
      float s = 0;
      for (int64_t d = 0; d < hd; ++d) s += q[i * q_ld + d] * kt[(p / kAttnKeyBlock) * hd * kAttnKeyBlock + d * kAttnKeyBlock + p % kAttnKeyBlock];
      sc[p] = s * scale;
      mx = std::max(mx, sc[p]);
    }
    float sum = 0;
    for (int64_t p = 0; p < n_kv; ++p) sum += (sc[p] = std::exp(sc[p] - mx));
    float* o = out + i * out_ld;
    std::fill(o, o + hd, 0.0f);
    for (int64_t p = 0; p < n_kv; ++p) {
      const float wgt = sc[p] / sum;
      for (int64_t d = 0; d < hd; ++d) o[d] += wgt * v[p * v_ld + d];
    }
  }
}

void gelu_tanh(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    x[i] = 0.5f * v * (1.0f + std::tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
  }
}

void gelu_quick(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] / (1.0f + std::exp(-1.702f * x[i]));
}

void swiglu(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void rms_norm(const float* x, const float* w, int64_t d, float eps, float* out) {
  double ss = 0;
  for (int64_t i = 0; i < d; ++i) ss += (double)x[i] * x[i];
  const float scale = (float)(1.0 / std::sqrt(ss / (double)d + (double)eps));
  for (int64_t i = 0; i < d; ++i) out[i] = x[i] * scale * w[i];
}

double probe_read(const void* p, size_t bytes) {
  const uint64_t* v = static_cast<const uint64_t*>(p);
  uint64_t s0 = 0, s1 = 0;
  for (size_t i = 0; i + 2 <= bytes / 8; i += 2) { s0 += v[i]; s1 += v[i + 1]; }
  return (double)(s0 + s1);
}
double probe_fma(int64_t iters) {
  float a[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  for (int64_t it = 0; it < iters; ++it)
    for (float& x : a) x = x * 0.999999f + 1e-7f;
  volatile float sink = a[0] + a[7];
  (void)sink;
  return (double)iters * 8 * 2;
}
double probe_dot(int64_t iters) {
  int32_t a[8] = {};
  volatile int8_t u = 3, s = -2;
  const int8_t uu = u, ss = s;
  for (int64_t it = 0; it < iters; ++it)
    for (int32_t& x : a) x += uu * ss;
  volatile int32_t sink = a[0] + a[7];
  (void)sink;
  return (double)iters * 8 * 2;
}

}  // namespace ref
}  // namespace modu
