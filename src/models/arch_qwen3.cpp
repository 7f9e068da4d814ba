// Qwen3: NeoX-style rope, per-head RMS norm of Q and K, explicit head_dim, no QKV bias.
#include "modu/models/config.h"

namespace {
const bool kRegistered = modu::register_arch(
    {.name = "qwen3", .rope_type = modu::RopeType::kNeox, .requires_qk_norm = true, .allows_qkv_bias = false});
}
