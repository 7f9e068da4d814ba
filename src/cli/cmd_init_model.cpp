// `modu init-model`: write a randomly initialized Llama-family model with modu's GGUF writer, for
// benchmarks at real shapes (speed does not depend on weight values) and as a demo before training.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "common.h"
#include "modu/vision/random_mmproj.h"
#include "modu/vision/vision_model.h"

namespace modu::cli {

namespace {

struct InitArgs {
  std::string out;
  std::string preset = "tiny";
  std::string arch = "llama";
  std::string vocab_from;
  std::string chat_template;  // file whose text becomes tokenizer.chat_template
  std::string type = "f16";
  int64_t d_model = 0, layers = 0, ff = 0, heads = 0, kv_heads = 0, ctx = 0;
  uint64_t seed = 1;
};

// Fast deterministic normal numbers (xoshiro-style mixing + Box-Muller): a billion draws in
// seconds, the same on every machine for the same seed.
class Normal {
 public:
  explicit Normal(uint64_t seed) : s_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  float operator()() {
    if (has_spare_) { has_spare_ = false; return spare_; }
    const double u1 = ((next() >> 11) + 1) * (1.0 / 9007199254740993.0);
    const double u2 = (next() >> 11) * (1.0 / 9007199254740992.0);
    const double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = (float)(r * std::sin(2 * M_PI * u2));
    has_spare_ = true;
    return (float)(r * std::cos(2 * M_PI * u2));
  }

 private:
  uint64_t next() {  // splitmix64
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t s_;
  bool has_spare_ = false;
  float spare_ = 0;
};

int init_model(InitArgs a) {
  struct Shape { int64_t d, layers, ff, heads, kv, ctx; };
  auto defaults = [&a](const Shape& s) {  // a preset fills only what the flags left unset
    for (auto [field, v] : {std::pair{&a.d_model, s.d}, std::pair{&a.layers, s.layers}, std::pair{&a.ff, s.ff},
                            std::pair{&a.heads, s.heads}, std::pair{&a.kv_heads, s.kv}, std::pair{&a.ctx, s.ctx}})
      if (*field == 0) *field = v;
  };
  if (a.preset == "bench-1b") {
    defaults(Shape{2048, 16, 8192, 32, 8, 4096});
  } else if (a.preset == "tiny") {
    defaults(Shape{256, 4, 768, 8, 4, 2048});
  } else {
    return fail(invalid_argument("unknown preset '" + a.preset + "' (tiny, bench-1b)"));
  }
  if (a.d_model % a.heads != 0 || a.heads % a.kv_heads != 0)
    return fail(invalid_argument("d_model must be divisible by heads, and heads by kv-heads"));
  auto type = dtype_from_name(a.type);
  if (!type.ok()) return fail(type.status());
  if (find_arch(a.arch) == nullptr) return fail(invalid_argument("unknown architecture '" + a.arch + "'"));

  GgufWriter w;
  const std::string p = a.arch + ".";
  w.set("general.architecture", GgufValue::string(a.arch));
  w.set("general.name", GgufValue::string("modu random " + a.preset));
  int64_t n_vocab = 259;
  if (!a.vocab_from.empty()) {
    auto vf = GgufFile::open(a.vocab_from);
    if (!vf.ok()) return fail(vf.status());
    for (const auto& [k, v] : vf->metadata())
      if (k.rfind("tokenizer.", 0) == 0) w.set(k, v);
    const GgufValue* toks = vf->find("tokenizer.ggml.tokens");
    if (toks == nullptr || !toks->is_array()) return fail(invalid_argument(a.vocab_from + " has no tokenizer.ggml.tokens"));
    n_vocab = (int64_t)toks->size();
  } else {
    write_byte_vocab(w);
  }
  if (!a.chat_template.empty()) {
    std::ifstream f(a.chat_template, std::ios::binary);
    std::stringstream text;
    text << f.rdbuf();
    if (!f.good() && !f.eof()) return fail(io_error("cannot read the chat template " + a.chat_template));
    w.set("tokenizer.chat_template", GgufValue::string(text.str()));
  }
  const int64_t hd = a.d_model / a.heads;
  w.set(p + "context_length", GgufValue::u32((uint32_t)a.ctx));
  w.set(p + "embedding_length", GgufValue::u32((uint32_t)a.d_model));
  w.set(p + "block_count", GgufValue::u32((uint32_t)a.layers));
  w.set(p + "feed_forward_length", GgufValue::u32((uint32_t)a.ff));
  w.set(p + "attention.head_count", GgufValue::u32((uint32_t)a.heads));
  w.set(p + "attention.head_count_kv", GgufValue::u32((uint32_t)a.kv_heads));
  w.set(p + "attention.layer_norm_rms_epsilon", GgufValue::f32(1e-5f));
  w.set(p + "rope.freq_base", GgufValue::f32(10000.0f));
  w.set(p + "rope.dimension_count", GgufValue::u32((uint32_t)hd));
  w.set(p + "vocab_size", GgufValue::u32((uint32_t)n_vocab));
  if (a.arch == "qwen3") w.set(p + "attention.key_length", GgufValue::u32((uint32_t)hd));

  Normal rnd(a.seed);
  std::vector<float> buf;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float mean, float sd, DType dt) -> Status {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    buf.resize(n);
    for (auto& x : buf) x = mean + sd * rnd();
    if (shape.size() == 1 || shape[0] % dtype_traits(dt)->block_size != 0) dt = shape.size() == 1 ? DType::F32 : DType::F16;
    return w.add_tensor_f32(name, dt, shape, buf.data());
  };
  const int64_t d = a.d_model, qd = a.heads * hd, kvd = a.kv_heads * hd;
  Status s = add("token_embd.weight", {d, n_vocab}, 0, 1.0f, *type);
  if (s.ok()) s = add("output_norm.weight", {d}, 1, 0.1f, DType::F32);
  if (s.ok()) s = add("output.weight", {d, n_vocab}, 0, 0.03f, *type);
  for (int64_t l = 0; s.ok() && l < a.layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    progress("modu: layer " + std::to_string(l + 1) + "/" + std::to_string(a.layers));
    s = add(b + "attn_norm.weight", {d}, 1, 0.1f, DType::F32);
    if (s.ok()) s = add(b + "attn_q.weight", {d, qd}, 0, 0.03f, *type);
    if (s.ok()) s = add(b + "attn_k.weight", {d, kvd}, 0, 0.03f, *type);
    if (s.ok()) s = add(b + "attn_v.weight", {d, kvd}, 0, 0.03f, *type);
    if (s.ok() && a.arch == "qwen2") {
      s = add(b + "attn_q.bias", {qd}, 0, 0.03f, DType::F32);
      if (s.ok()) s = add(b + "attn_k.bias", {kvd}, 0, 0.03f, DType::F32);
      if (s.ok()) s = add(b + "attn_v.bias", {kvd}, 0, 0.03f, DType::F32);
    }
    if (s.ok() && a.arch == "qwen3") {
      s = add(b + "attn_q_norm.weight", {hd}, 1, 0.1f, DType::F32);
      if (s.ok()) s = add(b + "attn_k_norm.weight", {hd}, 1, 0.1f, DType::F32);
    }
    if (s.ok()) s = add(b + "attn_output.weight", {qd, d}, 0, 0.03f, *type);
    if (s.ok()) s = add(b + "ffn_norm.weight", {d}, 1, 0.1f, DType::F32);
    if (s.ok()) s = add(b + "ffn_gate.weight", {d, a.ff}, 0, 0.03f, *type);
    if (s.ok()) s = add(b + "ffn_up.weight", {d, a.ff}, 0, 0.03f, *type);
    if (s.ok()) s = add(b + "ffn_down.weight", {a.ff, d}, 0, 0.03f, *type);
  }
  if (s.ok()) s = w.write(a.out);
  if (!s.ok()) return fail(s);
  progress_done();
  std::fprintf(stderr, "modu: wrote %s (%s, random weights, %s)\n", a.out.c_str(), a.preset.c_str(), a.type.c_str());
  return 0;
}

}  // namespace

void add_init_model_command(CLI::App& app, int& rc) {
  auto a = std::make_shared<InitArgs>();
  CLI::App* c = app.add_subcommand("init-model", "Write a randomly initialized model (benchmark shapes, demos)");
  c->add_option("-o,--output", a->out, "Output GGUF")->required();
  c->add_option("--preset", a->preset, "Shape preset: tiny, bench-1b")->capture_default_str();
  c->add_option("--arch", a->arch, "Architecture: llama, mistral, qwen2, qwen3")->capture_default_str();
  c->add_option("--vocab-from", a->vocab_from, "Copy the tokenizer from this GGUF (default: a byte vocabulary)");
  c->add_option("--chat-template", a->chat_template, "Jinja chat template file to store in the model")->check(CLI::ExistingFile);
  c->add_option("--type", a->type, "Weight dtype")->capture_default_str();
  c->add_option("--d-model", a->d_model, "Override: embedding size");
  c->add_option("--layers", a->layers, "Override: layers");
  c->add_option("--ff", a->ff, "Override: feed-forward size");
  c->add_option("--heads", a->heads, "Override: attention heads");
  c->add_option("--kv-heads", a->kv_heads, "Override: KV heads");
  c->add_option("--ctx", a->ctx, "Override: context length");
  c->add_option("--seed", a->seed, "Random seed")->capture_default_str();
  c->callback([a, &rc] { rc = init_model(*a); });
}

// `modu init-mmproj`: a random-weight vision projector (llama.cpp mmproj layout) whose output
// width matches a text model, for tests, demos and encoder benchmarks at real shapes.
void add_init_mmproj_command(CLI::App& app, int& rc) {
  auto s = std::make_shared<vision::MmprojSpec>();
  auto out = std::make_shared<std::string>();
  auto type = std::make_shared<std::string>("f16");
  CLI::App* c = app.add_subcommand("init-mmproj", "Write a randomly initialized vision projector (mmproj)");
  c->add_option("-o,--output", *out, "Output GGUF")->required();
  c->add_option("--projector", s->projector, "mlp (LLaVA), gemma3, idefics3, qwen2vl_merger or qwen2.5vl_merger")
      ->capture_default_str();
  c->add_option("--text-width", s->n_embd_text, "The language model's embedding size")->required();
  c->add_option("--image-size", s->image_size, "Input side in pixels")->capture_default_str();
  c->add_option("--patch", s->patch_size, "Patch side in pixels")->capture_default_str();
  c->add_option("--width", s->n_embd, "Encoder width")->capture_default_str();
  c->add_option("--ff", s->n_ff, "Encoder feed-forward size")->capture_default_str();
  c->add_option("--layers", s->n_layer, "Encoder blocks")->capture_default_str();
  c->add_option("--heads", s->n_head, "Encoder attention heads")->capture_default_str();
  c->add_option("--scale-factor", s->scale_factor, "gemma3 pooling / idefics3 pixel-shuffle factor")->capture_default_str();
  c->add_option("--type", *type, "Matrix dtype: f32, f16, bf16, q8_0")->capture_default_str();
  c->add_option("--seed", s->seed, "Random seed")->capture_default_str();
  auto pins = std::make_shared<std::string>();
  c->add_option("--grid-pinpoints", *pins,
                "mlp: tile images LLaVA-NeXT style on these HxW canvases (e.g. 672x672,336x672,672x336), with row newlines");
  c->add_option("--anyres-max", s->anyres_max, "mlp with --grid-pinpoints: OneVision's anyres_max_N");
  auto siglip = std::make_shared<bool>(false);
  c->add_flag("--siglip", *siglip, "mlp: a SigLIP tower (no class token, tanh GELU), as LLaVA-OneVision");
  c->add_option("--preproc-size", s->preproc_image_size, "idefics3: longest edge before splitting into tiles");
  c->callback([s, out, type, pins, siglip, &rc] {
    for (size_t at = 0; !pins->empty() && at <= pins->size();) {  // "HxW,HxW,..."
      const size_t end = std::min(pins->find(',', at), pins->size());
      const std::string item = pins->substr(at, end - at);
      int h = 0, w = 0;
      char x = 0;
      if (std::sscanf(item.c_str(), "%d%c%d", &h, &x, &w) != 3 || x != 'x' || h <= 0 || w <= 0) {
        rc = fail(invalid_argument("--grid-pinpoints: '" + item + "' is not HEIGHTxWIDTH"));
        return;
      }
      s->grid_pinpoints.emplace_back(h, w);
      at = end + 1;
    }
    s->image_newline = !s->grid_pinpoints.empty();
    s->class_token = !*siglip;
    auto t = dtype_from_name(*type);
    if (!t.ok()) {
      rc = fail(invalid_argument("--type " + *type + ": use f32, f16, bf16 or q8_0"));
      return;
    }
    s->weight_type = *t;
    // SigLIP: tanh GELU; CLIP, Qwen2-VL: quick GELU
    s->use_gelu = s->projector == "gemma3" || s->projector == "idefics3" || *siglip;
    s->mlp_hidden = s->n_embd_text;
    if (s->image_size % s->patch_size != 0 || s->n_embd % s->n_head != 0) {
      rc = fail(invalid_argument("--image-size must be a multiple of --patch, and --width of --heads"));
      return;
    }
    auto bytes = vision::write_random_mmproj(*s);
    if (!bytes.ok()) {
      rc = fail(bytes.status());
      return;
    }
    auto f = GgufFile::parse(bytes->data(), bytes->size(), *out);  // loads as modu will load it
    if (f.ok()) {
      if (auto m = vision::VisionModel::from_gguf(std::move(f).value()); !m.ok()) {
        rc = fail(m.status());
        return;
      }
    }
    FILE* fp = std::fopen(out->c_str(), "wb");
    if (fp == nullptr || std::fwrite(bytes->data(), 1, bytes->size(), fp) != bytes->size()) {
      if (fp) std::fclose(fp);
      rc = fail(io_error("cannot write '" + *out + "'"));
      return;
    }
    std::fclose(fp);
    std::fprintf(stderr, "modu: wrote %s (%s projector, %lld-wide output, %.1f MiB)\n", out->c_str(),
                 s->projector.c_str(), (long long)s->n_embd_text, bytes->size() / 1048576.0);
    rc = 0;
  });
}

}  // namespace modu::cli
