// `modu chat`: interactive chat with the model's own template, streaming output, history, /reset,
// /image PATH (with a vision projector) and /exit; line editing (UTF-8, Korean input) through
// libedit when stdin is a terminal.
#include <unistd.h>

#include <clocale>
#include <cstdio>
#include <iostream>

#include <editline/readline.h>
#include <nlohmann/json.hpp>

#include "common.h"
#include "modu/chat/chat_template.h"
#include "modu/runtime/generate.h"
#include "modu/runtime/multimodal.h"

namespace modu::cli {

namespace {

struct ChatArgs {
  std::string model, system;
  int n_predict = 512;
  float temp = 0.7f, top_p = 0.95f, min_p = 0.05f, repeat_penalty = 1.0f;
  int top_k = 40, threads = 0;
  int64_t ctx = 0;
  SpecArgs spec;
  uint64_t seed = 0xC0FFEE;
  NoticeArgs notice;
  std::vector<std::string> lora;
  std::string mmproj;
};

// A minimal ChatML template, used only when the model ships none (and said so on stderr).
constexpr const char* kFallbackTemplate =
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

bool read_line(bool tty, std::string& line) {
  if (tty) {
    char* s = readline("> ");
    if (s == nullptr) return false;
    line = s;
    if (!line.empty()) add_history(s);
    free(s);
    return true;
  }
  return static_cast<bool>(std::getline(std::cin, line));
}

int chat(const ChatArgs& a) {
  std::setlocale(LC_ALL, "");  // libedit needs the locale to edit multi-byte (Hangul) input
  auto lm = load_model(a.model, true);
  if (!lm.ok()) return fail(lm.status());
  if (Status st = attach_loras(*lm->model, a.lora); !st.ok()) return fail(st);
  const Model& model = *lm->model;
  const Tokenizer& tok = *lm->tokenizer;
  auto tsrc = model.gguf().get_string("tokenizer.chat_template", std::string());
  std::string src = tsrc.ok() ? *tsrc : "";
  if (src.empty()) {
    std::fprintf(stderr, "modu: the model has no chat template; using a plain ChatML layout\n");
    src = kFallbackTemplate;
  }
  auto tmpl = jinja::Template::parse(src);
  if (!tmpl.ok()) return fail(tmpl.status().with_context("the model's chat template"));
  const int64_t ctx = a.ctx > 0 ? a.ctx : std::min<int64_t>(model.config().n_ctx_train, 4096);
  ThreadPool pool(a.threads);
  KvCache kv(model.config(), 1, ctx, KvType::kF16);
  LoadedModel draft_model;
  auto made = make_drafter(a.spec, tok, pool, ctx, &draft_model);
  if (!made.ok()) return fail(made.status());
  std::unique_ptr<Drafter> drafter = std::move(made).value();
  std::vector<int32_t> cached;  // tokens whose K/V are in the cache, in order
  // Images: /image encodes one; it goes into the next message, before its text. Every image of the
  // conversation stays (in marker order) so each turn's prompt is rebuilt whole and its prefix reused.
  auto v = projector_for(a.mmproj, a.model, /*want_images=*/true);
  if (!v.ok()) return fail(v.status());
  std::unique_ptr<vision::VisionModel> vm = std::move(v).value();
  if (vm) {
    if (Status st = vision::check_compatible(*vm, model.config(), a.mmproj.empty() ? a.model : a.mmproj); !st.ok())
      return fail(st);
  }
  std::vector<vision::ImageEmbedding> images;
  size_t pending = 0;  // images added since the last message
  chat::ChatTemplateInputs in;
  if (!a.system.empty()) in.messages.push_back({{"role", "system"}, {"content", a.system}});
  if (tok.bos_id() >= 0) in.bos_token = tok.token_text(tok.bos_id());
  if (tok.eos_id() >= 0) in.eos_token = tok.token_text(tok.eos_id());
  print_ai_notice(a.notice, a.model);
  const std::string mark = label_prefix(a.notice);
  const bool tty = isatty(STDIN_FILENO);
  if (tty)
    std::fprintf(stderr, "modu chat: %s. /reset clears the conversation,%s /exit quits.\n", model.config().arch.name.c_str(),
                 vm ? " /image PATH adds a picture to your next message," : "");
  std::string line;
  while (read_line(tty, line)) {
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      in.messages = nlohmann::ordered_json::array();
      if (!a.system.empty()) in.messages.push_back({{"role", "system"}, {"content", a.system}});
      kv.truncate(0, 0);
      cached.clear();
      images.clear();
      pending = 0;
      std::fprintf(stderr, "(conversation cleared)\n");
      continue;
    }
    if (line.rfind("/image", 0) == 0) {
      std::string path = line.substr(6);
      path.erase(0, path.find_first_not_of(" \t"));
      path.erase(path.find_last_not_of(" \t") + 1);
      if (!vm) {
        std::fprintf(stderr, "modu: this model reads text only; start chat with --mmproj PROJECTOR to add images\n");
        continue;
      }
      auto img = vision::load_image_file(path);
      if (!img.ok()) {
        std::fprintf(stderr, "modu: %s\n", img.status().to_string().c_str());
        continue;
      }
      auto e = vision::embed_image(*vm, *img, pool);
      if (!e.ok()) {
        std::fprintf(stderr, "modu: %s\n", e.status().with_context(path).to_string().c_str());
        continue;
      }
      std::fprintf(stderr, "(image %s: %d x %d, %lld tokens; it goes with your next message)\n", path.c_str(), img->width,
                   img->height, (long long)e->n_tokens);
      images.push_back(std::move(e).value());
      ++pending;
      continue;
    }
    if (line.empty()) continue;
    std::string content;
    for (size_t i = 0; i < pending; ++i) content += kImageMarker;
    content += line;
    in.messages.push_back({{"role", "user"}, {"content", content}});
    in.add_generation_prompt = true;
    auto text = chat::render_chat_template(*tmpl, in);
    if (!text.ok()) return fail(text.status());
    // The template writes BOS itself when it wants one; add it only if the text lacks it.
    const bool has_bos = !in.bos_token.empty() && text->rfind(in.bos_token, 0) == 0;
    auto built = build_multimodal_prompt(tok, *text, images, vm ? vm->markers() : vision::ImageMarkers{},
                                         tok.add_bos() && !has_bos, /*parse_special=*/true);
    if (!built.ok()) return fail(built.status());
    const std::vector<int32_t>& ids = built->ids;
    if ((int64_t)ids.size() + 1 >= ctx) {
      std::fprintf(stderr, "modu: the conversation (%zu tokens) fills the context (%lld); use /reset\n", ids.size(),
                   (long long)ctx);
      in.messages.erase(in.messages.end() - 1);
      images.resize(images.size() - pending);
      pending = 0;
      continue;
    }
    pending = 0;
    // Reuse the cached prefix of the conversation; recompute from the first differing token.
    size_t common = 0;
    while (common < cached.size() && common < ids.size() && cached[common] == ids[common]) ++common;
    if (common == ids.size()) --common;
    kv.truncate(0, (int64_t)common);
    GenerateOptions opts;
    opts.embd = built->spans;
    opts.n_predict = a.n_predict;
    opts.n_cached = (int64_t)common;
    opts.sampling.temperature = a.temp;
    opts.sampling.top_k = a.top_k;
    opts.sampling.top_p = a.top_p;
    opts.sampling.min_p = a.min_p;
    opts.sampling.repeat_penalty = a.repeat_penalty;
    opts.sampling.seed = a.seed + in.messages.size();
    opts.drafter = drafter.get();
    opts.draft_max = a.spec.draft_max;
    if (!mark.empty()) std::fwrite(mark.data(), 1, mark.size(), stdout);
    auto res = generate(model, tok, kv, pool, ids, opts, [](std::string_view s) {
      std::fwrite(s.data(), 1, s.size(), stdout);
      std::fflush(stdout);
      return true;
    });
    std::printf("\n");
    if (!res.ok()) return fail(res.status());
    cached = ids;
    cached.insert(cached.end(), res->tokens.begin(), res->tokens.end());
    cached.resize(std::min<size_t>(cached.size(), (size_t)kv.seq_len(0)));
    in.messages.push_back({{"role", "assistant"}, {"content", res->text}});
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

void add_chat_command(CLI::App& app, int& rc) {
  auto a = std::make_shared<ChatArgs>();
  CLI::App* c = app.add_subcommand("chat", "Interactive chat with the model's chat template");
  c->add_option("-m,--model", a->model, "GGUF model file or Hugging Face folder")->required()->check(CLI::ExistingPath);
  add_lora_option(c, &a->lora);
  c->add_option("--mmproj", a->mmproj,
                "Vision projector (mmproj GGUF or Hugging Face multimodal folder) for /image (default: the model's own "
                "folder when it has a vision tower)")->check(CLI::ExistingPath);
  c->add_option("--system", a->system, "System prompt");
  c->add_option("-n,--n-predict", a->n_predict, "Maximum tokens per answer")->capture_default_str();
  c->add_option("--temp", a->temp, "Temperature (0: greedy)")->capture_default_str();
  c->add_option("--top-k", a->top_k, "Top-k")->capture_default_str();
  c->add_option("--top-p", a->top_p, "Top-p")->capture_default_str();
  c->add_option("--min-p", a->min_p, "Min-p")->capture_default_str();
  c->add_option("--repeat-penalty", a->repeat_penalty, "Repetition penalty")->capture_default_str();
  c->add_option("-s,--seed", a->seed, "Random seed")->capture_default_str();
  c->add_option("-t,--threads", a->threads, "Threads (0: all cores)");
  c->add_option("-c,--ctx", a->ctx, "Context size (0: the model's, at most 4096)");
  add_spec_options(c, &a->spec);
  add_notice_options(c, &a->notice);
  c->callback([a, &rc] { rc = chat(*a); });
}

}  // namespace modu::cli
