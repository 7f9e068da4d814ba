// `modu info`: what a GGUF model is (architecture, size, dtypes, context, tokenizer, memory needed).
#include <algorithm>
#include <cstdio>
#include <map>

#include <nlohmann/json.hpp>

#include "common.h"
#include "modu/hf/hf_model.h"
#include "modu/vision/vision_model.h"

namespace modu::cli {

namespace {

const char* mode_name(vision::PreprocessConfig::Mode m) {
  using M = vision::PreprocessConfig::Mode;
  switch (m) {
    case M::kSquare: return "resize to a square";
    case M::kShortestEdgeCrop: return "shortest edge, centre crop";
    case M::kLongestEdgeSquare: return "longest edge, then a square";
    case M::kSmartResize: return "smart resize";
  }
  return "?";
}

// A vision projector (mmproj): encoder, projector, tokens per image, preprocessing, memory.
int info_projector(const std::string& path, nlohmann::ordered_json& j, bool as_json) {
  auto m = load_projector(path);
  if (!m.ok()) return fail(m.status());
  const vision::VisionConfig& c = (*m)->config();
  const int64_t side = c.image_size, n_tok = (*m)->n_tokens((int)side, (int)side);
  const int64_t n_patch = c.patches_per_side() * c.patches_per_side() + (c.class_token ? 1 : 0);
  // Activations of one image: x, h, q, k, v, attention output [n, width] and the FFN [n, ff] in F32.
  const size_t work = (size_t)n_patch * (6 * c.n_embd + c.n_ff) * 4;
  j["architecture"] = "clip";
  j["projector"] = c.projector;
  j["projector_description"] = (*m)->description();
  j["image_size"] = side;
  j["patch_size"] = c.patch_size;
  j["encoder"] = {{"width", c.n_embd}, {"layers", c.n_layer}, {"heads", c.n_head}, {"feed_forward_length", c.n_ff},
                  {"activation", vision::vit_act_name(c.act)}, {"layer_norm_epsilon", c.eps}};
  j["tokens_per_image"] = n_tok;
  j["output_width"] = c.n_embd_text;
  j["preprocess"] = {{"mode", mode_name(c.pre.mode)}, {"resample", vision::resample_name(c.pre.resample)},
                     {"mean", c.pre.mean}, {"std", c.pre.std}};
  // Tiled families: how an image becomes several encoder inputs.
  std::string tiling;
  if (!c.pre.grid_pinpoints.empty()) {
    int max_tiles = 0;
    for (const auto& [h, w] : c.pre.grid_pinpoints) max_tiles = std::max<int>(max_tiles, (h / c.image_size) * (w / c.image_size));
    tiling = "anyres: the best of " + std::to_string(c.pre.grid_pinpoints.size()) + " canvases (up to " +
             std::to_string(max_tiles) + " tiles) + a global view; padding cut, rows end in a newline" +
             (c.anyres_max > 0 ? ", grid shrunk to about " + std::to_string(c.anyres_max) + " tiles" : std::string());
    j["tiling"] = {{"kind", "anyres"}, {"canvases", c.pre.grid_pinpoints.size()}, {"max_tiles", max_tiles},
                   {"anyres_max", c.anyres_max}};
  } else if (c.pre.split) {
    tiling = "split: longest edge to " + std::to_string(c.pre.longest_edge) + ", then " + std::to_string(c.image_size) +
             "-pixel tiles + a global view";
    j["tiling"] = {{"kind", "split"}, {"longest_edge", c.pre.longest_edge}};
  }
  j["memory_needed_bytes"] = j["weight_bytes"].get<size_t>() + work;
  if (as_json) {
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("file:          %s (GGUF, %.3f GB)\n", path.c_str(), j["file_bytes"].get<size_t>() / 1e9);
  std::printf("projector:     %s: %s\n", c.projector.c_str(), (*m)->description().c_str());
  std::printf("encoder:       width %lld, layers %lld, heads %lld, ffn %lld, %s\n", (long long)c.n_embd,
              (long long)c.n_layer, (long long)c.n_head, (long long)c.n_ff, vision::vit_act_name(c.act));
  if (c.pre.mode == vision::PreprocessConfig::Mode::kSmartResize)
    std::printf("image:         dynamic resolution, %lld to %lld pixels in multiples of %d; a 448 x 448 image -> %lld tokens "
                "of width %lld\n", (long long)c.pre.min_pixels, (long long)c.pre.max_pixels, c.pre.factor,
                (long long)(*m)->n_tokens(448, 448), (long long)c.n_embd_text);
  else
    std::printf("image:         %lld x %lld pixels, patch %lld -> %lld tokens of width %lld per image\n", (long long)side,
                (long long)side, (long long)c.patch_size, (long long)n_tok, (long long)c.n_embd_text);
  if (!tiling.empty()) std::printf("tiles:         %s (tokens per tile above)\n", tiling.c_str());
  std::printf("preprocess:    %s, %s, mean %.4g %.4g %.4g, std %.4g %.4g %.4g\n", mode_name(c.pre.mode),
              vision::resample_name(c.pre.resample), c.pre.mean[0], c.pre.mean[1], c.pre.mean[2], c.pre.std[0],
              c.pre.std[1], c.pre.std[2]);
  std::printf("parameters:    %lld (%.1f M)\n", (long long)j["parameters"].get<int64_t>(), j["parameters"].get<int64_t>() / 1e6);
  std::printf("memory:        weights %.3f GB + one image's activations %.3f GB\n", j["weight_bytes"].get<size_t>() / 1e9,
              work / 1e9);
  return 0;
}

int info(const std::string& path, bool as_json) {
  auto file = open_model_path(path);  // GGUF file or Hugging Face folder
  if (!file.ok()) return fail(file.status());
  const GgufFile& f = *file;
  nlohmann::ordered_json j;
  j["file"] = path;
  j["gguf_version"] = f.version();
  j["file_bytes"] = f.file_size();
  auto name = f.get_string("general.name", std::string());
  j["name"] = name.ok() ? *name : "";
  std::map<std::string, int64_t> by_type;
  int64_t n_params = 0;
  size_t bytes = 0;
  for (const auto& t : f.tensors()) {
    by_type[dtype_name(t.dtype)] += t.n_elements();
    n_params += t.n_elements();
    bytes += t.nbytes;
  }
  j["parameters"] = n_params;
  j["weight_bytes"] = bytes;
  j["tensors"] = f.tensors().size();
  j["dtypes"] = by_type;
  if (auto arch = f.get_string("general.architecture", std::string()); arch.ok() && *arch == "clip")
    return info_projector(path, j, as_json);
  auto cfg = read_model_config(f);
  if (cfg.ok()) {
    const ModelConfig& c = *cfg;
    j["architecture"] = c.arch.name;
    j["context_length"] = c.n_ctx_train;
    j["embedding_length"] = c.n_embd;
    j["layers"] = c.n_layer;
    j["heads"] = c.n_head;
    j["kv_heads"] = c.n_head_kv;
    j["head_dim"] = c.head_dim;
    j["feed_forward_length"] = c.n_ff;
    j["vocab_size"] = c.n_vocab;
    j["rope_theta"] = c.rope_theta;
    j["rope_scaling"] = rope_scaling_name(c.rope_scaling);
    // The cache's own layout (sliding-window layers keep only their window's ring).
    const size_t kv_bytes = KvCache::bytes_for(c, 1, c.n_ctx_train, KvType::kF16);
    j["kv_cache_bytes_f16_full_context"] = kv_bytes;
    // Working buffers of one forward pass of 512 tokens: activations and logits, in F32.
    const size_t work = (size_t)512 * (4 * c.n_embd + 2 * c.n_ff + 2 * c.n_head * c.head_dim) * 4 + (size_t)c.n_vocab * 4;
    j["memory_needed_bytes"] = bytes + kv_bytes + work;
  } else {
    auto arch = f.get_string("general.architecture", std::string("unknown"));
    j["architecture"] = arch.ok() ? *arch : "unknown";
    j["supported"] = false;
    j["error"] = cfg.status().message();
  }
  auto tok_model = f.get_string("tokenizer.ggml.model", std::string());
  auto tok_pre = f.get_string("tokenizer.ggml.pre", std::string());
  const GgufValue* toks = f.find("tokenizer.ggml.tokens");
  j["tokenizer"] = {{"model", tok_model.ok() ? *tok_model : ""}, {"pre", tok_pre.ok() ? *tok_pre : ""},
                    {"tokens", toks && toks->is_array() ? toks->size() : 0}};
  j["chat_template"] = f.find("tokenizer.chat_template") != nullptr;
  if (as_json) {
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  auto gb = [](double b) { return b / 1e9; };
  std::printf("file:          %s (GGUF v%u, %.3f GB)\n", path.c_str(), f.version(), gb((double)f.file_size()));
  if (!j["name"].get<std::string>().empty()) std::printf("name:          %s\n", j["name"].get<std::string>().c_str());
  std::printf("architecture:  %s%s\n", j["architecture"].get<std::string>().c_str(), cfg.ok() ? "" : " (not supported)");
  std::printf("parameters:    %lld (%.2f B)\n", (long long)n_params, n_params / 1e9);
  std::printf("dtypes:       ");
  for (const auto& [k, v] : by_type) std::printf(" %s %.1f%%", k.c_str(), 100.0 * v / std::max<int64_t>(1, n_params));
  std::printf("\n");
  if (cfg.ok()) {
    const ModelConfig& c = *cfg;
    std::printf("shape:         d_model %lld, layers %lld, heads %lld/%lld (head_dim %lld), ffn %lld, vocab %lld\n",
                (long long)c.n_embd, (long long)c.n_layer, (long long)c.n_head, (long long)c.n_head_kv,
                (long long)c.head_dim, (long long)c.n_ff, (long long)c.n_vocab);
    std::printf("context:       %lld (rope theta %g, scaling %s)\n", (long long)c.n_ctx_train, c.rope_theta,
                rope_scaling_name(c.rope_scaling));
    std::printf("memory:        weights %.3f GB + KV cache %.3f GB (F16, full context) + buffers = %.3f GB\n",
                gb((double)bytes), gb((double)j["kv_cache_bytes_f16_full_context"].get<size_t>()),
                gb((double)j["memory_needed_bytes"].get<size_t>()));
  } else {
    std::printf("note:          %s\n", cfg.status().message().c_str());
  }
  std::printf("tokenizer:     %s%s%s, %zu tokens\n", j["tokenizer"]["model"].get<std::string>().c_str(),
              j["tokenizer"]["pre"].get<std::string>().empty() ? "" : " / pre ",
              j["tokenizer"]["pre"].get<std::string>().c_str(), j["tokenizer"]["tokens"].get<size_t>());
  std::printf("chat template: %s\n", j["chat_template"].get<bool>() ? "yes" : "no");
  return 0;
}

}  // namespace

void add_info_command(CLI::App& app, int& rc) {
  auto path = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  CLI::App* c = app.add_subcommand("info", "Describe a GGUF model: architecture, size, dtypes, context, memory");
  c->add_option("file", *path, "GGUF file or Hugging Face folder")->required()->check(CLI::ExistingPath);
  c->add_flag("--json", *as_json, "Print one JSON object");
  c->callback([path, as_json, &rc] { rc = info(*path, *as_json); });
}

}  // namespace modu::cli
