// LLaVA-style MLP projector ("mlp": LLaVA 1.5, LLaVA-NeXT (1.6), LLaVA-OneVision and the Korean
// models built on them): a ViT (CLIP with a class token and pre-norm, or SigLIP without), the
// feature layer's output (the converter stores only the blocks that run), the class token dropped,
// then Linear -> GELU (erf) -> Linear. With image_grid_pinpoints the image is tiled as LLaVA-NeXT
// does it ("anyres"): a global view, then the tile grid with the padding cut away ("unpad"),
// optionally shrunk (OneVision's anyres_max_N), each row ended by the learned image_newline.
#include <cmath>

#include "ops.h"
#include "projector.h"
#include "vit_ops.h"
#include "weight_loader.h"

namespace modu::vision {
namespace {

void defaults(VisionConfig& c) {
  c.pre.mode = PreprocessConfig::Mode::kShortestEdgeCrop;  // CLIPImageProcessor
  c.pre.resample = Resample::kBicubic;
  c.pre.mean = {0.48145466f, 0.4578275f, 0.40821073f};
  c.pre.std = {0.26862954f, 0.26130258f, 0.27577711f};
}

Status load(Loader& L, const GgufFile& f, VisionConfig& c, VitWeights& w, std::vector<std::vector<float>>&) {
  const GgufTensor* t0 = f.tensor("mm.0.weight");
  const GgufTensor* t2 = f.tensor("mm.2.weight");
  if (t0 == nullptr || t2 == nullptr || t0->shape.size() != 2 || t2->shape.size() != 2)
    return corrupt(f.name() + ": the mlp projector needs 2-D tensors 'mm.0.weight' and 'mm.2.weight'");
  if (f.tensor("mm.3.weight") != nullptr)
    return unimplemented(f.name() + ": an mlp projector with a norm (mm.3, Yi-VL) is not supported");
  const int64_t hidden = t0->shape[1];
  c.n_embd_text = t2->shape[1];
  w.proj.resize(5);
  MODU_ASSIGN_OR_RETURN(w.proj[0], L.matrix("mm.0.weight", c.n_embd, hidden, true));
  MODU_ASSIGN_OR_RETURN(w.proj[1], L.vec("mm.0.bias", hidden, false));
  MODU_ASSIGN_OR_RETURN(w.proj[2], L.matrix("mm.2.weight", hidden, c.n_embd_text, true));
  MODU_ASSIGN_OR_RETURN(w.proj[3], L.vec("mm.2.bias", c.n_embd_text, false));
  MODU_ASSIGN_OR_RETURN(w.proj[4], L.vec("model.image_newline", c.n_embd_text, false));
  // LLaVA-NeXT: candidate canvases as (height, width) pairs, as the Hugging Face config lists them
  // (the lists in use hold each shape both ways round, so llama.cpp's (width, height) reading agrees).
  if (const GgufValue* pp = f.find("clip.vision.image_grid_pinpoints"); pp != nullptr) {
    if (!pp->is_array() || pp->size() % 2 != 0 || pp->size() > 2048)
      return corrupt(f.name() + ": clip.vision.image_grid_pinpoints must be an even-length integer array");
    for (size_t i = 0; i < pp->size(); i += 2) {
      auto h = pp->elems()[i].as_int(), wd = pp->elems()[i + 1].as_int();
      if (!h || !wd || *h <= 0 || *wd <= 0 || *h % c.image_size != 0 || *wd % c.image_size != 0 || *h * *wd > (1 << 26))
        return corrupt(f.name() + ": clip.vision.image_grid_pinpoints holds a canvas that is not a whole number of " +
                       std::to_string(c.image_size) + "-pixel tiles");
      c.pre.grid_pinpoints.emplace_back((int)*h, (int)*wd);
    }
    MODU_ASSIGN_OR_RETURN(std::string merge, f.get_string("clip.vision.mm_patch_merge_type", std::string("spatial_unpad")));
    if (merge != "spatial_unpad")
      return unimplemented(f.name() + ": mm_patch_merge_type '" + merge + "' (tiled images are packed as 'spatial_unpad')");
  }
  // modu's key for LLaVA-OneVision's vision_aspect_ratio "anyres_max_N" (llama.cpp has none).
  MODU_ASSIGN_OR_RETURN(int64_t amax, f.get_int("clip.vision.anyres_max_patches", 0));
  if (amax < 0 || amax > 1024) return corrupt(f.name() + ": clip.vision.anyres_max_patches out of range");
  c.anyres_max = (int)amax;
  return Status::Ok();
}

int64_t n_tokens(const VisionConfig& c, int, int) { return c.patches_per_side() * c.patches_per_side(); }

Status project(const VisionModel& m, std::vector<float>& x, int gw, int gh, ThreadPool& pool, std::vector<float>& out) {
  const VitWeights& w = m.weights();
  const int64_t n = (int64_t)gw * gh, hidden = w.proj[0].rows, dt = m.config().n_embd_text;
  std::vector<float> h(n * hidden);  // [n, hidden]
  ops::matmul(w.proj[0], x.data(), n, h.data(), pool);
  if (w.proj[1]) ops::add_bias(h.data(), (const float*)w.proj[1].data, n, hidden);
  vit::activate(h.data(), n * hidden, VitAct::kGeluErf, pool);
  out.assign(n * dt, 0.0f);  // [n, n_embd_text]
  ops::matmul(w.proj[2], h.data(), n, out.data(), pool);
  if (w.proj[3]) ops::add_bias(out.data(), (const float*)w.proj[3].data, n, dt);
  return Status::Ok();
}

// torch's interpolate(mode="bilinear", align_corners=False) of a [H, W] grid of dt-wide rows.
std::vector<float> bilinear(const std::vector<float>& in, int64_t H, int64_t W, int64_t oh, int64_t ow, int64_t dt) {
  std::vector<float> out(oh * ow * dt);
  auto src = [](int64_t o, int64_t n_in, int64_t n_out, int64_t& i0, int64_t& i1, float& l) {
    const float scale = (float)n_in / (float)n_out;
    const float s = std::max(scale * ((float)o + 0.5f) - 0.5f, 0.0f);
    i0 = std::min((int64_t)s, n_in - 1);
    i1 = std::min(i0 + 1, n_in - 1);
    l = s - (float)i0;
  };
  for (int64_t y = 0; y < oh; ++y) {
    int64_t y0, y1;
    float ly;
    src(y, H, oh, y0, y1, ly);
    for (int64_t xx = 0; xx < ow; ++xx) {
      int64_t x0, x1;
      float lx;
      src(xx, W, ow, x0, x1, lx);
      const float* a = &in[(y0 * W + x0) * dt];
      const float* b = &in[(y0 * W + x1) * dt];
      const float* c = &in[(y1 * W + x0) * dt];
      const float* d = &in[(y1 * W + x1) * dt];
      float* o = &out[(y * ow + xx) * dt];
      for (int64_t i = 0; i < dt; ++i)
        o[i] = (1 - ly) * ((1 - lx) * a[i] + lx * b[i]) + ly * ((1 - lx) * c[i] + lx * d[i]);
    }
  }
  return out;
}

// LlavaNextForConditionalGeneration.pack_image_features (and OneVision's) for one image.
Status embed(const VisionModel& m, const Image& img, ThreadPool& pool, ImageEmbedding& e) {
  const VisionConfig& c = m.config();
  if (c.pre.grid_pinpoints.empty()) return embed_whole(m, img, pool, e);
  MODU_ASSIGN_OR_RETURN(Tiles t, anyres_tiles(img, c.pre.grid_pinpoints, (int)c.image_size, c.pre.resample));
  const int64_t s = c.patches_per_side(), dt = c.n_embd_text, GH = t.rows * s, GW = t.cols * s;
  std::vector<float> base, tile;
  MODU_RETURN_IF_ERROR(encode_tile(m, t.global, pool, base));
  std::vector<float> grid(GH * GW * dt);  // [rows * s, cols * s, dt]: the tiles' patches side by side
  for (int ty = 0; ty < t.rows; ++ty)
    for (int tx = 0; tx < t.cols; ++tx) {
      MODU_RETURN_IF_ERROR(encode_tile(m, t.grid[ty * t.cols + tx], pool, tile));
      for (int64_t y = 0; y < s; ++y)
        std::copy_n(&tile[y * s * dt], s * dt, &grid[((ty * s + y) * GW + tx * s) * dt]);
    }
  // unpad_image: cut the rows (or columns) that cover only the processor's padding.
  int64_t y0 = 0, y1 = GH, x0 = 0, x1 = GW;
  const double orig_aspect = (double)img.width / img.height, cur_aspect = (double)GW / GH;
  auto round7 = [](double v) { return std::nearbyint(v * 1e7) / 1e7; };
  if (orig_aspect > cur_aspect) {
    const int64_t nh = (int64_t)round7(img.height * ((double)GW / img.width));
    y0 = (GH - nh) / 2;
    y1 = GH - y0;
  } else {
    const int64_t nw = (int64_t)round7(img.width * ((double)GH / img.height));
    x0 = (GW - nw) / 2;
    x1 = GW - x0;
  }
  int64_t H = y1 - y0, W = x1 - x0;
  std::vector<float> feat(H * W * dt);  // [H, W, dt]
  for (int64_t y = 0; y < H; ++y) std::copy_n(&grid[((y0 + y) * GW + x0) * dt], W * dt, &feat[y * W * dt]);
  if (c.anyres_max > 0) {  // OneVision: shrink a grid of more than ~N tiles back to about N
    const double ratio = std::sqrt((double)H * W / ((double)c.anyres_max * s * s));
    if (ratio > 1.1) {
      const int64_t oh = (int64_t)std::floor(H / ratio), ow = (int64_t)std::floor(W / ratio);
      feat = bilinear(feat, H, W, oh, ow, dt);
      H = oh;
      W = ow;
    }
  }
  const Weight& nl = m.weights().proj[4];
  const int64_t row = W + (nl ? 1 : 0);
  e.embd = std::move(base);
  e.embd.resize((s * s + H * row) * dt);
  float* o = e.embd.data() + s * s * dt;
  for (int64_t y = 0; y < H; ++y) {
    std::copy_n(&feat[y * W * dt], W * dt, o);
    o += W * dt;
    if (nl) {
      std::copy_n((const float*)nl.data, dt, o);
      o += dt;
    }
  }
  e.n_tokens = s * s + H * row;
  e.segments = {{m.markers().begin, e.n_tokens, (int)e.n_tokens, 1}};
  e.text_after = m.markers().end;
  e.n_encoder_runs = 1 + t.rows * t.cols;
  return Status::Ok();
}

const bool kRegistered = register_projector({.name = "mlp",
                                             .description = "LLaVA MLP (CLIP / SigLIP ViT, 2-layer GELU MLP)",
                                             .class_token = true,
                                             .apply_post_ln = false,
                                             .defaults = defaults,
                                             .load = load,
                                             .n_tokens = n_tokens,
                                             .project = project,
                                             .embed = embed,
                                             .image_begin = "",
                                             .image_end = ""});
}  // namespace
}  // namespace modu::vision
