// VisionModel: a ViT image encoder plus the projector that maps its output into a text model's
// embedding space, loaded from a llama.cpp multimodal projector GGUF ("mmproj": clip.* metadata,
// v.* encoder and mm.* projector tensors). Projector families register themselves (projector.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "modu/core/status.h"
#include "modu/core/threadpool.h"
#include "modu/gguf/gguf.h"
#include "modu/models/model.h"
#include "modu/vision/preprocess.h"

namespace modu::vision {

enum class VitAct { kGeluErf, kGeluTanh, kQuickGelu, kSilu };
const char* vit_act_name(VitAct a);

struct VisionConfig {
  std::string projector;     // clip.projector_type: "mlp", "gemma3", "idefics3", ...
  int64_t image_size = 0;    // square input side in pixels (fixed-resolution families)
  int64_t patch_size = 0;
  int64_t n_embd = 0;        // encoder width
  int64_t n_ff = 0;
  int64_t n_layer = 0;       // encoder blocks that run (the file may hold more; see feature_layer)
  int64_t n_head = 0;
  int64_t head_dim = 0;
  int64_t n_embd_text = 0;   // projector output width: must equal the text model's n_embd
  float eps = 1e-6f;         // LayerNorm epsilon
  VitAct act = VitAct::kGeluErf;
  int scale_factor = 1;      // Idefics3 pixel shuffle factor
  bool class_token = false;  // the encoder prepends v.class_embd (CLIP), dropped before projecting
  int anyres_max = 0;        // LLaVA-OneVision "anyres_max_N": a tiled image's grid shrinks to about N tiles
  bool rms_norm = false;     // encoder norms are RMS norms without bias (Qwen2.5-VL), else LayerNorm
  // Window attention (Qwen2.5-VL): block il attends over the whole image iff (il + 1) % wa_pattern
  // == 0, otherwise within windows of window x window merged tokens; 0: every block is global.
  int wa_pattern = 0;
  int window = 0;
  PreprocessConfig pre;
  int64_t patches_per_side() const { return image_size / patch_size; }
};

// Encoder weights (GGUF names in comments). Matrices are [rows = out, cols = in].
struct VitLayer {
  Weight ln1_w, ln1_b;            // v.blk.N.ln1.{weight,bias} [n_embd]
  Weight q, q_b, k, k_b, v, v_b;  // v.blk.N.attn_{q,k,v}.{weight,bias} [n_embd, n_embd]
  Weight o, o_b;                  // v.blk.N.attn_out.{weight,bias}
  Weight ln2_w, ln2_b;            // v.blk.N.ln2.{weight,bias}
  Weight up, up_b;                // v.blk.N.ffn_up.{weight,bias} [n_ff, n_embd]
  Weight gate, gate_b;            // v.blk.N.ffn_gate.{weight,bias} (optional: act(gate x) * up x)
  Weight down, down_b;            // v.blk.N.ffn_down.{weight,bias} [n_embd, n_ff]
};

struct VitWeights {
  Weight patch;                   // v.patch_embd.weight: conv [n_embd, 3, p, p] as rows of 3 p p
  Weight patch_b;                 // v.patch_embd.bias [n_embd] (optional)
  Weight pos;                     // v.position_embd.weight [n_pos, n_embd]
  Weight cls;                     // v.class_embd [n_embd] (CLIP; optional)
  Weight pre_ln_w, pre_ln_b;      // v.pre_ln (CLIP; optional)
  Weight post_ln_w, post_ln_b;    // v.post_ln (optional)
  std::vector<VitLayer> layers;
  std::vector<Weight> proj;       // the projector's tensors, in the family's own order
};

struct ProjectorFamily;

// How an image sits in the text: the family's text around its embeddings (special tokens, as the
// HF processor writes them) and whether the text model attends over them both ways.
struct ImageMarkers {
  std::string begin, end;  // single-segment images; tiled ones carry their own text (ImageEmbedding)
  bool bidirectional = false;
  bool mrope = false;  // (t, row, column) rotary positions over the merged grid (Qwen2-VL)
};

class VisionModel {
 public:
  static Result<std::unique_ptr<VisionModel>> load(const std::string& path);
  static Result<std::unique_ptr<VisionModel>> from_gguf(GgufFile file);

  const VisionConfig& config() const { return cfg_; }
  const VitWeights& weights() const { return w_; }
  const ProjectorFamily& family() const { return *fam_; }
  ImageMarkers markers() const;
  std::string description() const;  // the family's, for `modu info`
  const GgufFile& gguf() const { return file_; }
  size_t weight_bytes() const;
  int64_t n_params() const;

  // Image tokens the text model receives for an input of this size (after preprocessing).
  int64_t n_tokens(int width, int height) const;
  // Decoded image -> encoder input, as the family's Hugging Face processor computes it.
  Result<Pixels> preprocess(const Image& img) const;
  // Encoder input -> image embeddings [n_tokens, n_embd_text], in the order the text model reads them.
  Status encode(const Pixels& px, ThreadPool& pool, std::vector<float>& out) const;
  // Encoder output before the projector [n_patches (+1 with a class token), n_embd] (tests).
  Status encode_vit(const Pixels& px, ThreadPool& pool, std::vector<float>& out) const;

 private:
  VisionModel() = default;
  GgufFile file_;
  VisionConfig cfg_;
  VitWeights w_;
  const ProjectorFamily* fam_ = nullptr;
  std::vector<std::vector<float>> owned_;
};

}  // namespace modu::vision

namespace modu::vision {

// Where a run of image embeddings sits in the text: the family's text before it (special tokens,
// e.g. Idefics3's "<fake_token_around_image><row_1_col_2>") and how many embedding rows follow.
struct ImageSegment {
  std::string text;
  int64_t n_tokens = 0;
  int grid_w = 0, grid_h = 0;  // the rows' grid (row-major), for M-RoPE positions
};

// One image ready for the text model: its embeddings, how they sit in the text (one segment for
// most families; a tiled image has several), and a hash of its pixels (the prefix cache key).
struct ImageEmbedding {
  std::vector<float> embd;  // [n_tokens, n_embd_text], the segments' rows in order
  int64_t n_tokens = 0;
  std::vector<ImageSegment> segments;  // empty: one segment wrapped in the family's markers
  std::string text_after;              // the family's text after the last segment
  uint64_t hash = 0;
  int n_encoder_runs = 1;              // encoder passes (tiles) it took
  double encode_seconds = 0;
};

// FNV-1a over the size and the RGB bytes.
uint64_t image_hash(const Image& img);
// preprocess + encode, timed.
Result<ImageEmbedding> embed_image(const VisionModel& m, const Image& img, ThreadPool& pool);
// The projector's output width must be the text model's embedding width.
Status check_compatible(const VisionModel& m, const ModelConfig& text, const std::string& mmproj_name);

}  // namespace modu::vision
