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
  bool class_token = false;    // the encoder prepends v.class_embd (CLIP), dropped before projecting
  bool apply_post_ln = true;   // v.post_ln, when present, runs before the projector
  bool bidirectional = false;  // the text model attends over an image's tokens both ways (Gemma 3)
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
  // Text around the image embeddings in the prompt (special tokens), as the family's processor
  // writes them; empty when there is none.
  std::string image_begin, image_end;
};

bool register_projector(const ProjectorFamily& fam);
const ProjectorFamily* find_projector(const std::string& name);
std::vector<std::string> registered_projectors();

}  // namespace modu::vision
