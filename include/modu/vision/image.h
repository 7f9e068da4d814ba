// Images for the vision encoders: decoding PNG, JPEG, BMP, GIF (first frame) and WebP into 8-bit RGB
// with EXIF orientation applied, under a pixel limit, with errors that say what is wrong.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "modu/core/status.h"

namespace modu::vision {

// An 8-bit RGB image, rows top to bottom, pixels RGBRGB... ([height, width, 3]).
struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;
  const uint8_t* pixel(int x, int y) const { return rgb.data() + 3 * ((size_t)y * width + x); }
};

struct DecodeLimits {
  // Decompression bombs: a file whose header claims more pixels than this is refused before any
  // pixel is decoded (the default, 50 megapixels, is a 7000 x 7000 photo; Pillow warns at 89 MP).
  int64_t max_pixels = 50'000'000;
  // Longest side accepted (either dimension).
  int max_side = 16384;
};

// What the bytes are, from their signature: "png", "jpeg", "bmp", "gif", "webp", or "" if none.
std::string sniff_image_format(const uint8_t* data, size_t n);

// Decodes an image file's bytes. Alpha is dropped (as Pillow's convert("RGB") does), grey and
// palette images become RGB, and an EXIF orientation (JPEG APP1, PNG eXIf, WebP EXIF chunk) is
// applied so the result is upright. Errors: kInvalidArgument for an unknown format, kCorrupt for
// truncated or malformed data, kOutOfRange for a zero-size image or one over the limits.
Result<Image> decode_image(const uint8_t* data, size_t n, const DecodeLimits& limits = {});
Result<Image> load_image_file(const std::string& path, const DecodeLimits& limits = {});

// The EXIF orientation (1..8) in a TIFF-structured EXIF block (starting at "II*\0" or "MM\0*",
// after any "Exif\0\0" prefix); 1 when absent or unreadable.
int exif_orientation(const uint8_t* tiff, size_t n);
// Rotates / mirrors so that an image stored with EXIF orientation `o` displays upright.
Image apply_orientation(const Image& img, int o);

}  // namespace modu::vision
