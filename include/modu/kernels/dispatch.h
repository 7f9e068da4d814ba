// Kernel dispatch: one table of per-dtype kernels, filled once at start-up from CPUID/XCR0
// (or forced with MODU_ISA=scalar|avx2|avx512|avx512vnni for tests and comparisons).
#pragma once

#include <cstdint>

#include "modu/kernels/dtype.h"

namespace modu {

enum class Isa : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2, kAvx512Vnni = 3 };

const char* isa_name(Isa isa);
// True when the CPU and OS (XCR0) support the instructions that level uses.
bool isa_supported(Isa isa);
// The best level the machine supports.
Isa detect_isa();

constexpr int kMaxDTypeId = 64;

struct KernelTable {
  Isa isa;
  // vec_dot[id](n, weight_row, activation_row) for weight dtype `id` (activation in
  // dtype_traits(id)->vec_dot_type). Null where the dtype has no dot.
  VecDotFn vec_dot[kMaxDTypeId];
  // quantize_row[id](src, dst, n): float -> dtype `id`, used to convert activations once per row.
  QuantizeFn quantize_row[kMaxDTypeId];
};

// The table in use: the best supported level, or MODU_ISA if set (an unsupported or unknown
// MODU_ISA falls back to the best level with a warning on stderr).
const KernelTable& kernels();
// The table for one level; nullptr if the machine cannot run it.
const KernelTable* kernels_for(Isa isa);

}  // namespace modu
