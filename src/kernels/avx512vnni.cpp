// AVX-512 VNNI kernels: the avx512_body.h kernels recompiled with -mavx512vnni, where the int8 dot
// primitive becomes a single VPDPBUSD.
#ifndef __AVX512VNNI__
#error "avx512vnni.cpp must be compiled with -mavx512vnni"
#endif
#include "avx512_body.h"
#include "isa_kernels.h"

namespace modu::kern {
void fill_avx512vnni(KernelTable* t) { fill_table(t); }
}  // namespace modu::kern
