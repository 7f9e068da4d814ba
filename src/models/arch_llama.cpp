// Llama family (Llama 2, 3, 3.1, 3.2 and models converted as "llama"): adjacent-pair rope.
#include "modu/models/config.h"

namespace {
// With experts (Mixtral: `llama.expert_count`), the top-k router weights are renormalized.
const bool kRegistered =
    modu::register_arch({.name = "llama", .rope_type = modu::RopeType::kNorm, .moe_norm_topk = true});
}
