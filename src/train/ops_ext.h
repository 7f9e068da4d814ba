// Training ops for the decoder families beyond modu train's Llama layout, with explicit backward
// passes (templated: float for tuning, double for finite-difference checks): rotary embedding of
// either pairing (adjacent or NeoX halves) over the first n_rot dimensions with given per-pair
// frequencies; GeGLU (tanh GELU). (Attention with a scale, cap and window is in ops.h.)
// Deterministic for any thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "gemm.h"
#include "modu/core/threadpool.h"
#include "ops.h"

namespace modu::train::ops {

// Rotates the first n_rot dimensions of every head of token t by angle (t % len) * freqs[i] and
// scales them by `mag` (YaRN / LongRoPE magnitude): pairs (2i, 2i+1), or (i, i + n_rot/2) when
// neox. inverse: the transpose, mag times the negative angle (the backward).
template <class T>
void rope_ext(T* x, int64_t n_seq, int64_t len, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float* freqs,
              float mag, bool neox, bool inverse, ThreadPool& pool) {
  const int64_t half = n_rot / 2, row = n_heads * head_dim;
  pool.parallel_for(n_seq * len, [&](int64_t t0, int64_t t1) {
    std::vector<T> cs(half), sn(half);
    for (int64_t t = t0; t < t1; ++t) {
      const double pos = (double)(t % len);
      for (int64_t i = 0; i < half; ++i) {
        const double th = pos * (double)freqs[i];
        cs[i] = (T)(std::cos(th) * mag);
        sn[i] = (T)((inverse ? -std::sin(th) : std::sin(th)) * mag);
      }
      for (int64_t h = 0; h < n_heads; ++h) {
        T* v = x + t * row + h * head_dim;
        for (int64_t i = 0; i < half; ++i) {
          const int64_t ia = neox ? i : 2 * i, ib = neox ? i + half : 2 * i + 1;
          const T a = v[ia], b = v[ib];
          v[ia] = a * cs[i] - b * sn[i];
          v[ib] = a * sn[i] + b * cs[i];
        }
      }
    }
  });
}

// tanh-approximated GELU and its derivative.
template <class T>
inline T gelu_tanh(T x) {
  const T k = (T)0.7978845608028654;  // sqrt(2 / pi)
  return (T)0.5 * x * ((T)1 + std::tanh(k * (x + (T)0.044715 * x * x * x)));
}
template <class T>
inline T gelu_tanh_grad(T x) {
  const T k = (T)0.7978845608028654;
  const T th = std::tanh(k * (x + (T)0.044715 * x * x * x));
  return (T)0.5 * ((T)1 + th) + (T)0.5 * x * ((T)1 - th * th) * k * ((T)1 + (T)3 * (T)0.044715 * x * x);
}

// a = gelu(g) * u
template <class T>
void geglu_fwd(const T* g, const T* u, int64_t n, T* a, ThreadPool& pool) {
  pool.parallel_for(n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) a[i] = gelu_tanh(g[i]) * u[i];
  }, 4096);
}

template <class T>
void geglu_bwd(const T* g, const T* u, const T* da, int64_t n, T* dg, T* du, ThreadPool& pool) {
  pool.parallel_for(n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      du[i] = da[i] * gelu_tanh(g[i]);
      dg[i] = da[i] * u[i] * gelu_tanh_grad(g[i]);
    }
  }, 4096);
}

}  // namespace modu::train::ops
