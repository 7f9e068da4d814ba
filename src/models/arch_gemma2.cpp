// Gemma 2: embeddings x sqrt(d_model), GeGLU (tanh GELU), pre and post RMS norms around attention
// and feed-forward (GGUF norm weights already hold 1 + w), attention and final logit soft-capping,
// even layers windowed (gemma2.attention.sliding_window), NeoX rope.
#include "modu/models/config.h"

namespace {
const bool kRegistered = modu::register_arch({.name = "gemma2",
                                              .rope_type = modu::RopeType::kNeox,
                                              .allows_qkv_bias = false,
                                              .ffn_act = modu::FfnAct::kGeluTanh,
                                              .scale_embeddings = true,
                                              .post_norms = true,
                                              .swa_pattern = 2,
                                              .gemma_query_scale = true});
}
