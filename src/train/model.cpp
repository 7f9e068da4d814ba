// Training forward + explicit backward of the Llama decoder (templated: float for training,
// double for gradient checks), parameter layout and initialization.
#include "modu/train/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "gemm.h"
#include "ops.h"

namespace modu::train {

Status ModelDims::validate() const {
  if (n_vocab < 4 || n_embd < 1 || n_layer < 1 || n_head < 1 || n_head_kv < 1 || head_dim < 2 || n_ff < 1 ||
      n_ctx < 2)
    return invalid_argument("model dimensions must be positive (vocab >= 4, context >= 2)");
  if (n_head % n_head_kv != 0) return invalid_argument("n_head must be a multiple of n_head_kv");
  if (head_dim % 2 != 0) return invalid_argument("head_dim must be even (rotary pairs)");
  return Status::Ok();
}

Layout make_layout(const ModelDims& d) {
  Layout L;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, bool decay) {
    ParamTensor t{name, shape, L.total, 1, decay};
    for (int64_t s : shape) t.size *= (size_t)s;
    L.total += t.size;
    L.tensors.push_back(t);
    return t.offset;
  };
  const int64_t e = d.n_embd, q = d.q_dim(), kv = d.kv_dim();
  L.tok_embd = add("token_embd.weight", {e, d.n_vocab}, true);
  for (int64_t l = 0; l < d.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    LayerOffsets o;
    o.attn_norm = add(b + "attn_norm.weight", {e}, false);
    o.wq = add(b + "attn_q.weight", {e, q}, true);
    o.wk = add(b + "attn_k.weight", {e, kv}, true);
    o.wv = add(b + "attn_v.weight", {e, kv}, true);
    o.wo = add(b + "attn_output.weight", {q, e}, true);
    o.ffn_norm = add(b + "ffn_norm.weight", {e}, false);
    o.w_gate = add(b + "ffn_gate.weight", {e, d.n_ff}, true);
    o.w_up = add(b + "ffn_up.weight", {e, d.n_ff}, true);
    o.w_down = add(b + "ffn_down.weight", {d.n_ff, e}, true);
    L.layers.push_back(o);
  }
  L.output_norm = add("output_norm.weight", {e}, false);
  L.output = add("output.weight", {e, d.n_vocab}, true);
  return L;
}

std::vector<float> init_params(const ModelDims& d, const Layout& L, uint64_t seed) {
  std::vector<float> p(L.total);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  const double resid_scale = 1.0 / std::sqrt(2.0 * (double)d.n_layer);
  for (const ParamTensor& t : L.tensors) {
    float* x = p.data() + t.offset;
    if (t.shape.size() == 1) {
      std::fill(x, x + t.size, 1.0f);
      continue;
    }
    const bool resid = t.name.find("attn_output") != std::string::npos || t.name.find("ffn_down") != std::string::npos;
    const double sd = 0.02 * (resid ? resid_scale : 1.0);
    for (size_t i = 0; i < t.size; ++i) x[i] = (float)(sd * nd(rng));
  }
  return p;
}

namespace {

// y[N,out] = x[N,in] W^T for W [out,in].
template <class T>
void linear_fwd(const T* x, const T* W, int64_t N, int64_t in, int64_t out, T* y, std::vector<T>& tmp,
                ThreadPool& pool) {
  tmp.resize((size_t)in * out);
  transpose(W, out, in, tmp.data());
  gemm(N, out, in, x, in, tmp.data(), out, y, out, false, pool);
}

// dx (+)= dy W ; dW += dy^T x.
template <class T>
void linear_bwd(const T* x, const T* W, const T* dy, int64_t N, int64_t in, int64_t out, T* dx, bool dx_accumulate,
                T* dW, std::vector<T>& tmp, ThreadPool& pool) {
  gemm(N, in, out, dy, out, W, in, dx, in, dx_accumulate, pool);
  tmp.resize((size_t)N * out);
  transpose(dy, N, out, tmp.data());
  gemm(out, in, N, tmp.data(), N, x, in, dW, in, true, pool);
}

template <class T>
struct LayerActs {
  std::vector<T> x_in, r1, h1, q, k, v, p, att, x_mid, r2, h2, g, u, a;
};

}  // namespace

template <class T>
double forward_backward(const ModelDims& d, const Layout& L, const T* P, T* G, const int32_t* tokens,
                        const int32_t* targets, int64_t n_seq, int64_t len, ThreadPool& pool, std::vector<T>* logits_out) {
  const int64_t N = n_seq * len, E = d.n_embd, Q = d.q_dim(), KV = d.kv_dim(), F = d.n_ff, V = d.n_vocab;
  const T eps = (T)d.rms_eps;
  std::vector<T> tmp;
  const std::vector<T> freqs = ops::rope_freqs<T>(d.head_dim, d.rope_theta);
  const ops::AttnShape as{n_seq, len, d.n_head, d.n_head_kv, d.head_dim};

  std::vector<T> x((size_t)N * E);
  for (int64_t t = 0; t < N; ++t) {
    const T* e = P + L.tok_embd + (size_t)tokens[t] * E;
    std::copy(e, e + E, x.data() + t * E);
  }
  std::vector<LayerActs<T>> acts((size_t)d.n_layer);
  for (int64_t l = 0; l < d.n_layer; ++l) {
    const LayerOffsets& o = L.layers[l];
    LayerActs<T>& A = acts[l];
    A.x_in = x;
    A.r1.resize(N); A.h1.resize((size_t)N * E);
    ops::rmsnorm_fwd(x.data(), P + o.attn_norm, N, E, eps, A.h1.data(), A.r1.data(), pool);
    A.q.resize((size_t)N * Q); A.k.resize((size_t)N * KV); A.v.resize((size_t)N * KV);
    linear_fwd(A.h1.data(), P + o.wq, N, E, Q, A.q.data(), tmp, pool);
    linear_fwd(A.h1.data(), P + o.wk, N, E, KV, A.k.data(), tmp, pool);
    linear_fwd(A.h1.data(), P + o.wv, N, E, KV, A.v.data(), tmp, pool);
    ops::rope(A.q.data(), n_seq, len, d.n_head, d.head_dim, freqs.data(), false, pool);
    ops::rope(A.k.data(), n_seq, len, d.n_head_kv, d.head_dim, freqs.data(), false, pool);
    A.att.resize((size_t)N * Q);
    A.p.resize((size_t)n_seq * d.n_head * len * len);
    ops::attention_fwd(as, A.q.data(), A.k.data(), A.v.data(), A.p.data(), A.att.data(), pool);
    std::vector<T> o_out((size_t)N * E);
    linear_fwd(A.att.data(), P + o.wo, N, Q, E, o_out.data(), tmp, pool);
    for (size_t i = 0; i < x.size(); ++i) x[i] += o_out[i];
    A.x_mid = x;
    A.r2.resize(N); A.h2.resize((size_t)N * E);
    ops::rmsnorm_fwd(x.data(), P + o.ffn_norm, N, E, eps, A.h2.data(), A.r2.data(), pool);
    A.g.resize((size_t)N * F); A.u.resize((size_t)N * F); A.a.resize((size_t)N * F);
    linear_fwd(A.h2.data(), P + o.w_gate, N, E, F, A.g.data(), tmp, pool);
    linear_fwd(A.h2.data(), P + o.w_up, N, E, F, A.u.data(), tmp, pool);
    ops::swiglu_fwd(A.g.data(), A.u.data(), (int64_t)A.a.size(), A.a.data(), pool);
    linear_fwd(A.a.data(), P + o.w_down, N, F, E, o_out.data(), tmp, pool);
    for (size_t i = 0; i < x.size(); ++i) x[i] += o_out[i];
  }
  std::vector<T> rf(N), hf((size_t)N * E);
  ops::rmsnorm_fwd(x.data(), P + L.output_norm, N, E, eps, hf.data(), rf.data(), pool);
  std::vector<T> logits((size_t)N * V);
  linear_fwd(hf.data(), P + L.output, N, E, V, logits.data(), tmp, pool);
  if (logits_out) *logits_out = logits;
  // Cross-entropy; logits become dlogits.
  const double loss = ops::cross_entropy(logits.data(), targets, N, V, G != nullptr, pool);
  if (G == nullptr) return loss;

  std::fill(G, G + L.total, (T)0);
  std::vector<T> dhf((size_t)N * E), dx((size_t)N * E);
  linear_bwd(hf.data(), P + L.output, logits.data(), N, E, V, dhf.data(), false, G + L.output, tmp, pool);
  logits.clear(); logits.shrink_to_fit();
  ops::rmsnorm_bwd(x.data(), P + L.output_norm, rf.data(), dhf.data(), N, E, dx.data(), G + L.output_norm, pool);
  std::vector<T> dh((size_t)N * E), dq, dk, dv, datt, dg, du, da;
  for (int64_t l = d.n_layer - 1; l >= 0; --l) {
    const LayerOffsets& o = L.layers[l];
    LayerActs<T>& A = acts[l];
    // FFN: x_out = x_mid + down(swiglu(gate h2, up h2)); dx holds d x_out.
    da.resize((size_t)N * F);
    linear_bwd(A.a.data(), P + o.w_down, dx.data(), N, F, E, da.data(), false, G + o.w_down, tmp, pool);
    dg.resize(da.size()); du.resize(da.size());
    ops::swiglu_bwd(A.g.data(), A.u.data(), da.data(), (int64_t)da.size(), dg.data(), du.data(), pool);
    linear_bwd(A.h2.data(), P + o.w_gate, dg.data(), N, E, F, dh.data(), false, G + o.w_gate, tmp, pool);
    linear_bwd(A.h2.data(), P + o.w_up, du.data(), N, E, F, dh.data(), true, G + o.w_up, tmp, pool);
    ops::rmsnorm_bwd(A.x_mid.data(), P + o.ffn_norm, A.r2.data(), dh.data(), N, E, dx.data(), G + o.ffn_norm, pool,
                     /*accumulate=*/true);
    // Attention: x_mid = x_in + wo(attn(rope(q), rope(k), v)).
    datt.resize((size_t)N * Q);
    linear_bwd(A.att.data(), P + o.wo, dx.data(), N, Q, E, datt.data(), false, G + o.wo, tmp, pool);
    dq.resize((size_t)N * Q); dk.resize((size_t)N * KV); dv.resize((size_t)N * KV);
    ops::attention_bwd(as, A.q.data(), A.k.data(), A.v.data(), A.p.data(), datt.data(), dq.data(), dk.data(),
                       dv.data(), pool);
    ops::rope(dq.data(), n_seq, len, d.n_head, d.head_dim, freqs.data(), true, pool);
    ops::rope(dk.data(), n_seq, len, d.n_head_kv, d.head_dim, freqs.data(), true, pool);
    linear_bwd(A.h1.data(), P + o.wq, dq.data(), N, E, Q, dh.data(), false, G + o.wq, tmp, pool);
    linear_bwd(A.h1.data(), P + o.wk, dk.data(), N, E, KV, dh.data(), true, G + o.wk, tmp, pool);
    linear_bwd(A.h1.data(), P + o.wv, dv.data(), N, E, KV, dh.data(), true, G + o.wv, tmp, pool);
    ops::rmsnorm_bwd(A.x_in.data(), P + o.attn_norm, A.r1.data(), dh.data(), N, E, dx.data(), G + o.attn_norm, pool,
                     /*accumulate=*/true);
    A = LayerActs<T>();  // free as we go
  }
  for (int64_t t = 0; t < N; ++t) {
    T* ge = G + L.tok_embd + (size_t)tokens[t] * E;
    const T* g = dx.data() + t * E;
    for (int64_t i = 0; i < E; ++i) ge[i] += g[i];
  }
  return loss;
}

template double forward_backward<float>(const ModelDims&, const Layout&, const float*, float*, const int32_t*,
                                        const int32_t*, int64_t, int64_t, ThreadPool&, std::vector<float>*);
template double forward_backward<double>(const ModelDims&, const Layout&, const double*, double*, const int32_t*,
                                         const int32_t*, int64_t, int64_t, ThreadPool&, std::vector<double>*);

}  // namespace modu::train
