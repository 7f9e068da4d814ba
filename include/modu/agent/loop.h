// The tool loop shared by `modu agent` and `modu serve` (the Responses API's MCP tools): a model
// turn, then every call it made decided (policy, a person now, or a person later), the approved
// ones run concurrently with per-call timeouts, logged, cut to fit the context and fed back as
// tool messages, until an answer, a call the caller handles itself, a pending approval, the step
// limit, the token budget or a stop. How a turn is generated (the agent's own KV cache, or the
// server's batched engine) and how a call is approved are the caller's (TurnFn, DecideFn).
#pragma once

#include <atomic>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "modu/agent/action_log.h"
#include "modu/agent/mcp.h"
#include "modu/agent/policy.h"
#include "modu/agent/sandbox.h"
#include "modu/agent/tool.h"
#include "modu/agent/workspace.h"
#include "modu/core/status.h"
#include "modu/toolcall/toolcall.h"

namespace modu::agent {

// What the loop reports as it goes: "assistant" {content, reasoning, calls}, "call" {id, name,
// arguments}, "result" {id, name, server, arguments (the model's text), ran_with (the arguments
// object that ran), approved, decided_by, is_error, text (as the model sees it), output (the whole
// result), seconds}, "deferred" {id, name, server, arguments}, "final" {content}, "note" {text}.
using LoopEvents = std::function<void(const std::string& kind, const nlohmann::json& data)>;

// A tool the model may call: where it runs, and the name the policy knows it by.
struct BoundTool {
  ToolSpec spec;                // spec.name: the name the model calls it by (unique in the toolbox)
  McpClient* client = nullptr;  // null: a built-in
  std::string remote_name;      // the name at the MCP server
  std::string qualified;        // "SERVER.TOOL" for MCP tools, the name for built-ins
};

// The tools of one loop: MCP servers' and the workspace built-ins, under names unique for the
// model (a clash gets the server's name in front).
class Toolbox {
 public:
  // Every tool the server lists (tools/list, all pages).
  Status add_mcp(McpClient* client);
  // Tools already listed (the server lists once at start-up and offers a subset per request).
  void add_mcp_tools(McpClient* client, const std::vector<McpTool>& tools);
  void add_builtins(const Workspace* ws, const std::vector<std::string>& enabled, SandboxOptions sandbox);
  // Lists again every server that announced notifications/tools/list_changed (between turns).
  void refresh(const LoopEvents& events);

  nlohmann::ordered_json tools_json() const;  // OpenAI function tools, in the order added
  const std::vector<ToolSpec>& specs() const { return specs_; }
  const BoundTool* find(const std::string& name) const;
  bool empty() const { return bound_.empty(); }
  // Runs one call (a tool error is a result, never a failure). `stop` cancels it.
  ToolResult execute(const BoundTool& b, const nlohmann::json& args, double timeout_s, const std::atomic<bool>* stop) const;

 private:
  void add(ToolSpec s, McpClient* client, const std::string& remote, const std::string& qualified);
  std::vector<BoundTool> bound_;
  std::vector<ToolSpec> specs_;
  std::vector<McpClient*> clients_;
  const Workspace* ws_ = nullptr;
  SandboxOptions sandbox_;
};

// How one call is decided: run (approved) or refused (approval.by says by whom).
using DecideFn = std::function<Approval(const BoundTool& tool, const nlohmann::json& args)>;
// The agent's rule: the policy, then the approver (a terminal) for "ask", or --approve-all.
DecideFn policy_decider(const Policy& policy, Approver* approver, bool approve_all);

// One call of the model's, and what became of it.
struct CallOutcome {
  std::string id, name, arguments;  // as the model wrote them (arguments: its JSON text)
  const BoundTool* tool = nullptr;  // null: no such tool
  nlohmann::json args;              // what ran (an edit by the person included)
  Approval approval;
  ToolResult result;
  std::string text;                 // the result as the model sees it (cut to fit)
  double seconds = 0;
};

struct LoopOptions {
  int max_steps = 10;
  int64_t token_budget = 0;         // generated tokens over the run (0: none)
  size_t max_result_chars = 8000;   // longer results are cut, with a note to the model
  double tool_timeout_s = 120;
  // Tool choice per step ("auto", "required", "none" or a tool's name); later steps are "auto".
  std::vector<std::string> tool_choice;
  // Functions the caller runs itself (the client's own tools in the server): a turn calling one
  // ends the loop after its toolbox calls have run.
  std::set<std::string> client_tools;
  // List again, between turns, the servers that announced a changed tool list (the agent). A
  // server's request-scoped toolbox keeps the tools the request allowed, so it does not.
  bool refresh_tools = true;
  // A turn cut by its token limit ends the loop ("length") instead of running the calls parsed
  // from it (the server: the client sees an incomplete response).
  bool stop_on_cut = false;
  // Calls a person answers in a later request (the server's approval requests): when it says so
  // for any call of a turn, none of the turn's calls runs and the loop ends with "approval".
  std::function<bool(const BoundTool& tool, const nlohmann::json& args)> defer;
  // Ids for calls the model wrote without one, by what becomes of the call ("run", "deferred" or
  // "client") and its index in the turn's reply. Default "call_N", counting over the loop.
  std::function<std::string(const char* kind, size_t index)> new_id;
  // Images among a result's content (MCP "image" items: decoded bytes and MIME type) may go to
  // the model: returns the text that stands for them in the tool message (image markers), or ""
  // to leave them described in words.
  std::function<std::string(const std::vector<ToolImage>& images, const LoopEvents& events)> take_images;
};

// Decides every call (one question at a time), runs the approved ones at once, logs each (with
// `log_note` after the decider, e.g. the tenant), cuts long results. A tool the box does not have
// is an error result for the model.
Result<std::vector<CallOutcome>> run_calls(const Toolbox& box, const std::vector<toolcall::ToolCall>& calls,
                                           const DecideFn& decide, ActionLog* log, const LoopOptions& opts,
                                           const std::atomic<bool>* stop, const std::string& log_note = "");

// One model turn: the caller renders `messages` with `tools`, generates and parses the reply.
struct Turn {
  int step = 0;
  const nlohmann::ordered_json& messages;
  const nlohmann::ordered_json& tools;  // the toolbox's function tools
  const std::string& tool_choice;
};
struct TurnOutput {
  toolcall::Reply reply;
  int64_t generated = 0;          // tokens
  bool cut = false;               // stopped by its token limit
  bool cancelled = false;
  std::string stop_reason;        // non-empty: no turn was made and the loop ends with this reason
  nlohmann::json record = nlohmann::json::object();  // merged into the step's transcript record
};
using TurnFn = std::function<Result<TurnOutput>(const Turn& turn)>;

struct LoopResult {
  // "answer", "client calls", "approval" (calls wait for a person), "length" (stop_on_cut),
  // "step limit", "token budget",
  // "stopped", or a reason the turn function gave (TurnOutput::stop_reason, e.g. "context full").
  std::string stop_reason = "step limit";
  toolcall::Reply last;                    // the last turn's reply, with call ids
  std::vector<toolcall::ToolCall> deferred;  // calls waiting for a person ("approval")
  bool cut = false;                        // the last turn hit its token limit
  int64_t generated = 0;
  nlohmann::json steps = nlohmann::json::array();
};

// Runs turns on `messages` (assistant and tool messages are appended) until a stop reason.
Result<LoopResult> run_loop(nlohmann::ordered_json& messages, Toolbox& box, const TurnFn& turn, const DecideFn& decide,
                            ActionLog* log, const LoopOptions& opts, const LoopEvents& events,
                            const std::atomic<bool>* stop = nullptr, const std::string& log_note = "");

}  // namespace modu::agent
