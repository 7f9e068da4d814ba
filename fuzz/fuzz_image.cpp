// libFuzzer target: the vision input path on arbitrary bytes. As an image, decode_image must never
// crash and anything it accepts must be within the pixel limit with a buffer of the right size
// (then it is preprocessed as a Gemma 3 projector would, and tiled as LLaVA-NeXT and Idefics3 cut
// images: every tile the encoder's size); as a GGUF file, the mmproj reader must
// either refuse it with a Status or load a model that reports consistent shapes.
#include <cstddef>
#include <cstdint>

#include "modu/gguf/gguf.h"
#include "modu/vision/image.h"
#include "modu/vision/preprocess.h"
#include "modu/vision/vision_model.h"

namespace {
void require(bool cond) {
  if (!cond) __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  modu::vision::DecodeLimits lim;
  lim.max_pixels = 1 << 20;  // keep each run small: a bomb is refused, not decoded
  lim.max_side = 4096;
  auto img = modu::vision::decode_image(data, size, lim);
  if (img.ok()) {
    require(img->width > 0 && img->height > 0 && (int64_t)img->width * img->height <= lim.max_pixels);
    require(img->rgb.size() == (size_t)img->width * img->height * 3);
    modu::vision::PreprocessConfig cfg;
    cfg.size = 14;
    auto px = modu::vision::preprocess(*img, cfg);
    require(px.ok() && px->chw.size() == 3u * 14 * 14);
    auto tiled_ok = [](const modu::Result<modu::vision::Tiles>& t) {
      if (!t.ok() || t->global.width != 14 || t->global.height != 14) return false;
      if (t->grid.size() != (size_t)t->rows * t->cols) return false;
      for (const auto& g : t->grid)
        if (g.width != 14 || g.height != 14 || g.rgb.size() != 14u * 14 * 3) return false;
      return true;
    };
    require(tiled_ok(modu::vision::anyres_tiles(*img, {{14, 28}, {28, 14}, {28, 28}}, 14, modu::vision::Resample::kBicubic)));
    require(tiled_ok(modu::vision::idefics3_tiles(*img, 28, 14, modu::vision::Resample::kLanczos)));
  }
  auto f = modu::GgufFile::parse(data, size, "fuzz");
  if (!f.ok()) return 0;
  auto m = modu::vision::VisionModel::from_gguf(std::move(f).value());
  if (m.ok()) {
    const auto& c = (*m)->config();
    require(c.n_embd > 0 && c.n_embd_text > 0 && c.n_embd % c.n_head == 0 && c.image_size % c.patch_size == 0);
    require((*m)->weights().layers.size() == (size_t)c.n_layer);
  }
  return 0;
}
