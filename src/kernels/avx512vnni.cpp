// AVX-512 VNNI kernels: the avx512_body.h kernels recompiled with -mavx512vnni, where the int8 dot
// primitive becomes a single VPDPBUSD.
#ifndef __AVX512VNNI__
#error "avx512vnni.cpp must be compiled with -mavx512vnni"
#endif
#include "avx512_body.h"
#include "avx512_attention.h"
#include "avx512_elementwise.h"
#include "avx512_gemm.h"
#include "avx512_gemv.h"
#include "avx512_repack.h"
#include "isa_kernels.h"

namespace modu::kern {
void fill_avx512vnni(KernelTable* t) {
  fill_table(t);
  fill_rows_table(t);
  t->gemm = gemm512<false>;
  t->gemm16 = gemm512<true>;
  t->probe_read = probe_read512;
  t->probe_fma = probe_fma512;
  t->probe_dot = probe_dot512;
  fill_attention512(t);
  fill_elementwise512(t);
  t->gemm_pack[(int)DType::Q8_0] = avx2_pack_q8_0();  // exact with VPDPBUSD (no int16 step)
  t->gemm_pack[(int)DType::Q8_0_R16] = avx2_pack_q8_0_r16();
  fill_repack_table(t);
}
}  // namespace modu::kern
