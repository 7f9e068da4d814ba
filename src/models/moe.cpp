// Mixture-of-experts feed-forward: tokens are grouped by expert so each expert's weights are
// streamed once per batch through the same matmul as dense layers.
#include "moe.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "ops.h"

namespace modu::moe {

void select_experts(const float* logits, int64_t n_expert, int64_t k, bool norm, int32_t* ids, float* weights) {
  std::vector<int32_t> order(n_expert);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  float mx = logits[order[0]];
  double sum = 0;
  for (int64_t e = 0; e < n_expert; ++e) sum += std::exp((double)logits[e] - mx);
  double sel = 0;
  for (int64_t i = 0; i < k; ++i) {
    ids[i] = order[i];
    weights[i] = (float)(std::exp((double)logits[order[i]] - mx) / sum);
    sel += weights[i];
  }
  if (norm)
    for (int64_t i = 0; i < k; ++i) weights[i] = (float)(weights[i] / sel);
}

void ffn(const LayerWeights& L, const ModelConfig& c, const float* x, int64_t n, float* out, ThreadPool& pool) {
  const int64_t d = c.n_embd, ne = c.n_expert, k = c.n_expert_used, ff = c.n_ff_exp;
  std::vector<float> logits(n * ne);  // [n, n_expert]
  ops::matmul(L.moe_router, x, n, logits.data(), pool);
  std::vector<int32_t> ids(n * k);
  std::vector<float> wts(n * k);
  std::vector<std::vector<std::pair<int64_t, float>>> routed(ne);  // expert -> (token, weight)
  for (int64_t t = 0; t < n; ++t) {
    select_experts(logits.data() + t * ne, ne, k, c.moe_norm_topk, ids.data() + t * k, wts.data() + t * k);
    for (int64_t i = 0; i < k; ++i) routed[ids[t * k + i]].push_back({t, wts[t * k + i]});
  }
  std::fill(out, out + n * d, 0.0f);
  std::vector<float> xs, gate, up, y;
  for (int64_t e = 0; e < ne; ++e) {
    const auto& toks = routed[e];
    const int64_t m = (int64_t)toks.size();
    if (m == 0) continue;
    xs.resize(m * d);  // [m, n_embd] the tokens routed to expert e
    for (int64_t j = 0; j < m; ++j) std::copy(x + toks[j].first * d, x + (toks[j].first + 1) * d, xs.begin() + j * d);
    gate.resize(m * ff);
    up.resize(m * ff);
    y.resize(m * d);
    ops::matmul(L.exp_gate[e], xs.data(), m, gate.data(), pool);  // [m, n_ff_exp]
    ops::matmul(L.exp_up[e], xs.data(), m, up.data(), pool);      // [m, n_ff_exp]
    ops::swiglu(gate.data(), up.data(), m * ff, pool);
    ops::matmul(L.exp_down[e], gate.data(), m, y.data(), pool);   // [m, n_embd]
    for (int64_t j = 0; j < m; ++j) {
      float* o = out + toks[j].first * d;
      const float w = toks[j].second;
      for (int64_t i = 0; i < d; ++i) o[i] += w * y[j * d + i];
    }
  }
  if (!L.sh_gate) return;
  const int64_t sf = c.n_ff_shexp;
  gate.resize(n * sf);
  up.resize(n * sf);
  y.resize(n * d);
  ops::matmul(L.sh_gate, x, n, gate.data(), pool);  // [n, n_ff_shexp]
  ops::matmul(L.sh_up, x, n, up.data(), pool);      // [n, n_ff_shexp]
  ops::swiglu(gate.data(), up.data(), n * sf, pool);
  ops::matmul(L.sh_down, gate.data(), n, y.data(), pool);  // [n, n_embd]
  const float* sr = reinterpret_cast<const float*>(L.sh_router.data);
  for (int64_t t = 0; t < n; ++t) {
    float s = 1.0f;
    if (sr != nullptr) {
      double dot = 0;
      for (int64_t i = 0; i < d; ++i) dot += (double)sr[i] * x[t * d + i];
      s = (float)(1.0 / (1.0 + std::exp(-dot)));
    }
    for (int64_t i = 0; i < d; ++i) out[t * d + i] += s * y[t * d + i];
  }
}

}  // namespace modu::moe
