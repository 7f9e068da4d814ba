// LoRA fine-tuning (`modu tune`) of a model the training layer can express (the Llama layout of
// modu train: modu-tiny and models of the same shape family): the base stays frozen, each target
// matrix gets W + (alpha / r) B A, and only A and B are trained, with the same AdamW, schedule,
// checkpoints and loss log as pretraining. Exported as a llama.cpp adapter GGUF.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "modu/core/status.h"
#include "modu/core/threadpool.h"
#include "modu/train/model.h"
#include "modu/train/trainer.h"

namespace modu::train {

// The base model as the training layer holds it (F32 parameters in its layout).
struct TuneBase {
  ModelDims dims;
  Layout layout;
  std::vector<float> params;
  std::string arch;
};
// Reads a GGUF model (any dtype: dequantized, and kept frozen) whose architecture and shape the
// training layer supports (llama, untied output, no biases, no rope scaling); errors say which
// property does not fit.
Result<TuneBase> load_tune_base(const std::string& path);

// The adapter's parameters: for each target matrix W [rows, cols] (at `w_offset` in the base
// layout) A [rank, cols] at a_offset and B [rows, rank] at b_offset of one flat vector.
struct LoraSlot {
  std::string name;  // GGUF tensor name, e.g. "blk.0.attn_q.weight"
  size_t w_offset = 0;
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
// Targets are matrix kinds ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up",
// "ffn_down"). Initial values as PEFT's: A ~ N(0, 1 / cols), B = 0 (the adapter starts as a no-op).
Result<LoraSet> make_lora_set(const Layout& L, const ModelDims& d, const std::vector<std::string>& targets, int64_t rank,
                              float alpha);
std::vector<float> init_lora(const LoraSet& s, uint64_t seed);

// Mean cross-entropy over targets >= 0 of the base with the adapter merged, and (when grad is
// non-null) its gradient with respect to the adapter parameters: with G = dL/dW' for W' = W +
// s B A, dL/dA = s B^T G and dL/dB = s G A^T. Float for training, double for gradient checks.
template <class T>
double lora_loss_grad(const ModelDims& d, const Layout& L, const std::vector<T>& base, const LoraSet& s, const T* lora,
                      T* grad, const int32_t* tokens, const int32_t* targets, int64_t n_seq, int64_t len, ThreadPool& pool);

// Writes the adapter as llama.cpp's LoRA GGUF (general.type adapter, adapter.lora.alpha,
// <name>.lora_a [cols, r], <name>.lora_b [r, rows], F32).
Status write_lora_gguf(const std::string& path, const std::string& arch, const LoraSet& s, const float* lora);

// Chat data (JSON Lines, one {"messages": [...]} per line) rendered with the base model's chat
// template and tokenized as one stream; `predict[i]` is 1 where token i belongs to an assistant
// turn (its content and end marker), the only tokens the loss counts. Errors name the line.
struct ChatTokens {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> predict;
  int64_t conversations = 0, assistant_tokens = 0;
};
Result<ChatTokens> tokenize_chat(const std::string& model_gguf, const std::string& jsonl_path);

struct TuneConfig {
  std::string base;              // base model GGUF (its tokenizer tokenizes the text)
  std::string train_text;        // UTF-8, documents separated by blank lines; or *.jsonl chat data (tokenize_chat)
  std::string valid_text;        // held-out text or *.jsonl ("" : none)
  std::string out;               // adapter GGUF written at the end
  std::string out_dir;           // checkpoint, loss.csv, loss.svg ("" : OUT.tune)
  std::vector<std::string> targets = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
  int64_t rank = 8;
  float alpha = 16;
  int64_t ctx = 0;               // sequence length (0: the base's n_ctx)
  TrainConfig optim;             // steps, batch, lr, warmup, betas, weight decay (default 0 here), clip, seed, checkpoint_every, log_every
  int64_t eval_every = 0;        // held-out loss every N steps (0: at the end only)
  int64_t accum = 1;             // gradient accumulation: micro-batches of optim.batch per step
};
struct TuneOptions {
  bool resume = false;
  bool progress = true;
  int threads = 0;
};
// The whole run; returns the final held-out loss before and after (NaN without held-out text).
Result<std::pair<double, double>> run_tune(TuneConfig c, const TuneOptions& opt);

}  // namespace modu::train
