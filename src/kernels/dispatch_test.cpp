// Tests for CPU detection, MODU_ISA selection and every ISA table against the scalar reference:
// quantize_row must be byte-identical, vec_dot equal up to float summation order.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels_test_util.h"
#include "modu/kernels/dispatch.h"

namespace modu {
namespace {

const Isa kAllIsas[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni};

TEST(Dispatch, DetectionIsConsistent) {
  EXPECT_TRUE(isa_supported(Isa::kScalar));
  const Isa best = detect_isa();
  EXPECT_TRUE(isa_supported(best));
  // Levels are nested: supporting one implies supporting every lower one.
  for (int i = 1; i < 4; ++i)
    if (isa_supported((Isa)i)) {
      EXPECT_TRUE(isa_supported((Isa)(i - 1))) << isa_name((Isa)i);
    }
  for (Isa isa : kAllIsas) EXPECT_EQ(kernels_for(isa) != nullptr, isa_supported(isa)) << isa_name(isa);
  std::printf("  detected: %s\n", isa_name(best));
  EXPECT_STREQ(isa_name(Isa::kAvx512Vnni), "avx512vnni");
}

TEST(Dispatch, TablesAreComplete) {
  size_t count = 0;
  const DType* types = weight_dtypes(&count);
  for (Isa isa : kAllIsas) {
    const KernelTable* t = kernels_for(isa);
    if (!t) continue;
    EXPECT_EQ(t->isa, isa);
    for (size_t i = 0; i < count; ++i) {
      const int id = (int)types[i];
      EXPECT_NE(t->vec_dot[id], nullptr) << isa_name(isa) << " " << dtype_name(types[i]);
      const DType at = dtype_traits(types[i])->vec_dot_type;
      EXPECT_NE(t->quantize_row[(int)at], nullptr) << isa_name(isa) << " " << dtype_name(at);
    }
    // The scalar table is exactly the reference.
    if (isa == Isa::kScalar) {
      for (size_t i = 0; i < count; ++i) EXPECT_EQ(t->vec_dot[(int)types[i]], dtype_traits(types[i])->vec_dot);
    }
  }
  EXPECT_EQ(&kernels(), &kernels());  // chosen once
}

// A fresh process (threadsafe death-test style re-executes the binary) so kernels() is chosen anew.
TEST(DispatchDeathTest, EnvOverride) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setenv("MODU_ISA", "scalar", 1);
        std::exit(kernels().isa == Isa::kScalar ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
  EXPECT_EXIT(
      {
        setenv("MODU_ISA", "sse9", 1);
        const Isa got = kernels().isa;
        (void)kernels();  // the warning must not repeat
        std::exit(got == detect_isa() ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "unknown MODU_ISA=sse9");
  if (!isa_supported(Isa::kAvx512Vnni)) {
    EXPECT_EXIT(
        {
          setenv("MODU_ISA", "avx512vnni", 1);
          std::exit(kernels().isa == detect_isa() ? 0 : 1);
        },
        ::testing::ExitedWithCode(0), "not supported");
  }
}

struct Case {
  DType type;
  int64_t n;
  int pattern;  // 0 gaussian, 1 adversarial, 2 zeros in activations
};

// Copies into a buffer at `off` bytes past a 64-byte boundary. Callers only guarantee the natural
// alignment of the row's element/block struct (2 bytes for fp16-headed blocks, F16, BF16; 4 for
// F32 and Q8_K), never 16/32/64, so SIMD kernels must use unaligned loads.
size_t natural_alignment(DType t) { return (t == DType::F32 || t == DType::Q8_K) ? 4 : 2; }

std::vector<uint8_t> misaligned(const std::vector<uint8_t>& src, size_t off, const uint8_t** p) {
  std::vector<uint8_t> buf(src.size() + off + 128);
  uint8_t* base = buf.data() + (64 - reinterpret_cast<uintptr_t>(buf.data()) % 64);
  std::memcpy(base + off, src.data(), src.size());
  *p = base + off;
  return buf;
}

void check_level(Isa isa) {
  const KernelTable* fast = kernels_for(isa);
  const KernelTable* ref = kernels_for(Isa::kScalar);
  ASSERT_NE(fast, nullptr);
  size_t count = 0;
  const DType* types = weight_dtypes(&count);
  int checked = 0;
  for (size_t ti = 0; ti < count; ++ti) {
    const DType t = types[ti];
    const DTypeTraits* tr = dtype_traits(t);
    const DType at = tr->vec_dot_type;
    std::vector<int64_t> sizes;
    if (tr->block_size == 1) sizes = {1, 7, 15, 16, 17, 31, 33, 63, 64, 65, 100, 257, 4097};
    else if (tr->block_size == 32) sizes = {32, 64, 96, 128, 160, 32 * 7, 32 * 33, 4096};
    else sizes = {256, 512, 768, 1280, 256 * 11, 4096};
    for (int64_t n : sizes) {
      for (int pattern = 0; pattern < 3; ++pattern) {
        const uint32_t seed = (uint32_t)(n * 31 + pattern + 1000 * (int)t);
        const auto xw = pattern == 1 ? test::adversarial(n, seed) : test::gaussian(n, seed);
        auto xa = pattern == 1 ? test::adversarial(n, seed + 1) : test::gaussian(n, seed + 1, 3.0f);
        if (pattern == 2)
          for (int64_t i = 0; i < n; i += 2) xa[i] = 0.0f;  // includes whole zero blocks for small n below
        if (pattern == 2 && n >= 512)
          for (int64_t i = 0; i < 256; ++i) xa[i] = 0.0f;
        const auto qw = test::quantize(t, xw);
        // Activation quantizer: byte-identical between levels.
        const size_t abytes = dtype_row_bytes(at, n);
        std::vector<uint8_t> qa_ref(abytes), qa_fast(abytes);
        ref->quantize_row[(int)at](xa.data(), qa_ref.data(), n);
        fast->quantize_row[(int)at](xa.data(), qa_fast.data(), n);
        ASSERT_EQ(0, std::memcmp(qa_ref.data(), qa_fast.data(), abytes))
            << isa_name(isa) << " quantize_row " << dtype_name(at) << " n=" << n << " pattern " << pattern;
        // Dot from misaligned copies vs the scalar dot.
        const uint8_t *pw, *pa;
        const auto bw = misaligned(qw, natural_alignment(t) * (1 + (size_t)pattern), &pw);
        const auto ba = misaligned(qa_fast, natural_alignment(at) * (3 - (size_t)pattern), &pa);
        const float want = ref->vec_dot[(int)t](n, qw.data(), qa_ref.data());
        const float got = fast->vec_dot[(int)t](n, pw, pa);
        // Scale for the tolerance: sum of |w_i * a_i| of the dequantized rows.
        const auto dw = test::dequantize(t, qw, n), da = test::dequantize(at, qa_ref, n);
        double mag = 0;
        for (int64_t i = 0; i < n; ++i) mag += std::fabs((double)dw[i] * da[i]);
        ASSERT_NEAR(got, want, 1e-5 * mag + 1e-6)
            << isa_name(isa) << " vec_dot " << dtype_name(t) << " n=" << n << " pattern " << pattern;
        ++checked;
      }
    }
  }
  // Activation-only types: quantize_row for every vec_dot_type was covered above; also Q8_1/Q8_K
  // rows longer than one matrix row (many rows in one call).
  for (DType at : {DType::Q8_0, DType::Q8_1, DType::Q8_K}) {
    const int64_t n = 256 * 37;
    const auto xa = test::gaussian(n, 77, 10.0f);
    const size_t bytes = dtype_row_bytes(at, n);
    std::vector<uint8_t> a(bytes), b(bytes);
    ref->quantize_row[(int)at](xa.data(), a.data(), n);
    fast->quantize_row[(int)at](xa.data(), b.data(), n);
    ASSERT_EQ(0, std::memcmp(a.data(), b.data(), bytes)) << isa_name(isa) << " " << dtype_name(at);
  }
  EXPECT_GT(checked, 100);
}

TEST(Dispatch, Avx2MatchesScalar) {
  if (!isa_supported(Isa::kAvx2)) GTEST_SKIP() << "no AVX2";
  check_level(Isa::kAvx2);
}
TEST(Dispatch, Avx512MatchesScalar) {
  if (!isa_supported(Isa::kAvx512)) GTEST_SKIP() << "no AVX-512";
  check_level(Isa::kAvx512);
}
TEST(Dispatch, Avx512VnniMatchesScalar) {
  if (!isa_supported(Isa::kAvx512Vnni)) GTEST_SKIP() << "no AVX-512 VNNI";
  check_level(Isa::kAvx512Vnni);
}
TEST(Dispatch, ChosenTableMatchesScalar) { check_level(kernels().isa); }

// Rounding ties: values exactly halfway between codes must round like roundf (away from zero) in
// every Q8_0/Q8_1 quantizer. With amax = 127 the multiplier is 1, so x.5 inputs are exact ties.
TEST(Dispatch, Q8RoundingTies) {
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i) x[i] = (float)(i % 32) - 15.5f;
  x[0] = 127.0f;
  x[40] = -127.0f;
  for (Isa isa : kAllIsas) {
    const KernelTable* t = kernels_for(isa);
    if (!t) continue;
    for (DType at : {DType::Q8_0, DType::Q8_1}) {
      const size_t bytes = dtype_row_bytes(at, 64);
      std::vector<uint8_t> a(bytes), b(bytes);
      kernels_for(Isa::kScalar)->quantize_row[(int)at](x.data(), a.data(), 64);
      t->quantize_row[(int)at](x.data(), b.data(), 64);
      EXPECT_EQ(a, b) << isa_name(isa) << " " << dtype_name(at);
    }
    // Q8_K uses ties-to-even (nearest_int); check the same inputs.
    std::vector<float> xk(256);
    for (int i = 0; i < 256; ++i) xk[i] = (float)(i % 64) - 31.5f;
    xk[7] = -127.0f;
    std::vector<uint8_t> a(292), b(292);
    kernels_for(Isa::kScalar)->quantize_row[(int)DType::Q8_K](xk.data(), a.data(), 256);
    t->quantize_row[(int)DType::Q8_K](xk.data(), b.data(), 256);
    EXPECT_EQ(a, b) << isa_name(isa) << " q8_k";
  }
}

}  // namespace
}  // namespace modu
