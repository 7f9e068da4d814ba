// Phi-3 / Phi-3.5 / Phi-4-mini: fused attn_qkv.weight and fused gate/up in ffn_up.weight (2 x n_ff
// rows), NeoX rope with LongRoPE factor tensors (rope_factors_short/long.weight, chosen by context
// size against rope.scaling.original_context_length) scaled by rope.scaling.attn_factor. The
// sliding window some configs declare is ignored, as llama.cpp does.
#include "modu/models/config.h"

namespace {
const bool kRegistered = modu::register_arch(
    {.name = "phi3", .rope_type = modu::RopeType::kNeox, .allows_qkv_bias = false, .fused_gate_up = true});
}
