// The float64 reference of the vision encoders and projectors (see vision_reference.h).
#include "vision_reference.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <stdexcept>

namespace modu::testing {

namespace {


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

std::vector<double> reference_image_embeddings(const GgufFile& f, const MmprojSpec& s, const std::vector<float>& chw,
                                               int W, int H) {
  const int64_t d = s.n_embd, p = s.patch_size, gw = W / p, gh = H / p, hd = d / s.n_head;
  const bool q25 = s.projector == "qwen2.5vl_merger";
  const bool cls = s.projector == "mlp" && s.class_token, qwen = s.projector == "qwen2vl_merger" || q25;
  // Patch embedding: a stride-p convolution, weight [d][3][p][p] (Qwen2-VL: a Conv3d over two
  // copies of the image, i.e. the sum of its two temporal kernels).
  auto pw = read(f, "v.patch_embd.weight");
  if (qwen) {
    const auto pw1 = read(f, "v.patch_embd.weight.1");
    for (size_t i = 0; i < pw.size(); ++i) pw[i] += pw1[i];
  }
  // Token order (Qwen2-VL's processor: 2 x 2 blocks of patches, blocks row-major) and each token's patch.
  std::vector<std::pair<int64_t, int64_t>> yx;
  if (qwen) {
    for (int64_t by = 0; by < gh / 2; ++by)
      for (int64_t bx = 0; bx < gw / 2; ++bx)
        for (int64_t dy = 0; dy < 2; ++dy)
          for (int64_t dx = 0; dx < 2; ++dx) yx.push_back({2 * by + dy, 2 * bx + dx});
  } else {
    for (int64_t gy = 0; gy < gh; ++gy)
      for (int64_t gx = 0; gx < gw; ++gx) yx.push_back({gy, gx});
  }
  // Qwen2.5-VL's get_window_index: the merged grid padded with -100 to whole windows, windows
  // row-major, the padding dropped; tokens are regrouped by it (4 patches per merged token) and
  // cu_window_seqlens are the window boundaries.
  std::vector<int64_t> window_idx, cu_seqlens = {0};
  if (q25) {
    const int64_t mh = gh / 2, mw = gw / 2, ws = s.window_px / s.patch_size / 2;
    const int64_t pad_h = ws - mh % ws, pad_w = ws - mw % ws, nwh = (mh + pad_h) / ws, nww = (mw + pad_w) / ws;
    for (int64_t a = 0; a < nwh; ++a)
      for (int64_t b = 0; b < nww; ++b) {
        int64_t cnt = 0;
        for (int64_t i = 0; i < ws; ++i)
          for (int64_t j = 0; j < ws; ++j) {
            const int64_t y = a * ws + i, xx = b * ws + j;
            if (y < mh && xx < mw) {
              window_idx.push_back(y * mw + xx);
              ++cnt;
            }
          }
        if (cnt > 0) cu_seqlens.push_back(cu_seqlens.back() + 4 * cnt);
      }
    std::vector<std::pair<int64_t, int64_t>> re;
    for (int64_t m : window_idx)
      for (int64_t j = 0; j < 4; ++j) re.push_back(yx[4 * m + j]);
    yx = re;
  }
  std::vector<std::vector<double>> x;
  if (cls) x.push_back(read(f, "v.class_embd"));
  std::vector<double> pb(d, 0.0);
  if (f.tensor("v.patch_embd.bias")) pb = read(f, "v.patch_embd.bias");
  for (const auto& [gy, gx] : yx) {
    {
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
  }
  if (!qwen) {
    const auto pos = read(f, "v.position_embd.weight");
    for (size_t t = 0; t < x.size(); ++t)
      for (int64_t i = 0; i < d; ++i) x[t][i] += pos[t * d + i];
  }
  // Qwen2-VL's VisionRotaryEmbedding(hd / 2): inv_freq_k = 10000^(-2k / (hd / 2)), k < hd / 4;
  // angles cat(row * inv_freq, column * inv_freq), applied with rotate_half over cat(angles, angles).
  auto rope2d = [&](std::vector<double>& r, int64_t gy, int64_t gx) {
    for (int64_t h = 0; h < s.n_head; ++h) {
      std::vector<double> ang(hd / 2);
      for (int64_t k = 0; k < hd / 4; ++k) {
        const double inv = std::pow(10000.0, -2.0 * k / (hd / 2.0));
        ang[k] = gy * inv;
        ang[hd / 4 + k] = gx * inv;
      }
      std::vector<double> in(r.begin() + h * hd, r.begin() + (h + 1) * hd), out(hd);
      for (int64_t i = 0; i < hd; ++i) {
        const double a = ang[i % (hd / 2)];
        const double rot = i < hd / 2 ? -in[i + hd / 2] : in[i - hd / 2];  // rotate_half
        out[i] = in[i] * std::cos(a) + rot * std::sin(a);
      }
      std::copy(out.begin(), out.end(), r.begin() + h * hd);
    }
  };
  if (cls) {
    const auto w = read(f, "v.pre_ln.weight"), b = read(f, "v.pre_ln.bias");
    for (auto& r : x) r = layer_norm(r, w, b, s.eps);
  }
  const size_t T = x.size();
  for (int64_t il = 0; il < s.n_layer; ++il) {
    const std::string b = "v.blk." + std::to_string(il) + ".";
    auto R = [&](const std::string& n) { return read(f, b + n); };
    const std::string up = s.legacy_ffn_names ? "ffn_down" : "ffn_up", down = s.legacy_ffn_names ? "ffn_up" : "ffn_down";
    const auto l1w = R("ln1.weight"), l2w = R("ln2.weight");
    const auto l1b = q25 ? std::vector<double>(d, 0.0) : R("ln1.bias"), l2b = q25 ? std::vector<double>(d, 0.0) : R("ln2.bias");
    auto norm = [&](const std::vector<double>& r, const std::vector<double>& w, const std::vector<double>& bb) {
      if (!q25) return layer_norm(r, w, bb, s.eps);
      double ss = 0;
      for (double e : r) ss += e * e;
      std::vector<double> y(r.size());
      for (size_t i = 0; i < r.size(); ++i) y[i] = r[i] / std::sqrt(ss / r.size() + s.eps) * w[i];
      return y;
    };
    // Windowed block (Qwen2.5-VL): token t sees the tokens of its window only.
    const bool windowed = q25 && (il + 1) % s.wa_pattern != 0;
    auto window_of = [&](size_t t) {
      size_t k = 0;
      while (k + 1 < cu_seqlens.size() && (int64_t)t >= cu_seqlens[k + 1]) ++k;
      return std::pair<size_t, size_t>{(size_t)cu_seqlens[k], (size_t)cu_seqlens[k + 1]};
    };
    const auto wq = R("attn_q.weight"), bq = R("attn_q.bias"), wk = R("attn_k.weight"), bk = R("attn_k.bias");
    const auto wv = R("attn_v.weight"), bv = R("attn_v.bias"), wo = R("attn_out.weight"), bo = R("attn_out.bias");
    const auto wu = R(up + ".weight"), bu = R(up + ".bias"), wd = R(down + ".weight"), bd = R(down + ".bias");
    std::vector<std::vector<double>> Q(T), K(T), V(T);
    for (size_t t = 0; t < T; ++t) {
      const auto h = norm(x[t], l1w, l1b);
      Q[t] = matvec(wq, h, &bq);
      K[t] = matvec(wk, h, &bk);
      V[t] = matvec(wv, h, &bv);
      if (qwen) {
        rope2d(Q[t], yx[t].first, yx[t].second);
        rope2d(K[t], yx[t].first, yx[t].second);
      }
    }
    for (size_t t = 0; t < T; ++t) {
      std::vector<double> att(d, 0.0);
      for (int64_t hh = 0; hh < s.n_head; ++hh) {
        const auto [u0, u1] = windowed ? window_of(t) : std::pair<size_t, size_t>{0, T};
        std::vector<double> sc(T, 0.0);
        double mx = -1e300;
        for (size_t u = u0; u < u1; ++u) {
          double dot = 0;
          for (int64_t i = 0; i < hd; ++i) dot += Q[t][hh * hd + i] * K[u][hh * hd + i];
          sc[u] = dot / std::sqrt((double)hd);
          mx = std::max(mx, sc[u]);
        }
        double sum = 0;
        for (size_t u = u0; u < u1; ++u) sum += sc[u] = std::exp(sc[u] - mx);
        for (size_t u = u0; u < u1; ++u)
          for (int64_t i = 0; i < hd; ++i) att[hh * hd + i] += sc[u] / sum * V[u][hh * hd + i];
      }
      const auto o = matvec(wo, att, &bo);
      for (int64_t i = 0; i < d; ++i) x[t][i] += o[i];
      const auto h2 = norm(x[t], l2w, l2b);
      auto u = matvec(wu, h2, &bu);
      if (q25) {  // down(silu(gate h + b) * (up h + b))
        const auto wg = R("ffn_gate.weight"), bg = R("ffn_gate.bias");
        const auto gt = matvec(wg, h2, &bg);
        for (size_t i = 0; i < u.size(); ++i) u[i] *= gt[i] / (1 + std::exp(-gt[i]));
      } else {
        for (double& e : u)
          e = s.use_gelu ? 0.5 * e * (1 + std::tanh(std::sqrt(2 / M_PI) * (e + 0.044715 * e * e * e)))
                         : e / (1 + std::exp(-1.702 * e));
      }
      const auto dn = matvec(wd, u, &bd);
      for (int64_t i = 0; i < d; ++i) x[t][i] += dn[i];
    }
  }
  if (cls) {
    x.erase(x.begin());  // the class token is not an image token
  } else if (s.projector != "mlp") {  // LLaVA reads the last block's output, before any post-norm
    const auto w = read(f, "v.post_ln.weight");
    if (q25) {  // ln_q: RMS norm
      for (auto& r : x) {
        double ss = 0;
        for (double e : r) ss += e * e;
        for (size_t i = 0; i < r.size(); ++i) r[i] = r[i] / std::sqrt(ss / r.size() + s.eps) * w[i];
      }
    } else {
      const auto b = read(f, "v.post_ln.bias");
      for (auto& r : x) r = layer_norm(r, w, b, s.eps);
    }
  }
  std::vector<double> out;
  if (qwen) {  // the merger: each 2 x 2 block's four tokens side by side
    const auto w0 = read(f, "mm.0.weight"), b0 = read(f, "mm.0.bias"), w2 = read(f, "mm.2.weight"), b2 = read(f, "mm.2.bias");
    for (size_t t = 0; t < x.size(); t += 4) {
      std::vector<double> cat;
      for (size_t j = 0; j < 4; ++j) cat.insert(cat.end(), x[t + j].begin(), x[t + j].end());
      auto h = matvec(w0, cat, &b0);
      for (double& e : h) e = 0.5 * e * (1 + std::erf(e / std::sqrt(2.0)));
      const auto y = matvec(w2, h, &b2);
      out.insert(out.end(), y.begin(), y.end());
    }
    if (q25) {  // reverse_indices = argsort(window_idx): rows back in grid order
      std::vector<double> back(out.size());
      const size_t dt = (size_t)s.n_embd_text;
      for (size_t k = 0; k < window_idx.size(); ++k)
        std::copy_n(out.begin() + k * dt, dt, back.begin() + window_idx[k] * dt);
      out = back;
    }
  } else if (s.projector == "mlp") {
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

std::vector<double> reference_tiled_embeddings(const GgufFile& f, const MmprojSpec& s,
                                               const std::vector<std::vector<float>>& views, int rows, int cols,
                                               int orig_w, int orig_h) {
  const int S = (int)s.image_size;
  const size_t dt = (size_t)s.n_embd_text;
  std::vector<std::vector<double>> enc;  // each view's embeddings, rows of dt
  for (const auto& v : views) enc.push_back(reference_image_embeddings(f, s, v, S, S));
  std::vector<double> out;
  if (s.projector == "idefics3") {  // the tiles in order, then the global view
    for (const auto& e : enc) out.insert(out.end(), e.begin(), e.end());
    return out;
  }
  // LLaVA-NeXT: token (Y, X) of the rows*p x cols*p grid is patch (Y % p, X % p) of tile (Y / p, X / p).
  const int p = (int)(s.image_size / s.patch_size), GH = rows * p, GW = cols * p;
  auto at = [&](int Y, int X, size_t i) { return enc[1 + (Y / p) * cols + X / p][((Y % p) * p + X % p) * dt + i]; };
  // unpad_image: the rows (or columns) holding padding go, as many from each side.
  int top = 0, left = 0, H = GH, W = GW;
  if ((double)orig_w / orig_h > (double)GW / GH) {
    const int kept = (int)(std::round(orig_h * ((double)GW / orig_w) * 1e7) / 1e7);
    top = (GH - kept) / 2;
    H = GH - 2 * top;
  } else {
    const int kept = (int)(std::round(orig_w * ((double)GH / orig_h) * 1e7) / 1e7);
    left = (GW - kept) / 2;
    W = GW - 2 * left;
  }
  // value(y, x, i) of the kept grid, shrunk bilinearly (half-pixel centres) for anyres_max.
  std::function<double(int, int, size_t)> val = [&](int y, int x, size_t i) { return at(top + y, left + x, i); };
  int OH = H, OW = W;
  if (s.anyres_max > 0) {
    const double ratio = std::sqrt((double)H * W / (s.anyres_max * (double)p * p));
    if (ratio > 1.1) {
      OH = (int)std::floor(H / ratio);
      OW = (int)std::floor(W / ratio);
      const int h0 = H, w0 = W;
      auto kept = val;
      val = [=](int y, int x, size_t i) {
        const double sy = std::max(((double)h0 / OH) * (y + 0.5) - 0.5, 0.0), sx = std::max(((double)w0 / OW) * (x + 0.5) - 0.5, 0.0);
        const int ya = std::min((int)sy, h0 - 1), xa = std::min((int)sx, w0 - 1);
        const int yb = std::min(ya + 1, h0 - 1), xb = std::min(xa + 1, w0 - 1);
        const double fy = sy - ya, fx = sx - xa;
        return (1 - fy) * (1 - fx) * kept(ya, xa, i) + (1 - fy) * fx * kept(ya, xb, i) + fy * (1 - fx) * kept(yb, xa, i) +
               fy * fx * kept(yb, xb, i);
      };
    }
  }
  out = enc[0];  // the global view first
  const bool newline = f.tensor("model.image_newline") != nullptr;
  const std::vector<double> nl = newline ? read(f, "model.image_newline") : std::vector<double>();
  for (int y = 0; y < OH; ++y) {
    for (int x = 0; x < OW; ++x)
      for (size_t i = 0; i < dt; ++i) out.push_back(val(y, x, i));
    out.insert(out.end(), nl.begin(), nl.end());
  }
  return out;
}

}  // namespace modu::testing
