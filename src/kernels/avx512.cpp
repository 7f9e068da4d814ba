// AVX-512 F/BW/VL kernels (maddubs + madd int8 dots); bodies live in avx512_body.h.
#include "avx512_body.h"
#include "isa_kernels.h"

namespace modu::kern {
void fill_avx512(KernelTable* t) { fill_table(t); }
}  // namespace modu::kern
