// Random mmproj files and the float64 reference of the vision encoders (see vision_reference.h).
#include "vision_reference.h"

#include <cmath>
#include <random>
#include <stdexcept>

namespace modu::testing {

namespace {

struct Gen {
  std::mt19937_64 rng;
  std::vector<float> normal(size_t n, double sd, double mean = 0) {
    std::normal_distribution<double> d(mean, sd);
    std::vector<float> v(n);
    for (float& x : v) x = (float)d(rng);
    return v;
  }
};

std::vector<double> read(const GgufFile& f, const std::string& name) {
  const GgufTensor* t = f.tensor(name);
  if (t == nullptr) throw std::runtime_error("reference: missing tensor " + name);
  const int64_t n = t->n_elements();
  std::vector<float> tmp(n);
  dtype_traits(t->dtype)->dequantize(t->data, tmp.data(), n);
  return std::vector<double>(tmp.begin(), tmp.end());
}

// y = W x (+ b) with W stored ne [cols, rows] (row r at r * cols).
std::vector<double> matvec(const std::vector<double>& W, const std::vector<double>& x, const std::vector<double>* b = nullptr) {
  const size_t cols = x.size(), rows = W.size() / cols;
  std::vector<double> y(rows);
  for (size_t r = 0; r < rows; ++r) {
    double s = b ? (*b)[r] : 0.0;
    for (size_t c = 0; c < cols; ++c) s += W[r * cols + c] * x[c];
    y[r] = s;
  }
  return y;
}

std::vector<double> layer_norm(const std::vector<double>& x, const std::vector<double>& w, const std::vector<double>& b,
                               double eps) {
  double m = 0, v = 0;
  for (double e : x) m += e;
  m /= x.size();
  for (double e : x) v += (e - m) * (e - m);
  v /= x.size();
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = (x[i] - m) / std::sqrt(v + eps) * w[i] + b[i];
  return y;
}

}  // namespace

std::vector<uint8_t> make_random_mmproj(const MmprojSpec& s) {
  Gen g{std::mt19937_64(s.seed)};
  GgufWriter w;
  const int64_t d = s.n_embd, p = s.patch_size, side = s.image_size / p;
  const bool cls = s.projector == "mlp";
  const int64_t n_pos = side * side + (cls ? 1 : 0);
  const int64_t n_blocks = s.feature_layer > 0 ? s.n_layer + 1 : s.n_layer;
  w.set("general.architecture", GgufValue::string("clip"));
  w.set("general.type", GgufValue::string("mmproj"));
  w.set("clip.projector_type", GgufValue::string(s.projector));
  w.set("clip.has_vision_encoder", GgufValue::boolean(true));
  w.set("clip.use_gelu", GgufValue::boolean(s.use_gelu));
  w.set("clip.vision.image_size", GgufValue::u32((uint32_t)s.image_size));
  w.set("clip.vision.patch_size", GgufValue::u32((uint32_t)p));
  w.set("clip.vision.embedding_length", GgufValue::u32((uint32_t)d));
  w.set("clip.vision.feed_forward_length", GgufValue::u32((uint32_t)s.n_ff));
  w.set("clip.vision.block_count", GgufValue::u32((uint32_t)n_blocks));
  w.set("clip.vision.projection_dim", GgufValue::u32((uint32_t)s.n_embd_text));
  w.set("clip.vision.attention.head_count", GgufValue::u32((uint32_t)s.n_head));
  w.set("clip.vision.attention.layer_norm_epsilon", GgufValue::f32(s.eps));
  w.set("clip.vision.image_mean", GgufValue::f32_array({0.48f, 0.46f, 0.41f}));
  w.set("clip.vision.image_std", GgufValue::f32_array({0.27f, 0.26f, 0.28f}));
  if (s.projector != "mlp") w.set("clip.vision.projector.scale_factor", GgufValue::u32((uint32_t)s.scale_factor));
  if (s.feature_layer > 0) w.set("clip.vision.feature_layer", GgufValue::i32_array({(int32_t)s.feature_layer}));
  auto add = [&](const std::string& name, DType t, std::vector<int64_t> shape, const std::vector<float>& v) {
    Status st = w.add_tensor_f32(name, t, shape, v.data());
    if (!st.ok()) throw std::runtime_error(st.to_string());
  };
  const DType mt = s.weight_type;
  add("v.patch_embd.weight", mt == DType::F32 ? DType::F32 : DType::F16, {p, p, 3, d},
      g.normal(3 * p * p * d, 1.0 / std::sqrt(3.0 * p * p)));
  if (!cls) add("v.patch_embd.bias", DType::F32, {d}, g.normal(d, 0.1));
  add("v.position_embd.weight", DType::F32, {d, n_pos}, g.normal(d * n_pos, 0.3));
  if (cls) {
    add("v.class_embd", DType::F32, {d}, g.normal(d, 0.5));
    add("v.pre_ln.weight", DType::F32, {d}, g.normal(d, 0.1, 1.0));
    add("v.pre_ln.bias", DType::F32, {d}, g.normal(d, 0.1));
  }
  const double sd = 1.0 / std::sqrt((double)d), sf = 1.0 / std::sqrt((double)s.n_ff);
  for (int64_t il = 0; il < n_blocks; ++il) {
    const std::string b = "v.blk." + std::to_string(il) + ".";
    for (const char* ln : {"ln1", "ln2"}) {
      add(b + ln + ".weight", DType::F32, {d}, g.normal(d, 0.1, 1.0));
      add(b + ln + ".bias", DType::F32, {d}, g.normal(d, 0.1));
    }
    for (const char* m : {"attn_q", "attn_k", "attn_v", "attn_out"}) {
      add(b + m + ".weight", mt, {d, d}, g.normal(d * d, sd));
      add(b + m + ".bias", DType::F32, {d}, g.normal(d, 0.05));
    }
    const std::string up = s.legacy_ffn_names ? "ffn_down" : "ffn_up", down = s.legacy_ffn_names ? "ffn_up" : "ffn_down";
    add(b + up + ".weight", mt, {d, s.n_ff}, g.normal(d * s.n_ff, sd));
    add(b + up + ".bias", DType::F32, {s.n_ff}, g.normal(s.n_ff, 0.05));
    add(b + down + ".weight", mt, {s.n_ff, d}, g.normal(d * s.n_ff, sf));
    add(b + down + ".bias", DType::F32, {d}, g.normal(d, 0.05));
  }
  add("v.post_ln.weight", DType::F32, {d}, g.normal(d, 0.1, 1.0));
  add("v.post_ln.bias", DType::F32, {d}, g.normal(d, 0.1));
  if (s.projector == "mlp") {
    add("mm.0.weight", mt, {d, s.mlp_hidden}, g.normal(d * s.mlp_hidden, sd));
    add("mm.0.bias", DType::F32, {s.mlp_hidden}, g.normal(s.mlp_hidden, 0.05));
    add("mm.2.weight", mt, {s.mlp_hidden, s.n_embd_text}, g.normal(s.mlp_hidden * s.n_embd_text, 1.0 / std::sqrt((double)s.mlp_hidden)));
    add("mm.2.bias", DType::F32, {s.n_embd_text}, g.normal(s.n_embd_text, 0.05));
  } else if (s.projector == "gemma3") {
    add("mm.soft_emb_norm.weight", DType::F32, {d}, g.normal(d, 0.1, 1.0));
    add("mm.input_projection.weight", mt == DType::F32 ? DType::F32 : DType::F16, {s.n_embd_text, d},
        g.normal(d * s.n_embd_text, sd));
  } else if (s.projector == "idefics3") {
    const int64_t cin = d * s.scale_factor * s.scale_factor;
    add("mm.model.fc.weight", mt, {cin, s.n_embd_text}, g.normal(cin * s.n_embd_text, 1.0 / std::sqrt((double)cin)));
  }
  return w.serialize();
}

std::vector<double> reference_image_embeddings(const GgufFile& f, const MmprojSpec& s, const std::vector<float>& chw,
                                               int W, int H) {
  const int64_t d = s.n_embd, p = s.patch_size, gw = W / p, gh = H / p, hd = d / s.n_head;
  const bool cls = s.projector == "mlp";
  // Patch embedding: a stride-p convolution, weight [d][3][p][p].
  const auto pw = read(f, "v.patch_embd.weight");
  std::vector<std::vector<double>> x;
  if (cls) x.push_back(read(f, "v.class_embd"));
  std::vector<double> pb(d, 0.0);
  if (f.tensor("v.patch_embd.bias")) pb = read(f, "v.patch_embd.bias");
  for (int64_t gy = 0; gy < gh; ++gy)
    for (int64_t gx = 0; gx < gw; ++gx) {
      std::vector<double> e(d);
      for (int64_t o = 0; o < d; ++o) {
        double acc = pb[o];
        for (int64_t c = 0; c < 3; ++c)
          for (int64_t ky = 0; ky < p; ++ky)
            for (int64_t kx = 0; kx < p; ++kx)
              acc += pw[((o * 3 + c) * p + ky) * p + kx] * chw[(size_t)c * W * H + (gy * p + ky) * W + gx * p + kx];
        e[o] = acc;
      }
      x.push_back(e);
    }
  const auto pos = read(f, "v.position_embd.weight");
  for (size_t t = 0; t < x.size(); ++t)
    for (int64_t i = 0; i < d; ++i) x[t][i] += pos[t * d + i];
  if (cls) {
    const auto w = read(f, "v.pre_ln.weight"), b = read(f, "v.pre_ln.bias");
    for (auto& r : x) r = layer_norm(r, w, b, s.eps);
  }
  const size_t T = x.size();
  for (int64_t il = 0; il < s.n_layer; ++il) {
    const std::string b = "v.blk." + std::to_string(il) + ".";
    auto R = [&](const std::string& n) { return read(f, b + n); };
    const std::string up = s.legacy_ffn_names ? "ffn_down" : "ffn_up", down = s.legacy_ffn_names ? "ffn_up" : "ffn_down";
    const auto l1w = R("ln1.weight"), l1b = R("ln1.bias"), l2w = R("ln2.weight"), l2b = R("ln2.bias");
    const auto wq = R("attn_q.weight"), bq = R("attn_q.bias"), wk = R("attn_k.weight"), bk = R("attn_k.bias");
    const auto wv = R("attn_v.weight"), bv = R("attn_v.bias"), wo = R("attn_out.weight"), bo = R("attn_out.bias");
    const auto wu = R(up + ".weight"), bu = R(up + ".bias"), wd = R(down + ".weight"), bd = R(down + ".bias");
    std::vector<std::vector<double>> Q(T), K(T), V(T);
    for (size_t t = 0; t < T; ++t) {
      const auto h = layer_norm(x[t], l1w, l1b, s.eps);
      Q[t] = matvec(wq, h, &bq);
      K[t] = matvec(wk, h, &bk);
      V[t] = matvec(wv, h, &bv);
    }
    for (size_t t = 0; t < T; ++t) {
      std::vector<double> att(d, 0.0);
      for (int64_t hh = 0; hh < s.n_head; ++hh) {
        std::vector<double> sc(T);
        double mx = -1e300;
        for (size_t u = 0; u < T; ++u) {
          double dot = 0;
          for (int64_t i = 0; i < hd; ++i) dot += Q[t][hh * hd + i] * K[u][hh * hd + i];
          sc[u] = dot / std::sqrt((double)hd);
          mx = std::max(mx, sc[u]);
        }
        double sum = 0;
        for (double& e : sc) sum += e = std::exp(e - mx);
        for (size_t u = 0; u < T; ++u)
          for (int64_t i = 0; i < hd; ++i) att[hh * hd + i] += sc[u] / sum * V[u][hh * hd + i];
      }
      const auto o = matvec(wo, att, &bo);
      for (int64_t i = 0; i < d; ++i) x[t][i] += o[i];
      auto u = matvec(wu, layer_norm(x[t], l2w, l2b, s.eps), &bu);
      for (double& e : u)
        e = s.use_gelu ? 0.5 * e * (1 + std::tanh(std::sqrt(2 / M_PI) * (e + 0.044715 * e * e * e)))
                       : e / (1 + std::exp(-1.702 * e));
      const auto dn = matvec(wd, u, &bd);
      for (int64_t i = 0; i < d; ++i) x[t][i] += dn[i];
    }
  }
  if (cls) {
    x.erase(x.begin());  // the class token is not an image token
  } else {
    const auto w = read(f, "v.post_ln.weight"), b = read(f, "v.post_ln.bias");
    for (auto& r : x) r = layer_norm(r, w, b, s.eps);
  }
  std::vector<double> out;
  if (s.projector == "mlp") {
    const auto w0 = read(f, "mm.0.weight"), b0 = read(f, "mm.0.bias"), w2 = read(f, "mm.2.weight"), b2 = read(f, "mm.2.bias");
    for (const auto& r : x) {
      auto h = matvec(w0, r, &b0);
      for (double& e : h) e = 0.5 * e * (1 + std::erf(e / std::sqrt(2.0)));
      const auto y = matvec(w2, h, &b2);
      out.insert(out.end(), y.begin(), y.end());
    }
  } else if (s.projector == "gemma3") {
    const int k = s.scale_factor;
    const auto nw = read(f, "mm.soft_emb_norm.weight"), P = read(f, "mm.input_projection.weight");  // P[i][j], i < d
    for (int64_t oy = 0; oy < gh / k; ++oy)
      for (int64_t ox = 0; ox < gw / k; ++ox) {
        std::vector<double> m(d, 0.0);
        for (int dy = 0; dy < k; ++dy)
          for (int dx = 0; dx < k; ++dx)
            for (int64_t i = 0; i < d; ++i) m[i] += x[(oy * k + dy) * gw + ox * k + dx][i] / (k * k);
        double ss = 0;
        for (double e : m) ss += e * e;
        const double inv = 1 / std::sqrt(ss / d + s.eps);
        for (int64_t i = 0; i < d; ++i) m[i] *= inv * nw[i];
        for (int64_t j = 0; j < s.n_embd_text; ++j) {
          double acc = 0;
          for (int64_t i = 0; i < d; ++i) acc += m[i] * P[i * s.n_embd_text + j];
          out.push_back(acc);
        }
      }
  } else if (s.projector == "idefics3") {
    // HF pixel_shuffle: each s x s block of patches, rows dy then columns dx, concatenated.
    const int k = s.scale_factor;
    const auto fc = read(f, "mm.model.fc.weight");
    for (int64_t oy = 0; oy < gh / k; ++oy)
      for (int64_t ox = 0; ox < gw / k; ++ox) {
        std::vector<double> v;
        for (int dy = 0; dy < k; ++dy)
          for (int dx = 0; dx < k; ++dx) {
            const auto& r = x[(oy * k + dy) * gw + ox * k + dx];
            v.insert(v.end(), r.begin(), r.end());
          }
        const auto y = matvec(fc, v);
        out.insert(out.end(), y.begin(), y.end());
      }
  }
  return out;
}

}  // namespace modu::testing
