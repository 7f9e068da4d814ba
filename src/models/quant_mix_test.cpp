// Tests for the quantization mixes: which layers get more bits, the per-mix rules, and the shape
// fallbacks, written out as explicit expectations for a 32-layer model.
#include "modu/models/quant_mix.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace modu {
namespace {

std::string blk(int i, const char* what) { return "blk." + std::to_string(i) + "." + what + ".weight"; }

TEST(QuantMix, Q4KMGivesQ6KToTheLayersLlamaCppPicks) {
  QuantMixModel m{32, 4, 0, false};
  // use_more_bits for 32 layers: 0-3, 28-31, and 6, 9, ..., 27 (every third after the first eighth).
  const std::set<int> more = {0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31};
  for (int i = 0; i < 32; ++i) {
    const DType want = more.count(i) ? DType::Q6_K : DType::Q4_K;
    EXPECT_EQ(quant_mix_type(QuantMix::kQ4_K_M, blk(i, "attn_v"), 4096, m), want) << i;
    EXPECT_EQ(quant_mix_type(QuantMix::kQ4_K_M, blk(i, "ffn_down"), 11008, m), want) << i;
    // 11040 columns are not whole 256-blocks: Q4_K falls back to Q5_0 and Q6_K to Q8_0.
    EXPECT_EQ(quant_mix_type(QuantMix::kQ4_K_M, blk(i, "ffn_down"), 11040, m), want == DType::Q6_K ? DType::Q8_0 : DType::Q5_0) << i;
    EXPECT_EQ(quant_mix_type(QuantMix::kQ4_K_M, blk(i, "attn_q"), 4096, m), DType::Q4_K);
    EXPECT_EQ(quant_mix_type(QuantMix::kQ4_K_M, blk(i, "ffn_up"), 4096, m), DType::Q4_K);
  }
  EXPECT_EQ(quant_mix_type(QuantMix::kQ4_K_M, "output.weight", 4096, m), DType::Q6_K);
  EXPECT_EQ(quant_mix_type(QuantMix::kQ4_K_M, "token_embd.weight", 4096, m), DType::Q4_K);
  m.tied_output = true;  // token_embd is the output too
  EXPECT_EQ(quant_mix_type(QuantMix::kQ4_K_M, "token_embd.weight", 4096, m), DType::Q6_K);
}

TEST(QuantMix, OtherMixes) {
  const QuantMixModel m{32, 1, 0, false};
  auto T = [&](QuantMix x, const std::string& n) { return quant_mix_type(x, n, 4096, m); };
  EXPECT_EQ(T(QuantMix::kQ3_K_M, blk(1, "attn_v")), DType::Q5_K);
  EXPECT_EQ(T(QuantMix::kQ3_K_M, blk(2, "attn_v")), DType::Q4_K);
  EXPECT_EQ(T(QuantMix::kQ3_K_M, blk(1, "ffn_down")), DType::Q5_K);  // < 32/16
  EXPECT_EQ(T(QuantMix::kQ3_K_M, blk(2, "ffn_down")), DType::Q4_K);
  EXPECT_EQ(T(QuantMix::kQ3_K_M, blk(5, "attn_output")), DType::Q4_K);
  EXPECT_EQ(T(QuantMix::kQ3_K_M, blk(5, "attn_q")), DType::Q3_K);
  EXPECT_EQ(T(QuantMix::kQ3_K_L, blk(5, "attn_v")), DType::Q5_K);
  EXPECT_EQ(T(QuantMix::kQ3_K_L, blk(5, "attn_output")), DType::Q5_K);
  EXPECT_EQ(T(QuantMix::kQ3_K_S, blk(5, "attn_v")), DType::Q3_K);
  EXPECT_EQ(T(QuantMix::kQ4_K_S, blk(3, "attn_v")), DType::Q5_K);
  EXPECT_EQ(T(QuantMix::kQ4_K_S, blk(4, "attn_v")), DType::Q4_K);
  EXPECT_EQ(T(QuantMix::kQ4_K_S, blk(3, "ffn_down")), DType::Q5_K);  // < 32/8
  EXPECT_EQ(T(QuantMix::kQ4_K_S, blk(4, "ffn_down")), DType::Q4_K);
  EXPECT_EQ(T(QuantMix::kQ5_K_M, blk(0, "ffn_down")), DType::Q6_K);
  EXPECT_EQ(T(QuantMix::kQ5_K_M, blk(4, "ffn_down")), DType::Q5_K);
  EXPECT_EQ(T(QuantMix::kQ5_K_S, blk(0, "ffn_down")), DType::Q5_K);
  EXPECT_EQ(T(QuantMix::kQ4_K_M, blk(4, "attn_qkv")), DType::Q5_K);
  EXPECT_EQ(T(QuantMix::kQ2_K, blk(4, "attn_v")), DType::Q3_K);  // n_gqa 1
  EXPECT_EQ(T(QuantMix::kQ2_K, blk(4, "ffn_down")), DType::Q3_K);
  EXPECT_EQ(T(QuantMix::kQ2_K, blk(4, "ffn_gate")), DType::Q2_K);
  const QuantMixModel gqa{32, 8, 0, false}, moe{32, 4, 8, false};
  EXPECT_EQ(quant_mix_type(QuantMix::kQ2_K, blk(4, "attn_v"), 4096, gqa), DType::Q4_K);
  EXPECT_EQ(quant_mix_type(QuantMix::kQ4_K_M, blk(4, "attn_v"), 4096, moe), DType::Q8_0);
  EXPECT_EQ(quant_mix_type(QuantMix::kQ4_K_M, blk(4, "attn_k"), 4096, moe), DType::Q8_0);
  EXPECT_EQ(quant_mix_type(QuantMix::kQ4_K_M, blk(4, "attn_output"), 4096, moe), DType::Q5_K);
  EXPECT_EQ(quant_mix_type(QuantMix::kQ4_K_M, blk(0, "ffn_down_exps"), 4096, moe), DType::Q6_K);
}

TEST(QuantMix, ShapeFallbacksAndNames) {
  const QuantMixModel m{8, 1, 0, false};
  EXPECT_EQ(quant_mix_type(QuantMix::kQ3_K_S, blk(4, "attn_q"), 96, m), DType::Q4_0);
  EXPECT_EQ(quant_mix_type(QuantMix::kQ5_K_S, blk(4, "attn_q"), 96, m), DType::Q5_1);
  EXPECT_EQ(quant_mix_type(QuantMix::kQ4_K_M, blk(0, "attn_v"), 96, m), DType::Q8_0);  // Q6_K -> Q8_0
  EXPECT_EQ(quant_mix_type(QuantMix::kQ4_K_M, blk(4, "attn_q"), 100, m), DType::F16);  // not even 32-blocks
  EXPECT_EQ(quant_mix_type(QuantMix::kQ4_K_M, "output.weight", 96, m), DType::Q8_0);
  auto x = quant_mix_from_name("Q4_K_M");
  ASSERT_TRUE(x.ok());
  EXPECT_EQ(*x, QuantMix::kQ4_K_M);
  EXPECT_EQ(quant_mix_file_type(*x), 15);
  EXPECT_FALSE(quant_mix_from_name("q4_k").ok());  // a single dtype, not a mix
  EXPECT_NE(quant_mix_from_name("q9_k_m").status().message().find("q5_k_m"), std::string::npos);
}

}  // namespace
}  // namespace modu
