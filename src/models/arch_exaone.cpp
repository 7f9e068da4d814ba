// EXAONE 3.0 / 3.5 (LG AI Research): Llama's layer (pre RMS norms, SwiGLU, GQA) with the HF
// half-split rotary layout kept in GGUF (NeoX pairing; llama3 rope scaling as rope_freqs.weight).
#include "modu/models/config.h"

namespace {
const bool kRegistered =
    modu::register_arch({.name = "exaone", .rope_type = modu::RopeType::kNeox, .allows_qkv_bias = false});
}
