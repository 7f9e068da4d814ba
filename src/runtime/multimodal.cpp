// Splicing image embeddings into a tokenized prompt at the image markers.
#include "modu/runtime/multimodal.h"

namespace modu {

int32_t image_placeholder(uint64_t hash, int64_t i) {
  const uint64_t h = (hash ^ (hash >> 31)) + 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
  return -1 - (int32_t)((h ^ (h >> 29)) & 0x3FFFFFFF);
}

Result<MultimodalPrompt> build_multimodal_prompt(const Tokenizer& tok, std::string_view text,
                                                 const std::vector<vision::ImageEmbedding>& images,
                                                 const vision::ImageMarkers& mk, bool add_special, bool parse_special) {
  std::vector<std::string_view> pieces;  // text between markers
  size_t at = 0;
  while (true) {
    const size_t m = text.find(kImageMarker, at);
    if (m == std::string_view::npos) break;
    pieces.push_back(text.substr(at, m - at));
    at = m + kImageMarker.size();
  }
  pieces.push_back(text.substr(at));
  const size_t n_markers = pieces.size() - 1;
  if (n_markers == 0 && !images.empty()) {
    pieces.assign(images.size(), std::string_view());  // images first, then the text
    pieces.push_back(text);
  } else if (n_markers != images.size()) {
    return invalid_argument("the prompt has " + std::to_string(n_markers) + " image markers (" +
                            std::string(kImageMarker) + ") but " + std::to_string(images.size()) +
                            " images were given");
  }
  MultimodalPrompt out;
  for (size_t i = 0; i < pieces.size(); ++i) {
    std::string chunk(pieces[i]);
    auto ids = tok.encode(chunk, add_special && i == 0, parse_special);
    out.ids.insert(out.ids.end(), ids.begin(), ids.end());
    if (i + 1 == pieces.size()) break;
    const vision::ImageEmbedding& img = images[i];
    auto add_text = [&](const std::string& t) {
      if (t.empty()) return;
      auto ids = tok.encode(t, false, true);
      out.ids.insert(out.ids.end(), ids.begin(), ids.end());
    };
    std::vector<vision::ImageSegment> segs = img.segments;
    if (segs.empty()) segs = {{mk.begin, img.n_tokens, 0, 0}};  // built by hand: one run in the markers
    const std::string& after = img.segments.empty() ? mk.end : img.text_after;
    int64_t row = 0;  // the image's embedding row (and placeholder index) where this segment starts
    for (const vision::ImageSegment& seg : segs) {
      add_text(seg.text);
      EmbdSpan sp;
      sp.begin = (int64_t)out.ids.size();
      sp.n = seg.n_tokens;
      sp.rows = img.embd.data() + row * (img.embd.size() / std::max<int64_t>(img.n_tokens, 1));
      sp.bidirectional = mk.bidirectional;
      sp.mrope = mk.mrope;
      sp.grid_w = seg.grid_w;
      sp.grid_h = seg.grid_h;
      for (int64_t j = 0; j < seg.n_tokens; ++j) out.ids.push_back(image_placeholder(img.hash, row + j));
      out.spans.push_back(sp);
      row += seg.n_tokens;
    }
    out.n_image_tokens += img.n_tokens;
    add_text(after);
  }
  return out;
}

}  // namespace modu
