// Repacked decode layouts (modu/kernels/repack.h): the repacking itself and the scalar references
// (dequantize, quantize, dot) that define Q4_0_R16, Q8_0_R16, Q2_K_R16, Q4_K_R16, Q5_K_R16, Q6_K_R16 and
// their activation format Q8_0_A16.
#include "modu/kernels/repack.h"

#include <cstring>
#include <vector>

#include "blocks.h"
#include "modu/core/fp16.h"
#include "modu/core/status.h"
#include "ref_kernels.h"

namespace modu {

using namespace blk;

namespace {

constexpr int kG = 16;                       // blocks per group
constexpr size_t kQ4Group = 288, kQ8Group = 544, kA16Group = 640, kQ4KGroup = 288, kQ6KGroup = 420, kQ5KGroup = 352, kQ2KGroup = 168;

// Group g of 16 Q4_0 blocks -> one Q4_0_R16 group.
void group_q4_0(const BlockQ4_0* x, uint8_t* o) {
  for (int b = 0; b < kG; ++b) {
    for (int j = 0; j < 4; ++j) std::memcpy(o + 64 * j + 4 * b, x[b].qs + 4 * j, 4);
    std::memcpy(o + 256 + 2 * b, &x[b].d, 2);
  }
}
// q + 128 as a byte is q with its top bit flipped: 4 bytes per XOR.
void group_q8_0(const BlockQ8_0* x, uint8_t* o) {
  for (int b = 0; b < kG; ++b) {
    for (int j = 0; j < 8; ++j) {
      uint32_t w;
      std::memcpy(&w, x[b].qs + 4 * j, 4);
      w ^= 0x80808080u;
      std::memcpy(o + 64 * j + 4 * b, &w, 4);
    }
    std::memcpy(o + 512 + 2 * b, &x[b].d, 2);
  }
}
// Two Q4_K super-blocks -> one Q4_K_R16 group: sub-block l's 32 nibbles as 16 "pair bytes"
// (element i low, i + 16 high, as in Q4_0), its 6-bit scale and min as lane l of the 12-bit
// scale field (r16_kscale_put), then d[2], dmin[2].
void group_q4_k(const BlockQ4_K* x, uint8_t* o) {
  for (int l = 0; l < kG; ++l) {
    const BlockQ4_K& sb = x[l / 8];
    const int j = l % 8;
    const uint8_t* q = sb.qs + 32 * (j / 2);
    const int shift = 4 * (j % 2);
    for (int i = 0; i < 16; ++i)
      o[64 * (i / 4) + 4 * l + i % 4] = (uint8_t)(((q[i] >> shift) & 0xF) | (((q[i + 16] >> shift) & 0xF) << 4));
    uint8_t sc, m;
    k4_scale_min(j, sb.scales, &sc, &m);
    r16_kscale_put(o + 256, l, sc, m);
  }
  for (int s = 0; s < 2; ++s) {
    std::memcpy(o + 280 + 2 * s, &x[s].d, 2);
    std::memcpy(o + 284 + 2 * s, &x[s].dmin, 2);
  }
}
// Two Q5_K super-blocks -> one Q5_K_R16 group: the low 4 bits exactly as Q4_K_R16, the 5th bits
// in one piece (byte 4l + k, bit 2j + half = element 16 half + 4j + k of sub-block l), then
// the 12-bit scale field (24 bytes), d[2], dmin[2].
void group_q5_k(const BlockQ5_K* x, uint8_t* o) {
  // The 256 unsigned 5-bit values of each super-block in element order first (sub-block j:
  // nibble j % 2 of qs[32 (j / 2) + i], bit j of qh[i]), in loops the compiler vectorizes; then
  // the group is plain byte shuffling (per-element bit gathering took ~3 s for bench-1b).
  uint8_t v[2][256];
  for (int s = 0; s < 2; ++s)
    for (int j = 0; j < 8; ++j)
      for (int i = 0; i < 32; ++i)
        v[s][32 * j + i] = (uint8_t)(((x[s].qs[32 * (j / 2) + i] >> (4 * (j % 2))) & 0xF) | (((x[s].qh[i] >> j) & 1) << 4));
  for (int l = 0; l < kG; ++l) {
    const uint8_t* vl = v[l / 8] + 32 * (l % 8);
    for (int k = 0; k < 4; ++k) {
      uint8_t hbits = 0;
      for (int p = 0; p < 4; ++p) {
        const int e0 = 4 * p + k, e1 = 16 + e0;  // the low / high nibble of one pair byte
        o[64 * p + 4 * l + k] = (uint8_t)((vl[e0] & 0xF) | ((vl[e1] & 0xF) << 4));
        hbits |= (uint8_t)(((vl[e0] >> 4) << (2 * p)) | ((vl[e1] >> 4) << (2 * p + 1)));
      }
      o[256 + 4 * l + k] = hbits;
    }
    uint8_t sc, m;
    k4_scale_min(l % 8, x[l / 8].scales, &sc, &m);
    r16_kscale_put(o + 320, l, sc, m);
  }
  for (int s = 0; s < 2; ++s) {
    std::memcpy(o + 344 + 2 * s, &x[s].d, 2);
    std::memcpy(o + 348 + 2 * s, &x[s].dmin, 2);
  }
}
// Two Q2_K super-blocks -> one Q2_K_R16 group (168 bytes, as Q2_K): 16 blocks of 32 (sub-block
// pairs); two pieces of 2-bit values (piece h = elements 16h..16h+15 of each block; byte 4b + k,
// bits 2j..2j+1 = element 16h + 4j + k), the even / odd sub-blocks' scale bytes as in the file
// (sc | m << 4), d[2], dmin[2].
void group_q2_k(const BlockQ2_K* x, uint8_t* o) {
  for (int b = 0; b < kG; ++b) {
    const BlockQ2_K& sb = x[b / 8];
    const int base = 32 * (b % 8);
    for (int k = 0; k < 4; ++k) {
      uint8_t h[2] = {0, 0};
      for (int half = 0; half < 2; ++half)
        for (int j = 0; j < 4; ++j) {
          const int e = base + 16 * half + 4 * j + k;
          h[half] |= (uint8_t)(((sb.qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3) << (2 * j));
        }
      o[4 * b + k] = h[0];
      o[64 + 4 * b + k] = h[1];
    }
    o[128 + b] = sb.scales[2 * (b % 8)];
    o[144 + b] = sb.scales[2 * (b % 8) + 1];
  }
  for (int s = 0; s < 2; ++s) {
    std::memcpy(o + 160 + 2 * s, &x[s].d, 2);
    std::memcpy(o + 164 + 2 * s, &x[s].dmin, 2);
  }
}
inline int q2_r16_value(const uint8_t* g, int b, int e) {
  const int half = e / 16, j = (e % 16) / 4, k = e % 4;
  return (g[64 * half + 4 * b + k] >> (2 * j)) & 3;
}
// Unsigned 5-bit value of element e (0..31) of sub-block l of a Q5_K_R16 group.
inline int q5_r16_value(const uint8_t* g, int l, int e) {
  const int half = e / 16, p = (e % 16) / 4, k = e % 4;
  const int lo = (g[64 * p + 4 * l + k] >> (4 * half)) & 0xF;
  return lo | (((g[256 + 4 * l + k] >> (2 * p + half)) & 1) << 4);
}
// Two super-blocks of 6-bit values -> one Q6_K_R16 group (16 blocks of 32 = sub-block pairs): the
// low nibbles as Q4_0_R16 pair bytes, the 2 high bits in two pieces (elements 0..15 / 16..31 of
// each block; byte k, bits 2j..2j+1 = element 4j + k of that half), the even / odd sub-block
// scales, d[2]. v[s] holds the 256 values of super-block s (0..63, the stored q + 32) in element
// order, sc[s] its 16-element scales. (Decoding all values first, in loops the compiler
// vectorizes, replaced per-element bit gathering: bench-1b Q6_K repacking took ~3 s.)
void group_6bit(const uint8_t v[2][256], const int8_t sc[2][16], uint16_t d0, uint16_t d1, uint8_t* o) {
  for (int b = 0; b < kG; ++b) {
    const uint8_t* vb = v[b / 8] + 32 * (b % 8);
    for (int k = 0; k < 4; ++k) {
      uint8_t h0 = 0, h1 = 0;
      for (int j = 0; j < 4; ++j) {
        const int v0 = vb[4 * j + k], v1 = vb[16 + 4 * j + k];
        o[64 * j + 4 * b + k] = (uint8_t)((v0 & 0xF) | ((v1 & 0xF) << 4));
        h0 |= (uint8_t)((v0 >> 4) << (2 * j));
        h1 |= (uint8_t)((v1 >> 4) << (2 * j));
      }
      o[256 + 4 * b + k] = h0;
      o[320 + 4 * b + k] = h1;
    }
    o[384 + b] = (uint8_t)sc[b / 8][2 * (b % 8)];
    o[400 + b] = (uint8_t)sc[b / 8][2 * (b % 8) + 1];
  }
  std::memcpy(o + 416, &d0, 2);
  std::memcpy(o + 418, &d1, 2);
}
// Q6_K values (q6k_value + 32): element 128 h + 32 g + l is nibble g / 2 of ql[64 h + 32 (g % 2) + l]
// with bits 2g..2g+1 of qh[32 h + l] above it.
void q6k_values(const BlockQ6_K& x, uint8_t v[256]) {
  for (int h = 0; h < 2; ++h)
    for (int g = 0; g < 4; ++g)
      for (int l = 0; l < 32; ++l)
        v[128 * h + 32 * g + l] =
            (uint8_t)(((x.ql[64 * h + 32 * (g % 2) + l] >> (4 * (g / 2))) & 0xF) | (((x.qh[32 * h + l] >> (2 * g)) & 3) << 4));
}
void group_q6_k(const BlockQ6_K* x, uint8_t* o) {
  uint8_t v[2][256];
  int8_t sc[2][16];
  for (int s = 0; s < 2; ++s) {
    q6k_values(x[s], v[s]);
    std::memcpy(sc[s], x[s].scales, 16);
  }
  group_6bit(v, sc, x[0].d, x[1].d, o);
}
// Q3_K widens losslessly into the same layout: d * (sc - 32) * q3 with q3 in -4..3 is Q6_K's
// d * sc' * (q6 - 32) with sc' = sc - 32 (int8) and q6 = q3 + 32, bit for bit. Element
// 128 h + 32 j + l: bits 2j..2j+1 of qs[32 h + l], minus 4 unless bit 4h + j of hmask[l] is set.
void group_q3_k(const BlockQ3_K* x, uint8_t* o) {
  uint8_t v[2][256];
  int8_t sc[2][16];
  for (int s = 0; s < 2; ++s) {
    q3k_scales(x[s].scales, sc[s]);
    for (int h = 0; h < 2; ++h)
      for (int j = 0; j < 4; ++j)
        for (int l = 0; l < 32; ++l) {
          const int q2 = (x[s].qs[32 * h + l] >> (2 * j)) & 3, hb = (x[s].hmask[l] >> (4 * h + j)) & 1;
          v[s][128 * h + 32 * j + l] = (uint8_t)(q2 + 28 + 4 * hb);
        }
  }
  group_6bit(v, sc, x[0].d, x[1].d, o);
}
// Unsigned 6-bit value of element e (0..31) of block b of a Q6_K_R16 group.
inline int q6_r16_value(const uint8_t* g, int b, int e) {
  const int half = e / 16, j = (e % 16) / 4, k = e % 4;
  const int lo = (g[64 * j + 4 * b + k] >> (4 * half)) & 0xF;
  const int hi = (g[256 + 64 * half + 4 * b + k] >> (2 * j)) & 3;
  return lo | (hi << 4);
}
// Element i (0..31) of block b of a Q4_0_R16 group: the unsigned nibble.
inline int q4_r16_nibble(const uint8_t* g, int b, int i) {
  const uint8_t byte = g[64 * ((i % 16) / 4) + 4 * b + i % 4];
  return i < 16 ? (byte & 0xF) : (byte >> 4);
}
inline float r16_d(const uint8_t* g, size_t at, int b) {
  uint16_t h;
  std::memcpy(&h, g + at + 2 * b, 2);
  return fp16_to_fp32(h);
}
inline float a16_d(const uint8_t* g, int b) {
  float d;
  std::memcpy(&d, g + 512 + 4 * b, 4);
  return d;
}

// quantize() of a repacked dtype: quantize to the file layout `t`, then repack.
void quantize_repacked(DType t, const float* src, void* dst, int64_t n) {
  std::vector<uint8_t> tmp(dtype_row_bytes(t, n));
  dtype_traits(t)->quantize(src, tmp.data(), n);
  repack_rows(t, tmp.data(), dst, n, 1);
}

}  // namespace

namespace ref {

void q8_0_to_a16(const void* q8_0_blocks, void* dst, int64_t n_groups) {
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(q8_0_blocks);
  uint8_t* o = static_cast<uint8_t*>(dst);
  for (int64_t g = 0; g < n_groups; ++g, x += kG, o += kA16Group) {
    for (int b = 0; b < kG; ++b) {
      int32_t s = 0;
      for (int j = 0; j < 8; ++j) std::memcpy(o + 64 * j + 4 * b, x[b].qs + 4 * j, 4);
      for (int i = 0; i < QK; ++i) s += x[b].qs[i];
      const float d = fp16_to_fp32(x[b].d);
      std::memcpy(o + 512 + 4 * b, &d, 4);
      std::memcpy(o + 576 + 4 * b, &s, 4);
    }
  }
}

void quantize_q8_0_a16(const float* src, void* dst, int64_t n) {
  std::vector<BlockQ8_0> tmp(kG);
  for (int64_t g = 0; g < n / kRepackCols; ++g) {
    quantize_q8_0(src + g * kRepackCols, tmp.data(), kRepackCols);
    q8_0_to_a16(tmp.data(), static_cast<uint8_t*>(dst) + g * kA16Group, 1);
  }
}

void dequantize_q8_0_a16(const void* src, float* dst, int64_t n) {
  const uint8_t* g = static_cast<const uint8_t*>(src);
  for (int64_t gi = 0; gi < n / kRepackCols; ++gi, g += kA16Group)
    for (int b = 0; b < kG; ++b)
      for (int i = 0; i < QK; ++i) *dst++ = a16_d(g, b) * (float)(int8_t)g[64 * (i / 4) + 4 * b + i % 4];
}

void quantize_q4_0_r16(const float* src, void* dst, int64_t n) { quantize_repacked(DType::Q4_0, src, dst, n); }

void dequantize_q4_0_r16(const void* src, float* dst, int64_t n) {
  const uint8_t* g = static_cast<const uint8_t*>(src);
  for (int64_t gi = 0; gi < n / kRepackCols; ++gi, g += kQ4Group)
    for (int b = 0; b < kG; ++b)
      for (int i = 0; i < QK; ++i) *dst++ = (float)(q4_r16_nibble(g, b, i) - 8) * r16_d(g, 256, b);
}

void quantize_q8_0_r16(const float* src, void* dst, int64_t n) { quantize_repacked(DType::Q8_0, src, dst, n); }

void dequantize_q8_0_r16(const void* src, float* dst, int64_t n) {
  const uint8_t* g = static_cast<const uint8_t*>(src);
  for (int64_t gi = 0; gi < n / kRepackCols; ++gi, g += kQ8Group)
    for (int b = 0; b < kG; ++b)
      for (int i = 0; i < QK; ++i) *dst++ = (float)((int)g[64 * (i / 4) + 4 * b + i % 4] - 128) * r16_d(g, 512, b);
}

// Same arithmetic, in the same order, as vec_dot_q4_0_q8_0 on the unpacked blocks: the results
// are bit-identical to the file layout's reference.
float vec_dot_q4_0_r16_q8_0_a16(int64_t n, const void* w, const void* a) {
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const uint8_t* y = static_cast<const uint8_t*>(a);
  float sum = 0.0f;
  for (int64_t g = 0; g < n / kRepackCols; ++g, x += kQ4Group, y += kA16Group)
    for (int b = 0; b < kG; ++b) {
      int s = 0;
      for (int i = 0; i < QK; ++i) s += (q4_r16_nibble(x, b, i) - 8) * (int8_t)y[64 * (i / 4) + 4 * b + i % 4];
      sum += (float)s * r16_d(x, 256, b) * a16_d(y, b);
    }
  return sum;
}

float vec_dot_q8_0_r16_q8_0_a16(int64_t n, const void* w, const void* a) {
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const uint8_t* y = static_cast<const uint8_t*>(a);
  float sum = 0.0f;
  for (int64_t g = 0; g < n / kRepackCols; ++g, x += kQ8Group, y += kA16Group)
    for (int b = 0; b < kG; ++b) {
      int s = 0;
      for (int i = 0; i < QK; ++i) {
        const int at = 64 * (i / 4) + 4 * b + i % 4;
        s += ((int)x[at] - 128) * (int8_t)y[at];
      }
      sum += (float)s * (r16_d(x, 512, b) * a16_d(y, b));
    }
  return sum;
}

void quantize_q4_k_r16(const float* src, void* dst, int64_t n) { quantize_repacked(DType::Q4_K, src, dst, n); }

// The same operations as dequantize_q4_k (bit-identical values).
void dequantize_q4_k_r16(const void* src, float* dst, int64_t n) {
  const uint8_t* g = static_cast<const uint8_t*>(src);
  for (int64_t gi = 0; gi < n / kRepackCols; ++gi, g += kQ4KGroup)
    for (int l = 0; l < kG; ++l) {
      int sc, m;
      r16_kscale_get(g + 256, l, &sc, &m);
      const float dl = r16_d(g, 280, l / 8) * (float)sc, ml = r16_d(g, 284, l / 8) * (float)m;
      for (int i = 0; i < QK; ++i) *dst++ = dl * (float)q4_r16_nibble(g, l, i) - ml;
    }
}

// Q4_K weights with Q8_0-style activations (a scale per 32 elements, as the prefill GEMM uses):
// per sub-block, dl * sum(q * y) - ml * sum(y), times the activation block's scale.
float vec_dot_q4_k_r16_q8_0_a16(int64_t n, const void* w, const void* a) {
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const uint8_t* y = static_cast<const uint8_t*>(a);
  float sum = 0.0f;
  for (int64_t g = 0; g < n / kRepackCols; ++g, x += kQ4KGroup, y += kA16Group)
    for (int l = 0; l < kG; ++l) {
      int s = 0, ys = 0;
      for (int i = 0; i < QK; ++i) {
        const int yi = (int8_t)y[64 * (i / 4) + 4 * l + i % 4];
        s += q4_r16_nibble(x, l, i) * yi;
        ys += yi;
      }
      int sc, m;
      r16_kscale_get(x + 256, l, &sc, &m);
      const float dl = r16_d(x, 280, l / 8) * (float)sc, ml = r16_d(x, 284, l / 8) * (float)m;
      sum += a16_d(y, l) * (dl * (float)s - ml * (float)ys);
    }
  return sum;
}

void quantize_q5_k_r16(const float* src, void* dst, int64_t n) { quantize_repacked(DType::Q5_K, src, dst, n); }

// The same operations as dequantize_q5_k (bit-identical values).
void dequantize_q5_k_r16(const void* src, float* dst, int64_t n) {
  const uint8_t* g = static_cast<const uint8_t*>(src);
  for (int64_t gi = 0; gi < n / kRepackCols; ++gi, g += kQ5KGroup)
    for (int l = 0; l < kG; ++l) {
      int sc, m;
      r16_kscale_get(g + 320, l, &sc, &m);
      const float dl = r16_d(g, 344, l / 8) * (float)sc, ml = r16_d(g, 348, l / 8) * (float)m;
      for (int e = 0; e < QK; ++e) *dst++ = dl * (float)q5_r16_value(g, l, e) - ml;
    }
}

// Q5_K weights with Q8_0-style activations, as Q4_K_R16: per sub-block dl * sum(q * y) - ml * sum(y).
float vec_dot_q5_k_r16_q8_0_a16(int64_t n, const void* w, const void* a) {
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const uint8_t* y = static_cast<const uint8_t*>(a);
  float sum = 0.0f;
  for (int64_t g = 0; g < n / kRepackCols; ++g, x += kQ5KGroup, y += kA16Group)
    for (int l = 0; l < kG; ++l) {
      int s = 0, ys = 0;
      for (int e = 0; e < QK; ++e) {
        const int ye = (int8_t)y[64 * (e / 4) + 4 * l + e % 4];
        s += q5_r16_value(x, l, e) * ye;
        ys += ye;
      }
      int sc, m;
      r16_kscale_get(x + 320, l, &sc, &m);
      const float dl = r16_d(x, 344, l / 8) * (float)sc, ml = r16_d(x, 348, l / 8) * (float)m;
      sum += a16_d(y, l) * (dl * (float)s - ml * (float)ys);
    }
  return sum;
}

void quantize_q2_k_r16(const float* src, void* dst, int64_t n) { quantize_repacked(DType::Q2_K, src, dst, n); }

// The same operations as dequantize_q2_k (bit-identical values).
void dequantize_q2_k_r16(const void* src, float* dst, int64_t n) {
  const uint8_t* g = static_cast<const uint8_t*>(src);
  for (int64_t gi = 0; gi < n / kRepackCols; ++gi, g += kQ2KGroup)
    for (int b = 0; b < kG; ++b) {
      const float d = r16_d(g, 160, b / 8), dmin = r16_d(g, 164, b / 8);
      for (int e = 0; e < QK; ++e) {
        const uint8_t sc = g[128 + 16 * (e / 16) + b];
        *dst++ = d * (float)(sc & 0xF) * (float)q2_r16_value(g, b, e) - dmin * (float)(sc >> 4);
      }
    }
}

// Q2_K weights with Q8_0-style activations: per 32-element block, dy * (d * (sc_e * dot_e + sc_o *
// dot_o) - dmin * (m_e * sum_e(y) + m_o * sum_o(y))), the 16-element dots and sums in integers.
float vec_dot_q2_k_r16_q8_0_a16(int64_t n, const void* w, const void* a) {
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const uint8_t* y = static_cast<const uint8_t*>(a);
  float sum = 0.0f;
  for (int64_t g = 0; g < n / kRepackCols; ++g, x += kQ2KGroup, y += kA16Group)
    for (int b = 0; b < kG; ++b) {
      int s[2] = {0, 0}, ys[2] = {0, 0};
      for (int e = 0; e < QK; ++e) {
        const int ye = (int8_t)y[64 * (e / 4) + 4 * b + e % 4];
        s[e / 16] += q2_r16_value(x, b, e) * ye;
        ys[e / 16] += ye;
      }
      const uint8_t se = x[128 + b], so = x[144 + b];
      const float dot = (float)(se & 0xF) * (float)s[0] + (float)(so & 0xF) * (float)s[1];
      const float mins = (float)(se >> 4) * (float)ys[0] + (float)(so >> 4) * (float)ys[1];
      sum += a16_d(y, b) * (r16_d(x, 160, b / 8) * dot - r16_d(x, 164, b / 8) * mins);
    }
  return sum;
}

void quantize_q6_k_r16(const float* src, void* dst, int64_t n) { quantize_repacked(DType::Q6_K, src, dst, n); }

// The same operations as dequantize_q6_k (bit-identical values).
void dequantize_q6_k_r16(const void* src, float* dst, int64_t n) {
  const uint8_t* g = static_cast<const uint8_t*>(src);
  for (int64_t gi = 0; gi < n / kRepackCols; ++gi, g += kQ6KGroup)
    for (int b = 0; b < kG; ++b) {
      const float d = r16_d(g, 416, b / 8);
      for (int e = 0; e < QK; ++e)
        *dst++ = d * (float)(int8_t)g[(e < 16 ? 384 : 400) + b] * (float)(q6_r16_value(g, b, e) - 32);
    }
}

// Q6_K weights with Q8_0-style activations: per 32-element block, d * dy * (sc_even * dot(first
// 16) + sc_odd * dot(last 16)), the dots over (value - 32) in integers.
float vec_dot_q6_k_r16_q8_0_a16(int64_t n, const void* w, const void* a) {
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const uint8_t* y = static_cast<const uint8_t*>(a);
  float sum = 0.0f;
  for (int64_t g = 0; g < n / kRepackCols; ++g, x += kQ6KGroup, y += kA16Group)
    for (int b = 0; b < kG; ++b) {
      int s[2] = {0, 0};
      for (int e = 0; e < QK; ++e) s[e / 16] += (q6_r16_value(x, b, e) - 32) * (int8_t)y[64 * (e / 4) + 4 * b + e % 4];
      const int isum = (int8_t)x[384 + b] * s[0] + (int8_t)x[400 + b] * s[1];
      sum += r16_d(x, 416, b / 8) * a16_d(y, b) * (float)isum;
    }
  return sum;
}

}  // namespace ref

DType repacked_dtype(DType t) {
  switch (t) {
    case DType::Q4_0: return DType::Q4_0_R16;
    case DType::Q8_0: return DType::Q8_0_R16;
    case DType::Q4_K: return DType::Q4_K_R16;
    case DType::Q5_K: return DType::Q5_K_R16;
    case DType::Q6_K: return DType::Q6_K_R16;
    case DType::Q3_K: return DType::Q6_K_R16;  // widened: 1.9x the bytes (repack.h)
    case DType::Q2_K: return DType::Q2_K_R16;
    default: return t;
  }
}

bool repack_pays(DType t, int64_t cols, const KernelTable& kt) {
  const DType r = repacked_dtype(t);
  // Prefill must not lose its GEMM: a dtype with a panel packer (either panel format) needs one
  // for its repacked layout.
  const bool has_gemm = kt.gemm_pack[(int)t] != nullptr || kt.gemm16_pack[(int)t] != nullptr;
  const bool r_gemm = kt.gemm_pack[(int)r] != nullptr || kt.gemm16_pack[(int)r] != nullptr;
  return r != t && cols > 0 && cols % kRepackCols == 0 && kt.vec_dot_rows[(int)r] != nullptr &&
         (!has_gemm || r_gemm) &&
         kt.quantize_row[(int)DType::Q8_0_A16] != nullptr;
}

void repack_rows(DType t, const void* src, void* dst, int64_t n, int64_t nrows) {
  MODU_CHECK_MSG(n % kRepackCols == 0, "repack_rows: row length must be a multiple of 512");
  MODU_CHECK_MSG(repacked_dtype(t) != t, std::string("repack_rows: no repacked layout for ") + dtype_name(t));
  const size_t rb = dtype_row_bytes(t, n), rb_out = dtype_row_bytes(repacked_dtype(t), n);
  const int64_t groups = n / kRepackCols;
  for (int64_t r = 0; r < nrows; ++r) {
    const uint8_t* s = static_cast<const uint8_t*>(src) + (size_t)r * rb;
    uint8_t* d = static_cast<uint8_t*>(dst) + (size_t)r * rb_out;
    for (int64_t g = 0; g < groups; ++g) {
      if (t == DType::Q4_0)
        group_q4_0(reinterpret_cast<const BlockQ4_0*>(s) + g * kG, d + g * kQ4Group);
      else if (t == DType::Q8_0)
        group_q8_0(reinterpret_cast<const BlockQ8_0*>(s) + g * kG, d + g * kQ8Group);
      else if (t == DType::Q4_K)
        group_q4_k(reinterpret_cast<const BlockQ4_K*>(s) + g * 2, d + g * kQ4KGroup);
      else if (t == DType::Q5_K)
        group_q5_k(reinterpret_cast<const BlockQ5_K*>(s) + g * 2, d + g * kQ5KGroup);
      else if (t == DType::Q2_K)
        group_q2_k(reinterpret_cast<const BlockQ2_K*>(s) + g * 2, d + g * kQ2KGroup);
      else if (t == DType::Q3_K)
        group_q3_k(reinterpret_cast<const BlockQ3_K*>(s) + g * 2, d + g * kQ6KGroup);
      else
        group_q6_k(reinterpret_cast<const BlockQ6_K*>(s) + g * 2, d + g * kQ6KGroup);
    }
  }
}

}  // namespace modu
