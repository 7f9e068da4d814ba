// Kernel dispatch: one table of per-dtype kernels, filled once at start-up from CPUID/XCR0
// (or forced with MODU_ISA=scalar|avx2|avx512|avx512vnni for tests and comparisons).
#pragma once

#include <cstddef>
#include <cstdint>

#include "modu/kernels/dtype.h"
#include "modu/kernels/gemm.h"

namespace modu {

enum class Isa : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2, kAvx512Vnni = 3 };

const char* isa_name(Isa isa);
// True when the CPU and OS (XCR0) support the instructions that level uses.
bool isa_supported(Isa isa);
// The best level the machine supports.
Isa detect_isa();

constexpr int kMaxDTypeId = 64;

// Calling conventions for every table entry (all levels agree):
//  * vec_dot[t](n, w, a): `w` is one row of n elements of weight dtype t; `a` is the activation row
//    already converted with quantize_row[dtype_traits(t)->vec_dot_type]:
//      F32/F16/BF16 -> F32 floats;  Q4_0/Q5_0/Q8_0 -> Q8_0;  Q4_1/Q5_1 -> Q8_1;  Q2_K..Q6_K -> Q8_K.
//    n must be a multiple of the dtype's block size (32 or 256; any n >= 1 for float types).
//    Returns the float dot; levels differ only by float summation order (~1e-6 relative).
//  * quantize_row[t](src, dst, n): n floats -> n / block_size blocks (F16: n halves, rounded to
//    nearest even, as fp32_to_fp16; the KV cache rows); output bytes are identical at
//    every level (the SIMD activation quantizers reproduce the scalar rounding exactly). Blocks
//    are independent, so several rows can be converted in one call.
//  * Alignment: only the natural alignment of the row's element/block struct is required (4 bytes
//    for F32 and Q8_K, 2 bytes for everything else: all quant blocks start with an fp16); SIMD
//    kernels use unaligned loads. Rows inside a GGUF tensor (32-byte aligned data, even row sizes)
//    always satisfy this. Buffers must not overlap (src/dst of quantize_row).
//  * All functions are pure and thread-safe; the tables are immutable after first use.

// Decode matrix x vector: y[r] = vec_dot(n, w + r * row_bytes, a) for r in [0, nrows). Same `a`
// conventions as vec_dot; results equal vec_dot's up to float summation order.
using VecDotRowsFn = void (*)(int64_t n, const void* w, size_t row_bytes, int64_t nrows, const void* a, float* y);

struct KernelTable {
  Isa isa;
  // vec_dot[id](n, weight_row, activation_row) for weight dtype `id` (activation in
  // dtype_traits(id)->vec_dot_type). Null where the dtype has no dot.
  VecDotFn vec_dot[kMaxDTypeId];
  // vec_dot_rows[id]: several rows per call, sharing activation loads and scale conversions across
  // a tile of rows (the decode path of ops::matmul). Null where this level has no multi-row kernel
  // for the dtype: callers then loop over vec_dot.
  VecDotRowsFn vec_dot_rows[kMaxDTypeId];
  // quantize_row[id](src, dst, n): float -> dtype `id`, used to convert activations once per row.
  QuantizeFn quantize_row[kMaxDTypeId];
  // Prefill GEMM (gemm.h): gemm_pack[id] packs 16 rows of weight dtype `id` into a panel (null where
  // this level has no GEMM for the dtype: callers then use vec_dot); gemm multiplies panels with
  // GemmAct activations. The scalar level holds the references.
  GemmPackFn gemm_pack[kMaxDTypeId];
  GemmFn gemm;
  // The same for the 16-scale panel format (gemm.h kGemm16BlockBytes): dtypes whose sub-blocks are
  // 16 elements wide. A dtype has a packer in at most one of gemm_pack / gemm16_pack.
  GemmPackFn gemm16_pack[kMaxDTypeId];
  GemmFn gemm16;
  // Float weights (F32, or F16/BF16 converted a block at a time) times float activations (gemm.h).
  GemmF32Fn gemm_f32;
  // Attention for one token and one KV head's group of query heads (gemm.h).
  AttnFn attention;
  // Bidirectional attention of a block of queries of one head (vision encoders; gemm.h).
  AttnBlockFn attention_block;
  // SwiGLU feed-forward activation in place: gate[i] = silu(gate[i]) * up[i], any n >= 0 (gemm.h).
  void (*swiglu)(float* gate, const float* up, int64_t n);
  // GELU forms of the vision encoders in place over any n >= 0 (gemm.h ref::gelu_tanh / gelu_quick).
  void (*gelu_tanh)(float* x, int64_t n);
  void (*gelu_quick)(float* x, int64_t n);
  // RMS normalisation of one row (gemm.h ref::rms_norm); levels differ only by the order of the
  // double sum of squares.
  void (*rms_norm)(const float* x, const float* w, int64_t d, float eps, float* out);
  // Roofline probes (`modu bench --roofline`): probe_read streams `bytes` (64-byte aligned, a
  // multiple of 256) and returns a checksum; probe_fma / probe_dot run `iters` iterations of
  // independent f32 FMAs / int8 dot steps with this level's instructions and return the ops done
  // (2 per multiply-add).
  double (*probe_read)(const void* p, size_t bytes);
  double (*probe_fma)(int64_t iters);
  double (*probe_dot)(int64_t iters);
};

// The table in use: the best supported level, or MODU_ISA if set (an unsupported or unknown
// MODU_ISA falls back to the best level with a warning on stderr).
const KernelTable& kernels();
// The table for one level; nullptr if the machine cannot run it.
const KernelTable* kernels_for(Isa isa);

}  // namespace modu
