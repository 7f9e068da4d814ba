// PEFT LoRA folders (adapter_config.json + adapter_model.safetensors) read as LoraAdapters.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "modu/hf/hf_model.h"
#include "modu/hf/safetensors.h"
#include "modu/kernels/dtype.h"
#include "modu/models/config.h"

namespace modu {

namespace {

Result<std::vector<float>> tensor_f32(const SafetensorsTensor& t, const std::string& label) {
  DType dt;
  if (t.dtype == "F32") dt = DType::F32;
  else if (t.dtype == "F16") dt = DType::F16;
  else if (t.dtype == "BF16") dt = DType::BF16;
  else return unimplemented(label + ": tensor '" + t.name + "' has dtype " + t.dtype + "; only F32, F16 and BF16 load");
  int64_t n = 1;
  for (int64_t d : t.shape) n *= d;
  std::vector<float> out((size_t)n);
  dtype_traits(dt)->dequantize(t.data, out.data(), n);
  for (float v : out)
    if (!std::isfinite(v)) return invalid_argument(label + ": tensor '" + t.name + "' holds a non-finite value");
  return out;
}

// Rows of B [rows, rank] permuted per head as the converter permutes Q/K weight rows: GGUF row 2i
// is the HF row i of the head, row 2i+1 the HF row half + i (to_gguf); or back (!to_gguf).
std::vector<float> permute_b(const std::vector<float>& b, int64_t rows, int64_t rank, int64_t n_heads, bool to_gguf) {
  std::vector<float> out(b.size());
  const int64_t hd = rows / n_heads, half = hd / 2;
  const size_t bytes = (size_t)rank * sizeof(float);
  for (int64_t h = 0; h < n_heads; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t k = 0; k < 2; ++k) {
        const int64_t gguf_row = h * hd + 2 * i + k, hf_row = h * hd + k * half + i;
        const int64_t dst = to_gguf ? gguf_row : hf_row, src = to_gguf ? hf_row : gguf_row;
        std::memcpy(&out[(size_t)(dst * rank)], &b[(size_t)(src * rank)], bytes);
      }
  return out;
}

bool ends_with(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// The Hugging Face module name ("model.layers.3.self_attn.q_proj") whose weight the folder loader
// maps to GGUF tensor `g` ("blk.3.attn_q.weight"): the candidates are tried through the loader's
// own mapping, so export and import cannot disagree. Arch-specific spellings (EXAONE's
// transformer.h.N.attn.attention.*) come first because the common ones map for them too.
Result<std::string> gguf_to_hf_module(const std::string& arch, const std::string& g) {
  if (g.rfind("blk.", 0) != 0) return unimplemented("'" + g + "' is not a per-layer matrix: no PEFT module name for it");
  const size_t dot = g.find('.', 4);
  const std::string idx = g.substr(4, dot - 4);
  static const char* kForms[] = {
      "transformer.h.N.attn.attention.q_proj", "transformer.h.N.attn.attention.k_proj",
      "transformer.h.N.attn.attention.v_proj", "transformer.h.N.attn.attention.out_proj",
      "transformer.h.N.mlp.c_fc_0", "transformer.h.N.mlp.c_fc_1", "transformer.h.N.mlp.c_proj",
      "model.layers.N.self_attn.q_proj", "model.layers.N.self_attn.k_proj", "model.layers.N.self_attn.v_proj",
      "model.layers.N.self_attn.o_proj", "model.layers.N.mlp.gate_proj", "model.layers.N.mlp.up_proj",
      "model.layers.N.mlp.down_proj", "model.layers.N.self_attn.qkv_proj", "model.layers.N.mlp.gate_up_proj"};
  for (const char* form : kForms) {
    std::string m = form;
    m.replace(m.find(".N.") + 1, 1, idx);
    auto mapped = hf_tensor_to_gguf(arch, m + ".weight");
    if (mapped.ok() && *mapped == g) return m;
  }
  return unimplemented("no Hugging Face module name maps to '" + g + "' for architecture " + arch);
}

}  // namespace

Status save_peft_adapter(const LoraAdapter& adapter, const GgufFile& base, const std::string& dir) {
  namespace fs = std::filesystem;
  if (adapter.pairs().empty()) return invalid_argument("adapter " + adapter.name() + " has no LoRA pairs to export");
  MODU_ASSIGN_OR_RETURN(ModelConfig mc, read_model_config(base));
  if (!adapter.arch().empty() && adapter.arch() != mc.arch.name)
    return invalid_argument("adapter " + adapter.name() + " is for architecture " + adapter.arch() + ", the base is " + mc.arch.name);
  MODU_ASSIGN_OR_RETURN(bool hf_neox, base.get_bool(kHfRopeNeoxKey, false));
  const ArchSpec* spec = find_arch(mc.arch.name);
  const bool permute_qk = !hf_neox && spec != nullptr && spec->rope_type == RopeType::kNorm;
  const int64_t r = adapter.pairs().begin()->second.rank;
  std::vector<std::vector<float>> store;  // keeps the (possibly unpermuted) data alive for the writer
  std::vector<SafetensorsTensor> tensors;
  std::set<std::string> targets;
  store.reserve(adapter.pairs().size() * 2);
  for (const auto& [g, p] : adapter.pairs()) {
    if (p.rank != r)
      return unimplemented("adapter " + adapter.name() + " mixes ranks (" + std::to_string(r) + " and " + std::to_string(p.rank) +
                           "): PEFT's adapter_config has one r (rank_pattern is not written)");
    MODU_ASSIGN_OR_RETURN(std::string module, gguf_to_hf_module(mc.arch.name, g));
    targets.insert(module.substr(module.rfind('.') + 1));
    std::vector<float> b = p.b;
    if (permute_qk && (ends_with(g, ".attn_q.weight") || ends_with(g, ".attn_k.weight")))
      b = permute_b(b, p.rows, r, ends_with(g, ".attn_q.weight") ? mc.n_head : mc.n_head_kv, /*to_gguf=*/false);
    store.push_back(p.a);
    store.push_back(std::move(b));
    const std::string prefix = "base_model.model." + module;
    tensors.push_back({prefix + ".lora_A.weight", "F32", {r, p.cols}, reinterpret_cast<const uint8_t*>(store[store.size() - 2].data()),
                       store[store.size() - 2].size() * sizeof(float)});
    tensors.push_back({prefix + ".lora_B.weight", "F32", {p.rows, r}, reinterpret_cast<const uint8_t*>(store.back().data()),
                       store.back().size() * sizeof(float)});
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return io_error("cannot create " + dir + ": " + ec.message());
  auto name = base.get_string("general.name", std::string());
  const std::string base_name = name.ok() ? *name : std::string();
  // scale = lora_alpha / r as in llama.cpp's rule; an adapter without alpha scales by 1.
  nlohmann::json cfg = {{"peft_type", "LORA"}, {"task_type", "CAUSAL_LM"}, {"r", r},
                        {"lora_alpha", adapter.alpha() > 0 ? (double)adapter.alpha() : (double)r},
                        {"target_modules", std::vector<std::string>(targets.begin(), targets.end())},
                        {"lora_dropout", 0.0}, {"bias", "none"}, {"fan_in_fan_out", false}, {"use_rslora", false},
                        {"use_dora", false}, {"inference_mode", true},
                        {"base_model_name_or_path", base_name}};
  const std::vector<uint8_t> bytes = write_safetensors(tensors, {{"format", "pt"}});
  for (const auto& [name, text] : {std::pair<std::string, std::string>{"adapter_config.json", cfg.dump(2) + "\n"},
                                   {"adapter_model.safetensors", std::string(bytes.begin(), bytes.end())}}) {
    const std::string path = (fs::path(dir) / name).string();
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(text.data(), (std::streamsize)text.size());
    if (!out.flush()) return io_error("cannot write " + path);
  }
  return Status::Ok();
}

Result<std::shared_ptr<const LoraAdapter>> load_peft_adapter(const std::string& dir, const GgufFile& base) {
  namespace fs = std::filesystem;
  const std::string cfg_path = (fs::path(dir) / "adapter_config.json").string();
  std::ifstream in(cfg_path);
  if (!in) return not_found(dir + " has no adapter_config.json (a PEFT LoRA folder holds adapter_config.json and adapter_model.safetensors)");
  std::stringstream ss;
  ss << in.rdbuf();
  const nlohmann::json cfg = nlohmann::json::parse(ss.str(), nullptr, false);
  if (!cfg.is_object()) return corrupt(cfg_path + " is not a JSON object");
  const std::string peft_type = cfg.value("peft_type", std::string("LORA"));
  if (peft_type != "LORA") return unimplemented(cfg_path + ": peft_type '" + peft_type + "' is not supported (only LORA)");
  if (cfg.value("use_dora", false)) return unimplemented(cfg_path + ": DoRA adapters are not supported");
  for (const char* k : {"rank_pattern", "alpha_pattern"})
    if (cfg.contains(k) && cfg[k].is_object() && !cfg[k].empty())
      return unimplemented(cfg_path + ": per-module " + k + " is not supported");
  if (!cfg.contains("r") || !cfg["r"].is_number_integer() || cfg["r"].get<int64_t>() <= 0)
    return invalid_argument(cfg_path + ": 'r' must be a positive integer");
  const int64_t r = cfg["r"].get<int64_t>();
  const double alpha = cfg.contains("lora_alpha") && cfg["lora_alpha"].is_number() ? cfg["lora_alpha"].get<double>() : (double)r;
  const bool rslora = cfg.value("use_rslora", false);
  // scale_for gives alpha' / r: rsLoRA's alpha / sqrt(r) is alpha' = alpha * sqrt(r).
  const float alpha_eff = (float)(rslora ? alpha * std::sqrt((double)r) : alpha);
  if (!(alpha_eff > 0)) return invalid_argument(cfg_path + ": lora_alpha must be positive");

  std::string st_path = (fs::path(dir) / "adapter_model.safetensors").string();
  if (!fs::exists(st_path))
    return not_found(dir + " has no adapter_model.safetensors (older adapter_model.bin pickles are not read: re-save with safetensors)");
  MODU_ASSIGN_OR_RETURN(SafetensorsFile st, SafetensorsFile::open(st_path));
  MODU_ASSIGN_OR_RETURN(ModelConfig mc, read_model_config(base));
  MODU_ASSIGN_OR_RETURN(bool hf_neox, base.get_bool(kHfRopeNeoxKey, false));
  const ArchSpec* spec = find_arch(mc.arch.name);
  const bool permute_qk = !hf_neox && spec != nullptr && spec->rope_type == RopeType::kNorm;

  struct Halves {
    const SafetensorsTensor* a = nullptr;
    const SafetensorsTensor* b = nullptr;
  };
  std::map<std::string, Halves> halves;  // by GGUF base tensor name
  for (const SafetensorsTensor& t : st.tensors()) {
    std::string n = t.name;
    for (const char* prefix : {"base_model.model."})
      if (n.rfind(prefix, 0) == 0) n = n.substr(std::strlen(prefix));
    const bool is_a = n.find(".lora_A.") != std::string::npos, is_b = n.find(".lora_B.") != std::string::npos;
    if (n.find("lora_embedding_") != std::string::npos)
      return unimplemented(st_path + ": '" + t.name + "': embedding adapters are not supported");
    if (!is_a && !is_b) return unimplemented(st_path + ": '" + t.name + "' is not a lora_A / lora_B weight");
    // "model.layers.0.self_attn.q_proj.lora_A.weight" -> "model.layers.0.self_attn.q_proj.weight"
    const size_t k = n.find(is_a ? ".lora_A." : ".lora_B.");
    const std::string module = n.substr(0, k) + ".weight";
    MODU_ASSIGN_OR_RETURN(std::string g, hf_tensor_to_gguf(mc.arch.name, module));
    if (g.empty()) return unimplemented(st_path + ": '" + t.name + "' adapts a tensor modu does not load");
    (is_a ? halves[g].a : halves[g].b) = &t;
  }
  if (halves.empty()) return invalid_argument(st_path + ": no LoRA weights");
  std::map<std::string, LoraPair> pairs;
  for (const auto& [g, h] : halves) {
    if (!h.a || !h.b) return invalid_argument(st_path + ": " + g + " has only one of lora_A / lora_B");
    if (h.a->shape.size() != 2 || h.b->shape.size() != 2 || h.a->shape[0] != r || h.b->shape[1] != r)
      return invalid_argument(st_path + ": " + g + ": lora_A must be [r, in] and lora_B [out, r] with r = " + std::to_string(r));
    LoraPair p;
    p.rank = r;
    p.cols = h.a->shape[1];
    p.rows = h.b->shape[0];
    MODU_ASSIGN_OR_RETURN(p.a, tensor_f32(*h.a, st_path));
    MODU_ASSIGN_OR_RETURN(p.b, tensor_f32(*h.b, st_path));
    const bool is_q = g.size() > 14 && g.compare(g.size() - 14, 14, ".attn_q.weight") == 0;
    const bool is_k = g.size() > 14 && g.compare(g.size() - 14, 14, ".attn_k.weight") == 0;
    if (permute_qk && (is_q || is_k)) p.b = permute_b(p.b, p.rows, r, is_q ? mc.n_head : mc.n_head_kv, /*to_gguf=*/true);
    pairs[g] = std::move(p);
  }
  return LoraAdapter::from_pairs(dir, mc.arch.name, alpha_eff, std::move(pairs));
}

}  // namespace modu
