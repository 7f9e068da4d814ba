// Pillow-exact resampling and the Hugging Face processor steps (crop, smart resize, normalise).
// The resampler follows Pillow's documented algorithm (libImaging/Resample.c): per output pixel a
// window of input pixels weighted by the filter, fixed-point accumulation, two separable passes.
#include "modu/vision/preprocess.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace modu::vision {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's fixed point for 8-bit images

struct Filter {
  double support;
  double (*f)(double);
};

double bilinear(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}
double bicubic(double x) {
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}
double sinc(double x) {
  if (x == 0.0) return 1.0;
  x *= M_PI;
  return std::sin(x) / x;
}
double lanczos(double x) { return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0.0; }

Filter filter_of(Resample r) {
  switch (r) {
    case Resample::kBilinear: return {1.0, bilinear};
    case Resample::kBicubic: return {2.0, bicubic};
    case Resample::kLanczos: return {3.0, lanczos};
  }
  return {2.0, bicubic};
}

// For each output position: the first input index, the count, and ksize fixed-point weights.
struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;  // [out, 2]: xmin, count
  std::vector<int32_t> k;   // [out, ksize]
};

Coeffs precompute(int in_size, int out_size, const Filter& flt) {
  const double scale = (double)in_size / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = flt.support * filterscale;
  Coeffs c;
  c.ksize = (int)std::ceil(support) * 2 + 1;
  c.bounds.resize(2 * out_size);
  c.k.assign((size_t)out_size * c.ksize, 0);
  std::vector<double> w(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = (int)(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = (int)(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[x] = flt.f((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[x] / ww : w[x];
      c.k[(size_t)xx * c.ksize + x] = v < 0 ? (int32_t)(-0.5 + v * (1 << kPrecisionBits))
                                            : (int32_t)(0.5 + v * (1 << kPrecisionBits));
    }
    c.bounds[2 * xx] = xmin;
    c.bounds[2 * xx + 1] = xmax;
  }
  return c;
}

uint8_t clip8(int32_t acc) {
  const int32_t v = acc >> kPrecisionBits;
  return (uint8_t)std::clamp(v, 0, 255);
}

Image pass_horizontal(const Image& in, int out_w, const Filter& flt) {
  const Coeffs c = precompute(in.width, out_w, flt);
  Image out;
  out.width = out_w;
  out.height = in.height;
  out.rgb.resize((size_t)out_w * in.height * 3);
  for (int y = 0; y < in.height; ++y) {
    for (int x = 0; x < out_w; ++x) {
      const int xmin = c.bounds[2 * x], cnt = c.bounds[2 * x + 1];
      const int32_t* k = &c.k[(size_t)x * c.ksize];
      for (int ch = 0; ch < 3; ++ch) {
        int32_t acc = 1 << (kPrecisionBits - 1);
        for (int i = 0; i < cnt; ++i) acc += (int32_t)in.pixel(xmin + i, y)[ch] * k[i];
        out.rgb[3 * ((size_t)y * out_w + x) + ch] = clip8(acc);
      }
    }
  }
  return out;
}

Image pass_vertical(const Image& in, int out_h, const Filter& flt) {
  const Coeffs c = precompute(in.height, out_h, flt);
  Image out;
  out.width = in.width;
  out.height = out_h;
  out.rgb.resize((size_t)in.width * out_h * 3);
  for (int y = 0; y < out_h; ++y) {
    const int ymin = c.bounds[2 * y], cnt = c.bounds[2 * y + 1];
    const int32_t* k = &c.k[(size_t)y * c.ksize];
    for (int x = 0; x < in.width; ++x) {
      for (int ch = 0; ch < 3; ++ch) {
        int32_t acc = 1 << (kPrecisionBits - 1);
        for (int i = 0; i < cnt; ++i) acc += (int32_t)in.pixel(x, ymin + i)[ch] * k[i];
        out.rgb[3 * ((size_t)y * in.width + x) + ch] = clip8(acc);
      }
    }
  }
  return out;
}

}  // namespace

Result<Resample> resample_from_pil(int v) {
  switch (v) {
    case 1: return Resample::kLanczos;
    case 2: return Resample::kBilinear;
    case 3: return Resample::kBicubic;
  }
  return unimplemented("resample filter " + std::to_string(v) +
                       " (PIL numbering) is not supported: use 1 (LANCZOS), 2 (BILINEAR) or 3 (BICUBIC)");
}

const char* resample_name(Resample r) {
  switch (r) {
    case Resample::kBilinear: return "bilinear";
    case Resample::kBicubic: return "bicubic";
    case Resample::kLanczos: return "lanczos";
  }
  return "?";
}

Image resize(const Image& img, int w, int h, Resample r) {
  const Filter flt = filter_of(r);
  Image cur = img;
  if (w != cur.width) cur = pass_horizontal(cur, w, flt);
  if (h != cur.height) cur = pass_vertical(cur, h, flt);
  return cur;
}

Image center_crop(const Image& img, int w, int h) {
  const Image* src = &img;
  Image padded;
  if (img.width < w || img.height < h) {  // pad to at least (w, h), centred
    padded.width = std::max(img.width, w);
    padded.height = std::max(img.height, h);
    padded.rgb.assign((size_t)padded.width * padded.height * 3, 0);
    const int top = (padded.height - img.height) / 2, left = (padded.width - img.width) / 2;
    for (int y = 0; y < img.height; ++y)
      std::copy_n(img.pixel(0, y), 3 * img.width, &padded.rgb[3 * ((size_t)(y + top) * padded.width + left)]);
    src = &padded;
  }
  const int top = (src->height - h) / 2, left = (src->width - w) / 2;
  Image out;
  out.width = w;
  out.height = h;
  out.rgb.resize((size_t)w * h * 3);
  for (int y = 0; y < h; ++y) std::copy_n(src->pixel(left, top + y), 3 * w, &out.rgb[3 * (size_t)y * w]);
  return out;
}

Result<std::pair<int, int>> smart_resize(int height, int width, int factor, int64_t min_pixels, int64_t max_pixels) {
  if (height <= 0 || width <= 0 || factor <= 0) return invalid_argument("smart_resize: sizes must be positive");
  if ((double)std::max(height, width) / std::min(height, width) > 200)
    return out_of_range("image aspect ratio " + std::to_string(width) + ":" + std::to_string(height) +
                        " is over 200 (the processor refuses it)");
  // Python's round() rounds half to even, as nearbyint does in the default rounding mode.
  int64_t h_bar = std::max<int64_t>(factor, (int64_t)std::nearbyint((double)height / factor) * factor);
  int64_t w_bar = std::max<int64_t>(factor, (int64_t)std::nearbyint((double)width / factor) * factor);
  if (h_bar * w_bar > max_pixels) {
    const double beta = std::sqrt((double)height * width / (double)max_pixels);
    h_bar = std::max<int64_t>(factor, (int64_t)std::floor(height / beta / factor) * factor);
    w_bar = std::max<int64_t>(factor, (int64_t)std::floor(width / beta / factor) * factor);
  } else if (h_bar * w_bar < min_pixels) {
    const double beta = std::sqrt((double)min_pixels / ((double)height * width));
    h_bar = (int64_t)std::ceil(height * beta / factor) * factor;
    w_bar = (int64_t)std::ceil(width * beta / factor) * factor;
  }
  return std::pair<int, int>{(int)h_bar, (int)w_bar};
}

Image resize_longest_edge(const Image& img, int longest_edge, Resample r) {
  int w = img.width, h = img.height;
  const double aspect = (double)w / h;
  if (w >= h) {
    w = longest_edge;
    h = (int)(w / aspect);
    if (h % 2 != 0) ++h;
  } else {
    h = longest_edge;
    w = (int)(h * aspect);
    if (w % 2 != 0) ++w;
  }
  return resize(img, std::max(w, 1), std::max(h, 1), r);
}

std::pair<int, int> select_best_resolution(int height, int width, const std::vector<std::pair<int, int>>& pinpoints) {
  // (HF starts from 0 with a strict >, finding nothing for an image so thin that every canvas
  // scales one side to 0 pixels; from -1 the first such canvas wins instead.)
  std::pair<int, int> best{0, 0};
  int64_t max_effective = -1, min_wasted = INT64_MAX;
  for (const auto& [ph, pw] : pinpoints) {
    const double scale = std::min((double)pw / width, (double)ph / height);
    const int64_t dw = (int64_t)(width * scale), dh = (int64_t)(height * scale);
    const int64_t effective = std::min(dw * dh, (int64_t)width * height);
    const int64_t wasted = (int64_t)pw * ph - effective;
    if (effective > max_effective || (effective == max_effective && wasted < min_wasted)) {
      max_effective = effective;
      min_wasted = wasted;
      best = {ph, pw};
    }
  }
  return best;
}

namespace {
Image crop(const Image& img, int x0, int y0, int w, int h) {
  Image out;
  out.width = w;
  out.height = h;
  out.rgb.resize((size_t)w * h * 3);
  for (int y = 0; y < h; ++y) std::copy_n(img.pixel(x0, y0 + y), 3 * w, &out.rgb[3 * (size_t)y * w]);
  return out;
}

Status check_tile_input(const Image& img, int tile) {
  if (img.width <= 0 || img.height <= 0) return out_of_range("image has zero size");
  if (tile <= 0) return invalid_argument("tile size must be positive");
  return Status::Ok();
}
}  // namespace

Result<Tiles> anyres_tiles(const Image& img, const std::vector<std::pair<int, int>>& pinpoints, int tile, Resample r) {
  MODU_RETURN_IF_ERROR(check_tile_input(img, tile));
  const auto [th, tw] = select_best_resolution(img.height, img.width, pinpoints);
  if (th <= 0 || tw <= 0 || th % tile != 0 || tw % tile != 0)
    return invalid_argument("image_grid_pinpoints: canvas " + std::to_string(th) + " x " + std::to_string(tw) +
                            " is not a whole number of " + std::to_string(tile) + "-pixel tiles");
  // get_patch_output_size: fit inside (th, tw), the scaled side rounded up.
  const double sw = (double)tw / img.width, sh = (double)th / img.height;
  int nw, nh;
  if (sw < sh) {
    nw = tw;
    nh = std::min((int)std::ceil(img.height * sw), th);
  } else {
    nh = th;
    nw = std::min((int)std::ceil(img.width * sh), tw);
  }
  const Image canvas = center_crop(resize(img, std::max(nw, 1), std::max(nh, 1), r), tw, th);  // pads, centred
  Tiles t;
  t.rows = th / tile;
  t.cols = tw / tile;
  for (int ty = 0; ty < t.rows; ++ty)
    for (int tx = 0; tx < t.cols; ++tx) t.grid.push_back(crop(canvas, tx * tile, ty * tile, tile, tile));
  t.global = resize(img, tile, tile, r);
  return t;
}

Result<Tiles> idefics3_tiles(const Image& img, int longest_edge, int tile, Resample r) {
  MODU_RETURN_IF_ERROR(check_tile_input(img, tile));
  Image cur = longest_edge > 0 ? resize_longest_edge(img, longest_edge, r) : img;
  {  // resize_for_vision_encoder
    int w = cur.width, h = cur.height;
    const double aspect = (double)w / h;
    if (w >= h) {
      w = (int)std::ceil((double)w / tile) * tile;
      h = (int)(w / aspect);
      h = (int)std::ceil((double)h / tile) * tile;
    } else {
      h = (int)std::ceil((double)h / tile) * tile;
      w = (int)(h * aspect);
      w = (int)std::ceil((double)w / tile) * tile;
    }
    cur = resize(cur, std::max(w, tile), std::max(h, tile), r);
  }
  Tiles t;
  if (cur.width > tile || cur.height > tile) {  // split_image: the sides are whole tiles here
    t.rows = (cur.height + tile - 1) / tile;
    t.cols = (cur.width + tile - 1) / tile;
    const int oh = (cur.height + t.rows - 1) / t.rows, ow = (cur.width + t.cols - 1) / t.cols;
    for (int ty = 0; ty < t.rows; ++ty)
      for (int tx = 0; tx < t.cols; ++tx) {
        const int x0 = tx * ow, y0 = ty * oh;
        t.grid.push_back(crop(cur, x0, y0, std::min(ow, cur.width - x0), std::min(oh, cur.height - y0)));
      }
    t.global = resize(cur, tile, tile, r);
  } else {
    t.global = std::move(cur);
  }
  return t;
}

Result<Image> preprocess_geometry(const Image& img, const PreprocessConfig& cfg) {
  if (img.width <= 0 || img.height <= 0) return out_of_range("image has zero size");
  using M = PreprocessConfig::Mode;
  switch (cfg.mode) {
    case M::kSquare:
      return resize(img, cfg.size, cfg.size, cfg.resample);
    case M::kShortestEdgeCrop: {
      // transformers' get_resize_output_image_size(default_to_square=False): the long side is
      // int(size * long / short), truncated.
      const bool w_short = img.width <= img.height;
      const int s = w_short ? img.width : img.height, l = w_short ? img.height : img.width;
      const int new_long = (int)((double)cfg.size * l / s);
      const int nw = w_short ? cfg.size : new_long, nh = w_short ? new_long : cfg.size;
      return center_crop(resize(img, nw, nh, cfg.resample), cfg.size, cfg.size);
    }
    case M::kLongestEdgeSquare: {
      // Idefics3ImageProcessor without image splitting: longest edge to `longest_edge`, then the
      // square the encoder takes.
      const Image cur = cfg.longest_edge > 0 ? resize_longest_edge(img, cfg.longest_edge, cfg.resample) : img;
      return resize(cur, cfg.size, cfg.size, cfg.resample);
    }
    case M::kSmartResize: {
      auto hw = smart_resize(img.height, img.width, cfg.factor, cfg.min_pixels, cfg.max_pixels);
      if (!hw.ok()) return hw.status();
      return resize(img, hw->second, hw->first, cfg.resample);
    }
  }
  return internal_error("preprocess: unknown mode");
}

Pixels normalize(const Image& img, const PreprocessConfig& cfg) {
  Pixels p;
  p.width = img.width;
  p.height = img.height;
  const size_t hw = (size_t)img.width * img.height;
  p.chw.resize(3 * hw);
  for (int ch = 0; ch < 3; ++ch) {
    const float mean = cfg.mean[ch], sd = cfg.std[ch];
    for (size_t i = 0; i < hw; ++i) {
      const float x = (float)(img.rgb[3 * i + ch] * cfg.rescale);
      p.chw[ch * hw + i] = (x - mean) / sd;
    }
  }
  return p;
}

Result<Pixels> preprocess(const Image& img, const PreprocessConfig& cfg) {
  auto g = preprocess_geometry(img, cfg);
  if (!g.ok()) return g.status();
  return normalize(*g, cfg);
}

}  // namespace modu::vision
