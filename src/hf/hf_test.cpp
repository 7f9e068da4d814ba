// Hugging Face folders: safetensors parsing, folders written from random models (HF names, HF
// half-split Q/K layout, F32 / BF16, sharded) checked against the float64 reference, HF -> GGUF
// conversion (llama.cpp layout, same logits), config.json and tokenizer.json metadata mapping.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include <nlohmann/json.hpp>

#include "../models/reference_model.h"
#include "modu/hf/hf_model.h"
#include "modu/hf/safetensors.h"
#include "modu/models/model.h"
#include "modu/tokenizer/tokenizer.h"

namespace modu {
namespace {

namespace fs = std::filesystem;
using testing::TestModelSpec;
using json = nlohmann::json;

std::string temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("modu_hf_test_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

void write_file(const std::string& path, const void* data, size_t n) {
  std::ofstream out(path, std::ios::binary);
  out.write(static_cast<const char*>(data), (std::streamsize)n);
}
void write_text(const std::string& path, const std::string& s) { write_file(path, s.data(), s.size()); }

// GGUF tensor name -> HF name (the inverse of src/hf's mapping, written independently); expert
// stacks give a name pattern with "{e}" for the expert index.
std::string hf_name(const std::string& g, const std::string& model_type) {
  if (model_type == "exaone") {  // EXAONE 3 spelling
    if (g == "token_embd.weight") return "transformer.wte.weight";
    if (g == "output_norm.weight") return "transformer.ln_f.weight";
    if (g == "output.weight") return "lm_head.weight";
    static const std::map<std::string, std::string> e = {
        {"attn_norm", "ln_1"}, {"ffn_norm", "ln_2"}, {"attn_q", "attn.attention.q_proj"},
        {"attn_k", "attn.attention.k_proj"}, {"attn_v", "attn.attention.v_proj"},
        {"attn_output", "attn.attention.out_proj"}, {"ffn_gate", "mlp.c_fc_0"}, {"ffn_up", "mlp.c_fc_1"},
        {"ffn_down", "mlp.c_proj"}};
    const size_t d1 = g.find('.', 4), d2 = g.rfind('.');
    return "transformer.h." + g.substr(4, d1 - 4) + "." + e.at(g.substr(d1 + 1, d2 - d1 - 1)) + g.substr(d2);
  }
  if (g == "token_embd.weight") return "model.embed_tokens.weight";
  if (g == "output_norm.weight") return "model.norm.weight";
  if (g == "output.weight") return "lm_head.weight";
  std::map<std::string, std::string> m = {
      {"attn_norm", "input_layernorm"}, {"attn_q", "self_attn.q_proj"}, {"attn_k", "self_attn.k_proj"},
      {"attn_v", "self_attn.v_proj"}, {"attn_output", "self_attn.o_proj"}, {"attn_q_norm", "self_attn.q_norm"},
      {"attn_k_norm", "self_attn.k_norm"}, {"ffn_norm", "post_attention_layernorm"}, {"ffn_gate", "mlp.gate_proj"},
      {"ffn_up", "mlp.up_proj"}, {"ffn_down", "mlp.down_proj"},
      {"ffn_gate_inp", "mlp.gate"}, {"ffn_gate_exps", "mlp.experts.{e}.gate_proj"},
      {"ffn_up_exps", "mlp.experts.{e}.up_proj"}, {"ffn_down_exps", "mlp.experts.{e}.down_proj"},
      {"ffn_gate_shexp", "mlp.shared_expert.gate_proj"}, {"ffn_up_shexp", "mlp.shared_expert.up_proj"},
      {"ffn_down_shexp", "mlp.shared_expert.down_proj"}, {"ffn_gate_inp_shexp", "mlp.shared_expert_gate"},
      {"attn_qkv", "self_attn.qkv_proj"}};
  if (model_type == "phi3") m["ffn_up"] = "mlp.gate_up_proj";
  if (model_type.rfind("gemma", 0) == 0) {
    m["post_attention_norm"] = "post_attention_layernorm";
    m["ffn_norm"] = "pre_feedforward_layernorm";
    m["post_ffw_norm"] = "post_feedforward_layernorm";
  }
  if (model_type == "exaone4") {
    m["post_attention_norm"] = "post_attention_layernorm";
    m["post_ffw_norm"] = "post_feedforward_layernorm";
  }
  if (model_type == "mixtral") {
    m["ffn_gate_inp"] = "block_sparse_moe.gate";
    m["ffn_gate_exps"] = "block_sparse_moe.experts.{e}.w1";
    m["ffn_down_exps"] = "block_sparse_moe.experts.{e}.w2";
    m["ffn_up_exps"] = "block_sparse_moe.experts.{e}.w3";
  }
  const size_t d1 = g.find('.', 4), d2 = g.rfind('.');
  return "model.layers." + g.substr(4, d1 - 4) + "." + m.at(g.substr(d1 + 1, d2 - d1 - 1)) + g.substr(d2);
}

const char* st_dtype(DType t) { return t == DType::F32 ? "F32" : t == DType::F16 ? "F16" : "BF16"; }

// Writes `g` (a llama-convention GGUF when `unpermute`) as an HF folder in `dir` with `shards` files.
void write_hf_folder(const GgufFile& g, const TestModelSpec& s, const std::string& model_type, const std::string& dir,
                     int shards, bool unpermute) {
  std::vector<std::vector<uint8_t>> bufs;
  std::vector<SafetensorsTensor> ts;
  const bool gemma = model_type.rfind("gemma", 0) == 0;
  for (const auto& t : g.tensors()) {
    if (t.name.rfind("rope_factors_", 0) == 0) continue;  // HF keeps LongRoPE factors in config.json
    if (t.shape.size() == 3) {  // expert stack -> one HF tensor per expert
      const std::string pattern = hf_name(t.name, model_type);
      const size_t per = t.nbytes / t.shape[2], at = pattern.find("{e}");
      for (int64_t e = 0; e < t.shape[2]; ++e) {
        bufs.emplace_back(t.data + e * per, t.data + (e + 1) * per);
        ts.push_back({pattern.substr(0, at) + std::to_string(e) + pattern.substr(at + 3), st_dtype(t.dtype),
                      {t.shape[1], t.shape[0]}, bufs.back().data(), per});
      }
      continue;
    }
    SafetensorsTensor st;
    st.name = hf_name(t.name, model_type);
    st.dtype = st_dtype(t.dtype);
    st.shape.assign(t.shape.rbegin(), t.shape.rend());
    bufs.emplace_back(t.data, t.data + t.nbytes);
    const bool q = t.name.find(".attn_q.") != std::string::npos, k = t.name.find(".attn_k.") != std::string::npos;
    if (unpermute && (q || k)) {  // GGUF rows (h, 2i), (h, 2i+1) are HF rows (h, i), (h, half + i)
      const int64_t rows = t.n_rows(), hd = s.head_dim, half = hd / 2;
      const size_t rb = t.nbytes / rows;
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t h = r / hd, j = r % hd;
        const int64_t src = h * hd + (j < half ? 2 * j : 2 * (j - half) + 1);
        std::memcpy(bufs.back().data() + r * rb, t.data + src * rb, rb);
      }
    }
    if (gemma && t.name.find("norm.weight") != std::string::npos) {  // HF Gemma norms store w, GGUF 1 + w
      float* f = reinterpret_cast<float*>(bufs.back().data());
      for (int64_t i = 0; i < t.n_elements(); ++i) f[i] -= 1.0f;
    }
    if (t.name.find("ffn_gate_inp_shexp") != std::string::npos) st.shape = {1, s.n_embd};
    st.data = bufs.back().data();
    st.nbytes = t.nbytes;
    ts.push_back(st);
  }
  json cfg = {{"model_type", model_type},
              {"hidden_size", s.n_embd},
              {"num_hidden_layers", s.n_layer},
              {"intermediate_size", s.n_ff},
              {"num_attention_heads", s.n_head},
              {"num_key_value_heads", s.n_head_kv},
              {"head_dim", s.head_dim},
              {"rms_norm_eps", s.rms_eps},
              {"rope_theta", s.rope_theta},
              {"max_position_embeddings", s.n_ctx},
              {"vocab_size", s.n_vocab},
              {"tie_word_embeddings", s.tied_output}};
  if (gemma) {
    if (s.n_swa) cfg["sliding_window"] = s.n_swa;
    if (s.attn_softcap) cfg["attn_logit_softcapping"] = s.attn_softcap;
    if (s.final_softcap) cfg["final_logit_softcapping"] = s.final_softcap;
    cfg["query_pre_attn_scalar"] = s.attn_scale > 0 ? 1.0 / (s.attn_scale * s.attn_scale) : (double)s.head_dim;
    if (s.rope_theta_swa) cfg["rope_local_base_freq"] = s.rope_theta_swa;
    if (s.scaling == "linear") cfg["rope_scaling"] = {{"rope_type", "linear"}, {"factor", s.scaling_factor}};
  }
  if (s.n_expert > 0) {
    cfg[model_type == "mixtral" ? "num_local_experts" : "num_experts"] = s.n_expert;
    cfg["num_experts_per_tok"] = s.n_expert_used;
    if (model_type == "mixtral") {
      cfg["intermediate_size"] = s.n_ff_exp;
    } else {
      cfg["moe_intermediate_size"] = s.n_ff_exp;
      cfg["norm_topk_prob"] = s.norm_topk;
    }
    if (s.shared_expert) cfg["shared_expert_intermediate_size"] = s.n_ff_shexp;
  }
  if (model_type == "phi3" && s.longrope) {  // factors as written by make_random_model
    std::vector<double> sh, lo;
    for (int64_t i = 0; i < s.head_dim / 2; ++i) { sh.push_back(1.0 + 0.1 * i); lo.push_back(1.0 + 0.5 * i); }
    cfg["rope_scaling"] = {{"type", "longrope"}, {"long_factor", lo}, {"short_factor", sh}};
    cfg["original_max_position_embeddings"] = s.orig_ctx;
  }
  if (model_type == "granite") {
    cfg["embedding_multiplier"] = s.embd_mult;
    cfg["residual_multiplier"] = s.residual_mult;
    cfg["attention_multiplier"] = s.attn_scale;
    cfg["logits_scaling"] = s.logit_scale;
  }
  if (model_type == "exaone") {  // EXAONE 3's own key names
    cfg["num_layers"] = cfg["num_hidden_layers"];
    cfg.erase("num_hidden_layers");
    cfg["layer_norm_epsilon"] = cfg["rms_norm_eps"];
    cfg.erase("rms_norm_eps");
  }
  if (model_type == "exaone4" && s.n_swa > 0) {
    cfg["sliding_window"] = s.n_swa;
    json types = json::array();
    for (bool b : s.swa_layers) types.push_back(b ? "sliding_attention" : "full_attention");
    cfg["layer_types"] = types;
  }
  if (!s.rope_sections.empty())  // Qwen2-VL's M-RoPE
    cfg["rope_scaling"] = {{"type", "mrope"}, {"mrope_section", {s.rope_sections[0], s.rope_sections[1], s.rope_sections[2]}}};
  if (s.scaling == "llama3")
    cfg["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", s.scaling_factor}, {"low_freq_factor", 1.0},
                           {"high_freq_factor", 4.0}, {"original_max_position_embeddings", s.orig_ctx}};
  write_text(dir + "/config.json", cfg.dump(2));
  if (shards == 1) {
    auto bytes = write_safetensors(ts, {{"format", "pt"}});
    write_file(dir + "/model.safetensors", bytes.data(), bytes.size());
    return;
  }
  json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", json::object()}};
  for (int sh = 0; sh < shards; ++sh) {
    char fn[64];
    std::snprintf(fn, sizeof fn, "model-%05d-of-%05d.safetensors", sh + 1, shards);
    std::vector<SafetensorsTensor> part;
    for (size_t i = sh; i < ts.size(); i += shards) {
      part.push_back(ts[i]);
      index["weight_map"][ts[i].name] = fn;
    }
    auto bytes = write_safetensors(part);
    write_file(dir + "/" + fn, bytes.data(), bytes.size());
  }
  write_text(dir + "/model.safetensors.index.json", index.dump());
}

std::vector<int32_t> random_tokens(int n, int vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = (int32_t)(rng() % vocab);
  return t;
}

std::vector<float> run_logits(const Model& m, const std::vector<int32_t>& tokens) {
  KvCache kv(m.config(), 1, 256, KvType::kF32);
  ThreadPool pool(2);
  std::vector<BatchToken> b;
  for (size_t i = 0; i < tokens.size(); ++i) b.push_back({tokens[i], (int64_t)i, 0, true});
  std::vector<float> lg;
  Status st = m.forward(b, kv, pool, lg);
  EXPECT_TRUE(st.ok()) << st.to_string();
  return lg;
}

double rel_err(const std::vector<float>& got, const std::vector<std::vector<double>>& ref) {
  double worst = 0;
  const size_t nv = ref[0].size();
  for (size_t t = 0; t < ref.size(); ++t) {
    double mx = 0, err = 0;
    for (size_t v = 0; v < nv; ++v) {
      mx = std::max(mx, std::fabs(ref[t][v]));
      err = std::max(err, std::fabs(got[t * nv + v] - ref[t][v]));
    }
    worst = std::max(worst, err / mx);
  }
  return worst;
}

// The HF model_type of a GGUF architecture.
std::string hf_type(const std::string& arch) {
  if (arch == "qwen2moe") return "qwen2_moe";
  if (arch == "qwen3moe") return "qwen3_moe";
  if (arch == "gemma3") return "gemma3_text";
  if (arch == "qwen2vl") return "qwen2_vl";
  return arch;
}

TestModelSpec spec_for(const std::string& arch) {
  TestModelSpec s;
  s.arch = arch;
  if (arch == "qwen2") s.qkv_bias = true;
  if (arch == "qwen2vl") { s.qkv_bias = true; s.rope_sections = {2, 3, 3, 0}; }
  if (arch == "qwen3") { s.qk_norm = true; s.head_dim = 24; }
  if (arch == "mistral") { s.n_head = 8; s.n_head_kv = 2; s.head_dim = 8; }
  if (arch == "qwen2moe") {
    s.qkv_bias = true;
    s.n_expert = 6; s.n_expert_used = 2; s.shared_expert = true; s.norm_topk = false;
  }
  if (arch == "qwen3moe") { s.qk_norm = true; s.n_expert = 8; s.n_expert_used = 3; }
  if (arch == "gemma2" || arch == "gemma3") {
    s.post_norms = s.gelu = s.embd_scale = s.tied_output = true;
    s.n_swa = 7;
  }
  if (arch == "exaone") { s.scaling = "llama3"; s.scaling_factor = 8.0; s.orig_ctx = 32; }
  if (arch == "phi3") {  // LongRoPE: the folder's attn_factor is derived from 256 / 64
    s.fused = s.longrope = true;
    s.orig_ctx = 64;
    s.attn_factor = std::sqrt(1 + std::log(256.0 / 64) / std::log(64.0));
  }
  if (arch == "granite") { s.embd_mult = 12.0; s.residual_mult = 0.22; s.attn_scale = 0.125; s.logit_scale = 8.0; }
  if (arch == "exaone4") {
    s.qk_norm = s.post_norms = s.no_pre_norms = s.nope_global = true;
    s.n_layer = 5; s.n_swa = 6; s.swa_layers = {true, true, true, false, true};
  }
  if (arch == "gemma2") { s.swa_pattern = 2; s.attn_softcap = 1.5; s.final_softcap = 2.0; }
  if (arch == "gemma3") {
    s.qk_norm = true; s.n_layer = 7; s.swa_pattern = 6; s.rope_theta = 1e6; s.rope_theta_swa = 10000;
    s.scaling = "linear"; s.scaling_factor = 4.0; s.attn_scale = 0.2;
  }
  return s;
}

// Random GGUF model -> HF folder -> modu, against the float64 reference on the GGUF.
double folder_vs_reference(const TestModelSpec& s, const std::string& model_type, int shards, const std::string& tag) {
  auto bytes = testing::make_random_model(s);
  auto g = GgufFile::parse(bytes.data(), bytes.size());
  EXPECT_TRUE(g.ok());
  const std::string dir = temp_dir(tag);
  const bool llama_layout = s.arch == "llama" || s.arch == "mistral" || s.arch == "granite";  // and Mixtral
  write_hf_folder(*g, s, model_type, dir, shards, llama_layout);
  auto f = open_model_path(dir);
  EXPECT_TRUE(f.ok()) << f.status().to_string();
  if (!f.ok()) return 1e9;
  auto m = Model::from_gguf(std::move(f).value());
  EXPECT_TRUE(m.ok()) << m.status().to_string();
  if (!m.ok()) return 1e9;
  auto tokens = random_tokens(30, (int)s.n_vocab, s.seed + 3);
  auto ref = testing::reference_logits(*g, s, tokens);
  fs::remove_all(dir);
  return rel_err(run_logits(**m, tokens), ref);
}

TEST(Safetensors, RoundTripAndMalformedInputs) {
  std::vector<float> a = {1, 2, 3, 4, 5, 6};
  std::vector<uint16_t> b = {7, 8};
  std::vector<SafetensorsTensor> ts = {{"a", "F32", {2, 3}, reinterpret_cast<uint8_t*>(a.data()), 24},
                                       {"b", "BF16", {2}, reinterpret_cast<uint8_t*>(b.data()), 4}};
  auto bytes = write_safetensors(ts, {{"format", "pt"}});
  auto f = SafetensorsFile::parse(bytes.data(), bytes.size(), "x.safetensors");
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  ASSERT_EQ(f->tensors().size(), 2u);
  const SafetensorsTensor* ta = f->find("a");
  ASSERT_NE(ta, nullptr);
  EXPECT_EQ(ta->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(std::memcmp(ta->data, a.data(), 24), 0);
  EXPECT_EQ(f->metadata().at("format"), "pt");
  // Truncated data, short header, header size past the end, bad JSON, size mismatch, bad dtype.
  auto bad = [](std::vector<uint8_t> v) { return SafetensorsFile::parse(v.data(), v.size(), "bad").status().code(); };
  EXPECT_EQ(bad(std::vector<uint8_t>(bytes.begin(), bytes.end() - 1)), StatusCode::kCorrupt);
  EXPECT_EQ(bad({1, 2, 3}), StatusCode::kCorrupt);
  std::vector<uint8_t> big = bytes;
  big[5] = 0x7f;
  EXPECT_EQ(bad(big), StatusCode::kCorrupt);
  auto with_header = [](const std::string& h, size_t data) {
    std::vector<uint8_t> v(8 + h.size() + data, 0);
    for (int i = 0; i < 8; ++i) v[i] = (uint8_t)(h.size() >> (8 * i));
    std::memcpy(v.data() + 8, h.data(), h.size());
    return v;
  };
  EXPECT_EQ(bad(with_header("{not json", 0)), StatusCode::kCorrupt);
  EXPECT_EQ(bad(with_header(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8)), StatusCode::kCorrupt);
  EXPECT_EQ(bad(with_header(R"({"t":{"dtype":"Q9","shape":[1],"data_offsets":[0,1]}})", 1)), StatusCode::kCorrupt);
  EXPECT_EQ(bad(with_header(R"({"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4)), StatusCode::kCorrupt);
  EXPECT_EQ(bad(with_header(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", 4)), StatusCode::kCorrupt);
}

class FolderTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FolderTest, F32FolderMatchesFloat64Reference) {
  const std::string arch = GetParam();
  EXPECT_LE(folder_vs_reference(spec_for(arch), hf_type(arch), 1, arch), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Archs, FolderTest,
                         ::testing::Values("llama", "mistral", "qwen2", "qwen2vl", "qwen3", "qwen2moe", "qwen3moe", "gemma2", "gemma3",
                                           "exaone", "exaone4", "granite", "phi3"));

// Mixtral: a llama with experts; HF names block_sparse_moe.experts.E.w1/w2/w3, half-split Q/K.
TEST(Folder, MixtralMatchesReferenceAndConverts) {
  TestModelSpec s = spec_for("llama");
  s.n_expert = 4;
  s.n_expert_used = 2;
  EXPECT_LE(folder_vs_reference(s, "mixtral", 2, "mixtral"), 1e-4);
}

// Converting MoE and Gemma folders gives back the tensors of the GGUF they were written from
// (stacked experts, 1 + w norms) and the same logits.
TEST(Convert, MoeAndGemmaRoundTrip) {
  for (std::string arch : {"qwen2moe", "gemma3", "exaone4"}) {
    TestModelSpec s = spec_for(arch);
    auto bytes = testing::make_random_model(s);
    auto g = GgufFile::parse(bytes.data(), bytes.size());
    ASSERT_TRUE(g.ok());
    const std::string dir = temp_dir("rt_" + arch);
    write_hf_folder(*g, s, hf_type(arch), dir, 1, false);
    auto folder = open_model_path(dir);
    ASSERT_TRUE(folder.ok()) << folder.status().to_string();
    ASSERT_TRUE(convert_to_gguf(*folder, dir + "/out.gguf", std::nullopt).ok());
    auto conv = GgufFile::open(dir + "/out.gguf");
    ASSERT_TRUE(conv.ok());
    for (const auto& t : g->tensors()) {
      const GgufTensor* c = conv->tensor(t.name);
      ASSERT_NE(c, nullptr) << arch << " " << t.name;
      EXPECT_EQ(c->shape, t.shape) << t.name;
      ASSERT_EQ(c->nbytes, t.nbytes) << t.name;
      const float *a = reinterpret_cast<const float*>(c->data), *b = reinterpret_cast<const float*>(t.data);
      double diff = 0;  // norms went through w - 1 + 1 in float
      for (int64_t i = 0; i < t.n_elements(); ++i) diff = std::max(diff, (double)std::fabs(a[i] - b[i]));
      EXPECT_LE(diff, 1e-6) << arch << " " << t.name;
    }
    auto tokens = random_tokens(20, (int)s.n_vocab, 2);
    auto m = Model::load(dir + "/out.gguf");
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    EXPECT_LE(rel_err(run_logits(**m, tokens), testing::reference_logits(*g, s, tokens)), 1e-4) << arch;
    fs::remove_all(dir);
  }
}

TEST(Folder, ShardedBf16TiedMatchesReference) {
  TestModelSpec s = spec_for("llama");
  s.weight_type = DType::BF16;
  s.embd_type = DType::BF16;
  s.tied_output = true;
  s.seed = 9;
  EXPECT_LE(folder_vs_reference(s, "llama", 3, "bf16"), 1e-4);
  TestModelSpec q = spec_for("qwen2");
  q.weight_type = DType::F16;
  EXPECT_LE(folder_vs_reference(q, "qwen2", 2, "f16"), 1e-4);
}

TEST(Convert, GgufHasLlamaCppLayoutAndSameLogits) {
  TestModelSpec s = spec_for("llama");
  s.scaling = "llama3";
  s.scaling_factor = 4.0;
  s.orig_ctx = 32;
  auto bytes = testing::make_random_model(s);
  auto g = GgufFile::parse(bytes.data(), bytes.size());
  ASSERT_TRUE(g.ok());
  const std::string dir = temp_dir("convert");
  write_hf_folder(*g, s, "llama", dir, 1, true);
  auto folder = open_model_path(dir);
  ASSERT_TRUE(folder.ok()) << folder.status().to_string();
  const std::string out = dir + "/out.gguf";
  ASSERT_TRUE(convert_to_gguf(*folder, out, std::nullopt).ok());
  auto conv = GgufFile::open(out);
  ASSERT_TRUE(conv.ok()) << conv.status().to_string();
  // The converted Q/K rows are exactly the GGUF llama layout the random model was written in.
  for (const char* name : {"blk.0.attn_q.weight", "blk.1.attn_k.weight", "blk.1.ffn_down.weight"}) {
    const GgufTensor *a = conv->tensor(name), *b = g->tensor(name);
    ASSERT_TRUE(a && b) << name;
    ASSERT_EQ(a->nbytes, b->nbytes);
    EXPECT_EQ(std::memcmp(a->data, b->data, a->nbytes), 0) << name;
  }
  EXPECT_EQ(conv->find("modu.hf.rope_neox"), nullptr);
  EXPECT_EQ(conv->find("llama.rope.scaling.type"), nullptr);  // llama3 scaling became rope_freqs.weight
  ASSERT_NE(conv->tensor("rope_freqs.weight"), nullptr);
  auto tokens = random_tokens(40, (int)s.n_vocab, 4);
  auto ref = testing::reference_logits(*g, s, tokens);
  auto m_folder = Model::from_gguf(std::move(folder).value());
  auto m_conv = Model::load(out);
  ASSERT_TRUE(m_folder.ok() && m_conv.ok());
  auto lf = run_logits(**m_folder, tokens), lc = run_logits(**m_conv, tokens);
  EXPECT_LE(rel_err(lf, ref), 1e-4);
  double diff = 0;
  for (size_t i = 0; i < lf.size(); ++i) diff = std::max(diff, (double)std::fabs(lf[i] - lc[i]));
  EXPECT_LE(diff, 1e-4);
  // Quantized conversion.
  auto folder2 = open_model_path(dir);
  ASSERT_TRUE(folder2.ok());
  ASSERT_TRUE(convert_to_gguf(*folder2, dir + "/q8.gguf", DType::Q8_0).ok());
  auto m_q8 = Model::load(dir + "/q8.gguf");
  ASSERT_TRUE(m_q8.ok()) << m_q8.status().to_string();
  EXPECT_EQ((*m_q8)->weights().layers[0].wq.dtype, DType::Q8_0);
  EXPECT_LE(rel_err(run_logits(**m_q8, tokens), ref), 3e-2);
  fs::remove_all(dir);
}

// A PEFT LoRA folder (HF names and row layout) on the HF folder and on the converted GGUF
// (Q/K rows permuted to adjacent pairs, so the adapter's B rows must be too): both equal the
// float64 reference of the merged weights W + (alpha / r) B A, in GGUF layout.
TEST(Peft, FolderAdapterOnHfAndConvertedBases) {
  TestModelSpec s = spec_for("llama");
  auto bytes = testing::make_random_model(s);
  auto g = GgufFile::parse(bytes.data(), bytes.size());
  ASSERT_TRUE(g.ok());
  const std::string dir = temp_dir("peft");
  write_hf_folder(*g, s, "llama", dir, 1, true);
  const std::string ad = dir + "/adapter";
  fs::create_directories(ad);
  const int64_t r = 4;
  const double alpha = 6, scale = alpha / r;
  std::mt19937_64 rng(9);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<std::vector<float>> bufs;
  std::vector<SafetensorsTensor> ts;
  std::map<std::string, std::pair<std::vector<float>, std::vector<float>>> by_gguf;  // HF-layout A, B
  const std::map<std::string, std::string> modules = {{"attn_q", "self_attn.q_proj"}, {"attn_k", "self_attn.k_proj"},
                                                      {"attn_v", "self_attn.v_proj"}, {"attn_output", "self_attn.o_proj"},
                                                      {"ffn_gate", "mlp.gate_proj"}, {"ffn_down", "mlp.down_proj"}};
  for (int64_t il = 0; il < s.n_layer; ++il)
    for (const auto& [gname, hname] : modules) {
      const std::string gn = "blk." + std::to_string(il) + "." + gname + ".weight";
      const GgufTensor* t = g->tensor(gn);
      ASSERT_NE(t, nullptr) << gn;
      const int64_t cols = t->shape[0], rows = t->shape[1];
      std::vector<float> a(r * cols), b(rows * r);
      for (auto& v : a) v = nd(rng) / std::sqrt((float)cols);
      for (auto& v : b) v = 0.5f * nd(rng);
      const std::string base = "base_model.model.model.layers." + std::to_string(il) + "." + hname;
      bufs.push_back(a);
      ts.push_back({base + ".lora_A.weight", "F32", {r, cols}, (const uint8_t*)bufs.back().data(), a.size() * 4});
      bufs.push_back(b);
      ts.push_back({base + ".lora_B.weight", "F32", {rows, r}, (const uint8_t*)bufs.back().data(), b.size() * 4});
      by_gguf[gn] = {a, b};
    }
  auto st_bytes = write_safetensors(ts);
  write_file(ad + "/adapter_model.safetensors", st_bytes.data(), st_bytes.size());
  write_text(ad + "/adapter_config.json",
             json{{"peft_type", "LORA"}, {"r", r}, {"lora_alpha", alpha}, {"target_modules", {"q_proj", "k_proj"}}}.dump());
  // The merged reference, in the GGUF layout of the random model: GGUF row (h, 2i) is HF row
  // (h, i) and (h, 2i + 1) is HF row (h, half + i) for Q and K.
  GgufWriter w;
  for (const auto& [k, v] : g->metadata())
    if (k != "general.alignment") w.set(k, v);
  for (const GgufTensor& t : g->tensors()) {
    auto it = by_gguf.find(t.name);
    if (it == by_gguf.end()) {
      ASSERT_TRUE(w.add_tensor(t.name, t.dtype, t.shape, t.data, t.nbytes).ok());
      continue;
    }
    const int64_t cols = t.shape[0], rows = t.shape[1];
    const bool qk = t.name.find("attn_q") != std::string::npos || t.name.find("attn_k") != std::string::npos;
    const float* wd = reinterpret_cast<const float*>(t.data);
    std::vector<float> out(rows * cols);
    for (int64_t row = 0; row < rows; ++row) {
      int64_t hf_row = row;
      if (qk) {
        const int64_t hd = s.head_dim, h = row / hd, m = row % hd;
        hf_row = h * hd + (m % 2 == 0 ? m / 2 : hd / 2 + m / 2);
      }
      for (int64_t c = 0; c < cols; ++c) {
        double d = wd[row * cols + c];
        for (int64_t k = 0; k < r; ++k) d += scale * it->second.second[hf_row * r + k] * it->second.first[k * cols + c];
        out[row * cols + c] = (float)d;
      }
    }
    ASSERT_TRUE(w.add_tensor_f32(t.name, DType::F32, t.shape, out.data()).ok());
  }
  const auto merged = w.serialize();
  auto mg = GgufFile::parse(merged.data(), merged.size());
  ASSERT_TRUE(mg.ok());
  auto tokens = random_tokens(20, (int)s.n_vocab, 5);
  auto ref = testing::reference_logits(*mg, s, tokens);
  // On the HF folder itself.
  auto folder = open_model_path(dir);
  ASSERT_TRUE(folder.ok()) << folder.status().to_string();
  ASSERT_TRUE(convert_to_gguf(*folder, dir + "/conv.gguf", std::nullopt).ok());
  auto mf = Model::from_gguf(std::move(folder).value());
  ASSERT_TRUE(mf.ok());
  auto peft_hf = load_peft_adapter(ad, (*mf)->gguf());
  ASSERT_TRUE(peft_hf.ok()) << peft_hf.status().to_string();
  EXPECT_FLOAT_EQ((*peft_hf)->scale_for(1.0f, r), (float)scale);
  ASSERT_TRUE((*mf)->add_lora(*peft_hf, 1.0f).ok());
  EXPECT_LE(rel_err(run_logits(**mf, tokens), ref), 1e-4);
  // On the converted GGUF (permuted Q/K).
  auto mc = Model::load(dir + "/conv.gguf");
  ASSERT_TRUE(mc.ok());
  auto peft_conv = load_peft_adapter(ad, (*mc)->gguf());
  ASSERT_TRUE(peft_conv.ok()) << peft_conv.status().to_string();
  ASSERT_TRUE((*mc)->add_lora(*peft_conv, 1.0f).ok());
  EXPECT_LE(rel_err(run_logits(**mc, tokens), ref), 1e-4);
  // rsLoRA scales by alpha / sqrt(r); unsupported variants are clear errors.
  write_text(ad + "/adapter_config.json", json{{"r", r}, {"lora_alpha", alpha}, {"use_rslora", true}}.dump());
  auto rs = load_peft_adapter(ad, (*mc)->gguf());
  ASSERT_TRUE(rs.ok());
  EXPECT_FLOAT_EQ((*rs)->scale_for(1.0f, r), (float)(alpha / 2.0));
  write_text(ad + "/adapter_config.json", json{{"r", r}, {"lora_alpha", alpha}, {"use_dora", true}}.dump());
  EXPECT_NE(load_peft_adapter(ad, (*mc)->gguf()).status().message().find("DoRA"), std::string::npos);
  write_text(ad + "/adapter_config.json", json{{"r", 8}, {"lora_alpha", alpha}}.dump());
  EXPECT_NE(load_peft_adapter(ad, (*mc)->gguf()).status().message().find("with r = 8"), std::string::npos);
  EXPECT_NE(load_peft_adapter(dir, (*mc)->gguf()).status().message().find("no adapter_config.json"), std::string::npos);
  fs::remove_all(dir);
}

// save_peft_adapter writes what load_peft_adapter reads back exactly (names, Q/K row order, scale)
// on bases with permuted (llama, exaone) and unpermuted (qwen2: NEOX rope) Q/K layouts.
TEST(Peft, ExportRoundTrips) {
  for (const std::string arch : {"llama", "exaone", "qwen2", "mistral"}) {
    SCOPED_TRACE(arch);
    TestModelSpec s = spec_for(arch);
    auto bytes = testing::make_random_model(s);
    auto g = GgufFile::parse(bytes.data(), bytes.size());
    ASSERT_TRUE(g.ok());
    std::mt19937_64 rng(11);
    std::normal_distribution<float> nd(0.f, 1.f);
    const int64_t r = 3;
    std::map<std::string, LoraPair> pairs;
    for (int64_t il = 0; il < s.n_layer; ++il)
      for (const char* m : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}) {
        const std::string gn = "blk." + std::to_string(il) + "." + m + ".weight";
        const GgufTensor* t = g->tensor(gn);
        ASSERT_NE(t, nullptr) << gn;
        LoraPair p;
        p.rank = r;
        p.cols = t->shape[0];
        p.rows = t->shape[1];
        p.a.resize(r * p.cols);
        p.b.resize(p.rows * r);
        for (auto& v : p.a) v = nd(rng);
        for (auto& v : p.b) v = nd(rng);
        pairs[gn] = std::move(p);
      }
    auto ad = LoraAdapter::from_pairs("rt", arch, 5.0f, pairs);
    const std::string dir = temp_dir("peft_export");
    ASSERT_TRUE(save_peft_adapter(*ad, *g, dir).ok());
    std::ifstream cf(dir + "/adapter_config.json");
    json cfg = json::parse(cf);
    EXPECT_EQ(cfg["r"], r);
    EXPECT_EQ(cfg["lora_alpha"], 5.0);
    EXPECT_EQ(cfg["target_modules"].size(), 7u) << cfg.dump();
    auto st = SafetensorsFile::open(dir + "/adapter_model.safetensors");
    ASSERT_TRUE(st.ok());
    const std::string q_name = arch == "exaone" ? "base_model.model.transformer.h.0.attn.attention.q_proj.lora_B.weight"
                                                : "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight";
    EXPECT_NE(st->find(q_name), nullptr) << q_name;
    auto back = load_peft_adapter(dir, *g);
    ASSERT_TRUE(back.ok()) << back.status().to_string();
    EXPECT_FLOAT_EQ((*back)->scale_for(1.0f, r), 5.0f / r);
    ASSERT_EQ((*back)->pairs().size(), pairs.size());
    for (const auto& [name, p] : pairs) {
      const LoraPair& q = (*back)->pairs().at(name);
      EXPECT_EQ(q.a, p.a) << name;
      EXPECT_EQ(q.b, p.b) << name;
    }
    // On a llama-convention base the file's Q rows are in HF's half-split order, not GGUF's.
    if (arch == "llama") {
      const SafetensorsTensor* t = st->find(q_name);
      const float* f = reinterpret_cast<const float*>(t->data);
      const LoraPair& p = pairs.at("blk.0.attn_q.weight");
      EXPECT_EQ(f[1 * r], p.b[2 * r]) << "HF row 1 is GGUF row 2";
    }
    // One r per PEFT config: mixed ranks are refused.
    auto mixed = pairs;
    mixed.begin()->second.rank = 2;
    mixed.begin()->second.a.resize(2 * mixed.begin()->second.cols);
    mixed.begin()->second.b.resize(mixed.begin()->second.rows * 2);
    EXPECT_NE(save_peft_adapter(*LoraAdapter::from_pairs("m", arch, 5.0f, mixed), *g, dir).message().find("mixes ranks"),
              std::string::npos);
    fs::remove_all(dir);
  }
}

TEST(Folder, ClearErrors) {
  const std::string dir = temp_dir("errors");
  write_text(dir + "/config.json", R"({"model_type": "bert", "hidden_size": 8})");
  auto f = open_model_path(dir);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("bert"), std::string::npos);
  write_text(dir + "/config.json", R"({"model_type": "llama", "hidden_size": 8, "num_hidden_layers": 1,
      "intermediate_size": 8, "num_attention_heads": 2})");
  f = open_model_path(dir);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("model.safetensors"), std::string::npos) << f.status().to_string();
  std::vector<float> w(8, 1.0f);
  std::vector<SafetensorsTensor> ts = {{"model.layers.0.mystery.weight", "F32", {8}, reinterpret_cast<uint8_t*>(w.data()), 32}};
  auto bytes = write_safetensors(ts);
  write_file(dir + "/model.safetensors", bytes.data(), bytes.size());
  f = open_model_path(dir);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("mystery"), std::string::npos) << f.status().to_string();
  fs::remove_all(dir);
}

TEST(Config, MapsHfKeysToGgufKeys) {
  auto md = hf_config_metadata(R"({"model_type": "qwen3_moe", "hidden_size": 64, "num_hidden_layers": 2,
      "intermediate_size": 96, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
      "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "num_experts": 8, "num_experts_per_tok": 2,
      "moe_intermediate_size": 32, "norm_topk_prob": true, "rope_scaling": {"type": "yarn", "factor": 4.0,
      "original_max_position_embeddings": 4096}})", "cfg");
  ASSERT_TRUE(md.ok()) << md.status().to_string();
  std::map<std::string, GgufValue> m(md->begin(), md->end());
  EXPECT_EQ(*m.at("general.architecture").as_string(), "qwen3moe");
  EXPECT_EQ(m.at("qwen3moe.expert_count").as_int(), 8);
  EXPECT_EQ(m.at("qwen3moe.expert_used_count").as_int(), 2);
  EXPECT_EQ(m.at("qwen3moe.expert_feed_forward_length").as_int(), 32);
  EXPECT_EQ(m.at("qwen3moe.attention.key_length").as_int(), 16);
  EXPECT_EQ(*m.at("qwen3moe.rope.scaling.type").as_string(), "yarn");
  EXPECT_EQ(m.at("qwen3moe.rope.scaling.original_context_length").as_int(), 4096);
  EXPECT_NEAR(*m.at("qwen3moe.rope.freq_base").as_float(), 1e6, 1);
  EXPECT_EQ(m.count("modu.hf.rope_neox"), 0u);  // only llama-convention archs need it
  auto bad = hf_config_metadata(R"({"model_type": "llama", "hidden_size": "wide"})", "cfg");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("hidden_size"), std::string::npos);
}

TEST(TokenizerJson, MapsVocabMergesSpecialsAndTemplate) {
  const std::string tj = R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3},
      "merges": ["a b", ["ab", "Ġ"]]},
    "added_tokens": [{"id": 5, "content": "<|end|>", "special": true}, {"id": 6, "content": "<tool>", "special": false}],
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex":
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
      "behavior": "Isolated"}, {"type": "ByteLevel", "use_regex": false}]},
    "decoder": {"type": "ByteLevel"}})";
  const std::string cfg = R"({"eos_token": {"content": "<|end|>"}, "add_bos_token": false, "chat_template": "{{ x }}"})";
  auto md = hf_tokenizer_metadata(tj, cfg, "tok", 10);
  ASSERT_TRUE(md.ok()) << md.status().to_string();
  std::map<std::string, GgufValue> m(md->begin(), md->end());
  EXPECT_EQ(*m.at("tokenizer.ggml.pre").as_string(), "qwen2");
  const auto& toks = m.at("tokenizer.ggml.tokens").elems();
  ASSERT_EQ(toks.size(), 10u);
  EXPECT_EQ(*toks[2].as_string(), "ab");
  EXPECT_EQ(*toks[4].as_string(), "[PAD4]");
  EXPECT_EQ(*toks[5].as_string(), "<|end|>");
  const auto& types = m.at("tokenizer.ggml.token_type").elems();
  EXPECT_EQ(types[0].as_int(), 1);
  EXPECT_EQ(types[4].as_int(), 5);
  EXPECT_EQ(types[5].as_int(), 3);
  EXPECT_EQ(types[6].as_int(), 4);
  EXPECT_EQ(*m.at("tokenizer.ggml.merges").elems()[1].as_string(), "ab Ġ");
  EXPECT_EQ(m.at("tokenizer.ggml.eos_token_id").as_int(), 5);
  EXPECT_EQ(m.at("tokenizer.ggml.add_bos_token").as_bool(), false);
  EXPECT_EQ(*m.at("tokenizer.chat_template").as_string(), "{{ x }}");
  // The metadata builds a working tokenizer.
  auto g = GgufFile::from_parts("tok", *md, {}, nullptr);
  ASSERT_TRUE(g.ok());
  auto tok = Tokenizer::from_gguf(*g);
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  EXPECT_EQ((*tok)->encode("ab", false, false), (std::vector<int32_t>{2}));
  EXPECT_EQ((*tok)->encode("ab<|end|>", false, true), (std::vector<int32_t>{2, 5}));
  // An unknown split regex is refused with a pointer to the table.
  std::string other = tj;
  other.replace(other.find("\\\\p{N}|"), 7, "\\\\p{N}{1,2}|");
  auto bad = hf_tokenizer_metadata(other, cfg, "tok");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("kKnownRegexes"), std::string::npos) << bad.status().to_string();
}

}  // namespace
}  // namespace modu
