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

namespace modu::testing {

struct MmprojSpec {
  std::string projector = "mlp";  // mlp | gemma3 | idefics3
  int64_t image_size = 32, patch_size = 8, n_embd = 32, n_ff = 48, n_layer = 2, n_head = 4;
  int64_t n_embd_text = 64, mlp_hidden = 40;
  int scale_factor = 2;           // gemma3 pooling / idefics3 pixel shuffle
  float eps = 1e-6f;
  bool use_gelu = false;          // clip.use_gelu (tanh GELU); otherwise quick GELU
  bool legacy_ffn_names = false;  // fc1 written as ffn_down and fc2 as ffn_up (old converters)
  int64_t feature_layer = 0;      // > 0: write clip.vision.feature_layer = [k] and one extra block
  DType weight_type = DType::F32; // 2-D matrices (patch embedding: F16 unless this is F32)
  uint64_t seed = 7;
};

std::vector<uint8_t> make_random_mmproj(const MmprojSpec& spec);

// Float64 image embeddings [n_tokens * n_embd_text] of planar pixels [3, h, w].
std::vector<double> reference_image_embeddings(const GgufFile& f, const MmprojSpec& spec,
                                               const std::vector<float>& chw, int w, int h);

}  // namespace modu::testing
