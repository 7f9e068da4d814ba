// Llama family (Llama 2, 3, 3.1, 3.2 and models converted as "llama"): adjacent-pair rope.
#include "modu/models/config.h"

namespace {
const bool kRegistered = modu::register_arch({.name = "llama", .rope_type = modu::RopeType::kNorm});
}
