// Prompts with images: text with image markers becomes token ids with placeholder positions and the
// embedding spans generate() splices there, each image wrapped in its family's begin/end text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "modu/core/status.h"
#include "modu/models/model.h"
#include "modu/tokenizer/tokenizer.h"
#include "modu/vision/vision_model.h"

namespace modu {

// Where an image goes in a prompt (llama.cpp's marker). Without any marker in the text the
// images come first, before the text.
inline constexpr std::string_view kImageMarker = "<__media__>";

struct MultimodalPrompt {
  std::vector<int32_t> ids;    // image positions hold placeholders: negative ids from the pixel hash
  std::vector<EmbdSpan> spans; // rows point into the ImageEmbeddings passed in (keep them alive)
  int64_t n_image_tokens = 0;
};

// Placeholder id of position i of an image with this pixel hash: negative, equal for equal
// images, so a prefix cache comparing ids reuses an image's KV only for the same pixels.
int32_t image_placeholder(uint64_t hash, int64_t i);

// Tokenizes `text` (BOS per add_special, special tokens parsed per parse_special) with each
// kImageMarker replaced by markers.begin + the image's embeddings + markers.end (begin/end are
// always parsed for special tokens). The number of markers must be 0 or images.size().
Result<MultimodalPrompt> build_multimodal_prompt(const Tokenizer& tok, std::string_view text,
                                                 const std::vector<vision::ImageEmbedding>& images,
                                                 const vision::ImageMarkers& markers, bool add_special,
                                                 bool parse_special);

}  // namespace modu
