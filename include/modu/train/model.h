// Training-side Llama decoder: parameter layout, float32/float64 forward + explicit backward
// (RMSNorm, adjacent-pair RoPE, GQA causal attention, SwiGLU, cross-entropy), and GGUF export.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "modu/core/status.h"
#include "modu/core/threadpool.h"

namespace modu {
class GgufWriter;
}

namespace modu::train {

struct ModelDims {
  int64_t n_vocab = 256, n_embd = 64, n_layer = 2, n_head = 4, n_head_kv = 2, head_dim = 16, n_ff = 128;
  int64_t n_ctx = 128;  // training / maximum context
  float rope_theta = 10000.0f;
  float rms_eps = 1e-5f;
  int64_t q_dim() const { return n_head * head_dim; }
  int64_t kv_dim() const { return n_head_kv * head_dim; }
  Status validate() const;
};

// One named parameter tensor inside the flat parameter vector. shape[0] is the contiguous
// dimension (GGUF order): a matrix [out, in] row-major has shape {in, out}.
struct ParamTensor {
  std::string name;  // GGUF name, e.g. "blk.0.attn_q.weight"
  std::vector<int64_t> shape;
  size_t offset = 0;
  size_t size = 0;
  bool decay = false;  // weight decay applies (matrices, not norm gains)
};

struct LayerOffsets {
  size_t attn_norm, wq, wk, wv, wo, ffn_norm, w_gate, w_up, w_down;
};

struct Layout {
  size_t tok_embd = 0, output_norm = 0, output = 0;
  std::vector<LayerOffsets> layers;
  std::vector<ParamTensor> tensors;
  size_t total = 0;
};

Layout make_layout(const ModelDims& d);

// GPT-2 style initialization (N(0, 0.02), residual projections scaled by 1/sqrt(2 n_layer),
// norm gains 1), deterministic for a seed.
std::vector<float> init_params(const ModelDims& d, const Layout& L, uint64_t seed);

// Forward pass over `n_seq` sequences of `len` tokens each (tokens [n_seq * len]); returns the mean
// cross-entropy over targets >= 0. When `grads` is non-null the gradient of that mean is written
// to it (overwritten, same layout as params). When `logits` is non-null it receives
// [n_seq * len, n_vocab] logits. Instantiated for float (fast, threaded) and double (checks).
template <class T>
double forward_backward(const ModelDims& d, const Layout& L, const T* params, T* grads, const int32_t* tokens,
                        const int32_t* targets, int64_t n_seq, int64_t len, ThreadPool& pool,
                        std::vector<T>* logits = nullptr);

// Writes the model as a GGUF "llama" (standard tensor names, F32) with `extra` metadata (the
// tokenizer's keys) copied in.
Status add_model_to_gguf(GgufWriter& w, const ModelDims& d, const Layout& L, const float* params,
                         const std::string& name);

}  // namespace modu::train
