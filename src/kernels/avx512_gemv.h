// AVX-512 decode matrix x vector kernels (vec_dot_rows): y[r] = dot(W row r, a) for several rows per
// pass. Included by avx512.cpp / avx512vnni.cpp after avx512_body.h (uses its helpers); with
// __AVX512VNNI__ every int8 step is one VPDPBUSD, otherwise VPMADDUBSW + VPMADDWD + VPADDD.
//
// Performance reasoning (decode streams each weight byte exactly once, so the kernel must retire
// more than DRAM bandwidth / cores ~ 7.5 GB/s per core, i.e. ~3 weight bytes per cycle at ~2.5 GHz;
// on this core only ports 0 and 5 execute 512-bit uops, so uops per weight byte is what counts):
//  * kRowTile = 4 rows share every activation load, its re-layout, its scale conversion and the
//    Q4_0 correction term: that work is paid once per 4 rows instead of once per row.
//  * Q4_0: nibbles stay unsigned (0..15) and go straight into VPDPBUSD as the unsigned operand;
//    dot(q - 8, y) = dot(q, y) - 8 * sum(y), and -8 * sum(y) (per int32 lane, computed once per
//    activation step with a VPDPBUSD of 8s) is the accumulator VPDPBUSD starts from. This replaces
//    the per-row subtract + sign trick (abs, mask, masked negate) of vec_dot: zero extra uops per row.
//  * Instead of re-arranging each weight row's nibbles into block order, the (shared) activation is
//    re-arranged to match the weights' natural nibble order: 4 blocks' low nibbles form one zmm,
//    their high nibbles another, and the activation is split the same way.
//  * Weight scales of 4 blocks come from one 64-byte load + one VPERMW that copies each block's
//    fp16 scale to its 4 lanes, and one VCVTPH2PS (no scalar converts, broadcasts or blends).
//  * Software prefetch of the next row tile's bytes (see prefetch_distance), one line per 64 bytes
//    consumed: the hardware streamer alone leaves the 4 interleaved row streams at ~5.6 GB/s a core.
//    Into L1, and the same bytes of the tile after it into L2 first (sixth session: bench-1b decode
//    reps alternating in one process, Q8_0 at MODU_ISA=avx2 87 -> 91% and avx512 78 -> 82% of the
//    read bandwidth, Q4_0 with MODU_REPACK=0 67.5 -> 72%, 4 of 4 pairs each).
//  * Leftover blocks (nb % 4) and rows (nrows % 4) use the same code with fewer rows / the 256-bit
//    single-block form; every result equals vec_dot's up to float summation order.
#pragma once

namespace {

constexpr int kRowTile = 4;
// Software prefetch distance: the same column offset kRowTile rows down, i.e. exactly the bytes the
// next row tile reads at this step. A fixed byte distance shorter than a tile (the first version
// used 768) mostly re-requests lines the rows below are loading anyway; one tile ahead is ~4.5 KiB
// for a 2048-wide Q4_0 matrix (~0.4 us at DRAM speed), and measured best among 2..16 rows ahead
// (kernels_bench gemv/q4_0/avx512vnni/rows/dram: 5.6 GB/s at 768 B -> 11.6 GB/s, one thread).
inline size_t prefetch_distance(size_t rb) { return (size_t)kRowTile * rb; }

// acc + dot of unsigned bytes u with signed bytes s per int32 lane. VNNI is exact for any bytes;
// the maddubs form saturates int16 pair sums, so it is only used with u <= 15 (Q4_0 nibbles, 8s).
inline __m512i dpbusd(__m512i acc, __m512i u, __m512i s) {
#ifdef __AVX512VNNI__
  return _mm512_dpbusd_epi32(acc, u, s);
#else
  return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
#endif
}
inline __m256i dpbusd256(__m256i acc, __m256i u, __m256i s) {
#ifdef __AVX512VNNI__
  return _mm256_dpbusd_epi32(acc, u, s);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}
inline __m128i ld128(const void* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
// Four 16-byte pieces -> one zmm (128-bit lane j = piece j).
inline __m512i join4(const void* p0, const void* p1, const void* p2, const void* p3) {
  __m512i v = _mm512_castsi128_si512(ld128(p0));
  v = _mm512_inserti32x4(v, ld128(p1), 1);
  v = _mm512_inserti32x4(v, ld128(p2), 2);
  return _mm512_inserti32x4(v, ld128(p3), 3);
}
// The fp16 words of the 64 bytes at p picked by the low 16 entries of idx -> 16 floats.
inline __m512 scales4(const void* p, __m512i idx) {
  const __m512i v = _mm512_loadu_si512(p);
  return _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(idx, v)));
}

// ---------------------------------------------------------------- Q4_0 x Q8_0
template <int R>
inline void rows_q4_0(int64_t nb, const uint8_t* w, size_t rb, const BlockQ8_0* y, float* out) {
  const size_t pf = prefetch_distance(rb);
  // d of blocks 0..3 of a 72-byte group sit at byte 0, 18, 36, 54 = words 0, 9, 18, 27.
  alignas(64) static constexpr int16_t sidx_w[32] = {0, 0, 0, 0, 9, 9, 9, 9, 18, 18, 18, 18, 27, 27, 27, 27, 0, 0, 0, 0, 0, 0, 0,
                                         0, 0, 0, 0, 0, 0, 0, 0, 0};
  const __m512i sidx = _mm512_load_si512(sidx_w);
  const __m512i m4 = _mm512_set1_epi8(0x0F), eight = _mm512_set1_epi8(8);
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 4 <= nb; b += 4) {
    const BlockQ8_0* yb = y + b;
    // Shared activation work: low/high halves of 4 blocks, the -8*sum correction, 4 scales.
    const __m512i ylo = join4(yb[0].qs, yb[1].qs, yb[2].qs, yb[3].qs);
    const __m512i yhi = join4(yb[0].qs + 16, yb[1].qs + 16, yb[2].qs + 16, yb[3].qs + 16);
    const __m512i corr = _mm512_sub_epi32(_mm512_setzero_si512(),
                                          dpbusd(dpbusd(_mm512_setzero_si512(), eight, ylo), eight, yhi));
    const __m128 dy4 = _mm_cvtph_ps(_mm_setr_epi16((short)yb[0].d, (short)yb[1].d, (short)yb[2].d, (short)yb[3].d,
                                                   0, 0, 0, 0));
    const __m512 dy = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),
                                            _mm512_castps128_ps512(dy4));
    for (int r = 0; r < R; ++r) {
      const uint8_t* x = w + (size_t)r * rb + (size_t)b * sizeof(BlockQ4_0);
      _mm_prefetch(reinterpret_cast<const char*>(x + pf), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(x + 2 * pf), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(x + pf + 64), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(x + 2 * pf + 64), _MM_HINT_T1);
      const __m512i q = join4(x + 2, x + 20, x + 38, x + 56);
      const __m512i lo = _mm512_and_si512(q, m4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
      const __m512i p = dpbusd(dpbusd(corr, lo, ylo), hi, yhi);
      const __m512 dx = scales4(x, sidx);
      acc[r] = _mm512_fmadd_ps(_mm512_mul_ps(dx, dy), _mm512_cvtepi32_ps(p), acc[r]);
    }
  }
  float tail[R] = {};
  for (; b < nb; ++b) {  // 1..3 leftover blocks: 256-bit form, same correction trick
    const __m256i yv = ld256(y[b].qs);
    const __m256i corr = _mm256_sub_epi32(_mm256_setzero_si256(),
                                          dpbusd256(_mm256_setzero_si256(), _mm256_set1_epi8(8), yv));
    const float dy = h2f(y[b].d);
    for (int r = 0; r < R; ++r) {
      const BlockQ4_0* x = reinterpret_cast<const BlockQ4_0*>(w + (size_t)r * rb) + b;
      const __m256i p = dpbusd256(corr, nibbles1(x->qs), yv);
      tail[r] += h2f(x->d) * dy * hsum256(_mm256_cvtepi32_ps(p));
    }
  }
  for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(acc[r]) + tail[r];
}

// ---------------------------------------------------------------- Q8_0 x Q8_0
// VNNI: the weight bytes become unsigned by flipping their sign bit (x + 128, one VPXORD per row),
// and dot(x + 128, y) - 128 * sum(y) is exact for every int8 x, -128 included; -128 * sum(y) is
// the shared accumulator start as for Q4_0. Without VNNI, (x + 128) * y pairs would saturate
// VPMADDUBSW's int16, so that build keeps vec_dot's sign trick per row (still sharing the
// activation loads and scale conversions across the row tile).
template <int R>
inline void rows_q8_0(int64_t nb, const uint8_t* w, size_t rb, const BlockQ8_0* y, float* out) {
  const size_t pf = prefetch_distance(rb);
  // d of blocks 0, 1 of a 68-byte pair sit at words 0 and 17.
  alignas(64) static constexpr int16_t sidx_w[32] = {0, 0, 0, 0, 0, 0, 0, 0, 17, 17, 17, 17, 17, 17, 17, 17, 0, 0, 0, 0, 0, 0, 0,
                                         0, 0, 0, 0, 0, 0, 0, 0, 0};
  const __m512i sidx = _mm512_load_si512(sidx_w);
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const __m512i yv = load2(y[b].qs, y[b + 1].qs);
#ifdef __AVX512VNNI__
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const __m512i corr = _mm512_sub_epi32(_mm512_setzero_si512(), dpbusd(_mm512_setzero_si512(), flip, yv));
#endif
    const __m512 dy = scales2(h2f(y[b].d), h2f(y[b + 1].d));
    for (int r = 0; r < R; ++r) {
      const uint8_t* x = w + (size_t)r * rb + (size_t)b * sizeof(BlockQ8_0);
      _mm_prefetch(reinterpret_cast<const char*>(x + pf), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(x + 2 * pf), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(x + pf + 64), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(x + 2 * pf + 64), _MM_HINT_T1);
      const __m512i xv = load2(reinterpret_cast<const int8_t*>(x + 2), reinterpret_cast<const int8_t*>(x + 36));
#ifdef __AVX512VNNI__
      const __m512i p = dpbusd(corr, _mm512_xor_si512(xv, flip), yv);
#else
      const __m512i p = dot_s8(xv, yv);
#endif
      const __m512 dx = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(sidx, _mm512_loadu_si512(x))));
      acc[r] = _mm512_fmadd_ps(_mm512_mul_ps(dx, dy), _mm512_cvtepi32_ps(p), acc[r]);
    }
  }
  float tail[R] = {};
  if (b < nb) {
    for (int r = 0; r < R; ++r) {
      const BlockQ8_0* x = reinterpret_cast<const BlockQ8_0*>(w + (size_t)r * rb) + b;
      const __m256i p = dot_s8_256(ld256(x->qs), ld256(y[b].qs));
      tail[r] = h2f(x->d) * h2f(y[b].d) * hsum256(_mm256_cvtepi32_ps(p));
    }
  }
  for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(acc[r]) + tail[r];
}

// ---------------------------------------------------------------- Q4_K x Q8_K
// Per super-block (256 elements, 144 bytes) and row: two 64-byte nibble loads; the low nibbles of
// qs[0:64] are sub-blocks 0 and 2, the high ones 1 and 3 (likewise 4..7 in qs[64:128]), so the
// shared activation is re-laid out into the same 4 zmm once per tile. Each VPDPBUSD lane sums 4
// products (<= 4 * 15 * 128, fits int16), so two lanes' results are packed to int16 (VPACKSSDW,
// no saturation possible) and multiplied by the 6-bit sub-block scales with one VPMADDWD per pair:
// 4 dot uops + 2 packs + 2 madds per super-block instead of per-sub-block float work. Mins use
// the activation's bsums (pairs summed once per tile) and one VPMADDWD per row.
inline void k4_unpack(const uint8_t* s12, uint32_t sc[2], uint32_t mn[2]) {
  uint32_t u[3];
  std::memcpy(u, s12, 12);
  constexpr uint32_t k1 = 0x3f3f3f3f, k2 = 0x0f0f0f0f, k3 = 0x03030303;
  sc[0] = u[0] & k1;                                   // scales 0..3
  mn[0] = u[1] & k1;                                   // mins 0..3
  sc[1] = (u[2] & k2) | (((u[0] >> 6) & k3) << 4);    // scales 4..7
  mn[1] = ((u[2] >> 4) & k2) | (((u[1] >> 6) & k3) << 4);  // mins 4..7
}

template <int R>
inline void rows_q4_k(int64_t nb, const uint8_t* w, size_t rb, const BlockQ8_K* y, float* out) {
  const size_t pf = prefetch_distance(rb);
  // int16 scale lanes matching packs(p_lo, p_hi): 128-bit lane k holds 4 words of p_lo's lane k
  // (sub-block 0 for k < 2, 2 otherwise) then 4 of p_hi's (sub-block 1 / 3).
  alignas(64) static constexpr int16_t idx01_w[32] = {0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 2, 2,
                                          2, 2, 3, 3, 3, 3};
  const __m512i idx01 = _mm512_load_si512(idx01_w);
  const __m512i idx23 = _mm512_add_epi16(idx01, _mm512_set1_epi16(4));
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  __m512 acc[R];
  __m128 accm[R];
  for (int r = 0; r < R; ++r) { acc[r] = _mm512_setzero_ps(); accm[r] = _mm_setzero_ps(); }
  for (int64_t b = 0; b < nb; ++b) {
    const int8_t* q8 = y[b].qs;
    const __m512i y0 = load2(q8, q8 + 64), y1 = load2(q8 + 32, q8 + 96);
    const __m512i y2 = load2(q8 + 128, q8 + 192), y3 = load2(q8 + 160, q8 + 224);
    const __m256i bs = ld256(reinterpret_cast<const int8_t*>(y[b].bsums));
    // bsums pairs (sub-block sums of 32), <= 4064 each: 8 int16 in order 0..7.
    const __m128i bs2 = _mm_packs_epi32(_mm256_castsi256_si128(_mm256_madd_epi16(bs, _mm256_set1_epi16(1))),
                                        _mm256_extracti128_si256(_mm256_madd_epi16(bs, _mm256_set1_epi16(1)), 1));
    const float dy = y[b].d;
    for (int r = 0; r < R; ++r) {
      const BlockQ4_K* x = reinterpret_cast<const BlockQ4_K*>(w + (size_t)r * rb) + b;
      _mm_prefetch(reinterpret_cast<const char*>(x) + pf, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(x) + 2 * pf, _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(x) + pf + 64, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(x) + 2 * pf + 64, _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(x) + pf + 128, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(x) + 2 * pf + 128, _MM_HINT_T1);
      uint32_t sc[2], mn[2];
      k4_unpack(x->scales, sc, mn);
      const __m512i sc16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)sc[1], (int)sc[0])));
      const __m128i mn16 = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)mn[1], (int)mn[0]));
      const __m512i qa = _mm512_loadu_si512(x->qs), qb = _mm512_loadu_si512(x->qs + 64);
      const __m512i p0 = dpbusd(_mm512_setzero_si512(), _mm512_and_si512(qa, m4), y0);
      const __m512i p1 = dpbusd(_mm512_setzero_si512(), _mm512_and_si512(_mm512_srli_epi16(qa, 4), m4), y1);
      const __m512i p2 = dpbusd(_mm512_setzero_si512(), _mm512_and_si512(qb, m4), y2);
      const __m512i p3 = dpbusd(_mm512_setzero_si512(), _mm512_and_si512(_mm512_srli_epi16(qb, 4), m4), y3);
      const __m512i s01 = _mm512_madd_epi16(_mm512_packs_epi32(p0, p1), _mm512_permutexvar_epi16(idx01, sc16));
      const __m512i s23 = _mm512_madd_epi16(_mm512_packs_epi32(p2, p3), _mm512_permutexvar_epi16(idx23, sc16));
      acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(dy * h2f(x->d)), _mm512_cvtepi32_ps(_mm512_add_epi32(s01, s23)), acc[r]);
      accm[r] = _mm_fmadd_ps(_mm_set1_ps(dy * h2f(x->dmin)), _mm_cvtepi32_ps(_mm_madd_epi16(mn16, bs2)), accm[r]);
    }
  }
  for (int r = 0; r < R; ++r) {
    __m128 m = _mm_add_ps(accm[r], _mm_movehl_ps(accm[r], accm[r]));
    m = _mm_add_ss(m, _mm_movehdup_ps(m));
    out[r] = _mm512_reduce_add_ps(acc[r]) - _mm_cvtss_f32(m);
  }
}

// ---------------------------------------------------------------- Q6_K x Q8_K
// (The output matrix of most quantized files.) Per half (128 elements) of a block, ql's 64 bytes
// are one zmm whose bytes 0-31 hold the low | high nibbles of elements 0-31 | 64-95 and bytes 32-63
// those of 32-63 | 96-127; qh's 32 bytes hold 2 more bits of each. With qh2 = [qh | qh >> 2] as
// 256-bit halves:
//   A = (ql & 15) | (qh2 & 3) << 4      -> elements 0..63 of the half, in order,
//   B = (ql >> 4 & 15) | (qh2 & 0x30)   -> elements 64..127,
// both the stored unsigned q + 32 (0..63). VPMADDUBSW with the activation (|pair| <= 2 * 63 * 127
// fits int16), then VPMADDWD with the 16-element sub-block scales spread to their 8 int16 lanes by
// one VPERMW each; the -32 is applied once per block as 32 * sum_j sc_j * bsum_j from the
// activation's bsums. The activation's four 64-byte pieces are loaded once per row tile.
template <int R>
inline void rows_q6_k(int64_t nb, const uint8_t* w, size_t rb, const BlockQ8_K* y, float* out) {
  const size_t pf = prefetch_distance(rb);
  // Scale index per int16 lane j of A/B in half h: sub-block 8h + 4 * (B) + j / 8.
  alignas(64) static constexpr int16_t sidx_w[4][32] = {
      {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3},
      {4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7},
      {8, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9, 10, 10, 10, 10, 10, 10, 10, 10, 11, 11, 11, 11, 11, 11, 11, 11},
      {12, 12, 12, 12, 12, 12, 12, 12, 13, 13, 13, 13, 13, 13, 13, 13, 14, 14, 14, 14, 14, 14, 14, 14, 15, 15, 15, 15, 15, 15, 15, 15}};
  __m512i sidx[4];
  for (int i = 0; i < 4; ++i) sidx[i] = _mm512_load_si512(sidx_w[i]);
  const __m512i m4 = _mm512_set1_epi8(0x0F), m3 = _mm512_set1_epi8(0x03), m30 = _mm512_set1_epi8(0x30);
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const BlockQ8_K& yb = y[b];
    __m512i yv[4];  // elements 0-63, 64-127, 128-191, 192-255
    for (int i = 0; i < 4; ++i) yv[i] = _mm512_loadu_si512(yb.qs + 64 * i);
    const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(yb.bsums));
    for (int r = 0; r < R; ++r) {
      const BlockQ6_K* x = reinterpret_cast<const BlockQ6_K*>(w + (size_t)r * rb) + b;
      const char* px = reinterpret_cast<const char*>(x) + pf;
      _mm_prefetch(px, _MM_HINT_T0);
      _mm_prefetch(px + pf, _MM_HINT_T1);
      _mm_prefetch(px + 64, _MM_HINT_T0);
      _mm_prefetch(px + pf + 64, _MM_HINT_T1);
      _mm_prefetch(px + 128, _MM_HINT_T0);
      _mm_prefetch(px + pf + 128, _MM_HINT_T1);
      _mm_prefetch(px + 192, _MM_HINT_T0);
      _mm_prefetch(px + pf + 192, _MM_HINT_T1);
      const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x->scales)));
      const __m512i sc = _mm512_castsi256_si512(sc16);  // VPERMW only reads lanes 0..15
      __m512i sum = _mm512_sub_epi32(_mm512_setzero_si512(),
                                     _mm512_zextsi256_si512(_mm256_slli_epi32(_mm256_madd_epi16(sc16, bs), 5)));
      for (int h = 0; h < 2; ++h) {
        const __m512i ql = _mm512_loadu_si512(x->ql + 64 * h);
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x->qh + 32 * h));
        const __m512i qh2 = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
        const __m512i a = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_slli_epi16(_mm512_and_si512(qh2, m3), 4));
        const __m512i bq = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4), _mm512_and_si512(qh2, m30));
        sum = _mm512_add_epi32(sum, _mm512_madd_epi16(_mm512_maddubs_epi16(a, yv[2 * h]),
                                                      _mm512_permutexvar_epi16(sidx[2 * h], sc)));
        sum = _mm512_add_epi32(sum, _mm512_madd_epi16(_mm512_maddubs_epi16(bq, yv[2 * h + 1]),
                                                      _mm512_permutexvar_epi16(sidx[2 * h + 1], sc)));
      }
      acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(h2f(x->d) * yb.d), _mm512_cvtepi32_ps(sum), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(acc[r]);
}

// Row-tile driver: full tiles of kRowTile rows, then one tile of the 1..3 leftover rows.
template <template <int> class K>
inline void rows_driver(int64_t n, const void* w, size_t rb, int64_t nrows, const void* a, float* y, int64_t bs) {
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const auto* act = static_cast<const BlockQ8_0*>(a);
  const int64_t nb = n / bs;
  int64_t r = 0;
  for (; r + kRowTile <= nrows; r += kRowTile) K<kRowTile>::run(nb, x + (size_t)r * rb, rb, act, y + r);
  switch (nrows - r) {
    case 3: K<3>::run(nb, x + (size_t)r * rb, rb, act, y + r); break;
    case 2: K<2>::run(nb, x + (size_t)r * rb, rb, act, y + r); break;
    case 1: K<1>::run(nb, x + (size_t)r * rb, rb, act, y + r); break;
    default: break;
  }
}
template <int R> struct Q4_0Rows { static void run(int64_t nb, const uint8_t* w, size_t rb, const BlockQ8_0* y, float* o) { rows_q4_0<R>(nb, w, rb, y, o); } };
template <int R> struct Q4_KRows { static void run(int64_t nb, const uint8_t* w, size_t rb, const BlockQ8_0* y, float* o) { rows_q4_k<R>(nb, w, rb, reinterpret_cast<const BlockQ8_K*>(y), o); } };
template <int R> struct Q6_KRows { static void run(int64_t nb, const uint8_t* w, size_t rb, const BlockQ8_0* y, float* o) { rows_q6_k<R>(nb, w, rb, reinterpret_cast<const BlockQ8_K*>(y), o); } };
template <int R> struct Q8_0Rows { static void run(int64_t nb, const uint8_t* w, size_t rb, const BlockQ8_0* y, float* o) { rows_q8_0<R>(nb, w, rb, y, o); } };

void dot_rows_q4_0(int64_t n, const void* w, size_t rb, int64_t nrows, const void* a, float* y) {
  rows_driver<Q4_0Rows>(n, w, rb, nrows, a, y, QK);
}
void dot_rows_q8_0(int64_t n, const void* w, size_t rb, int64_t nrows, const void* a, float* y) {
  rows_driver<Q8_0Rows>(n, w, rb, nrows, a, y, QK);
}

void dot_rows_q4_k(int64_t n, const void* w, size_t rb, int64_t nrows, const void* a, float* y) {
  rows_driver<Q4_KRows>(n, w, rb, nrows, a, y, QK_K);
}

void dot_rows_q6_k(int64_t n, const void* w, size_t rb, int64_t nrows, const void* a, float* y) {
  rows_driver<Q6_KRows>(n, w, rb, nrows, a, y, QK_K);
}

inline void fill_rows_table(modu::KernelTable* t) {
  t->vec_dot_rows[(int)modu::DType::Q4_0] = dot_rows_q4_0;
  t->vec_dot_rows[(int)modu::DType::Q8_0] = dot_rows_q8_0;
  t->vec_dot_rows[(int)modu::DType::Q4_K] = dot_rows_q4_k;
  t->vec_dot_rows[(int)modu::DType::Q6_K] = dot_rows_q6_k;
}

}  // namespace
