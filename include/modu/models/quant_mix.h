// Quantization mixes: the dtype of each tensor under a named recipe (q4_k_m, q5_k_s, ...), the
// per-tensor choices of llama.cpp's llama-quantize, so a modu "Q4_K_M" file is what people expect.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "modu/core/status.h"
#include "modu/kernels/dtype.h"

namespace modu {

enum class QuantMix { kQ2_K, kQ3_K_S, kQ3_K_M, kQ3_K_L, kQ4_K_S, kQ4_K_M, kQ5_K_S, kQ5_K_M };

// What the recipes look at besides a tensor's name and width.
struct QuantMixModel {
  int n_layer = 0;
  int n_gqa = 1;       // query heads per K/V head
  int n_expert = 0;
  bool tied_output = false;  // no output.weight: token_embd is the output too
};

// "q4_k_m", "Q4_K_M", ..., "q2_k_mix" (bare q2_k is the single dtype); an error lists the names.
Result<QuantMix> quant_mix_from_name(std::string_view name);
const char* quant_mix_name(QuantMix m);
int quant_mix_file_type(QuantMix m);  // general.file_type (LLAMA_FTYPE_MOSTLY_*)
DType quant_mix_base(QuantMix m);     // the type of the tensors no rule singles out

// The dtype of matrix `name` ([rows, cols], cols = ne[0]) under `m`: output Q6_K; attn_v, ffn_down,
// attn_output and attn_qkv with more bits in the layers the recipe names (first and last eighths
// and every third layer between them for Q4_K_M / Q5_K_M); a type whose block does not divide
// cols falls back as llama.cpp does (Q2_K/Q3_K -> Q4_0, Q4_K -> Q5_0, Q5_K -> Q5_1,
// Q6_K -> Q8_0, then F16).
DType quant_mix_type(QuantMix m, const std::string& name, int64_t cols, const QuantMixModel& model);

}  // namespace modu
