// Mistral: Llama's layer with GQA; GGUF conversions use the same adjacent-pair rope as llama.
#include "modu/models/config.h"

namespace {
const bool kRegistered = modu::register_arch({.name = "mistral", .rope_type = modu::RopeType::kNorm});
}
