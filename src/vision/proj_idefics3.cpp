// Idefics3 / SmolVLM projector ("idefics3"): SigLIP ViT with post-norm, pixel shuffle by the scale
// factor s (each s x s block of patches becomes one token of s^2 x n_embd channels, channel
// c + C (dx + s dy)), then one linear layer without bias. With image splitting (the processor's
// default) an image is a grid of encoder-sized tiles, each after its "<row_R_col_C>" token, then a
// global view, as Idefics3Processor writes the prompt.
#include "ops.h"
#include "projector.h"
#include "weight_loader.h"

namespace modu::vision {
namespace {

void defaults(VisionConfig& c) {
  c.pre.mode = PreprocessConfig::Mode::kLongestEdgeSquare;  // Idefics3ImageProcessor, resample=1
  c.pre.resample = Resample::kLanczos;
  c.pre.mean = {0.5f, 0.5f, 0.5f};
  c.pre.std = {0.5f, 0.5f, 0.5f};
}

Status load(Loader& L, const GgufFile& f, VisionConfig& c, VitWeights& w, std::vector<std::vector<float>>&) {
  MODU_ASSIGN_OR_RETURN(int64_t s, f.get_int("clip.vision.projector.scale_factor", 2));
  if (s <= 1 || c.patches_per_side() % s != 0)
    return corrupt(f.name() + ": pixel-shuffle factor " + std::to_string(s) + " must be > 1 and divide the " +
                   std::to_string(c.patches_per_side()) + "-patch grid");
  c.scale_factor = (int)s;
  MODU_ASSIGN_OR_RETURN(int64_t longest, f.get_int("clip.vision.preproc_image_size", 0));
  c.pre.longest_edge = (int)longest;
  // do_image_splitting (modu's key; llama.cpp files split whenever the longest edge exceeds a tile).
  MODU_ASSIGN_OR_RETURN(bool split, f.get_bool("clip.vision.image_splitting", true));
  c.pre.split = split && longest > c.image_size;
  const GgufTensor* t = f.tensor("mm.model.fc.weight");
  if (t == nullptr || t->shape.size() != 2)
    return corrupt(f.name() + ": the idefics3 projector needs a 2-D 'mm.model.fc.weight'");
  c.n_embd_text = t->shape[1];
  w.proj.resize(1);
  MODU_ASSIGN_OR_RETURN(w.proj[0], L.matrix("mm.model.fc.weight", c.n_embd * s * s, c.n_embd_text, true));
  return Status::Ok();
}

int64_t n_tokens(const VisionConfig& c, int, int) {
  const int64_t g = c.patches_per_side() / c.scale_factor;
  return g * g;
}

Status project(const VisionModel& m, std::vector<float>& x, int gw, int gh, ThreadPool& pool, std::vector<float>& out) {
  const VisionConfig& c = m.config();
  const int s = c.scale_factor;
  const int64_t C = c.n_embd, ow = gw / s, oh = gh / s, n = ow * oh, cs = C * s * s;
  std::vector<float> shuf(n * cs);  // [n, s^2 C]
  for (int64_t y = 0; y < gh; ++y)
    for (int64_t xx = 0; xx < gw; ++xx) {
      const float* r = x.data() + (y * gw + xx) * C;
      float* o = shuf.data() + ((y / s) * ow + xx / s) * cs + C * ((xx % s) + s * (y % s));
      std::copy_n(r, C, o);
    }
  out.assign(n * c.n_embd_text, 0.0f);  // [n, n_embd_text]
  ops::matmul(m.weights().proj[0], shuf.data(), n, out.data(), pool);
  return Status::Ok();
}

// Idefics3ImageProcessor (do_image_splitting) + Idefics3Processor._prompt_split_image.
Status embed(const VisionModel& m, const Image& img, ThreadPool& pool, ImageEmbedding& e) {
  const VisionConfig& c = m.config();
  if (!c.pre.split) return embed_whole(m, img, pool, e);
  MODU_ASSIGN_OR_RETURN(Tiles t, idefics3_tiles(img, c.pre.longest_edge, (int)c.image_size, c.pre.resample));
  const int64_t per = n_tokens(c, 0, 0), side = c.patches_per_side() / c.scale_factor;
  std::vector<float> tile;
  e.embd.clear();
  e.segments.clear();
  for (int r = 0; r < t.rows; ++r)
    for (int col = 0; col < t.cols; ++col) {
      MODU_RETURN_IF_ERROR(encode_tile(m, t.grid[r * t.cols + col], pool, tile));
      e.embd.insert(e.embd.end(), tile.begin(), tile.end());
      e.segments.push_back({std::string(col == 0 && r > 0 ? "\n" : "") + "<fake_token_around_image><row_" +
                                std::to_string(r + 1) + "_col_" + std::to_string(col + 1) + ">",
                            per, (int)side, (int)side});
    }
  MODU_RETURN_IF_ERROR(encode_tile(m, t.global, pool, tile));
  e.embd.insert(e.embd.end(), tile.begin(), tile.end());
  e.segments.push_back({std::string(t.rows > 0 ? "\n\n" : "") + m.markers().begin, per, (int)side, (int)side});
  e.text_after = m.markers().end;
  e.n_tokens = per * (int64_t)e.segments.size();
  e.n_encoder_runs = (int)e.segments.size();
  return Status::Ok();
}

const bool kRegistered = register_projector({.name = "idefics3",
                                             .description = "Idefics3 / SmolVLM (SigLIP, pixel shuffle, linear)",
                                             .class_token = false,
                                             .apply_post_ln = true,
                                             .defaults = defaults,
                                             .load = load,
                                             .n_tokens = n_tokens,
                                             .project = project,
                                             .embed = embed,
                                             .image_begin = "<fake_token_around_image><global-img>",
                                             .image_end = "<fake_token_around_image>"});
}  // namespace
}  // namespace modu::vision
