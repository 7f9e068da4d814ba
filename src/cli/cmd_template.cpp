// `modu template`: render a chat template (a file or a model's own) with a JSON context.
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common.h"
#include "modu/hf/hf_model.h"
#include "modu/chat/chat_template.h"
#include "modu/gguf/gguf.h"

namespace modu::cli {

Result<std::chrono::system_clock::time_point> parse_iso8601(const std::string& s) {
  // YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|+HH:MM|-HH:MM]
  int Y, M, D, h = 0, m = 0;
  double sec = 0;
  char rest[32] = {0};
  int n = std::sscanf(s.c_str(), "%4d-%2d-%2d", &Y, &M, &D);
  if (n != 3) return invalid_argument("--now '" + s + "' is not an ISO 8601 date such as 2025-01-15T10:30:00Z");
  size_t p = 10;
  if (s.size() > p && (s[p] == 'T' || s[p] == ' ')) {
    if (std::sscanf(s.c_str() + p + 1, "%2d:%2d", &h, &m) != 2) return invalid_argument("--now: bad time in '" + s + "'");
    p += 6;
    if (s.size() > p && s[p] == ':') {
      int used = 0;
      if (std::sscanf(s.c_str() + p + 1, "%lf%n", &sec, &used) != 1) return invalid_argument("--now: bad seconds");
      p += 1 + used;
    }
  }
  long offset = 0;
  if (p < s.size()) {
    std::snprintf(rest, sizeof rest, "%s", s.c_str() + p);
    int oh = 0, om = 0;
    if (rest[0] == 'Z' && rest[1] == 0) {
    } else if ((rest[0] == '+' || rest[0] == '-') && std::sscanf(rest + 1, "%2d:%2d", &oh, &om) == 2) {
      offset = (rest[0] == '+' ? 1 : -1) * (oh * 3600L + om * 60L);
    } else {
      return invalid_argument("--now: bad time zone '" + std::string(rest) + "' (use Z or +HH:MM)");
    }
  }
  if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec >= 61)
    return invalid_argument("--now: date or time out of range in '" + s + "'");
  std::tm tm{};
  tm.tm_year = Y - 1900;
  tm.tm_mon = M - 1;
  tm.tm_mday = D;
  tm.tm_hour = h;
  tm.tm_min = m;
  tm.tm_sec = 0;
  const time_t t = timegm(&tm) - offset;
  return std::chrono::system_clock::from_time_t(t) +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::duration<double>(sec));
}

namespace {

struct TemplateArgs {
  std::string template_file, context_file, model, now;
};

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error("cannot read '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int render(const TemplateArgs& a) {
  std::string src;
  nlohmann::ordered_json ctx = nlohmann::ordered_json::object();
  if (!a.context_file.empty()) {
    auto text = read_file(a.context_file);
    if (!text.ok()) return fail(text.status());
    try {
      ctx = nlohmann::ordered_json::parse(*text);
    } catch (const std::exception& e) {
      return fail(invalid_argument(a.context_file + ": invalid JSON: " + e.what()));
    }
    if (!ctx.is_object()) return fail(invalid_argument(a.context_file + ": the context must be a JSON object"));
  }
  if (!a.model.empty()) {
    auto f = open_model_path(a.model);  // GGUF file or Hugging Face folder
    if (!f.ok()) return fail(f.status());
    auto t = f->get_string("tokenizer.chat_template", std::string());
    if (!t.ok()) return fail(t.status());
    if (t->empty()) return fail(not_found(a.model + " has no tokenizer.chat_template; pass --template FILE"));
    src = *t;
    auto tok = Tokenizer::from_gguf(*f);
    if (tok.ok()) {
      if (!ctx.contains("bos_token") && (*tok)->bos_id() >= 0) ctx["bos_token"] = (*tok)->token_text((*tok)->bos_id());
      if (!ctx.contains("eos_token") && (*tok)->eos_id() >= 0) ctx["eos_token"] = (*tok)->token_text((*tok)->eos_id());
    }
  } else {
    auto t = read_file(a.template_file);
    if (!t.ok()) return fail(t.status());
    src = *t;
  }
  jinja::RenderOptions opts;
  if (!a.now.empty()) {
    auto now = parse_iso8601(a.now);
    if (!now.ok()) return fail(now.status());
    opts.now = *now;
  }
  auto tmpl = jinja::Template::parse(src);
  if (!tmpl.ok()) return fail(tmpl.status());
  auto out = tmpl->render(ctx, opts);
  if (!out.ok()) return fail(out.status());
  std::fwrite(out->data(), 1, out->size(), stdout);
  return 0;
}

}  // namespace

void add_template_command(CLI::App& app, int& rc) {
  auto a = std::make_shared<TemplateArgs>();
  CLI::App* c = app.add_subcommand("template", "Render a chat template with a JSON context; prints exactly the text");
  auto* t = c->add_option("--template", a->template_file, "Jinja template file")->check(CLI::ExistingFile);
  auto* m = c->add_option("-m,--model", a->model, "Use this GGUF model's (or Hugging Face folder's) own template")->check(CLI::ExistingPath);
  t->excludes(m);
  c->add_option("--context", a->context_file, "JSON object: messages, tools, add_generation_prompt, bos_token, ...")
      ->check(CLI::ExistingFile);
  c->add_option("--now", a->now, "Clock for strftime_now, ISO 8601 (default: now)");
  c->callback([a, &rc] {
    if (a->template_file.empty() && a->model.empty()) {
      rc = fail(invalid_argument("template: pass --template FILE or -m MODEL"));
      return;
    }
    rc = render(*a);
  });
}

}  // namespace modu::cli
