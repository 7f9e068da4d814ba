// Tensor operations of the decoder (matmul over any weight dtype, norms, rope, attention), built on
// the dispatched per-dtype kernels. Internal to the models layer.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "modu/core/threadpool.h"
#include "modu/models/config.h"
#include "modu/models/model.h"

namespace modu::ops {

// y[t, r] = dot(W row r, x[t, :]) for t < n.  x: [n, w.cols]  y: [n, w.rows]
// Activations are converted once per token to the weight dtype's vec_dot_type; rows are split
// across threads in blocks so each block of weights is reused for every token while in cache.
// `next`: the matrices of the matmul that follows (in order); when decoding, each thread prefetches
// the head of its share of them while it waits after this one (ThreadPool::prefetch_after_next_run).
void matmul(const Weight& w, const float* x, int64_t n, float* y, ThreadPool& pool,
            const std::vector<const Weight*>& next = {});

// Several matrices applied to the same input (Q/K/V, gate/up): ys[i] = matmul(*ws[i], x). When
// decoding (n == 1) and every matrix has a multi-row kernel for one shared activation format, the
// activation is converted once and all rows form one parallel pass (one barrier instead of one
// per matrix, and longer contiguous weight streams per thread); otherwise it is matmul per matrix.
void matmul_many(const std::vector<const Weight*>& ws, const float* x, int64_t n, const std::vector<float*>& ys,
                 ThreadPool& pool, const std::vector<const Weight*>& next = {});

// SwiGLU input of the feed-forward: gate = SiLU(w_gate x) * (w_up x)  (gate, up: [n, n_ff]; up is
// scratch). When decoding with multi-row kernels for both matrices, every thread takes the same
// rows of both and applies the activation to them while they are in its cache; otherwise
// matmul_many, then swiglu over the whole outputs.
void gate_up_swiglu(const Weight& w_gate, const Weight& w_up, const float* x, int64_t n, float* gate, float* up,
                    ThreadPool& pool, const std::vector<const Weight*>& next = {});
// The `next` hint for the matmul before gate_up_swiglu (the rows each thread starts with).
std::vector<const Weight*> gate_up_next(const Weight& w_gate, const Weight& w_up);

// out[t, :] = x[t, :] / rms(x[t, :]) * weight   (x, out: [n, d]; may alias), per row through the
// dispatched kernel (sum of squares in double)
void rms_norm(const float* x, const float* weight, int64_t n, int64_t d, float eps, float* out);

// Adds bias [d] to each of n rows of x [n, d].
void add_bias(float* x, const float* bias, int64_t n, int64_t d);

// Rotary embedding of `n_heads` heads of size head_dim in place (rope_apply), one token at a time.
struct RopeParams {
  RopeType type;
  int64_t n_rot;
  const float* freqs;  // [n_rot / 2] radians per position
  bool yarn;
  float yarn_freq_scale, yarn_ext_factor, yarn_mscale;
  float yarn_low, yarn_high;  // correction dims
};
RopeParams make_rope_params(const ModelConfig& cfg, const std::vector<float>& freqs);
// The rotation of one position: cs, sn [n_rot / 2] (cos and sin times the YaRN magnitude scale).
// A forward pass computes them once per token and applies them in every layer.
void rope_angles(int64_t pos, const RopeParams& p, float* cs, float* sn);
void rope_apply(float* x, int64_t n_heads, int64_t head_dim, const float* cs, const float* sn, const RopeParams& p);

// Dequantizes row `row` of w into out [w.cols].
void get_row(const Weight& w, int64_t row, float* out);

// Causal attention of n tokens (q, out: [n, n_head * hd]) over their sequences' cached positions
// 0..pos (only the last `window` of them when window > 0), through the dispatched attention
// kernel, one work item per (token, KV head), in blocks of contiguous cache rows (a paged block, a
// ring up to its end); chunks of a long prompt in tiles of queries (set_prefill_tiling).
// softcap > 0 caps scores as cap * tanh(score / cap) (Gemma 2) on a scalar path. Long spans are
// attended in blocks of set_attention_block() positions merged by online softmax (no score buffer
// of the context's size).
void attention(const float* q, int64_t n, const BatchToken* batch, KvCache& kv, int64_t layer, int64_t n_head,
               int64_t n_head_kv, int64_t hd, float scale, float* out, ThreadPool& pool, int64_t window = 0,
               float softcap = 0.0f);

// Positions per attention block (default 512); returns the previous value. Tests lower it to
// check the block merge against the float64 reference on short contexts.
int64_t set_attention_block(int64_t positions);

// Long prefills (chunks of a prompt at a depth of at least `min_prefix` positions) are attended in
// tiles of `tile` consecutive queries of one sequence: all the tile's queries through the attention
// kernel at once over the prefix they share (its rows read once per tile, not once per token), each
// query's own triangle on its own, merged by log-sum-exp. Defaults 32 and 128; returns the
// previous pair. Tests lower both to check tiles against the float64 reference on short contexts.
std::pair<int64_t, int64_t> set_prefill_tiling(int64_t tile, int64_t min_prefix);

// SiLU(gate) * up, elementwise over n values, result in gate.
void swiglu(float* gate, const float* up, int64_t n, ThreadPool& pool);

}  // namespace modu::ops
