// Kernel dispatch: builds one KernelTable per ISA level (each level inherits the one below and
// overrides what it has hand kernels for) and picks the table in use once, honoring MODU_ISA.
#include "modu/kernels/dispatch.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "isa_kernels.h"
#include "modu/kernels/gemm.h"

namespace modu {

namespace {

KernelTable make_scalar() {
  KernelTable t{};
  t.isa = Isa::kScalar;
  for (int id = 0; id < kMaxDTypeId; ++id) {
    const DTypeTraits* tr = dtype_traits_from_id((uint32_t)id);
    if (!tr) continue;
    t.vec_dot[id] = tr->vec_dot;
    t.quantize_row[id] = tr->quantize;
    t.gemm_pack[id] = ref::gemm_pack((DType)id);
    t.gemm16_pack[id] = ref::gemm16_pack((DType)id);
  }
  t.gemm = ref::gemm;
  t.gemm16 = ref::gemm16;
  t.gemm_f32 = ref::gemm_f32;
  t.attention = ref::attention;
  t.attention_block = ref::attention_block;
  t.swiglu = ref::swiglu;
  t.gelu_tanh = ref::gelu_tanh;
  t.gelu_quick = ref::gelu_quick;
  t.rms_norm = ref::rms_norm;
  t.probe_read = ref::probe_read;
  t.probe_fma = ref::probe_fma;
  t.probe_dot = ref::probe_dot;
  return t;
}

KernelTable make_table(Isa isa) {
  KernelTable t = make_scalar();
#if defined(__x86_64__)
  if (isa >= Isa::kAvx2) {
    kern::fill_avx2_quants(&t);
    kern::fill_avx2_kquants(&t);
    kern::fill_avx2_gemm(&t);
    kern::fill_avx2_gemv(&t);
    kern::fill_avx2_repack(&t);
  }
  if (isa >= Isa::kAvx512) kern::fill_avx512(&t);
  if (isa >= Isa::kAvx512Vnni) kern::fill_avx512vnni(&t);
#endif
  t.isa = isa;
  return t;
}

template <Isa kIsa>
const KernelTable* table_for() {
  static const KernelTable t = make_table(kIsa);  // built on first use; thread-safe static init
  return &t;
}

const KernelTable& choose() {
  Isa isa = detect_isa();
  if (const char* env = std::getenv("MODU_ISA"); env && *env) {
    bool known = false;
    for (Isa cand : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni}) {
      if (std::strcmp(env, isa_name(cand)) != 0) continue;
      known = true;
      if (isa_supported(cand)) {
        isa = cand;
      } else {
        std::fprintf(stderr, "modu: MODU_ISA=%s is not supported by this CPU/OS; using %s\n", env, isa_name(isa));
      }
    }
    if (!known)
      std::fprintf(stderr, "modu: unknown MODU_ISA=%s (valid: scalar, avx2, avx512, avx512vnni); using %s\n", env,
                   isa_name(isa));
  }
  return *kernels_for(isa);
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    case Isa::kAvx512Vnni: return "avx512vnni";
  }
  return "unknown";
}

const KernelTable* kernels_for(Isa isa) {
  if (!isa_supported(isa)) return nullptr;
  switch (isa) {
    case Isa::kScalar: return table_for<Isa::kScalar>();
    case Isa::kAvx2: return table_for<Isa::kAvx2>();
    case Isa::kAvx512: return table_for<Isa::kAvx512>();
    case Isa::kAvx512Vnni: return table_for<Isa::kAvx512Vnni>();
  }
  return nullptr;
}

const KernelTable& kernels() {
  static const KernelTable& t = choose();  // chosen once; the warning (if any) prints once
  return t;
}

}  // namespace modu
