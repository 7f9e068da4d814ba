// The mixture-of-experts feed-forward of the LoRA trainer (lora_internal.h): softmax router, the
// k experts of largest router logit (lower index first on ties), weights renormalized over them
// when the model says so, each expert a SwiGLU of its slices of the stacked matrices, plus the
// sigmoid-gated shared expert. Experts and router are frozen; the backward carries the gradient
// to the input through the experts, the routing weights (softmax, renormalization) and the
// shared expert's gate. Tokens are grouped by expert, so each expert's matrices are dequantized
// once per pass.
#include <cmath>

#include "lora_internal.h"
#include "ops.h"

namespace modu::train::detail {

namespace {

// Expert j's slice of a stacked matrix.
FrozenMatrix slice(const FrozenMatrix& m, int64_t j, int64_t rows) {
  FrozenMatrix s = m;
  s.name = m.name + "#" + std::to_string(j);  // (never an adapter target)
  s.row0 = m.row0 + j * rows;
  s.rows = rows;
  return s;
}

template <class T>
T dot(const T* a, const T* b, int64_t n) {
  T s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

template <class T>
void moe_fwd(const LoraBase& b, const FrozenLayer& L, Linear<T>& lin, const T* h, int64_t N, T* out, MoeActs<T>* A,
             ThreadPool& pool) {
  const ModelConfig& c = b.cfg;
  const int64_t E = c.n_embd, ne = c.n_expert, k = c.n_expert_used, fe = c.n_ff_exp;
  std::vector<T> logits((size_t)(N * ne));
  lin.fwd(L.router, h, N, logits.data(), nullptr);
  A->probs.assign((size_t)(N * ne), (T)0);
  A->chosen.assign((size_t)(N * k), -1);
  A->weight.assign((size_t)(N * k), (T)0);
  A->experts.assign((size_t)ne, {});
  for (int64_t t = 0; t < N; ++t) {
    const T* z = logits.data() + t * ne;
    T* p = A->probs.data() + t * ne;
    T mx = z[0];
    for (int64_t e = 1; e < ne; ++e) mx = std::max(mx, z[e]);
    T sum = 0;
    for (int64_t e = 0; e < ne; ++e) sum += p[e] = std::exp(z[e] - mx);
    for (int64_t e = 0; e < ne; ++e) p[e] /= sum;
    std::vector<bool> used((size_t)ne, false);
    T tsum = 0;
    for (int64_t i = 0; i < k; ++i) {  // repeated strict maximum: ties go to the lower index
      int64_t best = -1;
      for (int64_t e = 0; e < ne; ++e)
        if (!used[e] && (best < 0 || z[e] > z[best])) best = e;
      used[best] = true;
      A->chosen[t * k + i] = (int32_t)best;
      A->weight[t * k + i] = p[best];
      tsum += p[best];
    }
    if (c.moe_norm_topk)
      for (int64_t i = 0; i < k; ++i) A->weight[t * k + i] /= tsum;
    for (int64_t i = 0; i < k; ++i) A->experts[A->chosen[t * k + i]].rows.push_back((int32_t)(t * k + i));
  }
  std::fill(out, out + N * E, (T)0);
  for (int64_t j = 0; j < ne; ++j) {
    auto& X = A->experts[j];
    const int64_t n = (int64_t)X.rows.size();
    if (n == 0) continue;
    X.x.resize((size_t)(n * E));
    for (int64_t r = 0; r < n; ++r) std::copy(h + (X.rows[r] / k) * E, h + (X.rows[r] / k + 1) * E, X.x.data() + r * E);
    X.g.resize((size_t)(n * fe));
    X.u.resize(X.g.size());
    X.a.resize(X.g.size());
    X.y.resize((size_t)(n * E));
    lin.fwd(slice(L.gate_exps, j, fe), X.x.data(), n, X.g.data(), nullptr);
    lin.fwd(slice(L.up_exps, j, fe), X.x.data(), n, X.u.data(), nullptr);
    ops::swiglu_fwd(X.g.data(), X.u.data(), n * fe, X.a.data(), pool);
    lin.fwd(slice(L.down_exps, j, E), X.a.data(), n, X.y.data(), nullptr);
    for (int64_t r = 0; r < n; ++r) {
      const T w = A->weight[X.rows[r]];
      T* o = out + (X.rows[r] / k) * E;
      for (int64_t i = 0; i < E; ++i) o[i] += w * X.y[r * E + i];
    }
  }
  if (L.gate_sh) {
    const int64_t fs = L.gate_sh.rows;
    A->sh_g.resize((size_t)(N * fs));
    A->sh_u.resize(A->sh_g.size());
    A->sh_a.resize(A->sh_g.size());
    A->sh_y.resize((size_t)(N * E));
    lin.fwd(L.gate_sh, h, N, A->sh_g.data(), nullptr);
    lin.fwd(L.up_sh, h, N, A->sh_u.data(), nullptr);
    ops::swiglu_fwd(A->sh_g.data(), A->sh_u.data(), N * fs, A->sh_a.data(), pool);
    lin.fwd(L.down_sh, A->sh_a.data(), N, A->sh_y.data(), nullptr);
    A->sh_z.assign((size_t)N, (T)0);
    for (int64_t t = 0; t < N; ++t) {
      T z = 0;
      if (!L.sh_gate.empty())
        for (int64_t i = 0; i < E; ++i) z += (T)L.sh_gate[i] * h[t * E + i];
      A->sh_z[t] = z;
      const T g = L.sh_gate.empty() ? (T)1 : ops::sigmoid(z);
      for (int64_t i = 0; i < E; ++i) out[t * E + i] += g * A->sh_y[t * E + i];
    }
  }
}

template <class T>
void moe_bwd(const LoraBase& b, const FrozenLayer& L, Linear<T>& lin, const T* h, const T* dout, int64_t N, const MoeActs<T>& A,
             T* dh, ThreadPool& pool) {
  const ModelConfig& c = b.cfg;
  const int64_t E = c.n_embd, ne = c.n_expert, k = c.n_expert_used, fe = c.n_ff_exp;
  std::fill(dh, dh + N * E, (T)0);
  std::vector<T> dw((size_t)(N * k), (T)0);  // d loss / d routing weight
  std::vector<T> dy, da, dg, du, dx;
  for (int64_t j = 0; j < ne; ++j) {
    const auto& X = A.experts[j];
    const int64_t n = (int64_t)X.rows.size();
    if (n == 0) continue;
    dy.resize((size_t)(n * E));
    for (int64_t r = 0; r < n; ++r) {
      const T* d = dout + (X.rows[r] / k) * E;
      dw[X.rows[r]] = dot(d, X.y.data() + r * E, E);
      for (int64_t i = 0; i < E; ++i) dy[r * E + i] = A.weight[X.rows[r]] * d[i];
    }
    da.resize((size_t)(n * fe));
    lin.bwd(slice(L.down_exps, j, E), X.a.data(), dy.data(), n, nullptr, da.data(), false);
    dg.resize(da.size());
    du.resize(da.size());
    ops::swiglu_bwd(X.g.data(), X.u.data(), da.data(), n * fe, dg.data(), du.data(), pool);
    dx.resize((size_t)(n * E));
    lin.bwd(slice(L.gate_exps, j, fe), X.x.data(), dg.data(), n, nullptr, dx.data(), false);
    lin.bwd(slice(L.up_exps, j, fe), X.x.data(), du.data(), n, nullptr, dx.data(), true);
    for (int64_t r = 0; r < n; ++r) {
      T* o = dh + (X.rows[r] / k) * E;
      for (int64_t i = 0; i < E; ++i) o[i] += dx[r * E + i];
    }
  }
  // Routing weights -> router probabilities -> router logits.
  std::vector<T> dz((size_t)(N * ne), (T)0);
  for (int64_t t = 0; t < N; ++t) {
    const T* p = A.probs.data() + t * ne;
    std::vector<T> dp((size_t)ne, (T)0);
    if (c.moe_norm_topk) {  // w_i = p_i / S over the chosen: dp_i = (dw_i - sum_m dw_m w_m) / S
      T S = 0, wdw = 0;
      for (int64_t i = 0; i < k; ++i) S += p[A.chosen[t * k + i]];
      for (int64_t i = 0; i < k; ++i) wdw += dw[t * k + i] * A.weight[t * k + i];
      for (int64_t i = 0; i < k; ++i) dp[A.chosen[t * k + i]] = (dw[t * k + i] - wdw) / S;
    } else {
      for (int64_t i = 0; i < k; ++i) dp[A.chosen[t * k + i]] = dw[t * k + i];
    }
    T pdp = 0;
    for (int64_t e = 0; e < ne; ++e) pdp += p[e] * dp[e];
    for (int64_t e = 0; e < ne; ++e) dz[t * ne + e] = p[e] * (dp[e] - pdp);
  }
  lin.bwd(L.router, h, dz.data(), N, nullptr, dh, true);
  if (L.gate_sh) {
    const int64_t fs = L.gate_sh.rows;
    std::vector<T> dys((size_t)(N * E));
    for (int64_t t = 0; t < N; ++t) {
      const T* d = dout + t * E;
      const T g = L.sh_gate.empty() ? (T)1 : ops::sigmoid(A.sh_z[t]);
      for (int64_t i = 0; i < E; ++i) dys[t * E + i] = g * d[i];
      if (!L.sh_gate.empty()) {  // the gate's own gradient: d z = (dout . y) g (1 - g)
        const T dzs = dot(d, A.sh_y.data() + t * E, E) * g * ((T)1 - g);
        for (int64_t i = 0; i < E; ++i) dh[t * E + i] += dzs * (T)L.sh_gate[i];
      }
    }
    da.resize((size_t)(N * fs));
    lin.bwd(L.down_sh, A.sh_a.data(), dys.data(), N, nullptr, da.data(), false);
    dg.resize(da.size());
    du.resize(da.size());
    ops::swiglu_bwd(A.sh_g.data(), A.sh_u.data(), da.data(), N * fs, dg.data(), du.data(), pool);
    lin.bwd(L.gate_sh, h, dg.data(), N, nullptr, dh, true);
    lin.bwd(L.up_sh, h, du.data(), N, nullptr, dh, true);
  }
}

template void moe_fwd<float>(const LoraBase&, const FrozenLayer&, Linear<float>&, const float*, int64_t, float*, MoeActs<float>*,
                             ThreadPool&);
template void moe_fwd<double>(const LoraBase&, const FrozenLayer&, Linear<double>&, const double*, int64_t, double*,
                              MoeActs<double>*, ThreadPool&);
template void moe_bwd<float>(const LoraBase&, const FrozenLayer&, Linear<float>&, const float*, const float*, int64_t,
                             const MoeActs<float>&, float*, ThreadPool&);
template void moe_bwd<double>(const LoraBase&, const FrozenLayer&, Linear<double>&, const double*, const double*, int64_t,
                              const MoeActs<double>&, double*, ThreadPool&);

}  // namespace modu::train::detail
