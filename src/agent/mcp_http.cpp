// MCP over Streamable HTTP: every client message is a POST to the endpoint; the answer is JSON or
// an SSE stream that carries the response (and any notifications or requests before it). The
// session id from initialize goes on every later request; a stream that breaks before the
// response arrived is resumed with GET and Last-Event-ID. Closing deletes the session.
#include <httplib.h>

#include <mutex>
#include <set>
#include <thread>

#include "mcp_transport.h"

namespace modu::agent {

namespace {

class HttpTransport final : public McpTransport {
 public:
  explicit HttpTransport(McpServerConfig c) : c_(std::move(c)) {}
  ~HttpTransport() override { close(); }

  Status start(OnMessage on_message, OnLog on_log) override {
    on_message_ = std::move(on_message);
    on_log_ = std::move(on_log);
    const std::string& u = c_.url;
    const size_t scheme = u.find("://");
    if (scheme == std::string::npos || (u.rfind("http://", 0) != 0 && u.rfind("https://", 0) != 0))
      return invalid_argument("MCP server '" + c_.name + "': url '" + u + "' must start with http:// or https://");
    const size_t slash = u.find('/', scheme + 3);
    origin_ = slash == std::string::npos ? u : u.substr(0, slash);
    path_ = slash == std::string::npos ? "/" : u.substr(slash);
    return Status::Ok();
  }

  void set_protocol_version(const std::string& v) override {
    std::lock_guard<std::mutex> lock(mu_);
    version_ = v;
  }

  Status send(const nlohmann::json& m) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (closed_) return io_error("MCP server '" + c_.name + "': the connection is closed");
    auto job = [this, body = m.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                id = m.contains("id") ? m["id"] : nlohmann::json()] { post(body, id); };
    // initialize must finish first: its answer carries the session id the rest needs.
    if (m.value("method", "") == "initialize") {
      lock.unlock();
      job();
    } else {
      workers_.emplace_back(job);
    }
    return Status::Ok();
  }

  void close() override {
    std::vector<std::thread> ws;
    std::string session;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) return;
      closed_ = true;
      ws.swap(workers_);
      for (httplib::Client* c : active_) c->stop();
      session = session_;
    }
    for (auto& w : ws)
      if (w.joinable()) w.join();
    if (!session.empty()) {  // tell the server the session is over (it may refuse: 405)
      httplib::Client cli(origin_);
      cli.set_connection_timeout(2);
      cli.set_read_timeout(2);
      (void)cli.Delete(path_.c_str(), headers());
    }
    on_log_("", true);
  }

  std::string describe() const override { return "http: " + c_.url; }

 private:
  httplib::Headers headers() {
    httplib::Headers h;
    for (const auto& [k, v] : c_.headers) h.emplace(k, v);
    if (!session_.empty()) h.emplace("Mcp-Session-Id", session_);
    if (!version_.empty()) h.emplace("MCP-Protocol-Version", version_);
    return h;
  }

  // Reads SSE bytes: complete events go to on_message_; `last_id` follows the event ids.
  struct SseReader {
    std::string buf, data, last_id;
    void feed(std::string_view s, const std::function<void(const std::string&)>& on_data) {
      buf.append(s);
      size_t nl;
      while ((nl = buf.find('\n')) != std::string::npos) {
        std::string line = buf.substr(0, nl);
        buf.erase(0, nl + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) {
          if (!data.empty()) on_data(data);
          data.clear();
        } else if (line.rfind("data:", 0) == 0) {
          if (!data.empty()) data += "\n";
          data += line.substr(line.size() > 5 && line[5] == ' ' ? 6 : 5);
        } else if (line.rfind("id:", 0) == 0) {
          last_id = line.substr(line.size() > 3 && line[3] == ' ' ? 4 : 3);
        }
      }
    }
  };

  void deliver(const std::string& text, std::set<std::string>* seen) {
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded()) {
      on_log_("not JSON-RPC from " + c_.url + ": " + text.substr(0, 300), false);
      return;
    }
    auto one = [&](nlohmann::json m) {
      if (m.is_object() && m.contains("id") && (m.contains("result") || m.contains("error"))) seen->insert(m["id"].dump());
      on_message_(std::move(m));
    };
    if (j.is_array())
      for (auto& m : j) one(std::move(m));
    else
      one(std::move(j));
  }

  // Keeps a request's client stoppable from close() while it reads (a cancelled call's stream
  // may stay open until the server finishes it).
  struct Active {
    HttpTransport* t;
    httplib::Client* c;
    Active(HttpTransport* t_, httplib::Client* c_) : t(t_), c(c_) {
      std::lock_guard<std::mutex> lock(t->mu_);
      t->active_.insert(c);
      if (t->closed_) c->stop();
    }
    ~Active() {
      std::lock_guard<std::mutex> lock(t->mu_);
      t->active_.erase(c);
    }
  };

  void post(const std::string& body, const nlohmann::json& id) {
    httplib::Client cli(origin_);
    Active active(this, &cli);
    cli.set_connection_timeout(10);
    cli.set_read_timeout((time_t)std::max(1.0, c_.timeout_s + 5));
    httplib::Request req;
    req.method = "POST";
    req.path = path_;
    {
      std::lock_guard<std::mutex> lock(mu_);
      req.headers = headers();
    }
    req.headers.emplace("Accept", "application/json, text/event-stream");
    req.headers.emplace("Content-Type", "application/json");
    req.body = body;
    SseReader sse;
    std::string plain;
    bool is_sse = false;
    std::set<std::string> seen;
    req.response_handler = [&](const httplib::Response& r) {
      is_sse = r.get_header_value("Content-Type").find("text/event-stream") != std::string::npos;
      const std::string sid = r.get_header_value("Mcp-Session-Id");
      if (!sid.empty()) {
        std::lock_guard<std::mutex> lock(mu_);
        session_ = sid;
      }
      return true;
    };
    req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
      if (!is_sse) {
        plain.append(d, n);
        return true;
      }
      sse.feed(std::string_view(d, n), [&](const std::string& data) { deliver(data, &seen); });
      // Our response came: the stream has done its job (a server may keep it open).
      return id.is_null() || !seen.count(id.dump());
    };
    httplib::Response res;
    httplib::Error err = httplib::Error::Success;
    const bool ok = cli.send(req, res, err);
    if (!ok && !id.is_null() && seen.count(id.dump())) return;  // we stopped reading after the response
    if (!ok) {
      fail(id, "cannot reach " + c_.url + ": " + httplib::to_string(err));
      return;
    }
    if (res.status == 202 || res.status == 204) return;  // a notification or response was accepted
    if (res.status == 404 && !session_.empty()) {
      fail(id, "the server ended the session (404); reconnect");
      return;
    }
    if (res.status >= 400) {
      fail(id, "HTTP " + std::to_string(res.status) + " from " + c_.url + ": " + plain.substr(0, 300));
      return;
    }
    if (!is_sse) {
      if (!plain.empty()) deliver(plain, &seen);
    } else {
      sse.feed("\n\n", [&](const std::string& data) { deliver(data, &seen); });
    }
    // The stream broke before our response: resume from the last event id.
    for (int attempt = 0; attempt < 3 && !id.is_null() && !seen.count(id.dump()) && !sse.last_id.empty(); ++attempt) {
      httplib::Headers h;
      {
        std::lock_guard<std::mutex> lock(mu_);
        h = headers();
      }
      h.emplace("Accept", "text/event-stream");
      h.emplace("Last-Event-ID", sse.last_id);
      const std::string before = sse.last_id;
      auto r = cli.Get(path_.c_str(), h, [&](const char* d, size_t n) {
        sse.feed(std::string_view(d, n), [&](const std::string& data) { deliver(data, &seen); });
        return true;
      });
      if (!r || r->status >= 400 || sse.last_id == before) break;
    }
    if (!id.is_null() && !seen.count(id.dump()))
      fail(id, "the server's answer ended without a response to request " + id.dump());
  }

  // An error response for request `id`, so the waiting caller gets a clear error at once.
  void fail(const nlohmann::json& id, const std::string& why) {
    on_log_("MCP server '" + c_.name + "': " + why, false);
    if (id.is_null()) return;
    on_message_({{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", -32000}, {"message", why}}}});
  }

  McpServerConfig c_;
  OnMessage on_message_;
  OnLog on_log_;
  std::string origin_, path_;
  std::mutex mu_;
  std::string session_, version_;
  std::vector<std::thread> workers_;
  std::set<httplib::Client*> active_;  // requests being read
  bool closed_ = false;
};

}  // namespace

std::unique_ptr<McpTransport> make_http_transport(const McpServerConfig& c) { return std::make_unique<HttpTransport>(c); }

}  // namespace modu::agent
