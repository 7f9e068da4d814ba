// Model: a decoder-only transformer loaded from GGUF (weights stay in the memory map), its KV
// cache, and the batched forward pass shared by every Llama-like architecture.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "modu/core/status.h"
#include "modu/core/threadpool.h"
#include "modu/gguf/gguf.h"
#include "modu/kernels/dtype.h"
#include "modu/models/config.h"

namespace modu {

// A weight matrix viewed in place: `rows` rows of `cols` elements in `dtype`.
struct Weight {
  const GgufTensor* tensor = nullptr;
  DType dtype = DType::F32;
  int64_t cols = 0;  // input dimension (contiguous)
  int64_t rows = 0;  // output dimension
  const uint8_t* data = nullptr;
  size_t row_bytes = 0;
  explicit operator bool() const { return data != nullptr; }
};

struct LayerWeights {
  Weight attn_norm;            // [n_embd]
  Weight wq, wk, wv, wo;       // [n_head*head_dim, n_embd], [n_kv*head_dim, n_embd] x2, [n_embd, n_head*head_dim]
  Weight bq, bk, bv;           // optional biases
  Weight q_norm, k_norm;       // optional per-head RMS norm weights [head_dim]
  Weight ffn_norm;             // [n_embd]
  Weight w_gate, w_up, w_down; // [n_ff, n_embd] x2, [n_embd, n_ff]; absent in MoE layers
  // Mixture of experts: router and per-expert views into the 3-D ffn_*_exps tensors.
  Weight moe_router;                                // ffn_gate_inp [n_expert, n_embd]
  std::vector<Weight> exp_gate, exp_up, exp_down;   // n_expert x [n_ff_exp, n_embd], [n_embd, n_ff_exp]
  Weight sh_gate, sh_up, sh_down;                   // optional shared expert [n_ff_shexp, n_embd] x2, [n_embd, n_ff_shexp]
  Weight sh_router;                                 // optional ffn_gate_inp_shexp [n_embd]: sigmoid gate
};

struct ModelWeights {
  Weight tok_embd;     // [n_vocab, n_embd]
  Weight output_norm;  // [n_embd]
  Weight output;       // [n_vocab, n_embd]; the embedding itself when tied
  bool tied_output = false;
  std::vector<float> rope_freq_factors;  // from rope_freqs.weight, empty if absent
  std::vector<LayerWeights> layers;
};

enum class KvType { kF16, kF32 };

// KV cache: for each layer, n_seq independent sequences of up to n_ctx positions each.
// Allocated once; a sequence's entries are valid for positions [0, seq_len(seq)).
class KvCache {
 public:
  KvCache(const ModelConfig& cfg, int n_seq, int64_t n_ctx, KvType type);
  int n_seq() const { return n_seq_; }
  int64_t n_ctx() const { return n_ctx_; }
  KvType type() const { return type_; }
  size_t bytes() const { return k_.size() + v_.size(); }
  int64_t seq_len(int seq) const { return len_[seq]; }
  // Forgets positions >= n of `seq` (0 clears it).
  void truncate(int seq, int64_t n);
  // Copies the first n positions of `src` into `dst` (prefix reuse).
  void copy_prefix(int src, int dst, int64_t n);

  // Row of n_head_kv * head_dim elements for (layer, seq, pos).
  uint8_t* k_row(int64_t layer, int seq, int64_t pos) { return k_.data() + offset(layer, seq, pos); }
  uint8_t* v_row(int64_t layer, int seq, int64_t pos) { return v_.data() + offset(layer, seq, pos); }
  size_t row_bytes() const { return row_bytes_; }
  void set_len(int seq, int64_t n) { len_[seq] = n; }

 private:
  size_t offset(int64_t layer, int seq, int64_t pos) const {
    return ((size_t)(layer * n_seq_ + seq) * (size_t)n_ctx_ + (size_t)pos) * row_bytes_;
  }
  int n_seq_;
  int64_t n_ctx_;
  int64_t n_layer_;
  KvType type_;
  size_t row_bytes_;
  std::vector<uint8_t> k_, v_;
  std::vector<int64_t> len_;
};

// One token of a batch: which sequence it belongs to, at which position, and whether its logits
// are wanted. Tokens of one sequence must appear in increasing position order, and a sequence's
// positions must continue from its current cache length.
struct BatchToken {
  int32_t token;
  int64_t pos;
  int seq;
  bool want_logits;
};

class Model {
 public:
  // Opens a GGUF file and maps its weights (no copy).
  static Result<std::unique_ptr<Model>> load(const std::string& path);
  // Builds from an already-open file (takes ownership).
  static Result<std::unique_ptr<Model>> from_gguf(GgufFile file);

  const ModelConfig& config() const { return cfg_; }
  const GgufFile& gguf() const { return file_; }
  const ModelWeights& weights() const { return w_; }
  int64_t n_params() const;
  size_t weight_bytes() const;

  // Runs the batch through the model, writing K/V into `kv` and the logits of every token with
  // want_logits into `logits` ([n_wanted, n_vocab], in batch order). Validates the batch.
  Status forward(const std::vector<BatchToken>& batch, KvCache& kv, ThreadPool& pool,
                 std::vector<float>& logits) const;

  // Final hidden states (after output norm) instead of logits, for embeddings: [n_wanted, n_embd].
  Status forward_hidden(const std::vector<BatchToken>& batch, KvCache& kv, ThreadPool& pool,
                        std::vector<float>& hidden) const;

 private:
  Model() = default;
  Status run(const std::vector<BatchToken>& batch, KvCache& kv, ThreadPool& pool, std::vector<float>& out,
             bool want_hidden) const;
  GgufFile file_;
  ModelConfig cfg_;
  ModelWeights w_;
  std::vector<float> rope_freqs_;  // [n_rot / 2]
  std::vector<std::vector<float>> owned_;  // F32 copies of small non-F32 vectors (norms, biases)
};

}  // namespace modu
