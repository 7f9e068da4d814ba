// LLaVA-style MLP projector ("mlp": LLaVA 1.5 / 1.6 base images, and the Korean models built on
// them): CLIP ViT with a class token and pre-norm, the penultimate layer's output (the converter
// stores only the blocks that run), class token dropped, then Linear -> GELU (erf) -> Linear.
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
  w.proj.resize(4);
  MODU_ASSIGN_OR_RETURN(w.proj[0], L.matrix("mm.0.weight", c.n_embd, hidden, true));
  MODU_ASSIGN_OR_RETURN(w.proj[1], L.vec("mm.0.bias", hidden, false));
  MODU_ASSIGN_OR_RETURN(w.proj[2], L.matrix("mm.2.weight", hidden, c.n_embd_text, true));
  MODU_ASSIGN_OR_RETURN(w.proj[3], L.vec("mm.2.bias", c.n_embd_text, false));
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

const bool kRegistered = register_projector({.name = "mlp",
                                             .description = "LLaVA MLP (CLIP ViT, 2-layer GELU MLP)",
                                             .class_token = true,
                                             .apply_post_ln = false,
                                             .defaults = defaults,
                                             .load = load,
                                             .n_tokens = n_tokens,
                                             .project = project,
                                             .image_begin = "",
                                             .image_end = ""});
}  // namespace
}  // namespace modu::vision
