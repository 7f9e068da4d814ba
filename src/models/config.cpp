// Reads ModelConfig from GGUF metadata (the one place model hyper-parameters are interpreted) and
// keeps the architecture registry.
#include "modu/models/config.h"

#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>

#include "modu/gguf/gguf.h"

namespace modu {

namespace {

std::map<std::string, ArchSpec>& registry() {
  static auto* r = new std::map<std::string, ArchSpec>();
  return *r;
}
std::mutex& registry_mutex() {
  static auto* m = new std::mutex();
  return *m;
}

Result<int64_t> get_positive(const GgufFile& f, const std::string& key, std::optional<int64_t> def = std::nullopt) {
  MODU_ASSIGN_OR_RETURN(int64_t v, f.get_int(key, def));
  if (v <= 0 || v > (int64_t(1) << 32))
    return corrupt(f.name() + ": metadata '" + key + "' = " + std::to_string(v) + " is not a sensible positive size");
  return v;
}

}  // namespace

const char* rope_scaling_name(RopeScaling s) {
  switch (s) {
    case RopeScaling::kNone: return "none";
    case RopeScaling::kLinear: return "linear";
    case RopeScaling::kLlama3: return "llama3";
    case RopeScaling::kYarn: return "yarn";
  }
  return "?";
}

bool register_arch(const ArchSpec& spec) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  registry()[spec.name] = spec;
  return true;
}

const ArchSpec* find_arch(const std::string& name) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  auto it = registry().find(name);
  return it == registry().end() ? nullptr : &it->second;
}

std::vector<std::string> registered_archs() {
  std::lock_guard<std::mutex> lock(registry_mutex());
  std::vector<std::string> out;
  for (const auto& [k, v] : registry()) out.push_back(k);
  return out;
}

std::string ModelConfig::describe() const {
  std::ostringstream os;
  os << arch.name << ": d_model " << n_embd << ", layers " << n_layer << ", heads " << n_head << "/" << n_head_kv
     << " (head_dim " << head_dim << "), ffn " << n_ff << ", vocab " << n_vocab << ", ctx " << n_ctx_train
     << ", rope theta " << rope_theta << " scaling " << rope_scaling_name(rope_scaling);
  if (rope_scaling != RopeScaling::kNone) os << " x" << rope_factor;
  if (n_expert > 0) os << ", experts " << n_expert_used << "/" << n_expert << " (ffn " << n_ff_exp << ")";
  if (n_swa > 0) {
    int64_t windowed = 0;
    for (int64_t il = 0; il < n_layer; ++il) windowed += is_swa(il);
    os << ", sliding window " << n_swa << " on " << windowed << "/" << n_layer << " layers";
  }
  return os.str();
}

Result<ModelConfig> read_model_config(const GgufFile& f) {
  ModelConfig c;
  MODU_ASSIGN_OR_RETURN(std::string arch_name, f.get_string("general.architecture"));
  const ArchSpec* spec = find_arch(arch_name);
  if (spec == nullptr) {
    std::string known;
    for (const auto& a : registered_archs()) known += (known.empty() ? "" : ", ") + a;
    return unimplemented(f.name() + ": architecture '" + arch_name + "' is not supported; supported: " + known);
  }
  c.arch = *spec;
  // Hugging Face folders keep Q/K rows in the half-split rotary layout (src/hf sets this key;
  // GGUF conversions permute the rows instead), so they rotate with NeoX pairing.
  MODU_ASSIGN_OR_RETURN(bool hf_neox, f.get_bool("modu.hf.rope_neox", false));
  if (hf_neox) c.arch.rope_type = RopeType::kNeox;
  const std::string p = arch_name + ".";
  MODU_ASSIGN_OR_RETURN(c.n_embd, get_positive(f, p + "embedding_length"));
  MODU_ASSIGN_OR_RETURN(c.n_layer, get_positive(f, p + "block_count"));
  MODU_ASSIGN_OR_RETURN(c.n_ff, get_positive(f, p + "feed_forward_length"));
  MODU_ASSIGN_OR_RETURN(c.n_head, get_positive(f, p + "attention.head_count"));
  MODU_ASSIGN_OR_RETURN(c.n_head_kv, get_positive(f, p + "attention.head_count_kv", c.n_head));
  MODU_ASSIGN_OR_RETURN(c.n_ctx_train, get_positive(f, p + "context_length", 2048));
  if (c.n_embd % c.n_head != 0 && f.find(p + "attention.key_length") == nullptr)
    return corrupt(f.name() + ": embedding_length " + std::to_string(c.n_embd) + " is not divisible by head_count " +
                   std::to_string(c.n_head) + " and attention.key_length is missing");
  MODU_ASSIGN_OR_RETURN(c.head_dim, get_positive(f, p + "attention.key_length", c.n_embd / c.n_head));
  MODU_ASSIGN_OR_RETURN(int64_t v_len, get_positive(f, p + "attention.value_length", c.head_dim));
  if (v_len != c.head_dim)
    return unimplemented(f.name() + ": attention.value_length " + std::to_string(v_len) + " differs from key_length " +
                         std::to_string(c.head_dim) + "; not supported");
  if (c.n_head % c.n_head_kv != 0)
    return corrupt(f.name() + ": head_count " + std::to_string(c.n_head) + " is not a multiple of head_count_kv " +
                   std::to_string(c.n_head_kv));
  MODU_ASSIGN_OR_RETURN(double eps, f.get_float(p + "attention.layer_norm_rms_epsilon", 1e-5));
  if (!(eps > 0 && eps < 1)) return corrupt(f.name() + ": attention.layer_norm_rms_epsilon must be in (0, 1)");
  c.rms_eps = (float)eps;
  MODU_ASSIGN_OR_RETURN(double theta, f.get_float(p + "rope.freq_base", 10000.0));
  if (!(theta > 1)) return corrupt(f.name() + ": rope.freq_base must be > 1");
  c.rope_theta = (float)theta;
  MODU_ASSIGN_OR_RETURN(c.n_rot, get_positive(f, p + "rope.dimension_count", c.head_dim));
  if (c.n_rot > c.head_dim || c.n_rot % 2 != 0)
    return corrupt(f.name() + ": rope.dimension_count " + std::to_string(c.n_rot) + " must be even and <= head_dim " +
                   std::to_string(c.head_dim));
  if (c.arch.mrope) {
    const GgufValue* sec = f.find(p + "rope.dimension_sections");
    if (sec == nullptr || !sec->is_array() || sec->size() < 3 || sec->size() > 4)
      return corrupt(f.name() + ": " + p + "rope.dimension_sections (M-RoPE: 3 or 4 pair counts) is missing or malformed");
    int64_t sum = 0;
    for (size_t i = 0; i < sec->size(); ++i) {
      auto v = sec->elems()[i].as_int();
      if (!v || *v < 0) return corrupt(f.name() + ": " + p + "rope.dimension_sections holds a negative or non-integer value");
      c.rope_sections[i] = *v;
      sum += *v;
    }
    if (sum <= 0 || sum > c.n_rot / 2)
      return corrupt(f.name() + ": " + p + "rope.dimension_sections sum to " + std::to_string(sum) +
                     " pairs; the rotary dimension has " + std::to_string(c.n_rot / 2));
  }

  // Vocabulary size: explicit key, else the tokenizer's token list, else the embedding tensor.
  if (f.find(p + "vocab_size") != nullptr) {
    MODU_ASSIGN_OR_RETURN(c.n_vocab, get_positive(f, p + "vocab_size"));
  } else if (const GgufTensor* emb = f.tensor("token_embd.weight"); emb != nullptr && emb->shape.size() == 2) {
    c.n_vocab = emb->shape[1];
  } else if (const GgufValue* toks = f.find("tokenizer.ggml.tokens"); toks != nullptr && toks->is_array()) {
    c.n_vocab = (int64_t)toks->size();
  } else {
    return corrupt(f.name() + ": cannot determine the vocabulary size (no vocab_size, token_embd.weight or tokens)");
  }

  // Rope scaling.
  MODU_ASSIGN_OR_RETURN(std::string scaling, f.get_string(p + "rope.scaling.type", std::string("none")));
  MODU_ASSIGN_OR_RETURN(double factor, f.get_float(p + "rope.scaling.factor", 1.0));
  if (f.find(p + "rope.scale_linear") != nullptr && scaling == "none") {  // older key
    MODU_ASSIGN_OR_RETURN(factor, f.get_float(p + "rope.scale_linear"));
    scaling = "linear";
  }
  if (scaling == "none" || scaling.empty()) {
    c.rope_scaling = RopeScaling::kNone;
  } else if (scaling == "linear") {
    c.rope_scaling = RopeScaling::kLinear;
  } else if (scaling == "llama3") {
    c.rope_scaling = RopeScaling::kLlama3;
  } else if (scaling == "yarn") {
    c.rope_scaling = RopeScaling::kYarn;
  } else {
    return unimplemented(f.name() + ": rope.scaling.type '" + scaling + "' is not supported (none, linear, llama3, yarn)");
  }
  if (c.rope_scaling != RopeScaling::kNone && !(factor > 0))
    return corrupt(f.name() + ": rope.scaling.factor must be > 0");
  c.rope_factor = (float)factor;
  MODU_ASSIGN_OR_RETURN(c.rope_orig_ctx, get_positive(f, p + "rope.scaling.original_context_length", c.n_ctx_train));
  MODU_ASSIGN_OR_RETURN(double lf, f.get_float(p + "rope.scaling.low_freq_factor", 1.0));
  MODU_ASSIGN_OR_RETURN(double hf, f.get_float(p + "rope.scaling.high_freq_factor", 4.0));
  c.llama3_low_freq_factor = (float)lf;
  c.llama3_high_freq_factor = (float)hf;
  if (c.rope_scaling == RopeScaling::kLlama3 && !(hf > lf))
    return corrupt(f.name() + ": rope.scaling.high_freq_factor must exceed low_freq_factor");
  MODU_ASSIGN_OR_RETURN(double ext, f.get_float(p + "rope.scaling.yarn_ext_factor", 1.0));
  MODU_ASSIGN_OR_RETURN(double attn, f.get_float(p + "rope.scaling.attn_factor", 1.0));
  MODU_ASSIGN_OR_RETURN(double bf, f.get_float(p + "rope.scaling.yarn_beta_fast", 32.0));
  MODU_ASSIGN_OR_RETURN(double bs, f.get_float(p + "rope.scaling.yarn_beta_slow", 1.0));
  c.yarn_ext_factor = (float)ext;
  c.yarn_attn_factor = (float)attn;
  c.yarn_beta_fast = (float)bf;
  c.yarn_beta_slow = (float)bs;

  // Mixture of experts.
  MODU_ASSIGN_OR_RETURN(c.n_expert, f.get_int(p + "expert_count", 0));
  if (c.n_expert < 0 || c.n_expert > 4096) return corrupt(f.name() + ": expert_count must be in [0, 4096]");
  if (c.n_expert > 0) {
    MODU_ASSIGN_OR_RETURN(c.n_expert_used, get_positive(f, p + "expert_used_count"));
    if (c.n_expert_used > c.n_expert)
      return corrupt(f.name() + ": expert_used_count " + std::to_string(c.n_expert_used) + " exceeds expert_count " +
                     std::to_string(c.n_expert));
    // Mixtral (llama) experts use feed_forward_length; the Qwen MoEs default to n_ff / k as llama.cpp.
    const int64_t def_exp = arch_name == "llama" ? c.n_ff : std::max<int64_t>(1, c.n_ff / c.n_expert_used);
    MODU_ASSIGN_OR_RETURN(c.n_ff_exp, get_positive(f, p + "expert_feed_forward_length", def_exp));
    MODU_ASSIGN_OR_RETURN(c.n_ff_shexp, get_positive(f, p + "expert_shared_feed_forward_length", c.n_ff));
    MODU_ASSIGN_OR_RETURN(c.moe_norm_topk, f.get_bool(p + "expert_weights_norm", c.arch.moe_norm_topk));
  }

  // Soft-capping, sliding windows, query scale, embedding scale (Gemma 2 / 3).
  MODU_ASSIGN_OR_RETURN(double attn_cap, f.get_float(p + "attn_logit_softcapping", 0.0));
  MODU_ASSIGN_OR_RETURN(double final_cap, f.get_float(p + "final_logit_softcapping", 0.0));
  if (attn_cap < 0 || final_cap < 0) return corrupt(f.name() + ": logit soft-capping values must be >= 0");
  c.attn_softcap = (float)attn_cap;
  c.final_softcap = (float)final_cap;
  if (c.arch.swa_pattern > 0) {
    MODU_ASSIGN_OR_RETURN(c.n_swa, f.get_int(p + "attention.sliding_window", 0));
    if (c.n_swa < 0) return corrupt(f.name() + ": attention.sliding_window must be >= 0");
    // The pattern: a per-layer bool array (EXAONE 4 conversions) or a period n where layer il is
    // windowed iff il % n < n - 1 (llama.cpp's set_swa_pattern; the architecture's default).
    const GgufValue* pat = f.find(p + "attention.sliding_window_pattern");
    c.swa_pattern = c.arch.swa_pattern;
    if (pat != nullptr && pat->is_array()) {
      if ((int64_t)pat->size() != c.n_layer)
        return corrupt(f.name() + ": attention.sliding_window_pattern has " + std::to_string(pat->size()) +
                       " entries for " + std::to_string(c.n_layer) + " layers");
      for (const auto& e : pat->elems()) {
        auto b = e.as_bool();
        if (!b) return corrupt(f.name() + ": attention.sliding_window_pattern entries must be bools");
        c.swa_layers.push_back(*b ? 1 : 0);
      }
    } else {
      MODU_ASSIGN_OR_RETURN(c.swa_pattern, f.get_int(p + "attention.sliding_window_pattern", c.arch.swa_pattern));
      if (c.swa_pattern < 0) return corrupt(f.name() + ": attention.sliding_window_pattern must be >= 0");
      for (int64_t il = 0; il < c.n_layer; ++il)
        c.swa_layers.push_back(c.swa_pattern > 1 && il % c.swa_pattern < c.swa_pattern - 1 ? 1 : 0);
    }
    MODU_ASSIGN_OR_RETURN(double swa_base, f.get_float(p + "rope.freq_base_swa", c.arch.swa_rope_base));
    c.rope_theta_swa = (float)swa_base;
  }
  if (f.find(p + "attention.scale") != nullptr) {
    MODU_ASSIGN_OR_RETURN(double sc, f.get_float(p + "attention.scale"));
    if (!(sc > 0)) return corrupt(f.name() + ": attention.scale must be > 0");
    c.attn_scale = (float)sc;
  } else if (c.arch.gemma_query_scale) {
    // llama.cpp: the 27B models (Gemma 2: 46 layers, Gemma 3: 62) scale by 1/sqrt(d_model/heads).
    const bool big = (arch_name == "gemma2" && c.n_layer == 46) || (arch_name == "gemma3" && c.n_layer == 62);
    c.attn_scale = 1.0f / std::sqrt((float)(big ? c.n_embd / c.n_head : c.head_dim));
  }
  if (c.arch.scale_embeddings) c.embd_scale = std::sqrt((float)c.n_embd);
  // Granite multipliers (any architecture may carry them).
  MODU_ASSIGN_OR_RETURN(double es, f.get_float(p + "embedding_scale", c.embd_scale));
  MODU_ASSIGN_OR_RETURN(double rs, f.get_float(p + "residual_scale", 1.0));
  MODU_ASSIGN_OR_RETURN(double ls, f.get_float(p + "logit_scale", 1.0));
  if (!(es > 0) || !(rs > 0) || !(ls > 0))
    return corrupt(f.name() + ": embedding_scale, residual_scale and logit_scale must be > 0");
  c.embd_scale = (float)es;
  c.residual_scale = (float)rs;
  c.logit_scale = (float)ls;
  return c;
}

std::vector<float> rope_frequencies(const ModelConfig& c, const float* freq_factors) {
  const int64_t half = c.n_rot / 2;
  std::vector<float> freqs(half);
  const double pi = 3.14159265358979323846;
  for (int64_t i = 0; i < half; ++i) {
    double f = std::pow((double)c.rope_theta, -2.0 * (double)i / (double)c.n_rot);
    if (freq_factors != nullptr) {
      f /= freq_factors[i];
    } else if (c.rope_scaling == RopeScaling::kLlama3) {
      // Llama 3.1: long wavelengths are stretched by `factor`, short ones kept, smooth between.
      const double low_wavelen = (double)c.rope_orig_ctx / c.llama3_low_freq_factor;
      const double high_wavelen = (double)c.rope_orig_ctx / c.llama3_high_freq_factor;
      const double wavelen = 2 * pi / f;
      if (wavelen > low_wavelen) {
        f /= c.rope_factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth = ((double)c.rope_orig_ctx / wavelen - c.llama3_low_freq_factor) /
                              (c.llama3_high_freq_factor - c.llama3_low_freq_factor);
        f = (1 - smooth) * f / c.rope_factor + smooth * f;
      }
    }
    if (c.rope_scaling == RopeScaling::kLinear) f /= c.rope_factor;
    freqs[i] = (float)f;
  }
  return freqs;
}

}  // namespace modu
