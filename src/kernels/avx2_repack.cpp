// AVX2 (+FMA, F16C) decode kernels for the repacked Q4_0_R16, Q2_K_R16, Q4_K_R16, Q5_K_R16 and Q6_K_R16 layouts
// (repack.h), and the Q8_0_A16 activation quantizer. Q8_0_R16 has none here: its unsigned bytes up to 255 would
// saturate VPMADDUBSW's int16 pair sums, so AVX2 keeps Q8_0 in the file layout.
//
// Performance reasoning (see avx512_repack.h): one 32-byte load is 4 elements of 8 blocks (or Q4_K
// sub-blocks); per 16 blocks and row: 8 loads, 8 x (AND, shift, AND, 2 VPMADDUBSW, 2 VPADDW), 2
// VPMADDWD and the scale work, ~0.2 uops per byte against the file layout kernels' ~0.35. The int16
// sums cannot saturate: per int16 lane 4 pieces x 2 halves x 2 products x 15 x 128 = 30720.
// Q6_K_R16 (420 bytes): each 6-bit value is (nibble & 0xF) | (high bits shifted to bits 4..5 &
// 0x30), 3-4 ops per 32 bytes; values up to 63 against |y| <= 127 allow only 2 pieces per int16
// sum (2 x 2 x 63 x 127 = 32004), so VPMADDWD folds every second piece. The -32 offset comes from
// the activation's 16-element sums, computed once per group for the whole row tile. ~0.3 uops per
// byte against ~0.45 for the file-layout Q6_K dot, which also runs one row at a time.
#include <atomic>
#include <cstring>
#include <type_traits>

#include "avx2_simd.h"
#include "blocks.h"
#include "isa_kernels.h"
#include "modu/kernels/repack.h"
#include "ref_kernels.h"

namespace modu::kern {

using namespace modu::blk;
using namespace modu::kern::avx2;

namespace {

constexpr int kRowTile = 4;
constexpr size_t kA16 = 640;

// Prefetches of one row's kGroup-byte group at x (one per 64 bytes): into L2 two row tiles ahead,
// and into L1 the same group of the next row tile, which the L2 prefetch brought in a tile earlier,
// so the demand loads hit L1 and the L1 miss slots stay with the DRAM stream (bench-1b decode reps
// alternating in one process at MODU_ISA=avx2: Q4_0 +8, Q4_K +9 points of the read bandwidth over
// the L2 prefetch alone one tile ahead).
template <size_t kGroup>
inline void prefetch_group(const uint8_t* x, size_t tile_bytes) {
  for (size_t o = 0; o < kGroup; o += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(x + 2 * tile_bytes + o), _MM_HINT_T1);
    _mm_prefetch(reinterpret_cast<const char*>(x + tile_bytes + o), _MM_HINT_T0);
  }
}

inline __m256i ld256(const void* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// Sum over the 4 pieces of half h (blocks 8h..8h+7) of nibbles x activation, per int32 lane.
inline __m256i nibble_dot(const uint8_t* x, const uint8_t* ya, int h) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  __m256i p16 = _mm256_setzero_si256();
  for (int j = 0; j < 4; ++j) {
    const __m256i q = ld256(x + 64 * j + 32 * h);
    p16 = _mm256_add_epi16(p16, _mm256_maddubs_epi16(_mm256_and_si256(q, m4), ld256(ya + 64 * j + 32 * h)));
    p16 = _mm256_add_epi16(p16, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4),
                                                     ld256(ya + 256 + 64 * j + 32 * h)));
  }
  return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

// The K-quant sub-block term of half h (lanes = sub-blocks 8h..8h+7): d * sc * dot - dmin * m *
// sum(y), with the 12-bit scale field (blocks.h r16_kscale_get) at sm and d[2], dmin[2] fp16 at
// sm + 24 (Q4_K_R16 and Q5_K_R16 share this tail). Each 128-bit lane takes its 4 sub-blocks' 6
// bytes from one 16-byte load (bytes 0..15 for h = 0, 8..23 for h = 1: never past the field), a
// byte shuffle puts each sub-block's 2 bytes in its dword and a shift of 0 or 4 aligns the bits.
inline __m256 kquant_term(const uint8_t* sm, int h, __m256i dot, __m256i ysum) {
  uint16_t d, dmin;
  std::memcpy(&d, sm + 24 + 2 * h, 2);
  std::memcpy(&dmin, sm + 28 + 2 * h, 2);
  // dword j of a 128-bit lane with its sub-blocks' bytes from `base`: bytes base + {0,1,3,4}[j], + 1
  const __m256i ctl = h == 0 ? _mm256_setr_epi8(0, 1, -1, -1, 1, 2, -1, -1, 3, 4, -1, -1, 4, 5, -1, -1,
                                                6, 7, -1, -1, 7, 8, -1, -1, 9, 10, -1, -1, 10, 11, -1, -1)
                             : _mm256_setr_epi8(4, 5, -1, -1, 5, 6, -1, -1, 7, 8, -1, -1, 8, 9, -1, -1,
                                                10, 11, -1, -1, 11, 12, -1, -1, 13, 14, -1, -1, 14, 15, -1, -1);
  const __m256i raw = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sm + 8 * h)));
  const __m256i v = _mm256_srlv_epi32(_mm256_shuffle_epi8(raw, ctl), _mm256_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4));
  const __m256i six = _mm256_set1_epi32(63);
  const __m256 sc = _mm256_cvtepi32_ps(_mm256_and_si256(v, six));
  const __m256 mn = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(v, 6), six));
  const __m256 dl = _mm256_mul_ps(sc, _mm256_set1_ps(h2f(d))), ml = _mm256_mul_ps(mn, _mm256_set1_ps(h2f(dmin)));
  return _mm256_fmsub_ps(dl, _mm256_cvtepi32_ps(dot), _mm256_mul_ps(ml, _mm256_cvtepi32_ps(ysum)));
}

template <bool kQ4K, int R>
void rows_r16(int64_t ng, const uint8_t* w, size_t rb, const uint8_t* a, float* out) {
  const size_t pf = (size_t)kRowTile * rb, group = 288;  // Q4_0_R16 and Q4_K_R16 alike
  __m256 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t g = 0; g < ng; ++g) {
    const uint8_t* ya = a + g * kA16;
    for (int r = 0; r < R; ++r) {
      const uint8_t* x = w + (size_t)r * rb + (size_t)g * group;
      prefetch_group<288>(x, pf);
      for (int h = 0; h < 2; ++h) {
        const __m256 dy = _mm256_loadu_ps(reinterpret_cast<const float*>(ya + 512 + 32 * h));
        const __m256i s = ld256(ya + 576 + 32 * h);
        const __m256i p = nibble_dot(x, ya, h);
        if constexpr (kQ4K) {  // dy * (d * sc * dot - dmin * m * sum(y)); half h = super-block h
          acc[r] = _mm256_fmadd_ps(kquant_term(x + 256, h, p, s), dy, acc[r]);
        } else {  // dx * dy * (dot - 8 * sum(y))
          const __m256 dx = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + 256 + 16 * h)));
          const __m256i pc = _mm256_sub_epi32(p, _mm256_slli_epi32(s, 3));
          acc[r] = _mm256_fmadd_ps(_mm256_mul_ps(dx, dy), _mm256_cvtepi32_ps(pc), acc[r]);
        }
      }
    }
  }
  for (int r = 0; r < R; ++r) out[r] = hsum(acc[r]);
}

// Per lane (block 8h + lane) the sums of the activation's first and last 16 elements, half h.
inline void a16_half_sums(const uint8_t* ya, int h, __m256i* first, __m256i* last) {
  const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
  __m256i se = _mm256_setzero_si256(), so = _mm256_setzero_si256();
  for (int j = 0; j < 4; ++j) {
    se = _mm256_add_epi32(se, _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, ld256(ya + 64 * j + 32 * h)), ones16));
    so = _mm256_add_epi32(so, _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, ld256(ya + 256 + 64 * j + 32 * h)), ones16));
  }
  *first = se;
  *last = so;
}

// High bits 2j..2j+1 of each byte -> bits 4..5 (16-bit shifts: bits that cross into the
// neighbouring byte land outside 0x30 and are masked off).
template <int J>
inline __m256i q6_high(__m256i hb) {
  if constexpr (J == 0) return _mm256_slli_epi16(hb, 4);
  else if constexpr (J == 1) return _mm256_slli_epi16(hb, 2);
  else if constexpr (J == 2) return hb;
  else return _mm256_srli_epi16(hb, 2);
}

// Pieces J and J + 1 of half h: int32 lanes += even / odd sub-block dots of the unsigned values.
template <int J>
inline void q6_pieces(const uint8_t* x, const uint8_t* ya, int h, __m256i hb0, __m256i hb1, __m256i& pe, __m256i& po) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30), ones = _mm256_set1_epi16(1);
  __m256i e16 = _mm256_setzero_si256(), o16 = _mm256_setzero_si256();
  auto piece = [&](auto jc) {
    constexpr int j = decltype(jc)::value;
    const __m256i q = ld256(x + 64 * j + 32 * h);
    const __m256i ve = _mm256_or_si256(_mm256_and_si256(q, m4), _mm256_and_si256(q6_high<j>(hb0), m30));
    const __m256i vo = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), _mm256_and_si256(q6_high<j>(hb1), m30));
    e16 = _mm256_add_epi16(e16, _mm256_maddubs_epi16(ve, ld256(ya + 64 * j + 32 * h)));
    o16 = _mm256_add_epi16(o16, _mm256_maddubs_epi16(vo, ld256(ya + 256 + 64 * j + 32 * h)));
  };
  piece(std::integral_constant<int, J>{});
  piece(std::integral_constant<int, J + 1>{});
  pe = _mm256_add_epi32(pe, _mm256_madd_epi16(e16, ones));
  po = _mm256_add_epi32(po, _mm256_madd_epi16(o16, ones));
}

// Q6_K_R16: per lane (block) d * dy * (sc_even * (dot_even - 32 sum_even(y)) + sc_odd * (...)).
template <int R>
void rows_q6_k_r16(int64_t ng, const uint8_t* w, size_t rb, const uint8_t* a, float* out) {
  const size_t pf = (size_t)kRowTile * rb;
  __m256 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t g = 0; g < ng; ++g) {
    const uint8_t* ya = a + g * kA16;
    __m256i ce[2], co[2];  // -32 x the 16-element activation sums, per half
    __m256 dy[2];
    for (int h = 0; h < 2; ++h) {
      __m256i se, so;
      a16_half_sums(ya, h, &se, &so);
      ce[h] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(se, 5));
      co[h] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(so, 5));
      dy[h] = _mm256_loadu_ps(reinterpret_cast<const float*>(ya + 512 + 32 * h));
    }
    for (int r = 0; r < R; ++r) {
      const uint8_t* x = w + (size_t)r * rb + (size_t)g * 420;
      prefetch_group<420>(x, pf);
      for (int h = 0; h < 2; ++h) {
        const __m256i hb0 = ld256(x + 256 + 32 * h), hb1 = ld256(x + 320 + 32 * h);
        __m256i pe = ce[h], po = co[h];
        q6_pieces<0>(x, ya, h, hb0, hb1, pe, po);
        q6_pieces<2>(x, ya, h, hb0, hb1, pe, po);
        const __m256 sce = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + 384 + 8 * h))));
        const __m256 sco = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + 400 + 8 * h))));
        uint16_t d;
        std::memcpy(&d, x + 416 + 2 * h, 2);
        const __m256 t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(pe), sce, _mm256_mul_ps(_mm256_cvtepi32_ps(po), sco));
        acc[r] = _mm256_fmadd_ps(t, _mm256_mul_ps(_mm256_set1_ps(h2f(d)), dy[h]), acc[r]);
      }
    }
  }
  for (int r = 0; r < R; ++r) out[r] = hsum(acc[r]);
}

// Q5_K_R16: 5-bit values (nibble | 5th bit << 4) up to 31, so 4 pieces fit one int16 sum per half
// (4 x 2 x 31 x 128 = 31744); then the Q4_K scale work with sc/m at 320/336, d/dmin at 352/356.
template <int R>
void rows_q5_k_r16(int64_t ng, const uint8_t* w, size_t rb, const uint8_t* a, float* out) {
  const size_t pf = (size_t)kRowTile * rb;
  const __m256i m4 = _mm256_set1_epi8(0x0F), m10 = _mm256_set1_epi8(0x10), ones = _mm256_set1_epi16(1);
  __m256 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t g = 0; g < ng; ++g) {
    const uint8_t* ya = a + g * kA16;
    for (int r = 0; r < R; ++r) {
      const uint8_t* x = w + (size_t)r * rb + (size_t)g * 352;
      prefetch_group<352>(x, pf);
      for (int h = 0; h < 2; ++h) {
        const __m256i hb = ld256(x + 256 + 32 * h);
        __m256i e16 = _mm256_setzero_si256(), o16 = _mm256_setzero_si256();
        auto piece = [&](auto jc) {
          constexpr int j = decltype(jc)::value;
          const __m256i q = ld256(x + 64 * j + 32 * h);
          const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), _mm256_and_si256(bit_to_4(hb, 2 * j), m10));
          const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4),
                                             _mm256_and_si256(bit_to_4(hb, 2 * j + 1), m10));
          e16 = _mm256_add_epi16(e16, _mm256_maddubs_epi16(lo, ld256(ya + 64 * j + 32 * h)));
          o16 = _mm256_add_epi16(o16, _mm256_maddubs_epi16(hi, ld256(ya + 256 + 64 * j + 32 * h)));
        };
        piece(std::integral_constant<int, 0>{});
        piece(std::integral_constant<int, 1>{});
        piece(std::integral_constant<int, 2>{});
        piece(std::integral_constant<int, 3>{});
        const __m256i p = _mm256_add_epi32(_mm256_madd_epi16(e16, ones), _mm256_madd_epi16(o16, ones));
        const __m256 dy = _mm256_loadu_ps(reinterpret_cast<const float*>(ya + 512 + 32 * h));
        const __m256i s = ld256(ya + 576 + 32 * h);
        acc[r] = _mm256_fmadd_ps(kquant_term(x + 320, h, p, s), dy, acc[r]);
      }
    }
  }
  for (int r = 0; r < R; ++r) out[r] = hsum(acc[r]);
}

// Q2_K_R16: per half h (blocks 8h..8h+7) 2-bit values by shift + AND, VPMADDUBSW over all 4
// pieces in int16 (4 x 2 x 3 x 128 = 3072), then as the AVX-512 kernel: d * scales - dmin * mins.
template <int R>
void rows_q2_k_r16(int64_t ng, const uint8_t* w, size_t rb, const uint8_t* a, float* out) {
  const size_t pf = (size_t)kRowTile * rb;
  const __m256i m3 = _mm256_set1_epi8(3), ones16 = _mm256_set1_epi16(1);
  const __m256i m4d = _mm256_set1_epi32(0xF);
  __m256 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t g = 0; g < ng; ++g) {
    const uint8_t* ya = a + g * kA16;
    __m256 sef[2], sof[2], dy[2];  // activation half-sums per block, per half h
    for (int h = 0; h < 2; ++h) {
      __m256i se, so;
      a16_half_sums(ya, h, &se, &so);
      sef[h] = _mm256_cvtepi32_ps(se);
      sof[h] = _mm256_cvtepi32_ps(so);
      dy[h] = _mm256_loadu_ps(reinterpret_cast<const float*>(ya + 512 + 32 * h));
    }
    for (int r = 0; r < R; ++r) {
      const uint8_t* x = w + (size_t)r * rb + (size_t)g * 168;
      prefetch_group<168>(x, pf);
      for (int h = 0; h < 2; ++h) {
        const __m256i h0 = ld256(x + 32 * h), h1 = ld256(x + 64 + 32 * h);
        __m256i e16 = _mm256_setzero_si256(), o16 = _mm256_setzero_si256();
        for (int j = 0; j < 4; ++j) {
          const __m128i sh = _mm_cvtsi32_si128(2 * j);
          const __m256i ve = _mm256_and_si256(_mm256_srl_epi16(h0, sh), m3), vo = _mm256_and_si256(_mm256_srl_epi16(h1, sh), m3);
          e16 = _mm256_add_epi16(e16, _mm256_maddubs_epi16(ve, ld256(ya + 64 * j + 32 * h)));
          o16 = _mm256_add_epi16(o16, _mm256_maddubs_epi16(vo, ld256(ya + 256 + 64 * j + 32 * h)));
        }
        const __m256i pe = _mm256_madd_epi16(e16, ones16), po = _mm256_madd_epi16(o16, ones16);
        const __m256i be = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + 128 + 8 * h)));
        const __m256i bo = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + 144 + 8 * h)));
        const __m256 dot = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(be, m4d)), _mm256_cvtepi32_ps(pe),
                                           _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_and_si256(bo, m4d)), _mm256_cvtepi32_ps(po)));
        const __m256 mins = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(be, 4)), sef[h],
                                            _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(bo, 4)), sof[h]));
        uint16_t d, dmin;
        std::memcpy(&d, x + 160 + 2 * h, 2);
        std::memcpy(&dmin, x + 164 + 2 * h, 2);
        const __m256 t = _mm256_fmsub_ps(_mm256_set1_ps(h2f(d)), dot, _mm256_mul_ps(_mm256_set1_ps(h2f(dmin)), mins));
        acc[r] = _mm256_fmadd_ps(t, dy[h], acc[r]);
      }
    }
  }
  for (int r = 0; r < R; ++r) out[r] = hsum(acc[r]);
}

enum class Kind { kQ4_0, kQ2_K, kQ4_K, kQ5_K, kQ6_K };

template <Kind kKind, int R>
inline void rows(int64_t ng, const uint8_t* w, size_t rb, const uint8_t* a, float* out) {
  if constexpr (kKind == Kind::kQ6_K) rows_q6_k_r16<R>(ng, w, rb, a, out);
  else if constexpr (kKind == Kind::kQ5_K) rows_q5_k_r16<R>(ng, w, rb, a, out);
  else if constexpr (kKind == Kind::kQ2_K) rows_q2_k_r16<R>(ng, w, rb, a, out);
  else rows_r16<kKind == Kind::kQ4_K, R>(ng, w, rb, a, out);
}

template <Kind kKind>
void dot_rows(int64_t n, const void* w, size_t rb, int64_t nrows, const void* a, float* y) {
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const uint8_t* ya = static_cast<const uint8_t*>(a);
  const int64_t ng = n / kRepackCols;
  int64_t r = 0;
  for (; r + kRowTile <= nrows; r += kRowTile) rows<kKind, kRowTile>(ng, x + (size_t)r * rb, rb, ya, y + r);
  switch (nrows - r) {
    case 3: rows<kKind, 3>(ng, x + (size_t)r * rb, rb, ya, y + r); break;
    case 2: rows<kKind, 2>(ng, x + (size_t)r * rb, rb, ya, y + r); break;
    case 1: rows<kKind, 1>(ng, x + (size_t)r * rb, rb, ya, y + r); break;
    default: break;
  }
}

template <Kind kKind>
float dot(int64_t n, const void* w, const void* a) {
  float y;
  rows<kKind, 1>(n / kRepackCols, static_cast<const uint8_t*>(w), 0, static_cast<const uint8_t*>(a), &y);
  return y;
}

// The AVX2 Q8_0 quantizer (byte-identical to the reference), taken from the table being filled;
// every table build stores the same function, atomically since tables build lazily on any thread.
std::atomic<QuantizeFn> g_q8_0{nullptr};

void quantize_a16(const float* src, void* dst, int64_t n) {
  BlockQ8_0 tmp[16];
  for (int64_t g = 0; g < n / kRepackCols; ++g) {
    g_q8_0.load(std::memory_order_relaxed)(src + g * kRepackCols, tmp, kRepackCols);
    ref::q8_0_to_a16(tmp, static_cast<uint8_t*>(dst) + g * kA16, 1);
  }
}

}  // namespace

void fill_avx2_repack(KernelTable* t) {
  g_q8_0.store(t->quantize_row[(int)DType::Q8_0], std::memory_order_relaxed);
  t->quantize_row[(int)DType::Q8_0_A16] = quantize_a16;
  t->vec_dot_rows[(int)DType::Q4_0_R16] = dot_rows<Kind::kQ4_0>;
  t->vec_dot_rows[(int)DType::Q4_K_R16] = dot_rows<Kind::kQ4_K>;
  t->vec_dot_rows[(int)DType::Q6_K_R16] = dot_rows<Kind::kQ6_K>;
  t->vec_dot_rows[(int)DType::Q5_K_R16] = dot_rows<Kind::kQ5_K>;
  t->vec_dot[(int)DType::Q5_K_R16] = dot<Kind::kQ5_K>;
  t->vec_dot_rows[(int)DType::Q2_K_R16] = dot_rows<Kind::kQ2_K>;
  t->vec_dot[(int)DType::Q2_K_R16] = dot<Kind::kQ2_K>;
  t->vec_dot[(int)DType::Q4_0_R16] = dot<Kind::kQ4_0>;
  t->vec_dot[(int)DType::Q4_K_R16] = dot<Kind::kQ4_K>;
  t->vec_dot[(int)DType::Q6_K_R16] = dot<Kind::kQ6_K>;
}

}  // namespace modu::kern
