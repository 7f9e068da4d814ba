// LoRA training on any text decoder modu runs (dense or mixture of experts): the base is read
// from its GGUF file as stored (F32/F16/BF16 or quantized) and stays frozen in that form; each product with a base matrix
// dequantizes it block by block as it goes, so a quantized base stays quantized in memory
// (QLoRA-style). The forward covers the shared decoder's options: pre/post RMS norms, Q/K/V
// biases, per-head Q/K norms, rotary embedding of either pairing with linear / llama3 scaling or
// frequency factors, YaRN, LongRoPE, M-RoPE on text, partial rotary, GQA, sliding-window layers with their own rope base, layers
// without rope, query scale, attention and final soft caps, SwiGLU or GeGLU, fused QKV and
// gate-up matrices, tied output, embedding / residual / logit multipliers. Trainable: rank-r
// pairs on chosen matrices, y = W x + s B (A x), with an explicit backward.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "modu/core/status.h"
#include "modu/core/threadpool.h"
#include "modu/gguf/gguf.h"
#include "modu/models/config.h"

namespace modu::train {

// One frozen matrix of the base as the file stores it: W [rows (out), cols (in)], any dtype.
struct FrozenMatrix {
  std::string name;  // GGUF tensor name
  const GgufTensor* t = nullptr;
  int64_t rows = 0, cols = 0;
  int64_t row0 = 0;  // first row in the tensor (one expert's slice of a stacked 3-D tensor)
  explicit operator bool() const { return t != nullptr; }
};

struct FrozenLayer {
  // attn_qkv holds [q; k; v] rows when the file fuses them (then q, k, v are empty); ffn_up holds
  // [gate; up] when there is no ffn_gate (Phi-3).
  FrozenMatrix q, k, v, qkv, o, gate, up, down;
  std::vector<float> attn_norm, ffn_norm, post_attn_norm, post_ffn_norm, q_norm, k_norm, bq, bk, bv;
  // Mixture of experts (the model's n_expert > 0) instead of gate / up / down: the router
  // [n_expert, E], the experts' matrices stacked ([n_expert * n_ff_exp, E] for gate and up,
  // [n_expert * E, n_ff_exp] for down), and an optional shared expert with its sigmoid gate.
  FrozenMatrix router, gate_exps, up_exps, down_exps, gate_sh, up_sh, down_sh;
  std::vector<float> sh_gate;
  bool swa = false;   // a sliding-window layer
  bool rope = true;   // applies rotary embedding
};

struct LoraBase {
  GgufFile file;
  ModelConfig cfg;
  FrozenMatrix tok_embd, output;  // output is tok_embd when tied
  std::vector<float> output_norm;
  std::vector<FrozenLayer> layers;
  // Rotary frequency per pair (n_rot / 2) for global and windowed layers, with YaRN's
  // interpolation folded in, and the magnitude both rotate by (YaRN, LongRoPE; else 1).
  std::vector<float> freqs, freqs_swa;
  float rope_mag = 1.0f, rope_mag_swa = 1.0f;
  // Every matrix an adapter may target, in file order of layers.
  std::vector<const FrozenMatrix*> matrices() const;
  // "F16" or the dtypes of the layer matrices with counts, e.g. "Q4_K x 12, Q6_K x 2".
  std::string matrix_dtypes() const;
};

// Opens a model for tuning sequences of `ctx` tokens (LongRoPE models take their long factors when
// ctx exceeds the original context, as the engine does for its cache size). M-RoPE models train
// on text, whose three positions are equal. Mixtures of experts train their attention (and dense)
// matrices; experts and routers stay frozen. Missing tensors are an error naming them.
Result<std::unique_ptr<LoraBase>> load_lora_base(const std::string& path, int64_t ctx = 0);

// The adapter's parameters: for each target matrix W [rows, cols] A [rank, cols] at a_offset and
// B [rows, rank] at b_offset of one flat vector.
struct LoraSlot {
  std::string name;  // GGUF tensor name, e.g. "blk.0.attn_q.weight"
  int64_t rows = 0, cols = 0;
  size_t a_offset = 0, b_offset = 0;
};
struct LoraSet {
  int64_t rank = 8;
  float alpha = 16;
  std::vector<LoraSlot> slots;
  size_t total = 0;
  float scale() const { return alpha / (float)rank; }
};
// Targets are matrix kinds as the file names them ("attn_q", "attn_k", "attn_v", "attn_qkv",
// "attn_output", "ffn_gate", "ffn_up", "ffn_down"); a kind the model lacks is an error naming
// those it has; no targets: every kind it has. Initial values as PEFT's: A ~ N(0, 1 / cols), B = 0 (the adapter starts as a no-op).
Result<LoraSet> make_lora_set(const LoraBase& base, const std::vector<std::string>& targets, int64_t rank, float alpha);
std::vector<float> init_lora(const LoraSet& s, uint64_t seed);

// Mean cross-entropy over targets >= 0 of `n_seq` sequences of `len` tokens (positions 0..len-1
// each) through the base with the adapter, and (when grad is non-null) its gradient with respect
// to the adapter parameters (overwritten, the layout of `lora`). `logits` (when non-null)
// receives [n_seq * len, n_vocab]. Float for tuning, double for gradient checks.
template <class T>
double lora_loss_grad(const LoraBase& base, const LoraSet& s, const T* lora, T* grad, const int32_t* tokens, const int32_t* targets,
                      int64_t n_seq, int64_t len, ThreadPool& pool, std::vector<T>* logits = nullptr);

}  // namespace modu::train
