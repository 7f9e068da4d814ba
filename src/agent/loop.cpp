// The tool loop shared by `modu agent` and `modu serve` (see loop.h): the toolbox, deciding and
// running one turn's calls, and the turn -> calls -> tool messages loop.
#include "modu/agent/loop.h"

#include <chrono>
#include <future>

#include "modu/trust/signing.h"

namespace modu::agent {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace {

// Cuts `s` to at most n bytes on a UTF-8 boundary.
std::string utf8_prefix(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

// The images among an MCP result's content items (base64 "data"); undecodable ones are skipped
// (they stay described in the text).
std::vector<ToolImage> content_images(const json& content) {
  std::vector<ToolImage> out;
  if (!content.is_array()) return out;
  for (const json& c : content) {
    if (!c.is_object() || c.value("type", std::string()) != "image" || !c.contains("data") || !c["data"].is_string()) continue;
    auto bytes = trust::base64_decode(c["data"].get<std::string>());
    if (!bytes.ok()) continue;
    out.push_back({c.value("mimeType", std::string()), std::move(bytes).value()});
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Toolbox

void Toolbox::add(ToolSpec s, McpClient* client, const std::string& remote, const std::string& qualified) {
  for (const auto& b : bound_)
    if (b.spec.name == s.name) s.name = s.source + "_" + s.name;
  bound_.push_back({s, client, remote, qualified});
  specs_.push_back(std::move(s));
}

Status Toolbox::add_mcp(McpClient* client) {
  MODU_ASSIGN_OR_RETURN(auto tools, client->list_tools());
  add_mcp_tools(client, tools);
  return Status::Ok();
}

void Toolbox::add_mcp_tools(McpClient* client, const std::vector<McpTool>& tools) {
  for (const McpTool& t : tools)
    add({t.name, t.description.empty() ? t.title : t.description, t.input_schema, client->name()}, client, t.name,
        client->name() + "." + t.name);
  if (std::find(clients_.begin(), clients_.end(), client) == clients_.end()) clients_.push_back(client);
}

void Toolbox::add_builtins(const Workspace* ws, const std::vector<std::string>& enabled, SandboxOptions sandbox) {
  ws_ = ws;
  sandbox_ = sandbox;
  for (ToolSpec s : builtin_tools(enabled)) add(s, nullptr, s.name, s.name);
}

void Toolbox::refresh(const LoopEvents& events) {
  for (McpClient* c : clients_) {
    if (!c->tools_changed()) continue;
    auto tools = c->list_tools();
    if (!tools.ok()) {
      if (events) events("note", {{"text", "MCP server '" + c->name() + "': " + tools.status().message()}});
      continue;
    }
    std::vector<BoundTool> keep;
    for (auto& b : bound_)
      if (b.client != c) keep.push_back(std::move(b));
    bound_.clear();
    specs_.clear();
    for (auto& b : keep) {
      bound_.push_back(b);
      specs_.push_back(b.spec);
    }
    add_mcp_tools(c, *tools);
  }
}

ojson Toolbox::tools_json() const {
  ojson arr = ojson::array();
  for (const auto& b : bound_)
    arr.push_back({{"type", "function"},
                   {"function", {{"name", b.spec.name}, {"description", b.spec.description},
                                 {"parameters", ojson::parse(b.spec.input_schema.dump())}}}});
  return arr;
}

const BoundTool* Toolbox::find(const std::string& name) const {
  for (const auto& b : bound_)
    if (b.spec.name == name) return &b;
  return nullptr;
}

ToolResult Toolbox::execute(const BoundTool& b, const json& args, double timeout_s, const std::atomic<bool>* stop) const {
  if (!b.client) {
    if (!ws_) return {true, "The built-in tools have no workspace.", nullptr, {}};
    return run_builtin(b.remote_name, args, *ws_, sandbox_);
  }
  auto r = b.client->call_tool(b.remote_name, args, timeout_s, nullptr, stop);
  ToolResult out;
  if (!r.ok()) {
    out.is_error = true;
    out.text = r.status().message();
    return out;
  }
  out.is_error = r->is_error;
  out.text = r->text();
  out.structured = r->structured;
  out.images = content_images(r->content);
  return out;
}

DecideFn policy_decider(const Policy& policy, Approver* approver, bool approve_all) {
  return [&policy, approver, approve_all](const BoundTool& t, const json& args) {
    return decide(policy, approver, approve_all, t.qualified, args);
  };
}

// ---------------------------------------------------------------------------------------------------------
// One turn's calls

Result<std::vector<CallOutcome>> run_calls(const Toolbox& box, const std::vector<toolcall::ToolCall>& calls,
                                           const DecideFn& decide, ActionLog* log, const LoopOptions& opts,
                                           const std::atomic<bool>* stop, const std::string& log_note) {
  std::vector<CallOutcome> out(calls.size());
  for (size_t i = 0; i < calls.size(); ++i) {  // decide every call first, one question at a time
    CallOutcome& o = out[i];
    o.id = calls[i].id;
    o.name = calls[i].name;
    o.arguments = calls[i].arguments;
    o.tool = box.find(o.name);
    o.args = json::parse(o.arguments, nullptr, false);
    if (!o.tool) {
      o.result = {true, "There is no tool named '" + o.name + "'.", nullptr, {}};
      continue;
    }
    if (o.args.is_discarded() || !o.args.is_object()) {
      o.result = {true, "The arguments are not a JSON object: " + o.arguments, nullptr, {}};
      o.args = json::object();
      continue;
    }
    o.approval = decide(*o.tool, o.args);
    if (!o.approval.approved) o.result = {true, "The call was not approved (" + o.approval.by + ").", nullptr, {}};
    else if (o.approval.args.is_object()) o.args = o.approval.args;
  }
  std::vector<std::future<void>> running;  // the approved ones at once
  for (CallOutcome& o : out)
    if (o.tool && o.approval.approved)
      running.push_back(std::async(std::launch::async, [&box, &o, &opts, stop] {
        const auto t0 = std::chrono::steady_clock::now();
        o.result = box.execute(*o.tool, o.args, opts.tool_timeout_s, stop);
        o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      }));
  for (auto& f : running) f.get();
  for (CallOutcome& o : out) {
    o.text = o.result.text;
    if (o.text.size() > opts.max_result_chars) {
      const size_t full = o.text.size();
      o.text = utf8_prefix(o.text, opts.max_result_chars) + "\n[modu: the result had " + std::to_string(full) +
               " characters; it was cut to " + std::to_string(opts.max_result_chars) + " to fit the context]";
    }
    if (log && o.tool) {
      ActionRecord a;
      a.tool = o.tool->qualified;
      a.source = o.tool->spec.source;
      a.arguments = o.args;
      a.approved = o.approval.approved;
      a.decided_by = o.approval.by + log_note;
      a.is_error = o.result.is_error;
      a.result_sha256 = sha256_hex(o.result.text);
      a.result_bytes = o.result.text.size();
      a.duration_s = o.seconds;
      if (Status st = log->append(a); !st.ok()) return st.with_context("the action log");
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// The loop

Result<LoopResult> run_loop(ojson& messages, Toolbox& box, const TurnFn& turn, const DecideFn& decide, ActionLog* log,
                            const LoopOptions& opts, const LoopEvents& events, const std::atomic<bool>* stop,
                            const std::string& log_note) {
  auto emit = [&](const char* kind, const json& data) {
    if (events) events(kind, data);
  };
  int counter = 0;
  auto new_id = [&](const char* kind, size_t i) { return opts.new_id ? opts.new_id(kind, i) : "call_" + std::to_string(++counter); };
  LoopResult out;
  for (int step = 0; step < opts.max_steps; ++step) {
    if (stop && stop->load()) {
      out.stop_reason = "stopped";
      break;
    }
    if (opts.token_budget > 0 && out.generated >= opts.token_budget) {
      out.stop_reason = "token budget";
      break;
    }
    if (opts.refresh_tools) box.refresh(events);
    const std::string choice = (size_t)step < opts.tool_choice.size() ? opts.tool_choice[step] : "auto";
    const ojson tools = box.tools_json();
    MODU_ASSIGN_OR_RETURN(TurnOutput t, turn(Turn{step, messages, tools, choice}));
    if (!t.stop_reason.empty()) {
      out.stop_reason = t.stop_reason;
      break;
    }
    out.generated += t.generated;
    out.cut = t.cut;
    toolcall::Reply& r = t.reply;
    // Which calls the toolbox runs, which the caller does; a person answering later defers them all.
    bool client = false, defer = false;
    for (auto& c : r.calls) {
      if (opts.client_tools.count(c.name) && !box.find(c.name)) {
        client = true;
        continue;
      }
      if (const BoundTool* b = box.find(c.name)) {
        const json a = json::parse(c.arguments, nullptr, false);
        if (opts.defer && opts.defer(*b, a.is_object() ? a : json::object())) defer = true;
      }
    }
    for (size_t i = 0; i < r.calls.size(); ++i) {
      toolcall::ToolCall& c = r.calls[i];
      const bool mine = !(opts.client_tools.count(c.name) && !box.find(c.name));
      if (c.id.empty()) c.id = new_id(!mine ? "client" : defer ? "deferred" : "run", i);
      // What is stored is what the person sees and what runs: the arguments as parsed and written back.
      if (defer && mine)
        if (const ojson a = ojson::parse(c.arguments, nullptr, false); a.is_object()) c.arguments = a.dump();
    }
    ojson msg = {{"role", "assistant"}, {"content", r.content}};
    if (!r.reasoning.empty()) msg["reasoning_content"] = r.reasoning;
    if (!r.calls.empty()) {
      msg["tool_calls"] = ojson::array();
      for (const auto& c : r.calls) {
        ojson args = ojson::parse(c.arguments, nullptr, false);
        msg["tool_calls"].push_back({{"id", c.id}, {"type", "function"},
                                     {"function", {{"name", c.name}, {"arguments", args.is_discarded() ? ojson::object() : args}}}});
      }
    }
    messages.push_back(msg);
    json rec = {{"step", step + 1}, {"tool_choice", choice}};
    for (auto& [k, v] : t.record.items()) rec[k] = v;
    emit("assistant", {{"content", r.content}, {"reasoning", r.reasoning}, {"calls", r.calls.size()}});
    out.last = r;
    if (t.cut && opts.stop_on_cut) {  // none of the cut turn's calls runs, so none is kept
      ojson& m = messages.back();
      if (m.contains("tool_calls")) {
        ojson keep = ojson::array();
        for (const auto& c : m["tool_calls"])
          if (opts.client_tools.count(c["function"]["name"].get<std::string>())) keep.push_back(c);
        if (keep.empty()) m.erase("tool_calls");
        else m["tool_calls"] = keep;
      }
      std::erase_if(out.last.calls, [&](const toolcall::ToolCall& c) { return !opts.client_tools.count(c.name); });
      out.steps.push_back(rec);
      out.stop_reason = "length";
      break;
    }
    if (r.calls.empty()) {
      out.steps.push_back(rec);
      out.stop_reason = "answer";
      emit("final", {{"content", r.content}});
      break;
    }
    std::vector<toolcall::ToolCall> mine;
    for (const auto& c : r.calls)
      if (!(opts.client_tools.count(c.name) && !box.find(c.name))) mine.push_back(c);
    if (defer) {  // nothing runs before the person's answers come back
      for (const auto& c : mine) {
        const BoundTool* b = box.find(c.name);
        emit("deferred", {{"id", c.id}, {"name", c.name}, {"server", b ? b->spec.source : ""}, {"arguments", c.arguments}});
      }
      out.deferred = mine;
      out.steps.push_back(rec);
      out.stop_reason = "approval";
      break;
    }
    for (const auto& c : mine) {
      const json a = json::parse(c.arguments, nullptr, false);
      emit("call", {{"id", c.id}, {"name", c.name}, {"arguments", a.is_discarded() ? json(c.arguments) : a}});
    }
    MODU_ASSIGN_OR_RETURN(auto done, run_calls(box, mine, decide, log, opts, stop, log_note));
    json calls_rec = json::array();
    for (CallOutcome& o : done) {
      std::string content = o.text;
      if (!o.result.images.empty() && opts.take_images) content = opts.take_images(o.result.images, events) + content;
      emit("result", {{"id", o.id}, {"name", o.name}, {"server", o.tool ? o.tool->spec.source : ""},
                      {"arguments", o.arguments}, {"ran_with", o.args}, {"approved", o.approval.approved}, {"decided_by", o.approval.by},
                      {"is_error", o.result.is_error}, {"text", o.text}, {"output", o.result.text}, {"seconds", o.seconds}});
      messages.push_back({{"role", "tool"}, {"tool_call_id", o.id}, {"name", o.name}, {"content", content}});
      calls_rec.push_back({{"name", o.name}, {"arguments", o.args}, {"approved", o.approval.approved},
                           {"decided_by", o.approval.by}, {"is_error", o.result.is_error}, {"result", o.text}});
    }
    rec["calls"] = calls_rec;
    out.steps.push_back(rec);
    if (client) {
      out.stop_reason = "client calls";
      break;
    }
    if (t.cancelled || (stop && stop->load())) {
      out.stop_reason = "stopped";
      break;
    }
  }
  return out;
}

}  // namespace modu::agent
