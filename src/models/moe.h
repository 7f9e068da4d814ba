// Mixture-of-experts feed-forward (Mixtral, Qwen2-MoE, Qwen3-MoE): softmax router, top-k expert
// selection, per-expert SwiGLU over the tokens routed to it, optional sigmoid-gated shared expert.
#pragma once

#include <cstdint>
#include <vector>

#include "modu/core/threadpool.h"
#include "modu/models/config.h"
#include "modu/models/model.h"

namespace modu::moe {

// The top-k experts of one token and their weights: softmax over all router logits, the k
// largest (ties: the lower expert index first), renormalized to sum to 1 when `norm`.
void select_experts(const float* logits, int64_t n_expert, int64_t k, bool norm, int32_t* ids, float* weights);

// out[t, :] = sum over selected experts e of w_e * down_e(silu(gate_e x) * up_e x)
//             (+ sigmoid(sh_router . x) * shared expert FFN(x) when the layer has one).
// x, out: [n, n_embd]
void ffn(const LayerWeights& L, const ModelConfig& c, const float* x, int64_t n, float* out, ThreadPool& pool);

}  // namespace modu::moe
