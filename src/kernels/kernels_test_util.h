// Shared helpers for the kernels tests: seeded data, quantize/dequantize into byte vectors.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "modu/kernels/dtype.h"

namespace modu::test {

inline std::vector<float> gaussian(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v((size_t)n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Sums, maxima and sign patterns that stress integer ranges: ±max values, long same-sign runs,
// a few outliers and exact zeros.
inline std::vector<float> adversarial(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> v((size_t)n);
  for (int64_t i = 0; i < n; ++i) {
    switch ((i / 7 + seed) % 5) {
      case 0: v[i] = (i % 2 ? 1.0f : -1.0f); break;
      case 1: v[i] = 1.0f; break;
      case 2: v[i] = -1.0f; break;
      case 3: v[i] = 0.0f; break;
      default: v[i] = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng); break;
    }
    if (i % 97 == 13) v[i] *= 50.0f;
  }
  return v;
}

inline std::vector<uint8_t> quantize(DType t, const std::vector<float>& x) {
  const DTypeTraits* tr = dtype_traits(t);
  std::vector<uint8_t> q(dtype_row_bytes(t, (int64_t)x.size()));
  tr->quantize(x.data(), q.data(), (int64_t)x.size());
  return q;
}

inline std::vector<float> dequantize(DType t, const std::vector<uint8_t>& q, int64_t n) {
  std::vector<float> y((size_t)n);
  dtype_traits(t)->dequantize(q.data(), y.data(), n);
  return y;
}


}  // namespace modu::test
