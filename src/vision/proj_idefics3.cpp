// Idefics3 / SmolVLM projector ("idefics3"): SigLIP ViT with post-norm, pixel shuffle by the scale
// factor s (each s x s block of patches becomes one token of s^2 x n_embd channels, channel
// c + C (dx + s dy)), then one linear layer without bias. Images are encoded whole (the
// processor's optional tiling into sub-images is not done; see ARCHITECTURE.md).
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

const bool kRegistered = register_projector({.name = "idefics3",
                                             .description = "Idefics3 / SmolVLM (SigLIP, pixel shuffle, linear)",
                                             .class_token = false,
                                             .apply_post_ln = true,
                                             .defaults = defaults,
                                             .load = load,
                                             .n_tokens = n_tokens,
                                             .project = project,
                                             .image_begin = "<fake_token_around_image><global-img>",
                                             .image_end = "<fake_token_around_image>"});
}  // namespace
}  // namespace modu::vision
