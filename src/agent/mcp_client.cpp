// The MCP client (see mcp.h): request ids and their waiting callers, notifications (progress,
// list_changed), server requests (ping), the initialize handshake with version negotiation, and
// the tools / resources / prompts calls. Configuration parsing lives here too.
#include "modu/agent/mcp.h"

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <sstream>

#include "mcp_transport.h"
#include "modu/runtime/json_constraint.h"

namespace modu::agent {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct McpClient::Impl {
  int close_after_start = -1;  // a descriptor the started server inherited (the sandbox's seccomp filter)
  McpServerConfig config;
  std::unique_ptr<McpTransport> transport;
  std::string version;
  json server_info = json::object(), capabilities = json::object();

  mutable std::mutex mu;
  std::condition_variable cv;
  int64_t next_id = 1;
  std::map<int64_t, json> answers;                 // responses not yet taken
  std::map<std::string, McpProgress> progress;     // progress token -> callback
  bool closed = false;
  bool tools_changed = false;
  std::deque<std::string> log;  // most recent last, bounded
  size_t log_bytes = 0;
  std::vector<std::string> warnings;
  std::map<std::string, json> output_schemas;  // from the last tools/list

  void add_log(std::string line) {
    log_bytes += line.size();
    log.push_back(std::move(line));
    while (log_bytes > (256u << 10) && log.size() > 1) {
      log_bytes -= log.front().size();
      log.pop_front();
    }
  }

  // Never throws: a message of unexpected shape is logged and dropped.
  void on_message(json m) {
    try {
      dispatch(std::move(m));
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mu);
      add_log(std::string("a message modu could not read (") + e.what() + ")");
    }
  }

  void dispatch(json m) {
    if (!m.is_object()) return;
    const bool has_id = m.contains("id") && !m["id"].is_null();
    if (m.contains("method")) {
      const std::string method = m["method"].is_string() ? m["method"].get<std::string>() : "";
      if (has_id) {  // a request from the server
        json reply = {{"jsonrpc", "2.0"}, {"id", m["id"]}};
        if (method == "ping") reply["result"] = json::object();
        else reply["error"] = {{"code", -32601}, {"message", "modu does not offer '" + method + "'"}};
        (void)transport->send(reply);
        return;
      }
      std::lock_guard<std::mutex> lock(mu);
      if (method == "notifications/tools/list_changed") {
        tools_changed = true;
      } else if (method == "notifications/progress" && m.contains("params") && m["params"].is_object()) {
        const json& p = m["params"];
        const std::string token = p.contains("progressToken") ? p["progressToken"].dump() : "";
        auto it = progress.find(token);
        auto num = [&](const char* k, double d) { return p.contains(k) && p[k].is_number() ? p[k].get<double>() : d; };
        if (it != progress.end() && it->second)
          it->second(num("progress", 0), num("total", -1),
                     p.contains("message") && p["message"].is_string() ? p["message"].get<std::string>() : "");
      } else if (method == "notifications/message" && m.contains("params")) {
        add_log("log: " + m["params"].dump());
      }
      return;
    }
    if (has_id && m["id"].is_number_integer() && (m.contains("result") || m.contains("error"))) {
      const int64_t id = m["id"].get<int64_t>();  // (before m is moved: the right side goes first)
      std::lock_guard<std::mutex> lock(mu);
      answers[id] = std::move(m);
      cv.notify_all();
      return;
    }
    std::lock_guard<std::mutex> lock(mu);
    add_log("unexpected message: " + m.dump().substr(0, 300));
  }

  void on_log(const std::string& text, bool is_closed) {
    std::lock_guard<std::mutex> lock(mu);
    if (is_closed) {
      closed = true;
      cv.notify_all();
      return;
    }
    add_log(text);
  }

  std::string where() const { return "MCP server '" + config.name + "' (" + transport->describe() + ")"; }

  std::string last_log_lines(size_t n) const {  // (mu held)
    std::string s;
    for (size_t i = log.size() > n ? log.size() - n : 0; i < log.size(); ++i) s += "\n  | " + log[i];
    return s;
  }

  // Sends a request and waits for its response; on timeout or cancel it sends
  // notifications/cancelled. `progress_cb` receives notifications/progress for it.
  Result<json> request(const std::string& method, json params, double timeout_s, const McpProgress& progress_cb = nullptr,
                       const std::atomic<bool>* cancel = nullptr) {
    int64_t id;
    std::string token;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (closed) return io_error(where() + " has exited; its last output:" + last_log_lines(8));
      id = next_id++;
      if (progress_cb) {
        token = json(id).dump();
        progress[token] = progress_cb;
      }
    }
    json msg = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
    if (progress_cb) {
      if (!params.is_object()) params = json::object();
      params["_meta"]["progressToken"] = id;
    }
    if (!params.is_null()) msg["params"] = std::move(params);
    if (Status s = transport->send(msg); !s.ok()) {
      std::unique_lock<std::mutex> lock(mu);  // it may have exited: then say so, with its last words
      cv.wait_for(lock, std::chrono::milliseconds(700), [&] { return closed; });
      progress.erase(token);
      if (closed) return io_error(where() + " has exited; its last output:" + last_log_lines(8));
      return s;
    }
    if (timeout_s <= 0) timeout_s = config.timeout_s;
    const auto deadline = Clock::now() + std::chrono::milliseconds((int64_t)(timeout_s * 1000));
    std::unique_lock<std::mutex> lock(mu);
    auto done = [&] { return answers.count(id) || closed || (cancel && cancel->load()); };
    while (!done() && Clock::now() < deadline) cv.wait_until(lock, std::min(deadline, Clock::now() + std::chrono::milliseconds(100)));
    progress.erase(token);
    auto it = answers.find(id);
    if (it == answers.end()) {
      const bool was_closed = closed;
      const bool cancelled = cancel && cancel->load();
      const std::string tail = last_log_lines(8);
      lock.unlock();
      if (!was_closed) {
        json note = {{"jsonrpc", "2.0"}, {"method", "notifications/cancelled"},
                     {"params", {{"requestId", id}, {"reason", cancelled ? "cancelled by the user" : "timed out"}}}};
        (void)transport->send(note);
      }
      if (was_closed) return io_error(where() + " exited during '" + method + "'; its last output:" + tail);
      if (cancelled) return io_error(where() + ": '" + method + "' was cancelled");
      return io_error(where() + " did not answer '" + method + "' within " + std::to_string((int)timeout_s) +
                      " s (the request was cancelled)" + (tail.empty() ? "" : "; its last output:" + tail));
    }
    json answer = std::move(it->second);
    answers.erase(it);
    lock.unlock();
    if (answer.contains("error")) {
      const json& e = answer["error"];
      const std::string m = e.is_object() && e.contains("message") && e["message"].is_string() ? e["message"].get<std::string>() : e.dump();
      return invalid_argument(where() + " refused '" + method + "': " + m);
    }
    return answer.value("result", json::object());
  }

  Status notify(const std::string& method, json params = nullptr) {
    json msg = {{"jsonrpc", "2.0"}, {"method", method}};
    if (!params.is_null()) msg["params"] = std::move(params);
    return transport->send(msg);
  }

  // Every page of a paginated list (tools/list, resources/list, prompts/list).
  Result<json> list_all(const std::string& method, const char* key) {
    json all = json::array();
    std::string cursor;
    for (int page = 0; page < 1000; ++page) {
      json params = json::object();
      if (!cursor.empty()) params["cursor"] = cursor;
      MODU_ASSIGN_OR_RETURN(json r, request(method, params, -1));
      if (!r.is_object() || !r.contains(key) || !r[key].is_array())
        return corrupt(where() + " answered '" + method + "' without a '" + key + "' array");
      for (auto& x : r[key]) all.push_back(std::move(x));
      if (!r.contains("nextCursor") || !r["nextCursor"].is_string() || r["nextCursor"].get<std::string>().empty()) return all;
      const std::string next = r["nextCursor"].get<std::string>();
      if (next == cursor) return corrupt(where() + " repeats the cursor of '" + method + "'");
      cursor = next;
    }
    return corrupt(where() + ": '" + method + "' has more than 1000 pages");
  }
};

McpClient::McpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

McpClient::~McpClient() {
  if (impl_ && impl_->transport) impl_->transport->close();
}

Result<std::unique_ptr<McpClient>> McpClient::connect(const McpServerConfig& c) {
  auto impl = std::make_unique<Impl>();
  impl->config = c;
  if (!c.url.empty()) {
    impl->transport = make_http_transport(c);
  } else if (!c.command.empty()) {
    McpServerConfig run = c;
    int seccomp_fd = -1;  // the sandbox's filter, inherited by bwrap as fd 3, closed here once started
    if (c.sandbox) {  // the same server, started by bwrap inside the sandbox
      if (c.workspace.empty()) return invalid_argument("MCP server '" + c.name + "': a sandboxed server needs a workspace");
      std::vector<std::string> argv = {c.command};
      argv.insert(argv.end(), c.args.begin(), c.args.end());
      auto filter = sandbox_seccomp_fd();
      if (!filter.ok()) return filter.status().with_context("MCP server '" + c.name + "'");
      seccomp_fd = *filter;
      auto cmd = sandbox_command(argv, c.workspace, c.sandbox_options, c.env, /*seccomp_child_fd=*/3);
      if (!cmd.ok()) {
        ::close(seccomp_fd);
        return cmd.status().with_context("MCP server '" + c.name + "'");
      }
      run.inherit_fd = seccomp_fd;
      run.command = (*cmd)[0];
      run.args.assign(cmd->begin() + 1, cmd->end());
      run.env.clear();  // bwrap sets the server's environment itself
    }
    impl->transport = make_stdio_transport(run);
    impl->close_after_start = seccomp_fd;
  } else {
    return invalid_argument("MCP server '" + c.name + "' has neither a command nor a url");
  }
  Impl* p = impl.get();
  std::unique_ptr<McpClient> client(new McpClient(std::move(impl)));
  Status started = p->transport->start([p](json m) { p->on_message(std::move(m)); },
                                       [p](const std::string& t, bool closed) { p->on_log(t, closed); });
  if (p->close_after_start >= 0) ::close(p->close_after_start);  // the server has its copy
  MODU_RETURN_IF_ERROR(started);
  json params = {{"protocolVersion", kMcpProtocolVersion},
                 {"capabilities", json::object()},
                 {"clientInfo", {{"name", "modu"}, {"title", "modu agent"}, {"version", "0.1.0"}}}};
  auto r = p->request("initialize", params, c.timeout_s);
  if (!r.ok()) return r.status().with_context("initialize");
  const json& res = *r;
  const std::string v = res.value("protocolVersion", std::string());
  bool known = v == kMcpProtocolVersion;
  for (const char* o : kMcpOlderVersions) known = known || v == o;
  if (!known) {
    client.reset();  // stops the server
    return unimplemented("MCP server '" + c.name + "' speaks protocol version '" + v + "'; modu supports " +
                         kMcpProtocolVersion + ", 2025-06-18 and 2025-03-26");
  }
  p->version = v;
  if (res.contains("serverInfo") && res["serverInfo"].is_object()) p->server_info = res["serverInfo"];
  if (res.contains("capabilities") && res["capabilities"].is_object()) p->capabilities = res["capabilities"];
  p->transport->set_protocol_version(v);
  MODU_RETURN_IF_ERROR(p->notify("notifications/initialized"));
  return client;
}

const std::string& McpClient::name() const { return impl_->config.name; }
const std::string& McpClient::protocol_version() const { return impl_->version; }
const json& McpClient::server_info() const { return impl_->server_info; }
const json& McpClient::capabilities() const { return impl_->capabilities; }

bool McpClient::tools_changed() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->tools_changed;
}

Result<std::vector<McpTool>> McpClient::list_tools() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->tools_changed = false;
  }
  MODU_ASSIGN_OR_RETURN(json all, impl_->list_all("tools/list", "tools"));
  std::vector<McpTool> tools;
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->warnings.clear();
  impl_->output_schemas.clear();
  for (const json& t : all) {
    if (!t.is_object() || !t.contains("name") || !t["name"].is_string() || t["name"].get<std::string>().empty()) {
      impl_->warnings.push_back("a tool without a name was left out: " + t.dump().substr(0, 200));
      continue;
    }
    McpTool m;
    m.name = t["name"].get<std::string>();
    m.title = t.value("title", std::string());
    m.description = t.contains("description") && t["description"].is_string() ? t["description"].get<std::string>() : "";
    if (t.contains("inputSchema") && t["inputSchema"].is_object()) m.input_schema = t["inputSchema"];
    else if (t.contains("inputSchema")) {
      impl_->warnings.push_back("tool '" + m.name + "' has an inputSchema that is not an object; left out");
      continue;
    }
    if (t.contains("outputSchema") && t["outputSchema"].is_object()) m.output_schema = t["outputSchema"];
    bool dup = false;
    for (const auto& o : tools) dup = dup || o.name == m.name;
    if (dup) {
      impl_->warnings.push_back("tool '" + m.name + "' is listed twice; the first is used");
      continue;
    }
    if (!m.output_schema.is_null()) impl_->output_schemas[m.name] = m.output_schema;
    tools.push_back(std::move(m));
  }
  return tools;
}

Result<McpCallResult> McpClient::call_tool(const std::string& name, const json& arguments, double timeout_s,
                                           const McpProgress& progress, const std::atomic<bool>* cancel) {
  json params = {{"name", name}, {"arguments", arguments.is_object() ? arguments : json::object()}};
  auto r = impl_->request("tools/call", params, timeout_s, progress, cancel);
  if (!r.ok()) {
    // A JSON-RPC error for the call (unknown tool, bad arguments) is the tool's failure to
    // report to the model, not the end of the session.
    if (r.status().code() == StatusCode::kInvalidArgument) {
      McpCallResult e;
      e.is_error = true;
      e.content = json::array({{{"type", "text"}, {"text", r.status().message()}}});
      return e;
    }
    return r.status();
  }
  const json& res = *r;
  McpCallResult out;
  out.is_error = res.value("isError", false);
  if (res.contains("content") && res["content"].is_array()) out.content = res["content"];
  if (res.contains("structuredContent")) out.structured = res["structuredContent"];
  // Structured output is checked against the outputSchema the tool declared in tools/list.
  json schema;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto it = impl_->output_schemas.find(name);
    if (it != impl_->output_schemas.end()) schema = it->second;
  }
  if (!out.is_error && schema.is_object()) {
    std::string problem;
    if (out.structured.is_null()) {
      problem = "it declares an outputSchema but returned no structuredContent";
    } else if (auto c = JsonConstraint::from_schema(schema); c.ok()) {
      JsonConstraint k = *c;
      if (!k.accept(out.structured.dump()) || !k.can_end()) problem = "its structuredContent does not match its outputSchema";
    }
    if (!problem.empty()) {
      out.is_error = true;
      out.content.push_back({{"type", "text"}, {"text", impl_->where() + ": tool '" + name + "': " + problem}});
    }
  }
  return out;
}

Status McpClient::ping(double timeout_s) { return impl_->request("ping", nullptr, timeout_s).status(); }

Result<json> McpClient::list_resources() { return impl_->list_all("resources/list", "resources"); }
Result<json> McpClient::read_resource(const std::string& uri) { return impl_->request("resources/read", {{"uri", uri}}, -1); }
Result<json> McpClient::list_prompts() { return impl_->list_all("prompts/list", "prompts"); }
Result<json> McpClient::get_prompt(const std::string& name, const json& arguments) {
  return impl_->request("prompts/get", {{"name", name}, {"arguments", arguments.is_object() ? arguments : json::object()}}, -1);
}

std::string McpClient::log() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::string s;
  for (const auto& l : impl_->log) s += l + "\n";
  return s;
}

std::vector<std::string> McpClient::warnings() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->warnings;
}

std::string McpCallResult::text() const {
  std::string s;
  for (const json& c : content) {
    if (!s.empty()) s += "\n";
    const std::string type = c.is_object() ? c.value("type", std::string()) : "";
    if (type == "text" && c.contains("text") && c["text"].is_string()) s += c["text"].get<std::string>();
    else if (type == "image" || type == "audio")
      s += "[" + type + " " + c.value("mimeType", std::string("?")) + ", " +
           std::to_string(c.contains("data") && c["data"].is_string() ? c["data"].get<std::string>().size() * 3 / 4 : 0) + " bytes]";
    else if (type == "resource" && c.contains("resource") && c["resource"].is_object()) {
      const json& r = c["resource"];
      s += r.contains("text") && r["text"].is_string() ? r["text"].get<std::string>() : "[resource " + r.value("uri", std::string()) + "]";
    } else if (type == "resource_link") s += "[resource link " + c.value("uri", std::string()) + "]";
    else s += c.dump();
  }
  if (s.empty() && !structured.is_null()) s = structured.dump();
  return s;
}

}  // namespace modu::agent
