// AVX-512 F/BW/VL kernels (maddubs + madd int8 dots); bodies live in avx512_body.h.
#include "avx512_body.h"
#include "avx512_attention.h"
#include "avx512_elementwise.h"
#include "avx512_gemm.h"
#include "avx512_gemv.h"
#include "isa_kernels.h"

namespace modu::kern {
void fill_avx512(KernelTable* t) {
  fill_table(t);
  fill_rows_table(t);
  t->gemm = gemm512<false>;
  t->gemm16 = gemm512<true>;
  t->probe_read = probe_read512;
  t->probe_fma = probe_fma512;
  t->probe_dot = probe_dot512;
  fill_attention512(t);
  fill_elementwise512(t);
}
}  // namespace modu::kern
