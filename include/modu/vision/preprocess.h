// Image preprocessing as the Hugging Face image processors do it: Pillow's resampling filters on
// 8-bit pixels (bit-exact), centre crop, "smart resize", rescale and per-channel normalisation.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "modu/core/status.h"
#include "modu/vision/image.h"

namespace modu::vision {

// Pillow's resampling filters (PIL.Image.Resampling values in comments).
enum class Resample { kBilinear /*2*/, kBicubic /*3*/, kLanczos /*1*/ };
Result<Resample> resample_from_pil(int pil_value);
const char* resample_name(Resample r);

// Image.resize((w, h), filter) of Pillow for an RGB image: separable convolution with support
// scaled by the reduction factor, coefficients normalised and rounded to 22 fractional bits,
// horizontal pass first, each pass rounded and clamped to 8 bits. Equal sizes pass through.
Image resize(const Image& img, int w, int h, Resample filter);

// Hugging Face center_crop: top = (H - h) // 2, left = (W - w) // 2; a smaller image is padded
// with zeros around (centred the same way) first.
Image center_crop(const Image& img, int w, int h);

// Qwen2-VL's smart_resize: (height, width) rounded (half to even) to multiples of `factor`, then
// scaled so that height * width lies in [min_pixels, max_pixels]. Errors on an aspect ratio over 200.
Result<std::pair<int, int>> smart_resize(int height, int width, int factor, int64_t min_pixels, int64_t max_pixels);

// How a family's processor turns an image into the encoder's input.
struct PreprocessConfig {
  enum class Mode {
    kSquare,            // resize straight to size x size (SigLIP, Gemma 3)
    kShortestEdgeCrop,  // shortest edge to `size` (aspect kept), then centre crop size x size (CLIP, LLaVA)
    kLongestEdgeSquare, // longest edge to `longest_edge` (even), then size x size (Idefics3 without splitting)
    kSmartResize,       // dynamic resolution: smart_resize(factor, min_pixels, max_pixels) (Qwen2-VL)
  };
  Mode mode = Mode::kSquare;
  int size = 224;
  int longest_edge = 0;
  int factor = 28;
  int64_t min_pixels = 56 * 56, max_pixels = 28 * 28 * 1280;
  Resample resample = Resample::kBicubic;
  double rescale = 1.0 / 255.0;
  std::array<float, 3> mean{0.5f, 0.5f, 0.5f}, std{0.5f, 0.5f, 0.5f};
  // Multi-crop input (the processor's own defaults, read from the projector file):
  // LLaVA-NeXT / OneVision "anyres": candidate (height, width) canvases in pixels;
  std::vector<std::pair<int, int>> grid_pinpoints;
  // Idefics3 / SmolVLM image splitting: tiles of `size` after the longest edge goes to longest_edge.
  bool split = false;
};

// An image cut for an encoder of fixed input size: a grid of tiles and one view of the whole.
struct Tiles {
  Image global;             // the whole image at the encoder's size
  std::vector<Image> grid;  // rows x cols tiles, row-major (empty when the image is one tile)
  int rows = 0, cols = 0;
};

// LLaVA-NeXT's select_best_resolution: the (height, width) canvas among `pinpoints` that keeps the
// most of the image's pixels (each scaled to fit, int()-truncated), ties to the least wasted area.
std::pair<int, int> select_best_resolution(int height, int width, const std::vector<std::pair<int, int>>& pinpoints);

// LlavaNextImageProcessor.get_image_patches (and OneVision's): the image resized to fit the best
// canvas with its aspect kept (the scaled side ceil()ed), padded with black centred (extra pixel
// right / bottom), cut into tile x tile crops; the global view is a plain resize to tile x tile.
Result<Tiles> anyres_tiles(const Image& img, const std::vector<std::pair<int, int>>& pinpoints, int tile, Resample r);

// Idefics3ImageProcessor with do_image_splitting: the longest edge to `longest_edge` (the other side
// made even), both sides up to whole multiples of `tile` (aspect from the first resize), cut into
// tile x tile crops; the global view is that image resized to tile x tile. An image that is one
// tile has no grid.
Result<Tiles> idefics3_tiles(const Image& img, int longest_edge, int tile, Resample r);

// Idefics3's resize of the longest edge to `longest_edge`: the other side int()-scaled, then made even.
Image resize_longest_edge(const Image& img, int longest_edge, Resample r);

// The encoder input: planar float32 [3, height, width].
struct Pixels {
  int width = 0, height = 0;
  std::vector<float> chw;
};

// Resizes and crops per `cfg`, then x -> (float(x * rescale) - mean) / std in float32, as the HF
// processors compute it (rescale in double, then float32 arithmetic).
Result<Pixels> preprocess(const Image& img, const PreprocessConfig& cfg);
// The 8-bit image after the geometric steps only (for tests and `modu info`).
Result<Image> preprocess_geometry(const Image& img, const PreprocessConfig& cfg);
Pixels normalize(const Image& img, const PreprocessConfig& cfg);

}  // namespace modu::vision
