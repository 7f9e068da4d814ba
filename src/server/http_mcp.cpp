// MCP tools in the Responses API ({"type": "mcp", "server_label": ...}): the server connects to the
// MCP servers it was started with, offers their tools to the model as function tools, and runs the
// calls itself under its policy (with the action log), feeding results back, until the model
// answers or calls a client-side function; the response lists mcp_list_tools and mcp_call items
// before the final output, as OpenAI's does. A call that needs a person's approval (the request's
// require_approval, or every call in high-impact mode) ends the response with an
// mcp_approval_request item; the client answers with an mcp_approval_response input item and
// previous_response_id, and the loop goes on from there.
#include <chrono>

#include "http_impl.h"

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

void HttpServer::Impl::responses_mcp(const httplib::Request& req, httplib::Response& res, const Tenant& tenant, ChatRequest cr,
                                     const ResponsesInfo& info) {
  auto bad = [&](std::string msg, std::string param) {
    ApiError e = api_error(400, std::move(msg), "invalid_request_error", "invalid_value");
    e.param = std::move(param);
    send_error(res, e);
  };
  if (cr.stream) return bad("Streaming with MCP tools is not supported yet; send the request with stream false.", "stream");
  // The model sees each allowed MCP tool as a function tool.
  struct Offered {
    McpServer* server;
    std::string label, name;
    bool needs_approval = true;
  };
  std::map<std::string, Offered> offered;  // function name -> server tool
  json output = json::array();
  if (!cr.tools.is_array()) cr.tools = ojson::array();
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
    for (const auto& t : it->second->tools) {
      const json& allowed = info.mcp[i]["allowed_tools"];
      if (allowed.is_array() && std::find(allowed.begin(), allowed.end(), t.name) == allowed.end()) continue;
      if (offered.count(t.name)) return bad("Two MCP servers offer a tool named '" + t.name + "'; restrict one with allowed_tools.", "tools");
      auto listed_in = [&](const char* key) {
        const json& l = info.mcp[i][key];
        return l.is_array() && std::find(l.begin(), l.end(), t.name) != l.end();
      };
      // High-impact mode: a person approves every action, whatever the request says.
      const bool approve = opts.high_impact || listed_in("always_tools") ||
                           (!listed_in("never_tools") && info.mcp[i]["require_approval"] != "never");
      offered[t.name] = {it->second.get(), label, t.name, approve};
      cr.tools.push_back({{"type", "function"},
                          {"function", {{"name", t.name}, {"description", t.description}, {"parameters", ojson::parse(t.input_schema.dump())}}}});
      listed.push_back({{"name", t.name}, {"description", t.description}, {"input_schema", t.input_schema}});
    }
    output.push_back({{"id", "mcpl_" + std::to_string(i)}, {"type", "mcp_list_tools"}, {"server_label", label}, {"tools", listed}});
  }
  const ResponseMeta rm = meta("resp", '_');
  const CompatMeta m{rm.id, rm.model, rm.created};
  CompatUsage total;
  ResponsesInfo out_info = info;
  const auto wm = watermark_for(tenant, cr.sampling.temperature);
  const std::string wm_id = wm ? wm->id : "";
  // Runs one MCP call (under the server's policy) and records it: the mcp_call item, the action log.
  // `person` is who approved it when a person did; returns the tool message for the model.
  auto run_call = [&](const std::string& id, const Offered& off, const std::string& arguments, const std::string& person,
                      bool person_denied, const std::string& reason) {
    json args = json::parse(arguments, nullptr, false);
    if (!args.is_object()) args = json::object();
    const std::string qualified = off.label + "." + off.name;
    agent::Approval ap;
    if (person_denied) {
      ap.approved = false;
      ap.by = "a person, through mcp_approval_response" + (reason.empty() ? std::string() : ": " + reason);
    } else if (mcp_policy) {
      ap = agent::decide(*mcp_policy, nullptr, /*approve_all=*/true, qualified, args);  // "ask": asked already, or never
      if (ap.approved && !person.empty()) ap.by = person;
    } else {
      ap.approved = true;
      ap.by = person.empty() ? "require_approval: never" : person;
      ap.args = args;
    }
    std::string out_text, error;
    bool is_error = false;
    const auto t0 = std::chrono::steady_clock::now();
    if (!ap.approved) {
      error = "The call was not approved (" + ap.by + ").";
      is_error = true;
    } else {
      std::lock_guard<std::mutex> lock(off.server->mu);
      auto r = off.server->client->call_tool(off.name, args);
      if (!r.ok()) error = r.status().message(), is_error = true;
      else if (r->is_error) error = r->text(), is_error = true;
      else out_text = r->text();
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (action_log) {
      agent::ActionRecord a;
      a.tool = qualified;
      a.source = off.label;
      a.arguments = args;
      a.approved = ap.approved;
      a.decided_by = ap.by + " (tenant " + tenant.name + ")";
      a.is_error = is_error;
      a.result_sha256 = agent::sha256_hex(is_error ? error : out_text);
      a.result_bytes = (is_error ? error : out_text).size();
      a.duration_s = secs;
      (void)action_log->append(a);
    }
    output.push_back({{"id", id}, {"type", "mcp_call"}, {"server_label", off.label}, {"name", off.name},
                      {"arguments", arguments}, {"output", is_error ? json(nullptr) : json(out_text)},
                      {"error", is_error ? json(error) : json(nullptr)}});
    return ojson{{"role", "tool"}, {"tool_call_id", id}, {"name", off.name}, {"content", is_error ? error : out_text}};
  };

  // What a later previous_response_id continues from: the input, every MCP step run here, the reply.
  ResponsesInfo stored = info;
  // Answers to the previous response's approval requests: the calls are the stored conversation's
  // last assistant turn; each approved one runs now, each denied one tells the model so.
  if (!info.approvals.empty()) {
    const ojson* last = nullptr;
    for (auto it = cr.messages.rbegin(); it != cr.messages.rend() && !last; ++it)
      if ((*it).value("role", "") == "assistant" && (*it).contains("tool_calls")) last = &*it;
    std::vector<ojson> results;
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
      auto off = offered.find(name);
      if (off == offered.end()) return bad("The approval request '" + id + "' is for '" + name + "', which the request's "
                                           "mcp tools do not offer.", "tools");
      const ojson& fa = (*call)["function"]["arguments"];
      const std::string arguments = fa.is_string() ? fa.get<std::string>() : fa.dump();
      const bool ok = a["approve"].get<bool>();
      results.push_back(run_call(id, off->second, arguments, ok ? "a person, through mcp_approval_response (tenant " + tenant.name + ")" : "",
                                 !ok, a.value("reason", "")));
    }
    for (auto& r : results) {
      cr.messages.push_back(r);
      stored.conversation.push_back(r);
    }
    cr.tool_choice = "auto";
    cr.tool_choice_name.clear();
  }

  constexpr int kMaxSteps = 8;
  toolcall::Reply reply;
  CompatFinish finish;
  json approval_requests = json::array();
  for (int step = 0; step < kMaxSteps; ++step) {
    ChatRun run;
    if (auto e = start_chat(req, res, cr, tenant, &run)) return send_error(res, *e);
    const std::string text = collect_text(*run.st);
    charge(tenant, *run.st);
    if (auto e = incomplete(*run.st)) return send_error(res, *e);
    total.input_tokens += run.st->n_prompt();
    total.output_tokens += run.st->n_completion();
    total.cached_tokens += run.st->n_cached();
    finish.length = run.st->finish() == Finish::kLength;
    reply = run.limit(toolcall::parse_reply(run.conv, text, run.opts));
    audit_request({"/v1/responses", tenant.name, req.body, text, finish_name(run.st->finish()), wm_id, run.st.get(), reply.calls, false});
    // Calls to MCP tools run here; any other call goes back to the client as a function_call.
    bool ran = false, client_calls = false;
    ojson assistant = {{"role", "assistant"}, {"content", reply.content}, {"tool_calls", ojson::array()}};
    ojson results = ojson::array();
    // A call that needs a person's approval stops the loop: every MCP call of this turn is then
    // asked about (none runs before the answers come back with previous_response_id).
    bool ask = false;
    for (const auto& c : reply.calls)
      if (auto it = offered.find(c.name); it != offered.end() && it->second.needs_approval) ask = true;
    for (size_t i = 0; i < reply.calls.size(); ++i) {
      auto& c = reply.calls[i];
      auto it = offered.find(c.name);
      if (it == offered.end()) {
        client_calls = true;
        continue;
      }
      ran = true;
      if (ask) {
        c.id = "mcpr_" + compat_detail::id_suffix(m.id) + "_" + std::to_string(output.size() + approval_requests.size());
        // The person sees the arguments exactly as they will run: parsed and written back as the
        // stored conversation keeps them (a number like 1e+23 reads differently than the model wrote it).
        if (const ojson a = ojson::parse(c.arguments, nullptr, false); a.is_object()) c.arguments = a.dump();
        approval_requests.push_back({{"id", c.id}, {"type", "mcp_approval_request"}, {"server_label", it->second.label},
                                     {"name", c.name}, {"arguments", c.arguments}});
        continue;
      }
      const std::string id = "mcp_" + compat_detail::id_suffix(m.id) + "_" + std::to_string(output.size());
      json args = json::parse(c.arguments, nullptr, false);
      if (!args.is_object()) args = json::object();
      assistant["tool_calls"].push_back({{"id", id}, {"type", "function"},
                                         {"function", {{"name", c.name}, {"arguments", ojson::parse(args.dump())}}}});
      results.push_back(run_call(id, it->second, c.arguments, "", false, ""));
    }
    if (ask) break;
    if (!ran || client_calls || finish.length) break;
    cr.messages.push_back(assistant);
    stored.conversation.push_back(assistant);
    for (auto& r : results) {
      cr.messages.push_back(r);
      stored.conversation.push_back(r);
    }
    // The client's tool_choice forces the first step; later ones are the model's to choose.
    cr.tool_choice = "auto";
    cr.tool_choice_name.clear();
    reply = {};
  }
  // The final turn's output (message, and calls of client-side functions) after the MCP items.
  toolcall::Reply final_reply = reply;
  // Pending approvals stay in the stored turn (their ids are the requests'), so the answers can find them.
  if (approval_requests.empty())
    std::erase_if(final_reply.calls, [&](const toolcall::ToolCall& c) { return offered.count(c.name) > 0; });
  for (size_t i = 0; i < final_reply.calls.size(); ++i)
    if (final_reply.calls[i].id.empty()) final_reply.calls[i].id = "call_" + compat_detail::id_suffix(m.id) + "_" + std::to_string(i);
  toolcall::Reply shown = final_reply;  // the client sees approval requests, not the pending calls as function calls
  std::erase_if(shown.calls, [&](const toolcall::ToolCall& c) { return offered.count(c.name) > 0; });
  json r = responses_response_json(m, out_info, shown, finish, total);
  for (auto& item : approval_requests) output.push_back(item);
  for (auto& item : r["output"]) output.push_back(item);
  r["output"] = output;
  r["provenance"] = label(res, wm_id);
  store_response(&responses, m.id, stored, final_reply);
  res.set_content(dump_json(r), "application/json");
}

}  // namespace modu::server
