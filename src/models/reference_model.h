// Test support: random small models written with modu's GGUF writer, and an independent float64
// implementation of the Llama-family forward pass to check modu's against. Shares no kernels
// with modu: only the scalar dequantize reference is used to read quantized weights back.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "modu/gguf/gguf.h"

namespace modu::testing {

struct TestModelSpec {
  std::string arch = "llama";
  int64_t n_vocab = 96, n_embd = 64, n_layer = 2, n_head = 4, n_head_kv = 2, head_dim = 16, n_ff = 96;
  int64_t n_ctx = 256;
  int64_t n_rot = 0;  // 0: head_dim
  double rope_theta = 10000.0;
  double rms_eps = 1e-5;
  std::string scaling = "none";  // none | linear | llama3 | yarn
  double scaling_factor = 1.0;
  int64_t orig_ctx = 64;
  bool rope_freqs_tensor = false;  // write llama3 factors as rope_freqs.weight instead of metadata
  bool tied_output = false;
  bool qkv_bias = false;
  bool qk_norm = false;
  DType weight_type = DType::F32;  // for 2-D matrices
  DType embd_type = DType::F32;
  uint64_t seed = 1;
  // Mixture of experts (n_expert > 0 replaces the dense FFN): expert tensors, optional shared
  // expert with a sigmoid gate, router rows duplicated in pairs (0=1, 2=3, ...) to force ties.
  int64_t n_expert = 0, n_expert_used = 0, n_ff_exp = 32, n_ff_shexp = 48;
  bool shared_expert = false;
  bool norm_topk = true;  // written as {arch}.expert_weights_norm
  bool router_ties = false;
  // Gemma-style layers.
  bool post_norms = false;       // post_attention_norm / post_ffw_norm tensors
  bool gelu = false;             // GeGLU (tanh GELU) instead of SwiGLU
  bool embd_scale = false;       // embeddings x sqrt(n_embd)
  int64_t n_swa = 0, swa_pattern = 0;  // window; layer il windowed iff il % pattern < pattern - 1
  double rope_theta_swa = 0;     // windowed layers' unscaled rope base (written as rope.freq_base_swa)
  double attn_scale = 0;         // written as attention.scale when > 0 (else 1/sqrt(head_dim))
  double attn_softcap = 0, final_softcap = 0;
  // EXAONE 4: no pre-norms; windowed layers listed per layer (written as a bool array); global
  // layers of a windowed model skip rope.
  bool no_pre_norms = false, nope_global = false;
  std::vector<bool> swa_layers;
  // Granite multipliers (0: not written): embedding_scale, residual_scale, logit_scale.
  double embd_mult = 0, residual_mult = 0, logit_scale = 0;
  // Phi-3: fused attn_qkv / gate-up tensors; LongRoPE factor tensors (short: 1 + 0.1 i, long:
  // 1 + 0.5 i), long ones used when n_ctx > orig_ctx, cos/sin scaled by attn_factor.
  bool fused = false, longrope = false;
  double attn_factor = 1.0;
  // M-RoPE (qwen2vl): rotary pairs per position kind (t, h, w[, rest]); written as
  // {arch}.rope.dimension_sections.
  std::vector<int64_t> rope_sections;
};

// Each architecture's distinguishing options as the tests exercise them (biases, Q/K norms, soft
// caps, windows, fused matrices, multipliers, scalings, experts).
TestModelSpec arch_spec(const std::string& arch);

// Writes a random model following `spec` (weights ~ N(0, 0.3/sqrt(fan_in)) style) to a GGUF buffer.
std::vector<uint8_t> make_random_model(const TestModelSpec& spec);

// Embeddings given for positions [pos, pos + n) instead of token embeddings (an image): rows
// [n * n_embd], not scaled; with `bidirectional` every position of the span sees the whole span.
struct RefEmbdSpan {
  int64_t pos = 0, n = 0;
  std::vector<double> rows;
  bool bidirectional = false;
  bool mrope = false;   // a grid_h x grid_w image for M-RoPE positions (row-major)
  int64_t grid_w = 0, grid_h = 0;
};

// Float64 forward pass over the whole token sequence (no cache): logits [n_tokens][n_vocab].
std::vector<std::vector<double>> reference_logits(const GgufFile& file, const TestModelSpec& spec,
                                                  const std::vector<int32_t>& tokens,
                                                  const std::vector<RefEmbdSpan>& spans = {});

// LoRA pairs per tensor name: A [rank, cols] and B [rows, rank], in float64.
using LoraPairs = std::map<std::string, std::pair<std::vector<double>, std::vector<double>>>;
// The base with each matrix of the first adapter's pairs replaced by W + sum_i s_i B_i A_i,
// computed in float64 and stored as F32 (every adapter must have pairs for the same tensors).
std::vector<uint8_t> merge_lora(const GgufFile& base, const std::vector<std::pair<LoraPairs, double>>& adapters);

}  // namespace modu::testing
