// `modu agent`: the model acts through MCP servers and workspace built-ins under a policy, asking
// the person on the terminal for "ask" calls; one task from the command line or an interactive
// session; the transcript printed readably and saved as JSON, every action in a JSON Lines log.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "common.h"
#include "modu/agent/agent.h"
#include "modu/chat/chat_template.h"
#include "modu/trust/audit_log.h"
#include "modu/trust/digest.h"

namespace modu::cli {

namespace {

using json = nlohmann::json;

struct AgentArgs {
  std::string model, task, policy, workspace, action_log, transcript, mcp_config, tool_format, system, tmpl;
  std::vector<std::string> mcp, tools, tool_choice;
  bool approve_all = false, no_sandbox = false, network = false, keep_prompts = false, sandbox_mcp = false;
  int max_steps = 10, n_predict = 512, threads = 0;
  int64_t token_budget = 0, ctx = 0;
  float temp = 0;
  uint64_t seed = 1;
  size_t max_result = 8000;
  NoticeArgs notice;
  std::string audit_log, audit_key;
  bool high_impact = false;
  std::vector<std::string> lora;
  std::string mmproj;                // vision projector (or the model's own HF folder)
  std::vector<std::string> images;   // images for the (first) task
  int64_t max_image_pixels = vision::DecodeLimits{}.max_pixels;
};

std::string g_label;  // --label: the mark before each final answer

std::atomic<bool> g_stop{false};
extern "C" void on_sigint(int) {
  if (g_stop.exchange(true)) std::_Exit(130);  // a second Ctrl-C: leave now
}

std::string short_text(const std::string& s, size_t n) { return s.size() <= n ? s : s.substr(0, n) + " ..."; }

void print_event(const std::string& kind, const json& d) {
  if (kind == "call") {
    std::fprintf(stderr, "▶ %s %s\n", d["name"].get<std::string>().c_str(), d["arguments"].dump().c_str());
  } else if (kind == "result") {
    std::fprintf(stderr, "%s %s (%.2f s): %s\n", d["is_error"].get<bool>() ? "✗" : "◀", d["name"].get<std::string>().c_str(),
                 d["seconds"].get<double>(), short_text(d["text"].get<std::string>(), 400).c_str());
  } else if (kind == "assistant") {
    if (!d["reasoning"].get<std::string>().empty()) std::fprintf(stderr, "(thinking) %s\n", short_text(d["reasoning"], 400).c_str());
    if (d["calls"].get<size_t>() > 0 && !d["content"].get<std::string>().empty())
      std::fprintf(stderr, "%s\n", d["content"].get<std::string>().c_str());
  } else if (kind == "final") {
    std::printf("%s%s\n", g_label.c_str(), d["content"].get<std::string>().c_str());
    std::fflush(stdout);
  } else if (kind == "note") {
    std::fprintf(stderr, "modu agent: %s\n", d["text"].get<std::string>().c_str());
  }
}

int run_agent(const AgentArgs& a) {
  if (a.high_impact && a.audit_log.empty())
    return fail(invalid_argument("--high-impact needs --audit-log: every action is recorded in the signed audit log"));
  if (a.high_impact && a.approve_all)
    return fail(invalid_argument("--high-impact requires a person's approval for every action; --approve-all is refused"));
  std::shared_ptr<trust::AuditLog> audit;
  if (!a.audit_log.empty()) {
    trust::AuditOptions ao;
    ao.path = a.audit_log;
    ao.key_path = a.audit_key;
    auto l = trust::AuditLog::open(ao);
    if (!l.ok()) return fail(l.status());
    audit = std::move(l).value();
  }
  print_ai_notice(a.notice, a.model);
  g_label = label_prefix(a.notice);
  auto lm = load_model(a.model, true);
  if (!lm.ok()) return fail(lm.status());
  if (Status st = attach_loras(*lm->model, a.lora); !st.ok()) return fail(st);
  const Model& model = *lm->model;
  std::string src = a.tmpl;
  if (src.empty()) {
    auto t = model.gguf().get_string("tokenizer.chat_template", std::string());
    if (!t.ok() || t->empty()) return fail(not_found(a.model + " has no chat template; pass --chat-template FILE"));
    src = *t;
  } else {
    std::ifstream in(src, std::ios::binary);
    if (!in) return fail(io_error("cannot read --chat-template " + src));
    src.assign(std::istreambuf_iterator<char>(in), {});
  }
  agent::AgentOptions o;
  o.max_steps = a.max_steps;
  o.token_budget = a.token_budget;
  o.n_predict = a.n_predict;
  o.n_ctx = a.ctx > 0 ? a.ctx : std::min<int64_t>(model.config().n_ctx_train, 8192);
  o.tool_choice = a.tool_choice;
  o.max_result_chars = a.max_result;
  o.approve_all = a.approve_all;
  o.sampling.temperature = a.temp;
  o.sampling.seed = a.seed;
  o.system = a.system;
  o.tool_format = a.tool_format;
  o.keep_prompts = a.keep_prompts;
  ThreadPool pool(a.threads);
  agent::Agent ag(model, *lm->tokenizer, pool, o);
  if (Status s = ag.set_template(src); !s.ok()) return fail(s);
  // Images for the task: encoded once here, kept in the conversation by the agent.
  auto loaded = load_cli_images(a.mmproj, a.model, model.config(), a.images, a.max_image_pixels, pool, "modu agent");
  if (!loaded.ok()) return fail(loaded.status());
  std::unique_ptr<vision::VisionModel> vm = std::move(loaded->vm);
  std::vector<vision::ImageEmbedding> task_images = std::move(loaded->images);
  if (vm) ag.set_vision(vm.get());

  // MCP servers: a server that cannot start is reported and left out; the others go on.
  std::vector<agent::McpServerConfig> servers;
  if (!a.mcp_config.empty()) {
    auto c = agent::load_mcp_config(a.mcp_config);
    if (!c.ok()) return fail(c.status());
    servers = *c;
  }
  for (size_t i = 0; i < a.mcp.size(); ++i) {
    auto c = agent::parse_mcp_flag(a.mcp[i], "mcp" + std::to_string(i + 1));
    if (!c.ok()) return fail(c.status());
    servers.push_back(*c);
  }
  for (auto& c : servers) {
    if (a.sandbox_mcp && c.url.empty()) c.sandbox = true;
    if (c.sandbox) {
      if (a.workspace.empty()) return fail(invalid_argument("a sandboxed MCP server needs --workspace DIR (its only writable folder)"));
      c.workspace = a.workspace;
      c.sandbox_options.network = a.network;
    }
  }
  std::vector<std::unique_ptr<agent::McpClient>> clients;
  for (const auto& c : servers) {
    auto cl = agent::McpClient::connect(c);
    if (!cl.ok()) {
      std::fprintf(stderr, "modu agent: MCP server '%s' left out: %s\n", c.name.c_str(), cl.status().message().c_str());
      continue;
    }
    if (Status s = ag.add_mcp(cl->get()); !s.ok()) {
      std::fprintf(stderr, "modu agent: MCP server '%s' left out: %s\n", c.name.c_str(), s.message().c_str());
      continue;
    }
    for (const auto& w : (*cl)->warnings()) std::fprintf(stderr, "modu agent: %s: %s\n", c.name.c_str(), w.c_str());
    clients.push_back(std::move(cl).value());
  }
  std::optional<agent::Workspace> ws;
  if (!a.tools.empty()) {
    if (a.workspace.empty()) return fail(invalid_argument("--tools needs --workspace DIR (the only folder they may touch)"));
    auto w = agent::Workspace::open(a.workspace);
    if (!w.ok()) return fail(w.status());
    ws = std::move(w).value();
    agent::SandboxOptions sb;
    sb.enabled = !a.no_sandbox;
    sb.network = a.network;
    if (sb.enabled)
      if (Status s = agent::sandbox_available(); !s.ok()) return fail(s.with_context("--tools needs the sandbox (or --no-sandbox)"));
    if (!sb.enabled) std::fprintf(stderr, "modu agent: WARNING: commands run UNSANDBOXED (--no-sandbox)\n");
    ag.add_builtins(&*ws, a.tools, sb);
  }
  auto policy = a.policy.empty() ? Result<agent::Policy>(agent::Policy::ask_all()) : agent::Policy::load(a.policy);
  if (!policy.ok()) return fail(policy.status());
  if (a.high_impact) {
    *policy = policy->supervised();
    std::fprintf(stderr, "modu agent: high-impact mode: a person approves every action; all are in the audit log\n");
  }
  agent::TerminalApprover approver;
  ag.set_policy(*policy, approver.has_terminal() ? &approver : nullptr);
  std::optional<agent::ActionLog> log;
  if (!a.action_log.empty() || audit) {
    auto l = agent::ActionLog::open(a.action_log, audit);
    if (!l.ok()) return fail(l.status());
    log = std::move(l).value();
    ag.set_action_log(&*log);
  }
  if (a.approve_all) std::fprintf(stderr, "modu agent: --approve-all: every 'ask' call runs without asking (logged as such)\n");
  std::fprintf(stderr, "modu agent: %zu tools\n", ag.tools().size());
  std::signal(SIGINT, on_sigint);

  json transcript = {{"model", a.model}, {"runs", json::array()}};
  auto one = [&](const std::string& task) -> int {
    g_stop = false;
    auto r = ag.run(task, print_event, &g_stop, std::move(task_images));  // the images go with the first task
    task_images.clear();
    if (!r.ok()) return fail(r.status());
    if (r->stop_reason != "answer") std::fprintf(stderr, "modu agent: stopped: %s\n", r->stop_reason.c_str());
    if (audit) {
      nlohmann::ordered_json rec = {{"task_sha256", trust::sha256_hex(task)}, {"answer_sha256", trust::sha256_hex(r->answer)},
                                    {"stop_reason", r->stop_reason}, {"model", a.model}, {"high_impact", a.high_impact}};
      if (a.high_impact) {
        rec["task"] = task;
        rec["answer"] = r->answer;
      }
      if (Status st = audit->append("agent_run", rec); !st.ok()) return fail(st);
    }
    transcript["runs"].push_back({{"task", task}, {"answer", r->answer}, {"stop_reason", r->stop_reason}});
    if (transcript["runs"].size() == 1 && !a.images.empty()) transcript["runs"][0]["images"] = a.images;
    transcript["messages"] = r->transcript["messages"];
    transcript["steps"] = r->transcript["steps"];
    if (!a.transcript.empty()) {
      std::ofstream f(a.transcript, std::ios::binary | std::ios::trunc);
      f << transcript.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
      if (!f) return fail(io_error("cannot write the transcript " + a.transcript));
    }
    return 0;
  };
  if (!a.task.empty()) return one(a.task);
  std::fprintf(stderr, "modu agent: type a task; an empty line or Ctrl-D ends.\n");
  std::string line;
  while (std::fprintf(stderr, "> "), std::getline(std::cin, line) && !line.empty())
    if (int rc = one(line); rc != 0) return rc;
  return 0;
}

}  // namespace

void add_agent_command(CLI::App& app, int& rc) {
  auto a = std::make_shared<AgentArgs>();
  CLI::App* c = app.add_subcommand("agent", "Let the model act through MCP servers and workspace tools, under a policy, with approval");
  c->add_option("-m,--model", a->model, "GGUF model file or Hugging Face folder")->required()->check(CLI::ExistingPath);
  add_lora_option(c, &a->lora);
  c->add_option("task", a->task, "The task (none: interactive)");
  c->add_option("--mmproj", a->mmproj, "Vision projector for --image (mmproj GGUF or HF multimodal folder)")
      ->check(CLI::ExistingPath);
  c->add_option("--image", a->images, "An image for the task (repeatable; placed before the task's text)")
      ->check(CLI::ExistingFile)
      ->allow_extra_args(false);  // one file per --image: the task after it stays the task
  c->add_option("--max-image-pixels", a->max_image_pixels, "Refuse larger images (decompression bombs)")->capture_default_str();
  // List options take one argument each (repeat the flag, or use commas), so a task after them stays the task.
  c->add_option("--mcp", a->mcp, "An MCP server: \"CMD ARGS\" (stdio) or an http(s):// URL (repeatable)")
      ->allow_extra_args(false);
  c->add_option("--mcp-config", a->mcp_config, "JSON file with \"mcpServers\"")->check(CLI::ExistingFile);
  c->add_option("--tools", a->tools, "Built-ins to enable: read_file, write_file, list_dir, run_command, fetch_url")
      ->delimiter(',')
      ->allow_extra_args(false);
  c->add_option("--workspace", a->workspace, "The only folder the built-ins may touch");
  c->add_option("--policy", a->policy, "Policy file (per tool allow / ask / deny; default: ask for everything)")->check(CLI::ExistingFile);
  c->add_flag("--approve-all", a->approve_all, "Run every 'ask' call without asking (logged)");
  c->add_option("--action-log", a->action_log, "Append every tool call to this JSON Lines file");
  c->add_option("--transcript", a->transcript, "Save the conversation and steps as JSON");
  c->add_option("--audit-log", a->audit_log, "Also record every action and run in this hash-chained, signed audit log");
  c->add_option("--audit-key", a->audit_key, "Ed25519 key for the audit log's checkpoints (default AUDIT_LOG.key)");
  c->add_flag("--high-impact", a->high_impact, "High-impact use: every action needs a person's approval, all recorded (needs --audit-log)");
  add_notice_options(c, &a->notice);
  c->add_flag("--keep-prompts", a->keep_prompts, "The transcript keeps every step's rendered prompt");
  c->add_option("--tool-choice", a->tool_choice, "Per step: auto, required, none or a tool name (comma-separated)")
      ->delimiter(',')
      ->allow_extra_args(false);
  c->add_option("--tool-format", a->tool_format, "Tool-call format (default: from the chat template)");
  c->add_option("--chat-template", a->tmpl, "Use this Jinja template instead of the model's")->check(CLI::ExistingFile);
  c->add_option("--system", a->system, "System prompt");
  c->add_option("--max-steps", a->max_steps, "Model turns per task")->capture_default_str();
  c->add_option("--token-budget", a->token_budget, "Generated tokens per session (0: none)")->capture_default_str();
  c->add_option("-n,--n-predict", a->n_predict, "Tokens per model turn")->capture_default_str();
  c->add_option("--max-result", a->max_result, "Characters of a tool result the model sees")->capture_default_str();
  c->add_flag("--sandbox-mcp", a->sandbox_mcp, "Run stdio MCP servers in the sandbox too (workspace writable, no network)");
  c->add_flag("--no-sandbox", a->no_sandbox, "Run built-in commands without the sandbox (explicit, warned)");
  c->add_flag("--allow-network", a->network, "Sandboxed commands may use the network");
  c->add_option("--temp", a->temp, "Temperature (0: greedy)")->capture_default_str();
  c->add_option("-s,--seed", a->seed, "Random seed")->capture_default_str();
  c->add_option("-c,--ctx", a->ctx, "Context size (0: the model's, at most 8192)");
  c->add_option("-t,--threads", a->threads, "Threads (0: all cores)");
  c->callback([a, &rc] { rc = run_agent(*a); });
}

}  // namespace modu::cli
