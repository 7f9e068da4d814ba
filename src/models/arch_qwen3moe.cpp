// Qwen3-MoE (Qwen3-30B-A3B, 235B-A22B): Qwen3's attention (NeoX rope, QK-norm, no bias); routed
// experts whose top-k softmax weights are renormalized to sum to 1.
#include "modu/models/config.h"

namespace {
const bool kRegistered = modu::register_arch({.name = "qwen3moe",
                                              .rope_type = modu::RopeType::kNeox,
                                              .requires_qk_norm = true,
                                              .allows_qkv_bias = false,
                                              .moe_norm_topk = true});
}
