// Gemma 3 projector ("gemma3"): SigLIP ViT with post-norm, k x k average pooling of the patch grid
// (64 x 64 -> 16 x 16 for 896 px), RMS norm (the stored weight is already 1 + w), then the input
// projection (stored [n_embd_vision, n_embd_text] as x @ W, transposed once at load).
#include <cstring>

#include "modu/core/fp16.h"
#include "ops.h"
#include "projector.h"
#include "vit_ops.h"
#include "weight_loader.h"

namespace modu::vision {
namespace {

void defaults(VisionConfig& c) {
  c.pre.mode = PreprocessConfig::Mode::kSquare;  // Gemma3ImageProcessor, resample=2
  c.pre.resample = Resample::kBilinear;
  c.pre.mean = {0.5f, 0.5f, 0.5f};
  c.pre.std = {0.5f, 0.5f, 0.5f};
}

Status load(Loader& L, const GgufFile& f, VisionConfig& c, VitWeights& w, std::vector<std::vector<float>>& owned) {
  MODU_ASSIGN_OR_RETURN(int64_t k, f.get_int("clip.vision.projector.scale_factor", 4));
  if (k <= 0 || c.patches_per_side() % k != 0)
    return corrupt(f.name() + ": pooling factor " + std::to_string(k) + " does not divide the " +
                   std::to_string(c.patches_per_side()) + "-patch grid");
  c.scale_factor = (int)k;
  const GgufTensor* t = f.tensor("mm.input_projection.weight");
  if (t == nullptr || t->shape.size() != 2 || t->shape[1] != c.n_embd)
    return corrupt(f.name() + ": 'mm.input_projection.weight' must be 2-D with ne [n_embd_text, " +
                   std::to_string(c.n_embd) + "]");
  c.n_embd_text = t->shape[0];
  const DTypeTraits* tr = dtype_traits(t->dtype);
  if (tr == nullptr || tr->dequantize == nullptr || c.n_embd_text % tr->block_size != 0)
    return unimplemented(f.name() + ": 'mm.input_projection.weight' dtype " + dtype_name(t->dtype) + " not usable");
  // Transposed into F32 rows [n_embd_text, n_embd] for ops::matmul.
  std::vector<float> src((size_t)c.n_embd * c.n_embd_text);
  const size_t rb = dtype_row_bytes(t->dtype, c.n_embd_text);
  for (int64_t i = 0; i < c.n_embd; ++i) tr->dequantize(t->data + i * rb, src.data() + i * c.n_embd_text, c.n_embd_text);
  owned.emplace_back((size_t)c.n_embd * c.n_embd_text);
  std::vector<float>& tw = owned.back();
  for (int64_t i = 0; i < c.n_embd; ++i)
    for (int64_t j = 0; j < c.n_embd_text; ++j) tw[j * c.n_embd + i] = src[i * c.n_embd_text + j];
  w.proj.resize(2);
  MODU_ASSIGN_OR_RETURN(w.proj[0], L.vec("mm.soft_emb_norm.weight", c.n_embd, true));
  w.proj[1] = Weight{t, DType::F32, c.n_embd, c.n_embd_text, reinterpret_cast<const uint8_t*>(tw.data()),
                     (size_t)c.n_embd * 4, nullptr};
  return Status::Ok();
}

int64_t n_tokens(const VisionConfig& c, int, int) {
  const int64_t s = c.patches_per_side() / c.scale_factor;
  return s * s;
}

Status project(const VisionModel& m, std::vector<float>& x, int gw, int gh, ThreadPool& pool, std::vector<float>& out) {
  const VisionConfig& c = m.config();
  const int k = c.scale_factor;
  const int64_t d = c.n_embd, ow = gw / k, oh = gh / k, n = ow * oh;
  std::vector<float> pooled(n * d, 0.0f);  // [oh * ow, d], row-major over the pooled grid
  const float inv = 1.0f / (float)(k * k);
  for (int64_t oy = 0; oy < oh; ++oy)
    for (int64_t ox = 0; ox < ow; ++ox) {
      float* o = pooled.data() + (oy * ow + ox) * d;
      for (int dy = 0; dy < k; ++dy)
        for (int dx = 0; dx < k; ++dx) {
          const float* r = x.data() + ((oy * k + dy) * gw + ox * k + dx) * d;
          for (int64_t i = 0; i < d; ++i) o[i] += r[i];
        }
      for (int64_t i = 0; i < d; ++i) o[i] *= inv;
    }
  const VitWeights& w = m.weights();
  vit::rms_norm(pooled.data(), (const float*)w.proj[0].data, n, d, c.eps, pooled.data());
  out.assign(n * c.n_embd_text, 0.0f);  // [n, n_embd_text]
  ops::matmul(w.proj[1], pooled.data(), n, out.data(), pool);
  return Status::Ok();
}

const bool kRegistered = register_projector({.name = "gemma3",
                                             .description = "Gemma 3 (SigLIP, average pool, soft-embedding norm)",
                                             .class_token = false,
                                             .apply_post_ln = true,
                                             .bidirectional = true,
                                             .defaults = defaults,
                                             .load = load,
                                             .n_tokens = n_tokens,
                                             .project = project,
                                             .image_begin = "\n\n<start_of_image>",
                                             .image_end = "<end_of_image>\n\n"});
}  // namespace
}  // namespace modu::vision
