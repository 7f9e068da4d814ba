// Qwen2-MoE (Qwen1.5-MoE, Qwen2-57B-A14B): Qwen2's attention (NeoX rope, QKV bias); routed experts
// with softmax top-k weights used as they are, plus a shared expert scaled by sigmoid(gate_inp_shexp).
#include "modu/models/config.h"

namespace {
const bool kRegistered = modu::register_arch(
    {.name = "qwen2moe", .rope_type = modu::RopeType::kNeox, .requires_qkv_bias = true, .moe_norm_topk = false});
}
