// Loading a multimodal projector GGUF (clip.* metadata, v.* / mm.* tensors) and the shared ViT
// encoder: patch embedding, position embedding, pre-norm blocks with bidirectional attention, then
// the registered family's projector.
#include "modu/vision/vision_model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

#include "ops.h"
#include "projector.h"
#include "vit_ops.h"
#include "weight_loader.h"

namespace modu::vision {

namespace {
std::map<std::string, ProjectorFamily>& registry() {
  static std::map<std::string, ProjectorFamily> r;
  return r;
}

Result<int64_t> need_int(const GgufFile& f, const std::string& key) {
  auto v = f.get_int(key);
  if (!v.ok()) return corrupt(f.name() + ": projector metadata '" + key + "' is missing or not an integer");
  if (*v <= 0) return corrupt(f.name() + ": projector metadata '" + key + "' must be positive");
  return *v;
}

Status read_triplet(const GgufFile& f, const std::string& key, std::array<float, 3>& out) {
  const GgufValue* v = f.find(key);
  if (v == nullptr) return Status::Ok();  // the family default stays
  if (!v->is_array() || v->size() != 3)
    return corrupt(f.name() + ": '" + key + "' must be an array of 3 numbers (R, G, B)");
  for (int i = 0; i < 3; ++i) {
    auto x = v->elems()[i].as_float();
    if (!x) return corrupt(f.name() + ": '" + key + "' must hold numbers");
    out[i] = (float)*x;
  }
  return Status::Ok();
}
}  // namespace

bool register_projector(const ProjectorFamily& fam) {
  registry()[fam.name] = fam;
  return true;
}
const ProjectorFamily* find_projector(const std::string& name) {
  auto it = registry().find(name);
  return it == registry().end() ? nullptr : &it->second;
}
std::vector<std::string> registered_projectors() {
  std::vector<std::string> out;
  for (const auto& [k, v] : registry()) out.push_back(k);
  return out;
}

const char* vit_act_name(VitAct a) {
  switch (a) {
    case VitAct::kGeluErf: return "gelu";
    case VitAct::kGeluTanh: return "gelu_tanh";
    case VitAct::kQuickGelu: return "quick_gelu";
    case VitAct::kSilu: return "silu";
  }
  return "?";
}

Result<std::unique_ptr<VisionModel>> VisionModel::load(const std::string& path) {
  MODU_ASSIGN_OR_RETURN(GgufFile f, GgufFile::open(path));
  return from_gguf(std::move(f));
}

Result<std::unique_ptr<VisionModel>> VisionModel::from_gguf(GgufFile file) {
  std::unique_ptr<VisionModel> m(new VisionModel());
  m->file_ = std::move(file);
  const GgufFile& f = m->file_;
  VisionConfig& c = m->cfg_;
  MODU_ASSIGN_OR_RETURN(std::string arch, f.get_string("general.architecture", std::string()));
  if (arch != "clip")
    return invalid_argument(f.name() + ": not a multimodal projector (general.architecture is '" + arch +
                            "', expected 'clip'); pass the mmproj file to --mmproj and the language model to -m");
  MODU_ASSIGN_OR_RETURN(bool has_vision, f.get_bool("clip.has_vision_encoder", true));
  if (!has_vision) return unimplemented(f.name() + ": this projector has no vision encoder (audio only?)");
  std::string proj;
  if (auto p = f.get_string("clip.projector_type", std::string()); p.ok() && !p->empty()) proj = *p;
  else if (auto q = f.get_string("clip.vision.projector_type", std::string()); q.ok()) proj = *q;
  if (proj.empty()) return corrupt(f.name() + ": 'clip.projector_type' is missing");
  m->fam_ = find_projector(proj);
  if (m->fam_ == nullptr) {
    std::string known;
    for (const auto& n : registered_projectors()) known += (known.empty() ? "" : ", ") + n;
    return unimplemented(f.name() + ": projector type '" + proj + "' is not supported (supported: " + known + ")");
  }
  c.projector = proj;
  const ProjectorFamily& fam = *m->fam_;
  if (fam.defaults) fam.defaults(c);
  MODU_ASSIGN_OR_RETURN(c.image_size, need_int(f, "clip.vision.image_size"));
  MODU_ASSIGN_OR_RETURN(c.patch_size, need_int(f, "clip.vision.patch_size"));
  MODU_ASSIGN_OR_RETURN(c.n_embd, need_int(f, "clip.vision.embedding_length"));
  MODU_ASSIGN_OR_RETURN(c.n_ff, need_int(f, "clip.vision.feed_forward_length"));
  MODU_ASSIGN_OR_RETURN(c.n_layer, need_int(f, "clip.vision.block_count"));
  MODU_ASSIGN_OR_RETURN(c.n_head, need_int(f, "clip.vision.attention.head_count"));
  MODU_ASSIGN_OR_RETURN(double eps, f.get_float("clip.vision.attention.layer_norm_epsilon", 1e-6));
  c.eps = (float)eps;
  if (c.n_layer > 1024 || c.n_embd > 65536 || c.n_ff > (1 << 20) || c.n_head > c.n_embd || c.patch_size > c.image_size)
    return corrupt(f.name() + ": projector sizes out of range (block_count " + std::to_string(c.n_layer) +
                   ", embedding_length " + std::to_string(c.n_embd) + ", feed_forward_length " + std::to_string(c.n_ff) +
                   ", head_count " + std::to_string(c.n_head) + ", patch_size " + std::to_string(c.patch_size) + ")");
  if (c.n_embd % c.n_head != 0)
    return corrupt(f.name() + ": embedding_length " + std::to_string(c.n_embd) + " is not a multiple of head_count " +
                   std::to_string(c.n_head));
  c.head_dim = c.n_embd / c.n_head;
  if (c.image_size % c.patch_size != 0 || c.image_size > 8192)
    return corrupt(f.name() + ": image_size " + std::to_string(c.image_size) + " is not a multiple of patch_size " +
                   std::to_string(c.patch_size) + " (or over 8192)");
  MODU_ASSIGN_OR_RETURN(bool gelu, f.get_bool("clip.use_gelu", false));
  MODU_ASSIGN_OR_RETURN(bool silu, f.get_bool("clip.use_silu", false));
  if (gelu && silu) return corrupt(f.name() + ": clip.use_gelu and clip.use_silu are both set");
  c.act = gelu ? VitAct::kGeluTanh : silu ? VitAct::kSilu : VitAct::kQuickGelu;
  // A feature layer k means "the input of block k": blocks past the deepest one never run.
  if (const GgufValue* fl = f.find("clip.vision.feature_layer"); fl != nullptr && fl->is_array() && fl->size() > 0) {
    int64_t deepest = 0;
    for (const GgufValue& e : fl->elems())
      if (auto k = e.as_int()) deepest = std::max(deepest, *k);
    if (deepest <= 0 || deepest > c.n_layer)
      return corrupt(f.name() + ": clip.vision.feature_layer " + std::to_string(deepest) + " is outside [1, " +
                     std::to_string(c.n_layer) + "]");
    c.n_layer = deepest;
  }
  c.pre.size = (int)c.image_size;
  MODU_RETURN_IF_ERROR(read_triplet(f, "clip.vision.image_mean", c.pre.mean));
  MODU_RETURN_IF_ERROR(read_triplet(f, "clip.vision.image_std", c.pre.std));
  for (float s : c.pre.std)
    if (!(s > 0)) return corrupt(f.name() + ": clip.vision.image_std must be positive");

  Loader L{f, m->owned_};
  VitWeights& w = m->w_;
  const int64_t d = c.n_embd, p = c.patch_size;
  {  // patch embedding: conv weight ne [p, p, 3, n_embd] viewed as n_embd rows of 3 p p
    const GgufTensor* t = f.tensor("v.patch_embd.weight");
    if (t == nullptr) return corrupt(f.name() + ": missing tensor 'v.patch_embd.weight'");
    if (t->shape != std::vector<int64_t>{p, p, 3, d})
      return corrupt(f.name() + ": 'v.patch_embd.weight' has shape " + shape_str(t->shape) + ", expected " +
                     shape_str({p, p, 3, d}));
    const DTypeTraits* tr = dtype_traits(t->dtype);
    if (tr == nullptr || tr->block_size != 1)
      return unimplemented(f.name() + ": 'v.patch_embd.weight' must be F32, F16 or BF16, not " +
                           std::string(dtype_name(t->dtype)));
    w.patch = Weight{t, t->dtype, 3 * p * p, d, t->data, dtype_row_bytes(t->dtype, 3 * p * p), nullptr};
  }
  MODU_ASSIGN_OR_RETURN(w.patch_b, L.vec("v.patch_embd.bias", d, false));
  const int64_t n_patch = c.patches_per_side() * c.patches_per_side();
  if (fam.class_token) {
    MODU_ASSIGN_OR_RETURN(w.cls, L.vec("v.class_embd", d, false));
  }
  c.class_token = (bool)w.cls;
  const int64_t n_pos = n_patch + (c.class_token ? 1 : 0);
  if (fam.learned_pos) {
    MODU_ASSIGN_OR_RETURN(w.pos, L.matrix("v.position_embd.weight", d, n_pos, true));
  }
  if (fam.rope2d && c.head_dim % 4 != 0)
    return corrupt(f.name() + ": 2-D rotary embeddings need a head size divisible by 4, not " + std::to_string(c.head_dim));
  MODU_ASSIGN_OR_RETURN(w.pre_ln_w, L.vec("v.pre_ln.weight", d, false));
  MODU_ASSIGN_OR_RETURN(w.pre_ln_b, L.vec("v.pre_ln.bias", d, false));
  MODU_ASSIGN_OR_RETURN(w.post_ln_w, L.vec("v.post_ln.weight", d, false));
  MODU_ASSIGN_OR_RETURN(w.post_ln_b, L.vec("v.post_ln.bias", d, false));
  w.layers.resize(c.n_layer);
  for (int64_t il = 0; il < c.n_layer; ++il) {
    VitLayer& ly = w.layers[il];
    const std::string b = "v.blk." + std::to_string(il) + ".";
    MODU_ASSIGN_OR_RETURN(ly.ln1_w, L.vec(b + "ln1.weight", d, true));
    MODU_ASSIGN_OR_RETURN(ly.ln1_b, L.vec(b + "ln1.bias", d, false));
    MODU_ASSIGN_OR_RETURN(ly.ln2_w, L.vec(b + "ln2.weight", d, true));
    MODU_ASSIGN_OR_RETURN(ly.ln2_b, L.vec(b + "ln2.bias", d, false));
    MODU_ASSIGN_OR_RETURN(ly.q, L.matrix(b + "attn_q.weight", d, d, true));
    MODU_ASSIGN_OR_RETURN(ly.k, L.matrix(b + "attn_k.weight", d, d, true));
    MODU_ASSIGN_OR_RETURN(ly.v, L.matrix(b + "attn_v.weight", d, d, true));
    MODU_ASSIGN_OR_RETURN(ly.o, L.matrix(b + "attn_out.weight", d, d, true));
    MODU_ASSIGN_OR_RETURN(ly.q_b, L.vec(b + "attn_q.bias", d, false));
    MODU_ASSIGN_OR_RETURN(ly.k_b, L.vec(b + "attn_k.bias", d, false));
    MODU_ASSIGN_OR_RETURN(ly.v_b, L.vec(b + "attn_v.bias", d, false));
    MODU_ASSIGN_OR_RETURN(ly.o_b, L.vec(b + "attn_out.bias", d, false));
    // Older converters wrote fc1 as ffn_down and fc2 as ffn_up: recognise them by shape.
    std::string up = "ffn_up", down = "ffn_down";
    if (const GgufTensor* t = f.tensor(b + "ffn_down.weight"); t && t->shape.size() == 2 && t->shape[0] == d && c.n_ff != d)
      std::swap(up, down);
    MODU_ASSIGN_OR_RETURN(ly.up, L.matrix(b + up + ".weight", d, c.n_ff, true));
    MODU_ASSIGN_OR_RETURN(ly.down, L.matrix(b + down + ".weight", c.n_ff, d, true));
    MODU_ASSIGN_OR_RETURN(ly.up_b, L.vec(b + up + ".bias", c.n_ff, false));
    MODU_ASSIGN_OR_RETURN(ly.gate, L.matrix(b + "ffn_gate.weight", d, c.n_ff, false));
    MODU_ASSIGN_OR_RETURN(ly.gate_b, L.vec(b + "ffn_gate.bias", c.n_ff, false));
    if (il > 0 && (bool)ly.gate != (bool)w.layers[0].gate)
      return corrupt(f.name() + ": 'ffn_gate' is present in some encoder blocks and not others");
    MODU_ASSIGN_OR_RETURN(ly.down_b, L.vec(b + down + ".bias", d, false));
  }
  if (fam.load) MODU_RETURN_IF_ERROR(fam.load(L, f, c, w, m->owned_));
  if (c.n_embd_text <= 0) return internal_error(f.name() + ": projector family did not set its output width");
  return m;
}

size_t VisionModel::weight_bytes() const {
  size_t n = 0;
  for (const GgufTensor& t : file_.tensors()) n += t.nbytes;
  return n;
}

int64_t VisionModel::n_params() const {
  int64_t n = 0;
  for (const GgufTensor& t : file_.tensors()) n += t.n_elements();
  return n;
}

ImageMarkers VisionModel::markers() const {
  return {fam_->image_begin, fam_->image_end, fam_->bidirectional, fam_->mrope};
}
std::string VisionModel::description() const { return fam_->description; }

int64_t VisionModel::n_tokens(int width, int height) const { return fam_->n_tokens(cfg_, width, height); }

Result<Pixels> VisionModel::preprocess(const Image& img) const { return vision::preprocess(img, cfg_.pre); }

Status VisionModel::encode_vit(const Pixels& px, ThreadPool& pool, std::vector<float>& x) const {
  const VisionConfig& c = cfg_;
  const int64_t p = c.patch_size, d = c.n_embd;
  if (px.width <= 0 || px.height <= 0 || px.width % p != 0 || px.height % p != 0 ||
      px.chw.size() != (size_t)3 * px.width * px.height)
    return invalid_argument("vision encoder: input of " + std::to_string(px.width) + " x " +
                            std::to_string(px.height) + " is not a whole number of " + std::to_string(p) + "-pixel patches");
  const int64_t gw = px.width / p, gh = px.height / p, n_patch = gw * gh;
  const int64_t extra = c.class_token ? 1 : 0, n = n_patch + extra;
  if (fam_->learned_pos && n != w_.pos.rows)
    return invalid_argument("vision encoder: a " + std::to_string(px.width) + " x " + std::to_string(px.height) +
                            " input gives " + std::to_string(n) + " positions, the position table holds " +
                            std::to_string(w_.pos.rows) + " (the image must be preprocessed to " +
                            std::to_string(c.image_size) + " x " + std::to_string(c.image_size) + ")");
  // Patches as rows of 3 p p values in the conv weight's order (channel, row, column), in the
  // family's token order.
  std::vector<int32_t> order(n_patch);
  for (int64_t i = 0; i < n_patch; ++i) order[i] = (int32_t)i;
  std::vector<int64_t> windows;  // first token of each attention window (window-attention blocks)
  if (fam_->layout) fam_->layout(c, (int)gw, (int)gh, order, windows);
  windows.push_back(n);
  const int64_t kp = 3 * p * p;
  std::vector<float> patches(n_patch * kp);  // [n_patch, 3 p p]
  const size_t plane = (size_t)px.width * px.height;
  for (int64_t tkn = 0; tkn < n_patch; ++tkn) {
      const int64_t gy = order[tkn] / gw, gx = order[tkn] % gw;
      float* r = patches.data() + tkn * kp;
      for (int64_t ch = 0; ch < 3; ++ch)
        for (int64_t ky = 0; ky < p; ++ky)
          for (int64_t kx = 0; kx < p; ++kx)
            r[(ch * p + ky) * p + kx] = px.chw[ch * plane + (size_t)(gy * p + ky) * px.width + gx * p + kx];
  }
  x.assign(n * d, 0.0f);  // [n, d]: class token first (CLIP), then patches row-major
  ops::matmul(w_.patch, patches.data(), n_patch, x.data() + extra * d, pool);
  if (w_.patch_b) ops::add_bias(x.data() + extra * d, (const float*)w_.patch_b.data, n_patch, d);
  if (extra) std::copy_n((const float*)w_.cls.data, d, x.data());
  std::vector<float> row(d);
  for (int64_t t = 0; fam_->learned_pos && t < n; ++t) {
    ops::get_row(w_.pos, t, row.data());
    for (int64_t i = 0; i < d; ++i) x[t * d + i] += row[i];
  }
  // 2-D rotary angles per token: pair i < hd/4 turns by row * f_i, hd/4 <= i < hd/2 by column *
  // f_(i - hd/4), with f_k = 10000^(-4k / hd); pairs are (i, i + hd/2).
  const int64_t hd = c.head_dim, half = hd / 2;
  std::vector<float> rcos, rsin;  // [n, hd / 2]
  if (fam_->rope2d) {
    rcos.resize(n * half);
    rsin.resize(n * half);
    for (int64_t t = 0; t < n; ++t) {
      const int64_t gy = order[t] / gw, gx = order[t] % gw;
      for (int64_t i = 0; i < half; ++i) {
        const int64_t k = i < hd / 4 ? i : i - hd / 4;
        const double a = (double)(i < hd / 4 ? gy : gx) * std::pow(10000.0, -4.0 * (double)k / (double)hd);
        rcos[t * half + i] = (float)std::cos(a);
        rsin[t * half + i] = (float)std::sin(a);
      }
    }
  }
  auto rotate = [&](float* m) {  // [n, n_head * hd] in place
    for (int64_t t = 0; t < n; ++t)
      for (int64_t h = 0; h < c.n_head; ++h) {
        float* r = m + t * d + h * hd;
        for (int64_t i = 0; i < half; ++i) {
          const float a = r[i], b = r[i + half], cs = rcos[t * half + i], sn = rsin[t * half + i];
          r[i] = a * cs - b * sn;
          r[i + half] = b * cs + a * sn;
        }
      }
  };
  if (w_.pre_ln_w)
    vit::layer_norm(x.data(), (const float*)w_.pre_ln_w.data, w_.pre_ln_b ? (const float*)w_.pre_ln_b.data : nullptr,
                    n, d, c.eps, x.data());
  std::vector<float> h(n * d), q(n * d), k(n * d), v(n * d), att(n * d), up(n * c.n_ff);
  const float scale = 1.0f / std::sqrt((float)c.head_dim);
  auto bias = [&](float* y, const Weight& b, int64_t cols) {
    if (b) ops::add_bias(y, (const float*)b.data, n, cols);
  };
  auto norm = [&](const float* in, const Weight& wt, const Weight& b, float* out) {
    if (c.rms_norm) {
      vit::rms_norm(in, (const float*)wt.data, n, d, c.eps, out);
    } else {
      vit::layer_norm(in, (const float*)wt.data, b ? (const float*)b.data : nullptr, n, d, c.eps, out);
    }
  };
  std::vector<float> gate(w_.layers.empty() || !w_.layers[0].gate ? 0 : n * c.n_ff);
  for (size_t il = 0; il < w_.layers.size(); ++il) {
    const VitLayer& L = w_.layers[il];
    norm(x.data(), L.ln1_w, L.ln1_b, h.data());
    ops::matmul_many({&L.q, &L.k, &L.v}, h.data(), n, {q.data(), k.data(), v.data()}, pool);
    bias(q.data(), L.q_b, d);
    bias(k.data(), L.k_b, d);
    bias(v.data(), L.v_b, d);
    if (fam_->rope2d) {
      rotate(q.data());
      rotate(k.data());
    }
    if (c.wa_pattern > 0 && (int64_t)(il + 1) % c.wa_pattern != 0 && windows.size() > 1) {
      for (size_t wdx = 0; wdx + 1 < windows.size(); ++wdx) {  // each window's tokens see only each other
        const int64_t b0 = windows[wdx], len = windows[wdx + 1] - b0;
        vit::attention(q.data() + b0 * d, k.data() + b0 * d, v.data() + b0 * d, len, c.n_head, c.head_dim, scale,
                       att.data() + b0 * d, pool);
      }
    } else {
      vit::attention(q.data(), k.data(), v.data(), n, c.n_head, c.head_dim, scale, att.data(), pool);
    }
    ops::matmul(L.o, att.data(), n, h.data(), pool);
    bias(h.data(), L.o_b, d);
    for (int64_t i = 0; i < n * d; ++i) x[i] += h[i];
    norm(x.data(), L.ln2_w, L.ln2_b, h.data());
    ops::matmul(L.up, h.data(), n, up.data(), pool);
    bias(up.data(), L.up_b, c.n_ff);
    if (L.gate) {  // act(gate x + b) * (up x + b)
      ops::matmul(L.gate, h.data(), n, gate.data(), pool);
      bias(gate.data(), L.gate_b, c.n_ff);
      vit::activate(gate.data(), n * c.n_ff, c.act, pool);
      for (int64_t i = 0; i < n * c.n_ff; ++i) up[i] *= gate[i];
    } else {
      vit::activate(up.data(), n * c.n_ff, c.act, pool);
    }
    ops::matmul(L.down, up.data(), n, h.data(), pool);
    bias(h.data(), L.down_b, d);
    for (int64_t i = 0; i < n * d; ++i) x[i] += h[i];
  }
  if (fam_->apply_post_ln && w_.post_ln_w) norm(x.data(), w_.post_ln_w, w_.post_ln_b, x.data());
  return Status::Ok();
}

Status VisionModel::encode(const Pixels& px, ThreadPool& pool, std::vector<float>& out) const {
  std::vector<float> x;
  MODU_RETURN_IF_ERROR(encode_vit(px, pool, x));
  if (cfg_.class_token) x.erase(x.begin(), x.begin() + cfg_.n_embd);
  const int gw = (int)(px.width / cfg_.patch_size), gh = (int)(px.height / cfg_.patch_size);
  return fam_->project(*this, x, gw, gh, pool, out);
}

}  // namespace modu::vision

namespace modu::vision {

uint64_t image_hash(const Image& img) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](uint8_t b) { h = (h ^ b) * 1099511628211ull; };
  for (int v : {img.width, img.height})
    for (int i = 0; i < 4; ++i) mix((uint8_t)(v >> (8 * i)));
  for (uint8_t b : img.rgb) mix(b);
  return h;
}

Status encode_tile(const VisionModel& m, const Image& tile, ThreadPool& pool, std::vector<float>& out) {
  return m.encode(normalize(tile, m.config().pre), pool, out);
}

Status embed_whole(const VisionModel& m, const Image& img, ThreadPool& pool, ImageEmbedding& e) {
  auto px = m.preprocess(img);
  if (!px.ok()) return px.status();
  MODU_RETURN_IF_ERROR(m.encode(*px, pool, e.embd));
  e.n_tokens = (int64_t)e.embd.size() / m.config().n_embd_text;
  ImageSegment seg{m.markers().begin, e.n_tokens, 0, 0};
  if (m.markers().mrope) {  // 2 x 2 merged patches
    seg.grid_w = (int)(px->width / (2 * m.config().patch_size));
    seg.grid_h = (int)(px->height / (2 * m.config().patch_size));
  } else {
    const int side = (int)std::lround(std::sqrt((double)e.n_tokens));
    seg.grid_w = side * side == e.n_tokens ? side : (int)e.n_tokens;
    seg.grid_h = side * side == e.n_tokens ? side : 1;
  }
  e.segments = {seg};
  e.text_after = m.markers().end;
  return Status::Ok();
}

Result<ImageEmbedding> embed_image(const VisionModel& m, const Image& img, ThreadPool& pool) {
  const auto t0 = std::chrono::steady_clock::now();
  if (img.width <= 0 || img.height <= 0 || img.rgb.size() != (size_t)img.width * img.height * 3)
    return out_of_range("image has zero size or a pixel buffer of the wrong size");
  ImageEmbedding e;
  MODU_RETURN_IF_ERROR(m.family().embed ? m.family().embed(m, img, pool, e) : embed_whole(m, img, pool, e));
  int64_t total = 0;
  for (const ImageSegment& s : e.segments) total += s.n_tokens;
  if (e.segments.empty() || total != e.n_tokens || (size_t)(e.n_tokens * m.config().n_embd_text) != e.embd.size())
    return internal_error("vision: the " + m.config().projector + " family's segments do not cover its embeddings");
  e.hash = image_hash(img);
  e.encode_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return e;
}

Status check_compatible(const VisionModel& m, const ModelConfig& text, const std::string& name) {
  if (m.config().n_embd_text != text.n_embd)
    return invalid_argument(name + ": the projector makes " + std::to_string(m.config().n_embd_text) +
                            "-wide embeddings but the language model's width is " + std::to_string(text.n_embd) +
                            "; use the mmproj file made for this model");
  return Status::Ok();
}

}  // namespace modu::vision
