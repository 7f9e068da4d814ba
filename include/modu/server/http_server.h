// HttpServer: the OpenAI-compatible HTTP front end (cpp-httplib) over the Engine: routes, API key
// authentication and tenant limits, SSE streaming, Prometheus metrics and graceful shutdown.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "modu/core/status.h"
#include "modu/models/model.h"
#include "modu/server/engine.h"
#include "modu/tokenizer/tokenizer.h"

namespace modu::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                    // 0: any free port (see HttpServer::port())
  std::string model_id = "modu";      // the id /v1/models reports
  EngineOptions engine;
  size_t max_body_bytes = 8u << 20;   // larger request bodies get 413
  int http_threads = 0;               // 0: enough for every slot and queue entry, plus spare
  std::string api_keys_file;          // empty: no authentication
  double shutdown_grace_s = 10;       // SIGTERM: time in-flight requests get to finish
  bool log_requests = false;
  std::string cors_origin = "*";      // Access-Control-Allow-Origin for browsers; "" sends no CORS headers
  std::string tool_format;            // a registered tool-call format's name; "": detected from the chat template
  // MCP servers the Responses API's {"type": "mcp"} tools may use (by server_label), the policy
  // their calls go through (default: allow, since the client asked for require_approval never)
  // and the action log every call is appended to.
  std::string mcp_config;
  std::vector<std::string> mcp;       // --mcp "CMD ARGS" / URL, labelled mcp1, mcp2, ...
  std::string mcp_policy;
  std::string action_log;
};

class HttpServer {
 public:
  static Result<std::unique_ptr<HttpServer>> create(const Model& model, const Tokenizer& tok, ServerOptions opts);
  ~HttpServer();
  // Binds the listening socket (so port() is known before run()).
  Status bind();
  int port() const;
  // Serves until shutdown() has finished.
  Status run();
  // Thread-safe and idempotent: stop accepting work (new requests get 503), let in-flight requests
  // finish for up to the grace period, cut what remains, then stop the listener.
  void shutdown();

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace modu::server
