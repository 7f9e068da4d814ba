// The agent loop: the model's reply is parsed for tool calls in its chat template's convention;
// each call is decided by the policy (and the person, for "ask"), run (MCP servers or the
// workspace built-ins, approved calls concurrently), logged, and its result goes back as a tool
// message, until a final answer, the step limit, the token budget or a stop.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "modu/agent/action_log.h"
#include "modu/agent/loop.h"
#include "modu/agent/mcp.h"
#include "modu/agent/policy.h"
#include "modu/agent/sandbox.h"
#include "modu/agent/tool.h"
#include "modu/agent/workspace.h"
#include "modu/core/status.h"
#include "modu/core/threadpool.h"
#include "modu/models/model.h"
#include "modu/runtime/sampler.h"
#include "modu/tokenizer/tokenizer.h"
#include "modu/vision/vision_model.h"

namespace modu::agent {

struct AgentOptions {
  int max_steps = 10;          // model turns
  int64_t token_budget = 0;    // generated tokens over the whole run (0: no budget)
  int n_predict = 512;         // tokens per model turn
  int64_t n_ctx = 4096;
  // Tool choice per step ("auto", "required", "none" or a tool's name); steps past the list are
  // "auto". Forced choices make a run deterministic (tests, scripted tasks).
  std::vector<std::string> tool_choice;
  size_t max_result_chars = 8000;  // longer tool results are cut, with a note to the model
  double tool_timeout_s = 120;
  bool approve_all = false;        // explicit; logged as the decider
  SamplingParams sampling;
  std::string system;
  std::string tool_format;         // "" : from the chat template
  bool keep_prompts = false;       // the transcript keeps each step's rendered prompt
};

// What the loop reports as it goes (for printing): "assistant", "call", "result", "final", "note"
// (loop.h lists each one's fields).
using AgentEvents = LoopEvents;

struct AgentResult {
  std::string answer;       // the final reply's content ("" when stopped before one)
  std::string stop_reason;  // "answer", "step limit", "token budget", "context full", "stopped"
  nlohmann::json transcript;  // {"messages": [...], "steps": [...]}
};

class Agent {
 public:
  Agent(const Model& model, const Tokenizer& tok, ThreadPool& pool, AgentOptions opts);
  ~Agent();

  // The chat template (the model's own, unless replaced).
  Status set_template(const std::string& source);
  // Tools: every tool of an MCP server (qualified "SERVER.TOOL" for the policy), and built-ins.
  Status add_mcp(McpClient* client);
  void add_builtins(const Workspace* ws, const std::vector<std::string>& enabled, SandboxOptions sandbox);
  void set_policy(Policy p, Approver* approver);
  void set_action_log(ActionLog* log);
  const std::vector<ToolSpec>& tools() const;
  // The model's vision projector: tasks may then bring images (embed_image's output).
  void set_vision(const vision::VisionModel* vm);

  // Runs one task, continuing the conversation of earlier run() calls (interactive mode).
  // `stop` (Ctrl-C) cancels the running tool and ends the loop after it. `images` go before the
  // task's text in its message and stay in the conversation (their KV is reused step to step).
  Result<AgentResult> run(const std::string& task, const AgentEvents& events, const std::atomic<bool>* stop = nullptr,
                          std::vector<vision::ImageEmbedding> images = {});

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace modu::agent
