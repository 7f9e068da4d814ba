// GGML-compatible block structs (internal): the exact byte layouts of GGUF tensor data.
// All fields are little-endian, blocks are packed back to back with no padding or alignment:
// a row of n elements is n / QK blocks; block i starts at byte i * sizeof(block).
#pragma once

#include <cstdint>

namespace modu::blk {

constexpr int QK = 32;    // elements per block of the "legacy" formats (Q4_0 ... Q8_1)
constexpr int QK_K = 256; // elements per K-quant super-block

// Q4_0: value = (q - 8) * d; low nibbles of qs hold elements 0..15, high nibbles 16..31.
struct BlockQ4_0 { uint16_t d; uint8_t qs[QK / 2]; };
// Q4_1: value = q * d + m.
struct BlockQ4_1 { uint16_t d; uint16_t m; uint8_t qs[QK / 2]; };
// Q5_0: value = (q - 16) * d; bit j of qh (little-endian uint32) is bit 4 of element j.
struct BlockQ5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[QK / 2]; };
// Q5_1: value = q * d + m.
struct BlockQ5_1 { uint16_t d; uint16_t m; uint8_t qh[4]; uint8_t qs[QK / 2]; };
// Q8_0: value = q * d.
struct BlockQ8_0 { uint16_t d; int8_t qs[QK]; };
// Q8_1: value = q * d; s = d * sum(qs) (lets Q4_1/Q5_1 dots add m * sum(y) in one multiply).
struct BlockQ8_1 { uint16_t d; uint16_t s; int8_t qs[QK]; };

// Q2_K: 16 sub-blocks of 16; scales[j] = 4-bit scale | 4-bit min << 4;
// value = d * (sc & 15) * q - dmin * (sc >> 4).
struct BlockQ2_K { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; uint16_t d; uint16_t dmin; };
// Q3_K: 16 sub-blocks of 16 with 6-bit signed scales (stored + 32) packed into 12 bytes;
// hmask bit set means the 3rd bit is 1 (value = q2 - (hbit ? 0 : 4)).
struct BlockQ3_K { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; uint16_t d; };
// Q4_K: 8 sub-blocks of 32 with 6-bit scales and mins packed into 12 bytes.
struct BlockQ4_K { uint16_t d; uint16_t dmin; uint8_t scales[12]; uint8_t qs[QK_K / 2]; };
// Q5_K: as Q4_K plus one high bit per element in qh.
struct BlockQ5_K { uint16_t d; uint16_t dmin; uint8_t scales[12]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; };
// Q6_K: 16 sub-blocks of 16 with int8 scales; 4 low bits in ql, 2 high bits in qh; value - 32.
struct BlockQ6_K { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint16_t d; };
// Q8_K: activation format for the K-quants; bsums[j] = sum of qs[16j .. 16j+15].
struct BlockQ8_K { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; };

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36,
              "legacy block sizes must match GGML");
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144 &&
              sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292,
              "K-quant block sizes must match GGML");
// Every field is 1- or 2-byte aligned except Q8_K's float/int16 (struct alignment 4; 292 % 4 == 0),
// so rows of blocks only need the natural alignment of their first member.

// Unpacks the 6-bit scale and min of sub-block j (0..7) from the 12-byte Q4_K/Q5_K field:
// bytes 0..3 hold scales 0..3 (low 6 bits), bytes 4..7 mins 0..3; scales/mins 4..7 keep their
// low nibbles in bytes 8..11 and their top 2 bits in the top bits of bytes 0..7.
inline void k4_scale_min(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// The scales and mins of Q4_K_R16 / Q5_K_R16 (repack.h): 16 lanes of 12 bits, sc | m << 6, lane l
// at bits 12l..12l+11 of kR16KScaleBytes little-endian bytes: the file's 6 bits each, 24 bytes
// per 16 sub-blocks, as in Q4_K / Q5_K. r16_kscale_put ORs into zeroed bytes.
constexpr size_t kR16KScaleBytes = 24;
inline void r16_kscale_put(uint8_t* p, int l, int sc, int m) {
  const int o = 12 * l;
  const unsigned w = (unsigned)((sc & 63) | ((m & 63) << 6)) << (o & 7);
  p[o >> 3] = (uint8_t)(p[o >> 3] | (w & 0xFF));
  p[(o >> 3) + 1] = (uint8_t)(p[(o >> 3) + 1] | (w >> 8));
}
inline void r16_kscale_get(const uint8_t* p, int l, int* sc, int* m) {
  const int o = 12 * l;
  const unsigned v = ((unsigned)p[o >> 3] | ((unsigned)p[(o >> 3) + 1] << 8)) >> (o & 7);
  *sc = (int)(v & 63);
  *m = (int)((v >> 6) & 63);
}

// Element e (0..255) of a Q6_K block, signed (the stored 6-bit value - 32).
inline int q6k_value(const BlockQ6_K& x, int e) {
  const int h = e / 128, g = (e % 128) / 32, l = e % 32;
  const int lo = (x.ql[64 * h + 32 * (g % 2) + l] >> (4 * (g / 2))) & 0xF;
  const int hi = (x.qh[32 * h + l] >> (2 * g)) & 3;
  return (lo | (hi << 4)) - 32;
}

// Unpacks the 16 Q3_K scales (already minus 32) from the 12-byte field.
inline void q3k_scales(const uint8_t* s, int8_t out[16]) {
  for (int j = 0; j < 16; ++j) {
    const int lo = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
    const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    out[j] = (int8_t)((lo | (hi << 4)) - 32);
  }
}

}  // namespace modu::blk
