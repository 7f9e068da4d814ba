// MCP tools in the Responses API ({"type": "mcp", "server_label": ...}): the server connects to the
// MCP servers it was started with, offers their tools to the model as function tools, and runs the
// calls itself through the agent's tool loop (agent/loop.h: the same loop as `modu agent`, with the
// engine generating each turn) under its policy and action log, until the model answers or calls
// a client-side function. The response lists mcp_list_tools and mcp_call items before the final
// output, as OpenAI's does, streamed (typed SSE events, the model's text as it is generated) or
// whole. A call that needs a person's approval (the request's require_approval, or every call in
// high-impact mode) ends the response with an mcp_approval_request item; the client answers with
// an mcp_approval_response input item and previous_response_id, and the loop goes on from there.
#include <chrono>
#include <thread>

#include "http_impl.h"
#include "modu/agent/loop.h"

namespace modu::server {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

Status HttpServer::Impl::connect_mcp() {
  std::vector<agent::McpServerConfig> cfgs;
  if (!opts.mcp_config.empty()) {
    MODU_ASSIGN_OR_RETURN(cfgs, agent::load_mcp_config(opts.mcp_config));
  }
  for (size_t i = 0; i < opts.mcp.size(); ++i) {
    MODU_ASSIGN_OR_RETURN(auto c, agent::parse_mcp_flag(opts.mcp[i], "mcp" + std::to_string(i + 1)));
    cfgs.push_back(std::move(c));
  }
  for (const auto& c : cfgs) {
    auto client = agent::McpClient::connect(c);
    if (!client.ok()) {  // the others go on
      std::fprintf(stderr, "modu serve: MCP server '%s' left out: %s\n", c.name.c_str(), client.status().message().c_str());
      continue;
    }
    auto tools = (*client)->list_tools();
    if (!tools.ok()) {
      std::fprintf(stderr, "modu serve: MCP server '%s' left out: %s\n", c.name.c_str(), tools.status().message().c_str());
      continue;
    }
    auto s = std::make_unique<McpServer>();
    s->client = std::move(client).value();
    s->tools = std::move(tools).value();
    std::fprintf(stderr, "modu serve: MCP server '%s': %zu tools\n", c.name.c_str(), s->tools.size());
    mcp[c.name] = std::move(s);
  }
  if (!opts.mcp_policy.empty()) {
    MODU_ASSIGN_OR_RETURN(mcp_policy, agent::Policy::load(opts.mcp_policy));
  }
  if (!opts.action_log.empty() || (audit && !mcp.empty())) {
    MODU_ASSIGN_OR_RETURN(action_log, agent::ActionLog::open(opts.action_log, audit));
  }
  return Status::Ok();
}

// One Responses request with MCP tools, from the first turn to the final response object. The
// same code runs a streamed request (on its own thread, `sink` queueing SSE text for the client)
// and a whole one (`sink` drops the events; the response object is the stream's last).
struct HttpServer::Impl::McpRequest {
  Impl& srv;
  httplib::Request req;  // a copy: a streamed request's loop outlives the handler
  Tenant tenant;
  ChatRequest cr;
  ResponsesInfo info;
  CompatMeta meta;
  std::string wm_id;
  json provenance;
  agent::Toolbox box;
  std::set<std::string> needs_approval;  // function names of MCP tools a person approves
  std::map<std::string, std::string> label_of;  // function name -> server label
  std::set<std::string> client_tools;    // the request's own function tools
  ojson function_tools = ojson::array();
  json list_items = json::array();
  // Answers to the previous response's approval requests: the call, and the person's answer.
  struct Answer {
    toolcall::ToolCall call;
    bool approve = false;
    std::string reason;
  };
  std::vector<Answer> answers;
  ResponsesStream events;
  std::function<void(std::string)> sink;
  std::atomic<bool> stop{false};
  std::optional<ChatRun> first;  // the first turn, submitted by the handler (errors are then plain HTTP errors)
  std::optional<ApiError> error;
  CompatUsage total;
  bool streaming = false;
  int n_ids = 0;

  McpRequest(Impl& s, const httplib::Request& r, Tenant t, ChatRequest c, ResponsesInfo i, CompatMeta m)
      : srv(s), req(r), tenant(std::move(t)), cr(std::move(c)), info(std::move(i)), meta(m), events(meta, info) {}

  // The server's rule for a call no person is asked about now: its policy (an "ask" was asked
  // already, or the request said never), else allowed by the request's require_approval "never".
  agent::Approval by_policy(const agent::BoundTool& t, const json& args, const std::string& person) const {
    agent::Approval ap;
    if (srv.mcp_policy) {
      ap = agent::decide(*srv.mcp_policy, nullptr, /*approve_all=*/true, t.qualified, args);
      if (ap.approved && !person.empty()) ap.by = person;
      return ap;
    }
    ap.approved = true;
    ap.by = person.empty() ? "require_approval: never" : person;
    ap.args = args;
    return ap;
  }

  // The client sees the whole result (the model a cut one when it is long).
  json call_item(const agent::CallOutcome& o) const {
    const bool err = o.result.is_error;
    return {{"id", o.id}, {"type", "mcp_call"}, {"server_label", o.tool ? o.tool->spec.source : ""}, {"name", o.name},
            {"arguments", o.arguments}, {"output", err ? json(nullptr) : json(o.result.text)},
            {"error", err ? json(o.result.text) : json(nullptr)}};
  }

  agent::LoopOptions loop_options() {
    agent::LoopOptions lo;
    lo.max_steps = 8;
    lo.refresh_tools = false;  // the request's tools are what it allowed, as listed at start-up
    lo.stop_on_cut = true;
    lo.client_tools = client_tools;
    lo.defer = [this](const agent::BoundTool& t, const json&) { return needs_approval.count(t.spec.name) > 0; };
    const std::string suffix = compat_detail::id_suffix(meta.id);
    lo.new_id = [this, suffix](const char* kind, size_t i) {
      if (std::string(kind) == "client") return "call_" + suffix + "_" + std::to_string(i);  // as the stream numbers them
      return std::string(std::string(kind) == "deferred" ? "mcpr_" : "mcp_") + suffix + "_" + std::to_string(n_ids++);
    };
    return lo;
  }

  // One model turn through the engine: its text streams to the client as it comes (MCP calls are
  // held back: they become mcp_call items once they have run).
  Result<agent::TurnOutput> turn(const agent::Turn& t) {
    ChatRun run;
    if (t.step == 0 && first) {
      run = std::move(*first);
      first.reset();
    } else {
      ChatRequest c = cr;
      c.messages = t.messages;
      c.tools = function_tools;
      for (const auto& f : t.tools) c.tools.push_back(f);
      if (t.step > 0 || !answers.empty()) c.tool_choice = "auto", c.tool_choice_name.clear();  // the client's choice forces the first turn only
      httplib::Response scratch;  // headers were sent (streaming) or are set at the end
      if (auto e = srv.start_chat(req, scratch, c, tenant, &run)) {
        error = *e;
        return failed_precondition("turn " + std::to_string(t.step + 1) + ": " + e->message);
      }
    }
    toolcall::ReplyStream rs(run.conv, run.opts);
    std::set<int> held;  // this turn's calls to MCP tools, by index
    auto forward = [&](toolcall::Delta d) {
      d = run.limit(d);
      std::erase_if(d.calls, [&](const toolcall::CallDelta& c) {
        if (!c.name.empty() && label_of.count(c.name) && !client_tools.count(c.name)) held.insert(c.index);
        return held.count(c.index) > 0;
      });
      if (!d.empty()) sink(events.push(d));
    };
    std::string text;
    for (;;) {
      std::vector<Delta> ds;
      const bool done = run.st->wait(&ds, std::chrono::milliseconds(100));
      for (const auto& d : ds) {
        text += d.text;
        forward(rs.push(d.text));
      }
      if (done) break;
      if (stop.load()) run.st->cancel();
    }
    forward(rs.finish());
    events.next_turn();
    run.st->clear_client_probe();
    srv.charge(tenant, *run.st);
    if (auto e = srv.incomplete(*run.st)) {
      error = *e;
      return failed_precondition(e->message);
    }
    total.input_tokens += run.st->n_prompt();
    total.output_tokens += run.st->n_completion();
    total.cached_tokens += run.st->n_cached();
    agent::TurnOutput out;
    out.reply = run.limit(toolcall::parse_reply(run.conv, text, run.opts));
    out.generated = run.st->n_completion();
    out.cut = run.st->finish() == Finish::kLength;
    srv.audit_request({"/v1/responses", tenant.name, req.body, text, finish_name(run.st->finish()), wm_id, run.st.get(),
                       out.reply.calls, streaming});
    return out;
  }

  // The whole request: list items, the answered approvals, the loop, the final events; stores
  // the conversation for previous_response_id.
  void go() {
    sink(events.start());
    for (const auto& li : list_items) sink(events.item(li));
    ojson& messages = cr.messages;
    ojson stored = info.conversation;
    agent::LoopOptions lo = loop_options();
    ActionLogPtr log = srv.action_log ? &*srv.action_log : nullptr;
    const std::string note = " (tenant " + tenant.name + ")";
    for (const Answer& a : answers) {  // each approved call runs now; a denied one tells the model so
      auto decide = [&](const agent::BoundTool& t, const json& args) {
        if (a.approve) return by_policy(t, args, "a person, through mcp_approval_response");
        agent::Approval ap;
        ap.by = "a person, through mcp_approval_response" + (a.reason.empty() ? std::string() : ": " + a.reason);
        return ap;
      };
      auto done = agent::run_calls(box, {a.call}, decide, log, lo, &stop, note);
      if (!done.ok()) {
        if (first) first->st->cancel();
        return fail(api_error(500, done.status().message(), "server_error"));
      }
      for (const auto& o : *done) {
        sink(events.item(call_item(o)));
        ojson msg = {{"role", "tool"}, {"tool_call_id", o.id}, {"name", o.name}, {"content", o.text}};
        messages.push_back(msg);
        stored.push_back(msg);
      }
    }
    const size_t n0 = messages.size();
    json approvals = json::array();
    auto on_event = [&](const std::string& kind, const json& d) {
      if (kind == "result") {
        agent::CallOutcome o;
        o.id = d["id"], o.name = d["name"], o.arguments = d["arguments"];
        o.result.is_error = d["is_error"];
        o.result.text = d["output"];
        json item = call_item(o);
        item["server_label"] = d["server"];
        sink(events.item(item));
      } else if (kind == "deferred") {
        approvals.push_back({{"id", d["id"]}, {"type", "mcp_approval_request"}, {"server_label", d["server"]},
                             {"name", d["name"]}, {"arguments", d["arguments"]}});
      }
    };
    auto decide = [this](const agent::BoundTool& t, const json& args) { return by_policy(t, args, ""); };
    auto r = agent::run_loop(messages, box, [this](const agent::Turn& t) { return turn(t); }, decide, log, lo, on_event, &stop, note);
    if (first) first->st->cancel();  // (a first turn the loop never read: it stopped before it)
    if (!r.ok()) return fail(error ? *error : api_error(500, r.status().message(), "server_error"));
    if (stop.load()) return;  // the client left: nothing to send, nothing to continue from
    for (const auto& item : approvals) sink(events.item(item));
    CompatFinish finish;
    finish.length = r->cut;
    sink(events.finish(finish, total, provenance));
    for (size_t i = n0; i < messages.size(); ++i) stored.push_back(messages[i]);
    if (info.store) srv.responses.put(meta.id, std::move(stored));
  }

  void fail(const ApiError& e) {
    error = e;
    sink(events.error(e));
  }

  using ActionLogPtr = agent::ActionLog*;
};

void HttpServer::Impl::responses_mcp(const httplib::Request& req, httplib::Response& res, const Tenant& tenant, ChatRequest cr,
                                     const ResponsesInfo& info) {
  auto bad = [&](std::string msg, std::string param) {
    ApiError e = api_error(400, std::move(msg), "invalid_request_error", "invalid_value");
    e.param = std::move(param);
    send_error(res, e);
  };
  const ResponseMeta rm = meta("resp", '_');
  auto q = std::make_shared<McpRequest>(*this, req, tenant, cr, info, CompatMeta{rm.id, rm.model, rm.created});
  q->streaming = cr.stream;
  // The model sees each allowed MCP tool as a function tool, beside the request's own functions.
  if (cr.tools.is_array()) q->function_tools = cr.tools;
  for (const auto& f : q->function_tools)
    if (f.contains("function")) q->client_tools.insert(f["function"].value("name", ""));
  for (size_t i = 0; i < info.mcp.size(); ++i) {
    const std::string label = info.mcp[i]["server_label"];
    auto it = mcp.find(label);
    if (it == mcp.end()) {
      std::string known;
      for (const auto& [k, v] : mcp) known += (known.empty() ? "" : ", ") + k;
      return bad("No MCP server '" + label + "' is configured on this server (" + (known.empty() ? "none is" : known + " are") +
                     "); servers are given to `modu serve --mcp-config FILE` or --mcp, not by the client.",
                 "tools");
    }
    json listed = json::array();
    std::vector<agent::McpTool> offered;
    for (const auto& t : it->second->tools) {
      const json& allowed = info.mcp[i]["allowed_tools"];
      if (allowed.is_array() && std::find(allowed.begin(), allowed.end(), t.name) == allowed.end()) continue;
      if (q->label_of.count(t.name) || q->client_tools.count(t.name))
        return bad("Two tools are named '" + t.name + "' (MCP servers or the request's functions); restrict one with allowed_tools.", "tools");
      auto listed_in = [&](const char* key) {
        const json& l = info.mcp[i][key];
        return l.is_array() && std::find(l.begin(), l.end(), t.name) != l.end();
      };
      // High-impact mode: a person approves every action, whatever the request says.
      if (opts.high_impact || listed_in("always_tools") || (!listed_in("never_tools") && info.mcp[i]["require_approval"] != "never"))
        q->needs_approval.insert(t.name);
      q->label_of[t.name] = label;
      offered.push_back(t);
      listed.push_back({{"name", t.name}, {"description", t.description}, {"input_schema", t.input_schema}});
    }
    q->box.add_mcp_tools(it->second->client.get(), offered);
    q->list_items.push_back({{"id", "mcpl_" + std::to_string(i)}, {"type", "mcp_list_tools"}, {"server_label", label}, {"tools", listed}});
  }
  // Answers to the previous response's approval requests: the calls are the stored conversation's
  // last assistant turn.
  if (!info.approvals.empty()) {
    const ojson* last = nullptr;
    for (auto it = cr.messages.rbegin(); it != cr.messages.rend() && !last; ++it)
      if ((*it).value("role", "") == "assistant" && (*it).contains("tool_calls")) last = &*it;
    for (const auto& a : info.approvals) {
      const std::string id = a["id"];
      const ojson* call = nullptr;
      if (last)
        for (const auto& c : (*last)["tool_calls"])
          if (c.value("id", "") == id) call = &c;
      if (!call)
        return bad("No pending MCP approval request '" + id + "' in the previous response; send previous_response_id "
                   "of the response that asked.", "input");
      const std::string name = (*call)["function"]["name"];
      if (!q->label_of.count(name))
        return bad("The approval request '" + id + "' is for '" + name + "', which the request's mcp tools do not offer.", "tools");
      const ojson& fa = (*call)["function"]["arguments"];
      q->answers.push_back({{id, name, fa.is_string() ? fa.get<std::string>() : fa.dump()}, a["approve"].get<bool>(), a.value("reason", "")});
    }
  }
  const auto wm = watermark_for(tenant, cr.sampling.temperature);
  q->wm_id = wm ? wm->id : "";
  q->provenance = label(res, q->wm_id);
  // The first turn is submitted here when nothing runs before it, so that a full queue or a bad
  // request is a plain HTTP error.
  if (q->answers.empty()) {
    ChatRequest c = cr;
    if (!c.tools.is_array()) c.tools = ojson::array();
    for (const auto& f : q->box.tools_json()) c.tools.push_back(f);
    ChatRun run;
    if (auto e = start_chat(req, res, c, tenant, &run)) return send_error(res, *e);
    q->first = std::move(run);
  }
  if (!cr.stream) {
    q->sink = [](std::string) {};
    q->go();
    if (q->error) {
      if (q->first) q->first->st->cancel();
      return send_error(res, *q->error);
    }
    res.set_content(dump_json(q->events.response()), "application/json");
    return;
  }
  // Streamed: the loop runs on its own thread; the connection's thread sends what it queues.
  struct Pipe {
    std::mutex mu;
    std::condition_variable cv;
    std::string pending;
    bool done = false;
    std::thread worker;
    Clock::time_point last_write = Clock::now();
  };
  auto pipe = std::make_shared<Pipe>();
  q->sink = [p = pipe.get()](std::string s) {
    if (s.empty()) return;
    std::lock_guard<std::mutex> lock(p->mu);
    p->pending += s;
    p->cv.notify_all();
  };
  ++in_flight;
  pipe->worker = std::thread([q, p = pipe.get()] {
    q->go();
    std::lock_guard<std::mutex> lock(p->mu);
    p->done = true;
    p->cv.notify_all();
  });
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [pipe, q](size_t, httplib::DataSink& sink) {
        std::string out;
        bool done = false;
        {
          std::unique_lock<std::mutex> lock(pipe->mu);
          pipe->cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return !pipe->pending.empty() || pipe->done; });
          out.swap(pipe->pending);
          done = pipe->done;
        }
        // Nothing for a while (a tool running, the queue): a comment now and then notices clients that left.
        if (out.empty() && !done && Clock::now() - pipe->last_write > std::chrono::milliseconds(500)) out = ": keep-alive\n\n";
        if (!out.empty()) {
          pipe->last_write = Clock::now();
          if (!sink.write(out.data(), out.size())) {
            q->stop = true;  // the client is gone: the turn is cancelled, a running tool call too
            return false;
          }
        }
        if (done) sink.done();
        return true;
      },
      [this, pipe, q](bool) {
        q->stop = true;
        if (pipe->worker.joinable()) pipe->worker.join();
        --in_flight;
      });
}

}  // namespace modu::server
