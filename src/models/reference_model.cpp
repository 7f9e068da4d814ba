// Float64 reference decoder and random-model writer for the models tests (independent of modu's
// forward pass: own rope, attention, norms, in double precision).
#include "reference_model.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <random>
#include <stdexcept>

namespace modu::testing {

namespace {

using Mat = std::vector<double>;  // row-major [rows, cols]

struct RefTensor {
  std::vector<int64_t> shape;
  Mat data;
};

RefTensor read_tensor(const GgufFile& f, const std::string& name) {
  const GgufTensor* t = f.tensor(name);
  if (t == nullptr) throw std::runtime_error("reference: missing " + name);
  std::vector<float> tmp(t->n_elements());
  dtype_traits(t->dtype)->dequantize(t->data, tmp.data(), t->n_elements());
  return {t->shape, Mat(tmp.begin(), tmp.end())};
}

bool has(const GgufFile& f, const std::string& name) { return f.tensor(name) != nullptr; }

// Rows [r0, r0 + n) of a matrix (splits fused tensors).
RefTensor rows_of(const RefTensor& t, int64_t r0, int64_t n) {
  const int64_t cols = t.shape[0];
  return {{cols, n}, Mat(t.data.begin() + r0 * cols, t.data.begin() + (r0 + n) * cols)};
}

// y[r] = sum_c W[r, c] x[c]
std::vector<double> matvec(const RefTensor& w, const std::vector<double>& x) {
  const int64_t cols = w.shape[0], rows = w.shape[1];
  std::vector<double> y(rows, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0;
    for (int64_t c = 0; c < cols; ++c) s += w.data[r * cols + c] * x[c];
    y[r] = s;
  }
  return y;
}

std::vector<double> rmsnorm(const std::vector<double>& x, size_t off, size_t n, const Mat& w, double eps) {
  double ss = 0;
  for (size_t i = 0; i < n; ++i) ss += x[off + i] * x[off + i];
  const double s = 1.0 / std::sqrt(ss / n + eps);
  std::vector<double> y(n);
  for (size_t i = 0; i < n; ++i) y[i] = x[off + i] * s * w[i];
  return y;
}

// Rotary angles for pair i at position pos, with the scaling method; returns (theta, magnitude).
// mpos (M-RoPE): the (t, h, w) positions; pair i uses the one of its section of s.rope_sections
// (the HF layout: cos/sin split by mrope_section, chunk k taken from position set k).
void ref_rope(std::vector<double>& v, size_t off, const TestModelSpec& s, bool neox, int64_t pos0,
              const std::vector<double>& freq_factors, const int64_t* mpos = nullptr) {
  const int64_t n_rot = s.n_rot ? s.n_rot : s.head_dim;
  const int64_t half = n_rot / 2;
  for (int64_t i = 0; i < half; ++i) {
    int64_t pos = pos0;
    if (mpos != nullptr) {  // pairs past the t, h, w sections turn with t
      int64_t acc = 0;
      for (int64_t k = 0; k < 3 && k < (int64_t)s.rope_sections.size(); ++k) {
        if (i >= acc && i < acc + s.rope_sections[k]) pos = mpos[k];
        acc += s.rope_sections[k];
      }
      if (i >= acc) pos = mpos[0];
    }
    double freq = std::pow(s.rope_theta, -2.0 * i / n_rot);
    double mag = 1.0;
    double theta;
    if (s.longrope) {
      theta = pos * freq / freq_factors[i];
      mag = s.attn_factor;
    } else if (s.scaling == "llama3") {
      if (!freq_factors.empty()) {
        freq /= freq_factors[i];
      } else {
        const double lo = 1.0, hi = 4.0;  // default low/high freq factors
        const double wavelen = 2 * M_PI / freq;
        const double lo_w = s.orig_ctx / lo, hi_w = s.orig_ctx / hi;
        if (wavelen > lo_w) freq = freq / s.scaling_factor;
        else if (wavelen >= hi_w) {
          const double sm = (s.orig_ctx / wavelen - lo) / (hi - lo);
          freq = (1 - sm) * freq / s.scaling_factor + sm * freq;
        }
      }
      theta = pos * freq;
    } else if (s.scaling == "linear") {
      theta = pos * freq / s.scaling_factor;
    } else if (s.scaling == "yarn") {
      const double fs = 1.0 / s.scaling_factor;
      auto corr = [&](double beta) { return n_rot * std::log(s.orig_ctx / (beta * 2 * M_PI)) / (2 * std::log(s.rope_theta)); };
      const double lo = std::max(0.0, std::floor(corr(32.0)));
      const double hi = std::min((double)n_rot - 1, std::ceil(corr(1.0)));
      const double y = (i - lo) / std::max(0.001, hi - lo);
      const double ramp = 1.0 - std::min(1.0, std::max(0.0, y));
      const double extrap = pos * freq, interp = fs * extrap;
      theta = interp * (1 - ramp) + extrap * ramp;
      mag = 1.0 + 0.1 * std::log(1.0 / fs);
    } else {
      theta = pos * freq;
    }
    const int64_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
    const double x0 = v[off + a], x1 = v[off + b];
    v[off + a] = (x0 * std::cos(theta) - x1 * std::sin(theta)) * mag;
    v[off + b] = (x0 * std::sin(theta) + x1 * std::cos(theta)) * mag;
  }
}

// down(act(gate h) * up h), act = SiLU or tanh-GELU, with tensors ffn_{gate,up,down}<suffix>.weight.
std::vector<double> ref_swiglu(const GgufFile& f, const std::string& b, const std::string& suffix,
                               const std::vector<double>& h, bool gelu = false) {
  const bool fused = !has(f, b + "ffn_gate" + suffix + ".weight");  // Phi-3: [gate; up] in ffn_up
  const RefTensor up = read_tensor(f, b + "ffn_up" + suffix + ".weight");
  const int64_t ff = fused ? up.shape[1] / 2 : up.shape[1];
  const RefTensor wg = fused ? rows_of(up, 0, ff) : read_tensor(f, b + "ffn_gate" + suffix + ".weight"),
                  wu = fused ? rows_of(up, ff, ff) : up, wd = read_tensor(f, b + "ffn_down" + suffix + ".weight");
  auto g = matvec(wg, h), u = matvec(wu, h);
  for (size_t i = 0; i < g.size(); ++i) {
    const double x = g[i];
    g[i] = (gelu ? 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)))
                 : x / (1.0 + std::exp(-x))) * u[i];
  }
  return matvec(wd, g);
}

// Mixture of experts: softmax router, k best (ties: lower index), optional renormalization,
// weighted expert SwiGLUs, plus the sigmoid-gated shared expert when present.
std::vector<double> ref_moe(const GgufFile& f, const std::string& b, const TestModelSpec& s,
                            const std::vector<double>& h) {
  const int64_t ne = s.n_expert, d = s.n_embd;
  const RefTensor router = read_tensor(f, b + "ffn_gate_inp.weight");
  auto logit = matvec(router, h);
  double mx = *std::max_element(logit.begin(), logit.end()), sum = 0;
  std::vector<double> p(ne);
  for (int64_t e = 0; e < ne; ++e) sum += p[e] = std::exp(logit[e] - mx);
  for (auto& v : p) v /= sum;
  std::vector<bool> used(ne, false);
  std::vector<std::pair<int64_t, double>> top;
  for (int64_t i = 0; i < s.n_expert_used; ++i) {  // selection by repeated strict maximum
    int64_t best = -1;
    for (int64_t e = 0; e < ne; ++e)
      if (!used[e] && (best < 0 || logit[e] > logit[best])) best = e;
    used[best] = true;
    top.push_back({best, p[best]});
  }
  double tsum = 0;
  for (auto& [e, w] : top) tsum += w;
  std::vector<double> out(d, 0.0);
  for (auto& [e, w] : top) {
    const double weight = s.norm_topk ? w / tsum : w;
    // One expert's slices of the 3-D tensors.
    auto slice = [&](const char* name) {
      RefTensor t = read_tensor(f, b + name);
      const int64_t per = t.shape[0] * t.shape[1];
      return RefTensor{{t.shape[0], t.shape[1]}, Mat(t.data.begin() + e * per, t.data.begin() + (e + 1) * per)};
    };
    const RefTensor g = slice("ffn_gate_exps.weight"), u = slice("ffn_up_exps.weight"), dn = slice("ffn_down_exps.weight");
    auto a = matvec(g, h), c = matvec(u, h);
    for (size_t i = 0; i < a.size(); ++i) a[i] = a[i] / (1.0 + std::exp(-a[i])) * c[i];
    auto y = matvec(dn, a);
    for (int64_t i = 0; i < d; ++i) out[i] += weight * y[i];
  }
  if (s.shared_expert) {
    const RefTensor sg = read_tensor(f, b + "ffn_gate_inp_shexp.weight");
    double z = 0;
    for (int64_t i = 0; i < d; ++i) z += sg.data[i] * h[i];
    const double gate = 1.0 / (1.0 + std::exp(-z));
    auto y = ref_swiglu(f, b, "_shexp", h);
    for (int64_t i = 0; i < d; ++i) out[i] += gate * y[i];
  }
  return out;
}

void put(GgufWriter& w, const std::string& name, const std::vector<int64_t>& shape, const std::vector<float>& data,
         DType dt) {
  Status s = w.add_tensor_f32(name, dt, shape, data.data());
  if (!s.ok()) throw std::runtime_error(s.to_string());
}

}  // namespace

std::vector<uint8_t> make_random_model(const TestModelSpec& s) {
  std::mt19937_64 rng(s.seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  auto randn = [&](int64_t n, float scale, float mean = 0.0f) {
    std::vector<float> v(n);
    for (auto& x : v) x = mean + scale * nd(rng);
    return v;
  };
  GgufWriter w;
  const std::string a = s.arch + ".";
  w.set("general.architecture", GgufValue::string(s.arch));
  w.set("general.name", GgufValue::string("modu-test-" + s.arch));
  w.set(a + "context_length", GgufValue::u32((uint32_t)s.n_ctx));
  w.set(a + "embedding_length", GgufValue::u32((uint32_t)s.n_embd));
  w.set(a + "block_count", GgufValue::u32((uint32_t)s.n_layer));
  w.set(a + "feed_forward_length", GgufValue::u32((uint32_t)s.n_ff));
  w.set(a + "attention.head_count", GgufValue::u32((uint32_t)s.n_head));
  w.set(a + "attention.head_count_kv", GgufValue::u32((uint32_t)s.n_head_kv));
  w.set(a + "attention.key_length", GgufValue::u32((uint32_t)s.head_dim));
  w.set(a + "attention.value_length", GgufValue::u32((uint32_t)s.head_dim));
  w.set(a + "attention.layer_norm_rms_epsilon", GgufValue::f32((float)s.rms_eps));
  w.set(a + "rope.freq_base", GgufValue::f32((float)s.rope_theta));
  if (!s.rope_sections.empty()) {
    std::vector<int32_t> sec(s.rope_sections.begin(), s.rope_sections.end());
    w.set(a + "rope.dimension_sections", GgufValue::i32_array(sec));
  }
  if (s.n_rot) w.set(a + "rope.dimension_count", GgufValue::u32((uint32_t)s.n_rot));
  if (s.n_expert > 0) {
    w.set(a + "expert_count", GgufValue::u32((uint32_t)s.n_expert));
    w.set(a + "expert_used_count", GgufValue::u32((uint32_t)s.n_expert_used));
    w.set(a + "expert_feed_forward_length", GgufValue::u32((uint32_t)s.n_ff_exp));
    if (s.shared_expert) w.set(a + "expert_shared_feed_forward_length", GgufValue::u32((uint32_t)s.n_ff_shexp));
    w.set(a + "expert_weights_norm", GgufValue::boolean(s.norm_topk));
  }
  if (s.n_swa > 0) w.set(a + "attention.sliding_window", GgufValue::u32((uint32_t)s.n_swa));
  if (!s.swa_layers.empty()) {
    std::vector<GgufValue> pat;
    for (bool b : s.swa_layers) pat.push_back(GgufValue::boolean(b));
    w.set(a + "attention.sliding_window_pattern", GgufValue::array(GgufType::BOOL, pat));
  }
  if (s.embd_mult > 0) w.set(a + "embedding_scale", GgufValue::f32((float)s.embd_mult));
  if (s.residual_mult > 0) w.set(a + "residual_scale", GgufValue::f32((float)s.residual_mult));
  if (s.logit_scale > 0) w.set(a + "logit_scale", GgufValue::f32((float)s.logit_scale));
  if (s.rope_theta_swa > 0) w.set(a + "rope.freq_base_swa", GgufValue::f32((float)s.rope_theta_swa));
  if (s.attn_scale > 0) w.set(a + "attention.scale", GgufValue::f32((float)s.attn_scale));
  if (s.attn_softcap > 0) w.set(a + "attn_logit_softcapping", GgufValue::f32((float)s.attn_softcap));
  if (s.final_softcap > 0) w.set(a + "final_logit_softcapping", GgufValue::f32((float)s.final_softcap));
  const int64_t n_rot = s.n_rot ? s.n_rot : s.head_dim;
  if (s.scaling != "none" && !(s.scaling == "llama3" && s.rope_freqs_tensor)) {
    w.set(a + "rope.scaling.type", GgufValue::string(s.scaling));
    w.set(a + "rope.scaling.factor", GgufValue::f32((float)s.scaling_factor));
    w.set(a + "rope.scaling.original_context_length", GgufValue::u32((uint32_t)s.orig_ctx));
  }
  if (s.scaling == "llama3" && s.rope_freqs_tensor) {
    std::vector<float> ff(n_rot / 2);
    for (size_t i = 0; i < ff.size(); ++i) ff[i] = 1.0f + (float)i * 0.25f;
    put(w, "rope_freqs.weight", {n_rot / 2}, ff, DType::F32);
  }
  const int64_t d = s.n_embd, qd = s.n_head * s.head_dim, kvd = s.n_head_kv * s.head_dim;
  if (s.longrope) {
    std::vector<float> sh(n_rot / 2), lo(n_rot / 2);
    for (int64_t i = 0; i < n_rot / 2; ++i) { sh[i] = 1.0f + 0.1f * (float)i; lo[i] = 1.0f + 0.5f * (float)i; }
    put(w, "rope_factors_short.weight", {n_rot / 2}, sh, DType::F32);
    put(w, "rope_factors_long.weight", {n_rot / 2}, lo, DType::F32);
    w.set(a + "rope.scaling.attn_factor", GgufValue::f32((float)s.attn_factor));
    w.set(a + "rope.scaling.original_context_length", GgufValue::u32((uint32_t)s.orig_ctx));
  }
  put(w, "token_embd.weight", {d, s.n_vocab}, randn(d * s.n_vocab, 1.0f), s.embd_type);
  put(w, "output_norm.weight", {d}, randn(d, 0.1f, 1.0f), DType::F32);
  if (!s.tied_output) put(w, "output.weight", {d, s.n_vocab}, randn(d * s.n_vocab, 1.0f / std::sqrt((float)d)), s.weight_type);
  for (int64_t l = 0; l < s.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    if (!s.no_pre_norms) put(w, b + "attn_norm.weight", {d}, randn(d, 0.1f, 1.0f), DType::F32);
    if (s.fused) {
      put(w, b + "attn_qkv.weight", {d, qd + 2 * kvd}, randn(d * (qd + 2 * kvd), 1.0f / std::sqrt((float)d)), s.weight_type);
    } else {
      put(w, b + "attn_q.weight", {d, qd}, randn(d * qd, 1.0f / std::sqrt((float)d)), s.weight_type);
      put(w, b + "attn_k.weight", {d, kvd}, randn(d * kvd, 1.0f / std::sqrt((float)d)), s.weight_type);
      put(w, b + "attn_v.weight", {d, kvd}, randn(d * kvd, 1.0f / std::sqrt((float)d)), s.weight_type);
    }
    put(w, b + "attn_output.weight", {qd, d}, randn(qd * d, 1.0f / std::sqrt((float)qd)), s.weight_type);
    if (s.qkv_bias) {
      put(w, b + "attn_q.bias", {qd}, randn(qd, 0.1f), DType::F32);
      put(w, b + "attn_k.bias", {kvd}, randn(kvd, 0.1f), DType::F32);
      put(w, b + "attn_v.bias", {kvd}, randn(kvd, 0.1f), DType::F32);
    }
    if (s.qk_norm) {
      put(w, b + "attn_q_norm.weight", {s.head_dim}, randn(s.head_dim, 0.1f, 1.0f), DType::F32);
      put(w, b + "attn_k_norm.weight", {s.head_dim}, randn(s.head_dim, 0.1f, 1.0f), DType::F32);
    }
    if (!s.no_pre_norms) put(w, b + "ffn_norm.weight", {d}, randn(d, 0.1f, 1.0f), DType::F32);
    if (s.post_norms) {
      put(w, b + "post_attention_norm.weight", {d}, randn(d, 0.1f, 1.0f), DType::F32);
      put(w, b + "post_ffw_norm.weight", {d}, randn(d, 0.1f, 1.0f), DType::F32);
    }
    if (s.n_expert > 0) {
      const int64_t ne = s.n_expert, fe = s.n_ff_exp, fs = s.n_ff_shexp;
      auto router = randn(d * ne, 2.0f / std::sqrt((float)d));
      if (s.router_ties)
        for (int64_t e = 1; e < ne; e += 2) std::copy(router.begin() + (e - 1) * d, router.begin() + e * d, router.begin() + e * d);
      put(w, b + "ffn_gate_inp.weight", {d, ne}, router, DType::F32);
      put(w, b + "ffn_gate_exps.weight", {d, fe, ne}, randn(d * fe * ne, 1.0f / std::sqrt((float)d)), s.weight_type);
      put(w, b + "ffn_up_exps.weight", {d, fe, ne}, randn(d * fe * ne, 1.0f / std::sqrt((float)d)), s.weight_type);
      put(w, b + "ffn_down_exps.weight", {fe, d, ne}, randn(fe * d * ne, 1.0f / std::sqrt((float)fe)), s.weight_type);
      if (s.shared_expert) {
        put(w, b + "ffn_gate_inp_shexp.weight", {d}, randn(d, 1.0f / std::sqrt((float)d)), DType::F32);
        put(w, b + "ffn_gate_shexp.weight", {d, fs}, randn(d * fs, 1.0f / std::sqrt((float)d)), s.weight_type);
        put(w, b + "ffn_up_shexp.weight", {d, fs}, randn(d * fs, 1.0f / std::sqrt((float)d)), s.weight_type);
        put(w, b + "ffn_down_shexp.weight", {fs, d}, randn(fs * d, 1.0f / std::sqrt((float)fs)), s.weight_type);
      }
      continue;
    }
    if (s.fused) {
      put(w, b + "ffn_up.weight", {d, 2 * s.n_ff}, randn(d * 2 * s.n_ff, 1.0f / std::sqrt((float)d)), s.weight_type);
    } else {
      put(w, b + "ffn_gate.weight", {d, s.n_ff}, randn(d * s.n_ff, 1.0f / std::sqrt((float)d)), s.weight_type);
      put(w, b + "ffn_up.weight", {d, s.n_ff}, randn(d * s.n_ff, 1.0f / std::sqrt((float)d)), s.weight_type);
    }
    put(w, b + "ffn_down.weight", {s.n_ff, d}, randn(s.n_ff * d, 1.0f / std::sqrt((float)s.n_ff)), s.weight_type);
  }
  return w.serialize();
}

std::vector<std::vector<double>> reference_logits(const GgufFile& f, const TestModelSpec& s,
                                                  const std::vector<int32_t>& tokens,
                                                  const std::vector<RefEmbdSpan>& spans) {
  const bool neox = s.arch == "qwen2" || s.arch == "qwen2vl" || s.arch == "qwen3" || s.arch == "qwen2moe" || s.arch == "qwen3moe" ||
                    s.arch == "gemma2" || s.arch == "gemma3" || s.arch == "exaone" || s.arch == "exaone4" ||
                    s.arch == "phi3";
  const int64_t T = (int64_t)tokens.size(), d = s.n_embd, hd = s.head_dim;
  const int64_t qd = s.n_head * hd, kvd = s.n_head_kv * hd, group = s.n_head / s.n_head_kv;
  std::vector<double> freq_factors;
  if (has(f, "rope_freqs.weight")) freq_factors = read_tensor(f, "rope_freqs.weight").data;
  if (s.longrope)
    freq_factors = read_tensor(f, s.n_ctx > s.orig_ctx ? "rope_factors_long.weight" : "rope_factors_short.weight").data;
  const RefTensor emb = read_tensor(f, "token_embd.weight");
  std::vector<std::vector<double>> x(T, std::vector<double>(d));
  // M-RoPE positions as HF's get_rope_index assigns them: text tokens count on from the previous
  // maximum + 1 in all three, an image of gh x gw tokens takes (st, st + row, st + column).
  std::vector<std::array<int64_t, 3>> mp(T);
  {
    int64_t next = 0;
    for (int64_t t = 0; t < T;) {
      const RefEmbdSpan* sp = nullptr;
      for (const RefEmbdSpan& e : spans)
        if (e.pos == t && e.mrope) sp = &e;
      if (sp == nullptr) {
        mp[t] = {next, next, next};
        ++next;
        ++t;
        continue;
      }
      int64_t mx = next;
      for (int64_t j = 0; j < sp->n; ++j) {
        mp[t + j] = {next, next + j / sp->grid_w, next + j % sp->grid_w};
        mx = std::max({mx, mp[t + j][1], mp[t + j][2]});
      }
      next = mx + 1;
      t += sp->n;
    }
  }
  const bool mrope = !s.rope_sections.empty();
  // last[t]: the last position token t attends to (t, or the end of its bidirectional span).
  std::vector<int64_t> last(T);
  for (int64_t t = 0; t < T; ++t) {
    last[t] = t;
    const RefEmbdSpan* sp = nullptr;
    for (const RefEmbdSpan& e : spans)
      if (t >= e.pos && t < e.pos + e.n) sp = &e;
    if (sp != nullptr) {  // given embeddings, used as they are (no embedding scale)
      for (int64_t i = 0; i < d; ++i) x[t][i] = sp->rows[(t - sp->pos) * d + i];
      if (sp->bidirectional) last[t] = sp->pos + sp->n - 1;
      continue;
    }
    for (int64_t i = 0; i < d; ++i) x[t][i] = emb.data[tokens[t] * d + i] * (s.embd_scale ? std::sqrt((double)d) : 1.0) *
                               (s.embd_mult > 0 ? s.embd_mult : 1.0);
  }

  for (int64_t l = 0; l < s.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    const RefTensor an = s.no_pre_norms ? RefTensor{} : read_tensor(f, b + "attn_norm.weight"),
                    wq = s.fused ? rows_of(read_tensor(f, b + "attn_qkv.weight"), 0, qd) : read_tensor(f, b + "attn_q.weight"),
                    wk = s.fused ? rows_of(read_tensor(f, b + "attn_qkv.weight"), qd, kvd) : read_tensor(f, b + "attn_k.weight"),
                    wv = s.fused ? rows_of(read_tensor(f, b + "attn_qkv.weight"), qd + kvd, kvd)
                                 : read_tensor(f, b + "attn_v.weight"),
                    wo = read_tensor(f, b + "attn_output.weight"),
                    fn = s.no_pre_norms ? RefTensor{} : read_tensor(f, b + "ffn_norm.weight");
    std::vector<std::vector<double>> Q(T), K(T), V(T);
    const bool swa = s.n_swa > 0 && (s.swa_layers.empty() ? s.swa_pattern > 1 && l % s.swa_pattern < s.swa_pattern - 1
                                                          : (bool)s.swa_layers[l]);
    const bool use_rope = !(s.nope_global && s.n_swa > 0 && !swa);
    TestModelSpec rs = s;  // windowed layers rotate with their own base, unscaled
    if (swa && s.rope_theta_swa > 0) {
      rs.rope_theta = s.rope_theta_swa;
      rs.scaling = "none";
    }
    const double scale = s.attn_scale > 0 ? s.attn_scale : 1.0 / std::sqrt((double)hd);
    for (int64_t t = 0; t < T; ++t) {
      auto h = s.no_pre_norms ? x[t] : rmsnorm(x[t], 0, d, an.data, s.rms_eps);
      Q[t] = matvec(wq, h);
      K[t] = matvec(wk, h);
      V[t] = matvec(wv, h);
      if (s.qkv_bias) {
        auto bq = read_tensor(f, b + "attn_q.bias"), bk = read_tensor(f, b + "attn_k.bias"),
             bv = read_tensor(f, b + "attn_v.bias");
        for (int64_t i = 0; i < qd; ++i) Q[t][i] += bq.data[i];
        for (int64_t i = 0; i < kvd; ++i) { K[t][i] += bk.data[i]; V[t][i] += bv.data[i]; }
      }
      if (s.qk_norm) {
        auto qn = read_tensor(f, b + "attn_q_norm.weight"), kn = read_tensor(f, b + "attn_k_norm.weight");
        for (int64_t hh = 0; hh < s.n_head; ++hh) {
          auto y = rmsnorm(Q[t], hh * hd, hd, qn.data, s.rms_eps);
          std::copy(y.begin(), y.end(), Q[t].begin() + hh * hd);
        }
        for (int64_t hh = 0; hh < s.n_head_kv; ++hh) {
          auto y = rmsnorm(K[t], hh * hd, hd, kn.data, s.rms_eps);
          std::copy(y.begin(), y.end(), K[t].begin() + hh * hd);
        }
      }
      if (!use_rope) continue;
      const int64_t* mpos = mrope ? mp[t].data() : nullptr;
      for (int64_t hh = 0; hh < s.n_head; ++hh) ref_rope(Q[t], hh * hd, rs, neox, t, freq_factors, mpos);
      for (int64_t hh = 0; hh < s.n_head_kv; ++hh) ref_rope(K[t], hh * hd, rs, neox, t, freq_factors, mpos);
    }
    for (int64_t t = 0; t < T; ++t) {
      std::vector<double> att(qd, 0.0);
      for (int64_t hh = 0; hh < s.n_head; ++hh) {
        const int64_t kh = hh / group;
        std::vector<double> sc(last[t] + 1, 0.0);
        double mx = -1e300;
        const int64_t first = swa ? std::max<int64_t>(0, t - s.n_swa + 1) : 0;  // key p visible iff t - p < window
        for (int64_t p = first; p <= last[t]; ++p) {
          double dot = 0;
          for (int64_t i = 0; i < hd; ++i) dot += Q[t][hh * hd + i] * K[p][kh * hd + i];
          sc[p] = dot * scale;
          if (s.attn_softcap > 0) sc[p] = s.attn_softcap * std::tanh(sc[p] / s.attn_softcap);
          mx = std::max(mx, sc[p]);
        }
        double sum = 0;
        for (int64_t p = first; p <= last[t]; ++p) { sc[p] = std::exp(sc[p] - mx); sum += sc[p]; }
        for (int64_t p = first; p <= last[t]; ++p)
          for (int64_t i = 0; i < hd; ++i) att[hh * hd + i] += sc[p] / sum * V[p][kh * hd + i];
      }
      auto o = matvec(wo, att);
      if (s.post_norms) o = rmsnorm(o, 0, d, read_tensor(f, b + "post_attention_norm.weight").data, s.rms_eps);
      const double rmul = s.residual_mult > 0 ? s.residual_mult : 1.0;
      for (int64_t i = 0; i < d; ++i) x[t][i] += rmul * o[i];
      auto h = s.no_pre_norms ? x[t] : rmsnorm(x[t], 0, d, fn.data, s.rms_eps);
      auto dn = s.n_expert > 0 ? ref_moe(f, b, s, h) : ref_swiglu(f, b, "", h, s.gelu);
      if (s.post_norms) dn = rmsnorm(dn, 0, d, read_tensor(f, b + "post_ffw_norm.weight").data, s.rms_eps);
      for (int64_t i = 0; i < d; ++i) x[t][i] += rmul * dn[i];
    }
  }
  const RefTensor on = read_tensor(f, "output_norm.weight");
  const RefTensor out = has(f, "output.weight") ? read_tensor(f, "output.weight") : emb;
  std::vector<std::vector<double>> logits(T);
  for (int64_t t = 0; t < T; ++t) {
    logits[t] = matvec(out, rmsnorm(x[t], 0, d, on.data, s.rms_eps));
    if (s.logit_scale > 0)
      for (auto& v : logits[t]) v /= s.logit_scale;
    if (s.final_softcap > 0)
      for (auto& v : logits[t]) v = s.final_softcap * std::tanh(v / s.final_softcap);
  }
  return logits;
}

// The base with each adapted matrix replaced by W + sum_i s_i B_i A_i, computed in float64 and
// stored as F32.
std::vector<uint8_t> merge_lora(const GgufFile& base, const std::vector<std::pair<LoraPairs, double>>& adapters) {
  GgufWriter w;
  for (const auto& [k, v] : base.metadata())
    if (k != "general.alignment") w.set(k, v);
  for (const GgufTensor& t : base.tensors()) {
    if (!adapters.front().first.count(t.name)) {
      if (!w.add_tensor(t.name, t.dtype, t.shape, t.data, t.nbytes).ok()) throw std::runtime_error("merge_lora: " + t.name);
      continue;
    }
    const int64_t cols = t.shape[0], rows = t.shape[1];
    std::vector<float> row(cols), out(rows * cols);
    const size_t rb = dtype_row_bytes(t.dtype, cols);
    for (int64_t r = 0; r < rows; ++r) {
      dtype_traits(t.dtype)->dequantize(t.data + r * rb, row.data(), cols);
      for (int64_t c = 0; c < cols; ++c) {
        double d = row[c];
        for (const auto& [pairs, s] : adapters) {
          const auto& [a, b] = pairs.at(t.name);
          const int64_t rank = (int64_t)a.size() / cols;
          for (int64_t k = 0; k < rank; ++k) d += s * b[r * rank + k] * a[k * cols + c];
        }
        out[r * cols + c] = (float)d;
      }
    }
    if (!w.add_tensor_f32(t.name, DType::F32, t.shape, out.data()).ok()) throw std::runtime_error("merge_lora: " + t.name);
  }
  return w.serialize();
}

TestModelSpec arch_spec(const std::string& arch) {
  TestModelSpec s;
  s.arch = arch;
  if (arch == "qwen2") s.qkv_bias = true;
  if (arch == "qwen3") { s.qk_norm = true; s.head_dim = 24; }  // head_dim != n_embd / n_head
  if (arch == "mistral") { s.n_head = 8; s.n_head_kv = 2; s.head_dim = 8; }
  if (arch == "qwen2moe") {  // Qwen1.5-MoE: biases, 6 experts top-2 unnormalized, shared expert
    s.qkv_bias = true;
    s.n_expert = 6; s.n_expert_used = 2; s.shared_expert = true; s.norm_topk = false;
  }
  if (arch == "qwen3moe") { s.qk_norm = true; s.head_dim = 24; s.n_expert = 8; s.n_expert_used = 3; }
  if (arch == "granite") {  // Granite 3 multipliers
    s.embd_mult = 12.0; s.residual_mult = 0.22; s.attn_scale = 0.0078125 * 16; s.logit_scale = 8.0;
  }
  if (arch == "phi3") {  // fused QKV and gate/up; LongRoPE with long factors (n_ctx 256 > 64)
    s.fused = s.longrope = true;
    s.orig_ctx = 64;
    s.attn_factor = 1.19;
  }
  if (arch == "exaone") { s.scaling = "llama3"; s.scaling_factor = 8.0; s.orig_ctx = 32; }
  if (arch == "exaone4") {  // hybrid: three windowed layers, then a global one without rope
    s.qk_norm = s.post_norms = s.no_pre_norms = s.nope_global = true;
    s.n_layer = 5;
    s.n_swa = 6;
    s.swa_layers = {true, true, true, false, true};
  }
  if (arch == "gemma2" || arch == "gemma3") {
    s.post_norms = s.gelu = s.embd_scale = true;
    s.tied_output = true;
    s.n_swa = 7;
  }
  if (arch == "gemma2") {  // even layers windowed; small caps so capping changes the result
    s.swa_pattern = 2;
    s.attn_softcap = 1.5;
    s.final_softcap = 2.0;
  }
  if (arch == "gemma3") {  // five windowed layers then a global one; global rope base 1e6, linear x4
    s.qk_norm = true;
    s.n_layer = 7;
    s.swa_pattern = 6;
    s.rope_theta = 1e6;
    s.rope_theta_swa = 10000;
    s.scaling = "linear";
    s.scaling_factor = 4.0;
    s.attn_scale = 0.2;
  }
  return s;
}

}  // namespace modu::testing
