// Dtypes: one traits-table entry per tensor element format (GGUF/GGML type ids and block layouts).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "modu/core/status.h"

namespace modu {

// Values are the GGML type ids stored in GGUF files; they must never change.
enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  BF16 = 30,
  // modu-internal layouts (never stored in files; see modu/kernels/repack.h): weights repacked at
  // load for the decode kernels, and their activation format. Ids are outside GGML's range.
  Q4_0_R16 = 40,
  Q8_0_R16 = 41,
  Q8_0_A16 = 42,
  Q4_K_R16 = 43,
  Q6_K_R16 = 44,
  Q5_K_R16 = 45,
  Q2_K_R16 = 46,
};

// dequantize(src, dst, n): n elements (a multiple of block_size) from packed blocks to float.
using DequantizeFn = void (*)(const void* src, float* dst, int64_t n);
// quantize(src, dst, n): n floats (a multiple of block_size) to packed blocks.
using QuantizeFn = void (*)(const float* src, void* dst, int64_t n);
// quantize_imatrix(src, dst, n, importance): as quantize, but each element's squared error counts
// in proportion to importance[i] (> 0; n values, the mean squared input activation of that column
// as `modu imatrix` measures it), so the columns that matter most are reproduced best.
using QuantizeImatrixFn = void (*)(const float* src, void* dst, int64_t n, const float* importance);
// vec_dot(n, w, a): dot product of one row `w` of this dtype with one activation row `a`
// stored in `vec_dot_type`; n is a multiple of block_size.
using VecDotFn = float (*)(int64_t n, const void* w, const void* a);

struct DTypeTraits {
  DType type;
  const char* name;        // "f32", "q4_0", "q4_k", ... (lower case, as llama.cpp prints them)
  int64_t block_size;      // elements per block (1 for float types)
  size_t block_bytes;      // bytes per block
  bool is_quantized;
  DequantizeFn dequantize;  // never null
  QuantizeFn quantize;      // null if modu cannot produce this type
  DType vec_dot_type;       // format the activation must be in for vec_dot
  VecDotFn vec_dot;         // scalar reference dot; null for activation-only types (Q8_1, Q8_K)
  bool internal = false;    // a modu-internal layout: not accepted from files, not a quantize target
  QuantizeImatrixFn quantize_imatrix = nullptr;  // importance-weighted quantize; null: quantize ignores importance
};

// Traits for `t`, or nullptr for an id modu does not know.
const DTypeTraits* dtype_traits(DType t);
const DTypeTraits* dtype_traits_from_id(uint32_t id);
// Parses "q4_0", "Q4_0", "f16", ... (file dtypes only); error lists the valid names.
Result<DType> dtype_from_name(std::string_view name);
const char* dtype_name(DType t);
// Bytes for one row of n elements; n must be a multiple of the block size (checked).
size_t dtype_row_bytes(DType t, int64_t n);
// All dtypes that can be stored as model weights (excludes activation-only Q8_1, Q8_K).
const DType* weight_dtypes(size_t* count);

}  // namespace modu
