// Tests for the repacked decode layouts (repack.h): the repack is lossless, the references agree
// bit for bit with the file layouts' references, and every ISA level's kernels for them (decode
// rows, single dot, activation quantizer, GEMM panel packer) match the scalar references.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels_test_util.h"
#include "modu/kernels/dispatch.h"
#include "modu/kernels/gemm.h"
#include "modu/kernels/repack.h"

namespace modu {
namespace {

const DType kFileTypes[] = {DType::Q4_0, DType::Q8_0, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};

// nrows rows of n elements of file dtype t; pattern 1 = adversarial values, 2 = Q8_0 int8 extremes.
std::vector<uint8_t> make_rows(DType t, int64_t n, int64_t nrows, int pattern) {
  const size_t rb = dtype_row_bytes(t, n);
  std::vector<uint8_t> w(rb * (size_t)nrows);
  for (int64_t r = 0; r < nrows; ++r) {
    const uint32_t seed = (uint32_t)(n * 7 + r * 131 + pattern);
    const auto x = pattern == 1 ? test::adversarial(n, seed) : test::gaussian(n, seed);
    const auto q = test::quantize(t, x);
    std::memcpy(w.data() + (size_t)r * rb, q.data(), rb);
  }
  if (pattern == 2 && t == DType::Q8_0)  // -128 is legal in a file and must survive the + 128 bias
    for (size_t i = 0; i < w.size(); ++i)
      if (i % 34 >= 2) w[i] = (uint8_t)(i % 3 == 0 ? 0x80 : i % 3 == 1 ? 0x7F : 0x81);
  return w;
}

std::vector<uint8_t> repacked(DType t, const std::vector<uint8_t>& w, int64_t n, int64_t nrows) {
  std::vector<uint8_t> o(dtype_row_bytes(repacked_dtype(t), n) * (size_t)nrows);
  repack_rows(t, w.data(), o.data(), n, nrows);
  return o;
}

TEST(Repack, TraitsAndNames) {
  EXPECT_EQ(repacked_dtype(DType::Q4_0), DType::Q4_0_R16);
  EXPECT_EQ(repacked_dtype(DType::Q8_0), DType::Q8_0_R16);
  EXPECT_EQ(repacked_dtype(DType::Q4_K), DType::Q4_K_R16);
  EXPECT_EQ(repacked_dtype(DType::Q6_K), DType::Q6_K_R16);
  EXPECT_EQ(repacked_dtype(DType::Q3_K), DType::Q6_K_R16) << "widened losslessly";
  EXPECT_EQ(repacked_dtype(DType::Q2_K), DType::Q2_K_R16);
  EXPECT_EQ(dtype_row_bytes(DType::Q2_K_R16, 4096), dtype_row_bytes(DType::Q2_K, 4096));
  EXPECT_EQ(repacked_dtype(DType::Q5_K), DType::Q5_K_R16);
  EXPECT_EQ(repacked_dtype(DType::Q5_0), DType::Q5_0);
  EXPECT_EQ(dtype_row_bytes(DType::Q6_K_R16, 4096), dtype_row_bytes(DType::Q6_K, 4096));
  // Every repacked layout but Q3_K's widening keeps the file's bytes per row.
  for (DType t : {DType::Q4_0, DType::Q8_0, DType::Q2_K, DType::Q4_K, DType::Q5_K})
    EXPECT_EQ(dtype_row_bytes(t, 4096), dtype_row_bytes(repacked_dtype(t), 4096)) << dtype_name(t);
  for (DType t : {DType::Q4_0_R16, DType::Q8_0_R16, DType::Q2_K_R16, DType::Q4_K_R16, DType::Q5_K_R16, DType::Q6_K_R16, DType::Q8_0_A16}) {
    EXPECT_TRUE(dtype_traits(t)->internal);
    EXPECT_FALSE(dtype_from_name(dtype_name(t)).ok()) << "internal layouts are not quantize targets";
  }
  size_t count = 0;
  const DType* types = weight_dtypes(&count);
  for (size_t i = 0; i < count; ++i) EXPECT_FALSE(dtype_traits(types[i])->internal);
}

TEST(Repack, LosslessAndSameReferenceDot) {
  for (DType t : kFileTypes)
    for (int64_t n : {512, 1024, 2560})
      for (int pattern = 0; pattern < 3; ++pattern) {
        const auto w = make_rows(t, n, 3, pattern);
        const auto r = repacked(t, w, n, 3);
        const DType rt = repacked_dtype(t);
        const size_t rb = dtype_row_bytes(t, n), rbo = dtype_row_bytes(rt, n);
        const auto xa = pattern == 1 ? test::adversarial(n, 5) : test::gaussian(n, 5, 3.0f);
        const auto a8 = test::quantize(DType::Q8_0, xa);
        const auto a16 = test::quantize(DType::Q8_0_A16, xa);
        EXPECT_EQ(test::dequantize(DType::Q8_0, a8, n), test::dequantize(DType::Q8_0_A16, a16, n));
        for (int64_t row = 0; row < 3; ++row) {
          const std::vector<uint8_t> wr(w.begin() + (ptrdiff_t)(row * rb), w.begin() + (ptrdiff_t)((row + 1) * rb));
          const std::vector<uint8_t> rr(r.begin() + (ptrdiff_t)(row * rbo), r.begin() + (ptrdiff_t)((row + 1) * rbo));
          const auto dw = test::dequantize(t, wr, n);
          EXPECT_EQ(dw, test::dequantize(rt, rr, n)) << dtype_name(t) << " n=" << n;
          const float got = dtype_traits(rt)->vec_dot(n, rr.data(), a16.data());
          if (t == DType::Q4_0 || t == DType::Q8_0) {
            // Same integer sums and the same float operations in the same order: bit-identical.
            EXPECT_EQ(dtype_traits(t)->vec_dot(n, wr.data(), a8.data()), got)
                << dtype_name(t) << " n=" << n << " pattern " << pattern;
          } else {  // K-quants: Q8_0-style activations instead of Q8_K, so against float64
            const auto da = test::dequantize(DType::Q8_0_A16, a16, n);
            double want = 0, mag = 0;
            for (int64_t i = 0; i < n; ++i) { want += (double)dw[i] * da[i]; mag += std::fabs((double)dw[i] * da[i]); }
            EXPECT_NEAR(got, want, 1e-5 * mag + 1e-6) << dtype_name(rt) << " n=" << n << " pattern " << pattern;
          }
        }
        // quantize() of the repacked dtype = quantize the file dtype, then repack (Q3_K is only
        // widened into Q6_K's repacked layout: quantizing to that layout means Q6_K).
        const auto x = test::gaussian(n, 77);
        if (t != DType::Q3_K) {
          EXPECT_EQ(test::quantize(rt, x), repacked(t, test::quantize(t, x), n, 1));
        }
      }
}

TEST(Repack, PaysOnlyWithKernelsAndWholeGroups) {
  const KernelTable* scalar = kernels_for(Isa::kScalar);
  EXPECT_FALSE(repack_pays(DType::Q4_0, 4096, *scalar)) << "the scalar level has no rows kernels";
  const KernelTable* vnni = kernels_for(Isa::kAvx512Vnni);
  if (!vnni) GTEST_SKIP() << "no AVX-512 VNNI";
  EXPECT_TRUE(repack_pays(DType::Q4_0, 4096, *vnni));
  EXPECT_TRUE(repack_pays(DType::Q8_0, 2048, *vnni));
  EXPECT_FALSE(repack_pays(DType::Q4_0, 4096 + 32, *vnni));
  EXPECT_TRUE(repack_pays(DType::Q4_K, 4096, *vnni));
  EXPECT_FALSE(repack_pays(DType::Q4_K, 256, *vnni)) << "one super-block is not a whole group";
  EXPECT_TRUE(repack_pays(DType::Q6_K, 4096, *vnni)) << "no GEMM either way, so decode decides";
  EXPECT_TRUE(repack_pays(DType::Q5_K, 4096, *vnni));
  EXPECT_TRUE(repack_pays(DType::Q3_K, 4096, *vnni)) << "no GEMM packer for Q3_K either";
  EXPECT_FALSE(repack_pays(DType::Q5_0, 4096, *vnni)) << "no repacked layout";
}

// Every level with a rows kernel for a repacked dtype, against the scalar reference dot.
TEST(Repack, ActivationQuantizerSpecialBlocks) {
  // Whole zero blocks (scale 0), exact rounding ties (x * id = k + 0.5), a negative maximum, tiny
  // and huge magnitudes, each filling one of a group's 16 blocks.
  std::vector<float> x(1024);
  for (int b = 0; b < 32; ++b)
    for (int i = 0; i < 32; ++i) {
      float& v = x[(size_t)(32 * b + i)];
      switch (b % 8) {
        case 0: v = 0.0f; break;
        case 1: v = (i == 5) ? 127.0f : (float)(i % 7) - 2.5f; break;  // id = 1: ties at +-0.5, +-1.5
        case 2: v = (i == 0) ? -254.0f : (float)i - 15.0f; break;      // id = 0.5: every odd i ties
        case 3: v = 1e-30f * (float)(i - 16); break;
        case 4: v = 3e30f * (float)(i % 3 - 1); break;
        case 5: v = (i == 31) ? -1.0f : 0.0f; break;
        default: v = std::sin(0.37f * (float)(32 * b + i)) * (float)(b + 1); break;
      }
    }
  const KernelTable* ref = kernels_for(Isa::kScalar);
  std::vector<uint8_t> want(dtype_row_bytes(DType::Q8_0_A16, 1024));
  ref->quantize_row[(int)DType::Q8_0_A16](x.data(), want.data(), 1024);
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni}) {
    const KernelTable* kt = kernels_for(isa);
    if (!kt || !kt->quantize_row[(int)DType::Q8_0_A16]) continue;
    std::vector<uint8_t> got(want.size() + 1, 0x5A);
    kt->quantize_row[(int)DType::Q8_0_A16](x.data(), got.data(), 1024);
    EXPECT_EQ(got[want.size()], 0x5A) << "wrote past the row";
    got.pop_back();
    ASSERT_EQ(got, want) << isa_name(isa);
  }
}

TEST(Repack, KernelsMatchReferenceAtEveryLevel) {
  const KernelTable* ref = kernels_for(Isa::kScalar);
  int checked = 0;
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni}) {
    const KernelTable* kt = kernels_for(isa);
    if (!kt) continue;
    for (DType t : kFileTypes) {
      const DType rt = repacked_dtype(t);
      if (!kt->vec_dot_rows[(int)rt]) continue;
      ASSERT_NE(kt->quantize_row[(int)DType::Q8_0_A16], nullptr);
      for (int64_t n : {512, 1024, 2048 + 512})
        for (int64_t nrows : {1, 2, 3, 4, 5, 7, 9, 13})
          for (int pattern = 0; pattern < 3; ++pattern) {
            const auto r = repacked(t, make_rows(t, n, nrows, pattern), n, nrows);
            const size_t rb = dtype_row_bytes(rt, n);
            auto xa = pattern == 1 ? test::adversarial(n, 9) : test::gaussian(n, 9, 3.0f);
            if (pattern == 2)
              for (int64_t i = 0; i < n; i += 3) xa[i] = -std::fabs(xa[i]) * 4.0f;
            std::vector<uint8_t> a_ref(dtype_row_bytes(DType::Q8_0_A16, n)), a_isa(a_ref.size());
            ref->quantize_row[(int)DType::Q8_0_A16](xa.data(), a_ref.data(), n);
            kt->quantize_row[(int)DType::Q8_0_A16](xa.data(), a_isa.data(), n);
            ASSERT_EQ(a_ref, a_isa) << isa_name(isa) << " activation quantizer n=" << n;
            // Rows at a 2-byte offset from a 64-byte boundary: kernels may only assume 2 bytes.
            std::vector<uint8_t> buf(r.size() + 130);
            uint8_t* base = buf.data() + (64 - reinterpret_cast<uintptr_t>(buf.data()) % 64) + 2;
            std::memcpy(base, r.data(), r.size());
            std::vector<float> got((size_t)nrows + 1, 12345.0f);
            kt->vec_dot_rows[(int)rt](n, base, rb, nrows, a_isa.data(), got.data());
            EXPECT_EQ(got[(size_t)nrows], 12345.0f) << "wrote past nrows";
            const auto da = test::dequantize(DType::Q8_0_A16, a_ref, n);
            for (int64_t row = 0; row < nrows; ++row) {
              const uint8_t* wr = r.data() + (size_t)row * rb;
              const float want = ref->vec_dot[(int)rt](n, wr, a_ref.data());
              const auto dw = test::dequantize(rt, std::vector<uint8_t>(wr, wr + rb), n);
              double mag = 0;
              for (int64_t i = 0; i < n; ++i) mag += std::fabs((double)dw[i] * da[i]);
              ASSERT_NEAR(got[(size_t)row], want, 1e-5 * mag + 1e-6)
                  << isa_name(isa) << " " << dtype_name(rt) << " n=" << n << " rows=" << nrows << " row " << row;
              ASSERT_NEAR(kt->vec_dot[(int)rt](n, wr, a_isa.data()), want, 1e-5 * mag + 1e-6);
            }
            ++checked;
          }
    }
  }
  if (isa_supported(Isa::kAvx512Vnni)) {
    EXPECT_GT(checked, 0) << "the VNNI level has repacked kernels";
  }
}

// The prefill GEMM reads repacked weights through the same panels: packing a repacked matrix must
// give exactly the panel of the file layout, at the reference and at every level that packs it.
TEST(Repack, GemmPanelsEqualFileLayoutPanels) {
  const KernelTable* ref = kernels_for(Isa::kScalar);
  for (DType t : kFileTypes)
    for (int64_t n : {512, 1536})
      for (int64_t nrows : {16, 5}) {
        const auto w = make_rows(t, n, nrows, 1);
        const auto r = repacked(t, w, n, nrows);
        const size_t rb = dtype_row_bytes(t, n), rbo = dtype_row_bytes(repacked_dtype(t), n);
        // Each dtype has a packer in one of the two panel formats (gemm.h), its repacking in the same.
        const bool g16 = ref->gemm16_pack[(int)t] != nullptr;
        auto packer = [&](const KernelTable* kt, DType d) { return g16 ? kt->gemm16_pack[(int)d] : kt->gemm_pack[(int)d]; };
        const size_t pbytes = g16 ? gemm16_panel_bytes(n) : gemm_panel_bytes(n);
        std::vector<uint8_t> want(pbytes + 64), got(want.size());
        auto al = [](std::vector<uint8_t>& v) { return v.data() + (64 - reinterpret_cast<uintptr_t>(v.data()) % 64) % 64; };
        ASSERT_NE(packer(ref, t), nullptr) << dtype_name(t) << " has no GEMM panel packer";
        ASSERT_NE(packer(ref, repacked_dtype(t)), nullptr) << dtype_name(repacked_dtype(t));
        packer(ref, t)(w.data(), rb, nrows, n, al(want));
        const std::vector<uint8_t> pw(al(want), al(want) + pbytes);
        for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni}) {
          const KernelTable* kt = kernels_for(isa);
          if (!kt || !packer(kt, repacked_dtype(t))) continue;
          std::fill(got.begin(), got.end(), 0xAB);
          packer(kt, repacked_dtype(t))(r.data(), rbo, nrows, n, al(got));
          EXPECT_EQ(pw, std::vector<uint8_t>(al(got), al(got) + pbytes))
              << isa_name(isa) << " " << dtype_name(t) << " n=" << n << " rows=" << nrows;
        }
      }
}

}  // namespace
}  // namespace modu
