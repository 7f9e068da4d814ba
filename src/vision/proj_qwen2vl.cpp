// Qwen2-VL and Qwen2.5-VL projectors ("qwen2vl_merger", "qwen2.5vl_merger"): dynamic resolution
// (smart resize to multiples of 2 x the patch), the Conv3d patch embedding of a still image (both
// temporal slices on the same frame: their sum), tokens in 2 x 2 patch blocks, 2-D rotary
// embeddings instead of a position table, then the merger: ln_q (v.post_ln), each block's 4 tokens
// concatenated, Linear -> GELU (erf) -> Linear. Qwen2-VL's blocks are LayerNorm + quick-GELU;
// Qwen2.5-VL's are RMS norm + gated SiLU, and all but every n_wa_pattern-th attend within windows
// of merged tokens (tokens are ordered window by window, the output put back in grid order). The
// text model reads the image with M-RoPE.
#include <algorithm>

#include "ops.h"
#include "projector.h"
#include "vit_ops.h"
#include "weight_loader.h"

namespace modu::vision {
namespace {

void defaults(VisionConfig& c) {
  c.pre.mode = PreprocessConfig::Mode::kSmartResize;  // Qwen2VLImageProcessor
  c.pre.resample = Resample::kBicubic;
  c.pre.min_pixels = 56 * 56;
  c.pre.max_pixels = 28 * 28 * 1280;
  c.pre.mean = {0.48145466f, 0.4578275f, 0.40821073f};
  c.pre.std = {0.26862954f, 0.26130258f, 0.27577711f};
}

Status load(Loader& L, const GgufFile& f, VisionConfig& c, VitWeights& w, std::vector<std::vector<float>>& owned) {
  MODU_ASSIGN_OR_RETURN(int64_t merge, f.get_int("clip.vision.spatial_merge_size", 2));
  if (merge != 2) return unimplemented(f.name() + ": spatial_merge_size " + std::to_string(merge) + " (only 2 is supported)");
  c.pre.factor = (int)(2 * c.patch_size);
  MODU_ASSIGN_OR_RETURN(int64_t min_px, f.get_int("clip.vision.min_pixels", c.pre.min_pixels));
  MODU_ASSIGN_OR_RETURN(int64_t max_px, f.get_int("clip.vision.max_pixels", c.pre.max_pixels));
  if (min_px <= 0 || max_px < min_px) return corrupt(f.name() + ": min_pixels / max_pixels out of order");
  c.pre.min_pixels = min_px;
  c.pre.max_pixels = max_px;
  // The second temporal slice of the Conv3d: a still image is both frames, so the two kernels add.
  const GgufTensor* t1 = f.tensor("v.patch_embd.weight.1");
  if (t1 == nullptr || t1->shape != w.patch.tensor->shape)
    return corrupt(f.name() + ": 'v.patch_embd.weight.1' is missing or shaped unlike 'v.patch_embd.weight'");
  const int64_t n = w.patch.rows * w.patch.cols;
  std::vector<float> a(n), b(n);
  dtype_traits(w.patch.dtype)->dequantize(w.patch.data, a.data(), n);
  const DTypeTraits* tr1 = dtype_traits(t1->dtype);
  if (tr1 == nullptr || tr1->block_size != 1)
    return unimplemented(f.name() + ": 'v.patch_embd.weight.1' must be F32, F16 or BF16");
  tr1->dequantize(t1->data, b.data(), n);
  for (int64_t i = 0; i < n; ++i) a[i] += b[i];
  owned.push_back(std::move(a));
  w.patch.dtype = DType::F32;
  w.patch.data = reinterpret_cast<const uint8_t*>(owned.back().data());
  w.patch.row_bytes = (size_t)w.patch.cols * 4;
  const GgufTensor* t0 = f.tensor("mm.0.weight");
  const GgufTensor* t2 = f.tensor("mm.2.weight");
  if (t0 == nullptr || t2 == nullptr || t0->shape.size() != 2 || t2->shape.size() != 2)
    return corrupt(f.name() + ": the qwen2vl merger needs 2-D tensors 'mm.0.weight' and 'mm.2.weight'");
  const int64_t hidden = t0->shape[1];
  c.n_embd_text = t2->shape[1];
  w.proj.resize(4);
  MODU_ASSIGN_OR_RETURN(w.proj[0], L.matrix("mm.0.weight", 4 * c.n_embd, hidden, true));
  MODU_ASSIGN_OR_RETURN(w.proj[1], L.vec("mm.0.bias", hidden, false));
  MODU_ASSIGN_OR_RETURN(w.proj[2], L.matrix("mm.2.weight", hidden, c.n_embd_text, true));
  MODU_ASSIGN_OR_RETURN(w.proj[3], L.vec("mm.2.bias", c.n_embd_text, false));
  if (c.projector == "qwen2.5vl_merger") {
    c.rms_norm = true;
    MODU_ASSIGN_OR_RETURN(int64_t pattern, f.get_int("clip.vision.n_wa_pattern"));
    MODU_ASSIGN_OR_RETURN(int64_t window_px, f.get_int("clip.vision.window_size", 112));
    if (pattern <= 0 || window_px < 2 * c.patch_size)
      return corrupt(f.name() + ": n_wa_pattern must be positive and window_size at least one merged token");
    c.wa_pattern = (int)pattern;
    c.window = (int)(window_px / (2 * c.patch_size));  // in merged (2 x 2) tokens
    if (!w.layers.empty() && !w.layers[0].gate)
      return corrupt(f.name() + ": Qwen2.5-VL blocks need 'ffn_gate' (gated SiLU feed-forward)");
  } else if (!w.layers.empty() && w.layers[0].gate) {
    return corrupt(f.name() + ": a qwen2vl_merger projector has 'ffn_gate' tensors; is it qwen2.5vl_merger?");
  }
  return Status::Ok();
}

// Merged tokens (2 x 2 patch blocks) in attention order: row-major, or window by window (windows
// row-major, merged tokens row-major inside each, partial windows at the right and bottom edges).
void merged_order(const VisionConfig& c, int mw, int mh, std::vector<int32_t>& merged, std::vector<int64_t>& starts) {
  merged.clear();
  starts.clear();
  const int ws = c.wa_pattern > 0 ? c.window : std::max(mw, mh);
  for (int wy = 0; wy < mh; wy += ws)
    for (int wx = 0; wx < mw; wx += ws) {
      starts.push_back((int64_t)merged.size());
      for (int y = wy; y < std::min(mh, wy + ws); ++y)
        for (int x = wx; x < std::min(mw, wx + ws); ++x) merged.push_back(y * mw + x);
    }
}

// Each merged token's 4 patches (row by row) are consecutive tokens, in merged_order.
void layout(const VisionConfig& c, int gw, int gh, std::vector<int32_t>& out, std::vector<int64_t>& windows) {
  std::vector<int32_t> merged;
  std::vector<int64_t> starts;
  merged_order(c, gw / 2, gh / 2, merged, starts);
  out.clear();
  for (int32_t m : merged) {
    const int my = m / (gw / 2), mx = m % (gw / 2);
    for (int dy = 0; dy < 2; ++dy)
      for (int dx = 0; dx < 2; ++dx) out.push_back((2 * my + dy) * gw + 2 * mx + dx);
  }
  windows.clear();
  if (c.wa_pattern > 0)
    for (int64_t s : starts) windows.push_back(4 * s);
}

int64_t n_tokens(const VisionConfig& c, int width, int height) {
  return (int64_t)(width / (2 * c.patch_size)) * (height / (2 * c.patch_size));
}

Status project(const VisionModel& m, std::vector<float>& x, int gw, int gh, ThreadPool& pool, std::vector<float>& out) {
  if (gw % 2 != 0 || gh % 2 != 0) return invalid_argument("qwen2vl merger: the patch grid must be even both ways");
  const VitWeights& w = m.weights();
  const int64_t n = (int64_t)gw * gh / 4, hidden = w.proj[0].rows, dt = m.config().n_embd_text;
  std::vector<float> h(n * hidden);  // x viewed as [n, 4 n_embd]: each block's tokens are consecutive
  ops::matmul(w.proj[0], x.data(), n, h.data(), pool);
  if (w.proj[1]) ops::add_bias(h.data(), (const float*)w.proj[1].data, n, hidden);
  vit::activate(h.data(), n * hidden, VitAct::kGeluErf, pool);
  std::vector<float> y(n * dt);  // [n, n_embd_text], in merged_order
  ops::matmul(w.proj[2], h.data(), n, y.data(), pool);
  if (w.proj[3]) ops::add_bias(y.data(), (const float*)w.proj[3].data, n, dt);
  std::vector<int32_t> merged;  // back to row-major over the merged grid
  std::vector<int64_t> starts;
  merged_order(m.config(), gw / 2, gh / 2, merged, starts);
  out.assign(n * dt, 0.0f);
  for (int64_t k = 0; k < n; ++k) std::copy_n(y.data() + k * dt, dt, out.data() + (int64_t)merged[k] * dt);
  return Status::Ok();
}

// The two generations share everything but the name: load() reads which blocks they have.
ProjectorFamily family(const char* name, const char* description) {
  return {.name = name,
          .description = description,
          .class_token = false,
          .apply_post_ln = true,
          .bidirectional = false,
          .learned_pos = false,
          .rope2d = true,
          .layout = layout,
          .mrope = true,
          .defaults = defaults,
          .load = load,
          .n_tokens = n_tokens,
          .project = project,
          .image_begin = "<|vision_start|>",
          .image_end = "<|vision_end|>"};
}

const bool kRegistered = register_projector(family("qwen2vl_merger", "Qwen2-VL (dynamic resolution, 2-D RoPE, 2x2 merger)"));
const bool kRegistered25 = register_projector(
    family("qwen2.5vl_merger", "Qwen2.5-VL (dynamic resolution, 2-D RoPE, window attention, 2x2 merger)"));
}  // namespace
}  // namespace modu::vision
