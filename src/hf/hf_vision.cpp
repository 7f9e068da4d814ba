// The vision part of Hugging Face multimodal folders (LLaVA 1.5, LLaVA-NeXT, LLaVA-OneVision,
// Gemma 3, Idefics3 / SmolVLM) as an
// mmproj-layout GgufFile: config.json's vision_config and preprocessor_config.json become clip.*
// metadata, vision-tower and projector tensors get llama.cpp's mmproj names (views into the
// safetensors maps), so VisionModel loads a folder through the same path as an mmproj file.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "hf_internal.h"
#include "modu/hf/hf_model.h"

namespace modu {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// The family from config.json (architectures[0], else model_type).
std::string family_of(const json& j) {
  std::string a;
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string())
    a = j["architectures"][0].get<std::string>();
  const std::string mt = j.value("model_type", std::string());
  if (a == "LlavaForConditionalGeneration" || a == "LlavaNextForConditionalGeneration" ||
      a == "LlavaOnevisionForConditionalGeneration" || mt == "llava" || mt == "llava_next" || mt == "llava_onevision")
    return "mlp";
  if (a == "Gemma3ForConditionalGeneration" || mt == "gemma3") return "gemma3";
  if (a == "Qwen2VLForConditionalGeneration" || mt == "qwen2_vl") return "qwen2vl_merger";
  if (a == "Qwen2_5_VLForConditionalGeneration" || mt == "qwen2_5_vl") return "qwen2.5vl_merger";
  if (a == "Idefics3ForConditionalGeneration" || a == "SmolVLMForConditionalGeneration" || mt == "idefics3" ||
      mt == "smolvlm")
    return "idefics3";
  return "";
}

// "…vision_model.encoder.layers.3.self_attn.q_proj.weight" -> "v.blk.3.attn_q.weight"; "" to skip.
std::string vision_name(const std::string& fam, const std::string& n) {
  static const char* towers[] = {"model.vision_tower.vision_model.", "vision_tower.vision_model.", "model.vision_model.",
                                 "vision_model."};
  for (const char* t : towers) {
    if (n.rfind(t, 0) != 0) continue;
    const std::string r = n.substr(std::strlen(t));
    static const std::map<std::string, std::string> fixed = {
        {"embeddings.patch_embedding.weight", "v.patch_embd.weight"},
        {"embeddings.patch_embedding.bias", "v.patch_embd.bias"},
        {"embeddings.class_embedding", "v.class_embd"},
        {"embeddings.position_embedding.weight", "v.position_embd.weight"},
        {"pre_layrnorm.weight", "v.pre_ln.weight"},
        {"pre_layrnorm.bias", "v.pre_ln.bias"},
        {"post_layernorm.weight", "v.post_ln.weight"},
        {"post_layernorm.bias", "v.post_ln.bias"}};
    if (auto it = fixed.find(r); it != fixed.end()) return it->second;
    const std::string lp = "encoder.layers.";
    if (r.rfind(lp, 0) != 0) return "";
    const size_t dot = r.find('.', lp.size());
    if (dot == std::string::npos) return "";
    const std::string il = r.substr(lp.size(), dot - lp.size()), rest = r.substr(dot + 1);
    static const std::map<std::string, std::string> parts = {
        {"self_attn.q_proj", "attn_q"}, {"self_attn.k_proj", "attn_k"}, {"self_attn.v_proj", "attn_v"},
        {"self_attn.out_proj", "attn_out"}, {"layer_norm1", "ln1"}, {"layer_norm2", "ln2"},
        {"mlp.fc1", "ffn_up"}, {"mlp.fc2", "ffn_down"}};
    const size_t last = rest.rfind('.');
    if (last == std::string::npos) return "";
    auto it = parts.find(rest.substr(0, last));
    if (it == parts.end()) return "";
    return "v.blk." + il + "." + it->second + rest.substr(last);
  }
  if (fam == "mlp" && (n == "image_newline" || n == "model.image_newline")) return "model.image_newline";
  for (const char* pre : {"model.multi_modal_projector.", "multi_modal_projector.", "model.connector.", "connector."}) {
    if (n.rfind(pre, 0) != 0) continue;
    const std::string r = n.substr(std::strlen(pre));
    if (fam == "mlp") {
      if (r.rfind("linear_1.", 0) == 0) return "mm.0." + r.substr(9);
      if (r.rfind("linear_2.", 0) == 0) return "mm.2." + r.substr(9);
    } else if (fam == "gemma3") {
      if (r == "mm_input_projection_weight") return "mm.input_projection.weight";
      if (r == "mm_soft_emb_norm.weight") return "mm.soft_emb_norm.weight";
    } else if (fam == "idefics3") {
      if (r == "modality_projection.proj.weight") return "mm.model.fc.weight";
    }
  }
  return "";
}

// Qwen2-VL / Qwen2.5-VL tower tensors ("visual." or "model.visual.") as mmproj tensors: the fused
// qkv rows split into q, k, v (views), the Conv3d's two temporal slices copied apart
// (v.patch_embd.weight and .1), the merger's ln_q as v.post_ln. Returns false for other tensors.
Result<bool> add_qwen_tensor(const SafetensorsTensor& t, DType dt, HfOwner& owner, std::vector<GgufTensor>& out) {
  std::string r;
  for (const char* pre : {"model.visual.", "visual."})
    if (t.name.rfind(pre, 0) == 0) {
      r = t.name.substr(std::strlen(pre));
      break;
    }
  if (r.empty()) return false;
  auto view = [&](const std::string& name, std::vector<int64_t> ne, const uint8_t* data, size_t nbytes) {
    GgufTensor g;
    g.name = name;
    g.dtype = dt;
    g.shape = std::move(ne);
    g.data = data;
    g.nbytes = nbytes;
    out.push_back(std::move(g));
  };
  auto plain = [&](const std::string& name) {
    view(name, std::vector<int64_t>(t.shape.rbegin(), t.shape.rend()), t.data, t.nbytes);
    return true;
  };
  const size_t es = dtype_row_bytes(dt, 1);
  if (r == "patch_embed.proj.weight") {  // [D, 3, T = 2, P, P] -> two [D, 3, P, P]
    if (t.shape.size() != 5 || t.shape[2] != 2 || t.shape[1] != 3)
      return corrupt("'" + t.name + "' must be a Conv3d weight [width, 3, 2, patch, patch]");
    const int64_t D = t.shape[0], P = t.shape[3] * t.shape[4];
    for (int64_t slice = 0; slice < 2; ++slice) {
      owner.owned.emplace_back((size_t)(D * 3 * P) * es);
      uint8_t* o = owner.owned.back().data();
      for (int64_t d = 0; d < D * 3; ++d)  // (d, c) rows: the slice's P values
        std::memcpy(o + (size_t)(d * P) * es, t.data + (size_t)((d * 2 + slice) * P) * es, (size_t)P * es);
      view(slice == 0 ? "v.patch_embd.weight" : "v.patch_embd.weight.1", {t.shape[4], t.shape[3], 3, D}, o,
           owner.owned.back().size());
    }
    return true;
  }
  if (r == "merger.ln_q.weight") return plain("v.post_ln.weight");
  if (r == "merger.ln_q.bias") return plain("v.post_ln.bias");
  for (const char* k : {"weight", "bias"}) {
    if (r == std::string("merger.mlp.0.") + k) return plain(std::string("mm.0.") + k);
    if (r == std::string("merger.mlp.2.") + k) return plain(std::string("mm.2.") + k);
  }
  if (r.rfind("blocks.", 0) != 0) return false;
  const size_t dot = r.find('.', 7), last = r.rfind('.');
  if (dot == std::string::npos || last <= dot) return false;
  const std::string b = "v.blk." + r.substr(7, dot - 7) + ".", part = r.substr(dot + 1, last - dot - 1), kind = r.substr(last);
  if (part == "attn.qkv") {  // rows q, then k, then v
    if (t.shape.empty() || t.shape[0] % 3 != 0) return corrupt("'" + t.name + "' does not split into q, k and v");
    const int64_t rows = t.shape[0] / 3;
    const size_t bytes = t.nbytes / 3;
    std::vector<int64_t> ne(t.shape.rbegin(), t.shape.rend());
    ne.back() = rows;
    const char* names[] = {"attn_q", "attn_k", "attn_v"};
    for (int i = 0; i < 3; ++i) view(b + names[i] + kind, ne, t.data + i * bytes, bytes);
    return true;
  }
  static const std::map<std::string, std::string> parts = {
      {"norm1", "ln1"}, {"norm2", "ln2"}, {"attn.proj", "attn_out"}, {"mlp.fc1", "ffn_up"}, {"mlp.fc2", "ffn_down"},
      {"mlp.gate_proj", "ffn_gate"}, {"mlp.up_proj", "ffn_up"}, {"mlp.down_proj", "ffn_down"}};
  auto it = parts.find(part);
  if (it == parts.end()) return false;
  return plain(b + it->second + kind);
}

// config.json of a Qwen2-VL / Qwen2.5-VL folder -> clip.* metadata.
Status qwen_metadata(const json& v, const std::string& fam, const std::string& dir, GgufMetadata& md) {
  const bool q25 = fam == "qwen2.5vl_merger";
  auto need = [&](const char* key) -> Result<int64_t> {
    if (!v.contains(key) || !v[key].is_number_integer() || v[key].get<int64_t>() <= 0)
      return corrupt(dir + "/config.json: vision_config." + key + " must be a positive integer");
    return v[key].get<int64_t>();
  };
  auto u32 = [&](const std::string& k, int64_t x) { md.emplace_back(k, GgufValue::u32((uint32_t)x)); };
  MODU_ASSIGN_OR_RETURN(int64_t width, need(q25 ? "hidden_size" : "embed_dim"));
  MODU_ASSIGN_OR_RETURN(int64_t depth, need("depth"));
  MODU_ASSIGN_OR_RETURN(int64_t heads, need("num_heads"));
  MODU_ASSIGN_OR_RETURN(int64_t patch, need("patch_size"));
  int64_t ff = 0;
  if (q25) {
    MODU_ASSIGN_OR_RETURN(ff, need("intermediate_size"));
  } else {
    if (!v.contains("mlp_ratio") || !v["mlp_ratio"].is_number()) return corrupt(dir + "/config.json: vision_config.mlp_ratio is missing");
    ff = (int64_t)(width * v["mlp_ratio"].get<double>());
  }
  if (v.value("spatial_merge_size", (int64_t)2) != 2 || v.value("temporal_patch_size", (int64_t)2) != 2)
    return unimplemented(dir + ": spatial_merge_size and temporal_patch_size other than 2");
  const std::string act = v.value("hidden_act", std::string(q25 ? "silu" : "quick_gelu"));
  if (act != (q25 ? "silu" : "quick_gelu"))
    return unimplemented(dir + ": vision_config.hidden_act '" + act + "' for " + fam);
  md.emplace_back("clip.use_silu", GgufValue::boolean(q25));
  u32("clip.vision.image_size", patch * 40);  // nominal: the input size is dynamic
  u32("clip.vision.patch_size", patch);
  u32("clip.vision.embedding_length", width);
  u32("clip.vision.feed_forward_length", ff);
  u32("clip.vision.block_count", depth);
  u32("clip.vision.attention.head_count", heads);
  u32("clip.vision.spatial_merge_size", 2);
  md.emplace_back("clip.vision.attention.layer_norm_epsilon", GgufValue::f32(1e-6f));
  if (q25) {  // every k-th block global: fullatt_block_indexes k-1, 2k-1, ...
    const json& fb = v.contains("fullatt_block_indexes") ? v["fullatt_block_indexes"] : json::array();
    int64_t k = fb.is_array() && !fb.empty() && fb[0].is_number_integer() ? fb[0].get<int64_t>() + 1 : 0;
    for (size_t i = 0; k > 0 && i < fb.size(); ++i)
      if (!fb[i].is_number_integer() || fb[i].get<int64_t>() != (int64_t)(i + 1) * k - 1) k = 0;
    if (k <= 0) return unimplemented(dir + ": fullatt_block_indexes must be every k-th block (k-1, 2k-1, ...)");
    u32("clip.vision.n_wa_pattern", k);
    u32("clip.vision.window_size", v.value("window_size", (int64_t)112));
  }
  return Status::Ok();
}

}  // namespace

bool hf_folder_has_vision(const std::string& dir) {
  auto text = read_text((fs::path(dir) / "config.json").string(), false);
  if (!text.ok() || text->empty()) return false;
  const json j = json::parse(*text, nullptr, false);
  return j.is_object() && j.contains("vision_config") && !family_of(j).empty();
}

Result<GgufFile> open_hf_vision_folder(const std::string& dir) {
  const fs::path d(dir);
  MODU_ASSIGN_OR_RETURN(std::string config, read_text((d / "config.json").string(), true));
  const json j = json::parse(config, nullptr, false);
  if (!j.is_object()) return corrupt(dir + "/config.json is not a JSON object");
  const std::string fam = family_of(j);
  if (fam.empty())
    return unimplemented(dir + ": no supported vision model in config.json (LLaVA, Gemma 3, Idefics3 / SmolVLM folders "
                         "load; others need their mmproj GGUF)");
  if (!j.contains("vision_config") || !j["vision_config"].is_object())
    return corrupt(dir + "/config.json has no vision_config object");
  const json& v = j["vision_config"];
  const bool qwen = fam.rfind("qwen", 0) == 0;
  GgufMetadata md;
  md.reserve(32);  // (also keeps GCC 12 from a false -Warray-bounds on the first emplace)
  md.emplace_back("general.architecture", GgufValue::string("clip"));
  md.emplace_back("general.type", GgufValue::string("mmproj"));
  md.emplace_back("clip.projector_type", GgufValue::string(fam));
  md.emplace_back("clip.has_vision_encoder", GgufValue::boolean(true));
  if (qwen) MODU_RETURN_IF_ERROR(qwen_metadata(v, fam, dir, md));
  auto u32 = [&](const std::string& k, int64_t x) { md.emplace_back(k, GgufValue::u32((uint32_t)x)); };
  if (!qwen) {
    auto need = [&](const char* key) -> Result<int64_t> {
      if (!v.contains(key) || !v[key].is_number_integer() || v[key].get<int64_t>() <= 0)
        return corrupt(dir + "/config.json: vision_config." + key + " must be a positive integer");
      return v[key].get<int64_t>();
    };
    MODU_ASSIGN_OR_RETURN(int64_t width, need("hidden_size"));
    MODU_ASSIGN_OR_RETURN(int64_t ff, need("intermediate_size"));
    MODU_ASSIGN_OR_RETURN(int64_t layers, need("num_hidden_layers"));
    MODU_ASSIGN_OR_RETURN(int64_t heads, need("num_attention_heads"));
    MODU_ASSIGN_OR_RETURN(int64_t image, need("image_size"));
    MODU_ASSIGN_OR_RETURN(int64_t patch, need("patch_size"));
    // A LLaVA can have a CLIP tower (class token, quick GELU, eps 1e-5) or a SigLIP one (OneVision).
    const bool siglip = v.value("model_type", std::string()).find("siglip") != std::string::npos;
    const bool clip_tower = fam == "mlp" && !siglip;
    const std::string act = v.value("hidden_act", std::string(clip_tower ? "quick_gelu" : "gelu_pytorch_tanh"));
    if (act != "quick_gelu" && act != "gelu_pytorch_tanh")
      return unimplemented(dir + ": vision_config.hidden_act '" + act + "' (quick_gelu and gelu_pytorch_tanh are supported)");
    md.emplace_back("clip.use_gelu", GgufValue::boolean(act == "gelu_pytorch_tanh"));
    u32("clip.vision.image_size", image);
    u32("clip.vision.patch_size", patch);
    u32("clip.vision.embedding_length", width);
    u32("clip.vision.feed_forward_length", ff);
    u32("clip.vision.block_count", layers);
    u32("clip.vision.attention.head_count", heads);
    md.emplace_back("clip.vision.attention.layer_norm_epsilon",
                    GgufValue::f32((float)v.value("layer_norm_eps", clip_tower ? 1e-5 : 1e-6)));
    const int64_t side = image / patch;
    if (fam == "mlp") {
      // vision_feature_layer -2: the input of the last block (hidden_states[-2]). "default" drops the
      // first token (CLIP's class token), "full" keeps every token (a SigLIP tower has no class token).
      const std::string strategy = j.value("vision_feature_select_strategy", std::string("default"));
      if (strategy != (clip_tower ? "default" : "full"))
        return unimplemented(dir + ": vision_feature_select_strategy '" + strategy + "' with a " +
                             (clip_tower ? "CLIP" : "SigLIP") + " tower (supported: 'default' for CLIP, 'full' for SigLIP)");
      // LLaVA-NeXT / OneVision tiling: the canvases and OneVision's anyres_max_N.
      if (j.contains("image_grid_pinpoints")) {
        const json& pp = j["image_grid_pinpoints"];
        std::vector<int32_t> flat;
        for (const auto& e : pp.is_array() ? pp : json::array()) {
          if (!e.is_array() || e.size() != 2 || !e[0].is_number_integer() || !e[1].is_number_integer())
            return corrupt(dir + "/config.json: image_grid_pinpoints must be a list of [height, width] pairs");
          flat.push_back(e[0].get<int32_t>());
          flat.push_back(e[1].get<int32_t>());
        }
        if (flat.empty()) return corrupt(dir + "/config.json: image_grid_pinpoints must be a list of [height, width] pairs");
        md.emplace_back("clip.vision.image_grid_pinpoints", GgufValue::i32_array(flat));
        md.emplace_back("clip.vision.mm_patch_merge_type", GgufValue::string("spatial_unpad"));
        const std::string ar = j.value("vision_aspect_ratio", std::string("anyres"));
        if (ar.rfind("anyres_max_", 0) == 0) {
          const int n = std::atoi(ar.c_str() + 11);
          if (n <= 0) return corrupt(dir + "/config.json: vision_aspect_ratio '" + ar + "'");
          u32("clip.vision.anyres_max_patches", n);
        } else if (ar != "anyres") {
          return unimplemented(dir + ": vision_aspect_ratio '" + ar + "' (anyres and anyres_max_N are supported)");
        }
      }
      const json& fl = j.contains("vision_feature_layer") ? j["vision_feature_layer"] : json(-2);
      if (!fl.is_number_integer()) return unimplemented(dir + ": a list of vision_feature_layer values is not supported");
      int64_t k = fl.get<int64_t>();
      if (k < 0) k = layers + 1 + k;
      if (k <= 0 || k > layers) return corrupt(dir + ": vision_feature_layer " + fl.dump() + " is outside the encoder");
      md.emplace_back("clip.vision.feature_layer", GgufValue::i32_array({(int32_t)k}));
    } else if (fam == "gemma3") {
      const int64_t tokens = j.value("mm_tokens_per_image", (int64_t)256);
      const int64_t per_side = (int64_t)std::llround(std::sqrt((double)tokens));
      if (per_side <= 0 || per_side * per_side != tokens || side % per_side != 0)
        return corrupt(dir + ": mm_tokens_per_image " + std::to_string(tokens) + " does not pool the " +
                       std::to_string(side) + "-patch grid");
      u32("clip.vision.projector.scale_factor", side / per_side);
    } else {
      u32("clip.vision.projector.scale_factor", j.value("scale_factor", (int64_t)2));
    }
  }
  // Mean, std and the longest edge from preprocessor_config.json when the folder has one.
  MODU_ASSIGN_OR_RETURN(std::string pre, read_text((d / "preprocessor_config.json").string(), false));
  if (!pre.empty()) {
    const json p = json::parse(pre, nullptr, false);
    if (!p.is_object()) return corrupt(dir + "/preprocessor_config.json is not a JSON object");
    for (const char* k : {"image_mean", "image_std"}) {
      if (!p.contains(k)) continue;
      if (!p[k].is_array() || p[k].size() != 3) return corrupt(dir + "/preprocessor_config.json: " + k + " must hold 3 numbers");
      std::vector<float> x;
      for (const auto& e : p[k]) {
        if (!e.is_number()) return corrupt(dir + "/preprocessor_config.json: " + k + " must hold 3 numbers");
        x.push_back(e.get<float>());
      }
      md.emplace_back(std::string("clip.vision.") + k, GgufValue::f32_array(x));
    }
    if (fam == "idefics3" && p.contains("size") && p["size"].is_object() && p["size"].value("longest_edge", 0) > 0)
      u32("clip.vision.preproc_image_size", p["size"]["longest_edge"].get<int64_t>());
    if (fam == "idefics3")
      md.emplace_back("clip.vision.image_splitting", GgufValue::boolean(p.value("do_image_splitting", true)));
    if (qwen) {  // min_pixels / max_pixels, or size {shortest_edge, longest_edge} in newer processors
      const json& sz = p.contains("size") && p["size"].is_object() ? p["size"] : json::object();
      const int64_t mn = p.value("min_pixels", sz.value("shortest_edge", (int64_t)0));
      const int64_t mx = p.value("max_pixels", sz.value("longest_edge", (int64_t)0));
      if (mn > 0) u32("clip.vision.min_pixels", mn);
      if (mx > 0) u32("clip.vision.max_pixels", mx);
    }
  }
  auto owner = std::make_shared<HfOwner>();
  MODU_ASSIGN_OR_RETURN(owner->files, open_hf_shards(dir));
  std::vector<GgufTensor> tensors;
  for (const auto& f : owner->files) {
    for (const auto& t : f.tensors()) {
      if (qwen) {
        if (t.name.rfind("visual.", 0) != 0 && t.name.rfind("model.visual.", 0) != 0) continue;
        MODU_ASSIGN_OR_RETURN(DType dt, map_dtype(t, dir));
        auto added = add_qwen_tensor(t, dt, *owner, tensors);
        if (!added.ok()) return corrupt(dir + ": " + added.status().message());
        continue;
      }
      const std::string name = vision_name(fam, t.name);
      if (name.empty()) continue;
      MODU_ASSIGN_OR_RETURN(DType dt, map_dtype(t, dir));
      GgufTensor g;
      g.name = name;
      g.dtype = dt;
      g.shape.assign(t.shape.rbegin(), t.shape.rend());  // GGUF lists the contiguous dimension first
      g.data = t.data;
      g.nbytes = t.nbytes;
      if (name == "mm.soft_emb_norm.weight") {  // Gemma's (1 + w), stored as llama.cpp's converter does
        owner->owned.push_back(plus_one_f32(t, dt, g.n_elements()));
        g.dtype = DType::F32;
        g.data = owner->owned.back().data();
        g.nbytes = owner->owned.back().size();
      }
      tensors.push_back(std::move(g));
    }
  }
  if (tensors.empty()) return corrupt(dir + ": no vision tower tensors found in the safetensors files");
  return GgufFile::from_parts(dir, std::move(md), std::move(tensors), owner);
}

}  // namespace modu
