// Test support for the vision encoders: random multimodal projector files written with modu's GGUF
// writer in llama.cpp's mmproj layout, and an independent float64 implementation of each family's
// encoder and projector (straight loops from the model definitions; only the scalar dequantize
// reference is shared with modu, to read weights back).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "modu/gguf/gguf.h"
#include "modu/kernels/dtype.h"
#include "modu/vision/random_mmproj.h"

namespace modu::testing {

using vision::MmprojSpec;
using vision::make_random_mmproj;



// Float64 image embeddings [n_tokens * n_embd_text] of planar pixels [3, h, w].
std::vector<double> reference_image_embeddings(const GgufFile& f, const MmprojSpec& spec,
                                               const std::vector<float>& chw, int w, int h);

}  // namespace modu::testing
