// `modu agent` end to end on a model modu writes, with the real MCP servers from npm: a multi-step
// task with forced tool choices (deterministic), results reaching the next model turn, the action
// log, policy denials, a dead server left out while the others go on, and the approval prompt
// answered through a pseudo-terminal.
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kTmp = ::testing::TempDir();

std::string node_pkg(const std::string& pkg) {
  const char* d = std::getenv("MODU_NODE_DIR");
  return std::string(d ? d : "") + "/node_modules/@modelcontextprotocol/" + pkg + "/dist/index.js";
}

int sh(const std::string& cmd, std::string* out = nullptr) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  std::string s;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) s.append(buf, n);
  const int st = pclose(p);
  if (out) *out = s;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class AgentCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(fs::exists(node_pkg("server-everything"))) << "run through ctest (the server_npm fixture installs the MCP servers)";
    const std::string cmd = std::string(MODU_BIN) + " init-model -o " + model() + " --preset tiny --vocab-from " + MODU_SHARED_DIR +
                            "/testdata/vocab/ggml-vocab-gpt-2.gguf --d-model 64 --layers 2 --ff 128 --heads 4 --kv-heads 2"
                            " --ctx 4096 --type f16 --seed 3 --chat-template " + MODU_SHARED_DIR +
                            "/testdata/templates/Qwen-Qwen2.5-7B-Instruct.jinja";
    std::string out;
    ASSERT_EQ(sh(cmd, &out), 0) << out;
  }
  static std::string model() { return kTmp + "/agent_tiny.gguf"; }
  static std::string servers() {
    return " --mcp \"node " + node_pkg("server-everything") + " stdio\" --mcp \"node " + node_pkg("server-memory") + "\"";
  }
  static std::string agent(const std::string& args) {
    return std::string(MODU_BIN) + " agent -m " + model() + " -t 1 -n 60 " + args;
  }
};

TEST_F(AgentCli, MultiStepTaskWithForcedCalls) {
  const std::string t = kTmp + "/agent_t1.json", log = kTmp + "/agent_log1.jsonl";
  fs::remove(log);
  std::string out;
  ASSERT_EQ(sh(agent(servers() + " --approve-all --tool-choice get-sum,read_graph,none --max-steps 4 --keep-prompts --transcript " +
                     t + " --action-log " + log + " \"Add two numbers, then read the graph.\""),
               &out),
            0)
      << out;
  const json tr = json::parse(slurp(t));
  ASSERT_EQ(tr["steps"].size(), 3u) << tr.dump(1);
  EXPECT_EQ(tr["steps"][0]["calls"][0]["name"], "get-sum");
  EXPECT_EQ(tr["steps"][1]["calls"][0]["name"], "read_graph");
  EXPECT_FALSE(tr["steps"][2].contains("calls"));
  EXPECT_EQ(tr["runs"][0]["stop_reason"], "answer");
  // The first tool's result is in the prompt of the second model turn, and so on.
  const std::string r1 = tr["steps"][0]["calls"][0]["result"];
  EXPECT_NE(r1.find("The sum of"), std::string::npos) << r1;
  EXPECT_NE(tr["steps"][1]["prompt"].get<std::string>().find(r1), std::string::npos);
  EXPECT_NE(tr["steps"][2]["prompt"].get<std::string>().find("entities"), std::string::npos);
  // Each action is a JSON line with its decision, digest and duration.
  std::istringstream lines(slurp(log));
  std::string line;
  std::vector<json> acts;
  while (std::getline(lines, line)) acts.push_back(json::parse(line));
  ASSERT_EQ(acts.size(), 2u);
  EXPECT_EQ(acts[0]["tool"], "mcp1.get-sum");
  EXPECT_EQ(acts[0]["decided_by"], "--approve-all");
  EXPECT_EQ(acts[0]["result_sha256"].get<std::string>().size(), 64u);
  EXPECT_NE(out.find("▶ get-sum"), std::string::npos) << out;
}

TEST_F(AgentCli, PolicyDeniesAndADeadServerIsLeftOut) {
  const std::string pol = kTmp + "/agent_policy.json", t = kTmp + "/agent_t2.json", log = kTmp + "/agent_log2.jsonl";
  std::ofstream(pol) << R"({"default": "ask", "tools": {"mcp2.get-sum": [{"deny": {}}], "mcp3.*": [{"allow": {}}]}})";
  fs::remove(log);
  std::string out;
  // mcp1 dies at once; mcp2 (everything) and mcp3 (memory) go on.
  const std::string cmd = agent(" --mcp \"node -e process.exit(4)\" --mcp \"node " + node_pkg("server-everything") +
                                " stdio\" --mcp \"node " + node_pkg("server-memory") + "\" --policy " + pol +
                                " --tool-choice get-sum,read_graph,none --transcript " + t + " --action-log " + log + " task");
  ASSERT_EQ(sh(cmd, &out), 0) << out;
  EXPECT_NE(out.find("'mcp1' left out"), std::string::npos) << out;
  const json tr = json::parse(slurp(t));
  ASSERT_GE(tr["steps"].size(), 2u) << tr.dump(1);
  const json& denied = tr["steps"][0]["calls"][0];
  EXPECT_EQ(denied["name"], "get-sum");
  EXPECT_FALSE(denied["approved"].get<bool>());
  EXPECT_NE(denied["decided_by"].get<std::string>().find("policy"), std::string::npos);
  EXPECT_NE(denied["result"].get<std::string>().find("not approved"), std::string::npos);
  const json& allowed = tr["steps"][1]["calls"][0];
  EXPECT_TRUE(allowed["approved"].get<bool>()) << allowed.dump();
  EXPECT_FALSE(allowed["is_error"].get<bool>());
}

// --high-impact: the policy's "allow" becomes "ask", so with no person at a terminal (setsid: no
// controlling terminal) the call is not approved; the action and the run are in the signed audit log.
TEST_F(AgentCli, HighImpactNeedsAPersonAndRecordsEverything) {
  const std::string pol = kTmp + "/agent_policy_hi.json", t = kTmp + "/agent_t_hi.json", audit = kTmp + "/agent_audit_hi.jsonl";
  std::ofstream(pol) << R"({"default": "deny", "tools": {"mcp1.*": [{"allow": {}}]}})";
  for (const auto& f : {audit, audit + ".key", audit + ".key.pub"}) fs::remove(f);
  std::string out;
  ASSERT_EQ(sh("setsid -w " + agent(" --mcp \"node " + node_pkg("server-memory") + "\" --policy " + pol +
                                   " --high-impact --audit-log " + audit + " --tool-choice read_graph,none --transcript " + t +
                                   " 'Read the graph.'"),
               &out),
            0)
      << out;
  EXPECT_NE(out.find("high-impact mode"), std::string::npos) << out;
  const json tr = json::parse(slurp(t));
  const json& call = tr["steps"][0]["calls"][0];
  EXPECT_EQ(call["name"], "read_graph");
  EXPECT_FALSE(call["approved"].get<bool>()) << call.dump();
  EXPECT_NE(call["decided_by"].get<std::string>().find("terminal"), std::string::npos) << call.dump();
  ASSERT_EQ(sh(std::string(MODU_BIN) + " audit verify " + audit, &out), 0) << out;
  ASSERT_EQ(sh(std::string(MODU_BIN) + " audit show --json --kind action " + audit + " 2>/dev/null", &out), 0) << out;
  const json act = json::parse(out.substr(0, out.find('\n')));
  EXPECT_EQ(act["tool"], "mcp1.read_graph");
  EXPECT_FALSE(act["approved"].get<bool>());
  ASSERT_EQ(sh(std::string(MODU_BIN) + " audit show --json --kind agent_run " + audit + " 2>/dev/null", &out), 0) << out;
  EXPECT_EQ(json::parse(out.substr(0, out.find('\n')))["task"], "Read the graph.");
}

// Interactive mode: each line is a task in the same conversation.
TEST_F(AgentCli, InteractiveTasksContinueTheConversation) {
  const std::string t = kTmp + "/agent_t5.json";
  std::string out;
  ASSERT_EQ(sh("printf '첫 번째 질문\\n두 번째 질문\\n' | " + agent(servers() + " --approve-all --tool-choice get-sum,none,none --transcript " + t), &out), 0)
      << out;
  const json tr = json::parse(slurp(t));
  ASSERT_EQ(tr["runs"].size(), 2u) << tr.dump(1);
  EXPECT_EQ(tr["runs"][0]["task"], "첫 번째 질문");
  EXPECT_EQ(tr["runs"][1]["task"], "두 번째 질문");
  int users = 0, tools = 0;
  for (const auto& m : tr["messages"]) {
    users += m["role"] == "user";
    tools += m["role"] == "tool";
  }
  EXPECT_EQ(users, 2) << "both tasks are in one conversation";
  EXPECT_EQ(tools, 1);
}

// An image with the task (--mmproj --image): it sits at the task's marker in every step's prompt,
// the reply is what `modu run` gives for that prompt and image, and another image changes it.
TEST_F(AgentCli, ImageGoesWithTheTask) {
  const std::string mm = kTmp + "/agent_mmproj.gguf", t = kTmp + "/agent_img.json", p = kTmp + "/agent_img_prompt.txt";
  const std::string data = std::string(MODU_SOURCE_DIR) + "/src/vision/testdata/";
  std::string out;
  ASSERT_EQ(sh(std::string(MODU_BIN) + " init-mmproj -o " + mm + " --projector mlp --text-width 64 --image-size 32 --patch 8 "
               "--width 32 --ff 64 --heads 4 --layers 2 --type f32", &out), 0) << out;
  auto reply = [&](const std::string& image) {
    std::string o;
    EXPECT_EQ(sh(agent("--mmproj " + mm + " --image " + data + image + " --tool-choice none --keep-prompts --transcript " + t +
                       " \"What is in the picture?\""), &o), 0) << o;
    EXPECT_NE(o.find("16 tokens"), std::string::npos) << o;
    return json::parse(slurp(t));
  };
  const json a = reply("src_37x23.png");
  ASSERT_EQ(a["steps"].size(), 1u) << a.dump(1);
  EXPECT_EQ(a["steps"][0]["image_tokens"], 16);
  const std::string prompt = a["steps"][0]["prompt"];
  EXPECT_NE(prompt.find("<__media__>What is in the picture?"), std::string::npos) << prompt;
  std::ofstream(p, std::ios::binary) << prompt;
  std::string run_out;
  ASSERT_EQ(sh(std::string(MODU_BIN) + " run -m " + model() + " -t 1 -n 60 --temp 0 --mmproj " + mm + " --image " + data +
               "src_37x23.png -f " + p + " 2>/dev/null | cat", &run_out), 0) << run_out;
  EXPECT_EQ(run_out, a["steps"][0]["reply"].get<std::string>());
  const json b = reply("orient_6.jpg");  // (its reply ends mid-character: the transcript still saves)
  EXPECT_NE(b["steps"][0]["reply"], a["steps"][0]["reply"]) << "the image reaches the model";
  // A task right after a list option stays the task (list options take one argument each).
  ASSERT_EQ(sh(agent("--transcript " + t + " --tool-choice none \"after a list\""), &out), 0) << out;
  EXPECT_EQ(json::parse(slurp(t))["runs"][0]["task"], "after a list");
  EXPECT_NE(sh(agent("--image " + data + "src_37x23.png \"hi\""), &out), 0);  // no projector: a clear error
  EXPECT_NE(out.find("needs --mmproj"), std::string::npos) << out;
}

// An image a tool returns (the everything server's get-tiny-image, a PNG in an MCP "image" item)
// reaches a model with a vision projector: its embeddings sit at a marker in the tool message of
// the next turn's prompt. Without a projector it stays described in words.
TEST_F(AgentCli, ImageFromAToolReachesTheNextTurn) {
  const std::string mm = kTmp + "/agent_mmproj_tool.gguf", t = kTmp + "/agent_img_tool.json";
  std::string out;
  ASSERT_EQ(sh(std::string(MODU_BIN) + " init-mmproj -o " + mm + " --projector mlp --text-width 64 --image-size 32 --patch 8 "
               "--width 32 --ff 64 --heads 4 --layers 2 --type f32", &out), 0) << out;
  const std::string args = " --mcp \"node " + node_pkg("server-everything") + " stdio\" --approve-all --tool-choice get-tiny-image "
                           "--tool-choice none --max-steps 2 --keep-prompts --transcript " + t + " \"Show me the logo.\"";
  ASSERT_EQ(sh(agent("--mmproj " + mm + args), &out), 0) << out;
  json tr = json::parse(slurp(t));
  ASSERT_EQ(tr["steps"].size(), 2u) << tr.dump(1);
  EXPECT_FALSE(tr["steps"][0].contains("image_tokens"));
  EXPECT_EQ(tr["steps"][1]["image_tokens"], 16) << "the tool's image went through the projector";
  std::string prompt = tr["steps"][1]["prompt"];
  EXPECT_NE(prompt.find("<__media__>Here's the image you requested:"), std::string::npos) << prompt;
  ASSERT_EQ(sh(agent(args), &out), 0) << out;  // no projector: words only
  tr = json::parse(slurp(t));
  EXPECT_FALSE(tr["steps"][1].contains("image_tokens"));
  prompt = tr["steps"][1]["prompt"];
  EXPECT_EQ(prompt.find("<__media__>"), std::string::npos);
  EXPECT_NE(prompt.find("[image image/png"), std::string::npos) << prompt;
}

// The person answers the approval prompt on a terminal.
TEST_F(AgentCli, ApprovalPromptOnATerminal) {
  const std::string t = kTmp + "/agent_t3.json";
  int master = -1;
  const pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string cmd = agent(servers() + " --tool-choice get-sum,none --transcript " + t + " task");
    execl("/bin/sh", "sh", "-c", cmd.c_str(), (char*)nullptr);
    _exit(127);
  }
  std::string seen;
  bool answered = false;
  for (int i = 0; i < 600; ++i) {  // up to 60 s
    pollfd p{master, POLLIN, 0};
    if (poll(&p, 1, 100) > 0) {
      char buf[4096];
      const ssize_t n = read(master, buf, sizeof buf);
      if (n <= 0) break;
      seen.append(buf, (size_t)n);
    }
    if (!answered && seen.find("[e]dit") != std::string::npos) {
      ASSERT_EQ(write(master, "n\n", 2), 2);
      answered = true;
    }
  }
  int st = 0;
  waitpid(pid, &st, 0);
  close(master);
  ASSERT_TRUE(answered) << seen;
  EXPECT_NE(seen.find("get-sum"), std::string::npos) << "the prompt shows the exact call: " << seen;
  const json tr = json::parse(slurp(t));
  const json& call = tr["steps"][0]["calls"][0];
  EXPECT_FALSE(call["approved"].get<bool>());
  EXPECT_EQ(call["decided_by"], "user");
}

// Ctrl-C during a tool call cancels the call and ends the loop cleanly.
TEST_F(AgentCli, CtrlCStopsTheRunningToolAndTheLoop) {
  const std::string t = kTmp + "/agent_t4.json", srv = kTmp + "/agent_hang_server.js";
  std::ofstream(srv) << R"(
const rl = require('readline').createInterface({input: process.stdin});
const send = (m) => process.stdout.write(JSON.stringify(m) + '\n');
rl.on('line', (l) => { const m = JSON.parse(l); if (m.id === undefined) return;
  if (m.method === 'initialize') send({jsonrpc: '2.0', id: m.id, result: {protocolVersion: m.params.protocolVersion,
    capabilities: {tools: {}}, serverInfo: {name: 'hang', version: '0'}}});
  else if (m.method === 'tools/list') send({jsonrpc: '2.0', id: m.id, result: {tools: [{name: 'wait', inputSchema: {type: 'object', properties: {}}}]}});
  /* tools/call: never answered */ });
)";
  int master = -1;
  const pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string cmd = "exec " + agent(" --mcp \"node " + srv + "\" --approve-all --tool-choice wait,wait,none --transcript " + t + " task");
    execl("/bin/sh", "sh", "-c", cmd.c_str(), (char*)nullptr);
    _exit(127);
  }
  std::string seen;
  bool interrupted = false;
  auto t_int = std::chrono::steady_clock::now();
  for (int i = 0; i < 600; ++i) {
    pollfd p{master, POLLIN, 0};
    if (poll(&p, 1, 100) > 0) {
      char buf[4096];
      const ssize_t n = read(master, buf, sizeof buf);
      if (n <= 0) break;
      seen.append(buf, (size_t)n);
    }
    if (!interrupted && seen.find("wait {}") != std::string::npos) {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      ASSERT_EQ(write(master, "\x03", 1), 1);  // the terminal turns it into SIGINT
      interrupted = true;
      t_int = std::chrono::steady_clock::now();
    }
  }
  int st = 0;
  waitpid(pid, &st, 0);
  close(master);
  ASSERT_TRUE(interrupted) << seen;
  EXPECT_LT(std::chrono::steady_clock::now() - t_int, std::chrono::seconds(10));
  const json tr = json::parse(slurp(t));
  EXPECT_EQ(tr["runs"][0]["stop_reason"], "stopped") << tr.dump(1);
  ASSERT_EQ(tr["steps"].size(), 1u) << "the loop ends after the interrupted step";
  EXPECT_NE(tr["steps"][0]["calls"][0]["result"].get<std::string>().find("cancelled"), std::string::npos);
}

}  // namespace
