// EXAONE 4.0: no pre-norms, RMS norms after attention and feed-forward (post_attention_norm,
// post_ffw_norm), QK-norm; hybrid models window the layers marked in
// exaone4.attention.sliding_window_pattern (per-layer bools) and use no rope on global layers.
#include "modu/models/config.h"

namespace {
const bool kRegistered = modu::register_arch({.name = "exaone4",
                                              .rope_type = modu::RopeType::kNeox,
                                              .requires_qk_norm = true,
                                              .allows_qkv_bias = false,
                                              .post_norms = true,
                                              .swa_pattern = 4,
                                              .pre_norms = false,
                                              .nope_global_layers = true});
}
