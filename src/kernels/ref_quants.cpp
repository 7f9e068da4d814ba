// Scalar reference kernels for the 32-element block formats Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1.
// Bit-compatible with GGML: quantize reproduces llama.cpp's *_ref quantizers byte for byte, and the
// dots follow GGML's generic vec_dot (integer sum per block, then one float multiply-add per block).
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "blocks.h"
#include "modu/core/fp16.h"
#include "ref_kernels.h"

namespace modu::ref {

using namespace modu::blk;

namespace {

// The value with the largest magnitude (first one wins on ties), keeping its sign.
inline float signed_absmax(const float* x, int n) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < n; ++j) {
    if (std::fabs(x[j]) > amax) { amax = std::fabs(x[j]); max = x[j]; }
  }
  return max;
}

inline void min_max(const float* x, int n, float* mn, float* mx) {
  float lo = FLT_MAX, hi = -FLT_MAX;
  for (int j = 0; j < n; ++j) {
    if (x[j] < lo) lo = x[j];
    if (x[j] > hi) hi = x[j];
  }
  *mn = lo;
  *mx = hi;
}

inline uint32_t load_qh(const uint8_t* p) { uint32_t v; std::memcpy(&v, p, 4); return v; }

}  // namespace

// ---------------------------------------------------------------- Q4_0
void quantize_q4_0(const float* src, void* dst, int64_t n) {
  BlockQ4_0* y = static_cast<BlockQ4_0*>(dst);
  for (int64_t b = 0; b < n / QK; ++b, src += QK) {
    // Map the extreme value to -8 so the full range [-8, 7] is used on the other side.
    const float d = signed_absmax(src, QK) / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < QK / 2; ++j) {
      // Truncation of (v + 8.5) is round-half-up; values never go below 0 because |v| <= 8.
      const int lo = std::min(15, (int)(int8_t)(src[j] * id + 8.5f));
      const int hi = std::min(15, (int)(int8_t)(src[j + QK / 2] * id + 8.5f));
      y[b].qs[j] = (uint8_t)(lo | (hi << 4));
    }
  }
}

void dequantize_q4_0(const void* src, float* dst, int64_t n) {
  const BlockQ4_0* x = static_cast<const BlockQ4_0*>(src);
  for (int64_t b = 0; b < n / QK; ++b, dst += QK) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < QK / 2; ++j) {
      dst[j] = (float)((x[b].qs[j] & 0xF) - 8) * d;
      dst[j + QK / 2] = (float)((x[b].qs[j] >> 4) - 8) * d;
    }
  }
}

float vec_dot_q4_0_q8_0(int64_t n, const void* w, const void* a) {
  const BlockQ4_0* x = static_cast<const BlockQ4_0*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / QK; ++b) {
    int s = 0;
    for (int j = 0; j < QK / 2; ++j) {
      s += ((x[b].qs[j] & 0xF) - 8) * y[b].qs[j];
      s += ((x[b].qs[j] >> 4) - 8) * y[b].qs[j + QK / 2];
    }
    sum += (float)s * fp16_to_fp32(x[b].d) * fp16_to_fp32(y[b].d);
  }
  return sum;
}

// ---------------------------------------------------------------- Q4_1
void quantize_q4_1(const float* src, void* dst, int64_t n) {
  BlockQ4_1* y = static_cast<BlockQ4_1*>(dst);
  for (int64_t b = 0; b < n / QK; ++b, src += QK) {
    float mn, mx;
    min_max(src, QK, &mn, &mx);
    const float d = (mx - mn) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    y[b].m = fp32_to_fp16(mn);
    for (int j = 0; j < QK / 2; ++j) {
      const int lo = std::min(15, (int)(int8_t)((src[j] - mn) * id + 0.5f));
      const int hi = std::min(15, (int)(int8_t)((src[j + QK / 2] - mn) * id + 0.5f));
      y[b].qs[j] = (uint8_t)(lo | (hi << 4));
    }
  }
}

void dequantize_q4_1(const void* src, float* dst, int64_t n) {
  const BlockQ4_1* x = static_cast<const BlockQ4_1*>(src);
  for (int64_t b = 0; b < n / QK; ++b, dst += QK) {
    const float d = fp16_to_fp32(x[b].d), m = fp16_to_fp32(x[b].m);
    for (int j = 0; j < QK / 2; ++j) {
      dst[j] = (float)(x[b].qs[j] & 0xF) * d + m;
      dst[j + QK / 2] = (float)(x[b].qs[j] >> 4) * d + m;
    }
  }
}

float vec_dot_q4_1_q8_1(int64_t n, const void* w, const void* a) {
  const BlockQ4_1* x = static_cast<const BlockQ4_1*>(w);
  const BlockQ8_1* y = static_cast<const BlockQ8_1*>(a);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / QK; ++b) {
    int s = 0;
    for (int j = 0; j < QK / 2; ++j) {
      s += (x[b].qs[j] & 0xF) * y[b].qs[j];
      s += (x[b].qs[j] >> 4) * y[b].qs[j + QK / 2];
    }
    // sum((q*dx + m) * qy*dy) = dx*dy*sum(q*qy) + m * (dy*sum(qy)) and the latter is y.s.
    sum += fp16_to_fp32(x[b].d) * fp16_to_fp32(y[b].d) * (float)s + fp16_to_fp32(x[b].m) * fp16_to_fp32(y[b].s);
  }
  return sum;
}

// ---------------------------------------------------------------- Q5_0
void quantize_q5_0(const float* src, void* dst, int64_t n) {
  BlockQ5_0* y = static_cast<BlockQ5_0*>(dst);
  for (int64_t b = 0; b < n / QK; ++b, src += QK) {
    const float d = signed_absmax(src, QK) / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < QK / 2; ++j) {
      const int lo = std::min(31, (int)(int8_t)(src[j] * id + 16.5f));
      const int hi = std::min(31, (int)(int8_t)(src[j + QK / 2] * id + 16.5f));
      y[b].qs[j] = (uint8_t)((lo & 0xF) | ((hi & 0xF) << 4));
      qh |= (uint32_t)(lo >> 4) << j;
      qh |= (uint32_t)(hi >> 4) << (j + QK / 2);
    }
    std::memcpy(y[b].qh, &qh, 4);
  }
}

void dequantize_q5_0(const void* src, float* dst, int64_t n) {
  const BlockQ5_0* x = static_cast<const BlockQ5_0*>(src);
  for (int64_t b = 0; b < n / QK; ++b, dst += QK) {
    const float d = fp16_to_fp32(x[b].d);
    const uint32_t qh = load_qh(x[b].qh);
    for (int j = 0; j < QK / 2; ++j) {
      const int lo = (x[b].qs[j] & 0xF) | (int)(((qh >> j) & 1) << 4);
      const int hi = (x[b].qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
      dst[j] = (float)(lo - 16) * d;
      dst[j + QK / 2] = (float)(hi - 16) * d;
    }
  }
}

float vec_dot_q5_0_q8_0(int64_t n, const void* w, const void* a) {
  const BlockQ5_0* x = static_cast<const BlockQ5_0*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / QK; ++b) {
    const uint32_t qh = load_qh(x[b].qh);
    int s = 0;
    for (int j = 0; j < QK / 2; ++j) {
      const int lo = ((x[b].qs[j] & 0xF) | (int)(((qh >> j) & 1) << 4)) - 16;
      const int hi = ((x[b].qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4)) - 16;
      s += lo * y[b].qs[j] + hi * y[b].qs[j + QK / 2];
    }
    sum += fp16_to_fp32(x[b].d) * fp16_to_fp32(y[b].d) * (float)s;
  }
  return sum;
}

// ---------------------------------------------------------------- Q5_1
void quantize_q5_1(const float* src, void* dst, int64_t n) {
  BlockQ5_1* y = static_cast<BlockQ5_1*>(dst);
  for (int64_t b = 0; b < n / QK; ++b, src += QK) {
    float mn, mx;
    min_max(src, QK, &mn, &mx);
    const float d = (mx - mn) / 31.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    y[b].m = fp32_to_fp16(mn);
    uint32_t qh = 0;
    for (int j = 0; j < QK / 2; ++j) {
      // GGML does not clamp here; (x - min) * id <= 31 + rounding, and truncation of +0.5 keeps it <= 31.
      const int lo = (uint8_t)((src[j] - mn) * id + 0.5f);
      const int hi = (uint8_t)((src[j + QK / 2] - mn) * id + 0.5f);
      y[b].qs[j] = (uint8_t)((lo & 0xF) | ((hi & 0xF) << 4));
      qh |= (uint32_t)((lo >> 4) & 1) << j;
      qh |= (uint32_t)((hi >> 4) & 1) << (j + QK / 2);
    }
    std::memcpy(y[b].qh, &qh, 4);
  }
}

void dequantize_q5_1(const void* src, float* dst, int64_t n) {
  const BlockQ5_1* x = static_cast<const BlockQ5_1*>(src);
  for (int64_t b = 0; b < n / QK; ++b, dst += QK) {
    const float d = fp16_to_fp32(x[b].d), m = fp16_to_fp32(x[b].m);
    const uint32_t qh = load_qh(x[b].qh);
    for (int j = 0; j < QK / 2; ++j) {
      const int lo = (x[b].qs[j] & 0xF) | (int)(((qh >> j) & 1) << 4);
      const int hi = (x[b].qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
      dst[j] = (float)lo * d + m;
      dst[j + QK / 2] = (float)hi * d + m;
    }
  }
}

float vec_dot_q5_1_q8_1(int64_t n, const void* w, const void* a) {
  const BlockQ5_1* x = static_cast<const BlockQ5_1*>(w);
  const BlockQ8_1* y = static_cast<const BlockQ8_1*>(a);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / QK; ++b) {
    const uint32_t qh = load_qh(x[b].qh);
    int s = 0;
    for (int j = 0; j < QK / 2; ++j) {
      const int lo = (x[b].qs[j] & 0xF) | (int)(((qh >> j) & 1) << 4);
      const int hi = (x[b].qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
      s += lo * y[b].qs[j] + hi * y[b].qs[j + QK / 2];
    }
    sum += fp16_to_fp32(x[b].d) * fp16_to_fp32(y[b].d) * (float)s + fp16_to_fp32(x[b].m) * fp16_to_fp32(y[b].s);
  }
  return sum;
}

// ---------------------------------------------------------------- importance-weighted Q4_0..Q5_1
// The GGML layouts above, with each block's scale (and minimum) chosen by the K-quants' weighted
// least-squares searches: element weights imp[i] * sqrt(sigma2 + x[i]^2), sigma2 the block's mean
// square. A block whose importances are all zero is weighted as if they were all one.
namespace {

void block_weights(const float* x, const float* imp, float* w) {
  float sigma2 = 0, sum = 0;
  for (int j = 0; j < QK; ++j) {
    sigma2 += x[j] * x[j];
    sum += std::max(imp[j], 0.0f);
  }
  sigma2 /= QK;
  for (int j = 0; j < QK; ++j) w[j] = (sum > 0 ? std::max(imp[j], 0.0f) : 1.0f) * std::sqrt(sigma2 + x[j] * x[j]);
}

// Symmetric blocks (Q4_0: nmax 8, Q5_0: nmax 16): codes L in [0, 2 nmax), x ~ d * (L - nmax).
float weighted_symmetric(const float* x, const float* imp, int nmax, uint8_t* L) {
  float w[QK];
  int8_t l[QK];
  block_weights(x, imp, w);
  const float d = make_qx_quants(QK, nmax, x, l, 1, w);
  for (int j = 0; j < QK; ++j) L[j] = (uint8_t)l[j];
  return d;
}

// Blocks with a minimum (Q4_1: nmax 15, Q5_1: nmax 31): x ~ d * L + m.
float weighted_affine(const float* x, const float* imp, int nmax, uint8_t* L, float* m) {
  float w[QK], the_min;
  uint8_t aux[QK];
  block_weights(x, imp, w);
  const float d = make_qkx2_quants(QK, nmax, x, w, L, &the_min, aux, -0.9f, 0.05f, 36, false);
  *m = -the_min;
  return d;
}

// 5-bit codes L[32] into a Q5_0/Q5_1 block: low nibbles as Q4_0, bit 4 of element j in qh bit j.
void pack_5bit(const uint8_t* L, uint8_t* qs, uint8_t* qh_out) {
  uint32_t qh = 0;
  for (int j = 0; j < QK / 2; ++j) {
    qs[j] = (uint8_t)((L[j] & 0xF) | ((L[j + QK / 2] & 0xF) << 4));
    qh |= (uint32_t)(L[j] >> 4) << j;
    qh |= (uint32_t)(L[j + QK / 2] >> 4) << (j + QK / 2);
  }
  std::memcpy(qh_out, &qh, 4);
}

}  // namespace

void quantize_q4_0_imatrix(const float* src, void* dst, int64_t n, const float* imp) {
  BlockQ4_0* y = static_cast<BlockQ4_0*>(dst);
  uint8_t L[QK];
  for (int64_t b = 0; b < n / QK; ++b, src += QK, imp += QK) {
    y[b].d = fp32_to_fp16(weighted_symmetric(src, imp, 8, L));
    for (int j = 0; j < QK / 2; ++j) y[b].qs[j] = (uint8_t)(L[j] | (L[j + QK / 2] << 4));
  }
}

void quantize_q5_0_imatrix(const float* src, void* dst, int64_t n, const float* imp) {
  BlockQ5_0* y = static_cast<BlockQ5_0*>(dst);
  uint8_t L[QK];
  for (int64_t b = 0; b < n / QK; ++b, src += QK, imp += QK) {
    y[b].d = fp32_to_fp16(weighted_symmetric(src, imp, 16, L));
    pack_5bit(L, y[b].qs, y[b].qh);
  }
}

void quantize_q4_1_imatrix(const float* src, void* dst, int64_t n, const float* imp) {
  BlockQ4_1* y = static_cast<BlockQ4_1*>(dst);
  uint8_t L[QK];
  for (int64_t b = 0; b < n / QK; ++b, src += QK, imp += QK) {
    float m;
    y[b].d = fp32_to_fp16(weighted_affine(src, imp, 15, L, &m));
    y[b].m = fp32_to_fp16(m);
    for (int j = 0; j < QK / 2; ++j) y[b].qs[j] = (uint8_t)(L[j] | (L[j + QK / 2] << 4));
  }
}

void quantize_q5_1_imatrix(const float* src, void* dst, int64_t n, const float* imp) {
  BlockQ5_1* y = static_cast<BlockQ5_1*>(dst);
  uint8_t L[QK];
  for (int64_t b = 0; b < n / QK; ++b, src += QK, imp += QK) {
    float m;
    y[b].d = fp32_to_fp16(weighted_affine(src, imp, 31, L, &m));
    y[b].m = fp32_to_fp16(m);
    pack_5bit(L, y[b].qs, y[b].qh);
  }
}

// ---------------------------------------------------------------- Q8_0 / Q8_1
void quantize_q8_0(const float* src, void* dst, int64_t n) {
  BlockQ8_0* y = static_cast<BlockQ8_0*>(dst);
  for (int64_t b = 0; b < n / QK; ++b, src += QK) {
    float amax = 0.0f;
    for (int j = 0; j < QK; ++j) amax = std::max(amax, std::fabs(src[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    // roundf: ties away from zero (the SIMD quantizers reproduce this exactly).
    for (int j = 0; j < QK; ++j) y[b].qs[j] = (int8_t)std::roundf(src[j] * id);
  }
}

void dequantize_q8_0(const void* src, float* dst, int64_t n) {
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(src);
  for (int64_t b = 0; b < n / QK; ++b, dst += QK) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < QK; ++j) dst[j] = (float)x[b].qs[j] * d;
  }
}

float vec_dot_q8_0_q8_0(int64_t n, const void* w, const void* a) {
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / QK; ++b) {
    int s = 0;
    for (int j = 0; j < QK; ++j) s += x[b].qs[j] * y[b].qs[j];
    sum += (float)s * (fp16_to_fp32(x[b].d) * fp16_to_fp32(y[b].d));
  }
  return sum;
}

void quantize_q8_1(const float* src, void* dst, int64_t n) {
  BlockQ8_1* y = static_cast<BlockQ8_1*>(dst);
  for (int64_t b = 0; b < n / QK; ++b, src += QK) {
    float amax = 0.0f;
    for (int j = 0; j < QK; ++j) amax = std::max(amax, std::fabs(src[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    int s = 0;
    for (int j = 0; j < QK; ++j) {
      y[b].qs[j] = (int8_t)std::roundf(src[j] * id);
      s += y[b].qs[j];
    }
    // s uses the unrounded float d (as GGML does), not the fp16-rounded one.
    y[b].s = fp32_to_fp16((float)s * d);
  }
}

void dequantize_q8_1(const void* src, float* dst, int64_t n) {
  const BlockQ8_1* x = static_cast<const BlockQ8_1*>(src);
  for (int64_t b = 0; b < n / QK; ++b, dst += QK) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < QK; ++j) dst[j] = (float)x[b].qs[j] * d;
  }
}

}  // namespace modu::ref
