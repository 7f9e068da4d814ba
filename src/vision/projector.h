// Projector families: what each multimodal family adds to the shared ViT (its projector tensors,
// preprocessing defaults, token count, text-side markers). Each family registers one of these from
// its own file (proj_*.cpp), as text architectures do; there is no central switch.
#pragma once

#include <string>
#include <vector>

#include "modu/vision/vision_model.h"

namespace modu {
struct Loader;
}

namespace modu::vision {

struct ProjectorFamily {
  std::string name;            // clip.projector_type value
  std::string description;     // for `modu info`
  // The encoder prepends v.class_embd when the file has one (CLIP; a SigLIP tower in the same
  // family, as LLaVA-OneVision's, has none), and it is dropped before projecting.
  bool class_token = false;
  bool apply_post_ln = true;   // v.post_ln, when present, runs before the projector
  bool bidirectional = false;  // the text model attends over an image's tokens both ways (Gemma 3)
  // Positions: a learned table v.position_embd (fixed input size), or 2-D rotary embeddings on
  // Q and K (dynamic resolution, Qwen2-VL: the first half of each head's rotary pairs turns with
  // the patch row, the second with its column).
  bool learned_pos = true;
  bool rope2d = false;
  // The patch (row-major index gy * gw + gx) each encoder token holds, and for window attention
  // the first token of each window (ascending); null: row-major order, no windows.
  void (*layout)(const VisionConfig& cfg, int gw, int gh, std::vector<int32_t>& patch_of_token,
                 std::vector<int64_t>& window_starts) = nullptr;
  // M-RoPE in the text model (Qwen2-VL): image tokens take (t, row, column) positions over the
  // merged grid and the text after an image continues from max(rows, columns).
  bool mrope = false;
  // Family preprocessing defaults; the file's image size, mean and std are applied after.
  void (*defaults)(VisionConfig& cfg) = nullptr;
  // Loads the projector's tensors (mm.*) into w.proj and sets cfg.n_embd_text (and anything else
  // the family reads from the file).
  Status (*load)(Loader& L, const GgufFile& f, VisionConfig& cfg, VitWeights& w,
                 std::vector<std::vector<float>>& owned) = nullptr;
  // Image tokens for an encoder input of width x height pixels.
  int64_t (*n_tokens)(const VisionConfig& cfg, int width, int height) = nullptr;
  // Encoder output x [gh * gw, n_embd] (patches row-major, class token removed) -> out [n_tokens, n_embd_text].
  Status (*project)(const VisionModel& m, std::vector<float>& x, int gw, int gh, ThreadPool& pool,
                    std::vector<float>& out) = nullptr;
  // A whole image -> embeddings and their text segments, for families that cut images into several
  // encoder inputs (LLaVA-NeXT anyres, Idefics3 splitting); null: embed_whole.
  Status (*embed)(const VisionModel& m, const Image& img, ThreadPool& pool, ImageEmbedding& out) = nullptr;
  // Text around the image embeddings in the prompt (special tokens), as the family's processor
  // writes them; empty when there is none.
  std::string image_begin, image_end;
};

// The default path: preprocess to one encoder input, encode, one segment in the family's markers.
Status embed_whole(const VisionModel& m, const Image& img, ThreadPool& pool, ImageEmbedding& out);
// One encoder-sized 8-bit tile -> its embeddings [n, n_embd_text] (normalised with the family's mean / std).
Status encode_tile(const VisionModel& m, const Image& tile, ThreadPool& pool, std::vector<float>& out);

bool register_projector(const ProjectorFamily& fam);
const ProjectorFamily* find_projector(const std::string& name);
std::vector<std::string> registered_projectors();

}  // namespace modu::vision
