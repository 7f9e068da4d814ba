// LoRA training forward + explicit backward over a frozen base of any dtype (see lora_model.h).
// Base products dequantize the matrix in row blocks of about 2 MB into the scalar type and run the
// training GEMM on them: the whole base is never expanded, so the working set is one block plus
// the activations, and the cost over a plain F32 product is one dequantization per use.
#include "modu/train/lora_model.h"

#include <cmath>
#include <map>
#include <unordered_map>

#include "gemm.h"
#include "lora_internal.h"
#include "modu/kernels/dtype.h"
#include "ops.h"
#include "ops_ext.h"

namespace modu::train {

// ---------------------------------------------------------------------------------------------------------
// Loading

namespace {

Result<std::vector<float>> read_vec(const GgufFile& f, const std::string& name, int64_t n, bool required) {
  const GgufTensor* t = f.tensor(name);
  if (!t) {
    if (required) return not_found("the model has no " + name);
    return std::vector<float>();
  }
  if (t->n_elements() != n)
    return corrupt(name + " has " + std::to_string(t->n_elements()) + " values; the config says " + std::to_string(n));
  std::vector<float> v((size_t)n);
  dtype_traits(t->dtype)->dequantize(t->data, v.data(), n);
  return v;
}

Result<FrozenMatrix> read_mat(const GgufFile& f, const std::string& name, int64_t cols, int64_t rows, bool required) {
  FrozenMatrix m;
  m.name = name;
  m.t = f.tensor(name);
  if (!m.t) {
    if (required) return not_found("the model has no " + name);
    return m;
  }
  if (m.t->shape.size() != 2 || m.t->shape[0] != cols || (rows > 0 && m.t->shape[1] != rows))
    return corrupt(name + " has shape [" + std::to_string(m.t->shape[0]) + ", " +
                   (m.t->shape.size() > 1 ? std::to_string(m.t->shape[1]) : std::string("?")) + "]; expected [" +
                   std::to_string(cols) + ", " + std::to_string(rows) + "]");
  m.cols = cols;
  m.rows = m.t->shape[1];
  return m;
}

// A stacked 3-D tensor [cols, rows_per, n] as one matrix of n * rows_per rows.
Result<FrozenMatrix> read_stack(const GgufFile& f, const std::string& name, int64_t cols, int64_t rows_per, int64_t n) {
  FrozenMatrix m;
  m.name = name;
  m.t = f.tensor(name);
  if (!m.t) return not_found("the model has no " + name);
  if (m.t->shape != std::vector<int64_t>{cols, rows_per, n})
    return corrupt(name + " does not have shape [" + std::to_string(cols) + ", " + std::to_string(rows_per) + ", " + std::to_string(n) + "]");
  m.cols = cols;
  m.rows = rows_per * n;
  return m;
}

}  // namespace

std::vector<const FrozenMatrix*> LoraBase::matrices() const {
  std::vector<const FrozenMatrix*> out;
  for (const FrozenLayer& L : layers)
    for (const FrozenMatrix* m : {&L.q, &L.k, &L.v, &L.qkv, &L.o, &L.gate, &L.up, &L.down})
      if (*m) out.push_back(m);
  return out;
}

std::string LoraBase::matrix_dtypes() const {
  std::map<std::string, int> n;
  for (const FrozenMatrix* m : matrices()) ++n[dtype_name(m->t->dtype)];
  std::string s;
  for (const auto& [k, v] : n) s += (s.empty() ? "" : ", ") + k + (n.size() > 1 ? " x " + std::to_string(v) : "");
  return s;
}

namespace {

// YaRN (as the engine's rope_angles): pair i turns by pos * freq * (fs (1 - ramp) + ramp), a
// ramp over the correction dimensions, and both rotations are scaled by the magnitude.
void fold_yarn(const ModelConfig& c, std::vector<float>* freqs, float* mag) {
  const double fs = 1.0 / c.rope_factor;
  double m = c.yarn_attn_factor;
  if (c.yarn_ext_factor != 0.0f) m *= 1.0 + 0.1 * std::log(1.0 / fs);
  auto corr_dim = [&](double beta) {
    return (double)c.n_rot * std::log((double)c.rope_orig_ctx / (beta * 2.0 * M_PI)) / (2.0 * std::log((double)c.rope_theta));
  };
  const double lo = std::max(0.0, std::floor(corr_dim(c.yarn_beta_fast)));
  const double hi = std::min((double)c.n_rot - 1, std::ceil(corr_dim(c.yarn_beta_slow)));
  for (size_t i = 0; i < freqs->size(); ++i) {
    double k = fs;
    if (c.yarn_ext_factor != 0.0f) {
      const double y = ((double)i - lo) / std::max(0.001, hi - lo);
      const double ramp = (1.0 - std::min(1.0, std::max(0.0, y))) * c.yarn_ext_factor;
      k = fs * (1 - ramp) + ramp;
    }
    (*freqs)[i] = (float)((*freqs)[i] * k);
  }
  *mag = (float)m;
}

}  // namespace

Result<std::unique_ptr<LoraBase>> load_lora_base(const std::string& path, int64_t ctx) {
  auto b = std::make_unique<LoraBase>();
  MODU_ASSIGN_OR_RETURN(b->file, GgufFile::open(path));
  MODU_ASSIGN_OR_RETURN(b->cfg, read_model_config(b->file));
  const ModelConfig& c = b->cfg;
  const GgufFile& f = b->file;
  const std::string why = path + ": modu tune cannot train on this model yet: ";
  const int64_t E = c.n_embd, Q = c.n_head * c.head_dim, KV = c.n_head_kv * c.head_dim;
  MODU_ASSIGN_OR_RETURN(b->tok_embd, read_mat(f, "token_embd.weight", E, c.n_vocab, true));
  MODU_ASSIGN_OR_RETURN(b->output, read_mat(f, "output.weight", E, c.n_vocab, false));
  if (!b->output) b->output = b->tok_embd;  // tied
  MODU_ASSIGN_OR_RETURN(b->output_norm, read_vec(f, "output_norm.weight", E, true));
  std::vector<float> factors, shorts, longs;
  MODU_ASSIGN_OR_RETURN(factors, read_vec(f, "rope_freqs.weight", c.n_rot / 2, false));
  MODU_ASSIGN_OR_RETURN(shorts, read_vec(f, "rope_factors_short.weight", c.n_rot / 2, false));
  MODU_ASSIGN_OR_RETURN(longs, read_vec(f, "rope_factors_long.weight", c.n_rot / 2, false));
  const int64_t use_ctx = ctx > 0 ? std::min(ctx, c.n_ctx_train) : c.n_ctx_train;
  if (!shorts.empty()) factors = !longs.empty() && use_ctx > c.rope_orig_ctx ? longs : shorts;  // LongRoPE
  b->freqs = rope_frequencies(c, factors.empty() ? nullptr : factors.data());
  b->freqs_swa = b->freqs;
  if (c.n_swa > 0 && c.rope_theta_swa > 0) {  // windowed layers: their own base, no scaling
    ModelConfig local = c;
    local.rope_theta = c.rope_theta_swa;
    local.rope_scaling = RopeScaling::kNone;
    b->freqs_swa = rope_frequencies(local, nullptr);
  }
  if (c.rope_scaling == RopeScaling::kYarn) {
    fold_yarn(c, &b->freqs, &b->rope_mag);
    fold_yarn(c, &b->freqs_swa, &b->rope_mag_swa);  // (the engine's windowed layers take the same YaRN terms)
  } else if (!shorts.empty()) {
    b->rope_mag = c.yarn_attn_factor;  // LongRoPE's cos/sin scale, global layers
  }
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    FrozenLayer L;
    MODU_ASSIGN_OR_RETURN(L.qkv, read_mat(f, p + "attn_qkv.weight", E, Q + 2 * KV, false));
    if (!L.qkv) {
      MODU_ASSIGN_OR_RETURN(L.q, read_mat(f, p + "attn_q.weight", E, Q, true));
      MODU_ASSIGN_OR_RETURN(L.k, read_mat(f, p + "attn_k.weight", E, KV, true));
      MODU_ASSIGN_OR_RETURN(L.v, read_mat(f, p + "attn_v.weight", E, KV, true));
    }
    MODU_ASSIGN_OR_RETURN(L.o, read_mat(f, p + "attn_output.weight", Q, E, true));
    if (c.n_expert > 0) {
      const int64_t ne = c.n_expert, fe = c.n_ff_exp;
      MODU_ASSIGN_OR_RETURN(L.router, read_mat(f, p + "ffn_gate_inp.weight", E, ne, true));
      MODU_ASSIGN_OR_RETURN(L.gate_exps, read_stack(f, p + "ffn_gate_exps.weight", E, fe, ne));
      MODU_ASSIGN_OR_RETURN(L.up_exps, read_stack(f, p + "ffn_up_exps.weight", E, fe, ne));
      MODU_ASSIGN_OR_RETURN(L.down_exps, read_stack(f, p + "ffn_down_exps.weight", fe, E, ne));
      MODU_ASSIGN_OR_RETURN(L.sh_gate, read_vec(f, p + "ffn_gate_inp_shexp.weight", E, false));
      MODU_ASSIGN_OR_RETURN(L.gate_sh, read_mat(f, p + "ffn_gate_shexp.weight", E, c.n_ff_shexp, false));
      if (L.gate_sh) {
        MODU_ASSIGN_OR_RETURN(L.up_sh, read_mat(f, p + "ffn_up_shexp.weight", E, c.n_ff_shexp, true));
        MODU_ASSIGN_OR_RETURN(L.down_sh, read_mat(f, p + "ffn_down_shexp.weight", c.n_ff_shexp, E, true));
      }
    } else {
      MODU_ASSIGN_OR_RETURN(L.gate, read_mat(f, p + "ffn_gate.weight", E, c.n_ff, false));
      MODU_ASSIGN_OR_RETURN(L.up, read_mat(f, p + "ffn_up.weight", E, L.gate ? c.n_ff : 2 * c.n_ff, true));
      MODU_ASSIGN_OR_RETURN(L.down, read_mat(f, p + "ffn_down.weight", c.n_ff, E, true));
    }
    MODU_ASSIGN_OR_RETURN(L.attn_norm, read_vec(f, p + "attn_norm.weight", E, c.arch.pre_norms));
    MODU_ASSIGN_OR_RETURN(L.ffn_norm, read_vec(f, p + "ffn_norm.weight", E, c.arch.pre_norms));
    MODU_ASSIGN_OR_RETURN(L.post_attn_norm, read_vec(f, p + "post_attention_norm.weight", E, c.arch.post_norms));
    MODU_ASSIGN_OR_RETURN(L.post_ffn_norm, read_vec(f, p + "post_ffw_norm.weight", E, c.arch.post_norms));
    MODU_ASSIGN_OR_RETURN(L.q_norm, read_vec(f, p + "attn_q_norm.weight", c.head_dim, c.arch.requires_qk_norm));
    MODU_ASSIGN_OR_RETURN(L.k_norm, read_vec(f, p + "attn_k_norm.weight", c.head_dim, c.arch.requires_qk_norm));
    MODU_ASSIGN_OR_RETURN(L.bq, read_vec(f, p + "attn_q.bias", Q, c.arch.requires_qkv_bias));
    MODU_ASSIGN_OR_RETURN(L.bk, read_vec(f, p + "attn_k.bias", KV, c.arch.requires_qkv_bias));
    MODU_ASSIGN_OR_RETURN(L.bv, read_vec(f, p + "attn_v.bias", KV, c.arch.requires_qkv_bias));
    if (f.tensor(p + "attn_output.bias") || f.tensor(p + "ffn_down.bias") || f.tensor(p + "attn_qkv.bias"))
      return unimplemented(why + "it has biases modu tune does not train through yet (" + p + "attn_output / ffn_down / attn_qkv)");
    L.swa = c.is_swa(l);
    L.rope = c.uses_rope(l);
    b->layers.push_back(std::move(L));
  }
  return b;
}

Result<LoraSet> make_lora_set(const LoraBase& base, const std::vector<std::string>& wanted, int64_t rank, float alpha) {
  if (rank <= 0) return invalid_argument("LoRA rank must be positive");
  if (!(alpha > 0)) return invalid_argument("LoRA alpha must be positive");
  auto kind_of = [](const std::string& name) {  // "blk.3.attn_q.weight" -> "attn_q"
    const size_t a = name.find('.', 4), e = name.rfind(".weight");
    return name.substr(a + 1, e - a - 1);
  };
  std::vector<std::string> targets = wanted;
  if (targets.empty())
    for (const FrozenMatrix* m : base.matrices())
      if (m->name.rfind("blk.0.", 0) == 0) targets.push_back(kind_of(m->name));
  LoraSet s;
  s.rank = rank;
  s.alpha = alpha;
  for (const std::string& kind : targets) {
    bool found = false;
    for (const FrozenMatrix* m : base.matrices()) {
      if (kind_of(m->name) != kind) continue;
      LoraSlot sl;
      sl.name = m->name;
      sl.cols = m->cols;
      sl.rows = m->rows;
      sl.a_offset = s.total;
      s.total += (size_t)(rank * sl.cols);
      sl.b_offset = s.total;
      s.total += (size_t)(sl.rows * rank);
      s.slots.push_back(sl);
      found = true;
    }
    if (!found) {
      std::string have;
      for (const FrozenMatrix* m : base.matrices())
        if (m->name.rfind("blk.0.", 0) == 0) have += (have.empty() ? "" : ", ") + kind_of(m->name);
      return invalid_argument("no matrix '" + kind + "' to adapt; this model has " + have);
    }
  }
  return s;
}

// ---------------------------------------------------------------------------------------------------------
// Forward and backward

namespace {

template <class T>
std::vector<T> as_t(const std::vector<float>& v) {
  return std::vector<T>(v.begin(), v.end());
}

// RMS norm without a trainable gain (the gain is frozen): forward keeps r, backward ignores dw.
template <class T>
void norm_fwd(const T* x, const std::vector<T>& w, int64_t N, int64_t E, T eps, T* y, std::vector<T>& r, ThreadPool& pool) {
  r.resize((size_t)N);
  ops::rmsnorm_fwd(x, w.data(), N, E, eps, y, r.data(), pool);
}
template <class T>
void norm_bwd(const T* x, const std::vector<T>& w, const std::vector<T>& r, const T* dy, int64_t N, int64_t E, T* dx, bool acc,
              ThreadPool& pool) {
  std::vector<T> dw((size_t)E);
  ops::rmsnorm_bwd(x, w.data(), r.data(), dy, N, E, dx, dw.data(), pool, acc);
}

// Column block [c0, c0 + n) of rows of width `ld` <-> a dense [N, n] array.
template <class T>
void take_cols(const T* src, int64_t N, int64_t ld, int64_t c0, int64_t n, T* dst) {
  for (int64_t t = 0; t < N; ++t) std::copy(src + t * ld + c0, src + t * ld + c0 + n, dst + t * n);
}
template <class T>
void put_cols(const T* src, int64_t N, int64_t ld, int64_t c0, int64_t n, T* dst) {
  for (int64_t t = 0; t < N; ++t) std::copy(src + t * n, src + t * n + n, dst + t * ld + c0);
}

template <class T>
struct Acts {
  std::vector<T> x_in, h1, r1, qkv_raw, q_pre, k_pre, qr, kr, q, k, v, p, capped, att, u_q, u_k, u_v, u_qkv, u_o;
  std::vector<T> o_raw, ro, x_mid, h2, r2, gu, g, u, a, u_gate, u_up, u_down, d_raw, rd;
  detail::MoeActs<T> moe;
};

}  // namespace

template <class T>
double lora_loss_grad(const LoraBase& b, const LoraSet& s, const T* lora, T* grad, const int32_t* tokens, const int32_t* targets,
                      int64_t n_seq, int64_t len, ThreadPool& pool, std::vector<T>* logits_out) {
  const ModelConfig& c = b.cfg;
  const int64_t N = n_seq * len, E = c.n_embd, hd = c.head_dim, Q = c.n_head * hd, KV = c.n_head_kv * hd, F = c.n_ff,
                V = c.n_vocab;
  const T eps = (T)c.rms_eps;
  const bool neox = c.arch.rope_type == RopeType::kNeox;
  const bool gelu = c.arch.ffn_act == FfnAct::kGeluTanh;
  const T rs = (T)c.residual_scale;
  detail::Linear<T> lin(s, lora, grad, pool);
  if (grad) std::fill(grad, grad + s.total, (T)0);
  const ops::AttnShape as{n_seq, len, c.n_head, c.n_head_kv, hd};

  // Embeddings (rows of the frozen table, scaled).
  std::vector<T> x((size_t)(N * E));
  {
    const size_t rb = dtype_row_bytes(b.tok_embd.t->dtype, E);
    std::vector<float> row((size_t)E);
    for (int64_t t = 0; t < N; ++t) {
      dtype_traits(b.tok_embd.t->dtype)->dequantize(b.tok_embd.t->data + (size_t)tokens[t] * rb, row.data(), E);
      for (int64_t i = 0; i < E; ++i) x[t * E + i] = (T)row[i] * (T)c.embd_scale;
    }
  }
  std::vector<Acts<T>> acts(b.layers.size());
  for (size_t l = 0; l < b.layers.size(); ++l) {
    const FrozenLayer& L = b.layers[l];
    Acts<T>& A = acts[l];
    A.x_in = x;
    // Attention.
    A.h1 = x;
    if (!L.attn_norm.empty()) norm_fwd(x.data(), as_t<T>(L.attn_norm), N, E, eps, A.h1.data(), A.r1, pool);
    A.q_pre.resize((size_t)(N * Q));
    A.k_pre.resize((size_t)(N * KV));
    A.v.resize((size_t)(N * KV));
    if (L.qkv) {
      A.qkv_raw.resize((size_t)(N * (Q + 2 * KV)));
      lin.fwd(L.qkv, A.h1.data(), N, A.qkv_raw.data(), &A.u_qkv);
      take_cols(A.qkv_raw.data(), N, Q + 2 * KV, 0, Q, A.q_pre.data());
      take_cols(A.qkv_raw.data(), N, Q + 2 * KV, Q, KV, A.k_pre.data());
      take_cols(A.qkv_raw.data(), N, Q + 2 * KV, Q + KV, KV, A.v.data());
    } else {
      lin.fwd(L.q, A.h1.data(), N, A.q_pre.data(), &A.u_q);
      lin.fwd(L.k, A.h1.data(), N, A.k_pre.data(), &A.u_k);
      lin.fwd(L.v, A.h1.data(), N, A.v.data(), &A.u_v);
    }
    auto add_bias = [&](std::vector<T>& y, const std::vector<float>& bias, int64_t D) {
      if (bias.empty()) return;
      for (int64_t t = 0; t < N; ++t)
        for (int64_t i = 0; i < D; ++i) y[t * D + i] += (T)bias[i];
    };
    add_bias(A.q_pre, L.bq, Q);
    add_bias(A.k_pre, L.bk, KV);
    add_bias(A.v, L.bv, KV);
    A.q = A.q_pre;
    A.k = A.k_pre;
    if (!L.q_norm.empty()) norm_fwd(A.q_pre.data(), as_t<T>(L.q_norm), N * c.n_head, hd, eps, A.q.data(), A.qr, pool);
    if (!L.k_norm.empty()) norm_fwd(A.k_pre.data(), as_t<T>(L.k_norm), N * c.n_head_kv, hd, eps, A.k.data(), A.kr, pool);
    const std::vector<float>& fr = L.swa ? b.freqs_swa : b.freqs;
    if (L.rope) {
      ops::rope_ext(A.q.data(), n_seq, len, c.n_head, hd, c.n_rot, fr.data(), L.swa ? b.rope_mag_swa : b.rope_mag, neox, false, pool);
      ops::rope_ext(A.k.data(), n_seq, len, c.n_head_kv, hd, c.n_rot, fr.data(), L.swa ? b.rope_mag_swa : b.rope_mag, neox, false, pool);
    }
    ops::AttnOptions ao{c.attn_scale, c.attn_softcap, L.swa ? c.n_swa : 0};
    A.p.resize((size_t)(n_seq * c.n_head * len * len));
    if (ao.softcap > 0) A.capped.resize(A.p.size());
    A.att.resize((size_t)(N * Q));
    ops::attention_ext_fwd(as, ao, A.q.data(), A.k.data(), A.v.data(), A.p.data(), A.capped.data(), A.att.data(), pool);
    A.o_raw.resize((size_t)(N * E));
    lin.fwd(L.o, A.att.data(), N, A.o_raw.data(), &A.u_o);
    std::vector<T> o = A.o_raw;
    if (!L.post_attn_norm.empty()) norm_fwd(A.o_raw.data(), as_t<T>(L.post_attn_norm), N, E, eps, o.data(), A.ro, pool);
    for (size_t i = 0; i < x.size(); ++i) x[i] += rs * o[i];
    A.x_mid = x;
    // Feed-forward.
    A.h2 = x;
    if (!L.ffn_norm.empty()) norm_fwd(x.data(), as_t<T>(L.ffn_norm), N, E, eps, A.h2.data(), A.r2, pool);
    A.d_raw.resize((size_t)(N * E));
    if (c.n_expert > 0) {
      detail::moe_fwd(b, L, lin, A.h2.data(), N, A.d_raw.data(), &A.moe, pool);
    } else {
      A.g.resize((size_t)(N * F));
      A.u.resize((size_t)(N * F));
      if (!L.gate) {  // [gate; up] in ffn_up
        A.gu.resize((size_t)(N * 2 * F));
        lin.fwd(L.up, A.h2.data(), N, A.gu.data(), &A.u_up);
        take_cols(A.gu.data(), N, 2 * F, 0, F, A.g.data());
        take_cols(A.gu.data(), N, 2 * F, F, F, A.u.data());
      } else {
        lin.fwd(L.gate, A.h2.data(), N, A.g.data(), &A.u_gate);
        lin.fwd(L.up, A.h2.data(), N, A.u.data(), &A.u_up);
      }
      A.a.resize((size_t)(N * F));
      if (gelu) ops::geglu_fwd(A.g.data(), A.u.data(), N * F, A.a.data(), pool);
      else ops::swiglu_fwd(A.g.data(), A.u.data(), N * F, A.a.data(), pool);
      lin.fwd(L.down, A.a.data(), N, A.d_raw.data(), &A.u_down);
    }
    std::vector<T> dn = A.d_raw;
    if (!L.post_ffn_norm.empty()) norm_fwd(A.d_raw.data(), as_t<T>(L.post_ffn_norm), N, E, eps, dn.data(), A.rd, pool);
    for (size_t i = 0; i < x.size(); ++i) x[i] += rs * dn[i];
  }
  const std::vector<T> onorm = as_t<T>(b.output_norm);
  std::vector<T> rf, hf((size_t)(N * E));
  norm_fwd(x.data(), onorm, N, E, eps, hf.data(), rf, pool);
  std::vector<T> logits((size_t)(N * V));
  lin.fwd(b.output, hf.data(), N, logits.data(), nullptr);
  const T ls = (T)c.logit_scale, fcap = (T)c.final_softcap;
  if (ls != (T)1)
    for (T& z : logits) z /= ls;
  std::vector<T> capped;
  if (fcap > 0) {
    for (T& z : logits) z = fcap * std::tanh(z / fcap);
    capped = logits;
  }
  if (logits_out) *logits_out = logits;
  const double loss = ops::cross_entropy(logits.data(), targets, N, V, grad != nullptr, pool);
  if (!grad) return loss;

  // Backward: logits now hold d loss / d logits.
  if (fcap > 0)
    for (size_t i = 0; i < logits.size(); ++i) {
      const T t = capped[i] / fcap;
      logits[i] *= (T)1 - t * t;
    }
  if (ls != (T)1)
    for (T& z : logits) z /= ls;
  std::vector<T> dhf((size_t)(N * E)), dx((size_t)(N * E));
  lin.bwd(b.output, hf.data(), logits.data(), N, nullptr, dhf.data(), false);
  logits = {};
  norm_bwd(x.data(), onorm, rf, dhf.data(), N, E, dx.data(), false, pool);
  std::vector<T> dh, dtmp, da, dg, du, dgu, datt, dq, dk, dv, dqkv, dpre;
  for (int64_t l = (int64_t)b.layers.size() - 1; l >= 0; --l) {
    const FrozenLayer& L = b.layers[l];
    Acts<T>& A = acts[l];
    // Feed-forward: x_out = x_mid + rs * post_norm(down(act(gate h2) * up h2)); dx holds d x_out.
    dtmp.resize(dx.size());
    for (size_t i = 0; i < dx.size(); ++i) dtmp[i] = rs * dx[i];
    if (!L.post_ffn_norm.empty()) {
      std::vector<T> d2(dx.size());
      norm_bwd(A.d_raw.data(), as_t<T>(L.post_ffn_norm), A.rd, dtmp.data(), N, E, d2.data(), false, pool);
      dtmp.swap(d2);
    }
    dh.resize((size_t)(N * E));
    if (c.n_expert > 0) {
      detail::moe_bwd(b, L, lin, A.h2.data(), dtmp.data(), N, A.moe, dh.data(), pool);
    } else {
      da.resize((size_t)(N * F));
      lin.bwd(L.down, A.a.data(), dtmp.data(), N, &A.u_down, da.data(), false);
      dg.resize(da.size());
      du.resize(da.size());
      if (gelu) ops::geglu_bwd(A.g.data(), A.u.data(), da.data(), N * F, dg.data(), du.data(), pool);
      else ops::swiglu_bwd(A.g.data(), A.u.data(), da.data(), N * F, dg.data(), du.data(), pool);
      if (!L.gate) {
        dgu.resize((size_t)(N * 2 * F));
        put_cols(dg.data(), N, 2 * F, 0, F, dgu.data());
        put_cols(du.data(), N, 2 * F, F, F, dgu.data());
        lin.bwd(L.up, A.h2.data(), dgu.data(), N, &A.u_up, dh.data(), false);
      } else {
        lin.bwd(L.gate, A.h2.data(), dg.data(), N, &A.u_gate, dh.data(), false);
        lin.bwd(L.up, A.h2.data(), du.data(), N, &A.u_up, dh.data(), true);
      }
    }
    if (!L.ffn_norm.empty()) norm_bwd(A.x_mid.data(), as_t<T>(L.ffn_norm), A.r2, dh.data(), N, E, dx.data(), true, pool);
    else
      for (size_t i = 0; i < dx.size(); ++i) dx[i] += dh[i];
    // Attention: x_mid = x_in + rs * post_norm(wo(attn(rope(norm(q)), rope(norm(k)), v))).
    for (size_t i = 0; i < dx.size(); ++i) dtmp[i] = rs * dx[i];
    if (!L.post_attn_norm.empty()) {
      std::vector<T> d2(dx.size());
      norm_bwd(A.o_raw.data(), as_t<T>(L.post_attn_norm), A.ro, dtmp.data(), N, E, d2.data(), false, pool);
      dtmp.swap(d2);
    }
    datt.resize((size_t)(N * Q));
    lin.bwd(L.o, A.att.data(), dtmp.data(), N, &A.u_o, datt.data(), false);
    dq.resize((size_t)(N * Q));
    dk.resize((size_t)(N * KV));
    dv.resize((size_t)(N * KV));
    ops::AttnOptions ao{c.attn_scale, c.attn_softcap, L.swa ? c.n_swa : 0};
    ops::attention_ext_bwd(as, ao, A.q.data(), A.k.data(), A.v.data(), A.p.data(), A.capped.data(), datt.data(), dq.data(),
                           dk.data(), dv.data(), pool);
    const std::vector<float>& fr = L.swa ? b.freqs_swa : b.freqs;
    if (L.rope) {
      ops::rope_ext(dq.data(), n_seq, len, c.n_head, hd, c.n_rot, fr.data(), L.swa ? b.rope_mag_swa : b.rope_mag, neox, true, pool);
      ops::rope_ext(dk.data(), n_seq, len, c.n_head_kv, hd, c.n_rot, fr.data(), L.swa ? b.rope_mag_swa : b.rope_mag, neox, true, pool);
    }
    if (!L.q_norm.empty()) {
      dpre.resize(dq.size());
      norm_bwd(A.q_pre.data(), as_t<T>(L.q_norm), A.qr, dq.data(), N * c.n_head, hd, dpre.data(), false, pool);
      dq.swap(dpre);
    }
    if (!L.k_norm.empty()) {
      dpre.resize(dk.size());
      norm_bwd(A.k_pre.data(), as_t<T>(L.k_norm), A.kr, dk.data(), N * c.n_head_kv, hd, dpre.data(), false, pool);
      dk.swap(dpre);
    }
    if (L.qkv) {
      dqkv.resize((size_t)(N * (Q + 2 * KV)));
      put_cols(dq.data(), N, Q + 2 * KV, 0, Q, dqkv.data());
      put_cols(dk.data(), N, Q + 2 * KV, Q, KV, dqkv.data());
      put_cols(dv.data(), N, Q + 2 * KV, Q + KV, KV, dqkv.data());
      lin.bwd(L.qkv, A.h1.data(), dqkv.data(), N, &A.u_qkv, dh.data(), false);
    } else {
      lin.bwd(L.q, A.h1.data(), dq.data(), N, &A.u_q, dh.data(), false);
      lin.bwd(L.k, A.h1.data(), dk.data(), N, &A.u_k, dh.data(), true);
      lin.bwd(L.v, A.h1.data(), dv.data(), N, &A.u_v, dh.data(), true);
    }
    if (!L.attn_norm.empty()) norm_bwd(A.x_in.data(), as_t<T>(L.attn_norm), A.r1, dh.data(), N, E, dx.data(), true, pool);
    else
      for (size_t i = 0; i < dx.size(); ++i) dx[i] += dh[i];
    A = Acts<T>();  // free as we go
  }
  return loss;
}

template double lora_loss_grad<float>(const LoraBase&, const LoraSet&, const float*, float*, const int32_t*, const int32_t*, int64_t,
                                      int64_t, ThreadPool&, std::vector<float>*);
template double lora_loss_grad<double>(const LoraBase&, const LoraSet&, const double*, double*, const int32_t*, const int32_t*,
                                       int64_t, int64_t, ThreadPool&, std::vector<double>*);

}  // namespace modu::train
