// Random-weight multimodal projector files (llama.cpp mmproj layout) for tests, benchmarks and
// `modu init-mmproj`: the vision counterpart of `modu init-model`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "modu/core/status.h"
#include "modu/kernels/dtype.h"

namespace modu::vision {

struct MmprojSpec {
  std::string projector = "mlp";  // mlp | gemma3 | idefics3 | qwen2vl_merger | qwen2.5vl_merger
  int64_t image_size = 32, patch_size = 8, n_embd = 32, n_ff = 48, n_layer = 2, n_head = 4;
  int64_t n_embd_text = 64, mlp_hidden = 40;
  int scale_factor = 2;           // gemma3 pooling / idefics3 pixel shuffle
  int wa_pattern = 2;             // qwen2.5vl: every wa_pattern-th block is global, the rest windowed
  int window_px = 112;            // qwen2.5vl: attention window side in pixels
  float eps = 1e-6f;
  bool use_gelu = false;          // clip.use_gelu (tanh GELU); otherwise quick GELU
  bool legacy_ffn_names = false;  // fc1 written as ffn_down and fc2 as ffn_up (old converters)
  bool class_token = true;        // mlp: CLIP-style class token and pre-norm (false: a SigLIP tower, OneVision)
  // mlp tiling (LLaVA-NeXT): (height, width) canvases, the learned row-end embedding, OneVision's N.
  std::vector<std::pair<int, int>> grid_pinpoints;
  bool image_newline = false;
  int anyres_max = 0;
  int64_t preproc_image_size = 0; // idefics3: the longest edge before splitting into tiles
  int64_t feature_layer = 0;      // > 0: write clip.vision.feature_layer = [k] and one extra block
  DType weight_type = DType::F32; // 2-D matrices (patch embedding: F16 unless this is F32)
  uint64_t seed = 7;
};

// Random weights (normal, scaled by fan-in) in llama.cpp's mmproj layout, serialized; errors
// (a dtype that cannot hold a row) come back as a Status.
Result<std::vector<uint8_t>> write_random_mmproj(const MmprojSpec& spec);
// The same for tests, which treat a failure as a bug in the test.
std::vector<uint8_t> make_random_mmproj(const MmprojSpec& spec);

}  // namespace modu::vision
