// Shared helpers for the modu subcommands.
#include "common.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "modu/hf/hf_model.h"
#include "modu/trust/provenance.h"

namespace modu::cli {

void add_notice_options(CLI::App* c, NoticeArgs* a) {
  c->add_option("--ai-notice", a->ai_notice, "Your own AI notice text, printed on stderr before the output");
  c->add_flag("--label", a->label, "Put a visible AI-generated mark before the generated text");
}

void print_ai_notice(const NoticeArgs& a, const std::string& model_path) {
  const std::string name = model_path.substr(model_path.find_last_of('/') == std::string::npos ? 0 : model_path.find_last_of('/') + 1);
  const std::string text = a.ai_notice.empty() ? trust::default_notice(trust::lang_from_env(), name) : a.ai_notice;
  std::fprintf(stderr, "modu: [AI] %s\n", text.c_str());
  std::fflush(stderr);
}

std::string label_prefix(const NoticeArgs& a) { return a.label ? trust::visible_label(trust::lang_from_env()) : ""; }

void add_lora_option(CLI::App* c, std::vector<std::string>* specs) {
  c->add_option("--lora", *specs, "LoRA adapter: a GGUF (llama.cpp's format) or a PEFT folder, optionally PATH:SCALE; repeatable");
}

Status attach_loras(Model& model, const std::vector<std::string>& specs, bool named_ok) {
  for (std::string spec : specs) {
    // NAME=PATH[:SCALE]: a named adapter that requests select (modu serve).
    std::string name;
    if (const size_t eq = spec.find('='); eq != std::string::npos && eq > 0 && access(spec.c_str(), F_OK) != 0 &&
                                            spec.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == eq) {
      if (!named_ok) return invalid_argument("--lora " + spec + ": named adapters (NAME=PATH) are for modu serve, where requests pick them");
      name = spec.substr(0, eq);
      spec = spec.substr(eq + 1);
    }
    std::string path = spec;
    float scale = 1.0f;
    if (const size_t colon = spec.rfind(':'); colon != std::string::npos && access(spec.c_str(), F_OK) != 0) {
      const std::string num = spec.substr(colon + 1);
      char* end = nullptr;
      const float v = std::strtof(num.c_str(), &end);
      if (num.empty() || *end != '\0') return invalid_argument("--lora " + spec + ": expected FILE or FILE:SCALE");
      path = spec.substr(0, colon);
      scale = v;
    }
    std::error_code ec;
    const bool folder = std::filesystem::is_directory(path, ec);
    MODU_ASSIGN_OR_RETURN(auto adapter, folder ? load_peft_adapter(path, model.gguf()) : LoraAdapter::load(path));
    const size_t n = adapter->pairs().size();
    if (name.empty()) {
      MODU_RETURN_IF_ERROR(model.add_lora(adapter, scale).with_context("--lora " + path));
    } else {
      MODU_RETURN_IF_ERROR(model.add_named_lora(name, adapter, scale).status().with_context("--lora " + name + "=" + path));
    }
    std::fprintf(stderr, "modu: LoRA %s%s%s (scale %g, alpha %g, %zu matrices)\n", name.empty() ? "" : name.c_str(),
                 name.empty() ? "" : " = ", path.c_str(), scale, adapter->alpha(), n);
  }
  return Status::Ok();
}

int fail(const Status& s) {
  progress_done();
  std::fprintf(stderr, "modu: %s\n", s.to_string().c_str());
  return 1;
}

namespace {
bool g_progress_open = false;  // a terminal line written by progress() and not yet ended
}

void progress(const std::string& line) {
  static const bool tty = isatty(STDERR_FILENO) != 0;
  if (tty) {
    std::fprintf(stderr, "\r%s\x1b[K", line.c_str());
    g_progress_open = true;
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
}

void progress_done() {
  if (g_progress_open) std::fputc('\n', stderr);
  g_progress_open = false;
}

Result<LoadedModel> load_model(const std::string& path, bool need_tokenizer) {
  LoadedModel lm;
  MODU_ASSIGN_OR_RETURN(GgufFile file, open_model_path(path));  // GGUF file or Hugging Face folder
  MODU_ASSIGN_OR_RETURN(lm.model, Model::from_gguf(std::move(file)));
  auto tok = Tokenizer::from_gguf(lm.model->gguf());
  if (tok.ok()) {
    lm.tokenizer = std::move(tok).value();
  } else if (need_tokenizer) {
    return tok.status().with_context(path + ": the model's tokenizer");
  }
  return lm;
}

size_t current_rss_bytes() {
  std::ifstream f("/proc/self/statm");
  size_t pages_total = 0, pages_rss = 0;
  if (!(f >> pages_total >> pages_rss)) return 0;
  return pages_rss * (size_t)sysconf(_SC_PAGESIZE);
}

size_t peak_rss_bytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return (size_t)ru.ru_maxrss * 1024;
}

Result<std::unique_ptr<vision::VisionModel>> load_projector(const std::string& path) {
  if (is_hf_folder(path)) {
    auto f = open_hf_vision_folder(path);
    if (!f.ok()) return f.status();
    return vision::VisionModel::from_gguf(std::move(f).value());
  }
  return vision::VisionModel::load(path);
}

Result<std::unique_ptr<vision::VisionModel>> projector_for(const std::string& mmproj, const std::string& model,
                                                           bool want_images) {
  if (!mmproj.empty()) return load_projector(mmproj);
  if (want_images && is_hf_folder(model) && hf_folder_has_vision(model)) return load_projector(model);
  return std::unique_ptr<vision::VisionModel>();
}

Result<CliImages> load_cli_images(const std::string& mmproj, const std::string& model, const ModelConfig& cfg,
                                  const std::vector<std::string>& paths, int64_t max_pixels, ThreadPool& pool,
                                  const std::string& log_prefix) {
  CliImages out;
  MODU_ASSIGN_OR_RETURN(out.vm, projector_for(mmproj, model, !paths.empty()));
  if (!paths.empty() && !out.vm)
    return invalid_argument("--image needs --mmproj: this language model reads text only; pass the vision projector "
                            "(mmproj) file made for it");
  if (!out.vm) return out;
  MODU_RETURN_IF_ERROR(vision::check_compatible(*out.vm, cfg, mmproj.empty() ? model : mmproj));
  vision::DecodeLimits lim;
  lim.max_pixels = max_pixels;
  for (const std::string& path : paths) {
    MODU_ASSIGN_OR_RETURN(vision::Image img, vision::load_image_file(path, lim));
    auto e = vision::embed_image(*out.vm, img, pool);
    if (!e.ok()) return e.status().with_context(path);
    if (!log_prefix.empty())
      std::fprintf(stderr, "%s: image %s: %d x %d, %lld tokens, encoded in %.2f s\n", log_prefix.c_str(), path.c_str(),
                   img.width, img.height, (long long)e->n_tokens, e->encode_seconds);
    out.images.push_back(std::move(e).value());
  }
  return out;
}

}  // namespace modu::cli

namespace modu::cli {

void add_spec_options(CLI::App* c, SpecArgs* s) {
  c->add_flag("--lookup", s->lookup,
              "Speculative decoding with prompt-lookup drafts: text that repeats earlier text is verified several tokens "
              "per pass (same output)");
  c->add_option("--draft", s->draft, "Speculative decoding with this draft model (same tokenizer; same output)")
      ->check(CLI::ExistingPath);
  c->add_option("--draft-max", s->draft_max, "Most draft tokens verified per pass")->capture_default_str()->check(CLI::Range(1, 64));
}

Result<std::unique_ptr<Drafter>> make_drafter(const SpecArgs& s, const Tokenizer& target, ThreadPool& pool, int64_t n_ctx,
                                              LoadedModel* keep) {
  if (!s.draft.empty() && s.lookup) return invalid_argument("--draft and --lookup are alternatives: give one");
  if (s.lookup) return std::unique_ptr<Drafter>(std::make_unique<NgramDrafter>());
  if (s.draft.empty()) return std::unique_ptr<Drafter>();
  MODU_ASSIGN_OR_RETURN(*keep, load_model(s.draft, true));
  MODU_RETURN_IF_ERROR(check_draft_tokenizer(target, *keep->tokenizer).with_context("--draft " + s.draft));
  return std::unique_ptr<Drafter>(std::make_unique<ModelDrafter>(*keep->model, pool, n_ctx));
}

std::string spec_summary(int64_t drafted, int64_t accepted) {
  if (drafted <= 0) return "";
  char b[96];
  std::snprintf(b, sizeof b, ", drafts %lld, accepted %lld (%.0f %%)", (long long)drafted, (long long)accepted,
                100.0 * (double)accepted / (double)drafted);
  return b;
}

double log_sum_exp(const float* z, int64_t n) {
  float mx = z[0];
  for (int64_t v = 1; v < n; ++v) mx = std::max(mx, z[v]);
  double sum = 0;
  for (int64_t v = 0; v < n; ++v) sum += std::exp((double)(z[v] - mx));
  return (double)mx + std::log(sum);
}

}  // namespace modu::cli
