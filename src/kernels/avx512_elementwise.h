// AVX-512 element-wise kernels of the decode path's serial steps: SwiGLU, RMS norm and F16 rows
// (the KV cache). Included by avx512.cpp and avx512vnni.cpp after avx512_attention.h (exp_neg512).
//
// Performance reasoning. Between two decode matmuls the calling thread runs these alone while the
// other threads can only prefetch, so their time is taken from the memory stream: on bench-1b
// the SwiGLU of one layer (8192 elements) took ~6 us with the AVX2 form and its divide, the
// norms ~2.5 us each (scalar double sums). Sixteen lanes per step halve the instructions; SwiGLU
// keeps the exact divide (the reference's sigmoid to ~1 ulp), which at 16 lanes per divide is no
// longer the bound. Every result equals the reference's as the AVX2 forms do (avx2_gemm.cpp).
#pragma once

#include <cmath>

#include "modu/core/fp16.h"

namespace {

// silu(g) * u, as the AVX2 swiglu: e = exp(-|g|) <= 1, sigmoid = 1 / (1 + e) or e / (1 + e).
void swiglu512(float* gate, const float* up, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 g = _mm512_loadu_ps(gate + i);
    const __m512 e = exp_neg512(_mm512_castsi512_ps(
        _mm512_or_si512(_mm512_castps_si512(g), _mm512_set1_epi32(INT32_MIN))));  // exp(-|g|)
    const __mmask16 neg = _mm512_cmplt_epi32_mask(_mm512_castps_si512(g), _mm512_setzero_si512());  // sign bit set
    const __m512 num = _mm512_mask_blend_ps(neg, one, e);
    const __m512 s = _mm512_div_ps(num, _mm512_add_ps(one, e));
    _mm512_storeu_ps(gate + i, _mm512_mul_ps(_mm512_mul_ps(g, s), _mm512_loadu_ps(up + i)));
  }
  if (i < n) modu::ref::swiglu(gate + i, up + i, n - i);
}

void rms_norm512(const float* x, const float* w, int64_t d, float eps, float* out) {
  __m512d s0 = _mm512_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 32 <= d; i += 32) {
    const __m512d a = _mm512_cvtps_pd(_mm256_loadu_ps(x + i)), b = _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8));
    const __m512d c = _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 16)), e = _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 24));
    s0 = _mm512_fmadd_pd(a, a, s0);
    s1 = _mm512_fmadd_pd(b, b, s1);
    s2 = _mm512_fmadd_pd(c, c, s2);
    s3 = _mm512_fmadd_pd(e, e, s3);
  }
  double ss = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(s0, s1), _mm512_add_pd(s2, s3)));
  for (int64_t j = i; j < d; ++j) ss += (double)x[j] * x[j];
  const float scale = (float)(1.0 / std::sqrt(ss / (double)d + (double)eps));
  const __m512 vs = _mm512_set1_ps(scale);
  for (i = 0; i + 16 <= d; i += 16)
    _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), vs), _mm512_loadu_ps(w + i)));
  for (; i < d; ++i) out[i] = x[i] * scale * w[i];
}

void f32_to_f16_row512(const float* src, void* dst, int64_t n) {
  uint16_t* y = static_cast<uint16_t*>(dst);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i),
                        _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  for (; i < n; ++i) y[i] = modu::fp32_to_fp16(src[i]);
}

inline void fill_elementwise512(modu::KernelTable* t) {
  t->swiglu = swiglu512;
  t->rms_norm = rms_norm512;
  t->quantize_row[(int)modu::DType::F16] = f32_to_f16_row512;
}

}  // namespace
