// config.json -> GGUF metadata: the Hugging Face hyper-parameter names mapped to the `{arch}.*`
// keys llama.cpp's converter writes, so read_model_config() is the only reader of either format.
#include <cmath>

#include <nlohmann/json.hpp>

#include "modu/hf/hf_model.h"

namespace modu {

namespace {

using json = nlohmann::json;

struct ArchName { const char* hf; const char* gguf; };
// HF model_type -> GGUF general.architecture (as llama.cpp's convert_hf_to_gguf.py names them).
constexpr ArchName kArchs[] = {
    {"llama", "llama"},     {"mistral", "llama"},     {"mixtral", "llama"},   {"qwen2", "qwen2"},
    {"qwen3", "qwen3"},     {"qwen2_moe", "qwen2moe"}, {"qwen3_moe", "qwen3moe"}, {"gemma2", "gemma2"},
    {"gemma3_text", "gemma3"}, {"gemma3", "gemma3"}, {"exaone", "exaone"}, {"exaone4", "exaone4"},
    {"granite", "granite"}, {"phi3", "phi3"}, {"qwen2_vl", "qwen2vl"}, {"qwen2_5_vl", "qwen2vl"},
};

const json* field(const json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

}  // namespace

Result<GgufMetadata> hf_config_metadata(const std::string& text, const std::string& label) {
  json root = json::parse(text, nullptr, false);
  if (root.is_discarded() || !root.is_object()) return corrupt(label + ": config.json is not a JSON object");
  // Multimodal Gemma 3 keeps the language model's settings under text_config.
  const json& j = (root.contains("text_config") && root["text_config"].is_object()) ? root["text_config"] : root;
  const json* mt = field(root, "model_type");
  if (mt == nullptr || !mt->is_string()) return corrupt(label + ": config.json has no model_type");
  std::string hf_type = mt->get<std::string>();
  std::string arch;
  for (const auto& a : kArchs)
    if (hf_type == a.hf) arch = a.gguf;
  // Multimodal wrappers (LLaVA, LLaVA-NeXT / OneVision, Idefics3 / SmolVLM) name their language
  // model's own type in text_config.
  if (const json* tmt = &j != &root ? field(j, "model_type") : nullptr; arch.empty() && tmt && tmt->is_string()) {
    for (const auto& a : kArchs)
      if (tmt->get<std::string>() == a.hf) arch = a.gguf;
    if (!arch.empty()) hf_type = tmt->get<std::string>();
  }
  if (arch.empty()) {
    std::string known;
    for (const auto& a : kArchs) known += (known.empty() ? "" : ", ") + std::string(a.hf);
    return unimplemented(label + ": config.json model_type '" + hf_type + "' is not supported; supported: " + known);
  }
  GgufMetadata md;
  const std::string p = arch + ".";
  Status err = Status::Ok();
  auto num = [&](const char* key) -> const json* {
    const json* v = field(j, key);
    if (v != nullptr && !v->is_number()) {
      err = corrupt(label + ": config.json '" + key + "' is not a number");
      return nullptr;
    }
    return v;
  };
  auto put_u32 = [&](const char* key, const std::string& gguf_key, bool required) {
    const json* v = num(key);
    if (v == nullptr) {
      if (required && err.ok()) err = corrupt(label + ": config.json lacks '" + key + "'");
      return;
    }
    const int64_t x = v->get<int64_t>();
    if (x < 0 || x > (int64_t{1} << 32)) {
      err = corrupt(label + ": config.json '" + key + "' = " + std::to_string(x) + " is out of range");
      return;
    }
    md.emplace_back(p + gguf_key, GgufValue::u32((uint32_t)x));
  };
  auto put_f32 = [&](const char* key, const std::string& gguf_key) {
    if (const json* v = num(key)) md.emplace_back(p + gguf_key, GgufValue::f32(v->get<float>()));
  };
  md.emplace_back("general.architecture", GgufValue::string(arch));
  if (const json* n = field(root, "_name_or_path"); n != nullptr && n->is_string())
    md.emplace_back("general.name", GgufValue::string(n->get<std::string>()));
  put_u32("max_position_embeddings", "context_length", false);
  put_u32("hidden_size", "embedding_length", true);
  put_u32(j.contains("num_hidden_layers") ? "num_hidden_layers" : "num_layers", "block_count", true);  // EXAONE 3: num_layers
  put_u32("intermediate_size", "feed_forward_length", true);
  put_u32("num_attention_heads", "attention.head_count", true);
  put_u32("num_key_value_heads", "attention.head_count_kv", false);
  put_u32("head_dim", "attention.key_length", false);
  put_u32("head_dim", "attention.value_length", false);
  put_u32("vocab_size", "vocab_size", false);
  put_f32(j.contains("rms_norm_eps") ? "rms_norm_eps" : "layer_norm_epsilon", "attention.layer_norm_rms_epsilon");
  put_f32("rope_theta", "rope.freq_base");
  if (const json* prf = num("partial_rotary_factor")) {
    const json* hd = num("head_dim");
    const json* hs = num("hidden_size");
    const json* nh = num("num_attention_heads");
    const int64_t head_dim =
        hd ? hd->get<int64_t>() : (hs && nh && nh->get<int64_t>() > 0 ? hs->get<int64_t>() / nh->get<int64_t>() : 0);
    md.emplace_back(p + "rope.dimension_count", GgufValue::u32((uint32_t)std::lround(head_dim * prf->get<double>())));
  }
  // Mixture of experts.
  put_u32("num_local_experts", "expert_count", false);   // Mixtral
  put_u32("num_experts", "expert_count", false);         // Qwen MoE
  put_u32("num_experts_per_tok", "expert_used_count", false);
  put_u32("moe_intermediate_size", "expert_feed_forward_length", false);
  put_u32("shared_expert_intermediate_size", "expert_shared_feed_forward_length", false);
  if (const json* ntp = field(j, "norm_topk_prob"); ntp != nullptr && ntp->is_boolean())
    md.emplace_back(p + "expert_weights_norm", GgufValue::boolean(ntp->get<bool>()));
  // Granite multipliers.
  put_f32("embedding_multiplier", "embedding_scale");
  put_f32("residual_multiplier", "residual_scale");
  put_f32("attention_multiplier", "attention.scale");
  put_f32("logits_scaling", "logit_scale");
  // Gemma: soft-capping, sliding window, query scaling.
  put_f32("attn_logit_softcapping", "attn_logit_softcapping");
  put_f32("final_logit_softcapping", "final_logit_softcapping");
  if (arch == "gemma2" || arch == "gemma3") {
    put_u32("sliding_window", "attention.sliding_window", false);
    if (const json* qs = num("query_pre_attn_scalar"))
      md.emplace_back(p + "attention.scale", GgufValue::f32((float)(1.0 / std::sqrt(qs->get<double>()))));
    put_u32("sliding_window_pattern", "attention.sliding_window_pattern", false);
    if (arch == "gemma3") put_f32("rope_local_base_freq", "rope.freq_base_swa");
  }
  // EXAONE 4 hybrids: windowed layers from layer_types or a "LLLG"-style / integer pattern, as
  // per-layer bools (what llama.cpp's converter writes).
  if (arch == "exaone4" && field(j, "sliding_window") != nullptr) {
    put_u32("sliding_window", "attention.sliding_window", false);
    const json* nl = num("num_hidden_layers");
    const int64_t n_layer = nl ? nl->get<int64_t>() : 0;
    std::vector<GgufValue> pat;
    const json* lt = field(j, "layer_types");
    const json* sp = field(j, "sliding_window_pattern");
    for (int64_t il = 0; il < n_layer && n_layer <= 4096; ++il) {
      if (lt && lt->is_array() && (int64_t)lt->size() == n_layer && (*lt)[il].is_string()) {
        pat.push_back(GgufValue::boolean((*lt)[il].get<std::string>() == "sliding_attention"));
      } else if (sp && sp->is_string() && !sp->get<std::string>().empty()) {
        const std::string ps = sp->get<std::string>();
        pat.push_back(GgufValue::boolean(ps[il % ps.size()] == 'L'));
      } else if (sp && sp->is_number_unsigned() && sp->get<int64_t>() > 0) {
        pat.push_back(GgufValue::boolean((il + 1) % sp->get<int64_t>() != 0));
      }
    }
    if ((int64_t)pat.size() == n_layer && n_layer > 0)
      md.emplace_back(p + "attention.sliding_window_pattern", GgufValue::array(GgufType::BOOL, std::move(pat)));
  }
  // Rope scaling: {"rope_type" or "type": linear | llama3 | yarn, "factor", ...}.
  if (const json* rs = field(j, "rope_scaling"); rs != nullptr && rs->is_object()) {
    std::string type;
    if (const json* t = field(*rs, "rope_type"); t && t->is_string()) type = t->get<std::string>();
    else if (const json* t2 = field(*rs, "type"); t2 && t2->is_string()) type = t2->get<std::string>();
    auto f = [&](const char* k, double def) {
      const json* v = field(*rs, k);
      return v && v->is_number() ? v->get<double>() : def;
    };
    if (type == "linear" || type == "llama3" || type == "yarn") {
      md.emplace_back(p + "rope.scaling.type", GgufValue::string(type));
      md.emplace_back(p + "rope.scaling.factor", GgufValue::f32((float)f("factor", 1.0)));
      if (const json* o = field(*rs, "original_max_position_embeddings"); o && o->is_number_unsigned())
        md.emplace_back(p + "rope.scaling.original_context_length", GgufValue::u32(o->get<uint32_t>()));
      if (type == "llama3") {
        md.emplace_back(p + "rope.scaling.low_freq_factor", GgufValue::f32((float)f("low_freq_factor", 1.0)));
        md.emplace_back(p + "rope.scaling.high_freq_factor", GgufValue::f32((float)f("high_freq_factor", 4.0)));
      }
      if (type == "yarn") {
        md.emplace_back(p + "rope.scaling.yarn_beta_fast", GgufValue::f32((float)f("beta_fast", 32.0)));
        md.emplace_back(p + "rope.scaling.yarn_beta_slow", GgufValue::f32((float)f("beta_slow", 1.0)));
      }
    } else if (type == "longrope" || type == "su") {
      // Phi-3 LongRoPE: factor tensors (written by open_hf_folder), cos/sin scaled by
      // sqrt(1 + ln(max / original) / ln(original)) as the HF model and llama.cpp's converter do.
      const json* orig = num("original_max_position_embeddings");
      const json* mx = num("max_position_embeddings");
      if (orig == nullptr || mx == nullptr || orig->get<double>() <= 1)
        return corrupt(label + ": config.json longrope needs original_max_position_embeddings");
      const double scale = mx->get<double>() / orig->get<double>();
      const double af = scale <= 1 ? 1.0 : std::sqrt(1 + std::log(scale) / std::log(orig->get<double>()));
      md.emplace_back(p + "rope.scaling.attn_factor", GgufValue::f32((float)af));
      md.emplace_back(p + "rope.scaling.original_context_length", GgufValue::u32(orig->get<uint32_t>()));
    } else if (const json* ms = field(*rs, "mrope_section"); ms != nullptr && arch == "qwen2vl") {
      // Qwen2-VL's M-RoPE: rotary pairs per (t, h, w) section, padded to four as llama.cpp writes.
      std::vector<int32_t> sec;
      for (const auto& e : ms->is_array() ? *ms : json::array())
        if (e.is_number_integer()) sec.push_back(e.get<int32_t>());
      if (sec.empty() || sec.size() > 4 || sec.size() != ms->size())
        return corrupt(label + ": config.json rope_scaling.mrope_section must list 3 or 4 integers");
      sec.resize(4, 0);
      md.emplace_back(p + "rope.dimension_sections", GgufValue::i32_array(sec));
    } else if (!type.empty() && type != "default") {
      return unimplemented(label + ": config.json rope_scaling type '" + type +
                           "' is not supported (linear, llama3, yarn, longrope)");
    }
  }
  MODU_RETURN_IF_ERROR(err);
  // Llama-convention architectures rotate adjacent pairs in GGUF (rows permuted at conversion);
  // HF checkpoints keep the half-split layout, so they are run with NeoX pairing instead.
  if (arch == "llama" || arch == "granite") md.emplace_back(kHfRopeNeoxKey, GgufValue::boolean(true));
  return md;
}

}  // namespace modu
