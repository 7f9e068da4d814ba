// Scalar reference kernels for the quantized dtypes (bit-compatible with GGML block layouts).
// Every optimized kernel is tested against these.
#pragma once

#include <cstdint>

namespace modu::ref {

#define MODU_DECLARE_QTYPE(t)                                   \
  void dequantize_##t(const void* src, float* dst, int64_t n); \
  void quantize_##t(const float* src, void* dst, int64_t n);

MODU_DECLARE_QTYPE(q4_0)
MODU_DECLARE_QTYPE(q4_1)
MODU_DECLARE_QTYPE(q5_0)
MODU_DECLARE_QTYPE(q5_1)
MODU_DECLARE_QTYPE(q8_0)
MODU_DECLARE_QTYPE(q8_1)
MODU_DECLARE_QTYPE(q2_k)
MODU_DECLARE_QTYPE(q3_k)
MODU_DECLARE_QTYPE(q4_k)
MODU_DECLARE_QTYPE(q5_k)
MODU_DECLARE_QTYPE(q6_k)
MODU_DECLARE_QTYPE(q8_k)
#undef MODU_DECLARE_QTYPE

// Importance-weighted quantizers (QuantizeImatrixFn): the same block layouts, scales chosen to
// minimise sum importance[i] * (x[i] - q[i])^2 instead of the unweighted heuristics.
void quantize_q4_0_imatrix(const float* src, void* dst, int64_t n, const float* imp);
void quantize_q4_1_imatrix(const float* src, void* dst, int64_t n, const float* imp);
void quantize_q5_0_imatrix(const float* src, void* dst, int64_t n, const float* imp);
void quantize_q5_1_imatrix(const float* src, void* dst, int64_t n, const float* imp);
void quantize_q2_k_imatrix(const float* src, void* dst, int64_t n, const float* imp);
void quantize_q3_k_imatrix(const float* src, void* dst, int64_t n, const float* imp);
void quantize_q4_k_imatrix(const float* src, void* dst, int64_t n, const float* imp);
void quantize_q5_k_imatrix(const float* src, void* dst, int64_t n, const float* imp);
void quantize_q6_k_imatrix(const float* src, void* dst, int64_t n, const float* imp);

// The scale searches the K-quant quantizers share (ref_kquants.cpp), also used by the weighted
// 32-element quantizers. make_qx_quants: symmetric, L[i] = l + nmax with x ~ scale * l, l in
// [-nmax, nmax); weights qw (null: by rmse_type). make_qkx2_quants: x ~ scale * L - the_min, L in
// [0, nmax], weighted least squares over nstep + 1 candidate inverse scales.
float make_qx_quants(int n, int nmax, const float* x, int8_t* L, int rmse_type, const float* qw);
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                       uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad);

float vec_dot_q4_0_q8_0(int64_t n, const void* w, const void* a);
float vec_dot_q4_1_q8_1(int64_t n, const void* w, const void* a);
float vec_dot_q5_0_q8_0(int64_t n, const void* w, const void* a);
float vec_dot_q5_1_q8_1(int64_t n, const void* w, const void* a);
float vec_dot_q8_0_q8_0(int64_t n, const void* w, const void* a);
float vec_dot_q2_k_q8_k(int64_t n, const void* w, const void* a);
float vec_dot_q3_k_q8_k(int64_t n, const void* w, const void* a);
float vec_dot_q4_k_q8_k(int64_t n, const void* w, const void* a);
float vec_dot_q5_k_q8_k(int64_t n, const void* w, const void* a);
float vec_dot_q6_k_q8_k(int64_t n, const void* w, const void* a);

}  // namespace modu::ref

// Repacked layouts (modu/kernels/repack.h), references in repack.cpp.
namespace modu::ref {
void dequantize_q4_0_r16(const void* src, float* dst, int64_t n);
void quantize_q4_0_r16(const float* src, void* dst, int64_t n);
void dequantize_q8_0_r16(const void* src, float* dst, int64_t n);
void quantize_q8_0_r16(const float* src, void* dst, int64_t n);
void dequantize_q8_0_a16(const void* src, float* dst, int64_t n);
void quantize_q8_0_a16(const float* src, void* dst, int64_t n);
float vec_dot_q4_0_r16_q8_0_a16(int64_t n, const void* w, const void* a);
float vec_dot_q8_0_r16_q8_0_a16(int64_t n, const void* w, const void* a);
void dequantize_q4_k_r16(const void* src, float* dst, int64_t n);
void quantize_q4_k_r16(const float* src, void* dst, int64_t n);
float vec_dot_q4_k_r16_q8_0_a16(int64_t n, const void* w, const void* a);
void dequantize_q2_k_r16(const void* src, float* dst, int64_t n);
void quantize_q2_k_r16(const float* src, void* dst, int64_t n);
float vec_dot_q2_k_r16_q8_0_a16(int64_t n, const void* w, const void* a);
void dequantize_q5_k_r16(const void* src, float* dst, int64_t n);
void quantize_q5_k_r16(const float* src, void* dst, int64_t n);
float vec_dot_q5_k_r16_q8_0_a16(int64_t n, const void* w, const void* a);
void dequantize_q6_k_r16(const void* src, float* dst, int64_t n);
void quantize_q6_k_r16(const float* src, void* dst, int64_t n);
float vec_dot_q6_k_r16_q8_0_a16(int64_t n, const void* w, const void* a);
// Rearranges 16 * n_groups Q8_0 blocks into Q8_0_A16 groups (used by every level's quantizer).
void q8_0_to_a16(const void* q8_0_blocks, void* dst, int64_t n_groups);
}  // namespace modu::ref
