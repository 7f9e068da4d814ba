// The dtype traits table: one entry per GGML type id, pointing at the scalar reference kernels.
#include "modu/kernels/dtype.h"

#include <cctype>
#include <string>

#include "modu/core/fp16.h"
#include "ref_kernels.h"

namespace modu {

namespace {

// Float formats: rows are plain arrays. F16/BF16 weights dot with F32 activations (exact
// products in float, no activation rounding), which keeps float models close to the reference.
void deq_f32(const void* s, float* d, int64_t n) { const float* x = (const float*)s; for (int64_t i = 0; i < n; ++i) d[i] = x[i]; }
void q_f32(const float* s, void* d, int64_t n) { float* y = (float*)d; for (int64_t i = 0; i < n; ++i) y[i] = s[i]; }
void deq_f16(const void* s, float* d, int64_t n) { const uint16_t* x = (const uint16_t*)s; for (int64_t i = 0; i < n; ++i) d[i] = fp16_to_fp32(x[i]); }
void q_f16(const float* s, void* d, int64_t n) { uint16_t* y = (uint16_t*)d; for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(s[i]); }
void deq_bf16(const void* s, float* d, int64_t n) { const uint16_t* x = (const uint16_t*)s; for (int64_t i = 0; i < n; ++i) d[i] = bf16_to_fp32(x[i]); }
void q_bf16(const float* s, void* d, int64_t n) { uint16_t* y = (uint16_t*)d; for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_bf16(s[i]); }
float dot_f32(int64_t n, const void* w, const void* a) {
  const float* x = (const float*)w; const float* y = (const float*)a; double s = 0;
  for (int64_t i = 0; i < n; ++i) s += (double)x[i] * y[i];
  return (float)s;
}
float dot_f16(int64_t n, const void* w, const void* a) {
  const uint16_t* x = (const uint16_t*)w; const float* y = (const float*)a; double s = 0;
  for (int64_t i = 0; i < n; ++i) s += (double)fp16_to_fp32(x[i]) * y[i];
  return (float)s;
}
float dot_bf16(int64_t n, const void* w, const void* a) {
  const uint16_t* x = (const uint16_t*)w; const float* y = (const float*)a; double s = 0;
  for (int64_t i = 0; i < n; ++i) s += (double)bf16_to_fp32(x[i]) * y[i];
  return (float)s;
}

const DTypeTraits kTraits[] = {
  {DType::F32, "f32", 1, 4, false, deq_f32, q_f32, DType::F32, dot_f32},
  {DType::F16, "f16", 1, 2, false, deq_f16, q_f16, DType::F32, dot_f16},
  {DType::BF16, "bf16", 1, 2, false, deq_bf16, q_bf16, DType::F32, dot_bf16},
  {DType::Q4_0, "q4_0", 32, 18, true, ref::dequantize_q4_0, ref::quantize_q4_0, DType::Q8_0, ref::vec_dot_q4_0_q8_0, false, ref::quantize_q4_0_imatrix},
  {DType::Q4_1, "q4_1", 32, 20, true, ref::dequantize_q4_1, ref::quantize_q4_1, DType::Q8_1, ref::vec_dot_q4_1_q8_1, false, ref::quantize_q4_1_imatrix},
  {DType::Q5_0, "q5_0", 32, 22, true, ref::dequantize_q5_0, ref::quantize_q5_0, DType::Q8_0, ref::vec_dot_q5_0_q8_0, false, ref::quantize_q5_0_imatrix},
  {DType::Q5_1, "q5_1", 32, 24, true, ref::dequantize_q5_1, ref::quantize_q5_1, DType::Q8_1, ref::vec_dot_q5_1_q8_1, false, ref::quantize_q5_1_imatrix},
  {DType::Q8_0, "q8_0", 32, 34, true, ref::dequantize_q8_0, ref::quantize_q8_0, DType::Q8_0, ref::vec_dot_q8_0_q8_0},
  {DType::Q8_1, "q8_1", 32, 36, true, ref::dequantize_q8_1, ref::quantize_q8_1, DType::Q8_1, nullptr},
  {DType::Q2_K, "q2_k", 256, 84, true, ref::dequantize_q2_k, ref::quantize_q2_k, DType::Q8_K, ref::vec_dot_q2_k_q8_k, false, ref::quantize_q2_k_imatrix},
  {DType::Q3_K, "q3_k", 256, 110, true, ref::dequantize_q3_k, ref::quantize_q3_k, DType::Q8_K, ref::vec_dot_q3_k_q8_k, false, ref::quantize_q3_k_imatrix},
  {DType::Q4_K, "q4_k", 256, 144, true, ref::dequantize_q4_k, ref::quantize_q4_k, DType::Q8_K, ref::vec_dot_q4_k_q8_k, false, ref::quantize_q4_k_imatrix},
  {DType::Q5_K, "q5_k", 256, 176, true, ref::dequantize_q5_k, ref::quantize_q5_k, DType::Q8_K, ref::vec_dot_q5_k_q8_k, false, ref::quantize_q5_k_imatrix},
  {DType::Q6_K, "q6_k", 256, 210, true, ref::dequantize_q6_k, ref::quantize_q6_k, DType::Q8_K, ref::vec_dot_q6_k_q8_k, false, ref::quantize_q6_k_imatrix},
  {DType::Q8_K, "q8_k", 256, 292, true, ref::dequantize_q8_k, ref::quantize_q8_k, DType::Q8_K, nullptr},
  // Internal repacked layouts (modu/kernels/repack.h): 16 blocks per 512-element group.
  {DType::Q4_0_R16, "q4_0_r16", 512, 288, true, ref::dequantize_q4_0_r16, ref::quantize_q4_0_r16, DType::Q8_0_A16,
   ref::vec_dot_q4_0_r16_q8_0_a16, true},
  {DType::Q8_0_R16, "q8_0_r16", 512, 544, true, ref::dequantize_q8_0_r16, ref::quantize_q8_0_r16, DType::Q8_0_A16,
   ref::vec_dot_q8_0_r16_q8_0_a16, true},
  {DType::Q4_K_R16, "q4_k_r16", 512, 288, true, ref::dequantize_q4_k_r16, ref::quantize_q4_k_r16, DType::Q8_0_A16,
   ref::vec_dot_q4_k_r16_q8_0_a16, true},
  {DType::Q2_K_R16, "q2_k_r16", 512, 168, true, ref::dequantize_q2_k_r16, ref::quantize_q2_k_r16, DType::Q8_0_A16,
   ref::vec_dot_q2_k_r16_q8_0_a16, true},
  {DType::Q5_K_R16, "q5_k_r16", 512, 352, true, ref::dequantize_q5_k_r16, ref::quantize_q5_k_r16, DType::Q8_0_A16,
   ref::vec_dot_q5_k_r16_q8_0_a16, true},
  {DType::Q6_K_R16, "q6_k_r16", 512, 420, true, ref::dequantize_q6_k_r16, ref::quantize_q6_k_r16, DType::Q8_0_A16,
   ref::vec_dot_q6_k_r16_q8_0_a16, true},
  {DType::Q8_0_A16, "q8_0_a16", 512, 640, true, ref::dequantize_q8_0_a16, ref::quantize_q8_0_a16, DType::Q8_0_A16,
   nullptr, true},
};

const DType kWeightTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q4_0, DType::Q4_1, DType::Q5_0,
                              DType::Q5_1, DType::Q8_0, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K,
                              DType::Q6_K};

}  // namespace

const DTypeTraits* dtype_traits(DType t) { return dtype_traits_from_id(static_cast<uint32_t>(t)); }

const DTypeTraits* dtype_traits_from_id(uint32_t id) {
  for (const auto& tr : kTraits)
    if (static_cast<uint32_t>(tr.type) == id) return &tr;
  return nullptr;
}

const char* dtype_name(DType t) {
  const DTypeTraits* tr = dtype_traits(t);
  return tr ? tr->name : "unknown";
}

Result<DType> dtype_from_name(std::string_view name) {
  std::string lower;
  for (char c : name) lower += (char)std::tolower((unsigned char)c);
  std::string valid;
  for (const auto& tr : kTraits) {
    if (tr.internal) continue;
    if (lower == tr.name) return tr.type;
    valid += valid.empty() ? "" : ", ";
    valid += tr.name;
  }
  return invalid_argument("unknown dtype '" + std::string(name) + "'; valid: " + valid);
}

size_t dtype_row_bytes(DType t, int64_t n) {
  const DTypeTraits* tr = dtype_traits(t);
  MODU_CHECK(tr != nullptr);
  MODU_CHECK_MSG(n % tr->block_size == 0, std::string("row length not a multiple of block size for ") + tr->name);
  return static_cast<size_t>(n / tr->block_size) * tr->block_bytes;
}

const DType* weight_dtypes(size_t* count) {
  *count = sizeof(kWeightTypes) / sizeof(kWeightTypes[0]);
  return kWeightTypes;
}

}  // namespace modu
