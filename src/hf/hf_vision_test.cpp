// Hugging Face multimodal folders: the vision tower of a folder written here (HF tensor names,
// config.json vision_config, preprocessor_config.json) loads through open_hf_vision_folder and
// gives the same image embeddings as the mmproj GGUF of the same random weights.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <list>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "modu/hf/hf_model.h"
#include "modu/hf/safetensors.h"
#include "modu/vision/random_mmproj.h"
#include "modu/vision/vision_model.h"

namespace modu {
namespace {

namespace fs = std::filesystem;

// The HF name of an mmproj tensor (the inverse of the loader's mapping, written out here).
std::string hf_name(const std::string& fam, const std::string& g) {
  const std::string tower = fam == "idefics3" ? "model.vision_model." : "vision_tower.vision_model.";
  static const std::map<std::string, std::string> fixed = {
      {"v.patch_embd.weight", "embeddings.patch_embedding.weight"}, {"v.patch_embd.bias", "embeddings.patch_embedding.bias"},
      {"v.class_embd", "embeddings.class_embedding"}, {"v.position_embd.weight", "embeddings.position_embedding.weight"},
      {"v.pre_ln.weight", "pre_layrnorm.weight"}, {"v.pre_ln.bias", "pre_layrnorm.bias"},
      {"v.post_ln.weight", "post_layernorm.weight"}, {"v.post_ln.bias", "post_layernorm.bias"}};
  if (auto it = fixed.find(g); it != fixed.end()) return tower + it->second;
  if (g.rfind("v.blk.", 0) == 0) {
    const size_t dot = g.find('.', 6);
    const std::string il = g.substr(6, dot - 6), rest = g.substr(dot + 1), kind = rest.substr(0, rest.rfind('.')),
                      suffix = rest.substr(rest.rfind('.'));
    static const std::map<std::string, std::string> parts = {
        {"attn_q", "self_attn.q_proj"}, {"attn_k", "self_attn.k_proj"}, {"attn_v", "self_attn.v_proj"},
        {"attn_out", "self_attn.out_proj"}, {"ln1", "layer_norm1"}, {"ln2", "layer_norm2"},
        {"ffn_up", "mlp.fc1"}, {"ffn_down", "mlp.fc2"}};
    return tower + "encoder.layers." + il + "." + parts.at(kind) + suffix;
  }
  if (g == "model.image_newline") return fam == "mlp" ? "image_newline" : "model.image_newline";
  if (g == "mm.0.weight") return "multi_modal_projector.linear_1.weight";
  if (g == "mm.0.bias") return "multi_modal_projector.linear_1.bias";
  if (g == "mm.2.weight") return "multi_modal_projector.linear_2.weight";
  if (g == "mm.2.bias") return "multi_modal_projector.linear_2.bias";
  if (g == "mm.input_projection.weight") return "multi_modal_projector.mm_input_projection_weight";
  if (g == "mm.soft_emb_norm.weight") return "multi_modal_projector.mm_soft_emb_norm.weight";
  if (g == "mm.model.fc.weight") return "model.connector.modality_projection.proj.weight";
  ADD_FAILURE() << "no HF name for " << g;
  return g;
}

// Writes the HF folder of an mmproj's weights (plus a language-model tensor the loader skips).
void write_folder(const GgufFile& f, const vision::MmprojSpec& s, const std::string& dir, int64_t extra_block) {
  const bool siglip = s.projector != "mlp" || !s.class_token;
  fs::create_directories(dir);
  std::vector<SafetensorsTensor> ts;
  std::vector<std::vector<uint8_t>> keep;
  for (const auto& t : f.tensors()) {
    SafetensorsTensor st;
    st.name = hf_name(s.projector, t.name);
    st.dtype = t.dtype == DType::F16 ? "F16" : "F32";
    st.shape.assign(t.shape.rbegin(), t.shape.rend());
    st.data = t.data;
    st.nbytes = t.nbytes;
    if (t.name == "mm.soft_emb_norm.weight") {  // HF stores w, GGUF 1 + w
      keep.emplace_back(t.nbytes);
      const float* w = reinterpret_cast<const float*>(t.data);
      float* o = reinterpret_cast<float*>(keep.back().data());
      for (int64_t i = 0; i < t.n_elements(); ++i) o[i] = w[i] - 1.0f;
      st.data = keep.back().data();
    }
    ts.push_back(st);
  }
  // LLaVA uses the penultimate layer: the folder has one more block than the mmproj runs.
  if (extra_block >= 0) {
    for (const auto& t : f.tensors()) {
      if (t.name.rfind("v.blk.0.", 0) != 0) continue;
      SafetensorsTensor st;
      st.name = hf_name(s.projector, "v.blk." + std::to_string(extra_block) + t.name.substr(7));
      st.dtype = t.dtype == DType::F16 ? "F16" : "F32";
      st.shape.assign(t.shape.rbegin(), t.shape.rend());
      keep.emplace_back(t.nbytes, (uint8_t)0x3c);  // garbage that must never run
      st.data = keep.back().data();
      st.nbytes = t.nbytes;
      ts.push_back(st);
    }
  }
  std::vector<float> lm(16, 0.5f);
  ts.push_back({"language_model.model.norm.weight", "F32", {16}, reinterpret_cast<const uint8_t*>(lm.data()), 64});
  auto bytes = write_safetensors(ts);
  std::ofstream(dir + "/model.safetensors", std::ios::binary).write((const char*)bytes.data(), bytes.size());
  nlohmann::json v = {{"hidden_size", s.n_embd}, {"intermediate_size", s.n_ff},
                      {"num_hidden_layers", s.n_layer + (extra_block >= 0 ? 1 : 0)}, {"num_attention_heads", s.n_head},
                      {"image_size", s.image_size}, {"patch_size", s.patch_size}, {"layer_norm_eps", s.eps},
                      {"hidden_act", s.use_gelu ? "gelu_pytorch_tanh" : "quick_gelu"},
                      {"model_type", siglip ? "siglip_vision_model" : "clip_vision_model"}};
  nlohmann::json c = {{"vision_config", v}, {"text_config", {{"hidden_size", s.n_embd_text}}}};
  if (s.projector == "mlp" && !s.grid_pinpoints.empty()) {
    c["architectures"] = {s.class_token ? "LlavaNextForConditionalGeneration" : "LlavaOnevisionForConditionalGeneration"};
    c["vision_feature_layer"] = s.class_token ? -2 : -1;
    c["vision_feature_select_strategy"] = s.class_token ? "default" : "full";
    c["image_grid_pinpoints"] = nlohmann::json::array();
    for (const auto& [h, w] : s.grid_pinpoints) c["image_grid_pinpoints"].push_back({h, w});
    if (s.anyres_max > 0) c["vision_aspect_ratio"] = "anyres_max_" + std::to_string(s.anyres_max);
  } else if (s.projector == "mlp") {
    c["architectures"] = {"LlavaForConditionalGeneration"};
    c["vision_feature_layer"] = -2;
    c["vision_feature_select_strategy"] = "default";
  } else if (s.projector == "gemma3") {
    c["architectures"] = {"Gemma3ForConditionalGeneration"};
    const int64_t side = s.image_size / s.patch_size / s.scale_factor;
    c["mm_tokens_per_image"] = side * side;
  } else {
    c["architectures"] = {"Idefics3ForConditionalGeneration"};
    c["scale_factor"] = s.scale_factor;
  }
  std::ofstream(dir + "/config.json") << c.dump(1);
  const GgufValue* mean = f.find("clip.vision.image_mean");
  const GgufValue* sd = f.find("clip.vision.image_std");
  nlohmann::json p = {{"image_mean", nlohmann::json::array()}, {"image_std", nlohmann::json::array()}};
  if (s.preproc_image_size > 0) {
    p["size"] = {{"longest_edge", s.preproc_image_size}};
    p["max_image_size"] = {{"longest_edge", s.image_size}};
    p["do_image_splitting"] = true;
  }
  for (int i = 0; i < 3; ++i) {
    p["image_mean"].push_back(*mean->elems()[i].as_float());
    p["image_std"].push_back(*sd->elems()[i].as_float());
  }
  std::ofstream(dir + "/preprocessor_config.json") << p.dump(1);
}

// A Qwen2-VL / Qwen2.5-VL folder of an mmproj's weights: q, k, v rows fused into attn.qkv, the two
// patch-embedding slices interleaved into the Conv3d [width, 3, 2, p, p], HF config keys.
void write_qwen_folder(const GgufFile& f, const vision::MmprojSpec& s, const std::string& dir) {
  const bool q25 = s.projector == "qwen2.5vl_merger";
  fs::create_directories(dir);
  std::vector<SafetensorsTensor> ts;
  std::list<std::vector<uint8_t>> keep;
  auto st_of = [](const GgufTensor& t) { return t.dtype == DType::F16 ? "F16" : "F32"; };
  auto add = [&](const std::string& name, const GgufTensor& t) {
    ts.push_back({"visual." + name, st_of(t), std::vector<int64_t>(t.shape.rbegin(), t.shape.rend()), t.data, t.nbytes});
  };
  const GgufTensor* p0 = f.tensor("v.patch_embd.weight");
  const GgufTensor* p1 = f.tensor("v.patch_embd.weight.1");
  const int64_t D = s.n_embd, P = s.patch_size * s.patch_size;
  const size_t es = p0->nbytes / (size_t)(D * 3 * P);
  keep.emplace_back(2 * p0->nbytes);
  for (int64_t r = 0; r < D * 3; ++r)
    for (int slice = 0; slice < 2; ++slice)
      std::memcpy(keep.back().data() + (size_t)((r * 2 + slice) * P) * es, (slice ? p1 : p0)->data + (size_t)(r * P) * es,
                  (size_t)P * es);
  ts.push_back({"visual.patch_embed.proj.weight", st_of(*p0), {D, 3, 2, s.patch_size, s.patch_size}, keep.back().data(),
                keep.back().size()});
  for (int64_t il = 0; il < s.n_layer; ++il) {
    const std::string g = "v.blk." + std::to_string(il) + ".", h = "blocks." + std::to_string(il) + ".";
    for (const char* k : {"weight", "bias"}) {
      const GgufTensor* q = f.tensor(g + "attn_q." + k);
      keep.emplace_back();
      for (const char* m : {"attn_q.", "attn_k.", "attn_v."}) {
        const GgufTensor* t = f.tensor(g + m + k);
        keep.back().insert(keep.back().end(), t->data, t->data + t->nbytes);
      }
      std::vector<int64_t> shape(q->shape.rbegin(), q->shape.rend());
      shape[0] *= 3;
      ts.push_back({"visual." + h + "attn.qkv." + k, st_of(*q), shape, keep.back().data(), keep.back().size()});
      add(h + "attn.proj." + k, *f.tensor(g + "attn_out." + k));
      if (q25) {
        add(h + "mlp.gate_proj." + k, *f.tensor(g + "ffn_gate." + k));
        add(h + "mlp.up_proj." + k, *f.tensor(g + "ffn_up." + k));
        add(h + "mlp.down_proj." + k, *f.tensor(g + "ffn_down." + k));
      } else {
        add(h + "mlp.fc1." + k, *f.tensor(g + "ffn_up." + k));
        add(h + "mlp.fc2." + k, *f.tensor(g + "ffn_down." + k));
      }
    }
    for (const char* k : q25 ? std::vector<const char*>{"weight"} : std::vector<const char*>{"weight", "bias"}) {
      add(h + "norm1." + k, *f.tensor(g + "ln1." + k));
      add(h + "norm2." + k, *f.tensor(g + "ln2." + k));
    }
  }
  add("merger.ln_q.weight", *f.tensor("v.post_ln.weight"));
  if (!q25) add("merger.ln_q.bias", *f.tensor("v.post_ln.bias"));
  for (const char* k : {"0.weight", "0.bias", "2.weight", "2.bias"}) add(std::string("merger.mlp.") + k, *f.tensor(std::string("mm.") + k));
  std::vector<float> lm(16, 0.5f);
  ts.push_back({"model.norm.weight", "F32", {16}, reinterpret_cast<const uint8_t*>(lm.data()), 64});
  auto bytes = write_safetensors(ts);
  std::ofstream(dir + "/model.safetensors", std::ios::binary).write((const char*)bytes.data(), bytes.size());
  nlohmann::json v = {{"depth", s.n_layer}, {"num_heads", s.n_head}, {"patch_size", s.patch_size},
                      {"spatial_merge_size", 2}, {"temporal_patch_size", 2}, {"in_chans", 3}};
  if (q25) {
    v["hidden_size"] = s.n_embd;
    v["intermediate_size"] = s.n_ff;
    v["out_hidden_size"] = s.n_embd_text;
    v["window_size"] = s.window_px;
    v["fullatt_block_indexes"] = nlohmann::json::array();
    for (int64_t il = s.wa_pattern - 1; il < s.n_layer; il += s.wa_pattern) v["fullatt_block_indexes"].push_back(il);
    v["hidden_act"] = "silu";
  } else {
    v["embed_dim"] = s.n_embd;
    v["mlp_ratio"] = (double)s.n_ff / s.n_embd;
    v["hidden_size"] = s.n_embd_text;
    v["hidden_act"] = "quick_gelu";
  }
  nlohmann::json c = {{"architectures", {q25 ? "Qwen2_5_VLForConditionalGeneration" : "Qwen2VLForConditionalGeneration"}},
                      {"model_type", q25 ? "qwen2_5_vl" : "qwen2_vl"}, {"vision_config", v}};
  std::ofstream(dir + "/config.json") << c.dump(1);
  nlohmann::json pc = {{"min_pixels", 56 * 56}, {"max_pixels", 28 * 28 * 1280}, {"image_mean", nlohmann::json::array()},
                       {"image_std", nlohmann::json::array()}};
  for (int i = 0; i < 3; ++i) {
    pc["image_mean"].push_back(*f.find("clip.vision.image_mean")->elems()[i].as_float());
    pc["image_std"].push_back(*f.find("clip.vision.image_std")->elems()[i].as_float());
  }
  std::ofstream(dir + "/preprocessor_config.json") << pc.dump(1);
}

class HfVisionTest : public ::testing::TestWithParam<std::string> {};

TEST_P(HfVisionTest, FolderAndMmprojGiveTheSameEmbeddings) {
  const std::string variant = GetParam();
  vision::MmprojSpec s;
  s.projector = variant.rfind("llava", 0) == 0 ? "mlp" : variant.rfind("idefics3", 0) == 0 ? "idefics3" : variant;
  s.weight_type = DType::F16;
  s.n_ff = 64;
  s.mlp_hidden = 64;
  s.use_gelu = s.projector != "mlp";
  if (s.projector == "gemma3") {
    s.image_size = 56;
    s.patch_size = 7;
  }
  if (variant == "llava_next" || variant == "llava_onevision") {  // tiled: a 41 x 29 image makes 1 x 2 tiles
    s.grid_pinpoints = {{32, 64}, {64, 32}, {64, 64}};
    s.image_newline = true;
  }
  if (variant == "llava_onevision") {
    s.class_token = false;
    s.use_gelu = true;
    s.anyres_max = 1;
  }
  if (variant == "idefics3_split") s.preproc_image_size = 64;
  const bool qwen = s.projector.rfind("qwen", 0) == 0;
  if (qwen) {
    s.patch_size = 4;
    s.use_gelu = false;  // Qwen2-VL: quick GELU (Qwen2.5-VL: SiLU)
  }
  if (s.projector == "qwen2.5vl_merger") {
    s.window_px = 24;
    s.n_layer = 3;
    s.wa_pattern = 2;
  }
  auto bytes = vision::make_random_mmproj(s);
  auto g = GgufFile::parse(bytes.data(), bytes.size(), "mmproj");
  ASSERT_TRUE(g.ok());
  const std::string dir = ::testing::TempDir() + "/hf_vision_" + variant;
  fs::remove_all(dir);
  if (qwen) {
    write_qwen_folder(*g, s, dir);
  } else {
    write_folder(*g, s, dir, s.projector == "mlp" && s.class_token ? s.n_layer : -1);
  }
  ASSERT_TRUE(hf_folder_has_vision(dir));
  auto hf = open_hf_vision_folder(dir);
  ASSERT_TRUE(hf.ok()) << hf.status().to_string();
  auto from_folder = vision::VisionModel::from_gguf(std::move(hf).value());
  ASSERT_TRUE(from_folder.ok()) << from_folder.status().to_string();
  auto from_file = vision::VisionModel::from_gguf(std::move(g).value());
  ASSERT_TRUE(from_file.ok());
  EXPECT_EQ((*from_folder)->config().n_layer, s.n_layer);
  EXPECT_EQ((*from_folder)->config().n_embd_text, s.n_embd_text);
  vision::Image img;
  img.width = 41;
  img.height = 29;
  std::mt19937 rng(5);
  for (int i = 0; i < 41 * 29 * 3; ++i) img.rgb.push_back((uint8_t)rng());
  ThreadPool pool(2);
  auto a = vision::embed_image(**from_file, img, pool);
  auto b = vision::embed_image(**from_folder, img, pool);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->embd.size(), b->embd.size());
  if (variant == "llava_next" || variant == "llava_onevision" || variant == "idefics3_split") {
    EXPECT_GT(a->n_encoder_runs, 2);  // tiled
  }
  for (size_t i = 0; i < a->embd.size(); ++i)  // equal but for (w - 1) + 1 in float in Gemma's norm
    ASSERT_NEAR(a->embd[i], b->embd[i], 1e-5f * std::max(1.0f, std::fabs(a->embd[i]))) << i;
}

INSTANTIATE_TEST_SUITE_P(Families, HfVisionTest, ::testing::Values("mlp", "llava_next", "llava_onevision", "gemma3", "idefics3",
                                                                      "idefics3_split", "qwen2vl_merger",
                                                                      "qwen2.5vl_merger"));

TEST(HfVision, UnsupportedFoldersSayWhy) {
  const std::string dir = ::testing::TempDir() + "/hf_vision_pixtral";
  fs::create_directories(dir);
  std::ofstream(dir + "/config.json") << R"({"architectures":["PixtralForConditionalGeneration"],"vision_config":{}})";
  EXPECT_FALSE(hf_folder_has_vision(dir));
  auto r = open_hf_vision_folder(dir);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(r.status().message().find("mmproj"), std::string::npos);
}

// The language model of a multimodal folder: the wrapper's text_config (LLaVA) and Qwen2-VL's
// M-RoPE sections become the text architecture's keys; tower tensors are not text tensors.
TEST(HfVision, TextSideOfMultimodalFolders) {
  auto llava = hf_config_metadata(R"({"model_type":"llava","text_config":{"model_type":"mistral","hidden_size":64,
      "num_hidden_layers":2,"intermediate_size":96,"num_attention_heads":4}})", "cfg");
  ASSERT_TRUE(llava.ok()) << llava.status().to_string();
  std::map<std::string, GgufValue> m(llava->begin(), llava->end());
  EXPECT_EQ(*m.at("general.architecture").as_string(), "llama");
  EXPECT_EQ(m.at("llama.embedding_length").as_int(), 64);
  auto qwen = hf_config_metadata(R"({"model_type":"qwen2_vl","hidden_size":64,"num_hidden_layers":2,
      "intermediate_size":96,"num_attention_heads":4,"rope_scaling":{"type":"mrope","mrope_section":[2,3,3]}})", "cfg");
  ASSERT_TRUE(qwen.ok()) << qwen.status().to_string();
  std::map<std::string, GgufValue> q(qwen->begin(), qwen->end());
  EXPECT_EQ(*q.at("general.architecture").as_string(), "qwen2vl");
  const GgufValue& sec = q.at("qwen2vl.rope.dimension_sections");
  ASSERT_EQ(sec.size(), 4u);
  EXPECT_EQ(sec.elems()[2].as_int(), 3);
  EXPECT_EQ(sec.elems()[3].as_int(), 0);
  EXPECT_FALSE(hf_config_metadata(R"({"model_type":"qwen2_vl","hidden_size":64,"num_hidden_layers":2,"intermediate_size":96,
      "num_attention_heads":4,"rope_scaling":{"type":"mrope","mrope_section":[2,3,3,1,1]}})", "cfg").ok());
  EXPECT_EQ(*hf_tensor_to_gguf("llama", "model.text_model.layers.0.self_attn.q_proj.weight"), "blk.0.attn_q.weight");
  EXPECT_EQ(*hf_tensor_to_gguf("qwen2vl", "model.language_model.layers.1.mlp.up_proj.weight"), "blk.1.ffn_up.weight");
  EXPECT_EQ(*hf_tensor_to_gguf("qwen2vl", "visual.blocks.0.attn.qkv.weight"), "");
  EXPECT_EQ(*hf_tensor_to_gguf("llama", "image_newline"), "");
}

}  // namespace
}  // namespace modu
