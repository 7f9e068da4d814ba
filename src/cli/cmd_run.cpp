// `modu run`: generate a completion of a raw-text prompt; only the generated text goes to stdout.
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "common.h"
#include "modu/runtime/generate.h"
#include "modu/runtime/multimodal.h"
#include "modu/runtime/watermark.h"
#include "modu/vision/vision_model.h"

namespace modu::cli {

namespace {

struct RunArgs {
  std::string model;
  std::string prompt;
  std::string prompt_file;
  int n_predict = 128;
  float temp = 0.8f;
  int top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  float repeat_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = 0xC0FFEE;
  std::string watermark_key;
  float watermark_gamma = 0.25f, watermark_delta = 2.0f;
  int threads = 0;
  int64_t ctx = 0;
  std::vector<std::string> stop;
  std::string json_schema;  // file with a JSON Schema the output must match
  bool json_object = false;
  bool no_parse_special = false;
  bool ignore_eos = false;
  bool kv_f32 = false;
  bool verbose = false;
  NoticeArgs notice;
  std::vector<std::string> lora;
  std::string mmproj;                // vision projector GGUF
  std::vector<std::string> images;   // image files, in prompt order
  int64_t max_image_pixels = vision::DecodeLimits{}.max_pixels;
  SpecArgs spec;
};

int run(const RunArgs& a) {
  auto lm = load_model(a.model, true);
  if (!lm.ok()) return fail(lm.status());
  if (Status st = attach_loras(*lm->model, a.lora); !st.ok()) return fail(st);
  const Model& model = *lm->model;
  const Tokenizer& tok = *lm->tokenizer;
  std::string prompt = a.prompt;
  if (!a.prompt_file.empty()) {
    FILE* f = std::fopen(a.prompt_file.c_str(), "rb");
    if (!f) return fail(io_error("cannot read prompt file '" + a.prompt_file + "'"));
    char buf[65536];
    size_t n;
    prompt.clear();
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) prompt.append(buf, n);
    std::fclose(f);
  }
  ThreadPool pool(a.threads);
  // Images: decoded, encoded by the projector, and spliced at the prompt's image markers.
  MultimodalPrompt mm;
  auto loaded = load_cli_images(a.mmproj, a.model, model.config(), a.images, a.max_image_pixels, pool,
                                a.verbose ? "modu" : "");
  if (!loaded.ok()) return fail(loaded.status());
  std::unique_ptr<vision::VisionModel> vm = std::move(loaded->vm);
  std::vector<vision::ImageEmbedding> images = std::move(loaded->images);
  auto built = build_multimodal_prompt(tok, prompt, images, vm ? vm->markers() : vision::ImageMarkers{},
                                       /*add_special=*/true, /*parse_special=*/!a.no_parse_special);
  if (!built.ok()) return fail(built.status());
  mm = std::move(built).value();
  const std::vector<int32_t>& ids = mm.ids;
  if (ids.empty()) return fail(invalid_argument("the prompt is empty and the model adds no BOS token"));
  int64_t ctx = a.ctx > 0 ? a.ctx : std::min<int64_t>(model.config().n_ctx_train, 4096);
  if (a.n_predict >= 0) ctx = std::min<int64_t>(ctx, (int64_t)ids.size() + a.n_predict + 1);
  ctx = std::max<int64_t>(ctx, (int64_t)ids.size() + 1);
  if (ctx > model.config().n_ctx_train && a.ctx <= 0)
    std::fprintf(stderr, "modu: warning: prompt + generation exceed the model's training context %lld\n",
                 (long long)model.config().n_ctx_train);
  if (!images.empty() && a.ctx > 0 && (int64_t)ids.size() >= a.ctx)
    return fail(out_of_range("the prompt with its images is " + std::to_string(ids.size()) + " tokens (" +
                             std::to_string(mm.n_image_tokens) + " of them image tokens), more than --ctx " +
                             std::to_string(a.ctx) + " holds; use fewer images or a larger context"));
  KvCache kv(model.config(), 1, ctx, a.kv_f32 ? KvType::kF32 : KvType::kF16);
  if (a.verbose) {
    std::fprintf(stderr, "modu: %s\n", model.config().describe().c_str());
    std::fprintf(stderr, "modu: prompt %zu tokens, context %lld, threads %d, KV cache %.1f MiB\n", ids.size(),
                 (long long)ctx, pool.size(), kv.bytes() / 1048576.0);
  }
  GenerateOptions opts;
  opts.embd = mm.spans;
  opts.n_predict = a.n_predict;
  opts.stop = a.stop;
  opts.ignore_eos = a.ignore_eos;
  opts.sampling.temperature = a.temp;
  opts.sampling.top_k = a.top_k;
  opts.sampling.top_p = a.top_p;
  opts.sampling.min_p = a.min_p;
  opts.sampling.repeat_penalty = a.repeat_penalty;
  opts.sampling.presence_penalty = a.presence_penalty;
  opts.sampling.frequency_penalty = a.frequency_penalty;
  opts.sampling.seed = a.seed;
  if (!a.watermark_key.empty()) {
    const WatermarkKey k = WatermarkKey::from_secret(a.watermark_key);
    opts.sampling.watermark = true;
    opts.sampling.watermark_k0 = k.k0;
    opts.sampling.watermark_k1 = k.k1;
    opts.sampling.watermark_gamma = a.watermark_gamma;
    opts.sampling.watermark_delta = a.watermark_delta;
    if (Status st = opts.sampling.validate(lm->tokenizer->n_vocab()); !st.ok()) return fail(st);
    std::fprintf(stderr, "modu: watermark %s (gamma %.2f, delta %.1f)%s\n", k.id.c_str(), a.watermark_gamma, a.watermark_delta,
                 a.temp <= 0 ? "; greedy decoding is not watermarked: use --temp > 0" : "");
  }
  if (a.json_object) opts.json = std::make_shared<const JsonConstraint>(JsonConstraint::any_object());
  if (!a.json_schema.empty()) {
    std::ifstream f(a.json_schema);
    std::stringstream text;
    text << f.rdbuf();
    const nlohmann::json schema = nlohmann::json::parse(text.str(), nullptr, false);
    if (schema.is_discarded()) return fail(invalid_argument(a.json_schema + " is not valid JSON"));
    auto c = JsonConstraint::from_schema(schema);
    if (!c.ok()) return fail(c.status().with_context(a.json_schema));
    opts.json = std::make_shared<const JsonConstraint>(std::move(c).value());
  }
  LoadedModel draft_model;
  auto drafter = make_drafter(a.spec, tok, pool, ctx, &draft_model);
  if (!drafter.ok()) return fail(drafter.status());
  opts.drafter = drafter->get();
  opts.draft_max = a.spec.draft_max;
  print_ai_notice(a.notice, a.model);
  if (const std::string mark = label_prefix(a.notice); !mark.empty()) std::fwrite(mark.data(), 1, mark.size(), stdout);
  auto res = generate(model, tok, kv, pool, ids, opts, [](std::string_view s) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  if (!res.ok()) return fail(res.status());
  const auto& r = *res;
  std::fprintf(stderr, "\nmodu: prompt %d tokens in %.2f s (%.1f tok/s), generated %zu tokens in %.2f s (%.1f tok/s)%s, stop: %s\n",
               r.n_prompt, r.prefill_seconds, r.n_prompt / std::max(1e-9, r.prefill_seconds), r.tokens.size(),
               r.decode_seconds, r.tokens.size() / std::max(1e-9, r.decode_seconds), spec_summary(r.drafted, r.accepted).c_str(),
               stop_reason_name(r.reason));
  return 0;
}

}  // namespace

void add_run_command(CLI::App& app, int& rc) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* c = app.add_subcommand("run", "Complete a raw-text prompt; the generated text alone goes to stdout");
  c->add_option("-m,--model", args->model, "GGUF model file or Hugging Face folder")->required()->check(CLI::ExistingPath);
  add_lora_option(c, &args->lora);
  auto* p = c->add_option("-p,--prompt", args->prompt, "Prompt text (raw, no chat template)");
  c->add_option("-f,--file", args->prompt_file, "Read the prompt from a file")->excludes(p);
  c->add_option("--mmproj", args->mmproj,
                "Vision projector for --image: llama.cpp mmproj GGUF or a Hugging Face multimodal folder "
                "(default: the model's own folder when it has a vision tower)")->check(CLI::ExistingPath);
  c->add_option("--image", args->images,
                "Image file (PNG, JPEG, BMP, GIF, WebP; repeatable), placed at each <__media__> in the prompt, "
                "or before the prompt when it has none")->check(CLI::ExistingFile);
  c->add_option("--max-image-pixels", args->max_image_pixels, "Refuse larger images (decompression bombs)")
      ->capture_default_str();
  c->add_option("-n,--n-predict", args->n_predict, "Tokens to generate (-1: until end or context full)")->capture_default_str();
  c->add_option("--temp", args->temp, "Temperature (0: greedy)")->capture_default_str();
  c->add_option("--top-k", args->top_k, "Top-k (0: off)")->capture_default_str();
  c->add_option("--top-p", args->top_p, "Top-p (1: off)")->capture_default_str();
  c->add_option("--min-p", args->min_p, "Min-p (0: off)")->capture_default_str();
  c->add_option("--repeat-penalty", args->repeat_penalty, "Repetition penalty (1: off)")->capture_default_str();
  c->add_option("--presence-penalty", args->presence_penalty, "Presence penalty")->capture_default_str();
  c->add_option("--frequency-penalty", args->frequency_penalty, "Frequency penalty")->capture_default_str();
  c->add_option("-s,--seed", args->seed, "Random seed")->capture_default_str();
  c->add_option("--watermark-key", args->watermark_key, "Watermark the output with this secret (see `modu detect`)");
  c->add_option("--watermark-gamma", args->watermark_gamma, "Green fraction of the vocabulary")->capture_default_str();
  c->add_option("--watermark-delta", args->watermark_delta, "Logit bias of green tokens")->capture_default_str();
  c->add_option("-t,--threads", args->threads, "Threads (0: all cores)")->capture_default_str();
  c->add_option("-c,--ctx", args->ctx, "Context size (0: prompt + n, at most the model's)");
  c->add_option("--stop", args->stop, "Stop string (repeatable)");
  auto* js = c->add_option("--json-schema", args->json_schema, "Constrain the output to JSON matching this JSON Schema file")
                 ->check(CLI::ExistingFile);
  c->add_flag("--json", args->json_object, "Constrain the output to a JSON object")->excludes(js);
  c->add_flag("--ignore-eos", args->ignore_eos, "Keep generating past end-of-generation tokens (exactly -n tokens)");
  c->add_flag("--no-parse-special", args->no_parse_special, "Treat special-token text in the prompt as plain text");
  c->add_flag("--kv-f32", args->kv_f32, "Keep the KV cache in F32 instead of F16");
  c->add_flag("-v,--verbose", args->verbose, "More information on stderr");
  add_spec_options(c, &args->spec);
  add_notice_options(c, &args->notice);
  c->callback([args, &rc] { rc = run(*args); });
}

}  // namespace modu::cli
