// AVX-512 VNNI decode kernels for the repacked layouts of modu/kernels/repack.h (Q4_0_R16 and
// Q8_0_R16 weights, Q8_0_A16 activations). Included by avx512vnni.cpp after avx512_gemv.h.
//
// Performance reasoning. Decode streams every weight byte once; a core's DRAM stream only keeps
// enough misses in flight when few instructions wait on each loaded line (measured: a streaming
// read with ~0.1 uops per byte keeps ~85-90% of a plain read's rate, the file-layout kernels'
// ~0.29 uops per byte keep ~65-70%). In these layouts each int32 lane of a 64-byte piece is one
// block, so per 16 blocks and row:
//  * Q4_0_R16 (288 bytes): 4 loads, 4 x (AND, ANDN, 2 VPDPBUSD: the high nibbles are dotted in
//    place as 16 x nibble, shifted back once per group), one fp16 scale load and convert, one
//    multiply by the activation scales, one convert + FMA: ~23 uops, 0.08 per byte
//    (the file layout: 16-byte inserts, a scale permute per 4 blocks, 0.29 per byte).
//  * Q8_0_R16 (544 bytes): weights are stored as q + 128 so they go straight into VPDPBUSD's
//    unsigned operand: 8 VPDPBUSD + the same scale work, ~0.03 uops per byte.
//  * Q4_K_R16 (288 bytes, as Q4_K: the 6-bit scales and mins as 12-bit lanes, one VPERMW and a
//    shift apart): the Q4_0 nibble work plus ~14 uops of per-sub-block scales, ~0.12 per byte.
//    Until the fifth session the scales were bytes (296 bytes per group, 2.8% above the file).
//  * Q2_K_R16 (168 bytes, as Q2_K): 2 loads, per piece two shift + AND and two VPDPBUSD, then the
//    per-16-element scales and mins in floats, ~0.25 uops per byte (few bytes per weight).
//  * Q5_K_R16 (352 bytes, as Q5_K): as Q4_K_R16 plus one load of the 5th bits and per piece two
//    shifts and two VPTERNLOGD, ~0.15 uops per byte.
//  * The activation's -8 * sum(y) (Q4_0) or -128 * sum(y) (Q8_0) term starts the accumulator, the
//    activation pieces are read from L1 as memory operands, and nothing is reduced horizontally
//    before the end of the row.
//  * Prefetch: the next row tile's bytes as in avx512_gemv.h, but into L2 (PREFETCHT1): with these
//    lighter kernels that won 5 of 6 alternating bench-1b decode pairs for Q4_0/Q4_K (+3-8%) and
//    3 of 3 for Q8_0 (+13%) over PREFETCHT0; 2 rows ahead lost, 8 tied with 4.
//  * And a second prefetch of the same group of the next row tile into L1 (PREFETCHT0; the L2
//    prefetch brought it in ~2 row tiles earlier), so the demand loads find their lines in L1 and
//    the core's L1 miss slots stay free for the DRAM stream. Sixth session, bench-1b decode reps
//    alternating in one process (vs the read just before/after, medians): Q4_0 85.6 -> 89.7%
//    (9 pairs) and 88.0 -> 90.3%, Q4_K 86.7 -> 92.8% (4 of 4 pairs), Q5_K 80.5 -> 87.6%, Q6_K
//    80.7 -> 89.2%, Q8_0 97.8 -> 98.9%, Q2_K unchanged. Alone (T0 only) it lost, as above; an L2
//    prefetch 8 or 12 rows ahead instead of 4 made no difference next to it.
//  * Row tile of 2 (kR16RowTile), still prefetching 4 rows ahead: two interleaved row streams
//    instead of four keep the access close to one linear stream. On a 2-core Xeon with 2 MiB L2
//    (34 GB/s read), decode reps alternating in one process gave, vs the read just before/after:
//    Q4_0 88.6% (tile 2) and 89.1% (tile 1) against 84.5% (tile 4); Q4_K 84-85% either way,
//    Q8_0 95% either way. Tile 2 shares the activation scales of a group between two rows.
#pragma once

#ifndef __AVX512VNNI__
#error "avx512_repack.h needs VNNI (VPDPBUSD with unsigned weights up to 255)"
#endif

#include "modu/kernels/repack.h"

namespace {

constexpr size_t kQ4R16Group = 288, kQ8R16Group = 544, kA16Group = 640, kQ4KR16Group = 288, kQ6KR16Group = 420, kQ5KR16Group = 352, kQ2KR16Group = 168;

// The prefetches of one row's kGroup-byte group at x, one per 64 bytes (consecutive groups'
// prefetch points stay <= 64 bytes apart): into L2 `far` bytes ahead (prefetch_distance), and into
// L1 the same group of the next row tile (`near`), which the L2 prefetch brought in earlier.
template <size_t kGroup>
inline void prefetch_group(const uint8_t* x, size_t far, size_t near) {
  for (size_t o = 0; o < kGroup; o += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(x + far + o), _MM_HINT_T1);
    _mm_prefetch(reinterpret_cast<const char*>(x + near + o), _MM_HINT_T0);
  }
}

// start + per lane (one block / sub-block) the dot of the 4 pieces' nibbles at x with the Q8_0_A16
// activation group ya. High nibbles stay in place (q & 0xF0 = 16 * nibble): p1 collects 16x their
// dot, exactly, and one arithmetic shift per group replaces a shift per piece.
inline __m512i nibble_dot(const uint8_t* x, const uint8_t* ya, __m512i m4, __m512i start) {
  __m512i p0 = start, p1 = _mm512_setzero_si512();
  for (int j = 0; j < 4; ++j) {
    const __m512i q = _mm512_loadu_si512(x + 64 * j);
    p0 = _mm512_dpbusd_epi32(p0, _mm512_and_si512(q, m4), _mm512_loadu_si512(ya + 64 * j));
    p1 = _mm512_dpbusd_epi32(p1, _mm512_andnot_si512(m4, q), _mm512_loadu_si512(ya + 256 + 64 * j));
  }
  return _mm512_add_epi32(p0, _mm512_srai_epi32(p1, 4));
}

template <int R>
inline void rows_q4_0_r16(int64_t ng, const uint8_t* w, size_t rb, const uint8_t* a, float* out) {
  const size_t pf = prefetch_distance(rb);
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t g = 0; g < ng; ++g) {
    const uint8_t* ya = a + g * kA16Group;
    const __m512 dy = _mm512_loadu_ps(ya + 512);
    const __m512i corr = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(_mm512_loadu_si512(ya + 576), 3));
    for (int r = 0; r < R; ++r) {
      const uint8_t* x = w + (size_t)r * rb + (size_t)g * kQ4R16Group;
      prefetch_group<kQ4R16Group>(x, pf, (size_t)R * rb);
      const __m512i p = nibble_dot(x, ya, m4, corr);
      const __m512 dx = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 256)));
      acc[r] = _mm512_fmadd_ps(_mm512_mul_ps(dx, dy), _mm512_cvtepi32_ps(p), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(acc[r]);
}

template <int R>
inline void rows_q8_0_r16(int64_t ng, const uint8_t* w, size_t rb, const uint8_t* a, float* out) {
  const size_t pf = prefetch_distance(rb);
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t g = 0; g < ng; ++g) {
    const uint8_t* ya = a + g * kA16Group;
    const __m512 dy = _mm512_loadu_ps(ya + 512);
    const __m512i corr = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(_mm512_loadu_si512(ya + 576), 7));
    for (int r = 0; r < R; ++r) {
      const uint8_t* x = w + (size_t)r * rb + (size_t)g * kQ8R16Group;
      prefetch_group<kQ8R16Group>(x, pf, (size_t)R * rb);
      __m512i p0 = corr, p1 = _mm512_setzero_si512();
      for (int j = 0; j < 8; j += 2) {
        p0 = _mm512_dpbusd_epi32(p0, _mm512_loadu_si512(x + 64 * j), _mm512_loadu_si512(ya + 64 * j));
        p1 = _mm512_dpbusd_epi32(p1, _mm512_loadu_si512(x + 64 * j + 64), _mm512_loadu_si512(ya + 64 * j + 64));
      }
      const __m512 dx = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 512)));
      acc[r] = _mm512_fmadd_ps(_mm512_mul_ps(dx, dy), _mm512_cvtepi32_ps(_mm512_add_epi32(p0, p1)), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(acc[r]);
}

// Lane l (block / sub-block l of a group) belongs to super-block l / 8: permute index for d[2].
inline __m512i superblock_of_lane() { return _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1); }

// Per lane (block) the sums of the activation's first and last 16 elements (Q8_0_A16 group ya).
inline void a16_half_sums(const uint8_t* ya, __m512i* first, __m512i* last) {
  const __m512i ones = _mm512_set1_epi8(1);
  __m512i se = _mm512_setzero_si512(), so = _mm512_setzero_si512();
  for (int j = 0; j < 4; ++j) {
    se = _mm512_dpbusd_epi32(se, ones, _mm512_loadu_si512(ya + 64 * j));
    so = _mm512_dpbusd_epi32(so, ones, _mm512_loadu_si512(ya + 256 + 64 * j));
  }
  *first = se;
  *last = so;
}

// The K-quant sub-block term per lane: d * sc * dot - dmin * m * sum(y), with the 12-bit scale
// field (blocks.h r16_kscale_get: lane l at bits 12l..12l+11) at sm and d[2], dmin[2] fp16 at
// sm + 24 (Q4_K_R16 and Q5_K_R16 share this tail). One 32-byte load covers field and d/dmin;
// VPERMW gives dword l the two 16-bit words holding its 12 bits, one variable shift aligns them.
inline __m512 kquant_term(const uint8_t* sm, __m512i dot, __m512 sy) {
  const __m512i idx_d = superblock_of_lane(), idx_m = _mm512_add_epi32(idx_d, _mm512_set1_epi32(2));
  // dword l <- words 3l/4 and 3l/4 + 1, shifted right by 12l mod 16
  const __m512i widx = _mm512_set_epi16(12, 11, 11, 10, 10, 9, 10, 9, 9, 8, 8, 7, 7, 6, 7, 6, 6, 5, 5, 4, 4, 3, 4, 3, 3, 2, 2, 1, 1, 0, 1, 0);
  const __m512i shift = _mm512_setr_epi32(0, 12, 8, 4, 0, 12, 8, 4, 0, 12, 8, 4, 0, 12, 8, 4);
  const __m512i raw = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sm)));
  const __m512i v = _mm512_srlv_epi32(_mm512_permutexvar_epi16(widx, raw), shift);
  const __m512i six = _mm512_set1_epi32(63);
  const __m512 sc = _mm512_cvtepi32_ps(_mm512_and_si512(v, six));
  const __m512 mn = _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(v, 6), six));
  const __m512 dd = _mm512_castps128_ps512(_mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sm + 24))));
  const __m512 dl = _mm512_mul_ps(sc, _mm512_permutexvar_ps(idx_d, dd));
  const __m512 ml = _mm512_mul_ps(mn, _mm512_permutexvar_ps(idx_m, dd));
  return _mm512_fmsub_ps(dl, _mm512_cvtepi32_ps(dot), _mm512_mul_ps(ml, sy));
}

// Q4_K_R16: the nibble dot as Q4_0_R16 (one lane per 32-element sub-block), then per lane
// dy * (d * sc * dot - dmin * m * sum(y)); sc and m are bytes, d/dmin one fp16 per 8 lanes.
template <int R>
inline void rows_q4_k_r16(int64_t ng, const uint8_t* w, size_t rb, const uint8_t* a, float* out) {
  const size_t pf = prefetch_distance(rb);
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t g = 0; g < ng; ++g) {
    const uint8_t* ya = a + g * kA16Group;
    const __m512 dy = _mm512_loadu_ps(ya + 512);
    const __m512 sy = _mm512_cvtepi32_ps(_mm512_loadu_si512(ya + 576));
    for (int r = 0; r < R; ++r) {
      const uint8_t* x = w + (size_t)r * rb + (size_t)g * kQ4KR16Group;
      prefetch_group<kQ4KR16Group>(x, pf, (size_t)R * rb);
      const __m512 t = kquant_term(x + 256, nibble_dot(x, ya, m4, _mm512_setzero_si512()), sy);
      acc[r] = _mm512_fmadd_ps(t, dy, acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(acc[r]);
}

// Q5_K_R16: 5-bit values = nibble | 5th bit, the bit moved to bit 4 by one 16-bit shift and
// merged by one VPTERNLOGD (A | (B & 0x10)); high nibbles are shifted down (the in-place trick of
// nibble_dot would put the 5th bit at 256). Scales and mins as Q4_K_R16.
template <int R>
inline void rows_q5_k_r16(int64_t ng, const uint8_t* w, size_t rb, const uint8_t* a, float* out) {
  const size_t pf = prefetch_distance(rb);
  const __m512i m4 = _mm512_set1_epi8(0x0F), m10 = _mm512_set1_epi8(0x10);
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t g = 0; g < ng; ++g) {
    const uint8_t* ya = a + g * kA16Group;
    const __m512 dy = _mm512_loadu_ps(ya + 512);
    const __m512 sy = _mm512_cvtepi32_ps(_mm512_loadu_si512(ya + 576));
    for (int r = 0; r < R; ++r) {
      const uint8_t* x = w + (size_t)r * rb + (size_t)g * kQ5KR16Group;
      prefetch_group<kQ5KR16Group>(x, pf, (size_t)R * rb);
      const __m512i hb = _mm512_loadu_si512(x + 256);
      __m512i p0 = _mm512_setzero_si512(), p1 = _mm512_setzero_si512();
      for (int j = 0; j < 4; ++j) {
        const __m512i q = _mm512_loadu_si512(x + 64 * j);
        __m512i hl, hh;  // bit 2j (low nibbles) / 2j + 1 (high nibbles) of each byte -> bit 4
        switch (j) {
          case 0: hl = _mm512_slli_epi16(hb, 4); hh = _mm512_slli_epi16(hb, 3); break;
          case 1: hl = _mm512_slli_epi16(hb, 2); hh = _mm512_slli_epi16(hb, 1); break;
          case 2: hl = hb; hh = _mm512_srli_epi16(hb, 1); break;
          default: hl = _mm512_srli_epi16(hb, 2); hh = _mm512_srli_epi16(hb, 3); break;
        }
        const __m512i ve = _mm512_ternarylogic_epi32(_mm512_and_si512(q, m4), hl, m10, 0xF8);
        const __m512i vo = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(q, 4), m4), hh, m10, 0xF8);
        p0 = _mm512_dpbusd_epi32(p0, ve, _mm512_loadu_si512(ya + 64 * j));
        p1 = _mm512_dpbusd_epi32(p1, vo, _mm512_loadu_si512(ya + 256 + 64 * j));
      }
      const __m512 t = kquant_term(x + 320, _mm512_add_epi32(p0, p1), sy);
      acc[r] = _mm512_fmadd_ps(t, dy, acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(acc[r]);
}

// Q2_K_R16: 2-bit values (one shift + AND per piece) dotted per 16-element half; per lane
// dy * (d * (sc_e * dot_e + sc_o * dot_o) - dmin * (m_e * sum_e(y) + m_o * sum_o(y))), the scale
// bytes split into sc (low nibble) and m (high nibble); the activation half-sums once per tile.
template <int R>
inline void rows_q2_k_r16(int64_t ng, const uint8_t* w, size_t rb, const uint8_t* a, float* out) {
  const size_t pf = prefetch_distance(rb);
  const __m512i m3 = _mm512_set1_epi8(3), m4d = _mm512_set1_epi32(0xF);
  const __m512i idx_d = superblock_of_lane(), idx_m = _mm512_add_epi32(idx_d, _mm512_set1_epi32(2));
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t g = 0; g < ng; ++g) {
    const uint8_t* ya = a + g * kA16Group;
    const __m512 dy = _mm512_loadu_ps(ya + 512);
    __m512i se, so;
    a16_half_sums(ya, &se, &so);
    const __m512 sef = _mm512_cvtepi32_ps(se), sof = _mm512_cvtepi32_ps(so);
    for (int r = 0; r < R; ++r) {
      const uint8_t* x = w + (size_t)r * rb + (size_t)g * kQ2KR16Group;
      prefetch_group<kQ2KR16Group>(x, pf, (size_t)R * rb);
      const __m512i h0 = _mm512_loadu_si512(x), h1 = _mm512_loadu_si512(x + 64);
      __m512i pe = _mm512_setzero_si512(), po = _mm512_setzero_si512();
      for (int j = 0; j < 4; ++j) {
        const __m512i ve = _mm512_and_si512(j == 0 ? h0 : _mm512_srli_epi16(h0, 2 * j), m3);
        const __m512i vo = _mm512_and_si512(j == 0 ? h1 : _mm512_srli_epi16(h1, 2 * j), m3);
        pe = _mm512_dpbusd_epi32(pe, ve, _mm512_loadu_si512(ya + 64 * j));
        po = _mm512_dpbusd_epi32(po, vo, _mm512_loadu_si512(ya + 256 + 64 * j));
      }
      const __m512i be = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + 128)));
      const __m512i bo = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + 144)));
      const __m512 dot = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(be, m4d)), _mm512_cvtepi32_ps(pe),
                                         _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_and_si512(bo, m4d)), _mm512_cvtepi32_ps(po)));
      const __m512 mins = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(be, 4)), sef,
                                          _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(bo, 4)), sof));
      const __m512 dd = _mm512_castps128_ps512(_mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + 160))));
      const __m512 t = _mm512_fmsub_ps(_mm512_permutexvar_ps(idx_d, dd), dot, _mm512_mul_ps(_mm512_permutexvar_ps(idx_m, dd), mins));
      acc[r] = _mm512_fmadd_ps(t, dy, acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(acc[r]);
}

// Q6_K_R16: 6-bit values = low nibble | 2 high bits << 4, assembled with one VPTERNLOGD per piece
// (A | (B & 0x30)); the -32 offset comes from the activation's 16-element sums (VPDPBUSD with ones,
// once per tile), and the even / odd 16-element sub-blocks of each lane keep their own
// accumulators so each gets its own int8 scale.
template <int R>
inline void rows_q6_k_r16(int64_t ng, const uint8_t* w, size_t rb, const uint8_t* a, float* out) {
  const size_t pf = prefetch_distance(rb);
  const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
  const __m512i idx_d = superblock_of_lane();
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t g = 0; g < ng; ++g) {
    const uint8_t* ya = a + g * kA16Group;
    const __m512 dy = _mm512_loadu_ps(ya + 512);
    __m512i se, so;
    a16_half_sums(ya, &se, &so);
    const __m512i ce = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(se, 5));
    const __m512i co = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(so, 5));
    for (int r = 0; r < R; ++r) {
      const uint8_t* x = w + (size_t)r * rb + (size_t)g * kQ6KR16Group;
      prefetch_group<kQ6KR16Group>(x, pf, (size_t)R * rb);
      const __m512i h0 = _mm512_loadu_si512(x + 256), h1 = _mm512_loadu_si512(x + 320);
      __m512i pe = ce, po = co;
      for (int j = 0; j < 4; ++j) {
        const __m512i q = _mm512_loadu_si512(x + 64 * j);
        __m512i he, ho;
        switch (j) {  // bits 2j..2j+1 of the high-bit bytes -> bits 4..5
          case 0: he = _mm512_slli_epi16(h0, 4); ho = _mm512_slli_epi16(h1, 4); break;
          case 1: he = _mm512_slli_epi16(h0, 2); ho = _mm512_slli_epi16(h1, 2); break;
          case 2: he = h0; ho = h1; break;
          default: he = _mm512_srli_epi16(h0, 2); ho = _mm512_srli_epi16(h1, 2); break;
        }
        const __m512i ve = _mm512_ternarylogic_epi32(_mm512_and_si512(q, m4), he, m30, 0xF8);  // A | (B & C)
        const __m512i vo = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(q, 4), m4), ho, m30, 0xF8);
        pe = _mm512_dpbusd_epi32(pe, ve, _mm512_loadu_si512(ya + 64 * j));
        po = _mm512_dpbusd_epi32(po, vo, _mm512_loadu_si512(ya + 256 + 64 * j));
      }
      const __m512 sce = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + 384))));
      const __m512 sco = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + 400))));
      int32_t d2;
      std::memcpy(&d2, x + 416, 4);
      const __m512 dd = _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi32_si128(d2)));
      const __m512 t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(pe), sce, _mm512_mul_ps(_mm512_cvtepi32_ps(po), sco));
      acc[r] = _mm512_fmadd_ps(t, _mm512_mul_ps(_mm512_permutexvar_ps(idx_d, dd), dy), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(acc[r]);
}

enum class R16Kind { kQ4_0, kQ8_0, kQ2_K, kQ4_K, kQ5_K, kQ6_K };

template <R16Kind kKind, int R>
inline void rows_r16(int64_t ng, const uint8_t* w, size_t rb, const uint8_t* a, float* out) {
  if constexpr (kKind == R16Kind::kQ4_0) rows_q4_0_r16<R>(ng, w, rb, a, out);
  else if constexpr (kKind == R16Kind::kQ8_0) rows_q8_0_r16<R>(ng, w, rb, a, out);
  else if constexpr (kKind == R16Kind::kQ4_K) rows_q4_k_r16<R>(ng, w, rb, a, out);
  else if constexpr (kKind == R16Kind::kQ5_K) rows_q5_k_r16<R>(ng, w, rb, a, out);
  else if constexpr (kKind == R16Kind::kQ2_K) rows_q2_k_r16<R>(ng, w, rb, a, out);
  else rows_q6_k_r16<R>(ng, w, rb, a, out);
}

constexpr int kR16RowTile = 2;  // see "Row tile" above; the prefetch stays kRowTile rows ahead

template <R16Kind kKind>
void dot_rows_r16(int64_t n, const void* w, size_t rb, int64_t nrows, const void* a, float* y) {
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const uint8_t* ya = static_cast<const uint8_t*>(a);
  const int64_t ng = n / modu::kRepackCols;
  int64_t r = 0;
  for (; r + kR16RowTile <= nrows; r += kR16RowTile) rows_r16<kKind, kR16RowTile>(ng, x + (size_t)r * rb, rb, ya, y + r);
  if (r < nrows) rows_r16<kKind, 1>(ng, x + (size_t)r * rb, rb, ya, y + r);
}

template <R16Kind kKind>
float dot_r16(int64_t n, const void* w, const void* a) {
  float y;
  rows_r16<kKind, 1>(n / modu::kRepackCols, static_cast<const uint8_t*>(w), 0, static_cast<const uint8_t*>(a), &y);
  return y;
}

// In-register transpose of a 16 x 16 float matrix (r[i] = row i): four rounds of 16 shuffles.
inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i)
    for (int k = 0; k < 2; ++k) {
      r[4 * i + 2 * k] = _mm512_shuffle_ps(t[4 * i + k], t[4 * i + 2 + k], 0x44);
      r[4 * i + 2 * k + 1] = _mm512_shuffle_ps(t[4 * i + k], t[4 * i + 2 + k], 0xEE);
    }
  for (int i = 0; i < 2; ++i)
    for (int k = 0; k < 4; ++k) {
      t[8 * i + k] = _mm512_shuffle_f32x4(r[8 * i + k], r[8 * i + 4 + k], 0x88);
      t[8 * i + 4 + k] = _mm512_shuffle_f32x4(r[8 * i + k], r[8 * i + 4 + k], 0xDD);
    }
  for (int k = 0; k < 8; ++k) {
    r[k] = _mm512_shuffle_f32x4(t[k], t[8 + k], 0x88);
    r[8 + k] = _mm512_shuffle_f32x4(t[k], t[8 + k], 0xDD);
  }
}

// Q8_0_A16 quantization (byte-identical to the reference). It runs once per decode matmul on the
// calling thread while the others only wait, so it is laid out for lanes = blocks: the group's 16
// blocks are transposed in registers (element e of every block in one vector), after which the
// block maxima, scales, rounding (the reference's roundf via round_away) and sums are plain lane
// arithmetic with no horizontal reductions, and each 64-byte piece is four vectors' low bytes
// merged in place. The earlier form (Q8_0 blocks in a buffer, then nine 16-lane gathers) took
// 1.7 us per 4096 elements, this one 1.2 (kernels_bench quantize_row/q8_0_a16).
void quantize_q8_0_a16(const float* src, void* dst, int64_t n) {
  const __m512i lo8 = _mm512_set1_epi32(0xFF), b1 = _mm512_set1_epi32(0xFF00), b2 = _mm512_set1_epi32(0xFF0000);
  for (int64_t g = 0; g < n / modu::kRepackCols; ++g) {
    const float* x = src + g * modu::kRepackCols;
    uint8_t* o = static_cast<uint8_t*>(dst) + g * kA16Group;
    __m512 h[2][16];  // h[half][e], lane l: element 16 * half + e of block l
    for (int half = 0; half < 2; ++half) {
      for (int l = 0; l < 16; ++l) h[half][l] = _mm512_loadu_ps(x + 32 * l + 16 * half);
      transpose16(h[half]);
    }
    __m512 amax = _mm512_setzero_ps();
    for (int half = 0; half < 2; ++half)
      for (int e = 0; e < 16; ++e) amax = _mm512_max_ps(amax, _mm512_abs_ps(h[half][e]));
    const __m512 d = _mm512_div_ps(amax, _mm512_set1_ps(127.0f));
    const __m512 id = _mm512_maskz_div_ps(_mm512_cmp_ps_mask(d, _mm512_setzero_ps(), _CMP_NEQ_OQ), _mm512_set1_ps(1.0f), d);
    __m512i sum = _mm512_setzero_si512();
    for (int half = 0; half < 2; ++half)
      for (int j = 0; j < 4; ++j) {  // piece 4 * half + j: elements 16 * half + 4j .. + 3 of each block
        __m512i q[4];
        for (int b = 0; b < 4; ++b) {
          q[b] = round_away(_mm512_mul_ps(h[half][4 * j + b], id));
          sum = _mm512_add_epi32(sum, q[b]);
        }
        __m512i v = _mm512_and_si512(q[0], lo8);
        v = _mm512_ternarylogic_epi32(v, _mm512_slli_epi32(q[1], 8), b1, 0xF8);  // A | (B & C)
        v = _mm512_ternarylogic_epi32(v, _mm512_slli_epi32(q[2], 16), b2, 0xF8);
        v = _mm512_or_si512(v, _mm512_slli_epi32(q[3], 24));
        _mm512_storeu_si512(o + 64 * (4 * half + j), v);
      }
    _mm512_storeu_ps(o + 512, _mm512_cvtph_ps(_mm512_cvtps_ph(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
    _mm512_storeu_si512(o + 576, sum);
  }
}

inline void fill_repack_table(modu::KernelTable* t) {
  using modu::DType;
  t->vec_dot_rows[(int)DType::Q4_0_R16] = dot_rows_r16<R16Kind::kQ4_0>;
  t->vec_dot_rows[(int)DType::Q8_0_R16] = dot_rows_r16<R16Kind::kQ8_0>;
  t->vec_dot_rows[(int)DType::Q4_K_R16] = dot_rows_r16<R16Kind::kQ4_K>;
  t->vec_dot[(int)DType::Q4_0_R16] = dot_r16<R16Kind::kQ4_0>;
  t->vec_dot[(int)DType::Q8_0_R16] = dot_r16<R16Kind::kQ8_0>;
  t->vec_dot[(int)DType::Q4_K_R16] = dot_r16<R16Kind::kQ4_K>;
  t->vec_dot_rows[(int)DType::Q6_K_R16] = dot_rows_r16<R16Kind::kQ6_K>;
  t->vec_dot_rows[(int)DType::Q5_K_R16] = dot_rows_r16<R16Kind::kQ5_K>;
  t->vec_dot[(int)DType::Q5_K_R16] = dot_r16<R16Kind::kQ5_K>;
  t->vec_dot_rows[(int)DType::Q2_K_R16] = dot_rows_r16<R16Kind::kQ2_K>;
  t->vec_dot[(int)DType::Q2_K_R16] = dot_r16<R16Kind::kQ2_K>;
  t->vec_dot[(int)DType::Q6_K_R16] = dot_r16<R16Kind::kQ6_K>;
  t->quantize_row[(int)DType::Q8_0_A16] = quantize_q8_0_a16;
}

}  // namespace
