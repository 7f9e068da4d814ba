// Tests for the importance-weighted quantizers (DTypeTraits::quantize_imatrix): they keep the
// block layouts, cut the importance-weighted squared error against the unweighted quantizers when
// importance is uneven, cost nothing when it is even, and never zero a row the calibration missed.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels_test_util.h"
#include "modu/kernels/dtype.h"

namespace modu {
namespace {

using test::dequantize;
using test::gaussian;

const DType kWeighted[] = {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K,
                           DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};

constexpr int64_t kCols = 1024, kRows = 48;

// Weighted and plain squared errors of quantizing `rows` with importance `imp` ([kCols] per row),
// in float64 over the dequantized values.
struct Errors {
  double weighted = 0, plain = 0;
};

Errors error_of(DType t, const std::vector<float>& rows, const std::vector<float>& imp, bool use_imatrix) {
  const DTypeTraits* tr = dtype_traits(t);
  std::vector<uint8_t> q(dtype_row_bytes(t, kCols));
  Errors e;
  for (int64_t r = 0; r < kRows; ++r) {
    const float* x = rows.data() + r * kCols;
    if (use_imatrix) tr->quantize_imatrix(x, q.data(), kCols, imp.data());
    else tr->quantize(x, q.data(), kCols);
    const std::vector<float> y = dequantize(t, q, kCols);
    for (int64_t i = 0; i < kCols; ++i) {
      const double d = (double)x[i] - (double)y[i];
      EXPECT_TRUE(std::isfinite(y[i])) << dtype_name(t);
      e.weighted += (double)imp[i] * d * d;
      e.plain += d * d;
    }
  }
  return e;
}

// Log-normal column importances (a few columns tens of times the median), as real activations
// of a trained model's norms and SwiGLU outputs are.
std::vector<float> uneven_importance(uint32_t seed) {
  std::vector<float> imp = gaussian(kCols, seed);
  for (auto& v : imp) v = std::exp(1.5f * v);
  return imp;
}

TEST(ImatrixQuantize, EveryFileQuantTypeHasOneExceptQ8_0) {
  for (DType t : kWeighted) EXPECT_NE(dtype_traits(t)->quantize_imatrix, nullptr) << dtype_name(t);
  // Q8_0's rounding error is already far below what importance could redistribute.
  EXPECT_EQ(dtype_traits(DType::Q8_0)->quantize_imatrix, nullptr);
}

TEST(ImatrixQuantize, UnevenImportanceLowersTheWeightedError) {
  const std::vector<float> rows = gaussian(kCols * kRows, 7);
  const std::vector<float> imp = uneven_importance(11);
  for (DType t : kWeighted) {
    const Errors plain = error_of(t, rows, imp, false), weighted = error_of(t, rows, imp, true);
    EXPECT_LT(weighted.weighted, 0.9 * plain.weighted) << dtype_name(t);
    // The error moves to the unimportant columns; it does not grow without bound.
    EXPECT_LT(weighted.plain, 2.0 * plain.plain) << dtype_name(t);
  }
}

// Q2_K and Q3_K multiply their own searches' element weights by the importance, so even importance
// gives the unweighted quantizer's bytes; the others weight by importance * sqrt(sigma2 + x^2) and
// must not lose accuracy.
TEST(ImatrixQuantize, EvenImportanceCostsNothing) {
  const std::vector<float> rows = gaussian(kCols * kRows, 8);
  const std::vector<float> ones(kCols, 1.0f);
  for (DType t : kWeighted) {
    const Errors plain = error_of(t, rows, ones, false), weighted = error_of(t, rows, ones, true);
    EXPECT_LE(weighted.plain, 1.0 * plain.plain) << dtype_name(t);
  }
  for (DType t : {DType::Q2_K, DType::Q3_K}) {
    const DTypeTraits* tr = dtype_traits(t);
    std::vector<uint8_t> a(dtype_row_bytes(t, kCols)), b(a.size());
    tr->quantize(rows.data(), a.data(), kCols);
    tr->quantize_imatrix(rows.data(), b.data(), kCols, ones.data());
    EXPECT_EQ(a, b) << dtype_name(t);
  }
}

// Columns the calibration text never reached have importance 0: whole blocks of zeros are
// quantized as if evenly weighted (not zeroed), and a zero inside a block only lets that column
// take more error.
TEST(ImatrixQuantize, ZeroImportanceStillQuantizes) {
  const std::vector<float> rows = gaussian(kCols * kRows, 9);
  std::vector<float> imp = uneven_importance(12);
  for (int64_t i = 0; i < kCols / 2; ++i) imp[i] = 0.0f;  // the first half: whole blocks of zeros
  for (int64_t i = kCols / 2; i < kCols; i += 3) imp[i] = 0.0f;
  const std::vector<float> ones(kCols, 1.0f);
  for (DType t : kWeighted) {
    const DTypeTraits* tr = dtype_traits(t);
    std::vector<uint8_t> q(dtype_row_bytes(t, kCols));
    double err0 = 0, energy = 0;
    for (int64_t r = 0; r < kRows; ++r) {
      const float* x = rows.data() + r * kCols;
      tr->quantize_imatrix(x, q.data(), kCols, imp.data());
      const std::vector<float> y = dequantize(t, q, kCols);
      for (int64_t i = 0; i < kCols / 2; ++i) {
        err0 += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
        energy += (double)x[i] * x[i];
      }
    }
    EXPECT_LT(err0, 0.25 * energy) << dtype_name(t) << ": zero-importance blocks are still quantized";
  }
}

}  // namespace
}  // namespace modu
