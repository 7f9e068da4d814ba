// AVX2 float kernels of the vision encoders: bidirectional block attention (n_q queries of one head
// against all keys) and the float GEMM for F32/F16/BF16 weights.
// Performance: the decode attention kernel reads every K and V row once per query, so an image of
// n tokens streamed n x (K + V) per head and layer from L2/L3 (memory-bound, ~12 GOP/s at 1024
// tokens on 2 cores). Here a block of queries shares each load: scores are 4 queries x 16 keys of
// register accumulators fed by broadcast q[i][d] times a row of the transposed K (no horizontal
// sums; K comes in contiguous 16-key blocks, since 16-key columns of a plain transpose were hd
// cache lines on hd pages per tile), and the output is 4 queries x 24 dimensions of accumulators
// fed by one V load per key.
#include <algorithm>
#include <cmath>

#include "avx2_simd.h"
#include "isa_kernels.h"

namespace modu::kern {

using namespace modu::kern::avx2;

namespace {

// scores[i][p - base] for keys p in [p0, p0 + 16), R <= 4 queries (row stride ld).
template <int R>
void score_tile(const float* q, size_t q_ld, const float* kt, int64_t hd, int64_t p0, int64_t base, float scale,
                float* sc, int64_t ld) {
  __m256 acc[R][2];
  for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  const float* blk = kt + (p0 / 16) * hd * 16;  // this tile's 16 keys, d-major, contiguous
  for (int64_t d = 0; d < hd; ++d) {
    const __m256 k0 = _mm256_loadu_ps(blk + d * 16), k1 = _mm256_loadu_ps(blk + d * 16 + 8);
    for (int i = 0; i < R; ++i) {
      const __m256 qb = _mm256_broadcast_ss(q + i * q_ld + d);
      acc[i][0] = _mm256_fmadd_ps(qb, k0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(qb, k1, acc[i][1]);
    }
  }
  const __m256 s = _mm256_set1_ps(scale);
  for (int i = 0; i < R; ++i) {
    _mm256_storeu_ps(sc + i * ld + p0 - base, _mm256_mul_ps(acc[i][0], s));
    _mm256_storeu_ps(sc + i * ld + p0 - base + 8, _mm256_mul_ps(acc[i][1], s));
  }
}

// out[i][d0 .. d0 + 8 W) += sum_p w[i][p] v[p][d0 ..] over the tile's n keys, R <= 4 queries,
// W <= 3 vectors: the accumulators start from the running output (already rescaled).
template <int R, int W>
void out_tile(const float* w, int64_t ld, int64_t n, const float* v, size_t v_ld, int64_t d0, float* out,
              size_t out_ld) {
  __m256 acc[R][W];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < W; ++j) acc[i][j] = _mm256_loadu_ps(out + i * out_ld + d0 + 8 * j);
  for (int64_t p = 0; p < n; ++p) {
    __m256 vv[W];
    for (int j = 0; j < W; ++j) vv[j] = _mm256_loadu_ps(v + p * v_ld + d0 + 8 * j);
    for (int i = 0; i < R; ++i) {
      const __m256 wb = _mm256_broadcast_ss(w + i * ld + p);
      for (int j = 0; j < W; ++j) acc[i][j] = _mm256_fmadd_ps(wb, vv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < W; ++j) _mm256_storeu_ps(out + i * out_ld + d0 + 8 * j, acc[i][j]);
}

template <int R>
void out_rows(const float* w, int64_t ld, int64_t n, const float* v, size_t v_ld, int64_t hd, float* out, size_t out_ld) {
  int64_t d0 = 0;
  for (; d0 + 24 <= hd; d0 += 24) out_tile<R, 3>(w, ld, n, v, v_ld, d0, out, out_ld);
  if (d0 + 16 <= hd) {
    out_tile<R, 2>(w, ld, n, v, v_ld, d0, out, out_ld);
    d0 += 16;
  }
  if (d0 + 8 <= hd) out_tile<R, 1>(w, ld, n, v, v_ld, d0, out, out_ld);
}

// Keys per tile: K and V of a tile (2 x 256 x hd floats, 147 KB at hd 72) stay in L2 while every
// query group of the block passes over them.
constexpr int64_t kKeyTile = 256;

}  // namespace

// Flash-style: the key range is cut into tiles; for each tile every group of 4 queries computes
// its scores (4 x 16 register tiles), folds them into a running max and sum (online softmax:
// the output so far is rescaled by exp(m_old - m_new)) and adds the tile's weighted V rows. A
// block of n_q queries thus reads K and V from memory once, and from L2 once per group, where
// the whole-row version streamed all of K and V (2.4 MB at 4096 tokens) per group of 4 queries.
void attention_block_avx2(const float* q, size_t q_ld, int64_t n_q, const float* kt, const float* v, size_t v_ld,
                          int64_t n_kv, int64_t hd, float scale, float* out, size_t out_ld, float* scratch) {
  if (hd % 8 != 0) {  // the tiles work in 8-float vectors of the head dimension
    ref::attention_block(q, q_ld, n_q, kt, v, v_ld, n_kv, hd, scale, out, out_ld, scratch);
    return;
  }
  // scratch: running max [n_q], running sum [n_q], then 4 x kKeyTile scores of the current group.
  float* run_max = scratch;
  float* run_sum = scratch + n_q;
  float* sc = scratch + 2 * n_q;
  for (int64_t i = 0; i < n_q; ++i) {
    run_max[i] = -INFINITY;
    run_sum[i] = 0.0f;
    std::fill_n(out + i * out_ld, hd, 0.0f);
  }
  for (int64_t t0 = 0; t0 < n_kv; t0 += kKeyTile) {
    const int64_t tn = std::min(kKeyTile, n_kv - t0), t_vec = t0 + tn / 16 * 16;
    for (int64_t i0 = 0; i0 < n_q; i0 += 4) {
      const int r = (int)std::min<int64_t>(4, n_q - i0);
      const float* qi = q + i0 * q_ld;
      for (int64_t p0 = t0; p0 < t_vec; p0 += 16) {
        switch (r) {
          case 4: score_tile<4>(qi, q_ld, kt, hd, p0, t0, scale, sc, kKeyTile); break;
          case 3: score_tile<3>(qi, q_ld, kt, hd, p0, t0, scale, sc, kKeyTile); break;
          case 2: score_tile<2>(qi, q_ld, kt, hd, p0, t0, scale, sc, kKeyTile); break;
          default: score_tile<1>(qi, q_ld, kt, hd, p0, t0, scale, sc, kKeyTile); break;
        }
      }
      for (int i = 0; i < r; ++i)  // the last n_kv % 16 keys (final tile only)
        for (int64_t p = t_vec; p < t0 + tn; ++p) {
          __m256 acc = _mm256_setzero_ps();
          int64_t d = 0;
          for (; d + 8 <= hd; d += 8) {
            alignas(32) float col[8];
            for (int e = 0; e < 8; ++e) col[e] = kt[(p / 16) * hd * 16 + (d + e) * 16 + p % 16];
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(qi + i * q_ld + d), _mm256_load_ps(col), acc);
          }
          sc[i * kKeyTile + p - t0] = hsum(acc) * scale;
        }
      for (int i = 0; i < r; ++i) {  // online softmax: new max, weights in place, rescaled output
        float* s = sc + i * kKeyTile;
        const int64_t qi_idx = i0 + i;
        float m = run_max[qi_idx];
        for (int64_t p = 0; p < tn; ++p) m = std::max(m, s[p]);
        const __m256 vm = _mm256_set1_ps(m);
        __m256 sum = _mm256_setzero_ps();
        int64_t p = 0;
        for (; p + 8 <= tn; p += 8) {
          const __m256 e = exp_neg(_mm256_sub_ps(_mm256_loadu_ps(s + p), vm));
          _mm256_storeu_ps(s + p, e);
          sum = _mm256_add_ps(sum, e);
        }
        float tot = hsum(sum);
        for (; p < tn; ++p) tot += (s[p] = std::exp(s[p] - m));
        const float corr = std::exp(run_max[qi_idx] - m);  // 0 on the first tile
        run_sum[qi_idx] = run_sum[qi_idx] * corr + tot;
        run_max[qi_idx] = m;
        if (corr != 1.0f) {
          float* o = out + qi_idx * out_ld;
          const __m256 c = _mm256_set1_ps(corr);
          for (int64_t d = 0; d < hd; d += 8) _mm256_storeu_ps(o + d, _mm256_mul_ps(_mm256_loadu_ps(o + d), c));
        }
      }
      float* oi = out + i0 * out_ld;
      const float* vt = v + t0 * v_ld;
      switch (r) {
        case 4: out_rows<4>(sc, kKeyTile, tn, vt, v_ld, hd, oi, out_ld); break;
        case 3: out_rows<3>(sc, kKeyTile, tn, vt, v_ld, hd, oi, out_ld); break;
        case 2: out_rows<2>(sc, kKeyTile, tn, vt, v_ld, hd, oi, out_ld); break;
        default: out_rows<1>(sc, kKeyTile, tn, vt, v_ld, hd, oi, out_ld); break;
      }
    }
  }
  for (int64_t i = 0; i < n_q; ++i) {
    const __m256 inv = _mm256_set1_ps(1.0f / run_sum[i]);
    float* o = out + i * out_ld;
    for (int64_t d = 0; d < hd; d += 8) _mm256_storeu_ps(o + d, _mm256_mul_ps(_mm256_loadu_ps(o + d), inv));
  }
}

namespace {
// y for R rows x T tokens: R x T accumulators of 8 lanes along k (at most 3 x 3: 9 accumulators
// and 6 loads in 15 registers), one horizontal sum each at the end.
template <int R, int T>
void f32_tile(const float* w, size_t ldw, const float* x, size_t ldx, int64_t k, float* y, size_t ldy) {
  __m256 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    __m256 wv[R], xv[T];
    for (int r = 0; r < R; ++r) wv[r] = _mm256_loadu_ps(w + r * ldw + i);
    for (int t = 0; t < T; ++t) xv[t] = _mm256_loadu_ps(x + t * ldx + i);
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_fmadd_ps(wv[r], xv[t], acc[r][t]);
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) {
      float s = hsum(acc[r][t]);
      for (int64_t j = i; j < k; ++j) s += w[r * ldw + j] * x[t * ldx + j];
      y[t * ldy + r] = s;
    }
}

template <int R>
void f32_rows(const float* w, size_t ldw, const float* x, size_t ldx, int64_t n_tok, int64_t k, float* y, size_t ldy) {
  int64_t t = 0;
  for (; t + 3 <= n_tok; t += 3) f32_tile<R, 3>(w, ldw, x + t * ldx, ldx, k, y + t * ldy, ldy);
  if (n_tok - t == 2) f32_tile<R, 2>(w, ldw, x + t * ldx, ldx, k, y + t * ldy, ldy);
  if (n_tok - t == 1) f32_tile<R, 1>(w, ldw, x + t * ldx, ldx, k, y + t * ldy, ldy);
}
}  // namespace

void gemm_f32_avx2(const float* w, size_t ldw, int64_t rows, const float* x, size_t ldx, int64_t n_tok, int64_t k,
                   float* y, size_t ldy) {
  int64_t r = 0;
  for (; r + 3 <= rows; r += 3) f32_rows<3>(w + r * ldw, ldw, x, ldx, n_tok, k, y + r, ldy);
  if (rows - r == 2) f32_rows<2>(w + r * ldw, ldw, x, ldx, n_tok, k, y + r, ldy);
  if (rows - r == 1) f32_rows<1>(w + r * ldw, ldw, x, ldx, n_tok, k, y + r, ldy);
}

}  // namespace modu::kern
