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

// Float64 embeddings of a tiled image. `views` are the encoder inputs [3, image_size, image_size]
// as the processor makes them: LLaVA-NeXT the global view then the rows x cols grid, Idefics3 the
// grid then the global view. (orig_w, orig_h) is the image's own size (LLaVA-NeXT's unpadding).
std::vector<double> reference_tiled_embeddings(const GgufFile& f, const MmprojSpec& spec,
                                               const std::vector<std::vector<float>>& views, int rows, int cols,
                                               int orig_w, int orig_h);

}  // namespace modu::testing
