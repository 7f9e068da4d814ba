// Scalar reference kernels for the K-quants (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) and their Q8_K activations.
// Quantizers follow llama.cpp's non-imatrix reference path (make_qx / make_q3 / make_qkx2 searches)
// so files written by modu match llama-quantize quality and layout; the *_imatrix variants weight
// the same searches by column importance; dots follow GGML's generic code.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "blocks.h"
#include "modu/core/fp16.h"
#include "ref_kernels.h"

namespace modu::ref {

using namespace modu::blk;

namespace {

constexpr float kGroupMaxEps = 1e-15f;

// Round to nearest, ties to even, for |x| < 2^22: adding 1.5 * 2^23 puts the integer in the mantissa.
inline int nearest_int(float x) {
  const float v = x + 12582912.0f;
  int32_t bits;
  std::memcpy(&bits, &v, 4);
  return (bits & 0x007fffff) - 0x00400000;
}

}  // namespace

// Symmetric quantizer for nmax levels each side: L[i] in [0, 2*nmax). rmse_type 1 weights each
// element by x^2 (or by qw) and tries 18 nearby inverse scales, keeping the least-squares-best one.
float make_qx_quants(int n, int nmax, const float* x, int8_t* L, int rmse_type, const float* qw) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) { amax = ax; max = x[i]; }
  }
  if (amax < kGroupMaxEps) {
    std::memset(L, 0, (size_t)n);
    return 0.0f;
  }
  float iscale = -nmax / max;
  if (rmse_type == 0) {
    for (int i = 0; i < n; ++i) L[i] = (int8_t)(nmax + std::max(-nmax, std::min(nmax - 1, nearest_int(iscale * x[i]))));
    return 1 / iscale;
  }
  auto weight = [&](int i) {
    if (qw) return qw[i];
    switch (rmse_type) {
      case 1: return x[i] * x[i];
      case 2: return 1.0f;
      case 3: return std::fabs(x[i]);
      default: return std::sqrt(std::fabs(x[i]));
    }
  };
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::max(-nmax, std::min(nmax - 1, nearest_int(iscale * x[i])));
    L[i] = (int8_t)(l + nmax);
    const float w = weight(i);
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::max(-nmax, std::min(nmax - 1, nearest_int(iscale * x[i])));
      const float w = weight(i);
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i)
        L[i] = (int8_t)(nmax + std::max(-nmax, std::min(nmax - 1, nearest_int(iscale * x[i]))));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

namespace {

// Q3_K sub-block quantizer: start from the max-abs scale, then up to 5 rounds of coordinate descent
// on single elements, accepting a change only if it improves the x^2-weighted least-squares fit.
float make_q3_quants(int n, int nmax, const float* x, int8_t* L, const float* imp = nullptr) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) { amax = ax; max = x[i]; }
  }
  if (amax < kGroupMaxEps) {
    std::memset(L, 0, (size_t)n);
    return 0.0f;
  }
  const float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::max(-nmax, std::min(nmax - 1, nearest_int(iscale * x[i])));
    L[i] = (int8_t)l;
    const float w = x[i] * x[i] * (imp ? imp[i] : 1.0f);
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  for (int itry = 0; itry < 5; ++itry) {
    int changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i] * (imp ? imp[i] : 1.0f);
      float slx = sumlx - w * x[i] * L[i];
      if (slx > 0) {
        float sl2 = suml2 - w * L[i] * L[i];
        int nl = std::max(-nmax, std::min(nmax - 1, nearest_int(x[i] * sl2 / slx)));
        if (nl != L[i]) {
          slx += w * x[i] * nl;
          sl2 += w * nl * nl;
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = (int8_t)nl;
            sumlx = slx;
            suml2 = sl2;
            ++changed;
          }
        }
      }
    }
    if (!changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = (int8_t)(L[i] + nmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

}  // namespace

// Asymmetric (scale + min) quantizer: L[i] in [0, nmax], x ~ scale * L - the_min. Scans nstep+1
// inverse scales around nmax/(max-min) and solves the weighted 2x2 least-squares problem for each.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                       uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad) {
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    std::memset(L, 0, (size_t)n);
    *the_min = -min;
    return 0.0f;
  }
  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    L[i] = (uint8_t)std::max(0, std::min(nmax, nearest_int(iscale * (x[i] - min))));
    float diff = scale * L[i] + min - x[i];
    diff = use_mad ? std::fabs(diff) : diff * diff;
    best_error += weights[i] * diff;
  }
  if (nstep < 1) {
    *the_min = -min;
    return scale;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::max(0, std::min(nmax, nearest_int(iscale * (x[i] - min))));
      Laux[i] = (uint8_t)l;
      const float w = weights[i];
      sum_l += w * l;
      sum_l2 += w * l * l;
      sum_xl += w * l * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float err = 0;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * Laux[i] + this_min - x[i];
        diff = use_mad ? std::fabs(diff) : diff * diff;
        err += weights[i] * diff;
      }
      if (err < best_error) {
        std::memcpy(L, Laux, (size_t)n);
        best_error = err;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

namespace {

// Importance weighting, chosen per type by the KL divergence from F16 of modu-tiny's mixes
// (ARCHITECTURE.md): Q4_K, Q5_K and Q6_K weight each element by imp * sqrt(sigma2 + x^2) with a
// wider scale search (llama.cpp's choice: -6.7% KL at Q4_K_M); Q2_K and Q3_K keep their own
// searches' element weights (|x|, x^2) multiplied by the importance (llama.cpp's weights made
// Q2_K 6.5% worse), so there even importance reproduces the unweighted quantizer byte for byte.
// A group whose importances are all zero (columns the calibration never reached) is weighted as if
// they were all one, so it is still quantized rather than zeroed.
void group_importance(const float* imp, int n, float* out) {
  float sum = 0;
  for (int i = 0; i < n; ++i) sum += std::max(imp[i], 0.0f);
  for (int i = 0; i < n; ++i) out[i] = sum > 0 ? std::max(imp[i], 0.0f) : 1.0f;
}

float mean_square(const float* x, int n) {
  float s = 0;
  for (int i = 0; i < n; ++i) s += x[i] * x[i];
  return s / (float)n;
}

// Packs 4 groups of 32 2-bit values (elements l, l+32, l+64, l+96 of a 128 chunk) into 32 bytes.
void pack_2bit(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < QK_K; j += 128)
    for (int l = 0; l < 32; ++l)
      qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

// Writes 8 6-bit scales and mins into the 12-byte Q4_K/Q5_K field (inverse of k4_scale_min).
void pack_k4_scales(const uint8_t ls[8], const uint8_t lm[8], uint8_t* s) {
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      s[j] = ls[j];
      s[j + 4] = lm[j];
    } else {
      s[j + 4] = (uint8_t)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
      s[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
      s[j] |= (uint8_t)((lm[j] >> 4) << 6);
    }
  }
}

// Shared by Q4_K (nmax 15) and Q5_K (nmax 31): per-32 scale/min search, 6-bit quantization of the
// scales and mins against the super-block maxima, then requantization of every element with the
// scales actually stored (so rounding of the scales is compensated in the element codes).
// With importance `qw` ([QK_K] or null) the element weights are multiplied by it.
void quantize_k4_common(const float* x, const float* qw, int nmax, float rmin, int nstep, uint8_t* scales12,
                        uint16_t* d_out, uint16_t* dmin_out, uint8_t L[QK_K]) {
  float weights[32], mins[8], scales[8];
  uint8_t Laux[32];
  float max_scale = 0, max_min = 0;
  float imp[32];
  const float sigma2 = qw ? 2 * mean_square(x, QK_K) : 0.0f;
  for (int j = 0; j < 8; ++j) {
    if (qw) {
      group_importance(qw + 32 * j, 32, imp);
      for (int l = 0; l < 32; ++l) weights[l] = imp[l] * std::sqrt(sigma2 + x[32 * j + l] * x[32 * j + l]);
      scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -0.9f, 0.05f, 36, false);
    } else {
      float sum_x2 = 0;
      for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
      const float av_x = std::sqrt(sum_x2 / 32);
      for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
      scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep, false);
    }
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  uint8_t ls[8], lm[8];
  for (int j = 0; j < 8; ++j) {
    ls[j] = std::min<uint8_t>(63, (uint8_t)nearest_int(inv_scale * scales[j]));
    lm[j] = std::min<uint8_t>(63, (uint8_t)nearest_int(inv_min * mins[j]));
  }
  std::memset(scales12, 0, 12);
  pack_k4_scales(ls, lm, scales12);
  *d_out = fp32_to_fp16(max_scale / 63.f);
  *dmin_out = fp32_to_fp16(max_min / 63.f);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    k4_scale_min(j, scales12, &sc, &m);
    const float d = fp16_to_fp32(*d_out) * sc;
    if (d == 0.0f) continue;
    const float dm = fp16_to_fp32(*dmin_out) * m;
    for (int ii = 0; ii < 32; ++ii)
      L[32 * j + ii] = (uint8_t)std::max(0, std::min(nmax, nearest_int((x[32 * j + ii] + dm) / d)));
  }
}

// ---------------------------------------------------------------- Q2_K
// imp: null (unweighted heuristics, llama.cpp's reference) or [n] importances (weighted search).
void q2_k_impl(const float* src, void* dst, int64_t n, const float* imp) {
  BlockQ2_K* y = static_cast<BlockQ2_K*>(dst);
  uint8_t L[QK_K], Laux[16];
  float weights[16], mins[16], scales[16];
  const float q4scale = 15.f;
  for (int64_t b = 0; b < n / QK_K; ++b, src += QK_K) {
    const float* x = src;
    const float* qw = imp ? imp + b * QK_K : nullptr;
    float max_scale = 0, max_min = 0, gi[16];
    for (int j = 0; j < 16; ++j) {
      if (qw) group_importance(qw + 16 * j, 16, gi);
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]) * (qw ? gi[l] : 1.0f);
      scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
    }
    for (int j = 0; j < 16; ++j) {
      max_scale = std::max(max_scale, scales[j]);
      max_min = std::max(max_min, mins[j]);
    }
    if (max_scale > 0) {
      const float iscale = q4scale / max_scale;
      for (int j = 0; j < 16; ++j) y[b].scales[j] = (uint8_t)nearest_int(iscale * scales[j]);
      y[b].d = fp32_to_fp16(max_scale / q4scale);
    } else {
      std::memset(y[b].scales, 0, 16);
      y[b].d = fp32_to_fp16(0.f);
    }
    if (max_min > 0) {
      const float iscale = q4scale / max_min;
      for (int j = 0; j < 16; ++j) y[b].scales[j] |= (uint8_t)(nearest_int(iscale * mins[j]) << 4);
      y[b].dmin = fp32_to_fp16(max_min / q4scale);
    } else {
      y[b].dmin = fp32_to_fp16(0.f);
    }
    for (int j = 0; j < 16; ++j) {
      const float d = fp16_to_fp32(y[b].d) * (y[b].scales[j] & 0xF);
      if (d == 0.0f) continue;
      const float dm = fp16_to_fp32(y[b].dmin) * (y[b].scales[j] >> 4);
      for (int ii = 0; ii < 16; ++ii)
        L[16 * j + ii] = (uint8_t)std::max(0, std::min(3, nearest_int((x[16 * j + ii] + dm) / d)));
    }
    pack_2bit(L, y[b].qs);
  }
}

}  // namespace

void quantize_q2_k(const float* src, void* dst, int64_t n) { q2_k_impl(src, dst, n, nullptr); }
void quantize_q2_k_imatrix(const float* src, void* dst, int64_t n, const float* imp) { q2_k_impl(src, dst, n, imp); }

void dequantize_q2_k(const void* src, float* dst, int64_t n) {
  const BlockQ2_K* x = static_cast<const BlockQ2_K*>(src);
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const float d = fp16_to_fp32(x[b].d), dmin = fp16_to_fp32(x[b].dmin);
    // Element e: chunk c = e/128, shift = 2*((e%128)/32), byte 32c + e%32, sub-block e/16.
    for (int e = 0; e < QK_K; ++e) {
      const int q = (x[b].qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
      const uint8_t sc = x[b].scales[e / 16];
      *dst++ = d * (float)(sc & 0xF) * (float)q - dmin * (float)(sc >> 4);
    }
  }
}

float vec_dot_q2_k_q8_k(int64_t n, const void* w, const void* a) {
  const BlockQ2_K* x = static_cast<const BlockQ2_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float sum = 0;
  for (int64_t b = 0; b < n / QK_K; ++b) {
    int summs = 0;
    for (int j = 0; j < 16; ++j) summs += y[b].bsums[j] * (x[b].scales[j] >> 4);
    int isum = 0;
    for (int j = 0; j < 16; ++j) {  // sub-block j covers elements 16j..16j+15
      int s = 0;
      for (int l = 0; l < 16; ++l) {
        const int e = 16 * j + l;
        s += y[b].qs[e] * ((x[b].qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3);
      }
      isum += (x[b].scales[j] & 0xF) * s;
    }
    const float dall = y[b].d * fp16_to_fp32(x[b].d);
    const float dmin = y[b].d * fp16_to_fp32(x[b].dmin);
    sum += dall * (float)isum - dmin * (float)summs;
  }
  return sum;
}

// ---------------------------------------------------------------- Q3_K
namespace {

void q3_k_impl(const float* src, void* dst, int64_t n, const float* imp) {
  BlockQ3_K* y = static_cast<BlockQ3_K*>(dst);
  int8_t L[QK_K];
  float scales[16], gi[16];
  for (int64_t b = 0; b < n / QK_K; ++b, src += QK_K) {
    const float* x = src;
    const float* qw = imp ? imp + b * QK_K : nullptr;
    float max_scale = 0, amax = 0;
    for (int j = 0; j < 16; ++j) {
      if (qw) group_importance(qw + 16 * j, 16, gi);
      scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j, qw ? gi : nullptr);
      if (std::fabs(scales[j]) > amax) { amax = std::fabs(scales[j]); max_scale = scales[j]; }
    }
    std::memset(y[b].scales, 0, 12);
    if (max_scale != 0.0f) {
      const float iscale = -32.f / max_scale;
      for (int j = 0; j < 16; ++j) {
        const int l = std::max(-32, std::min(31, (int)(int8_t)nearest_int(iscale * scales[j]))) + 32;
        if (j < 8) y[b].scales[j] = (uint8_t)(l & 0xF);
        else y[b].scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
        y[b].scales[j % 4 + 8] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
      }
      y[b].d = fp32_to_fp16(1 / iscale);
    } else {
      y[b].d = fp32_to_fp16(0.f);
    }
    int8_t sc[16];
    q3k_scales(y[b].scales, sc);
    for (int j = 0; j < 16; ++j) {
      const float d = fp16_to_fp32(y[b].d) * sc[j];
      if (d == 0.0f) continue;
      for (int ii = 0; ii < 16; ++ii)
        L[16 * j + ii] = (int8_t)(std::max(-4, std::min(3, nearest_int(x[16 * j + ii] / d))) + 4);
    }
    // The 3rd bit of element e goes to hmask[e % 32] bit e / 32; the low 2 bits are packed like Q2_K.
    std::memset(y[b].hmask, 0, 32);
    uint8_t Lu[QK_K];
    for (int e = 0; e < QK_K; ++e) {
      int l = L[e];
      if (l > 3) {
        y[b].hmask[e % 32] |= (uint8_t)(1u << (e / 32));
        l -= 4;
      }
      Lu[e] = (uint8_t)l;
    }
    pack_2bit(Lu, y[b].qs);
  }
}

}  // namespace

void quantize_q3_k(const float* src, void* dst, int64_t n) { q3_k_impl(src, dst, n, nullptr); }
void quantize_q3_k_imatrix(const float* src, void* dst, int64_t n, const float* imp) { q3_k_impl(src, dst, n, imp); }

void dequantize_q3_k(const void* src, float* dst, int64_t n) {
  const BlockQ3_K* x = static_cast<const BlockQ3_K*>(src);
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    int8_t sc[16];
    q3k_scales(x[b].scales, sc);
    for (int e = 0; e < QK_K; ++e) {
      const int q2 = (x[b].qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
      const int h = (x[b].hmask[e % 32] >> (e / 32)) & 1;
      *dst++ = d * (float)sc[e / 16] * (float)(q2 - (h ? 0 : 4));
    }
  }
}

float vec_dot_q3_k_q8_k(int64_t n, const void* w, const void* a) {
  const BlockQ3_K* x = static_cast<const BlockQ3_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float sum = 0;
  for (int64_t b = 0; b < n / QK_K; ++b) {
    int8_t sc[16];
    q3k_scales(x[b].scales, sc);
    int isum = 0;
    for (int j = 0; j < 16; ++j) {
      int s = 0;
      for (int l = 0; l < 16; ++l) {
        const int e = 16 * j + l;
        const int q2 = (x[b].qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
        const int h = (x[b].hmask[e % 32] >> (e / 32)) & 1;
        s += y[b].qs[e] * (q2 - (h ? 0 : 4));
      }
      isum += sc[j] * s;
    }
    sum += fp16_to_fp32(x[b].d) * y[b].d * (float)isum;
  }
  return sum;
}

// ---------------------------------------------------------------- Q4_K
namespace {

void q4_k_impl(const float* src, void* dst, int64_t n, const float* imp) {
  BlockQ4_K* y = static_cast<BlockQ4_K*>(dst);
  uint8_t L[QK_K];
  for (int64_t b = 0; b < n / QK_K; ++b, src += QK_K) {
    quantize_k4_common(src, imp ? imp + b * QK_K : nullptr, 15, -1.f, 20, y[b].scales, &y[b].d, &y[b].dmin, L);
    // 64 elements per 32 bytes: low nibbles are sub-block 2c, high nibbles sub-block 2c+1.
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) y[b].qs[32 * c + l] = (uint8_t)(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
  }
}

}  // namespace

void quantize_q4_k(const float* src, void* dst, int64_t n) { q4_k_impl(src, dst, n, nullptr); }
void quantize_q4_k_imatrix(const float* src, void* dst, int64_t n, const float* imp) { q4_k_impl(src, dst, n, imp); }

void dequantize_q4_k(const void* src, float* dst, int64_t n) {
  const BlockQ4_K* x = static_cast<const BlockQ4_K*>(src);
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const float d = fp16_to_fp32(x[b].d), dmin = fp16_to_fp32(x[b].dmin);
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      k4_scale_min(j, x[b].scales, &sc, &m);
      const float dl = d * sc, ml = dmin * m;
      const uint8_t* q = x[b].qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      for (int l = 0; l < 32; ++l) *dst++ = dl * (float)((q[l] >> shift) & 0xF) - ml;
    }
  }
}

float vec_dot_q4_k_q8_k(int64_t n, const void* w, const void* a) {
  const BlockQ4_K* x = static_cast<const BlockQ4_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float sum = 0;
  for (int64_t b = 0; b < n / QK_K; ++b) {
    int isum = 0, msum = 0;
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      k4_scale_min(j, x[b].scales, &sc, &m);
      const uint8_t* q = x[b].qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      int s = 0;
      for (int l = 0; l < 32; ++l) s += y[b].qs[32 * j + l] * ((q[l] >> shift) & 0xF);
      isum += sc * s;
      msum += m * (y[b].bsums[2 * j] + y[b].bsums[2 * j + 1]);
    }
    sum += fp16_to_fp32(x[b].d) * y[b].d * (float)isum - fp16_to_fp32(x[b].dmin) * y[b].d * (float)msum;
  }
  return sum;
}

// ---------------------------------------------------------------- Q5_K
namespace {

void q5_k_impl(const float* src, void* dst, int64_t n, const float* imp) {
  BlockQ5_K* y = static_cast<BlockQ5_K*>(dst);
  uint8_t L[QK_K];
  for (int64_t b = 0; b < n / QK_K; ++b, src += QK_K) {
    quantize_k4_common(src, imp ? imp + b * QK_K : nullptr, 31, -0.5f, 15, y[b].scales, &y[b].d, &y[b].dmin, L);
    // Like Q4_K for the low nibbles; bit 4 of element 32*j + l goes to qh[l] bit j.
    std::memset(y[b].qh, 0, 32);
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        const int l1 = L[64 * c + l], l2 = L[64 * c + 32 + l];
        y[b].qh[l] |= (uint8_t)(((l1 >> 4) << (2 * c)) | ((l2 >> 4) << (2 * c + 1)));
        y[b].qs[32 * c + l] = (uint8_t)((l1 & 0xF) | ((l2 & 0xF) << 4));
      }
    }
  }
}

}  // namespace

void quantize_q5_k(const float* src, void* dst, int64_t n) { q5_k_impl(src, dst, n, nullptr); }
void quantize_q5_k_imatrix(const float* src, void* dst, int64_t n, const float* imp) { q5_k_impl(src, dst, n, imp); }

void dequantize_q5_k(const void* src, float* dst, int64_t n) {
  const BlockQ5_K* x = static_cast<const BlockQ5_K*>(src);
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const float d = fp16_to_fp32(x[b].d), dmin = fp16_to_fp32(x[b].dmin);
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      k4_scale_min(j, x[b].scales, &sc, &m);
      const float dl = d * sc, ml = dmin * m;
      const uint8_t* q = x[b].qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      for (int l = 0; l < 32; ++l) {
        const int v = ((q[l] >> shift) & 0xF) | (((x[b].qh[l] >> j) & 1) << 4);
        *dst++ = dl * (float)v - ml;
      }
    }
  }
}

float vec_dot_q5_k_q8_k(int64_t n, const void* w, const void* a) {
  const BlockQ5_K* x = static_cast<const BlockQ5_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float sum = 0;
  for (int64_t b = 0; b < n / QK_K; ++b) {
    int isum = 0, msum = 0;
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      k4_scale_min(j, x[b].scales, &sc, &m);
      const uint8_t* q = x[b].qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      int s = 0;
      for (int l = 0; l < 32; ++l)
        s += y[b].qs[32 * j + l] * (((q[l] >> shift) & 0xF) | (((x[b].qh[l] >> j) & 1) << 4));
      isum += sc * s;
      msum += m * (y[b].bsums[2 * j] + y[b].bsums[2 * j + 1]);
    }
    sum += fp16_to_fp32(x[b].d) * y[b].d * (float)isum - fp16_to_fp32(x[b].dmin) * y[b].d * (float)msum;
  }
  return sum;
}

// ---------------------------------------------------------------- Q6_K
namespace {

void q6_k_impl(const float* src, void* dst, int64_t n, const float* imp) {
  BlockQ6_K* y = static_cast<BlockQ6_K*>(dst);
  int8_t L[QK_K];
  float scales[16], weights[16];
  for (int64_t b = 0; b < n / QK_K; ++b, src += QK_K) {
    const float* x = src;
    const float* qw = imp ? imp + b * QK_K : nullptr;
    const float sigma2 = qw ? mean_square(x, QK_K) : 0.0f;
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < 16; ++ib) {
      if (qw) {
        group_importance(qw + 16 * ib, 16, weights);
        for (int l = 0; l < 16; ++l) weights[l] *= std::sqrt(sigma2 + x[16 * ib + l] * x[16 * ib + l]);
      }
      scales[ib] = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, 1, qw ? weights : nullptr);
      if (std::fabs(scales[ib]) > max_abs_scale) { max_abs_scale = std::fabs(scales[ib]); max_scale = scales[ib]; }
    }
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&y[b], 0, sizeof(BlockQ6_K));
      continue;
    }
    const float iscale = -128.f / max_scale;
    y[b].d = fp32_to_fp16(1 / iscale);
    for (int ib = 0; ib < 16; ++ib) y[b].scales[ib] = (int8_t)std::min(127, nearest_int(iscale * scales[ib]));
    for (int j = 0; j < 16; ++j) {
      const float d = fp16_to_fp32(y[b].d) * y[b].scales[j];
      if (d == 0.0f) continue;
      for (int ii = 0; ii < 16; ++ii)
        L[16 * j + ii] = (int8_t)(std::max(-32, std::min(31, nearest_int(x[16 * j + ii] / d))) + 32);
    }
    // Per 128 half h, element 32*g + l (g = 0..3): low nibble in ql[64h + 32*(g%2) + l] (high nibble
    // when g >= 2), top 2 bits in qh[32h + l] at bit 2g.
    for (int h = 0; h < 2; ++h) {
      const int8_t* Lh = L + 128 * h;
      uint8_t* ql = y[b].ql + 64 * h;
      uint8_t* qh = y[b].qh + 32 * h;
      for (int l = 0; l < 32; ++l) {
        ql[l] = (uint8_t)((Lh[l] & 0xF) | ((Lh[l + 64] & 0xF) << 4));
        ql[l + 32] = (uint8_t)((Lh[l + 32] & 0xF) | ((Lh[l + 96] & 0xF) << 4));
        qh[l] = (uint8_t)((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) | ((Lh[l + 96] >> 4) << 6));
      }
    }
  }
}

}  // namespace

void quantize_q6_k(const float* src, void* dst, int64_t n) { q6_k_impl(src, dst, n, nullptr); }
void quantize_q6_k_imatrix(const float* src, void* dst, int64_t n, const float* imp) { q6_k_impl(src, dst, n, imp); }


void dequantize_q6_k(const void* src, float* dst, int64_t n) {
  const BlockQ6_K* x = static_cast<const BlockQ6_K*>(src);
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    for (int e = 0; e < QK_K; ++e) *dst++ = d * (float)x[b].scales[e / 16] * (float)q6k_value(x[b], e);
  }
}

float vec_dot_q6_k_q8_k(int64_t n, const void* w, const void* a) {
  const BlockQ6_K* x = static_cast<const BlockQ6_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float sum = 0;
  for (int64_t b = 0; b < n / QK_K; ++b) {
    int isum = 0;
    for (int j = 0; j < 16; ++j) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += y[b].qs[16 * j + l] * q6k_value(x[b], 16 * j + l);
      isum += x[b].scales[j] * s;
    }
    sum += fp16_to_fp32(x[b].d) * y[b].d * (float)isum;
  }
  return sum;
}

// ---------------------------------------------------------------- Q8_K
void quantize_q8_k(const float* src, void* dst, int64_t n) {
  BlockQ8_K* y = static_cast<BlockQ8_K*>(dst);
  for (int64_t b = 0; b < n / QK_K; ++b, src += QK_K) {
    float max = 0, amax = 0;
    for (int j = 0; j < QK_K; ++j) {
      if (std::fabs(src[j]) > amax) { amax = std::fabs(src[j]); max = src[j]; }
    }
    if (amax == 0.0f) {
      std::memset(&y[b], 0, sizeof(BlockQ8_K));
      continue;
    }
    // -127 (not -128) keeps every product with a signed weight inside int16 in maddubs-style SIMD.
    const float iscale = -127.f / max;
    for (int j = 0; j < QK_K; ++j) y[b].qs[j] = (int8_t)std::min(127, nearest_int(iscale * src[j]));
    for (int j = 0; j < 16; ++j) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += y[b].qs[16 * j + l];
      y[b].bsums[j] = (int16_t)s;
    }
    y[b].d = 1 / iscale;
  }
}

void dequantize_q8_k(const void* src, float* dst, int64_t n) {
  const BlockQ8_K* x = static_cast<const BlockQ8_K*>(src);
  for (int64_t b = 0; b < n / QK_K; ++b)
    for (int j = 0; j < QK_K; ++j) *dst++ = x[b].d * (float)x[b].qs[j];
}

}  // namespace modu::ref
