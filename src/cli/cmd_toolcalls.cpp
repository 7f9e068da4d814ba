// `modu toolcalls`: parse a model's raw output with the tool-call convention of a chat template,
// as the server would (parse), and list the registered formats (formats).
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common.h"
#include "modu/chat/chat_template.h"
#include "modu/hf/hf_model.h"
#include "modu/toolcall/toolcall.h"

namespace modu::cli {

namespace {

using ojson = nlohmann::ordered_json;

struct ToolcallArgs {
  std::string template_file, model, tools_file, eos, format;
  bool with_ids = false;
};

Result<std::string> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error("cannot read '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The template source, and the model's EOS text when it comes from a model.
Status load_template(const ToolcallArgs& a, std::string* src, std::string* eos, std::string* bos) {
  if (!a.model.empty()) {
    MODU_ASSIGN_OR_RETURN(auto f, open_model_path(a.model));
    MODU_ASSIGN_OR_RETURN(*src, f.get_string("tokenizer.chat_template", std::string()));
    if (src->empty()) return not_found(a.model + " has no tokenizer.chat_template; pass --template FILE");
    if (auto tok = Tokenizer::from_gguf(f); tok.ok()) {
      if ((*tok)->eos_id() >= 0) *eos = (*tok)->token_text((*tok)->eos_id());
      if ((*tok)->bos_id() >= 0) *bos = (*tok)->token_text((*tok)->bos_id());
    }
    return Status::Ok();
  }
  MODU_ASSIGN_OR_RETURN(*src, slurp(a.template_file));
  return Status::Ok();
}

int parse(const ToolcallArgs& a) {
  std::string src, eos = a.eos, bos;
  if (!a.template_file.empty() || !a.model.empty())
    if (Status s = load_template(a, &src, &eos, &bos); !s.ok()) return fail(s);
  ojson tools;  // null: none
  if (!a.tools_file.empty()) {
    auto text = slurp(a.tools_file);
    if (!text.ok()) return fail(text.status());
    tools = ojson::parse(*text, nullptr, false);
    if (tools.is_discarded() || !tools.is_array())
      return fail(invalid_argument(a.tools_file + ": --tools must be a JSON array of OpenAI tools"));
  }
  toolcall::Convention conv = toolcall::detect_convention(src);
  if (!a.format.empty()) {
    conv.format = toolcall::find_format(a.format);
    if (!conv.format) return fail(invalid_argument("unknown --format '" + a.format + "'; see `modu toolcalls formats`"));
  }
  if (!eos.empty()) {
    conv.end_markers.push_back(eos);
  } else if (src.find("eos_token") != std::string::npos && conv.format->template_ends_reply()) {
    // The template ends turns with the model's EOS text, which only the model knows: without
    // --eos or -m, the usual EOS texts end the reply.
    for (const char* m : {"</s>", "<|end|>", "<eos>", "<|endoftext|>", "<|end_of_text|>", "<｜end▁of▁sentence｜>", "<seed:eos>"})
      if (std::find(conv.end_markers.begin(), conv.end_markers.end(), m) == conv.end_markers.end()) conv.end_markers.push_back(m);
  }
  toolcall::ParseOptions opts;
  opts.tools = tools.is_array() ? &tools : nullptr;
  // As the server does: the reply starts inside a reasoning block when the generation prompt
  // opens one.
  if (!conv.reasoning.open.empty()) {
    const ojson msgs = ojson::array({{{"role", "user"}, {"content", "hi"}}});
    auto prompt = chat::render_chat_template(src, msgs, tools, true, bos, eos);
    if (prompt.ok()) {
      const size_t e = prompt->find_last_not_of(" \t\r\n");
      opts.reasoning_open = e != std::string::npos && std::string_view(*prompt).substr(0, e + 1).ends_with(conv.reasoning.open);
    }
  }
  std::ostringstream in;
  in << std::cin.rdbuf();
  const toolcall::Reply r = toolcall::parse_reply(conv, in.str(), opts);
  ojson out = {{"content", r.content}, {"reasoning_content", r.reasoning}, {"tool_calls", ojson::array()}};
  for (const auto& c : r.calls) {
    ojson args = ojson::parse(c.arguments, nullptr, false);
    ojson call = ojson::object();
    if (a.with_ids && !c.id.empty()) call["id"] = c.id;
    call["name"] = c.name;
    call["arguments"] = args.is_discarded() ? ojson(c.arguments) : args;
    out["tool_calls"].push_back(std::move(call));
  }
  const std::string text = out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::printf("%s\n", text.c_str());
  return 0;
}

int list(const ToolcallArgs& a) {
  std::string detected;
  if (!a.template_file.empty() || !a.model.empty()) {
    std::string src, eos, bos;
    if (Status s = load_template(a, &src, &eos, &bos); !s.ok()) return fail(s);
    const toolcall::Convention c = toolcall::detect_convention(src);
    detected = c.format->name();
    std::printf("template: format %s", detected.c_str());
    if (!c.reasoning.open.empty()) std::printf(", reasoning %s...%s", c.reasoning.open.c_str(), c.reasoning.close.c_str());
    std::printf("\n\n");
  }
  for (const auto& f : toolcall::formats())
    std::printf("%s %-14s %s\n", f.name == detected ? "*" : " ", f.name.c_str(), f.description.c_str());
  return 0;
}

}  // namespace

void add_toolcalls_command(CLI::App& app, int& rc) {
  auto a = std::make_shared<ToolcallArgs>();
  CLI::App* tc = app.add_subcommand("toolcalls", "Tool-call conventions of chat templates");
  tc->require_subcommand(1);
  CLI::App* p = tc->add_subcommand(
      "parse", "Read a model's raw output on stdin; print {content, reasoning_content, tool_calls} as the server would");
  for (CLI::App* c : {p, tc->add_subcommand("formats", "List the registered tool-call formats (and the one a template uses)")}) {
    auto* t = c->add_option("--template", a->template_file, "Jinja chat template file")->check(CLI::ExistingFile);
    auto* m = c->add_option("-m,--model", a->model, "Use this GGUF model's (or Hugging Face folder's) template")->check(CLI::ExistingPath);
    t->excludes(m);
  }
  p->add_option("--tools", a->tools_file, "JSON array of OpenAI tools (types XML-style parameter values)")->check(CLI::ExistingFile);
  p->add_option("--eos", a->eos, "The model's end-of-sequence text (also ends the reply; default with --template: the usual ones)");
  p->add_option("--format", a->format, "Use this format instead of the template's (see `modu toolcalls formats`)");
  p->add_flag("--ids", a->with_ids, "Include call ids the model wrote (Mistral, Kimi, Solar)");
  p->callback([a, &rc] {
    if (a->template_file.empty() && a->model.empty() && a->format.empty()) {
      rc = fail(invalid_argument("toolcalls parse: pass --template FILE, -m MODEL or --format NAME"));
      return;
    }
    rc = parse(*a);
  });
  tc->get_subcommand("formats")->callback([a, &rc] { rc = list(*a); });
}

}  // namespace modu::cli
