// ModelConfig: everything the shared decoder needs to know about a model, read from GGUF metadata
// in one place; and the architecture registry (an architecture is data, registered by its own file).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "modu/core/status.h"

namespace modu {

class GgufFile;

// How rotary embedding pairs dimensions: kNorm rotates adjacent pairs (x[2i], x[2i+1]) as GGUF
// llama conversions expect (Q/K rows are permuted at conversion); kNeox rotates (x[i], x[i+d/2]).
enum class RopeType { kNorm, kNeox };
enum class RopeScaling { kNone, kLinear, kLlama3, kYarn };
// Feed-forward gate activation: SiLU (SwiGLU) or GELU with the tanh approximation (GeGLU, Gemma).
enum class FfnAct { kSilu, kGeluTanh };

const char* rope_scaling_name(RopeScaling s);

// What an architecture is, as data. Each family registers one of these from its own file.
struct ArchSpec {
  std::string name;          // general.architecture value, e.g. "llama", "qwen2"
  RopeType rope_type = RopeType::kNorm;
  bool requires_qkv_bias = false;  // Q, K, V projections have biases (Qwen2)
  bool requires_qk_norm = false;   // per-head RMS norm of Q and K before rope (Qwen3)
  bool allows_qkv_bias = true;     // biases are loaded when present
  // Mixture of experts (when `{arch}.expert_count` > 0): renormalize the selected experts' router
  // probabilities to sum to 1 (Mixtral, Qwen3-MoE) unless `{arch}.expert_weights_norm` says otherwise.
  bool moe_norm_topk = false;
  // Gemma-style layers: embeddings scaled by sqrt(d_model), GELU-tanh gate, RMS norms after
  // attention and after the feed-forward (post_attention_norm, post_ffw_norm) as well as before.
  FfnAct ffn_act = FfnAct::kSilu;
  bool scale_embeddings = false;
  bool post_norms = false;
  // Sliding-window layers when `{arch}.attention.sliding_window` is set: layer il uses the window
  // iff il % swa_pattern < swa_pattern - 1 (llama.cpp's set_swa_pattern); 0 = no windowed layers.
  int64_t swa_pattern = 0;
  float swa_rope_base = 0.0f;      // rope base of windowed layers (0: the model's freq_base)
  bool gemma_query_scale = false;  // default query scale as llama.cpp derives it for Gemma 2/3
  // EXAONE 4: no RMS norm before attention / feed-forward (only the post norms), and global
  // (non-windowed) layers of a model with windowed ones use no rotary embedding at all.
  bool pre_norms = true;
  bool nope_global_layers = false;
  // Phi-3: gate and up projections fused in ffn_up.weight ([2 * n_ff, n_embd], gate rows first).
  // (A fused attn_qkv.weight is used by any architecture whenever present.)
  bool fused_gate_up = false;
  // M-RoPE (Qwen2-VL): rotary pairs split into sections (`{arch}.rope.dimension_sections`) that
  // turn with the (t, row, column) positions of BatchToken::rope_t/h/w.
  bool mrope = false;
};

// Registers an architecture; returns true so it can initialize a static in the family's file.
bool register_arch(const ArchSpec& spec);
const ArchSpec* find_arch(const std::string& name);
std::vector<std::string> registered_archs();

struct ModelConfig {
  ArchSpec arch;
  int64_t n_vocab = 0;
  int64_t n_embd = 0;        // d_model
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;      // key/value head size (may differ from n_embd / n_head, Qwen3)
  int64_t n_ff = 0;
  int64_t n_ctx_train = 0;
  float rms_eps = 1e-5f;

  // Rotary embedding.
  int64_t n_rot = 0;         // dimensions rotated per head (<= head_dim)
  std::array<int64_t, 4> rope_sections{};  // M-RoPE pairs per position kind (t, h, w, rest); arch.mrope
  float rope_theta = 10000.0f;
  RopeScaling rope_scaling = RopeScaling::kNone;
  float rope_factor = 1.0f;        // context extension factor (freq_scale = 1 / factor)
  int64_t rope_orig_ctx = 0;       // original training context for llama3 / yarn
  float llama3_low_freq_factor = 1.0f;
  float llama3_high_freq_factor = 4.0f;
  float yarn_ext_factor = 1.0f;
  float yarn_attn_factor = 1.0f;
  float yarn_beta_fast = 32.0f;
  float yarn_beta_slow = 1.0f;

  // Mixture of experts: 0 experts means a dense SwiGLU feed-forward.
  int64_t n_expert = 0;
  int64_t n_expert_used = 0;   // top-k experts per token
  int64_t n_ff_exp = 0;        // expert feed-forward size
  int64_t n_ff_shexp = 0;      // shared expert feed-forward size (when ffn_*_shexp tensors exist)
  bool moe_norm_topk = false;  // renormalize the top-k router weights

  // Gemma-style options (see ArchSpec).
  int64_t n_swa = 0;             // sliding window (positions attended, including the token itself)
  int64_t swa_pattern = 0;
  float rope_theta_swa = 0.0f;   // rope base of windowed layers, unscaled (0: same as global layers)
  float attn_scale = 0.0f;       // query scale (0: 1 / sqrt(head_dim))
  float attn_softcap = 0.0f;     // scores = cap * tanh(scores / cap) when > 0
  float final_softcap = 0.0f;    // logits = cap * tanh(logits / cap) when > 0
  float embd_scale = 1.0f;       // embeddings are multiplied by this ({arch}.embedding_scale, Gemma sqrt(d))
  float residual_scale = 1.0f;   // attention / feed-forward outputs x this before the residual add (Granite)
  float logit_scale = 1.0f;      // logits are divided by this ({arch}.logit_scale, Granite)
  std::vector<uint8_t> swa_layers;  // per layer: windowed (from the pattern or its per-layer array)
  bool is_swa(int64_t layer) const {
    return n_swa > 0 && layer >= 0 && layer < (int64_t)swa_layers.size() && swa_layers[layer] != 0;
  }
  // Whether layer `layer` applies rotary embedding (EXAONE 4's global layers do not).
  bool uses_rope(int64_t layer) const { return !(arch.nope_global_layers && n_swa > 0 && !is_swa(layer)); }

  std::string describe() const;  // one line for logs
};

// Reads and validates the config from metadata (`{arch}.*` keys). Errors name the key.
Result<ModelConfig> read_model_config(const GgufFile& file);

// Per-dimension-pair rotary frequencies (radians per position) for i in [0, n_rot/2), including
// linear and llama3 scaling (and `rope_freqs.weight` factors when given). YaRN is applied in the
// rope kernel itself since it also scales magnitudes.
std::vector<float> rope_frequencies(const ModelConfig& cfg, const float* freq_factors);

}  // namespace modu
