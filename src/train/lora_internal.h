// Internal to the LoRA trainer (lora_model.cpp, lora_moe.cpp): the frozen-base product with an
// optional adapter term, and the mixture-of-experts feed-forward's forward and backward.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "gemm.h"
#include "modu/kernels/dtype.h"
#include "modu/train/lora_model.h"

namespace modu::train::detail {

// One base product y = x W^T (+ s (x A^T) B^T with an adapter) and its backward, W dequantized in
// row blocks as it goes.
template <class T>
struct Linear {
  const LoraSet& s;
  const T* lora;
  T* grad;
  ThreadPool& pool;
  std::unordered_map<std::string, const LoraSlot*> slot_of;
  std::vector<T> blk, blkt, at, bt, tmp;
  std::vector<float> row;

  Linear(const LoraSet& set, const T* l, T* g, ThreadPool& p) : s(set), lora(l), grad(g), pool(p) {
    for (const LoraSlot& sl : s.slots) slot_of[sl.name] = &sl;
  }
  const LoraSlot* slot(const FrozenMatrix& m) const {
    auto it = slot_of.find(m.name);
    return it == slot_of.end() ? nullptr : it->second;
  }
  int64_t block_rows(const FrozenMatrix& m) const {
    return std::max<int64_t>(16, std::min<int64_t>(m.rows, (2 << 20) / (int64_t)sizeof(T) / std::max<int64_t>(1, m.cols)));
  }
  // Rows [r0, r0 + n) of W as T, [n, cols].
  void dequant(const FrozenMatrix& m, int64_t r0, int64_t n, T* dst) {
    const size_t rb = dtype_row_bytes(m.t->dtype, m.cols);
    const auto* tr = dtype_traits(m.t->dtype);
    pool.parallel_for(n, [&](int64_t a, int64_t e) {
      std::vector<float> tmpf;
      for (int64_t r = a; r < e; ++r) {
        const uint8_t* src = m.t->data + (size_t)(m.row0 + r0 + r) * rb;
        if constexpr (std::is_same_v<T, float>) {
          tr->dequantize(src, dst + r * m.cols, m.cols);
        } else {
          tmpf.resize((size_t)m.cols);
          tr->dequantize(src, tmpf.data(), m.cols);
          for (int64_t c = 0; c < m.cols; ++c) dst[r * m.cols + c] = (T)tmpf[c];
        }
      }
    });
  }
  // y [N, rows] = x [N, cols] W^T (+ adapter); u [N, r] keeps x A^T for the backward.
  void fwd(const FrozenMatrix& m, const T* x, int64_t N, T* y, std::vector<T>* u) {
    const int64_t Rb = block_rows(m);
    for (int64_t r0 = 0; r0 < m.rows; r0 += Rb) {
      const int64_t n = std::min(Rb, m.rows - r0);
      blk.resize((size_t)(n * m.cols));
      blkt.resize(blk.size());
      dequant(m, r0, n, blk.data());
      transpose(blk.data(), n, m.cols, blkt.data());
      gemm(N, n, m.cols, x, m.cols, blkt.data(), n, y + r0, m.rows, false, pool);
    }
    const LoraSlot* sl = slot(m);
    if (!sl) return;
    const int64_t r = s.rank;
    const T* A = lora + sl->a_offset;  // [r, cols]
    const T* B = lora + sl->b_offset;  // [rows, r]
    at.resize((size_t)(m.cols * r));
    transpose(A, r, m.cols, at.data());
    u->resize((size_t)(N * r));
    gemm(N, r, m.cols, x, m.cols, at.data(), r, u->data(), r, false, pool);
    tmp.assign(u->begin(), u->end());
    const T sc = (T)s.scale();
    for (T& v : tmp) v *= sc;
    bt.resize((size_t)(r * m.rows));
    transpose(B, m.rows, r, bt.data());
    gemm(N, m.rows, r, tmp.data(), r, bt.data(), m.rows, y, m.rows, true, pool);
  }
  // dx [N, cols] (+)= dy W (+ adapter); the adapter's gradients accumulate into grad.
  void bwd(const FrozenMatrix& m, const T* x, const T* dy, int64_t N, const std::vector<T>* u, T* dx, bool accumulate) {
    const int64_t Rb = block_rows(m);
    for (int64_t r0 = 0; r0 < m.rows; r0 += Rb) {
      const int64_t n = std::min(Rb, m.rows - r0);
      blk.resize((size_t)(n * m.cols));
      dequant(m, r0, n, blk.data());
      gemm(N, m.cols, n, dy + r0, m.rows, blk.data(), m.cols, dx, m.cols, accumulate || r0 > 0, pool);
    }
    const LoraSlot* sl = slot(m);
    if (!sl || !grad) return;
    const int64_t r = s.rank;
    const T sc = (T)s.scale();
    const T* A = lora + sl->a_offset;
    const T* B = lora + sl->b_offset;
    T* dA = grad + sl->a_offset;
    T* dB = grad + sl->b_offset;
    // dB [rows, r] += s dy^T u
    tmp.resize((size_t)(m.rows * N));
    transpose(dy, N, m.rows, tmp.data());
    std::vector<T> us(u->begin(), u->end());
    for (T& v : us) v *= sc;
    gemm(m.rows, r, N, tmp.data(), N, us.data(), r, dB, r, true, pool);
    // du [N, r] = s dy B ; dA [r, cols] += du^T x ; dx += du A
    std::vector<T> du((size_t)(N * r));
    gemm(N, r, m.rows, dy, m.rows, B, r, du.data(), r, false, pool);
    for (T& v : du) v *= sc;
    tmp.resize((size_t)(r * N));
    transpose(du.data(), N, r, tmp.data());
    gemm(r, m.cols, N, tmp.data(), N, x, m.cols, dA, m.cols, true, pool);
    gemm(N, m.cols, r, du.data(), r, A, m.cols, dx, m.cols, true, pool);
  }
};

// A mixture-of-experts feed-forward's saved state: per token the k chosen experts (strict
// maximum of the router logits, lower index first) and their weights, the router
// probabilities, and per expert the tokens routed to it with the expert's activations.
template <class T>
struct MoeActs {
  std::vector<T> probs;                 // [N, n_expert]
  std::vector<int32_t> chosen;          // [N, k]
  std::vector<T> weight;                // [N, k]
  struct Expert {
    std::vector<int32_t> rows;          // (token * k + slot) for each routed token
    std::vector<T> x, g, u, a, y;       // [n, E], [n, F], [n, F], [n, F], [n, E]
  };
  std::vector<Expert> experts;
  std::vector<T> sh_z, sh_g, sh_u, sh_a, sh_y;  // shared expert: gate logit [N], its SwiGLU
};

// out [N, E] = the layer's experts (and shared expert) on h [N, E].
template <class T>
void moe_fwd(const LoraBase& b, const FrozenLayer& L, Linear<T>& lin, const T* h, int64_t N, T* out, MoeActs<T>* acts,
             ThreadPool& pool);
// dh [N, E] (overwritten) from dout [N, E].
template <class T>
void moe_bwd(const LoraBase& b, const FrozenLayer& L, Linear<T>& lin, const T* h, const T* dout, int64_t N, const MoeActs<T>& acts,
             T* dh, ThreadPool& pool);

}  // namespace modu::train::detail
