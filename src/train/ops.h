// Training ops with explicit backward passes, templated on the scalar (float for training,
// double for finite-difference checks): RMSNorm, adjacent-pair RoPE, causal GQA attention (with
// a query scale, a score soft cap and a sliding window when asked), SwiGLU and softmax
// cross-entropy. Each is deterministic for any thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "gemm.h"
#include "modu/core/threadpool.h"

namespace modu::train::ops {

// Rotary frequency of pair i: theta^(-2i/head_dim), rounded to float as modu's inference does.
template <class T>
std::vector<T> rope_freqs(int64_t head_dim, float theta) {
  std::vector<T> f((size_t)head_dim / 2);
  for (size_t i = 0; i < f.size(); ++i) {
    const double v = std::pow((double)theta, -2.0 * (double)i / (double)head_dim);
    f[i] = std::is_same_v<T, float> ? (T)(float)v : (T)v;
  }
  return f;
}

// y = x / rms(x) * w per row; r[t] = 1 / sqrt(mean(x^2) + eps) is saved for the backward pass.
template <class T>
void rmsnorm_fwd(const T* x, const T* w, int64_t N, int64_t E, T eps, T* y, T* r, ThreadPool& pool) {
  pool.parallel_for(N, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const T* xr = x + t * E;
      double ss = 0;
      for (int64_t i = 0; i < E; ++i) ss += (double)xr[i] * (double)xr[i];
      const T s = (T)(1.0 / std::sqrt(ss / (double)E + (double)eps));
      r[t] = s;
      for (int64_t i = 0; i < E; ++i) y[t * E + i] = xr[i] * s * w[i];
    }
  });
}

// dx (+)= d/dx, dw += d/dw of sum(dy * y).
template <class T>
void rmsnorm_bwd(const T* x, const T* w, const T* r, const T* dy, int64_t N, int64_t E, T* dx, T* dw,
                 ThreadPool& pool, bool accumulate = false) {
  pool.parallel_for(N, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const T* xr = x + t * E;
      const T* g = dy + t * E;
      double dot = 0;
      for (int64_t i = 0; i < E; ++i) dot += (double)g[i] * (double)w[i] * (double)xr[i];
      const T s = r[t];
      const T c = (T)(dot / (double)E) * s * s * s;
      T* o = dx + t * E;
      for (int64_t i = 0; i < E; ++i) {
        const T v = g[i] * w[i] * s - xr[i] * c;
        o[i] = accumulate ? o[i] + v : v;
      }
    }
  });
  for (int64_t t = 0; t < N; ++t)  // serial: fixed summation order
    for (int64_t i = 0; i < E; ++i) dw[i] += dy[t * E + i] * x[t * E + i] * r[t];
}

// Rotates adjacent pairs (x[2i], x[2i+1]) of every head of token t by angle pos * freqs[i], with
// pos = t % len (each sequence starts at 0). inverse: rotate by the negative angle (the backward).
template <class T>
void rope(T* x, int64_t n_seq, int64_t len, int64_t n_heads, int64_t head_dim, const T* freqs, bool inverse,
          ThreadPool& pool) {
  const int64_t half = head_dim / 2, row = n_heads * head_dim;
  pool.parallel_for(n_seq * len, [&](int64_t t0, int64_t t1) {
    std::vector<T> cs(half), sn(half);
    for (int64_t t = t0; t < t1; ++t) {
      const T pos = (T)(t % len);
      for (int64_t i = 0; i < half; ++i) {
        const T th = pos * freqs[i];
        cs[i] = std::cos(th);
        sn[i] = inverse ? -std::sin(th) : std::sin(th);
      }
      for (int64_t h = 0; h < n_heads; ++h) {
        T* v = x + t * row + h * head_dim;
        for (int64_t i = 0; i < half; ++i) {
          const T a = v[2 * i], b = v[2 * i + 1];
          v[2 * i] = a * cs[i] - b * sn[i];
          v[2 * i + 1] = a * sn[i] + b * cs[i];
        }
      }
    }
  });
}

struct AttnShape {
  int64_t n_seq, len, n_head, n_head_kv, head_dim;
};

// Strided head view [len, head_dim] with row stride `ld` -> dense transpose [head_dim, len].
template <class T>
void head_transpose(const T* src, int64_t ld, int64_t len, int64_t hd, T* dst) {
  for (int64_t i = 0; i < len; ++i)
    for (int64_t j = 0; j < hd; ++j) dst[j * len + i] = src[i * ld + j];
}

struct AttnOptions {
  double scale = 0;    // query scale (0: 1 / sqrt(head_dim))
  double softcap = 0;  // scores -> cap * tanh(scores / cap) when > 0
  int64_t window = 0;  // key j visible from query i iff i - j < window (0: all j <= i)
};

// Causal softmax attention with grouped K/V heads and the options; p receives the probabilities
// [n_seq][n_head][len][len] (zeros where not visible); with a soft cap, `capped` (same shape) the
// capped scores the backward needs. out [N, n_head * head_dim].
template <class T>
void attention_ext_fwd(const AttnShape& s, const AttnOptions& o, const T* q, const T* k, const T* v, T* p, T* capped, T* out,
                       ThreadPool& pool) {
  const int64_t H = s.n_head, KVH = s.n_head_kv, hd = s.head_dim, len = s.len, group = H / KVH;
  const int64_t QD = H * hd, KD = KVH * hd;
  const T scale = (T)(o.scale > 0 ? o.scale : 1.0 / std::sqrt((double)hd));
  const T cap = (T)o.softcap;
  pool.parallel_for(s.n_seq * KVH, [&](int64_t j0, int64_t j1) {
    std::vector<T> kt((size_t)hd * len);
    for (int64_t job = j0; job < j1; ++job) {
      const int64_t b = job / KVH, kh = job % KVH;
      head_transpose(k + b * len * KD + kh * hd, KD, len, hd, kt.data());
      for (int64_t h = kh * group; h < (kh + 1) * group; ++h) {
        T* pb = p + (b * H + h) * len * len;
        gemm_serial(len, len, hd, q + b * len * QD + h * hd, QD, kt.data(), len, pb, len, false);
        for (int64_t i = 0; i < len; ++i) {
          T* row = pb + i * len;
          const int64_t lo = o.window > 0 ? std::max<int64_t>(0, i - o.window + 1) : 0;
          T mx = -std::numeric_limits<T>::infinity();
          for (int64_t j = lo; j <= i; ++j) {
            T sc = row[j] * scale;
            if (cap > 0) {
              sc = cap * std::tanh(sc / cap);
              capped[(b * H + h) * len * len + i * len + j] = sc;
            }
            row[j] = sc;
            mx = std::max(mx, sc);
          }
          double sum = 0;
          for (int64_t j = lo; j <= i; ++j) {
            row[j] = std::exp(row[j] - mx);
            sum += (double)row[j];
          }
          const T inv = (T)(1.0 / sum);
          for (int64_t j = 0; j < len; ++j) row[j] = j >= lo && j <= i ? row[j] * inv : (T)0;
        }
        gemm_serial(len, hd, len, pb, len, v + b * len * KD + kh * hd, KD, out + b * len * QD + h * hd, QD, false);
      }
    }
  });
}

// Backward of attention_ext_fwd given dout; writes dq, dk, dv (overwritten).
template <class T>
void attention_ext_bwd(const AttnShape& s, const AttnOptions& o, const T* q, const T* k, const T* v, const T* p,
                       const T* capped, const T* dout, T* dq, T* dk, T* dv, ThreadPool& pool) {
  const int64_t H = s.n_head, KVH = s.n_head_kv, hd = s.head_dim, len = s.len, group = H / KVH;
  const int64_t QD = H * hd, KD = KVH * hd;
  const T scale = (T)(o.scale > 0 ? o.scale : 1.0 / std::sqrt((double)hd));
  const T cap = (T)o.softcap;
  pool.parallel_for(s.n_seq * KVH, [&](int64_t j0, int64_t j1) {
    std::vector<T> vt((size_t)hd * len), dp((size_t)len * len), tr((size_t)len * len);
    for (int64_t job = j0; job < j1; ++job) {
      const int64_t b = job / KVH, kh = job % KVH;
      const T* kb = k + b * len * KD + kh * hd;
      T* dkb = dk + b * len * KD + kh * hd;
      T* dvb = dv + b * len * KD + kh * hd;
      for (int64_t i = 0; i < len; ++i) {
        std::fill(dkb + i * KD, dkb + i * KD + hd, (T)0);
        std::fill(dvb + i * KD, dvb + i * KD + hd, (T)0);
      }
      head_transpose(v + b * len * KD + kh * hd, KD, len, hd, vt.data());
      for (int64_t h = kh * group; h < (kh + 1) * group; ++h) {
        const T* qb = q + b * len * QD + h * hd;
        const T* dob = dout + b * len * QD + h * hd;
        const T* pb = p + (b * H + h) * len * len;
        gemm_serial(len, len, hd, dob, QD, vt.data(), len, dp.data(), len, false);  // dP = dO V^T
        transpose(pb, len, len, tr.data());
        gemm_serial(len, hd, len, tr.data(), len, dob, QD, dvb, KD, true);  // dV += P^T dO
        for (int64_t i = 0; i < len; ++i) {  // dS = P * (dP - rowsum(P dP)), through the cap, * scale
          const T* pr = pb + i * len;
          T* d = dp.data() + i * len;
          double dot = 0;
          for (int64_t j = 0; j < len; ++j) dot += (double)pr[j] * (double)d[j];
          for (int64_t j = 0; j < len; ++j) {
            T g = pr[j] * (d[j] - (T)dot);
            if (cap > 0 && pr[j] != 0) {
              const T t = capped[(b * H + h) * len * len + i * len + j] / cap;
              g *= (T)1 - t * t;
            }
            d[j] = g * scale;
          }
        }
        gemm_serial(len, hd, len, dp.data(), len, kb, KD, dq + b * len * QD + h * hd, QD, false);  // dQ = dS K
        transpose(dp.data(), len, len, tr.data());
        gemm_serial(len, hd, len, tr.data(), len, qb, QD, dkb, KD, true);  // dK += dS^T Q
      }
    }
  });
}

// Plain causal attention (1 / sqrt(head_dim), no cap, no window): p [n_seq][n_head][len][len].
template <class T>
void attention_fwd(const AttnShape& s, const T* q, const T* k, const T* v, T* p, T* out, ThreadPool& pool) {
  attention_ext_fwd(s, AttnOptions{}, q, k, v, p, (T*)nullptr, out, pool);
}

template <class T>
void attention_bwd(const AttnShape& s, const T* q, const T* k, const T* v, const T* p, const T* dout, T* dq, T* dk,
                   T* dv, ThreadPool& pool) {
  attention_ext_bwd(s, AttnOptions{}, q, k, v, p, (const T*)nullptr, dout, dq, dk, dv, pool);
}

template <class T>
inline T sigmoid(T x) {
  return (T)1 / ((T)1 + std::exp(-x));
}

// a = silu(g) * u
template <class T>
void swiglu_fwd(const T* g, const T* u, int64_t n, T* a, ThreadPool& pool) {
  pool.parallel_for(n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) a[i] = g[i] * sigmoid(g[i]) * u[i];
  }, 4096);
}

template <class T>
void swiglu_bwd(const T* g, const T* u, const T* da, int64_t n, T* dg, T* du, ThreadPool& pool) {
  pool.parallel_for(n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const T sg = sigmoid(g[i]);
      du[i] = da[i] * g[i] * sg;
      dg[i] = da[i] * u[i] * sg * ((T)1 + g[i] * ((T)1 - sg));
    }
  }, 4096);
}

// Mean cross-entropy over rows with target >= 0. With write_grad, logits are replaced by
// d(mean loss)/d(logits) (rows without a target get zeros).
template <class T>
double cross_entropy(T* logits, const int32_t* targets, int64_t N, int64_t V, bool write_grad, ThreadPool& pool) {
  int64_t n_valid = 0;
  for (int64_t t = 0; t < N; ++t) n_valid += targets[t] >= 0;
  if (n_valid == 0) n_valid = 1;
  std::vector<double> row_loss(N, 0.0);
  pool.parallel_for(N, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      T* z = logits + t * V;
      if (targets[t] < 0) {
        if (write_grad) std::fill(z, z + V, (T)0);
        continue;
      }
      T mx = z[0];
      for (int64_t i = 1; i < V; ++i) mx = std::max(mx, z[i]);
      double sum = 0;
      for (int64_t i = 0; i < V; ++i) sum += std::exp((double)(z[i] - mx));
      const double lse = (double)mx + std::log(sum);
      row_loss[t] = lse - (double)z[targets[t]];
      if (write_grad) {
        const double inv_n = 1.0 / (double)n_valid;
        for (int64_t i = 0; i < V; ++i) z[i] = (T)(std::exp((double)z[i] - lse) * inv_n);
        z[targets[t]] -= (T)inv_n;
      }
    }
  });
  double total = 0;
  for (double l : row_loss) total += l;
  return total / (double)n_valid;
}

}  // namespace modu::train::ops
