// Prefill GEMM and attention kernel interfaces: the packed weight-panel format shared by every ISA
// level, the GEMM activation format, and the scalar references the SIMD kernels are tested against.
#pragma once

#include <cstddef>
#include <cstdint>

#include "modu/kernels/dtype.h"

namespace modu {

// ---------------------------------------------------------------------------------------------
// Packed weight panel: 16 consecutive weight rows, all K columns, as unsigned 8-bit values with
// one float scale and one float offset per (row, 32-element block):
//     w[r][32b + e] = dw[b][r] * u[b][e][r] - mw[b][r]
// Per block (kGemmBlockBytes = 640 bytes, 64-byte aligned when the panel is):
//     u   [8 groups][16 rows][4 bytes]  = 512 bytes   (group g holds elements 4g..4g+3)
//     dw  [16] float, mw [16] float     = 128 bytes
// Row-interleaving at 4-byte granularity is what an int8 dot instruction (VPDPBUSD / PMADDUBSW)
// wants: one load gives 4 elements of 16 rows, and one 4-byte activation broadcast multiplies all
// of them, so the result lanes are already per-row sums (no horizontal reductions anywhere).
// Missing rows (a last panel with < 16 rows) repeat row 0 with dw = mw = 0 (outputs are 0).
constexpr int64_t kGemmPanelRows = 16;
constexpr size_t kGemmBlockBytes = 640;
inline size_t gemm_panel_bytes(int64_t k) { return (size_t)(k / 32) * kGemmBlockBytes; }

// Packs rows [0, nrows) (nrows <= 16) of a weight matrix of dtype t (row stride row_bytes, k columns,
// k % 256 == 0 for K-quants, % 32 otherwise) into one panel.
using GemmPackFn = void (*)(const void* w, size_t row_bytes, int64_t nrows, int64_t k, void* panel);

// GEMM activations: each token row quantized like Q8_0 (32-element blocks, same bytes), stored as
// q[t][k] int8, d[t][k/32] = block scale, s[t][k/32] = d * sum(block q) (for the offsets mw), and
// for the 16-scale panels s16[t][k/16] = d * sum(q) over each half block (null where unused).
struct GemmAct {
  const int8_t* q;
  const float* d;
  const float* s;
  int64_t k;
  const float* s16 = nullptr;
};

// Packed weight panel with a scale and offset per 16 elements (Q2_K, Q3_K, Q6_K and their repacked
// forms, whose sub-blocks are 16 wide; the 32-element format cannot hold two scales a block):
//     w[r][32b + 16h + e] = dw[b][h][r] * u[b][16h + e][r] - mw[b][h][r]
// Per block (kGemm16BlockBytes = 768): u as in the 32-element panel (512 bytes), then dw[2][16]
// floats (half h at 512 + 64 h) and mw[2][16] floats (at 640 + 64 h). u <= 63 (PMADDUBSW-exact).
// The product needs GemmAct::s16. Missing rows as above.
constexpr size_t kGemm16BlockBytes = 768;
inline size_t gemm16_panel_bytes(int64_t k) { return (size_t)(k / 32) * kGemm16BlockBytes; }

// y[t * ldy + 16 p + r] = sum_k w[16 p + r][k] * act[t][k] for panels p < n_panels, rows
// 16 p + r < rows, tokens t < n_tok. Panels are consecutive, gemm_panel_bytes(k) apart, 64-byte
// aligned. Pure and thread-safe; callers split panels across threads.
using GemmFn = void (*)(const void* panels, int64_t n_panels, int64_t rows, const GemmAct& act, int64_t n_tok,
                        float* y, int64_t ldy);

// Converts n_tok rows of Q8_0 blocks (k elements each) into the GemmAct layout (q, d, s buffers
// of n_tok * k, n_tok * k / 32, n_tok * k / 32).
void gemm_act_from_q8_0(const void* q8_0, int64_t n_tok, int64_t k, int8_t* q, float* d, float* s);
// The same, also filling s16 (n_tok * k / 16 floats) for the 16-scale panels.
void gemm_act_from_q8_0(const void* q8_0, int64_t n_tok, int64_t k, int8_t* q, float* d, float* s, float* s16);

// ---------------------------------------------------------------------------------------------
// Attention for the `ng` query heads that share one KV head (GQA), for one token:
//   out[g] = sum_p softmax_p(scale * q[g] . K[p]) V[p],   p < n_pos
// q[g] at q + g * hd (floats), K[p] at k + p * kv_stride bytes (hd elements, F16 if f16 else F32),
// V likewise; out[g] at out + g * hd. scratch holds ng * n_pos floats. Each K and V row is read
// once for all ng heads. Where lse is not null, lse[g] = log(sum_p exp(scale * q[g] . K[p])) (the
// max score plus the log of the shifted sum), so callers can merge the outputs of consecutive
// blocks of positions (online softmax: ops::attention streams long caches in blocks that way).
using AttnFn = void (*)(const float* q, int64_t ng, const void* k, const void* v, size_t kv_stride, int64_t n_pos,
                        int64_t hd, bool f16, float scale, float* out, float* scratch, float* lse);

// Bidirectional attention of a block of n_q queries of one head against all n_kv keys (the vision
// encoders, where every token sees every token):
//   out[i] = sum_p softmax_p(scale * q[i] . K[p]) V[p]
// q[i] at q + i * q_ld floats; K given transposed in blocks of kAttnKeyBlock keys,
// kt[(p / 16) * hd * 16 + d * 16 + p % 16] = K[p][d] (a score tile then needs no horizontal sums
// and reads one contiguous 16 x hd block; the buffer holds whole blocks); V[p] at v + p * v_ld;
// out[i] at out + i * out_ld. F32 throughout. scratch holds attn_block_scratch(n_q, n_kv) floats
// (the reference keeps whole score rows; the SIMD kernels key tiles and running softmax sums).
constexpr int64_t kAttnKeyBlock = 16;
constexpr int64_t attn_block_scratch(int64_t n_q, int64_t n_kv) { return n_q * n_kv + 2 * n_q + 4 * 256; }
using AttnBlockFn = void (*)(const float* q, size_t q_ld, int64_t n_q, const float* kt, const float* v, size_t v_ld,
                             int64_t n_kv, int64_t hd, float scale, float* out, size_t out_ld, float* scratch);

// Float GEMM for F32/F16/BF16 weights converted to F32 a block at a time (prefill, vision
// encoders): y[t * ldy + r] = sum_k w[r * ldw + k] * x[t * ldx + k] for r < rows, t < n_tok.
using GemmF32Fn = void (*)(const float* w, size_t ldw, int64_t rows, const float* x, size_t ldx, int64_t n_tok,
                           int64_t k, float* y, size_t ldy);

namespace ref {
// Scalar references defining the semantics (also the scalar-level table entries).
GemmPackFn gemm_pack(DType t);  // nullptr for dtypes without a panel format
void gemm(const void* panels, int64_t n_panels, int64_t rows, const GemmAct& act, int64_t n_tok, float* y,
          int64_t ldy);
GemmPackFn gemm16_pack(DType t);  // 16-scale panels (Q2_K, Q3_K, Q6_K, Q2_K_R16, Q6_K_R16); else nullptr
void gemm16(const void* panels, int64_t n_panels, int64_t rows, const GemmAct& act, int64_t n_tok, float* y,
            int64_t ldy);
void attention(const float* q, int64_t ng, const void* k, const void* v, size_t kv_stride, int64_t n_pos,
               int64_t hd, bool f16, float scale, float* out, float* scratch, float* lse);
void gemm_f32(const float* w, size_t ldw, int64_t rows, const float* x, size_t ldx, int64_t n_tok, int64_t k, float* y,
              size_t ldy);
void attention_block(const float* q, size_t q_ld, int64_t n_q, const float* kt, const float* v, size_t v_ld,
                     int64_t n_kv, int64_t hd, float scale, float* out, size_t out_ld, float* scratch);
// gate[i] = gate[i] / (1 + exp(-gate[i])) * up[i] (SiLU(gate) x up), in float with std::exp.
void swiglu(float* gate, const float* up, int64_t n);
// x = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) and x = x * sigmoid(1.702 x), in float.
void gelu_tanh(float* x, int64_t n);
void gelu_quick(float* x, int64_t n);
// RMS normalisation of one row of d >= 1 floats: the sum of squares in double, then
// out[i] = (x[i] * s) * w[i] with s = (float)(1 / sqrt(sum / d + eps)). out may equal x.
void rms_norm(const float* x, const float* w, int64_t d, float eps, float* out);
double probe_read(const void* p, size_t bytes);
double probe_fma(int64_t iters);
double probe_dot(int64_t iters);
}  // namespace ref

}  // namespace modu
