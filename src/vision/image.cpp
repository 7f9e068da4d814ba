// Image decoding for the vision path: the format is sniffed from the bytes, WebP goes to libwebp and
// everything else to stb_image (both Debian libraries), then the EXIF orientation is applied.
#include "modu/vision/image.h"

#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>

#include <stb_image.h>
#include <webp/decode.h>
#include <webp/demux.h>

namespace modu::vision {

namespace {

uint32_t be32(const uint8_t* p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
uint32_t le32(const uint8_t* p) { return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0]; }

// The EXIF block of a JPEG (APP1 "Exif\0\0"), PNG (eXIf chunk) or WebP (EXIF chunk), or {nullptr, 0}.
std::pair<const uint8_t*, size_t> find_exif(const std::string& fmt, const uint8_t* d, size_t n) {
  if (fmt == "jpeg") {
    size_t i = 2;
    while (i + 4 <= n && d[i] == 0xFF) {
      const uint8_t marker = d[i + 1];
      if (marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) { i += 2; continue; }
      if (marker == 0xDA || marker == 0xD9) break;  // start of scan / end of image: no more headers
      const size_t len = (size_t)d[i + 2] << 8 | d[i + 3];
      if (len < 2 || i + 2 + len > n) break;
      if (marker == 0xE1 && len >= 8 && std::memcmp(d + i + 4, "Exif\0\0", 6) == 0) return {d + i + 10, len - 8};
      i += 2 + len;
    }
  } else if (fmt == "png") {
    size_t i = 8;
    while (i + 12 <= n) {
      const size_t len = be32(d + i);
      if (len > n - i - 12) break;
      if (std::memcmp(d + i + 4, "eXIf", 4) == 0) return {d + i + 8, len};
      if (std::memcmp(d + i + 4, "IEND", 4) == 0) break;
      i += 12 + len;
    }
  } else if (fmt == "webp") {
    size_t i = 12;
    while (i + 8 <= n) {
      const size_t len = le32(d + i + 4);
      if (len > n - i - 8) break;
      if (std::memcmp(d + i, "EXIF", 4) == 0) {
        const uint8_t* p = d + i + 8;
        if (len >= 6 && std::memcmp(p, "Exif\0\0", 6) == 0) return {p + 6, len - 6};
        return {p, len};
      }
      i += 8 + len + (len & 1);
    }
  }
  return {nullptr, 0};
}

Result<Image> decode_webp(const uint8_t* data, size_t n) {
  int w = 0, h = 0;
  uint8_t* px = WebPDecodeRGB(data, n, &w, &h);
  Image img;
  if (px != nullptr) {
    img.width = w;
    img.height = h;
    img.rgb.assign(px, px + (size_t)w * h * 3);
    WebPFree(px);
    return img;
  }
  // Animated WebP: WebPDecodeRGB refuses it; take the first frame through the demuxer.
  WebPData wd{data, n};
  WebPAnimDecoderOptions opt;
  if (!WebPAnimDecoderOptionsInit(&opt)) return internal_error("libwebp: WebPAnimDecoderOptionsInit failed");
  opt.color_mode = MODE_RGBA;
  opt.use_threads = 0;
  WebPAnimDecoder* dec = WebPAnimDecoderNew(&wd, &opt);
  if (dec == nullptr) return corrupt("WebP image is truncated or malformed (libwebp could not decode it)");
  WebPAnimInfo info;
  uint8_t* frame = nullptr;
  int ts = 0;
  if (!WebPAnimDecoderGetInfo(dec, &info) || !WebPAnimDecoderGetNext(dec, &frame, &ts)) {
    WebPAnimDecoderDelete(dec);
    return corrupt("animated WebP image has no decodable first frame");
  }
  img.width = (int)info.canvas_width;
  img.height = (int)info.canvas_height;
  img.rgb.resize((size_t)img.width * img.height * 3);
  for (size_t p = 0; p < (size_t)img.width * img.height; ++p) std::memcpy(&img.rgb[3 * p], frame + 4 * p, 3);
  WebPAnimDecoderDelete(dec);
  return img;
}

// stb_image allocates a PNG chunk's claimed length before reading it (up to 1 GiB), so a 60-byte
// file could make it allocate half a gigabyte: every chunk must fit in the bytes we have.
Status check_png_chunks(const uint8_t* d, size_t n) {
  size_t i = 8;
  while (i + 12 <= n) {
    const size_t len = be32(d + i);
    if (len > n - i - 12)
      return corrupt("png image is truncated or malformed (chunk '" + std::string((const char*)d + i + 4, 4) +
                     "' claims " + std::to_string(len) + " bytes, the file has " + std::to_string(n - i - 12) + " left)");
    if (std::memcmp(d + i + 4, "IEND", 4) == 0) return Status::Ok();
    i += 12 + len;
  }
  return corrupt("png image is truncated (no IEND chunk)");
}

Status check_size(int64_t w, int64_t h, const DecodeLimits& lim) {
  if (w <= 0 || h <= 0)
    return out_of_range("image has zero size (" + std::to_string(w) + " x " + std::to_string(h) + ")");
  if (w > lim.max_side || h > lim.max_side || w * h > lim.max_pixels)
    return out_of_range("image is " + std::to_string(w) + " x " + std::to_string(h) + " pixels, over the limit of " +
                        std::to_string(lim.max_pixels) + " pixels and " + std::to_string(lim.max_side) +
                        " per side (a decompression bomb guard); resize it first or raise --max-image-pixels");
  return Status::Ok();
}

}  // namespace

std::string sniff_image_format(const uint8_t* d, size_t n) {
  if (n >= 8 && std::memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) return "png";
  if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return "jpeg";
  if (n >= 6 && (std::memcmp(d, "GIF87a", 6) == 0 || std::memcmp(d, "GIF89a", 6) == 0)) return "gif";
  if (n >= 2 && d[0] == 'B' && d[1] == 'M') return "bmp";
  if (n >= 12 && std::memcmp(d, "RIFF", 4) == 0 && std::memcmp(d + 8, "WEBP", 4) == 0) return "webp";
  return "";
}

int exif_orientation(const uint8_t* t, size_t n) {
  if (n >= 6 && std::memcmp(t, "Exif\0\0", 6) == 0) { t += 6; n -= 6; }
  if (n < 8) return 1;
  bool le;
  if (t[0] == 'I' && t[1] == 'I') le = true;
  else if (t[0] == 'M' && t[1] == 'M') le = false;
  else return 1;
  auto u16 = [&](size_t o) -> uint32_t { return le ? (t[o] | t[o + 1] << 8) : (t[o] << 8 | t[o + 1]); };
  auto u32 = [&](size_t o) -> uint32_t { return le ? le32(t + o) : be32(t + o); };
  if (u16(2) != 42) return 1;
  const size_t ifd = u32(4);
  if (ifd > n - 2 || n < 2) return 1;
  const size_t count = u16(ifd);
  for (size_t e = 0; e < count; ++e) {
    const size_t o = ifd + 2 + 12 * e;
    if (o + 12 > n) break;
    if (u16(o) == 0x0112 && u16(o + 2) == 3) {  // Orientation, SHORT
      const uint32_t v = u16(o + 8);
      return v >= 1 && v <= 8 ? (int)v : 1;
    }
  }
  return 1;
}

Image apply_orientation(const Image& src, int o) {
  if (o <= 1 || o > 8) return src;
  const int W = src.width, H = src.height;
  const bool swap = o >= 5;  // transpose, rotations by 90 degrees, transverse
  Image out;
  out.width = swap ? H : W;
  out.height = swap ? W : H;
  out.rgb.resize(src.rgb.size());
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      int sx = x, sy = y;
      switch (o) {
        case 2: sx = W - 1 - x; break;                      // mirror left-right
        case 3: sx = W - 1 - x; sy = H - 1 - y; break;      // rotate 180
        case 4: sy = H - 1 - y; break;                      // mirror top-bottom
        case 5: sx = y; sy = x; break;                      // transpose
        case 6: sx = y; sy = H - 1 - x; break;              // rotate 90 clockwise
        case 7: sx = W - 1 - y; sy = H - 1 - x; break;      // transverse
        case 8: sx = W - 1 - y; sy = x; break;              // rotate 90 counter-clockwise
      }
      std::memcpy(&out.rgb[3 * ((size_t)y * out.width + x)], src.pixel(sx, sy), 3);
    }
  }
  return out;
}

Result<Image> decode_image(const uint8_t* data, size_t n, const DecodeLimits& limits) {
  if (n == 0) return invalid_argument("image is empty (0 bytes)");
  const std::string fmt = sniff_image_format(data, n);
  if (fmt.empty())
    return invalid_argument("image format not recognised: PNG, JPEG, BMP, GIF and WebP are supported");
  Image img;
  if (fmt == "webp") {
    int w = 0, h = 0;
    if (!WebPGetInfo(data, n, &w, &h)) return corrupt("WebP image header is truncated or malformed");
    MODU_RETURN_IF_ERROR(check_size(w, h, limits));
    auto r = decode_webp(data, n);
    if (!r.ok()) return r.status();
    img = std::move(r).value();
  } else {
    if (n > (size_t)std::numeric_limits<int>::max()) return out_of_range("image file is over 2 GiB");
    int w = 0, h = 0, comp = 0;
    if (!stbi_info_from_memory(data, (int)n, &w, &h, &comp)) {
      if (std::strcmp(stbi_failure_reason(), "too large") == 0)
        return out_of_range(fmt + " image header claims more pixels than can be decoded (a decompression bomb?)");
      return corrupt(fmt + " image header is truncated or malformed (" + std::string(stbi_failure_reason()) + ")");
    }
    MODU_RETURN_IF_ERROR(check_size(w, h, limits));
    if (fmt == "png") MODU_RETURN_IF_ERROR(check_png_chunks(data, n));
    // GIF: stbi_load_from_memory decodes the first frame.
    uint8_t* px = stbi_load_from_memory(data, (int)n, &w, &h, &comp, 3);
    if (px == nullptr)
      return corrupt(fmt + " image could not be decoded (" + std::string(stbi_failure_reason()) + ")");
    img.width = w;
    img.height = h;
    img.rgb.assign(px, px + (size_t)w * h * 3);
    stbi_image_free(px);
  }
  MODU_RETURN_IF_ERROR(check_size(img.width, img.height, limits));
  auto [exif, exif_n] = find_exif(fmt, data, n);
  if (exif != nullptr) {
    const int o = exif_orientation(exif, exif_n);
    if (o != 1) img = apply_orientation(img, o);
  }
  return img;
}

Result<Image> load_image_file(const std::string& path, const DecodeLimits& limits) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return not_found("cannot open image '" + path + "'");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto r = decode_image(bytes.data(), bytes.size(), limits);
  if (!r.ok()) return r.status().with_context(path);
  return r;
}

}  // namespace modu::vision
