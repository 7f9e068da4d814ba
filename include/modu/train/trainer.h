// Pretraining loop: config, deterministic batches (derived from seed + step), AdamW with warm-up
// and cosine decay, gradient clipping, atomic checkpoints with exact resume, loss CSV/SVG, export.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "modu/core/status.h"
#include "modu/core/threadpool.h"
#include "modu/train/model.h"

namespace modu::train {

struct TrainConfig {
  std::string name = "modu-tiny";
  ModelDims model;             // n_vocab 0 = take it from the tokenizer
  std::string tokenizer;       // GGUF holding tokenizer.* metadata (from `modu tokenizer train`)
  std::string train_text;      // UTF-8 corpus; documents separated by blank lines
  std::string out_dir;         // checkpoint.bin, loss.csv, loss.svg, model.gguf, train.tokens
  int64_t steps = 1000;
  int64_t batch = 8;           // sequences of model.n_ctx tokens per step
  double lr = 2e-3, min_lr_ratio = 0.1;
  int64_t warmup = 50;
  double weight_decay = 0.1, beta1 = 0.9, beta2 = 0.95, adam_eps = 1e-8, grad_clip = 1.0;
  uint64_t seed = 1;
  int64_t checkpoint_every = 25;
  int64_t log_every = 10;      // lines when stderr is not a terminal
};

// Reads a JSON config (keys as in TrainConfig; "model": {...} for the dimensions). Relative paths
// are kept as written (relative to the working directory).
Result<TrainConfig> parse_train_config(const std::string& json_text);
std::string train_config_json(const TrainConfig& c);

struct TrainState {
  int64_t step = 0;            // steps completed
  double elapsed_s = 0;        // training wall time over all runs
  std::vector<float> params, m, v;
};

double lr_at(const TrainConfig& c, int64_t step);

// Inputs/targets for `step`: batch windows of n_ctx + 1 tokens at offsets hashed from (seed, step, b).
// `predict` (optional, parallel to data): positions whose token is a target; others get -1 (chat
// tuning: loss on the assistant's tokens only).
void sample_batch(const std::vector<int32_t>& data, uint64_t seed, int64_t step, int64_t batch, int64_t len,
                  std::vector<int32_t>& tokens, std::vector<int32_t>& targets, const std::vector<uint8_t>* predict = nullptr);

struct StepStats {
  double loss = 0, grad_norm = 0, lr = 0;
};
// One optimizer step on state (state.step advances by one).
StepStats train_step(const TrainConfig& c, const Layout& L, TrainState& state, const std::vector<int32_t>& data,
                     ThreadPool& pool);

// Checkpoint: dims, step, elapsed time, params and Adam moments, with a checksum. Written to a
// temporary file, fsynced and renamed, so a kill at any moment leaves the old or the new one.
Status save_checkpoint(const std::string& path, const ModelDims& d, const TrainState& s);
// `n_params`: the parameter count the checkpoint must hold (0: the model layout's total; LoRA
// tuning stores its adapter parameters under the base model's dimensions).
Result<TrainState> load_checkpoint(const std::string& path, const ModelDims& d, size_t n_params = 0);

// Tokenizes the corpus (BOS before each document) with the tokenizer GGUF.
Result<std::vector<int32_t>> tokenize_corpus(const std::string& tokenizer_gguf, const std::string& text_path);

// Writes the trained model plus the tokenizer GGUF's metadata as one GGUF file.
Status export_model(const TrainConfig& c, const std::vector<float>& params, const std::string& path);

struct RunOptions {
  bool resume = false;          // continue from out_dir/checkpoint.bin if present
  int64_t stop_after = -1;      // stop (after checkpointing) once this many steps are done; -1: config steps
  bool progress = true;
  int threads = 0;
  std::string export_only;      // non-empty: write the checkpoint's model to this GGUF and return
};
// The whole loop; writes model.gguf into out_dir when the final step is done.
Status run_training(TrainConfig c, const RunOptions& opt);

}  // namespace modu::train
