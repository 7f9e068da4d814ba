// Qwen2-VL (text): Qwen2's layer with M-RoPE, rotary pairs in sections turning with the (t, row,
// column) positions the vision path gives image tokens (text tokens have all three equal).
#include "modu/models/config.h"

namespace {
const bool kRegistered = modu::register_arch(
    {.name = "qwen2vl", .rope_type = modu::RopeType::kNeox, .requires_qkv_bias = true, .mrope = true});
}
