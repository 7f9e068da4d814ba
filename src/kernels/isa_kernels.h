// Internal: per-ISA table fillers. Each lives in a translation unit compiled with that ISA's flags and
// overwrites only the entries it has hand-written kernels for (the rest stay as inherited).
#pragma once

#include "modu/kernels/dispatch.h"
#include "modu/kernels/gemm.h"

namespace modu::kern {

void fill_avx2_quants(KernelTable* t);   // avx2_quants.cpp: F32/F16/BF16, Q4_0..Q8_0, Q8_0/Q8_1/Q8_K quantize
void fill_avx2_kquants(KernelTable* t);  // avx2_kquants.cpp: Q4_K, Q5_K, Q6_K
void fill_avx2_gemv(KernelTable* t);     // avx2_gemv.cpp: vec_dot_rows for Q4_0, Q8_0
void fill_avx2_repack(KernelTable* t);   // avx2_repack.cpp: Q4_0_R16, Q2_K/Q4_K/Q5_K/Q6_K_R16 decode, Q8_0_A16 quantize (after quants)
void fill_avx512(KernelTable* t);        // avx512.cpp
void fill_avx512vnni(KernelTable* t);    // avx512vnni.cpp
void fill_avx2_gemm(KernelTable* t);     // avx2_gemm.cpp: GEMM panel packers, AVX2 GEMM, attention
// avx2_attention_block.cpp: the vision encoders' block attention (installed by fill_avx2_gemm).
void attention_block_avx2(const float* q, size_t q_ld, int64_t n_q, const float* kt, const float* v, size_t v_ld,
                          int64_t n_kv, int64_t hd, float scale, float* out, size_t out_ld, float* scratch);
void gemm_f32_avx2(const float* w, size_t ldw, int64_t rows, const float* x, size_t ldx, int64_t n_tok, int64_t k,
                   float* y, size_t ldy);
GemmPackFn avx2_pack_q8_0();             // avx2_gemm.cpp: SIMD Q8_0 packer (installed at the VNNI level)
GemmPackFn avx2_pack_q8_0_r16();         // avx2_gemm.cpp: the same for Q8_0_R16

// Attention kernels (AVX2 and AVX-512) prefetch the K/V rows this many positions ahead: a head's
// rows are one cache row (~1 KiB) apart, a walk the hardware prefetchers follow poorly.
constexpr int64_t kAttnPrefetchPositions = 32;

}  // namespace modu::kern
