// ViT element-wise ops and bidirectional attention. Attention runs through the dispatched block
// kernel (gemm.h AttnBlockFn: blocks of queries of one head against all of the image's keys, K
// transposed once per layer), so each K/V row is read once per block instead of once per query.
#include "vit_ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "modu/kernels/dispatch.h"
#include "modu/kernels/gemm.h"

namespace modu::vision::vit {

void layer_norm(const float* x, const float* w, const float* b, int64_t n, int64_t d, float eps, float* out) {
  for (int64_t t = 0; t < n; ++t) {
    const float* r = x + t * d;
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < d; ++i) s += r[i];
    const double mean = s / d;
    for (int64_t i = 0; i < d; ++i) s2 += (r[i] - mean) * (r[i] - mean);
    const float inv = (float)(1.0 / std::sqrt(s2 / d + eps));
    float* o = out + t * d;
    for (int64_t i = 0; i < d; ++i) o[i] = (float)(r[i] - mean) * inv * w[i] + (b ? b[i] : 0.0f);
  }
}

void rms_norm(const float* x, const float* w, int64_t n, int64_t d, float eps, float* out) {
  for (int64_t t = 0; t < n; ++t) {
    const float* r = x + t * d;
    double s2 = 0;
    for (int64_t i = 0; i < d; ++i) s2 += (double)r[i] * r[i];
    const float inv = (float)(1.0 / std::sqrt(s2 / d + eps));
    float* o = out + t * d;
    for (int64_t i = 0; i < d; ++i) o[i] = r[i] * inv * w[i];
  }
}

void activate(float* x, int64_t n, VitAct act, ThreadPool& pool) {
  pool.parallel_for(n, [&](int64_t b, int64_t e) {
    switch (act) {
      case VitAct::kGeluErf:
        for (int64_t i = b; i < e; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678118654752f));
        break;
      case VitAct::kGeluTanh:
        kernels().gelu_tanh(x + b, e - b);
        break;
      case VitAct::kQuickGelu:
        kernels().gelu_quick(x + b, e - b);
        break;
      case VitAct::kSilu:
        for (int64_t i = b; i < e; ++i) x[i] = x[i] / (1.0f + std::exp(-x[i]));
        break;
    }
  }, 16384);
}

void attention(const float* q, const float* k, const float* v, int64_t n, int64_t n_head, int64_t hd, float scale,
               float* out, ThreadPool& pool) {
  const AttnBlockFn fn = kernels().attention_block;
  const int64_t dim = n_head * hd;
  // Per head, once per layer: K transposed in 16-key blocks (the kernel's layout, gemm.h) and V
  // contiguous [n, hd], so every tile reads consecutive memory instead of rows dim floats apart.
  const int64_t nb16 = (n + kAttnKeyBlock - 1) / kAttnKeyBlock, head_kt = nb16 * kAttnKeyBlock * hd;
  std::vector<float> kt((size_t)(n_head * head_kt), 0.0f), vh((size_t)n * dim);
  pool.parallel_for(n_head, [&](int64_t b, int64_t e) {
    for (int64_t h = b; h < e; ++h) {
      float* kb = kt.data() + h * head_kt;
      float* vb = vh.data() + h * n * hd;
      for (int64_t t = 0; t < n; ++t) {
        const float* kr = k + t * dim + h * hd;
        float* dst = kb + (t / kAttnKeyBlock) * hd * kAttnKeyBlock + t % kAttnKeyBlock;
        for (int64_t d = 0; d < hd; ++d) dst[d * kAttnKeyBlock] = kr[d];
        std::copy_n(v + t * dim + h * hd, hd, vb + t * hd);
      }
    }
  });
  // Work items: (head, block of kBlock queries). Each block reads its head's K and V from memory
  // once (the kernel walks them in L2-sized key tiles for all of the block's queries).
  constexpr int64_t kBlock = 64;
  const int64_t nb = (n + kBlock - 1) / kBlock;
  pool.parallel_for(n_head * nb, [&](int64_t b, int64_t e) {
    thread_local std::vector<float> scratch;
    scratch.resize((size_t)attn_block_scratch(kBlock, n));
    for (int64_t idx = b; idx < e; ++idx) {
      const int64_t h = idx / nb, q0 = (idx % nb) * kBlock, nq = std::min(kBlock, n - q0);
      fn(q + q0 * dim + h * hd, dim, nq, kt.data() + h * head_kt, vh.data() + h * n * hd, hd, n, hd, scale,
         out + q0 * dim + h * hd, dim, scratch.data());
    }
  });
}

}  // namespace modu::vision::vit
