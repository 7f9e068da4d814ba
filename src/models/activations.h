// Element-wise pieces of the Gemma-style layers: GeGLU with the tanh GELU approximation and
// logit soft-capping.
#pragma once

#include <cstdint>

namespace modu::act {

// gate[i] = gelu_tanh(gate[i]) * up[i] over n values,
// gelu_tanh(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
void geglu(float* gate, const float* up, int64_t n);

// x[i] = cap * tanh(x[i] / cap) over n values.
void softcap(float* x, int64_t n, float cap);

}  // namespace modu::act
