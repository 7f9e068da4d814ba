// MCP (Model Context Protocol) client: JSON-RPC 2.0 over stdio (a spawned server, one JSON message
// per line, its stderr kept as a log) or Streamable HTTP (POST with JSON or SSE answers,
// Mcp-Session-Id, resumption from the last event id). Protocol revision 2025-11-25, accepting a
// server that answers 2025-06-18 or 2025-03-26. Tools (paginated, list_changed), calls with
// timeouts, progress and cancellation, ping, resources and prompts.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "modu/agent/sandbox.h"
#include "modu/core/status.h"

namespace modu::agent {

// One configured server, in the common `mcpServers` shape: command/args/env (stdio) or
// url/headers (Streamable HTTP).
struct McpServerConfig {
  std::string name;
  std::string command;
  std::vector<std::string> args;
  std::map<std::string, std::string> env;
  std::string cwd;  // "" : the current folder
  int inherit_fd = -1;  // stdio: a descriptor the server process gets as fd 3 (set by connect for the sandbox)
  std::string url;
  std::map<std::string, std::string> headers;
  double timeout_s = 60;  // default per-request timeout
  // stdio: run the server in the bubblewrap sandbox (read-only system, `workspace` the only
  // writable folder, no network unless sandbox_options.network, home hidden).
  bool sandbox = false;
  std::string workspace;
  SandboxOptions sandbox_options;
};

// {"mcpServers": {"NAME": {"command": ..., "args": [...], "env": {...}} | {"url": ..., "headers": {...}}}}
Result<std::vector<McpServerConfig>> parse_mcp_config(const nlohmann::json& j);
Result<std::vector<McpServerConfig>> load_mcp_config(const std::string& path);
// --mcp "CMD ARGS" (split like a shell: quotes and backslashes) or --mcp URL (http:// or https://).
Result<McpServerConfig> parse_mcp_flag(const std::string& spec, const std::string& name);

struct McpTool {
  std::string name, title, description;
  nlohmann::json input_schema = nlohmann::json::object();
  nlohmann::json output_schema;  // null: none
};

struct McpCallResult {
  bool is_error = false;
  nlohmann::json content = nlohmann::json::array();  // the content items
  nlohmann::json structured;                         // structuredContent, or null
  std::string text() const;                          // content as text (images and resources described)
};

// Progress notifications of one call: (progress, total or -1, message).
using McpProgress = std::function<void(double, double, const std::string&)>;

class McpClient {
 public:
  // Starts (stdio) or reaches (HTTP) the server and runs the initialize handshake.
  static Result<std::unique_ptr<McpClient>> connect(const McpServerConfig& config);
  ~McpClient();
  McpClient(const McpClient&) = delete;
  McpClient& operator=(const McpClient&) = delete;

  const std::string& name() const;
  const std::string& protocol_version() const;  // as negotiated
  const nlohmann::json& server_info() const;
  const nlohmann::json& capabilities() const;

  // All tools (every page of tools/list). Tools with an unusable schema are left out with a
  // warning in warnings().
  Result<std::vector<McpTool>> list_tools();
  // A tools/list_changed notification arrived since the last list_tools().
  bool tools_changed() const;
  // tools/call. A tool error (isError, or structured content that does not match the tool's
  // outputSchema) is a result with is_error; a protocol failure, a timeout (the request is then
  // cancelled with notifications/cancelled) or a dead server is an error Status. `cancel` may be
  // set from another thread (Ctrl-C) to cancel the call.
  Result<McpCallResult> call_tool(const std::string& name, const nlohmann::json& arguments, double timeout_s = -1,
                                  const McpProgress& progress = nullptr, const std::atomic<bool>* cancel = nullptr);
  Status ping(double timeout_s = 10);
  Result<nlohmann::json> list_resources();  // every page: [{uri, name, ...}]
  Result<nlohmann::json> read_resource(const std::string& uri);
  Result<nlohmann::json> list_prompts();
  Result<nlohmann::json> get_prompt(const std::string& name, const nlohmann::json& arguments);

  // The server's stderr (stdio) and anything it sent that was not JSON-RPC, most recent last.
  std::string log() const;
  std::vector<std::string> warnings() const;

  struct Impl;

 private:
  explicit McpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

inline constexpr const char* kMcpProtocolVersion = "2025-11-25";
inline constexpr const char* kMcpOlderVersions[] = {"2025-06-18", "2025-03-26"};

}  // namespace modu::agent
