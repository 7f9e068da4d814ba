// Random-weight mmproj files (see random_mmproj.h).
#include "modu/vision/random_mmproj.h"

#include <cmath>
#include <random>

#include "modu/gguf/gguf.h"

namespace modu::vision {

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
}  // namespace

Result<std::vector<uint8_t>> write_random_mmproj(const MmprojSpec& s) {
  Gen g{std::mt19937_64(s.seed)};
  GgufWriter w;
  const int64_t d = s.n_embd, p = s.patch_size, side = s.image_size / p;
  const bool cls = s.projector == "mlp" && s.class_token;
  const int64_t n_pos = side * side + (cls ? 1 : 0);
  const int64_t n_blocks = s.feature_layer > 0 ? s.n_layer + 1 : s.n_layer;
  w.set("general.architecture", GgufValue::string("clip"));
  w.set("general.type", GgufValue::string("mmproj"));
  w.set("clip.projector_type", GgufValue::string(s.projector));
  w.set("clip.has_vision_encoder", GgufValue::boolean(true));
  const bool q25 = s.projector == "qwen2.5vl_merger";
  w.set("clip.use_gelu", GgufValue::boolean(s.use_gelu && !q25));
  if (q25) {  // RMS norms, gated SiLU, window attention
    w.set("clip.use_silu", GgufValue::boolean(true));
    w.set("clip.vision.n_wa_pattern", GgufValue::u32((uint32_t)s.wa_pattern));
    w.set("clip.vision.window_size", GgufValue::u32((uint32_t)s.window_px));
  }
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
  if (!s.grid_pinpoints.empty()) {
    std::vector<int32_t> flat;
    for (const auto& [h, wd] : s.grid_pinpoints) flat.insert(flat.end(), {h, wd});
    w.set("clip.vision.image_grid_pinpoints", GgufValue::i32_array(flat));
    w.set("clip.vision.mm_patch_merge_type", GgufValue::string("spatial_unpad"));
  }
  if (s.anyres_max > 0) w.set("clip.vision.anyres_max_patches", GgufValue::u32((uint32_t)s.anyres_max));
  if (s.preproc_image_size > 0) w.set("clip.vision.preproc_image_size", GgufValue::u32((uint32_t)s.preproc_image_size));
  if (s.feature_layer > 0) w.set("clip.vision.feature_layer", GgufValue::i32_array({(int32_t)s.feature_layer}));
  Status err;
  auto add = [&](const std::string& name, DType t, std::vector<int64_t> shape, const std::vector<float>& v) {
    if (!err.ok()) return;
    err = w.add_tensor_f32(name, t, shape, v.data());
  };
  // Matrices in the chosen dtype; rows it cannot hold (SigLIP's 4304-wide FFN in Q8_0) stay F16,
  // as llama.cpp's converter keeps them.
  auto mtype = [&](int64_t cols) {
    const DTypeTraits* tr = dtype_traits(s.weight_type);
    return tr && cols % tr->block_size == 0 ? s.weight_type : DType::F16;
  };
  const DType mt = s.weight_type;
  add("v.patch_embd.weight", mt == DType::F32 ? DType::F32 : DType::F16, {p, p, 3, d},
      g.normal(3 * p * p * d, 1.0 / std::sqrt(3.0 * p * p)));
  if (!cls && s.projector.rfind("qwen", 0) != 0) add("v.patch_embd.bias", DType::F32, {d}, g.normal(d, 0.1));
  const bool qwen = s.projector == "qwen2vl_merger" || q25;
  if (qwen) {  // the Conv3d's second temporal slice; positions are rotary, not a table
    add("v.patch_embd.weight.1", mt == DType::F32 ? DType::F32 : DType::F16, {p, p, 3, d},
        g.normal(3 * p * p * d, 1.0 / std::sqrt(3.0 * p * p)));
  } else {
    add("v.position_embd.weight", DType::F32, {d, n_pos}, g.normal(d * n_pos, 0.3));
  }
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
      if (!q25) add(b + ln + ".bias", DType::F32, {d}, g.normal(d, 0.1));
    }
    if (q25) {
      add(b + "ffn_gate.weight", mtype(d), {d, s.n_ff}, g.normal(d * s.n_ff, sd));
      add(b + "ffn_gate.bias", DType::F32, {s.n_ff}, g.normal(s.n_ff, 0.05));
    }
    for (const char* m : {"attn_q", "attn_k", "attn_v", "attn_out"}) {
      add(b + m + ".weight", mtype(d), {d, d}, g.normal(d * d, sd));
      add(b + m + ".bias", DType::F32, {d}, g.normal(d, 0.05));
    }
    const std::string up = s.legacy_ffn_names ? "ffn_down" : "ffn_up", down = s.legacy_ffn_names ? "ffn_up" : "ffn_down";
    add(b + up + ".weight", mtype(d), {d, s.n_ff}, g.normal(d * s.n_ff, sd));
    add(b + up + ".bias", DType::F32, {s.n_ff}, g.normal(s.n_ff, 0.05));
    add(b + down + ".weight", mtype(s.n_ff), {s.n_ff, d}, g.normal(d * s.n_ff, sf));
    add(b + down + ".bias", DType::F32, {d}, g.normal(d, 0.05));
  }
  add("v.post_ln.weight", DType::F32, {d}, g.normal(d, 0.1, 1.0));
  if (!q25) add("v.post_ln.bias", DType::F32, {d}, g.normal(d, 0.1));
  if (qwen) {
    add("mm.0.weight", mtype(4 * d), {4 * d, s.mlp_hidden}, g.normal(4 * d * s.mlp_hidden, sd / 2));
    add("mm.0.bias", DType::F32, {s.mlp_hidden}, g.normal(s.mlp_hidden, 0.05));
    add("mm.2.weight", mtype(s.mlp_hidden), {s.mlp_hidden, s.n_embd_text}, g.normal(s.mlp_hidden * s.n_embd_text, 1.0 / std::sqrt((double)s.mlp_hidden)));
    add("mm.2.bias", DType::F32, {s.n_embd_text}, g.normal(s.n_embd_text, 0.05));
  } else if (s.projector == "mlp") {
    add("mm.0.weight", mtype(d), {d, s.mlp_hidden}, g.normal(d * s.mlp_hidden, sd));
    add("mm.0.bias", DType::F32, {s.mlp_hidden}, g.normal(s.mlp_hidden, 0.05));
    add("mm.2.weight", mtype(s.mlp_hidden), {s.mlp_hidden, s.n_embd_text}, g.normal(s.mlp_hidden * s.n_embd_text, 1.0 / std::sqrt((double)s.mlp_hidden)));
    add("mm.2.bias", DType::F32, {s.n_embd_text}, g.normal(s.n_embd_text, 0.05));
    if (s.image_newline) add("model.image_newline", DType::F32, {s.n_embd_text}, g.normal(s.n_embd_text, 1.0));
  } else if (s.projector == "gemma3") {
    add("mm.soft_emb_norm.weight", DType::F32, {d}, g.normal(d, 0.1, 1.0));
    add("mm.input_projection.weight", mt == DType::F32 ? DType::F32 : DType::F16, {s.n_embd_text, d},
        g.normal(d * s.n_embd_text, sd));
  } else if (s.projector == "idefics3") {
    const int64_t cin = d * s.scale_factor * s.scale_factor;
    add("mm.model.fc.weight", mtype(cin), {cin, s.n_embd_text}, g.normal(cin * s.n_embd_text, 1.0 / std::sqrt((double)cin)));
  }
  if (!err.ok()) return err;
  return w.serialize();
}

std::vector<uint8_t> make_random_mmproj(const MmprojSpec& s) {
  auto r = write_random_mmproj(s);
  MODU_CHECK_MSG(r.ok(), r.status().to_string());
  return std::move(r).value();
}


}  // namespace modu::vision
