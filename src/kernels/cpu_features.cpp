// CPU feature detection: CPUID for instruction support plus XGETBV(XCR0) for OS-enabled register state.
// A CPU can report AVX-512 while the OS does not save ZMM state (e.g. some VMs); using it would then
// corrupt registers across context switches, so both checks are required for each level.
#include "modu/kernels/dispatch.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define MODU_X86 1
#endif

namespace modu {

namespace {

struct Features {
  bool avx2 = false;     // AVX + AVX2 + FMA + F16C with YMM state enabled
  bool avx512 = false;   // AVX512 F/BW/VL with ZMM + opmask state enabled (and avx2)
  bool vnni = false;     // AVX512_VNNI (and avx512)
};

#ifdef MODU_X86
// XGETBV via inline asm so this file needs no -mxsave.
uint64_t read_xcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return ((uint64_t)edx << 32) | eax;
}
#endif

Features detect() {
  Features f;
#ifdef MODU_X86
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28), f16c = c & (1u << 29);
  if (!osxsave || !avx) return f;
  const uint64_t xcr0 = read_xcr0();
  const bool ymm_state = (xcr0 & 0x6) == 0x6;      // SSE + AVX state
  const bool zmm_state = (xcr0 & 0xE0) == 0xE0;    // opmask + ZMM_Hi256 + Hi16_ZMM
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  const bool avx2 = b & (1u << 5);
  const bool avx512f = b & (1u << 16), avx512bw = b & (1u << 30), avx512vl = b & (1u << 31);
  const bool vnni = c & (1u << 11);
  f.avx2 = ymm_state && avx2 && fma && f16c;
  f.avx512 = f.avx2 && zmm_state && avx512f && avx512bw && avx512vl;
  f.vnni = f.avx512 && vnni;
#endif
  return f;
}

const Features& features() {
  static const Features f = detect();
  return f;
}

}  // namespace

bool isa_supported(Isa isa) {
  const Features& f = features();
  switch (isa) {
    case Isa::kScalar: return true;
    case Isa::kAvx2: return f.avx2;
    case Isa::kAvx512: return f.avx512;
    case Isa::kAvx512Vnni: return f.vnni;
  }
  return false;
}

Isa detect_isa() {
  for (Isa isa : {Isa::kAvx512Vnni, Isa::kAvx512, Isa::kAvx2})
    if (isa_supported(isa)) return isa;
  return Isa::kScalar;
}

}  // namespace modu
