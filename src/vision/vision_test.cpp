// Vision tests: decoding against Pillow's pixels, Pillow-exact resampling and the HF processors'
// float pipelines (test data made by testdata/make_testdata.py), each projector family against
// the float64 reference, and image embeddings through a text model to greedy tokens.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>

#include "../models/reference_model.h"
#include "modu/models/model.h"
#include "modu/vision/image.h"
#include "modu/vision/preprocess.h"
#include "modu/vision/vision_model.h"
#include "vision_reference.h"

namespace modu {
namespace {

using vision::Image;

const std::string kData = MODU_VISION_TESTDATA;

std::vector<uint8_t> slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f) << path;
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

Image load(const std::string& name) {
  auto r = vision::load_image_file(kData + "/" + name);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? *r : Image{};
}

nlohmann::json cases() {
  std::ifstream f(kData + "/cases.json");
  return nlohmann::json::parse(f);
}

int max_diff(const Image& a, const Image& b) {
  if (a.width != b.width || a.height != b.height) return 9999;
  int m = 0;
  for (size_t i = 0; i < a.rgb.size(); ++i) m = std::max(m, std::abs((int)a.rgb[i] - (int)b.rgb[i]));
  return m;
}

TEST(Image, ResizeIsPillowExact) {
  int n = 0;
  const nlohmann::json all = cases();
  for (const auto& c : all["resize"]) {
    const Image src = load(c["src"]);
    const Image want = load(c["expect"]);
    const std::string f = c["filter"];
    const vision::Resample r = f == "bilinear" ? vision::Resample::kBilinear
                               : f == "bicubic" ? vision::Resample::kBicubic : vision::Resample::kLanczos;
    const Image got = vision::resize(src, c["w"], c["h"], r);
    EXPECT_EQ(max_diff(got, want), 0) << c.dump();
    ++n;
  }
  EXPECT_EQ(n, 30);
}

TEST(Image, ContainersDecodeToTheSamePixels) {
  const Image png = load("src_37x23.png");
  ASSERT_EQ(png.width, 37);
  ASSERT_EQ(png.height, 23);
  EXPECT_EQ(max_diff(load("src_37x23.bmp"), png), 0);
  EXPECT_EQ(max_diff(load("src_37x23.webp"), png), 0);  // lossless
  EXPECT_EQ(max_diff(load("src_37x23_rgba.png"), png), 0);  // alpha dropped, as convert("RGB")
  EXPECT_EQ(max_diff(load("src_37x23.gif"), load("src_37x23_gif_frame0.png")), 0);  // first frame
}

TEST(Image, ExifOrientationIsApplied) {
  int n = 0;
  const nlohmann::json all = cases();
  for (const auto& c : all["orient"]) {
    const Image got = load(c["file"]), want = load(c["upright"]);
    ASSERT_EQ(got.width, want.width) << c.dump();
    ASSERT_EQ(got.height, want.height) << c.dump();
    // JPEG: stb_image's IDCT and Pillow's libjpeg-turbo differ by a few levels.
    EXPECT_LE(max_diff(got, want), c["exact"].get<bool>() ? 0 : 12) << c.dump();
    ++n;
  }
  EXPECT_EQ(n, 24);
}

TEST(Image, BadInputGetsClearErrors) {
  auto png = slurp(kData + "/src_37x23.png");
  EXPECT_EQ(vision::decode_image(png.data(), 0).status().code(), StatusCode::kInvalidArgument);
  const uint8_t junk[] = "GIF8 not really";
  EXPECT_EQ(vision::decode_image(junk, sizeof junk).status().code(), StatusCode::kInvalidArgument);
  for (size_t cut : {size_t(9), size_t(30), png.size() / 2}) {
    auto r = vision::decode_image(png.data(), cut);
    EXPECT_FALSE(r.ok()) << cut;
  }
  auto jpg = slurp(kData + "/orient_1.jpg");
  EXPECT_FALSE(vision::decode_image(jpg.data(), 20).ok());
  auto webp = slurp(kData + "/src_37x23.webp");
  EXPECT_FALSE(vision::decode_image(webp.data(), webp.size() / 2).ok());
  // A decompression bomb: a PNG header claiming 10000 x 10000 pixels is refused from the header.
  std::vector<uint8_t> bomb(png.begin(), png.begin() + 33);
  auto put32 = [&](size_t o, uint32_t v) {
    for (int i = 0; i < 4; ++i) bomb[o + i] = (uint8_t)(v >> (24 - 8 * i));
  };
  put32(16, 10000);
  put32(20, 10000);
  auto r = vision::decode_image(bomb.data(), bomb.size());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange) << r.status().to_string();
  vision::DecodeLimits tight;
  tight.max_pixels = 100;
  EXPECT_EQ(vision::decode_image(png.data(), png.size(), tight).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(vision::load_image_file(kData + "/no_such.png").status().code(), StatusCode::kNotFound);
}

TEST(Preprocess, PipelinesMatchTheHfFormulas) {
  const nlohmann::json all = cases();
  for (const auto& c : all["pipes"]) {
    vision::PreprocessConfig cfg;
    cfg.size = c["size"];
    if (c["name"] == "clip") {
      cfg.mode = vision::PreprocessConfig::Mode::kShortestEdgeCrop;
      cfg.resample = vision::Resample::kBicubic;
      cfg.mean = {0.48145466f, 0.4578275f, 0.40821073f};
      cfg.std = {0.26862954f, 0.26130258f, 0.27577711f};
    } else {
      cfg.mode = vision::PreprocessConfig::Mode::kSquare;
      cfg.resample = vision::Resample::kBilinear;
    }
    auto px = vision::preprocess(load(c["src"]), cfg);
    ASSERT_TRUE(px.ok()) << px.status().to_string();
    auto raw = slurp(kData + "/" + c["out"].get<std::string>());
    ASSERT_EQ(raw.size(), px->chw.size() * 4) << c.dump();
    const float* want = reinterpret_cast<const float*>(raw.data());
    float worst = 0;
    for (size_t i = 0; i < px->chw.size(); ++i) worst = std::max(worst, std::fabs(px->chw[i] - want[i]));
    EXPECT_EQ(worst, 0.0f) << c.dump();
  }
}

TEST(Preprocess, SmartResizeMatchesQwenFormula) {
  const nlohmann::json all = cases();
  for (const auto& c : all["smart_resize"]) {
    auto r = vision::smart_resize(c["h"], c["w"], 28, 56 * 56, 28 * 28 * 1280);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->first, c["out"][0].get<int>()) << c.dump();
    EXPECT_EQ(r->second, c["out"][1].get<int>()) << c.dump();
  }
  EXPECT_FALSE(vision::smart_resize(10, 3000, 28, 56 * 56, 1 << 20).ok());  // aspect ratio over 200
}

// --- encoders against the float64 reference ----------------------------------------------------

Image random_image(int w, int h, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.resize((size_t)w * h * 3);
  for (auto& b : img.rgb) b = (uint8_t)(rng() & 255);
  return img;
}

struct Loaded {
  std::vector<uint8_t> bytes;
  std::unique_ptr<vision::VisionModel> m;
};

Loaded load_mmproj(const testing::MmprojSpec& s) {
  Loaded l;
  l.bytes = testing::make_random_mmproj(s);
  auto f = GgufFile::parse(l.bytes.data(), l.bytes.size(), "random-mmproj");
  EXPECT_TRUE(f.ok()) << f.status().to_string();
  auto m = vision::VisionModel::from_gguf(std::move(f).value());
  EXPECT_TRUE(m.ok()) << m.status().to_string();
  if (m.ok()) l.m = std::move(m).value();
  return l;
}

double rel_err(const std::vector<float>& got, const std::vector<double>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num += (got[i] - want[i]) * (got[i] - want[i]);
    den += want[i] * want[i];
  }
  return std::sqrt(num / den);
}

testing::MmprojSpec spec_for(const std::string& proj, DType dt) {
  testing::MmprojSpec s;
  s.projector = proj;
  s.weight_type = dt;
  s.n_ff = 64;
  s.mlp_hidden = 64;
  if (proj == "gemma3") {
    s.image_size = 56;  // 7 x 7 patches of 8 would not pool by 2: use 8 x 8 patches of 7
    s.patch_size = 7;
    s.use_gelu = true;
  }
  if (proj == "idefics3") s.use_gelu = true;
  if (proj.rfind("qwen", 0) == 0) s.patch_size = 4;  // factor 8: a 45 x 31 image becomes 56 x 56 (min_pixels)
  if (proj == "qwen2.5vl_merger") {
    s.window_px = 24;  // 3 x 3 merged tokens: a 7 x 7 merged grid has full and partial windows
    s.n_layer = 3;     // blocks 0 and 2 windowed, block 1 global
    s.wa_pattern = 2;
  }
  return s;
}

// The encoder's embeddings of `img` and the float64 reference's, from the same pixels.
struct Encoded {
  vision::Pixels px;
  std::vector<float> got;
  std::vector<double> want;
};
Encoded encode_both(const Loaded& l, const testing::MmprojSpec& s, const Image& img) {
  Encoded e;
  auto px = l.m->preprocess(img);
  EXPECT_TRUE(px.ok()) << px.status().to_string();
  if (!px.ok()) return e;
  e.px = std::move(px).value();
  ThreadPool pool(2);
  EXPECT_TRUE(l.m->encode(e.px, pool, e.got).ok());
  auto f = GgufFile::parse(l.bytes.data(), l.bytes.size());
  e.want = testing::reference_image_embeddings(*f, s, e.px.chw, e.px.width, e.px.height);
  return e;
}

class ProjectorTest : public ::testing::TestWithParam<std::tuple<std::string, DType>> {};

TEST_P(ProjectorTest, EmbeddingsMatchFloat64Reference) {
  const auto [proj, dt] = GetParam();
  const testing::MmprojSpec s = spec_for(proj, dt);
  Loaded l = load_mmproj(s);
  ASSERT_TRUE(l.m);
  const auto& c = l.m->config();
  EXPECT_EQ(c.n_embd_text, s.n_embd_text);
  const Encoded e = encode_both(l, s, random_image(45, 31, 3));
  ASSERT_FALSE(e.got.empty());
  if (proj.rfind("qwen", 0) != 0) {
    ASSERT_EQ(e.px.width, s.image_size);
  }
  const std::vector<float>& got = e.got;
  const std::vector<double>& want = e.want;
  const int64_t n_tok = l.m->n_tokens(e.px.width, e.px.height);
  ASSERT_EQ(want.size(), (size_t)(n_tok * s.n_embd_text));
  ASSERT_EQ(got.size(), want.size());
  // F32 / F16 weights: activations stay float (F16 rows dot F32 activations); Q8_0: activations
  // are quantized to 8 bits per matmul.
  const double tol = dt == DType::Q8_0 ? 3e-2 : 2e-5;
  EXPECT_LT(rel_err(got, want), tol) << proj << " " << dtype_name(dt);
}

INSTANTIATE_TEST_SUITE_P(Families, ProjectorTest,
                         ::testing::Combine(::testing::Values("mlp", "gemma3", "idefics3", "qwen2vl_merger", "qwen2.5vl_merger"),
                                            ::testing::Values(DType::F32, DType::F16, DType::Q8_0)));

TEST(Projector, TokenCounts) {
  EXPECT_EQ(load_mmproj(spec_for("mlp", DType::F32)).m->n_tokens(32, 32), 16);      // (32/8)^2
  EXPECT_EQ(load_mmproj(spec_for("gemma3", DType::F32)).m->n_tokens(56, 56), 16);   // 8x8 pooled by 2
  EXPECT_EQ(load_mmproj(spec_for("idefics3", DType::F32)).m->n_tokens(32, 32), 4);  // 4x4 shuffled by 2
}

TEST(Projector, LegacyFfnNamesAndFeatureLayer) {
  testing::MmprojSpec s = spec_for("mlp", DType::F32);
  s.legacy_ffn_names = true;
  s.feature_layer = 2;  // three blocks in the file, two run
  Loaded l = load_mmproj(s);
  ASSERT_TRUE(l.m);
  EXPECT_EQ(l.m->config().n_layer, 2);
  const Encoded e = encode_both(l, s, random_image(20, 50, 9));
  ASSERT_EQ(e.got.size(), e.want.size());
  EXPECT_LT(rel_err(e.got, e.want), 2e-5);
}

TEST(Projector, BadFilesGetClearErrors) {
  auto text = testing::make_random_model(testing::TestModelSpec{});
  auto f = GgufFile::parse(text.data(), text.size(), "text.gguf");
  auto r = vision::VisionModel::from_gguf(std::move(f).value());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not a multimodal projector"), std::string::npos) << r.status().to_string();

  testing::MmprojSpec s = spec_for("mlp", DType::F32);
  auto bytes = testing::make_random_mmproj(s);
  GgufWriter w;  // the same file with an unknown projector type
  auto g = GgufFile::parse(bytes.data(), bytes.size());
  for (const auto& [k, v] : g->metadata()) w.set(k, k == "clip.projector_type" ? GgufValue::string("resampler") : v);
  for (const auto& t : g->tensors()) ASSERT_TRUE(w.add_tensor(t.name, t.dtype, t.shape, t.data, t.nbytes).ok());
  auto b2 = w.serialize();
  auto r2 = vision::VisionModel::from_gguf(GgufFile::parse(b2.data(), b2.size()).value());
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(r2.status().message().find("resampler"), std::string::npos);

  GgufWriter w3;  // a missing tensor
  for (const auto& [k, v] : g->metadata()) w3.set(k, v);
  for (const auto& t : g->tensors()) {
    if (t.name != "v.blk.1.attn_k.weight") {
      ASSERT_TRUE(w3.add_tensor(t.name, t.dtype, t.shape, t.data, t.nbytes).ok());
    }
  }
  auto b3 = w3.serialize();
  auto r3 = vision::VisionModel::from_gguf(GgufFile::parse(b3.data(), b3.size()).value());
  ASSERT_FALSE(r3.ok());
  EXPECT_NE(r3.status().message().find("v.blk.1.attn_k.weight"), std::string::npos);

  Loaded l = load_mmproj(s);  // a wrong-size input
  vision::Pixels px;
  px.width = px.height = 40;
  px.chw.assign(3 * 40 * 40, 0.0f);
  ThreadPool pool(1);
  std::vector<float> out;
  EXPECT_EQ(l.m->encode(px, pool, out).code(), StatusCode::kInvalidArgument);
}

// --- tiled images: LLaVA-NeXT / OneVision anyres and Idefics3 splitting --------------------------

std::vector<uint8_t> concat(const vision::Tiles& t, bool global_first) {
  std::vector<uint8_t> out;
  if (global_first) out = t.global.rgb;
  for (const Image& g : t.grid) out.insert(out.end(), g.rgb.begin(), g.rgb.end());
  if (!global_first) out.insert(out.end(), t.global.rgb.begin(), t.global.rgb.end());
  return out;
}

TEST(Preprocess, BestResolutionMatchesLlavaNext) {
  int n = 0;
  const nlohmann::json all = cases();
  for (const auto& c : all["best_resolution"]) {
    std::vector<std::pair<int, int>> pins;
    for (const auto& p : all["pinpoints"][c["pins"].get<std::string>()]) pins.emplace_back(p[0].get<int>(), p[1].get<int>());
    const auto got = vision::select_best_resolution(c["h"], c["w"], pins);
    EXPECT_EQ(got.first, c["out"][0].get<int>()) << c["h"] << "x" << c["w"];
    EXPECT_EQ(got.second, c["out"][1].get<int>()) << c["h"] << "x" << c["w"];
    ++n;
  }
  EXPECT_EQ(n, 16);
}

TEST(Preprocess, TilesMatchTheHfProcessors) {
  int n = 0;
  const nlohmann::json all = cases();
  for (const auto& c : all["tiles"]) {
    const Image src = load(c["src"]);
    Result<vision::Tiles> t = [&] {
      if (c["kind"] == "anyres") {
        std::vector<std::pair<int, int>> pins;
        for (const auto& p : all["pinpoints"][c["pins"].get<std::string>()]) pins.emplace_back(p[0].get<int>(), p[1].get<int>());
        return vision::anyres_tiles(src, pins, c["tile"], vision::Resample::kBicubic);
      }
      return vision::idefics3_tiles(src, c["longest"], c["tile"], vision::Resample::kLanczos);
    }();
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    EXPECT_EQ(t->rows, c["rows"].get<int>()) << c.dump();
    EXPECT_EQ(t->cols, c["cols"].get<int>()) << c.dump();
    EXPECT_EQ(concat(*t, c["kind"] == "anyres"), slurp(kData + "/" + c["out"].get<std::string>())) << c.dump();
    ++n;
  }
  EXPECT_EQ(n, 6);
  Image empty;
  EXPECT_FALSE(vision::anyres_tiles(empty, {{16, 16}}, 16, vision::Resample::kBicubic).ok());
  EXPECT_FALSE(vision::anyres_tiles(random_image(9, 9, 1), {{20, 16}}, 16, vision::Resample::kBicubic).ok());
  // So thin that every canvas keeps 0 pixels of it (HF finds no canvas): the first canvas is used.
  auto thin = vision::anyres_tiles(random_image(4000, 1, 2), {{16, 32}, {32, 16}}, 16, vision::Resample::kBicubic);
  ASSERT_TRUE(thin.ok()) << thin.status().to_string();
  EXPECT_EQ(thin->rows * thin->cols, 2);
  auto split = vision::idefics3_tiles(random_image(4000, 1, 2), 40, 16, vision::Resample::kLanczos);
  ASSERT_TRUE(split.ok());
  for (const Image& g : split->grid) EXPECT_EQ(g.width * g.height, 256);
}

enum class Tiling { kLlavaNext, kOneVision, kIdefics3 };

testing::MmprojSpec tiled_spec(Tiling k, DType dt) {
  testing::MmprojSpec s = spec_for(k == Tiling::kIdefics3 ? "idefics3" : "mlp", dt);
  if (k == Tiling::kIdefics3) {
    s.preproc_image_size = 80;  // a 45 x 31 image: 80 x 56, then 96 x 96: 3 x 3 tiles of 32
  } else {
    s.grid_pinpoints = {{32, 64}, {64, 32}, {64, 64}, {96, 32}, {32, 96}, {96, 96}};
    s.image_newline = true;
    if (k == Tiling::kOneVision) {
      s.class_token = false;  // a SigLIP tower: no class token, no pre-norm
      s.use_gelu = true;
      s.anyres_max = 2;  // 3 x 3 tiles unpadded to 10 x 12 patches, shrunk to 5 x 6
    }
  }
  return s;
}

// embed_image on a tiled family and the float64 reference from the same crops.
Encoded encode_tiled(const Loaded& l, const testing::MmprojSpec& s, const Image& img, vision::ImageEmbedding* emb) {
  Encoded e;
  ThreadPool pool(2);
  auto r = vision::embed_image(*l.m, img, pool);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  if (!r.ok()) return e;
  e.got = r->embd;
  const auto& c = l.m->config();
  auto t = s.projector == "idefics3"
               ? vision::idefics3_tiles(img, (int)s.preproc_image_size, (int)s.image_size, c.pre.resample)
               : vision::anyres_tiles(img, s.grid_pinpoints, (int)s.image_size, c.pre.resample);
  EXPECT_TRUE(t.ok());
  std::vector<std::vector<float>> views;
  auto add = [&](const Image& v) { views.push_back(vision::normalize(v, c.pre).chw); };
  if (s.projector != "idefics3") add(t->global);
  for (const Image& g : t->grid) add(g);
  if (s.projector == "idefics3") add(t->global);
  auto f = GgufFile::parse(l.bytes.data(), l.bytes.size());
  e.want = testing::reference_tiled_embeddings(*f, s, views, t->rows, t->cols, img.width, img.height);
  if (emb) *emb = std::move(r).value();
  return e;
}

class TiledTest : public ::testing::TestWithParam<std::tuple<Tiling, DType>> {};

TEST_P(TiledTest, EmbeddingsMatchFloat64Reference) {
  const auto [kind, dt] = GetParam();
  const testing::MmprojSpec s = tiled_spec(kind, dt);
  Loaded l = load_mmproj(s);
  ASSERT_TRUE(l.m);
  const Image img = random_image(kind == Tiling::kOneVision ? 90 : 45, kind == Tiling::kOneVision ? 70 : 31, 5);
  vision::ImageEmbedding emb;
  const Encoded e = encode_tiled(l, s, img, &emb);
  ASSERT_FALSE(e.got.empty());
  ASSERT_EQ(e.got.size(), e.want.size());
  const int64_t per = l.m->n_tokens((int)s.image_size, (int)s.image_size);
  if (kind == Tiling::kIdefics3) {
    EXPECT_EQ(emb.n_encoder_runs, 10);
    EXPECT_EQ(emb.n_tokens, 10 * per);
  } else if (kind == Tiling::kLlavaNext) {
    // 45 x 31 -> canvas 32 x 64 (1 x 2 tiles, 4 x 8 patches); unpad keeps int(45 * 4 / 31) = 5 of
    // the 8 columns, cutting (8 - 5) / 2 = 1 from each side: 4 rows of 6, each with its newline
    EXPECT_EQ(emb.n_encoder_runs, 3);
    EXPECT_EQ(emb.n_tokens, per + 4 * (6 + 1));
  } else {
    EXPECT_EQ(emb.n_encoder_runs, 10);
    EXPECT_EQ(emb.n_tokens, per + 5 * (6 + 1));
  }
  const double tol = dt == DType::Q8_0 ? 3e-2 : 2e-5;
  EXPECT_LT(rel_err(e.got, e.want), tol);
}

INSTANTIATE_TEST_SUITE_P(Families, TiledTest,
                         ::testing::Combine(::testing::Values(Tiling::kLlavaNext, Tiling::kOneVision, Tiling::kIdefics3),
                                            ::testing::Values(DType::F32, DType::F16, DType::Q8_0)));

TEST(Tiled, Idefics3PromptTextIsTheProcessors) {
  const testing::MmprojSpec s = tiled_spec(Tiling::kIdefics3, DType::F32);
  Loaded l = load_mmproj(s);
  ASSERT_TRUE(l.m);
  ThreadPool pool(1);
  auto emb = vision::embed_image(*l.m, random_image(45, 31, 5), pool);
  ASSERT_TRUE(emb.ok()) << emb.status().to_string();
  std::string got;
  for (const auto& seg : emb->segments) {
    got += seg.text;
    for (int64_t i = 0; i < seg.n_tokens; ++i) got += "<image>";
  }
  got += emb->text_after;
  // Idefics3Processor._prompt_split_image for 3 rows x 3 columns of 4-token tiles.
  const std::string img4 = "<image><image><image><image>", fake = "<fake_token_around_image>";
  std::string want;
  for (int r = 1; r <= 3; ++r) {
    for (int c = 1; c <= 3; ++c) want += fake + "<row_" + std::to_string(r) + "_col_" + std::to_string(c) + ">" + img4;
    want += "\n";
  }
  want += "\n" + fake + "<global-img>" + img4 + fake;
  EXPECT_EQ(got, want);
}

// --- image embeddings through a text model ------------------------------------------------------

// Greedy tokens after a prompt of text, one image (one run of embeddings, or a tiled image's runs
// with a text token before each), and text: modu's Model::forward with the image spans against
// reference_logits with the reference embeddings.
struct Segment {
  int64_t n = 0, grid_w = 0, grid_h = 0;
};
void check_greedy_with(const testing::MmprojSpec& vs, const std::string& arch, const Encoded& enc,
                       const std::vector<Segment>& segs, bool bidir, bool mrope) {
  const std::string& proj = vs.projector;
  testing::TestModelSpec ts;
  ts.arch = arch;
  ts.n_embd = vs.n_embd_text;
  if (arch == "gemma3") {
    ts.post_norms = ts.gelu = ts.embd_scale = ts.tied_output = ts.qk_norm = true;
    ts.n_swa = 7;  // the window is shorter than the image: the span still sees itself whole
    ts.n_layer = 7;  // five windowed layers, then a global one
    ts.swa_pattern = 6;
    ts.rope_theta = 1e6;
    ts.rope_theta_swa = 10000;
    ts.scaling = "linear";
    ts.scaling_factor = 4.0;
    ts.attn_scale = 0.2;
  }
  if (arch == "qwen2vl") {  // (Qwen2.5-VL's text model is the same architecture)
    ts.qkv_bias = true;
    ts.rope_sections = {2, 3, 3, 0};  // head_dim 16: 8 rotary pairs (t, h, w)
    ASSERT_GT(segs[0].grid_w, 1);
    ASSERT_NE(segs[0].grid_w * segs[0].grid_h, std::max(segs[0].grid_w, segs[0].grid_h));  // the text after is shifted
  }
  ASSERT_FALSE(enc.got.empty());
  ASSERT_EQ(enc.got.size(), enc.want.size());
  ThreadPool pool(2);
  auto text = testing::make_random_model(ts);
  auto model = Model::from_gguf(GgufFile::parse(text.data(), text.size()).value());
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  const int64_t dt = vs.n_embd_text;
  std::vector<int32_t> tokens = {1, 5, 9};
  std::vector<EmbdSpan> mspans;
  std::vector<testing::RefEmbdSpan> rspans;
  int64_t row = 0;
  for (size_t k = 0; k < segs.size(); ++k) {
    if (segs.size() > 1) tokens.push_back(13 + (int32_t)k);  // the text before each tile (Idefics3's row/col tokens)
    const int64_t begin = (int64_t)tokens.size(), n = segs[k].n;
    for (int64_t i = 0; i < n; ++i) tokens.push_back(0);
    mspans.push_back({begin, n, enc.got.data() + row * dt, bidir, mrope, segs[k].grid_w, segs[k].grid_h});
    rspans.push_back({begin, n, std::vector<double>(enc.want.begin() + row * dt, enc.want.begin() + (row + n) * dt), bidir,
                      mrope, segs[k].grid_w, segs[k].grid_h});
    row += n;
  }
  ASSERT_EQ((size_t)(row * dt), enc.got.size());
  for (int32_t t : {7, 3, 11}) tokens.push_back(t);

  KvCache kv((*model)->config(), 1, 256, KvType::kF32);
  std::vector<BatchToken> batch;
  for (size_t i = 0; i < tokens.size(); ++i) {
    BatchToken b{tokens[i], (int64_t)i, 0, i + 1 == tokens.size()};
    place_in_spans(b, mspans, vs.n_embd_text);
    if (b.embd != nullptr) b.token = -1 - (int32_t)i;  // placeholders are never read
    batch.push_back(b);
  }
  std::vector<float> logits;
  std::vector<int32_t> got, want;
  auto ref_tokens = tokens;
  for (int step = 0; step < 5; ++step) {
    ASSERT_TRUE((*model)->forward(batch, kv, pool, logits).ok());
    const int32_t next = (int32_t)(std::max_element(logits.begin(), logits.end()) - logits.begin());
    got.push_back(next);
    batch = {BatchToken{next, (int64_t)(tokens.size() + step), 0, true}};
    place_in_spans(batch[0], mspans, vs.n_embd_text);
    const auto ref = testing::reference_logits(*GgufFile::parse(text.data(), text.size()), ts, ref_tokens, rspans);
    const auto& last = ref.back();
    want.push_back((int32_t)(std::max_element(last.begin(), last.end()) - last.begin()));
    ref_tokens.push_back(want.back());
    if (step == 0) {  // the first step's logits themselves
      double worst = 0, scale = 0;
      for (size_t v = 0; v < last.size(); ++v) {
        worst = std::max(worst, std::fabs(logits[v] - last[v]));
        scale = std::max(scale, std::fabs(last[v]));
      }
      EXPECT_LT(worst, 2e-3 * std::max(1.0, scale)) << proj << " on " << arch;
    }
    if (got.back() != want.back()) break;
  }
  EXPECT_EQ(got, want) << proj << " on " << arch;
}

void check_greedy(const std::string& proj, const std::string& arch) {
  testing::MmprojSpec vs = spec_for(proj, DType::F32);
  Loaded l = load_mmproj(vs);
  ASSERT_TRUE(l.m);
  const Encoded enc = encode_both(l, vs, random_image(40, 40, 11));
  const bool mrope = l.m->markers().mrope;
  Segment seg{(int64_t)enc.got.size() / vs.n_embd_text, 0, 0};
  if (mrope) {
    seg.grid_w = enc.px.width / (2 * vs.patch_size);
    seg.grid_h = enc.px.height / (2 * vs.patch_size);
  }
  check_greedy_with(vs, arch, enc, {seg}, l.m->markers().bidirectional, mrope);
}

TEST(VisionText, LlavaImageThenGreedyText) { check_greedy("mlp", "llama"); }
TEST(VisionText, Gemma3BidirectionalImageThenGreedyText) { check_greedy("gemma3", "gemma3"); }
TEST(VisionText, Idefics3ImageThenGreedyText) { check_greedy("idefics3", "llama"); }
TEST(VisionText, Qwen2VlImageWithMropeThenGreedyText) { check_greedy("qwen2vl_merger", "qwen2vl"); }
TEST(VisionText, Qwen25VlWindowedImageThenGreedyText) { check_greedy("qwen2.5vl_merger", "qwen2vl"); }

TEST(VisionText, BidirectionalSpanMustBeInOneBatch) {
  testing::TestModelSpec ts;
  auto text = testing::make_random_model(ts);
  auto model = Model::from_gguf(GgufFile::parse(text.data(), text.size()).value());
  ASSERT_TRUE(model.ok());
  KvCache kv((*model)->config(), 1, 64, KvType::kF32);
  std::vector<float> e(ts.n_embd, 0.1f), logits;
  ThreadPool pool(1);
  BatchToken b{-1, 0, 0, true};
  b.embd = e.data();
  b.attn_end = 4;  // positions 1..3 are not in this batch
  EXPECT_EQ((*model)->forward({b}, kv, pool, logits).code(), StatusCode::kInvalidArgument);
}

// A tiled image (its runs of embeddings, each after its text) through a text model.
void check_tiled_greedy(Tiling kind, int w, int h, size_t n_segments) {
  const testing::MmprojSpec s = tiled_spec(kind, DType::F32);
  Loaded l = load_mmproj(s);
  ASSERT_TRUE(l.m);
  vision::ImageEmbedding emb;
  const Encoded e = encode_tiled(l, s, random_image(w, h, 5), &emb);
  std::vector<Segment> segs;
  for (const auto& sg : emb.segments) segs.push_back({sg.n_tokens, sg.grid_w, sg.grid_h});
  ASSERT_EQ(segs.size(), n_segments);
  check_greedy_with(s, "llama", e, segs, false, false);
}

TEST(VisionText, OneVisionTiledImageThenGreedyText) { check_tiled_greedy(Tiling::kOneVision, 90, 70, 1); }
TEST(VisionText, Idefics3SplitImageThenGreedyText) { check_tiled_greedy(Tiling::kIdefics3, 45, 31, 10); }

}  // namespace
}  // namespace modu
