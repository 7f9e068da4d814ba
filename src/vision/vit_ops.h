// Element-wise and attention pieces of the ViT encoders (LayerNorm, GELU variants, bidirectional
// attention over one image's tokens); matrices go through the models layer's ops::matmul.
#pragma once

#include <cstdint>

#include "modu/core/threadpool.h"
#include "modu/vision/vision_model.h"

namespace modu::vision::vit {

// out[t] = (x[t] - mean) / sqrt(var + eps) * w + b  per row (x, out: [n, d], may alias; b may be null).
void layer_norm(const float* x, const float* w, const float* b, int64_t n, int64_t d, float eps, float* out);
// out[t] = x[t] / sqrt(mean(x^2) + eps) * w  per row.
void rms_norm(const float* x, const float* w, int64_t n, int64_t d, float eps, float* out);
// x[i] = act(x[i]) over n values.
void activate(float* x, int64_t n, VitAct act, ThreadPool& pool);
// Bidirectional multi-head attention: q, k, v, out [n, n_head * hd]; every token sees every token.
void attention(const float* q, const float* k, const float* v, int64_t n, int64_t n_head, int64_t hd, float scale,
               float* out, ThreadPool& pool);

}  // namespace modu::vision::vit
