// Hugging Face folder loading: finds the safetensors shards, maps HF tensor names to GGUF names
// (views into the maps), stacks per-expert MoE weights, and adds config and tokenizer metadata.
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "modu/core/fp16.h"
#include "modu/hf/hf_model.h"
#include "modu/hf/safetensors.h"
#include "hf_internal.h"

namespace modu {

namespace {

namespace fs = std::filesystem;


// "model.layers.3.self_attn.q_proj.weight" -> "blk.3.attn_q.weight"; expert tensors give the
// stacked name and their expert index; "" for tensors to skip.
struct Mapped {
  std::string name;
  int expert = -1;
};

const std::map<std::string, std::string>& layer_names(const std::string& arch) {
  static const std::map<std::string, std::string> common = {
      {"input_layernorm", "attn_norm"},       {"self_attn.q_proj", "attn_q"},
      {"self_attn.k_proj", "attn_k"},         {"self_attn.v_proj", "attn_v"},
      {"self_attn.o_proj", "attn_output"},    {"self_attn.q_norm", "attn_q_norm"},
      {"self_attn.k_norm", "attn_k_norm"},    {"post_attention_layernorm", "ffn_norm"},
      {"mlp.gate_proj", "ffn_gate"},          {"mlp.up_proj", "ffn_up"},
      {"mlp.down_proj", "ffn_down"},
      {"self_attn.qkv_proj", "attn_qkv"},     {"mlp.gate_up_proj", "ffn_up"},  // Phi-3 fused
      // MoE routers and shared experts (Qwen MoE, Mixtral).
      {"mlp.gate", "ffn_gate_inp"},           {"block_sparse_moe.gate", "ffn_gate_inp"},
      {"mlp.shared_expert.gate_proj", "ffn_gate_shexp"}, {"mlp.shared_expert.up_proj", "ffn_up_shexp"},
      {"mlp.shared_expert.down_proj", "ffn_down_shexp"}, {"mlp.shared_expert_gate", "ffn_gate_inp_shexp"},
  };
  static const std::map<std::string, std::string> gemma = [] {
    auto m = common;
    m["post_attention_layernorm"] = "post_attention_norm";
    m["pre_feedforward_layernorm"] = "ffn_norm";
    m["post_feedforward_layernorm"] = "post_ffw_norm";
    return m;
  }();
  static const std::map<std::string, std::string> exaone4 = [] {
    auto m = common;
    m["post_attention_layernorm"] = "post_attention_norm";
    m["post_feedforward_layernorm"] = "post_ffw_norm";
    return m;
  }();
  if (arch == "exaone4") return exaone4;
  return arch == "gemma2" || arch == "gemma3" ? gemma : common;
}

// EXAONE 3 names (transformer.h.N.attn.attention.q_proj, ...) in the common HF spelling.
std::string exaone_to_common(const std::string& n) {
  static const std::map<std::string, std::string> top = {
      {"transformer.wte.weight", "model.embed_tokens.weight"}, {"transformer.ln_f.weight", "model.norm.weight"}};
  if (auto it = top.find(n); it != top.end()) return it->second;
  const std::string hp = "transformer.h.";
  if (n.rfind(hp, 0) != 0) return n;
  const size_t dot = n.find('.', hp.size());
  if (dot == std::string::npos) return n;
  static const std::map<std::string, std::string> layer = {
      {"ln_1", "input_layernorm"}, {"ln_2", "post_attention_layernorm"},
      {"attn.attention.q_proj", "self_attn.q_proj"}, {"attn.attention.k_proj", "self_attn.k_proj"},
      {"attn.attention.v_proj", "self_attn.v_proj"}, {"attn.attention.out_proj", "self_attn.o_proj"},
      {"mlp.c_fc_0", "mlp.gate_proj"}, {"mlp.c_fc_1", "mlp.up_proj"}, {"mlp.c_proj", "mlp.down_proj"}};
  std::string rest = n.substr(dot + 1);
  const size_t last = rest.rfind('.');
  if (last == std::string::npos) return n;
  auto it = layer.find(rest.substr(0, last));
  if (it == layer.end()) return n;
  return "model.layers." + n.substr(hp.size(), dot - hp.size()) + "." + it->second + rest.substr(last);
}

Result<Mapped> map_name(const std::string& arch, std::string n, const std::string& label) {
  for (const char* prefix : {"language_model.", "model.language_model.", "model.text_model."})  // multimodal wrappers
    if (n.rfind(prefix, 0) == 0) n = (std::string(prefix) == "language_model." ? "" : "model.") + n.substr(std::strlen(prefix));
  for (const char* skip : {"vision_tower.", "multi_modal_projector.", "model.vision_tower.", "model.multi_modal_projector.",
                           "model.vision_model.", "model.connector.", "visual.", "model.visual.", "image_newline",
                           "model.image_newline"})
    if (n.rfind(skip, 0) == 0) return Mapped{};
  if (n.find("rotary_emb.inv_freq") != std::string::npos) return Mapped{};
  if (arch == "exaone") n = exaone_to_common(n);
  if (n == "model.embed_tokens.weight") return Mapped{"token_embd.weight"};
  if (n == "model.norm.weight") return Mapped{"output_norm.weight"};
  if (n == "lm_head.weight") return Mapped{"output.weight"};
  const std::string lp = "model.layers.";
  if (n.rfind(lp, 0) == 0) {
    size_t dot = n.find('.', lp.size());
    if (dot != std::string::npos) {
      const std::string idx = n.substr(lp.size(), dot - lp.size());
      std::string rest = n.substr(dot + 1);
      const size_t last = rest.rfind('.');
      const std::string suffix = last == std::string::npos ? "" : rest.substr(last);  // ".weight" / ".bias"
      rest = rest.substr(0, last);
      const std::string blk = "blk." + idx + ".";
      // Experts: mlp.experts.E.{gate,up,down}_proj (Qwen MoE), block_sparse_moe.experts.E.w{1,2,3} (Mixtral).
      for (const char* ep : {"mlp.experts.", "block_sparse_moe.experts."}) {
        if (rest.rfind(ep, 0) != 0) continue;
        const std::string tail = rest.substr(std::strlen(ep));
        const size_t d2 = tail.find('.');
        if (d2 == std::string::npos) break;
        const std::string which = tail.substr(d2 + 1);
        int e = -1;
        try { e = std::stoi(tail.substr(0, d2)); } catch (...) { e = -1; }
        static const std::map<std::string, std::string> kinds = {
            {"gate_proj", "ffn_gate_exps"}, {"up_proj", "ffn_up_exps"}, {"down_proj", "ffn_down_exps"},
            {"w1", "ffn_gate_exps"}, {"w3", "ffn_up_exps"}, {"w2", "ffn_down_exps"}};
        auto k = kinds.find(which);
        if (e < 0 || e > 4096 || k == kinds.end()) break;
        return Mapped{blk + k->second + suffix, e};
      }
      const auto& names = layer_names(arch);
      auto it = names.find(rest);
      if (it != names.end()) return Mapped{blk + it->second + suffix};
    }
  }
  return unimplemented(label + ": tensor '" + n + "' has no GGUF counterpart for architecture '" + arch + "'");
}

}  // namespace

Result<std::string> read_text(const std::string& path, bool required) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (required) return io_error(path + ": cannot open (a Hugging Face folder needs it)");
    return std::string();
  }
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

Result<std::vector<SafetensorsFile>> open_hf_shards(const std::string& dir) {
  const fs::path d(dir);
  // Shards: model.safetensors, or the files named by model.safetensors.index.json.
  std::vector<std::string> shards;
  if (fs::exists(d / "model.safetensors.index.json")) {
    MODU_ASSIGN_OR_RETURN(std::string idx, read_text((d / "model.safetensors.index.json").string(), true));
    nlohmann::json j = nlohmann::json::parse(idx, nullptr, false);
    if (j.is_discarded() || !j.contains("weight_map") || !j["weight_map"].is_object())
      return corrupt(dir + ": model.safetensors.index.json has no weight_map object");
    std::set<std::string> files;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string()) return corrupt(dir + ": weight_map value for '" + it.key() + "' is not a file name");
      const std::string fn = it.value().get<std::string>();
      if (fn.find('/') != std::string::npos || fn.find("..") != std::string::npos)
        return corrupt(dir + ": weight_map names '" + fn + "', which is not a file in the folder");
      files.insert(fn);
    }
    for (const auto& f : files) shards.push_back((d / f).string());
  } else if (fs::exists(d / "model.safetensors")) {
    shards.push_back((d / "model.safetensors").string());
  } else {
    return not_found(dir + ": no model.safetensors or model.safetensors.index.json");
  }
  std::vector<SafetensorsFile> files;
  for (const auto& s : shards) {
    MODU_ASSIGN_OR_RETURN(SafetensorsFile f, SafetensorsFile::open(s));
    files.push_back(std::move(f));
  }
  return files;
}

Result<DType> map_dtype(const SafetensorsTensor& t, const std::string& label) {
  if (t.dtype == "F32") return DType::F32;
  if (t.dtype == "F16") return DType::F16;
  if (t.dtype == "BF16") return DType::BF16;
  return unimplemented(label + ": tensor '" + t.name + "' has dtype " + t.dtype + "; only F32, F16 and BF16 load");
}

// Gemma's RMSNorm multiplies by (1 + w); GGUF stores 1 + w (llama.cpp's converter adds the 1).
std::vector<uint8_t> plus_one_f32(const SafetensorsTensor& t, DType dt, int64_t n) {
  std::vector<uint8_t> out((size_t)n * 4);
  float* o = reinterpret_cast<float*>(out.data());
  dtype_traits(dt)->dequantize(t.data, o, n);
  for (int64_t i = 0; i < n; ++i) o[i] += 1.0f;
  return out;
}

bool is_hf_folder(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) && fs::exists(fs::path(path) / "config.json", ec);
}

Result<GgufFile> open_hf_folder(const std::string& dir) {
  const fs::path d(dir);
  MODU_ASSIGN_OR_RETURN(std::string config, read_text((d / "config.json").string(), true));
  MODU_ASSIGN_OR_RETURN(GgufMetadata md, hf_config_metadata(config, dir));
  const std::string arch = *md.front().second.as_string();
  // Tokenizer (optional: `modu info` works without one; run reports the tokenizer's absence).
  MODU_ASSIGN_OR_RETURN(std::string tok_json, read_text((d / "tokenizer.json").string(), false));
  if (!tok_json.empty()) {
    MODU_ASSIGN_OR_RETURN(std::string tok_cfg, read_text((d / "tokenizer_config.json").string(), false));
    int64_t n_vocab = 0;
    for (const auto& [k, v] : md)
      if (k == arch + ".vocab_size") n_vocab = v.as_int().value_or(0);
    MODU_ASSIGN_OR_RETURN(GgufMetadata tmd, hf_tokenizer_metadata(tok_json, tok_cfg, dir, n_vocab));
    bool has_template = false;
    for (auto& kv : tmd) {
      has_template |= kv.first == "tokenizer.chat_template";
      md.push_back(std::move(kv));
    }
    // Newer folders keep the chat template in its own file.
    MODU_ASSIGN_OR_RETURN(std::string tmpl, read_text((d / "chat_template.jinja").string(), false));
    if (!has_template && !tmpl.empty()) md.emplace_back("tokenizer.chat_template", GgufValue::string(tmpl));
  }
  auto owner = std::make_shared<HfOwner>();
  MODU_ASSIGN_OR_RETURN(owner->files, open_hf_shards(dir));
  const bool gemma = arch == "gemma2" || arch == "gemma3";
  std::vector<GgufTensor> tensors;
  struct Expert { const SafetensorsTensor* t; DType dt; };
  std::map<std::string, std::map<int, Expert>> experts;  // stacked name -> expert index -> part
  for (const auto& f : owner->files) {
    for (const auto& t : f.tensors()) {
      MODU_ASSIGN_OR_RETURN(Mapped m, map_name(arch, t.name, dir));
      if (m.name.empty()) continue;
      MODU_ASSIGN_OR_RETURN(DType dt, map_dtype(t, dir));
      if (t.shape.empty() || t.shape.size() > 3) return corrupt(dir + ": tensor '" + t.name + "' has rank 0 or > 3");
      if (m.expert >= 0) {
        if (!experts[m.name].emplace(m.expert, Expert{&t, dt}).second)
          return corrupt(dir + ": expert " + std::to_string(m.expert) + " of '" + m.name + "' appears twice");
        continue;
      }
      GgufTensor g;
      g.name = m.name;
      g.dtype = dt;
      g.shape.assign(t.shape.rbegin(), t.shape.rend());  // GGUF lists the contiguous dimension first
      if (g.shape.size() == 2 && g.shape[1] == 1 && g.name.find("ffn_gate_inp_shexp") != std::string::npos)
        g.shape.pop_back();  // HF [1, n_embd] -> GGUF [n_embd], as llama.cpp creates it
      g.data = t.data;
      g.nbytes = t.nbytes;
      const bool is_norm = g.name.size() > 12 && g.name.compare(g.name.size() - 12, 12, "_norm.weight") == 0;
      if (gemma && is_norm) {
        owner->owned.push_back(plus_one_f32(t, dt, g.n_elements()));
        g.dtype = DType::F32;
        g.data = owner->owned.back().data();
        g.nbytes = owner->owned.back().size();
      }
      tensors.push_back(std::move(g));
    }
  }
  for (auto& [name, parts] : experts) {
    const Expert& first = parts.begin()->second;
    const int n = (int)parts.size();
    if (parts.begin()->first != 0 || parts.rbegin()->first != n - 1)
      return corrupt(dir + ": experts of '" + name + "' are not numbered 0.." + std::to_string(n - 1));
    std::vector<uint8_t> buf(first.t->nbytes * (size_t)n);
    for (const auto& [e, p] : parts) {
      if (p.t->shape != first.t->shape || p.dt != first.dt)
        return corrupt(dir + ": expert " + std::to_string(e) + " of '" + name + "' differs in shape or dtype");
      std::memcpy(buf.data() + (size_t)e * first.t->nbytes, p.t->data, p.t->nbytes);
    }
    owner->owned.push_back(std::move(buf));
    GgufTensor g;
    g.name = name;
    g.dtype = first.dt;
    g.shape.assign(first.t->shape.rbegin(), first.t->shape.rend());
    g.shape.push_back(n);  // [cols, rows, n_expert]
    g.data = owner->owned.back().data();
    g.nbytes = owner->owned.back().size();
    tensors.push_back(std::move(g));
  }
  // Phi-3 LongRoPE factors live in config.json: they become rope_factors_{long,short}.weight.
  nlohmann::json cj = nlohmann::json::parse(config, nullptr, false);
  if (arch == "phi3" && cj.is_object() && cj.contains("rope_scaling") && cj["rope_scaling"].is_object()) {
    for (auto [key, name] : {std::pair{"long_factor", "rope_factors_long.weight"},
                             std::pair{"short_factor", "rope_factors_short.weight"}}) {
      const auto& a = cj["rope_scaling"].value(key, nlohmann::json());
      if (!a.is_array() || a.empty()) continue;
      std::vector<uint8_t> buf(a.size() * 4);
      for (size_t i = 0; i < a.size(); ++i) {
        if (!a[i].is_number()) return corrupt(dir + ": config.json rope_scaling." + key + " holds a non-number");
        const float v = a[i].get<float>();
        std::memcpy(buf.data() + 4 * i, &v, 4);
      }
      owner->owned.push_back(std::move(buf));
      GgufTensor g;
      g.name = name;
      g.dtype = DType::F32;
      g.shape = {(int64_t)a.size()};
      g.data = owner->owned.back().data();
      g.nbytes = owner->owned.back().size();
      tensors.push_back(std::move(g));
    }
  }
  return GgufFile::from_parts(dir, std::move(md), std::move(tensors), owner);
}

Result<GgufFile> open_model_path(const std::string& path) {
  if (is_hf_folder(path)) return open_hf_folder(path);
  std::error_code ec;
  if (fs::is_directory(path, ec))
    return not_found(path + ": a directory without config.json (expected a GGUF file or a Hugging Face folder)");
  return GgufFile::open(path);
}

Result<std::string> hf_tensor_to_gguf(const std::string& arch, const std::string& hf_name) {
  MODU_ASSIGN_OR_RETURN(Mapped m, map_name(arch, hf_name, "tensor name"));
  if (m.expert >= 0) return unimplemented("'" + hf_name + "' is an MoE expert tensor, which LoRA here does not adapt");
  return m.name;
}

}  // namespace modu
