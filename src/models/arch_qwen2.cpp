// Qwen2 (and Qwen2.5): NeoX-style rope (half-split pairs) and biases on the Q, K, V projections.
#include "modu/models/config.h"

namespace {
const bool kRegistered = modu::register_arch(
    {.name = "qwen2", .rope_type = modu::RopeType::kNeox, .requires_qkv_bias = true});
}
