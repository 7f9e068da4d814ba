// Model: a decoder-only transformer loaded from GGUF (weights stay in the memory map, or are repacked
// for the decode kernels at load), its KV cache, and the batched forward pass of every Llama-like architecture.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "modu/core/huge_buffer.h"
#include "modu/core/status.h"
#include "modu/core/threadpool.h"
#include "modu/gguf/gguf.h"
#include "modu/kernels/dtype.h"
#include "modu/models/config.h"
#include "modu/models/lora.h"

namespace modu {

// A weight matrix viewed in place: `rows` rows of `cols` elements in `dtype`.
struct Weight {
  const GgufTensor* tensor = nullptr;
  DType dtype = DType::F32;
  int64_t cols = 0;  // input dimension (contiguous)
  int64_t rows = 0;  // output dimension
  const uint8_t* data = nullptr;
  size_t row_bytes = 0;
  const LoraDelta* lora = nullptr;  // adapters applied at matmul time (lora.h); null: none
  int64_t stack_index = 0;          // which matrix of a 3-D stack (an expert of ffn_*_exps) this views
  explicit operator bool() const { return data != nullptr; }
};

// Sees the input of every weight matrix product that forward passes run on the installing thread
// make (`modu imatrix`): x [n, w.cols], before the product. Called on that thread, in layer order.
class MatmulObserver {
 public:
  virtual ~MatmulObserver() = default;
  virtual void on_matmul(const Weight& w, const float* x, int64_t n) = 0;
};

// Installs `obs` for forward passes run on the calling thread (nullptr removes it); returns the
// one it replaces. Other threads' passes (a server's other requests) are not observed.
MatmulObserver* set_matmul_observer(MatmulObserver* obs);

struct LayerWeights {
  Weight attn_norm;            // [n_embd]
  Weight wq, wk, wv, wo;       // [n_head*head_dim, n_embd], [n_kv*head_dim, n_embd] x2, [n_embd, n_head*head_dim]
  Weight wqkv;                 // optional fused Q, K, V rows [(n_head + 2 n_kv) * head_dim, n_embd] (Phi-3)
  Weight bq, bk, bv;           // optional biases
  Weight q_norm, k_norm;       // optional per-head RMS norm weights [head_dim]
  Weight post_attn_norm;       // optional [n_embd] (Gemma): RMS norm of the attention output
  Weight ffn_norm;             // [n_embd]
  Weight post_ffw_norm;        // optional [n_embd] (Gemma): RMS norm of the feed-forward output
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
  // Phi-3 LongRoPE: per-pair factors for contexts up to / beyond rope.scaling.original_context_length.
  std::vector<float> rope_factors_short, rope_factors_long;
  std::vector<LayerWeights> layers;
};

// KV cache element type. kQ8_0 stores each head's rows as Q8_0 blocks (34 bytes per 32 values,
// 53% of F16; head_dim must be a multiple of 32: KvCache::check_type) and attention widens a
// block of rows at a time to F32.
enum class KvType { kF16, kF32, kQ8_0 };

// KV cache: n_seq sequences of up to n_ctx positions each, stored in blocks of kBlock positions
// drawn from one pool (paged): a sequence holds only the blocks its positions use, a table maps
// its block i (positions [i kBlock, (i + 1) kBlock)) to a pool block, and sequences share blocks of
// a common prefix (copy_prefix) by reference until one writes into a shared block, which it then
// copies first (copy on write). The pool holds n_blocks blocks (default: every sequence full);
// a sequence's entries are valid for positions [0, seq_len(seq)).
// Sliding-window layers (cfg.is_swa) keep a ring of window + kSwaSlack positions per sequence
// (position p in slot p % ring), outside the pool: the forward pass feeds at most kSwaSlack
// tokens at a time so a batch never overwrites positions its own tokens still attend to.
class KvCache {
 public:
  static constexpr int64_t kSwaSlack = 256;
  // Positions per block: fine enough that many short sequences waste little (a 1B model's block
  // is 4 MiB in F16), long enough that attention reads each block's rows in one kernel call.
  static constexpr int64_t kBlock = 128;
  // n_blocks < 0: n_seq * ceil(n_ctx / kBlock), enough for every sequence to fill its context.
  KvCache(const ModelConfig& cfg, int n_seq, int64_t n_ctx, KvType type, int64_t n_blocks = -1);
  // What bytes() of such a cache will be, without allocating it (to check memory first).
  static size_t bytes_for(const ModelConfig& cfg, int n_seq, int64_t n_ctx, KvType type, int64_t n_blocks = -1);
  // OK when `type` can hold this model's K/V rows (Q8_0 needs head_dim % 32 == 0); else why not.
  static Status check_type(const ModelConfig& cfg, KvType type);
  // Bytes of one pool block (all paged layers, K and V) at this context: a budget / this = blocks.
  static size_t block_bytes(const ModelConfig& cfg, int64_t n_ctx, KvType type);
  int n_seq() const { return n_seq_; }
  int64_t n_ctx() const { return n_ctx_; }
  KvType type() const { return type_; }
  size_t bytes() const { return 2 * total_; }
  int64_t seq_len(int seq) const { return len_[seq]; }
  // Forgets positions >= n of `seq` (0 clears it) and returns the blocks it no longer uses. With
  // sliding-window layers, going back more than kSwaSlack + 1 positions loses the window: the
  // sequence is then cleared (seq_len 0), so callers continue from seq_len().
  void truncate(int seq, int64_t n);
  // Makes `dst` continue from the first n positions of `src` (prefix reuse): whole blocks are
  // shared, the positions of a last partial block are copied into a block of dst's own (when none
  // is free, dst keeps only the whole blocks: check seq_len). Same window rule as truncate.
  void copy_prefix(int src, int dst, int64_t n);
  // Blocks `seq` must still take from the pool to hold positions up to `end`: new blocks, and
  // shared blocks it would write into (copied first).
  int64_t blocks_needed(int seq, int64_t end) const;
  // Takes those blocks so positions [seq_len, end) can be written; an error (nothing changed for
  // the blocks already held) when the pool runs out. Model::run calls it for every batch.
  Status prepare(int seq, int64_t end);
  int64_t n_blocks() const { return n_blocks_; }
  int64_t free_blocks() const { return (int64_t)free_.size(); }
  // Blocks in `seq`'s table, and how many of them only it references.
  int64_t seq_blocks(int seq) const { return (int64_t)table_[seq].size(); }
  int64_t exclusive_blocks(int seq) const;

  // Row of n_head_kv * head_dim elements for (layer, seq, pos); pos must be in a block the
  // sequence holds (positions < seq_len, or prepared).
  uint8_t* k_row(int64_t layer, int seq, int64_t pos) { return k_.data() + offset(layer, seq, pos); }
  uint8_t* v_row(int64_t layer, int seq, int64_t pos) { return v_.data() + offset(layer, seq, pos); }
  // Rows stored per sequence for `layer`: n_ctx, or the ring size of a sliding-window layer.
  int64_t layer_rows(int64_t layer) const { return rows_[layer]; }
  // Rows from position `pos` on that lie row_bytes() apart in memory: to the end of its block, or
  // of the ring in a sliding-window layer.
  int64_t contiguous_rows(int64_t layer, int64_t pos) const {
    return ring_layer(layer) ? rows_[layer] - pos % rows_[layer] : kBlock - pos % kBlock;
  }
  bool has_ring() const { return ring_ > 0; }
  size_t row_bytes() const { return row_bytes_; }
  void set_len(int seq, int64_t n) { len_[seq] = n; }

 private:
  bool ring_layer(int64_t layer) const { return rows_[layer] < n_ctx_; }
  size_t offset(int64_t layer, int seq, int64_t pos) const {
    if (ring_layer(layer))
      return layer_off_[layer] + ((size_t)seq * (size_t)rows_[layer] + (size_t)(pos % rows_[layer])) * row_bytes_;
    return layer_off_[layer] + ((size_t)table_[seq][(size_t)(pos / kBlock)] * kBlock + (size_t)(pos % kBlock)) * row_bytes_;
  }
  void keep_window(int seq, int64_t n);  // the truncate rule for ring layers
  void release_after(int seq);           // drops table entries past seq_len
  int32_t take_block();                  // -1 when the pool is empty
  void copy_block(int32_t from, int32_t to, int64_t rows);  // first `rows` rows of every paged layer
  std::vector<int64_t> rows_;       // per layer
  std::vector<size_t> layer_off_;   // per layer, bytes
  int64_t ring_ = 0;                // ring size of windowed layers (0: none)
  int64_t window_ = 0;
  int n_seq_;
  int64_t n_ctx_;
  int64_t n_layer_;
  KvType type_;
  size_t row_bytes_;
  int64_t n_blocks_ = 0;
  // Huge pages when the OS allows (HugeBuffer): a decoded token walks every layer's K and V rows
  // one head at a time, and with 4 KiB pages a long context touched more pages than the TLB holds.
  HugeBuffer k_, v_;
  size_t total_ = 0;  // bytes of k_ (and of v_) in use
  std::vector<int64_t> len_;
  std::vector<std::vector<int32_t>> table_;  // per sequence: pool block of each kBlock positions
  std::vector<int32_t> refs_;                // per pool block: tables referencing it
  std::vector<int32_t> free_;                // unreferenced pool blocks (a stack)
};

// One token of a batch: which sequence it belongs to, at which position, and whether its logits
// are wanted. Tokens of one sequence must appear in increasing position order, and a sequence's
// positions must continue from its current cache length.
struct BatchToken {
  int32_t token;
  int64_t pos;
  int seq;
  bool want_logits;
  uint32_t lora = 0;  // named adapters (Model::add_named_lora) applied to this token: bit i = adapter i
  // An input embedding [n_embd] used instead of the token's (an image position; `token` is then
  // ignored and may be a placeholder), as it is: no embedding scale. Must outlive forward().
  const float* embd = nullptr;
  // Bidirectional span (Gemma 3 images): when > pos + 1, this token also attends to the positions
  // up to attn_end - 1 of its sequence, which must all be in the same batch.
  int64_t attn_end = 0;
  // Rotary positions when they differ from `pos` (the cache index): M-RoPE's (t, row, column) of
  // an image token, or pos + shift for text after an image (Qwen2-VL); -1: pos. Architectures
  // without M-RoPE rotate by rope_t when it is set.
  int64_t rope_t = -1, rope_h = -1, rope_w = -1;
};

// Input embeddings for the prompt positions [begin, begin + n) (an image): rows [n, n_embd], used
// instead of token embeddings; `bidirectional` spans (Gemma 3) see themselves whole.
struct EmbdSpan {
  int64_t begin = 0;
  int64_t n = 0;
  const float* rows = nullptr;
  bool bidirectional = false;
  // M-RoPE (Qwen2-VL): the span is a grid_h x grid_w grid (row-major); its tokens rotate by (t0,
  // t0 + row, t0 + column) and the text after it continues from t0 + max(grid_h, grid_w).
  bool mrope = false;
  int64_t grid_w = 0, grid_h = 0;
};

// What `spans` (sorted, not overlapping) say about the token at t.pos: inside a span its
// embedding row (n_embd wide) and bidirectional end; at or after an M-RoPE span its rotary
// positions. Used for prompt and generated tokens alike.
void place_in_spans(BatchToken& t, const std::vector<EmbdSpan>& spans, int64_t n_embd);

// While alive, forward passes made on this thread multiply every batch with the decode kernels
// (row dot products) instead of the prefill GEMM, so each token of a small batch gets exactly
// the logits one-token decoding gives it (speculative decoding's verification relies on that).
class DecodeKernelsScope {
 public:
  DecodeKernelsScope();
  ~DecodeKernelsScope();
  DecodeKernelsScope(const DecodeKernelsScope&) = delete;
  DecodeKernelsScope& operator=(const DecodeKernelsScope&) = delete;
  static bool active();

 private:
  bool prev_;
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
  // Weight bytes rewritten at load into the decode kernels' layouts (repack.h; 0 when the kernel
  // level has none or MODU_REPACK=0) and the seconds it took. Those bytes live in anonymous memory
  // instead of the file mapping (their mapped pages are released), so RSS stays about file size.
  size_t repacked_bytes() const { return repacked_bytes_; }
  double repack_seconds() const { return repack_seconds_; }
  // Why load-time repacking was skipped although kernels for it exist (no memory for the
  // repacked copy); empty otherwise.
  const std::string& repack_note() const { return repack_note_; }

  // Attaches a LoRA adapter at user scale `scale` (several may be attached; each adds its term).
  // Every adapter tensor must match a dense matrix of this model (attention, feed-forward, output)
  // in name and shape, and the adapter's architecture must be the model's. Not thread-safe with
  // forward(): attach before serving.
  Status add_lora(std::shared_ptr<const LoraAdapter> adapter, float scale);
  const std::vector<std::pair<std::shared_ptr<const LoraAdapter>, float>>& loras() const { return loras_; }
  const std::vector<int>& lora_slots() const { return lora_slots_; }  // loras()[i]'s named slot, -1: every token
  // A named adapter (multi-LoRA serving): attached like add_lora, but applied only to the batch
  // tokens whose BatchToken::lora has its bit set, so sequences with different adapters (or none)
  // share one forward pass. Returns its bit index; at most kMaxNamedLoras, names unique.
  static constexpr int kMaxNamedLoras = 32;
  // A freed slot (remove_named_lora) is reused first.
  Result<int> add_named_lora(const std::string& name, std::shared_ptr<const LoraAdapter> adapter, float scale);
  // Detaches a named adapter: its terms leave every weight and its slot is free again. Like
  // add_named_lora, not thread-safe with forward(): the server runs both on its engine thread
  // between steps, and makes sure no request still selects the slot.
  Status remove_named_lora(const std::string& name);
  // Slot-indexed names; "" marks a free slot.
  const std::vector<std::string>& named_loras() const { return lora_names_; }
  int named_lora_index(const std::string& name) const;  // -1: none

  // Runs the batch through the model, writing K/V into `kv` and the logits of every token with
  // want_logits into `logits` ([n_wanted, n_vocab], in batch order). Validates the batch.
  Status forward(const std::vector<BatchToken>& batch, KvCache& kv, ThreadPool& pool,
                 std::vector<float>& logits) const;

  // Final hidden states (after output norm) instead of logits, for embeddings: [n_wanted, n_embd].
  Status forward_hidden(const std::vector<BatchToken>& batch, KvCache& kv, ThreadPool& pool,
                        std::vector<float>& hidden) const;

 private:
  Model() = default;
  void repack_weights();
  Status run(const std::vector<BatchToken>& batch, KvCache& kv, ThreadPool& pool, std::vector<float>& out,
             bool want_hidden) const;
  GgufFile file_;
  ModelConfig cfg_;
  ModelWeights w_;
  std::vector<float> rope_freqs_;  // [n_rot / 2]
  std::vector<float> rope_freqs_swa_;  // [n_rot / 2] for sliding-window layers; empty: rope_freqs_
  std::vector<float> rope_freqs_long_;  // [n_rot / 2] LongRoPE when the cache exceeds the original context
  std::vector<std::vector<float>> owned_;  // F32 copies of small non-F32 vectors (norms, biases)
  HugeBuffer repacked_;  // every repacked matrix, each 64-byte aligned
  size_t repacked_bytes_ = 0;
  double repack_seconds_ = 0;
  std::string repack_note_;
  std::vector<std::pair<std::shared_ptr<const LoraAdapter>, float>> loras_;
  std::vector<int> lora_slots_;  // loras_[i]'s named slot, -1 for add_lora's
  std::vector<std::unique_ptr<LoraDelta>> lora_deltas_;  // what Weight::lora points to
  std::vector<std::string> lora_names_;
  Status attach_lora(std::shared_ptr<const LoraAdapter> adapter, float scale, int slot);
};

}  // namespace modu
