// Tests for the prefill GEMM (panel packing, panel x activation product) and the attention kernel:
// every ISA level against the scalar references on awkward sizes, and the references against a
// float64 computation on dequantized data.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels_test_util.h"
#include "modu/core/fp16.h"
#include "modu/kernels/dispatch.h"
#include "modu/kernels/gemm.h"

namespace modu {
namespace {

const Isa kAllIsas[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni};
const DType kGemmTypes[] = {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q4_K, DType::Q5_K};
// The 16-scale panel format (gemm.h kGemm16BlockBytes).
const DType kGemm16Types[] = {DType::Q2_K, DType::Q3_K, DType::Q6_K};

struct Aligned {
  std::vector<uint8_t> raw;
  uint8_t* p;
  explicit Aligned(size_t n) : raw(n + 64, 0xCD) { p = reinterpret_cast<uint8_t*>(((uintptr_t)raw.data() + 63) & ~(uintptr_t)63); }
};

struct Problem {
  int64_t rows, k, n_tok;
  std::vector<uint8_t> w;        // rows x k of the dtype
  std::vector<float> wf;         // dequantized
  std::vector<int8_t> aq;
  std::vector<float> ad, as, as16;
  std::vector<float> af;         // dequantized activations
  GemmAct act() const { return GemmAct{aq.data(), ad.data(), as.data(), k, as16.data()}; }
};

Problem make(DType t, int64_t rows, int64_t k, int64_t n_tok, uint32_t seed) {
  Problem pr{rows, k, n_tok, {}, {}, {}, {}, {}, {}, {}};
  const auto x = seed % 2 ? test::gaussian(rows * k, seed) : test::adversarial(rows * k, seed);
  pr.w = test::quantize(t, x);
  pr.wf = test::dequantize(t, pr.w, rows * k);
  const auto a = test::gaussian(n_tok * k, seed + 1, 2.0f);
  const auto q8 = test::quantize(DType::Q8_0, a);
  pr.af = test::dequantize(DType::Q8_0, q8, n_tok * k);
  pr.aq.resize(n_tok * k);
  pr.ad.resize(n_tok * k / 32);
  pr.as.resize(n_tok * k / 32);
  pr.as16.resize(n_tok * k / 16);
  gemm_act_from_q8_0(q8.data(), n_tok, k, pr.aq.data(), pr.ad.data(), pr.as.data(), pr.as16.data());
  return pr;
}

// Packs all rows with `pack` and runs `gemm`; y is [n_tok, rows]. g16: the 16-scale format.
std::vector<float> run(const Problem& pr, DType t, GemmPackFn pack, GemmFn gemm, std::vector<uint8_t>* packed = nullptr,
                       bool g16 = false) {
  const int64_t np = (pr.rows + 15) / 16;
  const size_t pb = g16 ? gemm16_panel_bytes(pr.k) : gemm_panel_bytes(pr.k);
  Aligned buf(pb * np);
  const size_t rb = dtype_row_bytes(t, pr.k);
  for (int64_t p = 0; p < np; ++p)
    pack(pr.w.data() + p * 16 * rb, rb, std::min<int64_t>(16, pr.rows - 16 * p), pr.k, buf.p + p * pb);
  if (packed) packed->assign(buf.p, buf.p + pb * np);
  std::vector<float> y(pr.n_tok * pr.rows, NAN);
  gemm(buf.p, np, pr.rows, pr.act(), pr.n_tok, y.data(), pr.rows);
  return y;
}

TEST(Gemm, ReferenceMatchesFloat64) {
  for (DType t : kGemmTypes) {
    const int64_t k = dtype_traits(t)->block_size == 256 ? 512 : 96;
    Problem pr = make(t, 21, k, 5, 3);
    auto y = run(pr, t, ref::gemm_pack(t), ref::gemm);
    for (int64_t tk = 0; tk < pr.n_tok; ++tk)
      for (int64_t r = 0; r < pr.rows; ++r) {
        double exact = 0, mag = 0;
        for (int64_t i = 0; i < k; ++i) {
          exact += (double)pr.wf[r * k + i] * pr.af[tk * k + i];
          mag += std::fabs((double)pr.wf[r * k + i] * pr.af[tk * k + i]);
        }
        ASSERT_NEAR(y[tk * pr.rows + r], exact, 2e-5 * mag + 1e-6) << dtype_name(t) << " r" << r << " t" << tk;
      }
  }
}

TEST(Gemm, EveryLevelMatchesReference) {
  const int64_t shapes[][2] = {{1, 1}, {16, 4}, {17, 3}, {33, 17}, {50, 5}, {69, 69}, {32, 8}, {7, 2}};
  for (Isa isa : kAllIsas) {
    const KernelTable* kt = kernels_for(isa);
    if (!kt) continue;
    ASSERT_NE(kt->gemm, nullptr);
    for (DType t : kGemmTypes) {
      if (!kt->gemm_pack[(int)t]) continue;
      for (const auto& s : shapes) {
        const int64_t k = dtype_traits(t)->block_size == 256 ? 512 : 160;
        Problem pr = make(t, s[0], k, s[1], (uint32_t)(s[0] * 7 + s[1]));
        std::vector<uint8_t> p_ref, p_isa;
        auto yr = run(pr, t, ref::gemm_pack(t), ref::gemm, &p_ref);
        auto yi = run(pr, t, kt->gemm_pack[(int)t], kt->gemm, &p_isa);
        ASSERT_EQ(p_ref, p_isa) << isa_name(isa) << " " << dtype_name(t) << ": packing must be byte-identical";
        for (size_t i = 0; i < yr.size(); ++i)
          ASSERT_NEAR(yi[i], yr[i], 1e-4 * (std::fabs(yr[i]) + 1.0)) << isa_name(isa) << " " << dtype_name(t)
                                                                     << " rows " << s[0] << " tokens " << s[1] << " i " << i;
      }
    }
  }
}

// The 16-scale panels: the reference against float64 on dequantized data (so a swapped half
// scale, a wrong offset or a misplaced 6-bit value shows), then every level against the reference.
TEST(Gemm16, ReferenceMatchesFloat64) {
  for (DType t : kGemm16Types) {
    ASSERT_NE(ref::gemm16_pack(t), nullptr) << dtype_name(t);
    EXPECT_EQ(ref::gemm_pack(t), nullptr) << dtype_name(t) << " has one panel format";
    for (uint32_t seed : {3u, 4u}) {
      Problem pr = make(t, 21, 512, 5, seed);
      auto y = run(pr, t, ref::gemm16_pack(t), ref::gemm16, nullptr, true);
      for (int64_t tk = 0; tk < pr.n_tok; ++tk)
        for (int64_t r = 0; r < pr.rows; ++r) {
          double exact = 0, mag = 0;
          for (int64_t i = 0; i < pr.k; ++i) {
            exact += (double)pr.wf[r * pr.k + i] * pr.af[tk * pr.k + i];
            mag += std::fabs((double)pr.wf[r * pr.k + i] * pr.af[tk * pr.k + i]);
          }
          ASSERT_NEAR(y[tk * pr.rows + r], exact, 2e-5 * mag + 1e-6) << dtype_name(t) << " r" << r << " t" << tk;
        }
    }
  }
}

TEST(Gemm16, EveryLevelMatchesReference) {
  const int64_t shapes[][2] = {{1, 1}, {16, 4}, {17, 3}, {33, 17}, {50, 5}, {69, 69}, {32, 8}, {7, 2}};
  for (Isa isa : kAllIsas) {
    const KernelTable* kt = kernels_for(isa);
    if (!kt) continue;
    ASSERT_NE(kt->gemm16, nullptr);
    for (DType t : kGemm16Types) {
      ASSERT_NE(kt->gemm16_pack[(int)t], nullptr) << isa_name(isa) << " " << dtype_name(t);
      for (const auto& s : shapes) {
        Problem pr = make(t, s[0], 512, s[1], (uint32_t)(s[0] * 7 + s[1]));
        std::vector<uint8_t> p_ref, p_isa;
        auto yr = run(pr, t, ref::gemm16_pack(t), ref::gemm16, &p_ref, true);
        auto yi = run(pr, t, kt->gemm16_pack[(int)t], kt->gemm16, &p_isa, true);
        ASSERT_EQ(p_ref, p_isa) << isa_name(isa) << " " << dtype_name(t) << ": packing must be byte-identical";
        // Levels may sum in another order, so the bound scales with the terms summed: per half
        // block |dw d isum| + |mw s16|, which the offsets make far larger than the result when
        // values centre on 32 (Q3_K, Q6_K).
        const int64_t nb = pr.k / 32, np = (pr.rows + 15) / 16;
        for (int64_t tk = 0; tk < pr.n_tok; ++tk)
          for (int64_t r = 0; r < pr.rows; ++r) {
            const uint8_t* pan = p_ref.data() + (size_t)(r / 16) * gemm16_panel_bytes(pr.k);
            double mag = 0;
            for (int64_t b = 0; b < nb; ++b)
              for (int h = 0; h < 2; ++h) {
                const uint8_t* blk = pan + b * kGemm16BlockBytes;
                int64_t isum = 0;
                for (int e = 16 * h; e < 16 * h + 16; ++e)
                  isum += (int64_t)blk[(e / 4) * 64 + (r % 16) * 4 + e % 4] * pr.aq[tk * pr.k + 32 * b + e];
                float dw, mw;
                std::memcpy(&dw, blk + 512 + 64 * h + 4 * (r % 16), 4);
                std::memcpy(&mw, blk + 640 + 64 * h + 4 * (r % 16), 4);
                mag += std::fabs((double)dw * pr.ad[tk * nb + b] * (double)isum) + std::fabs((double)mw * pr.as16[tk * 2 * nb + 2 * b + h]);
              }
            const size_t i = (size_t)(tk * pr.rows + r);
            ASSERT_NEAR(yi[i], yr[i], 1e-6 * mag + 1e-5) << isa_name(isa) << " " << dtype_name(t) << " rows " << s[0]
                                                          << " tokens " << s[1] << " i " << i << " (" << np << " panels)";
          }
      }
    }
  }
}

TEST(Gemm, VnniCoversQ8_0) {
  if (const KernelTable* kt = kernels_for(Isa::kAvx512Vnni)) {
    EXPECT_NE(kt->gemm_pack[(int)DType::Q8_0], nullptr);
    EXPECT_NE(kt->gemm, kernels_for(Isa::kAvx2)->gemm);
  }
}

TEST(Swiglu, EveryLevelMatchesReference) {
  // Ordinary values, both signs of zero, and magnitudes where exp(-g) overflows or underflows.
  std::vector<float> special = {0.0f, -0.0f, 1e-30f, -1e-30f, 1.0f, -1.0f, 20.0f, -20.0f, 87.0f, -87.0f, 88.7f,
                                -88.7f, 100.0f, -100.0f, 1e4f, -1e4f, 3e38f, -3e38f};
  for (Isa isa : kAllIsas) {
    const KernelTable* kt = kernels_for(isa);
    if (!kt) continue;
    ASSERT_NE(kt->swiglu, nullptr);
    for (int64_t n : {0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 1000}) {
      auto g = test::gaussian(n, (uint32_t)(n + 5), 4.0f);
      const auto u = test::gaussian(n, (uint32_t)(n + 6), 1.0f);
      for (int64_t i = 0; i < n; ++i)
        if (i % 3 == 0) g[i] = special[(size_t)(i / 3) % special.size()];
      std::vector<float> want = g, got = g;
      ref::swiglu(want.data(), u.data(), n);
      kt->swiglu(got.data(), u.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        if (std::isinf(want[i])) {
          EXPECT_EQ(got[i], want[i]) << isa_name(isa) << " g=" << g[i];
          continue;
        }
        ASSERT_NEAR(got[i], want[i], 4e-7f * std::fabs(want[i]) + 1e-30f)
            << isa_name(isa) << " n " << n << " i " << i << " g=" << g[i] << " u=" << u[i];
      }
    }
  }
}

TEST(RmsNorm, EveryLevelMatchesReference) {
  for (Isa isa : kAllIsas) {
    const KernelTable* kt = kernels_for(isa);
    if (!kt) continue;
    ASSERT_NE(kt->rms_norm, nullptr);
    for (int64_t d : {1, 7, 15, 16, 17, 31, 32, 33, 100, 2048, 2049}) {
      auto x = test::gaussian(d, (uint32_t)d, 3.0f);
      if (d > 40) x[d / 2] = 1e30f;  // the sum of squares leaves float range: only double holds it
      const auto w = test::gaussian(d, (uint32_t)d + 1, 1.0f);
      std::vector<float> want(d), got(d, NAN), in_place = x;
      ref::rms_norm(x.data(), w.data(), d, 1e-5f, want.data());
      kt->rms_norm(x.data(), w.data(), d, 1e-5f, got.data());
      kt->rms_norm(in_place.data(), w.data(), d, 1e-5f, in_place.data());
      for (int64_t i = 0; i < d; ++i) {
        ASSERT_NEAR(got[i], want[i], 1e-6f * std::fabs(want[i]) + 1e-37f) << isa_name(isa) << " d " << d << " i " << i;
        ASSERT_EQ(in_place[i], got[i]) << isa_name(isa) << " in place, d " << d << " i " << i;
      }
    }
  }
}

TEST(F16Rows, EveryLevelGivesTheReferenceBytes) {
  // Ties to even, subnormals, the overflow edge (65520 rounds to inf), infinities and NaNs.
  std::vector<float> x = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 65519.99f, 65520.0f, -65520.0f, 1e-8f, -3e-7f,
                          5.96e-8f, 2.98e-8f, 2.99e-8f, 6.1e-5f, 1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048,
                          INFINITY, -INFINITY, NAN, -NAN};
  uint32_t snan_bits = 0x7f800001u, qnan_payload = 0x7fc12345u;
  float snan, payload;
  std::memcpy(&snan, &snan_bits, 4);
  std::memcpy(&payload, &qnan_payload, 4);
  x.push_back(snan);
  x.push_back(payload);
  const auto g = test::gaussian(1000, 3, 100.0f);
  x.insert(x.end(), g.begin(), g.end());
  for (Isa isa : kAllIsas) {
    const KernelTable* kt = kernels_for(isa);
    if (!kt) continue;
    for (size_t n : {size_t{1}, size_t{7}, size_t{8}, size_t{17}, x.size()}) {
      std::vector<uint16_t> got(n + 1, 0xABCD);
      kt->quantize_row[(int)DType::F16](x.data(), got.data(), (int64_t)n);
      for (size_t i = 0; i < n; ++i)
        ASSERT_EQ(got[i], fp32_to_fp16(x[i])) << isa_name(isa) << " x=" << x[i] << " i " << i;
      EXPECT_EQ(got[n], 0xABCD) << "wrote past n";
    }
  }
}

TEST(Attention, EveryLevelMatchesReference) {
  const int64_t hds[] = {64, 128, 80, 24, 8};
  const int64_t npos[] = {1, 2, 17, 33, 700};
  for (Isa isa : kAllIsas) {
    const KernelTable* kt = kernels_for(isa);
    if (!kt) continue;
    ASSERT_NE(kt->attention, nullptr);
    for (bool f16 : {true, false})
      for (int64_t hd : hds)
        for (int64_t ng : {1, 4, 7, 8})
          for (int64_t n : npos) {
            const int64_t n_kv = 3, kvh = 1;  // a row holds 3 KV heads; attend over the middle one
            const size_t elem = f16 ? 2 : 4, stride = (size_t)(n_kv * hd) * elem;
            const auto kf = test::gaussian(n * n_kv * hd, (uint32_t)(hd + n), 1.0f);
            const auto vf = test::gaussian(n * n_kv * hd, (uint32_t)(hd + n + 1), 1.0f);
            const auto q = test::gaussian(ng * hd, (uint32_t)(hd * 3 + n), 0.5f);
            std::vector<uint8_t> kb(stride * n), vb(stride * n);
            for (int64_t i = 0; i < n * n_kv * hd; ++i) {
              if (f16) {
                reinterpret_cast<uint16_t*>(kb.data())[i] = fp32_to_fp16(kf[i]);
                reinterpret_cast<uint16_t*>(vb.data())[i] = fp32_to_fp16(vf[i]);
              } else {
                reinterpret_cast<float*>(kb.data())[i] = kf[i];
                reinterpret_cast<float*>(vb.data())[i] = vf[i];
              }
            }
            const size_t off = (size_t)(kvh * hd) * elem;
            std::vector<float> o_ref(ng * hd), o_isa(ng * hd, NAN), scratch(ng * n), l_ref(ng), l_isa(ng, NAN);
            const float scale = 1.0f / std::sqrt((float)hd);
            ref::attention(q.data(), ng, kb.data() + off, vb.data() + off, stride, n, hd, f16, scale, o_ref.data(),
                           scratch.data(), l_ref.data());
            kt->attention(q.data(), ng, kb.data() + off, vb.data() + off, stride, n, hd, f16, scale, o_isa.data(),
                          scratch.data(), l_isa.data());
            for (int64_t i = 0; i < ng * hd; ++i)
              ASSERT_NEAR(o_isa[i], o_ref[i], 2e-5) << isa_name(isa) << " f16 " << f16 << " hd " << hd << " ng " << ng
                                                    << " n_pos " << n << " i " << i;
            for (int64_t g = 0; g < ng; ++g) {
              // The reference's log-sum-exp against float64 (the quantity block merging relies on).
              double mx = -INFINITY, sum = 0;
              std::vector<double> sc(n);
              for (int64_t p = 0; p < n; ++p) {
                double d = 0;
                for (int64_t i = 0; i < hd; ++i) {
                  const uint8_t* kr = kb.data() + off + p * stride;
                  const double kv = f16 ? fp16_to_fp32(reinterpret_cast<const uint16_t*>(kr)[i]) : reinterpret_cast<const float*>(kr)[i];
                  d += (double)q[g * hd + i] * kv;
                }
                sc[p] = d * scale;
                mx = std::max(mx, sc[p]);
              }
              for (int64_t p = 0; p < n; ++p) sum += std::exp(sc[p] - mx);
              ASSERT_NEAR(l_ref[g], mx + std::log(sum), 1e-4) << "reference lse, n_pos " << n;
              ASSERT_NEAR(l_isa[g], l_ref[g], 1e-4) << isa_name(isa) << " lse, hd " << hd << " ng " << ng << " n_pos " << n;
            }
          }
  }
}

// The vision encoders' block attention: every level against the reference, with query blocks
// that do not fill a 4-row tile, key counts around the 16-key tile, head sizes with and without
// 24-float output tiles (and one that is not a multiple of 8: the reference path), and row strides
// wider than the head (one head of a [tokens, heads x hd] layout).
TEST(Attention, BlockEveryLevelMatchesReference) {
  for (Isa isa : kAllIsas) {
    const KernelTable* kt = kernels_for(isa);
    if (!kt) continue;
    ASSERT_NE(kt->attention_block, nullptr);
    for (int64_t hd : {8, 16, 24, 40, 64, 72, 20})
      for (int64_t n_q : {1, 3, 4, 5, 9})
        for (int64_t n_kv : {1, 7, 16, 17, 33, 257, 600}) {  // 600: three key tiles, the last partial
          const size_t ld = (size_t)(3 * hd);
          const auto q = test::gaussian(n_q * ld, (uint32_t)(hd + 7 * n_q), 0.5f);
          const int64_t n_blk = (n_kv + kAttnKeyBlock - 1) / kAttnKeyBlock;
          const auto kt_ = test::gaussian(n_blk * kAttnKeyBlock * hd, (uint32_t)(hd + n_kv), 1.0f);
          const auto v = test::gaussian(n_kv * ld, (uint32_t)(3 * hd + n_kv), 1.0f);
          std::vector<float> o_ref(n_q * ld, 0.0f), o_isa(n_q * ld, 0.0f),
              scratch(attn_block_scratch(n_q, n_kv));
          const float scale = 1.0f / std::sqrt((float)hd);
          ref::attention_block(q.data() + hd, ld, n_q, kt_.data(), v.data() + hd, ld, n_kv, hd, scale, o_ref.data() + hd, ld,
                               scratch.data());
          kt->attention_block(q.data() + hd, ld, n_q, kt_.data(), v.data() + hd, ld, n_kv, hd, scale, o_isa.data() + hd, ld,
                              scratch.data());
          for (size_t i = 0; i < o_ref.size(); ++i)
            ASSERT_NEAR(o_isa[i], o_ref[i], 2e-5) << isa_name(isa) << " hd " << hd << " n_q " << n_q << " n_kv " << n_kv
                                                  << " i " << i;
        }
  }
}

TEST(Activations, GeluEveryLevelMatchesReference) {
  for (Isa isa : kAllIsas) {
    const KernelTable* kt = kernels_for(isa);
    if (!kt) continue;
    for (int64_t n : {0, 1, 7, 8, 9, 100, 1027}) {
      auto x = test::gaussian(n, (uint32_t)(n + 3), 3.0f);
      if (n > 2) {  // the ends of the range
        x[0] = 30.0f;
        x[1] = -30.0f;
        x[2] = 0.0f;
      }
      for (auto [fn, ref_fn] : {std::pair{kt->gelu_tanh, &ref::gelu_tanh}, std::pair{kt->gelu_quick, &ref::gelu_quick}}) {
        auto a = x, b = x;
        ref_fn(a.data(), n);
        fn(b.data(), n);
        for (int64_t i = 0; i < n; ++i)
          ASSERT_NEAR(b[i], a[i], 2e-6f * std::max(1.0f, std::fabs(a[i]))) << isa_name(isa) << " n " << n << " x " << x[i];
      }
    }
  }
}

TEST(GemmF32, EveryLevelMatchesReference) {
  for (Isa isa : kAllIsas) {
    const KernelTable* kt = kernels_for(isa);
    if (!kt) continue;
    ASSERT_NE(kt->gemm_f32, nullptr);
    for (int64_t rows : {1, 2, 3, 5, 16})
      for (int64_t n_tok : {1, 2, 3, 4, 7})
        for (int64_t k : {1, 7, 8, 9, 64, 75}) {
          const size_t ldw = (size_t)k + 3, ldx = (size_t)k + 5, ldy = (size_t)rows + 2;  // strides wider than the data
          const auto w = test::gaussian(rows * ldw, (uint32_t)(rows * 31 + k), 1.0f);
          const auto x = test::gaussian(n_tok * ldx, (uint32_t)(n_tok * 17 + k), 1.0f);
          std::vector<float> a(n_tok * ldy, 0.0f), b(n_tok * ldy, 0.0f);
          ref::gemm_f32(w.data(), ldw, rows, x.data(), ldx, n_tok, k, a.data(), ldy);
          kt->gemm_f32(w.data(), ldw, rows, x.data(), ldx, n_tok, k, b.data(), ldy);
          for (size_t i = 0; i < a.size(); ++i)
            ASSERT_NEAR(b[i], a[i], 1e-4f * std::sqrt((float)k)) << isa_name(isa) << " rows " << rows << " n_tok " << n_tok
                                                                 << " k " << k << " i " << i;
        }
  }
}

}  // namespace
}  // namespace modu
