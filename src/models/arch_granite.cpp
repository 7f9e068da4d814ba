// IBM Granite (3.x): Llama's layer (adjacent-pair rope after the converter's Q/K permutation)
// with multipliers: embeddings x granite.embedding_scale, each residual branch x
// granite.residual_scale, query scale granite.attention.scale, logits / granite.logit_scale.
#include "modu/models/config.h"

namespace {
const bool kRegistered = modu::register_arch({.name = "granite", .rope_type = modu::RopeType::kNorm});
}
