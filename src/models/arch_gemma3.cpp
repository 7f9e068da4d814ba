// Gemma 3 (text): Gemma 2's layer with QK-norm and no soft-capping; five windowed layers then one
// global (pattern 6); windowed layers rotate with base 10000 unscaled, global ones with freq_base
// and the model's (linear) rope scaling.
#include "modu/models/config.h"

namespace {
const bool kRegistered = modu::register_arch({.name = "gemma3",
                                              .rope_type = modu::RopeType::kNeox,
                                              .requires_qk_norm = true,
                                              .allows_qkv_bias = false,
                                              .ffn_act = modu::FfnAct::kGeluTanh,
                                              .scale_embeddings = true,
                                              .post_norms = true,
                                              .swa_pattern = 6,
                                              .swa_rope_base = 10000.0f,
                                              .gemma_query_scale = true});
}
