// Tests for the decode matrix x vector kernels (KernelTable::vec_dot_rows) at every supported ISA
// level against the scalar reference vec_dot row by row: awkward row counts (not multiples of the
// row tile), block counts with leftovers, misaligned row starts, and extreme weight bytes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels_test_util.h"
#include "modu/kernels/dispatch.h"

namespace modu {
namespace {

// Rows are copied to a buffer at `off` bytes past a 64-byte boundary, back to back, plus a guard
// tail: kernels may only rely on 2-byte alignment.
void check_rows(Isa isa, DType t, int64_t n, int64_t nrows, int pattern) {
  const KernelTable* fast = kernels_for(isa);
  const KernelTable* ref = kernels_for(Isa::kScalar);
  const DType at = dtype_traits(t)->vec_dot_type;
  const uint32_t seed = (uint32_t)(n * 131 + nrows * 7 + pattern);
  const size_t rb = dtype_row_bytes(t, n);
  std::vector<uint8_t> w(rb * (size_t)nrows);
  for (int64_t r = 0; r < nrows; ++r) {
    const auto xw = pattern == 1 ? test::adversarial(n, seed + (uint32_t)r) : test::gaussian(n, seed + (uint32_t)r);
    const auto q = test::quantize(t, xw);
    std::memcpy(w.data() + (size_t)r * rb, q.data(), rb);
  }
  if (pattern == 2 && t == DType::Q8_0) {  // int8 extremes (-128 is legal in a GGUF file)
    for (int64_t r = 0; r < nrows; ++r)
      for (int64_t b = 0; b < n / 32; ++b)
        for (int i = 0; i < 32; ++i) w[(size_t)r * rb + (size_t)b * 34 + 2 + i] = (uint8_t)(i % 3 == 0 ? 0x80 : i % 3 == 1 ? 0x7F : 0x81);
  }
  auto xa = pattern == 1 ? test::adversarial(n, seed + 99) : test::gaussian(n, seed + 99, 3.0f);
  if (pattern == 2)
    for (int64_t i = 0; i < n; i += 3) xa[i] = -std::fabs(xa[i]) * 4.0f;
  std::vector<uint8_t> qa(dtype_row_bytes(at, n));
  ref->quantize_row[(int)at](xa.data(), qa.data(), n);

  const size_t off = 2 * (size_t)(1 + pattern);
  std::vector<uint8_t> buf(w.size() + off + 192);
  uint8_t* base = buf.data() + (64 - reinterpret_cast<uintptr_t>(buf.data()) % 64) + off;
  std::memcpy(base, w.data(), w.size());
  std::vector<float> got((size_t)nrows + 1, 12345.0f);
  fast->vec_dot_rows[(int)t](n, base, rb, nrows, qa.data(), got.data());
  EXPECT_EQ(got[(size_t)nrows], 12345.0f) << "wrote past nrows";
  const auto da = test::dequantize(at, qa, n);
  for (int64_t r = 0; r < nrows; ++r) {
    const std::vector<uint8_t> row(w.begin() + (ptrdiff_t)(r * (int64_t)rb), w.begin() + (ptrdiff_t)((r + 1) * (int64_t)rb));
    const float want = ref->vec_dot[(int)t](n, row.data(), qa.data());
    const auto dw = test::dequantize(t, row, n);
    double mag = 0;
    for (int64_t i = 0; i < n; ++i) mag += std::fabs((double)dw[i] * da[i]);
    ASSERT_NEAR(got[(size_t)r], want, 1e-5 * mag + 1e-6)
        << isa_name(isa) << " " << dtype_name(t) << " n=" << n << " rows=" << nrows << " row " << r << " pattern "
        << pattern;
  }
}

void check_level(Isa isa) {
  const KernelTable* fast = kernels_for(isa);
  ASSERT_NE(fast, nullptr);
  size_t count = 0;
  const DType* types = weight_dtypes(&count);
  int checked = 0;
  for (size_t ti = 0; ti < count; ++ti) {
    const DType t = types[ti];
    if (!fast->vec_dot_rows[(int)t]) continue;
    const int64_t bs = dtype_traits(t)->block_size;
    std::vector<int64_t> sizes;
    if (bs == 32) sizes = {32, 64, 96, 128, 160, 224, 256 * 3 + 32, 256 * 2 + 96, 2048, 4096 + 32 * 3};
    else sizes = {256, 512, 768, 256 * 11, 4096};
    for (int64_t n : sizes)
      for (int64_t nrows : {1, 2, 3, 4, 5, 7, 8, 9, 13})
        for (int pattern = 0; pattern < 3; ++pattern) {
          check_rows(isa, t, n, nrows, pattern);
          if (::testing::Test::HasFatalFailure()) return;
          ++checked;
        }
  }
  if (isa >= Isa::kAvx512) {
    EXPECT_GT(checked, 0) << isa_name(isa) << " has no vec_dot_rows kernels";
  }
}

TEST(Gemv, ScalarHasNoRowsKernels) {
  // The scalar level is the reference; ops::matmul loops over vec_dot where an entry is null.
  const KernelTable* t = kernels_for(Isa::kScalar);
  for (int id = 0; id < kMaxDTypeId; ++id) EXPECT_EQ(t->vec_dot_rows[id], nullptr);
}
TEST(Gemv, Avx2MatchesScalar) {
  if (!isa_supported(Isa::kAvx2)) GTEST_SKIP() << "no AVX2";
  check_level(Isa::kAvx2);
}
TEST(Gemv, Avx512MatchesScalar) {
  if (!isa_supported(Isa::kAvx512)) GTEST_SKIP() << "no AVX-512";
  check_level(Isa::kAvx512);
}
TEST(Gemv, Avx512VnniMatchesScalar) {
  if (!isa_supported(Isa::kAvx512Vnni)) GTEST_SKIP() << "no AVX-512 VNNI";
  check_level(Isa::kAvx512Vnni);
}

}  // namespace
}  // namespace modu
