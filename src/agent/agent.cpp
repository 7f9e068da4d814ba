// The agent loop (see agent.h): render the conversation with the tools, generate (constrained to
// a call when the step's tool choice forces one), read the reply by the template's tool-call
// convention, decide every call (policy, person), run the approved ones concurrently, log them,
// feed their results back as tool messages.
#include "modu/agent/agent.h"

#include <chrono>
#include <future>
#include <map>
#include <optional>

#include "modu/chat/chat_template.h"
#include "modu/chat/jinja.h"
#include "modu/runtime/generate.h"
#include "modu/runtime/multimodal.h"
#include "modu/runtime/json_constraint.h"
#include "modu/toolcall/toolcall.h"

namespace modu::agent {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace {

// A tool the model may call: where it runs, and the name the policy knows it by.
struct Bound {
  ToolSpec spec;
  McpClient* client = nullptr;  // null: a built-in
  std::string remote_name;      // the name at the MCP server
  std::string qualified;        // "SERVER.TOOL" for MCP tools, the name for built-ins
};

// Cuts `s` to at most n bytes on a UTF-8 boundary.
std::string utf8_prefix(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

}  // namespace

struct Agent::Impl {
  const Model& model;
  const Tokenizer& tok;
  ThreadPool& pool;
  AgentOptions opts;
  std::string template_src;
  std::optional<jinja::Template> tmpl;
  toolcall::Convention conv;
  std::string bos, eos;
  KvCache kv;
  std::vector<int32_t> cached;
  std::vector<Bound> bound;
  std::vector<ToolSpec> specs;
  std::vector<McpClient*> clients;
  const Workspace* ws = nullptr;
  SandboxOptions sandbox;
  Policy policy = Policy::ask_all();
  Approver* approver = nullptr;
  ActionLog* log = nullptr;
  ojson messages = ojson::array();
  json steps = json::array();
  int64_t generated = 0;
  int call_counter = 0;
  const vision::VisionModel* vision = nullptr;
  std::vector<vision::ImageEmbedding> images;  // every image of the conversation, in marker order

  Impl(const Model& m, const Tokenizer& t, ThreadPool& p, AgentOptions o)
      : model(m), tok(t), pool(p), opts(std::move(o)), kv(m.config(), 1, opts.n_ctx, KvType::kF16) {
    if (tok.bos_id() >= 0) bos = tok.token_text(tok.bos_id());
    if (tok.eos_id() >= 0) eos = tok.token_text(tok.eos_id());
    if (!opts.system.empty()) messages.push_back({{"role", "system"}, {"content", opts.system}});
  }

  void add(ToolSpec s, McpClient* client, const std::string& remote, const std::string& qualified) {
    // Names are unique for the model: a clash gets the server's name in front.
    std::string name = s.name;
    for (const auto& b : bound)
      if (b.spec.name == name) name = s.source + "_" + s.name;
    s.name = name;
    bound.push_back({s, client, remote, qualified});
    specs.push_back(s);
  }

  ojson tools_json() const {
    ojson arr = ojson::array();
    for (const auto& b : bound)
      arr.push_back({{"type", "function"},
                     {"function", {{"name", b.spec.name}, {"description", b.spec.description},
                                   {"parameters", ojson::parse(b.spec.input_schema.dump())}}}});
    return arr;
  }

  const Bound* find(const std::string& name) const {
    for (const auto& b : bound)
      if (b.spec.name == name) return &b;
    return nullptr;
  }

  ToolResult execute(const Bound& b, const json& args, const std::atomic<bool>* stop) {
    if (!b.client) return run_builtin(b.remote_name, args, *ws, sandbox);
    auto r = b.client->call_tool(b.remote_name, args, opts.tool_timeout_s, nullptr, stop);
    ToolResult out;
    if (!r.ok()) {
      out.is_error = true;
      out.text = r.status().message();
      return out;
    }
    out.is_error = r->is_error;
    out.text = r->text();
    out.structured = r->structured;
    return out;
  }
};

Agent::Agent(const Model& model, const Tokenizer& tok, ThreadPool& pool, AgentOptions opts)
    : impl_(std::make_unique<Impl>(model, tok, pool, std::move(opts))) {}
Agent::~Agent() = default;

Status Agent::set_template(const std::string& source) {
  MODU_ASSIGN_OR_RETURN(auto t, jinja::Template::parse(source));
  impl_->tmpl = std::move(t);
  impl_->template_src = source;
  impl_->conv = toolcall::detect_convention(source);
  if (!impl_->opts.tool_format.empty()) {
    impl_->conv.format = toolcall::find_format(impl_->opts.tool_format);
    if (!impl_->conv.format) return invalid_argument("unknown tool format '" + impl_->opts.tool_format + "' (see `modu toolcalls formats`)");
  }
  if (!impl_->eos.empty()) impl_->conv.end_markers.push_back(impl_->eos);
  return Status::Ok();
}

Status Agent::add_mcp(McpClient* client) {
  MODU_ASSIGN_OR_RETURN(auto tools, client->list_tools());
  for (const McpTool& t : tools) {
    ToolSpec s{t.name, t.description.empty() ? t.title : t.description, t.input_schema, client->name()};
    impl_->add(s, client, t.name, client->name() + "." + t.name);
  }
  impl_->clients.push_back(client);
  return Status::Ok();
}

// A server that announced notifications/tools/list_changed is listed again before the next turn.
static void refresh_tools(Agent::Impl& s, const AgentEvents& events) {
  for (McpClient* c : s.clients) {
    if (!c->tools_changed()) continue;
    auto tools = c->list_tools();
    if (!tools.ok()) {
      if (events) events("note", {{"text", "MCP server '" + c->name() + "': " + tools.status().message()}});
      continue;
    }
    std::vector<Bound> keep;
    for (auto& b : s.bound)
      if (b.client != c) keep.push_back(std::move(b));
    s.bound.clear();
    s.specs.clear();
    for (auto& b : keep) {
      s.bound.push_back(b);
      s.specs.push_back(b.spec);
    }
    for (const McpTool& t : *tools) {
      ToolSpec spec{t.name, t.description.empty() ? t.title : t.description, t.input_schema, c->name()};
      s.add(spec, c, t.name, c->name() + "." + t.name);
    }
  }
}

void Agent::add_builtins(const Workspace* ws, const std::vector<std::string>& enabled, SandboxOptions sandbox) {
  impl_->ws = ws;
  impl_->sandbox = sandbox;
  for (ToolSpec s : builtin_tools(enabled)) impl_->add(s, nullptr, s.name, s.name);
}

void Agent::set_policy(Policy p, Approver* approver) {
  impl_->policy = std::move(p);
  impl_->approver = approver;
}

void Agent::set_action_log(ActionLog* log) { impl_->log = log; }
const std::vector<ToolSpec>& Agent::tools() const { return impl_->specs; }

void Agent::set_vision(const vision::VisionModel* vm) { impl_->vision = vm; }

Result<AgentResult> Agent::run(const std::string& task, const AgentEvents& events, const std::atomic<bool>* stop,
                               std::vector<vision::ImageEmbedding> images) {
  Impl& s = *impl_;
  if (!s.tmpl) return invalid_argument("the agent has no chat template (set_template)");
  if (!images.empty() && s.vision == nullptr)
    return invalid_argument("images need the model's vision projector (--mmproj): this model reads text only");
  auto emit = [&](const char* kind, const json& data) {
    if (events) events(kind, data);
  };
  std::string content;
  for (size_t i = 0; i < images.size(); ++i) content += kImageMarker;
  content += task;
  s.messages.push_back({{"role", "user"}, {"content", content}});
  for (auto& im : images) s.images.push_back(std::move(im));
  AgentResult out;
  out.stop_reason = "step limit";
  for (int step = 0; step < s.opts.max_steps; ++step) {
    if (stop && stop->load()) {
      out.stop_reason = "stopped";
      break;
    }
    if (s.opts.token_budget > 0 && s.generated >= s.opts.token_budget) {
      out.stop_reason = "token budget";
      break;
    }
    refresh_tools(s, events);
    const size_t choice_at = (size_t)(s.steps.size());
    const std::string choice = choice_at < s.opts.tool_choice.size() ? s.opts.tool_choice[choice_at] : "auto";
    const bool use_tools = !s.bound.empty() && choice != "none";
    chat::ChatTemplateInputs in;
    in.messages = s.messages;
    if (!s.bound.empty()) in.tools = s.tools_json();
    in.bos_token = s.bos;
    in.eos_token = s.eos;
    MODU_ASSIGN_OR_RETURN(std::string prompt, chat::render_chat_template(*s.tmpl, in));
    const bool has_bos = !s.bos.empty() && prompt.rfind(s.bos, 0) == 0;
    std::vector<int32_t> ids;
    std::vector<EmbdSpan> spans;  // the conversation's images at their markers
    if (s.images.empty()) {
      ids = s.tok.encode(prompt, s.tok.add_bos() && !has_bos, /*parse_special=*/true);
    } else {
      auto mm = build_multimodal_prompt(s.tok, prompt, s.images, s.vision->markers(), s.tok.add_bos() && !has_bos, true);
      if (!mm.ok()) return mm.status().with_context("the conversation's images");
      ids = std::move(mm->ids);
      spans = std::move(mm->spans);
    }
    int n_predict = s.opts.n_predict;
    if (s.opts.token_budget > 0) n_predict = (int)std::min<int64_t>(n_predict, s.opts.token_budget - s.generated);
    if ((int64_t)ids.size() + n_predict >= s.opts.n_ctx) {
      out.stop_reason = "context full";
      emit("note", {{"text", "the conversation (" + std::to_string(ids.size()) + " tokens) fills the context"}});
      break;
    }
    size_t common = 0;
    while (common < s.cached.size() && common < ids.size() && s.cached[common] == ids[common]) ++common;
    if (common == ids.size()) --common;
    s.kv.truncate(0, (int64_t)common);
    GenerateOptions g;
    g.n_predict = n_predict;
    g.n_cached = (int64_t)common;
    g.embd = spans;
    g.sampling = s.opts.sampling;
    g.render_special = true;  // call and reasoning markers are often control tokens; the parser must see them
    if (s.conv.format->template_ends_reply()) g.stop = s.conv.end_markers;
    for (const auto& m : s.conv.format->stop_markers()) g.stop.push_back(m);
    const ojson tools = s.tools_json();
    if (use_tools && choice != "auto") {  // a forced call, in the format's own syntax
      toolcall::ForcedCall fc;
      const std::string only = choice == "required" ? "" : choice;
      if (std::string err = toolcall::forced_call(*s.conv.format, tools, only, true, &fc); !err.empty())
        return invalid_argument("tool choice '" + choice + "' for step " + std::to_string(step + 1) + ": " + err);
      std::vector<JsonConstraint> alts;
      for (const auto& [prefix, schema] : fc.alternatives) {
        auto c = JsonConstraint::from_schema(schema);
        if (!c.ok()) return c.status().with_context("the schema of a forced tool call");
        alts.push_back(c->with_prefix(prefix));
      }
      if (alts.empty()) return invalid_argument("tool choice '" + choice + "': this template's format cannot force a call");
      g.json = std::make_shared<const JsonConstraint>(JsonConstraint::one_of(std::move(alts)));
    }
    auto res = generate(s.model, s.tok, s.kv, s.pool, ids, g, [&](std::string_view) { return !(stop && stop->load()); });
    if (!res.ok()) return res.status();
    s.generated += (int64_t)res->tokens.size();
    s.cached = ids;
    s.cached.insert(s.cached.end(), res->tokens.begin(), res->tokens.end());
    s.cached.resize(std::min<size_t>(s.cached.size(), (size_t)s.kv.seq_len(0)));
    toolcall::ParseOptions po;
    po.tools = &tools;
    po.calls = use_tools;
    if (!s.conv.reasoning.open.empty()) {
      const size_t e = prompt.find_last_not_of(" \t\r\n");
      po.reasoning_open = e != std::string::npos && std::string_view(prompt).substr(0, e + 1).ends_with(s.conv.reasoning.open);
    }
    const toolcall::Reply r = toolcall::parse_reply(s.conv, res->text, po);
    ojson msg = {{"role", "assistant"}, {"content", r.content}};
    if (!r.reasoning.empty()) msg["reasoning_content"] = r.reasoning;
    std::vector<std::string> ids_of;
    if (!r.calls.empty()) {
      msg["tool_calls"] = ojson::array();
      for (const auto& c : r.calls) {
        ids_of.push_back(c.id.empty() ? "call_" + std::to_string(++s.call_counter) : c.id);
        ojson args = ojson::parse(c.arguments, nullptr, false);
        msg["tool_calls"].push_back({{"id", ids_of.back()}, {"type", "function"},
                                     {"function", {{"name", c.name}, {"arguments", args.is_discarded() ? ojson::object() : args}}}});
      }
    }
    s.messages.push_back(msg);
    json step_rec = {{"step", step + 1}, {"tool_choice", choice}, {"prompt_tokens", ids.size()},
                     {"generated_tokens", res->tokens.size()}, {"reply", res->text}};
    if (!spans.empty()) {
      int64_t n_img = 0;
      for (const EmbdSpan& sp : spans) n_img += sp.n;
      step_rec["image_tokens"] = n_img;
    }
    if (s.opts.keep_prompts) step_rec["prompt"] = prompt;
    emit("assistant", {{"content", r.content}, {"reasoning", r.reasoning}, {"calls", r.calls.size()}});
    if (r.calls.empty()) {
      s.steps.push_back(step_rec);
      out.answer = r.content;
      out.stop_reason = "answer";
      emit("final", {{"content", r.content}});
      break;
    }
    // Decide every call first (one question at a time), then run the approved ones at once.
    struct Pending {
      const Bound* tool = nullptr;
      json args;
      Approval approval;
      ToolResult result;
      double seconds = 0;
    };
    std::vector<Pending> pend(r.calls.size());
    for (size_t i = 0; i < r.calls.size(); ++i) {
      Pending& p = pend[i];
      p.tool = s.find(r.calls[i].name);
      p.args = json::parse(r.calls[i].arguments, nullptr, false);
      emit("call", {{"name", r.calls[i].name}, {"arguments", p.args.is_discarded() ? json(r.calls[i].arguments) : p.args}});
      if (!p.tool) {
        p.result = {true, "There is no tool named '" + r.calls[i].name + "'.", nullptr};
        continue;
      }
      if (p.args.is_discarded() || !p.args.is_object()) {
        p.result = {true, "The arguments are not a JSON object: " + r.calls[i].arguments, nullptr};
        p.args = json::object();
        continue;
      }
      p.approval = decide(s.policy, s.approver, s.opts.approve_all, p.tool->qualified, p.args);
      if (!p.approval.approved) p.result = {true, "The call was not approved (" + p.approval.by + ").", nullptr};
      else p.args = p.approval.args.is_object() ? p.approval.args : p.args;
    }
    std::vector<std::future<void>> running;
    for (Pending& p : pend)
      if (p.tool && p.approval.approved)
        running.push_back(std::async(std::launch::async, [&s, &p, stop] {
          const auto t0 = std::chrono::steady_clock::now();
          p.result = s.execute(*p.tool, p.args, stop);
          p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        }));
    for (auto& f : running) f.get();
    json calls_rec = json::array();
    for (size_t i = 0; i < pend.size(); ++i) {
      Pending& p = pend[i];
      std::string text = p.result.text;
      if (text.size() > s.opts.max_result_chars) {
        const size_t full = text.size();
        text = utf8_prefix(text, s.opts.max_result_chars) + "\n[modu: the result had " + std::to_string(full) +
               " characters; it was cut to " + std::to_string(s.opts.max_result_chars) + " to fit the context]";
      }
      if (s.log && p.tool) {
        ActionRecord a;
        a.tool = p.tool->qualified;
        a.source = p.tool->spec.source;
        a.arguments = p.args;
        a.approved = p.approval.approved;
        a.decided_by = p.approval.by;
        a.is_error = p.result.is_error;
        a.result_sha256 = sha256_hex(p.result.text);
        a.result_bytes = p.result.text.size();
        a.duration_s = p.seconds;
        if (Status st = s.log->append(a); !st.ok()) return st.with_context("the action log");
      }
      emit("result", {{"name", r.calls[i].name}, {"is_error", p.result.is_error}, {"text", text}, {"seconds", p.seconds}});
      s.messages.push_back({{"role", "tool"}, {"tool_call_id", ids_of[i]}, {"name", r.calls[i].name}, {"content", text}});
      calls_rec.push_back({{"name", r.calls[i].name}, {"arguments", p.args}, {"approved", p.approval.approved},
                           {"decided_by", p.approval.by}, {"is_error", p.result.is_error}, {"result", text}});
    }
    step_rec["calls"] = calls_rec;
    s.steps.push_back(step_rec);
    if (res->reason == StopReason::kCancelled || (stop && stop->load())) {
      out.stop_reason = "stopped";
      break;
    }
  }
  out.transcript = {{"messages", json::parse(s.messages.dump(-1, ' ', false, ojson::error_handler_t::replace))}, {"steps", s.steps}, {"stop_reason", out.stop_reason},
                    {"generated_tokens", s.generated}};
  return out;
}

}  // namespace modu::agent
