// LoRA fine-tuning (`modu tune`) of any text model modu runs (lora_model.h): the base stays frozen
// in its file's dtypes (a quantized base stays quantized: QLoRA), each target matrix gets W +
// (alpha / r) B A, and only A and B are trained, with the same AdamW, schedule, checkpoints and
// loss log as pretraining. Exported as a llama.cpp adapter GGUF.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "modu/core/status.h"
#include "modu/core/threadpool.h"
#include "modu/train/lora_model.h"
#include "modu/train/model.h"
#include "modu/train/trainer.h"

namespace modu::train {

// The base, the adapter's layout and its loss and gradient: lora_model.h.

// The dimensions a tuning checkpoint is stored under (the base's).
ModelDims tune_dims(const LoraBase& base);

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
  std::vector<std::string> targets;  // matrix kinds (make_lora_set); empty: every kind the model has
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
