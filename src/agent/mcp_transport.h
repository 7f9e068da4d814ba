// MCP transports (internal): how JSON-RPC messages reach a server and come back. stdio spawns the
// server and reads one message per line on a thread; Streamable HTTP posts each message and reads
// the JSON or SSE answer on a thread. Both hand every incoming message to `on_message`.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "modu/agent/mcp.h"
#include "modu/core/status.h"

namespace modu::agent {

class McpTransport {
 public:
  using OnMessage = std::function<void(nlohmann::json)>;
  // A line that is not JSON-RPC, stderr text, or the transport closing ("" text, closed = true).
  using OnLog = std::function<void(const std::string& text, bool closed)>;
  virtual ~McpTransport() = default;
  virtual Status start(OnMessage on_message, OnLog on_log) = 0;
  virtual Status send(const nlohmann::json& message) = 0;
  // After initialize: the negotiated version goes into HTTP headers.
  virtual void set_protocol_version(const std::string&) {}
  virtual void close() = 0;
  virtual std::string describe() const = 0;  // "stdio: CMD ARGS" / "http: URL"
};

std::unique_ptr<McpTransport> make_stdio_transport(const McpServerConfig& c);
std::unique_ptr<McpTransport> make_http_transport(const McpServerConfig& c);

}  // namespace modu::agent
