// MCP client against the real reference servers from npm (server-everything over stdio and
// Streamable HTTP, server-filesystem, server-memory), and against servers that misbehave (die,
// hang, write garbage, lie about their tools): each gives a clear error, never a crash.
#include "modu/agent/mcp.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

namespace modu::agent {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string node_dir() {
  const char* d = std::getenv("MODU_NODE_DIR");
  return d ? d : "";
}

std::string server_js(const std::string& pkg) {
  return node_dir() + "/node_modules/@modelcontextprotocol/" + pkg + "/dist/index.js";
}

#define NEED_NODE()                                                                                 \
  if (node_dir().empty() || !fs::exists(server_js("server-everything")))                           \
  GTEST_FAIL() << "the MCP servers are not installed (run through ctest: the server_npm fixture " \
                  "installs them)"

McpServerConfig stdio_server(const std::string& name, std::vector<std::string> args, double timeout = 30) {
  McpServerConfig c;
  c.name = name;
  c.command = "node";
  c.args = std::move(args);
  c.timeout_s = timeout;
  return c;
}

const McpTool* find(const std::vector<McpTool>& ts, const std::string& name) {
  for (const auto& t : ts)
    if (t.name == name) return &t;
  return nullptr;
}

// Checks the everything server's tools through any transport.
void exercise_everything(McpClient& c) {
  EXPECT_EQ(c.protocol_version(), "2025-11-25");
  EXPECT_TRUE(c.server_info().contains("name"));
  auto tools = c.list_tools();
  ASSERT_TRUE(tools.ok()) << tools.status().to_string();
  ASSERT_NE(find(*tools, "echo"), nullptr);
  ASSERT_NE(find(*tools, "get-sum"), nullptr);
  EXPECT_EQ(find(*tools, "echo")->input_schema.value("type", ""), "object");

  auto echo = c.call_tool("echo", {{"message", "안녕, MCP"}});
  ASSERT_TRUE(echo.ok()) << echo.status().to_string();
  EXPECT_FALSE(echo->is_error);
  EXPECT_NE(echo->text().find("안녕, MCP"), std::string::npos) << echo->text();
  auto sum = c.call_tool("get-sum", {{"a", 2}, {"b", 40}});
  ASSERT_TRUE(sum.ok()) << sum.status().to_string();
  EXPECT_NE(sum->text().find("42"), std::string::npos) << sum->text();

  // Structured content is checked against the tool's outputSchema.
  auto st = c.call_tool("get-structured-content", {{"location", "Chicago"}});
  ASSERT_TRUE(st.ok()) << st.status().to_string();
  EXPECT_FALSE(st->is_error) << st->text();
  EXPECT_TRUE(st->structured.is_object()) << st->text();

  // Progress notifications arrive while a long call runs.
  int updates = 0;
  auto lr = c.call_tool("trigger-long-running-operation", {{"duration", 1}, {"steps", 3}}, 20,
                        [&](double p, double total, const std::string&) {
                          ++updates;
                          EXPECT_LE(p, total);
                        });
  ASSERT_TRUE(lr.ok()) << lr.status().to_string();
  EXPECT_GE(updates, 2);

  // A call past its timeout is cancelled; the session goes on.
  const auto t0 = std::chrono::steady_clock::now();
  auto slow = c.call_tool("trigger-long-running-operation", {{"duration", 20}, {"steps", 2}}, 0.5);
  EXPECT_FALSE(slow.ok());
  EXPECT_NE(slow.status().message().find("within"), std::string::npos) << slow.status().to_string();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_TRUE(c.ping().ok());

  // So does cancelling from another thread (Ctrl-C).
  std::atomic<bool> cancel{false};
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    cancel = true;
  });
  auto cancelled = c.call_tool("trigger-long-running-operation", {{"duration", 20}, {"steps", 2}}, 30, nullptr, &cancel);
  stopper.join();
  EXPECT_FALSE(cancelled.ok());
  EXPECT_NE(cancelled.status().message().find("cancelled"), std::string::npos);

  // An unknown tool is the tool's error, reported to the model, not the end of the session.
  auto unknown = c.call_tool("no-such-tool", json::object());
  ASSERT_TRUE(unknown.ok()) << unknown.status().to_string();
  EXPECT_TRUE(unknown->is_error);
  EXPECT_FALSE(unknown->text().empty());

  auto res = c.list_resources();
  ASSERT_TRUE(res.ok()) << res.status().to_string();
  ASSERT_FALSE(res->empty());
  auto read = c.read_resource((*res)[0]["uri"].get<std::string>());
  ASSERT_TRUE(read.ok()) << read.status().to_string();
  EXPECT_TRUE(read->contains("contents"));
  auto prompts = c.list_prompts();
  ASSERT_TRUE(prompts.ok()) << prompts.status().to_string();
  EXPECT_FALSE(prompts->empty());
}

TEST(Mcp, EverythingOverStdio) {
  NEED_NODE();
  auto c = McpClient::connect(stdio_server("everything", {server_js("server-everything"), "stdio"}));
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  exercise_everything(**c);
  EXPECT_NE((*c)->log().find("STDIO"), std::string::npos) << "the server's stderr is kept: " << (*c)->log();
}

int free_port() {
  const int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, (sockaddr*)&a, sizeof a);
  socklen_t len = sizeof a;
  getsockname(s, (sockaddr*)&a, &len);
  close(s);
  return ntohs(a.sin_port);
}

TEST(Mcp, EverythingOverStreamableHttp) {
  NEED_NODE();
  const int port = free_port();
  const pid_t pid = fork();
  if (pid == 0) {
    setenv("PORT", std::to_string(port).c_str(), 1);
    execlp("node", "node", server_js("server-everything").c_str(), "streamableHttp", (char*)nullptr);
    _exit(127);
  }
  ASSERT_GT(pid, 0);
  McpServerConfig cfg;
  cfg.name = "everything-http";
  cfg.url = "http://127.0.0.1:" + std::to_string(port) + "/mcp";
  cfg.timeout_s = 30;
  Result<std::unique_ptr<McpClient>> c = io_error("not started");
  for (int i = 0; i < 100 && !c.ok(); ++i) {  // until it listens
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    c = McpClient::connect(cfg);
  }
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  exercise_everything(**c);
  c->reset();
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
}

TEST(Mcp, FilesystemServerRefusesPathsOutsideItsRoot) {
  NEED_NODE();
  const fs::path root = fs::path(::testing::TempDir()) / "mcp_fs_root";
  fs::create_directories(root);
  std::ofstream(root / "note.txt") << "모두의 파일";
  auto c = McpClient::connect(stdio_server("fs", {server_js("server-filesystem"), root.string()}));
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  auto tools = (*c)->list_tools();
  ASSERT_TRUE(tools.ok()) << tools.status().to_string();
  ASSERT_NE(find(*tools, "read_text_file"), nullptr);
  auto in = (*c)->call_tool("read_text_file", {{"path", (root / "note.txt").string()}});
  ASSERT_TRUE(in.ok()) << in.status().to_string();
  EXPECT_FALSE(in->is_error) << in->text();
  EXPECT_NE(in->text().find("모두의 파일"), std::string::npos);
  auto out = (*c)->call_tool("read_text_file", {{"path", "/etc/hostname"}});
  ASSERT_TRUE(out.ok()) << "a refusal is a tool error, not a failure: " << out.status().to_string();
  EXPECT_TRUE(out->is_error);
  EXPECT_NE(out->text().find("denied"), std::string::npos) << out->text();
}

TEST(Mcp, MemoryServerKeepsWhatItIsTold) {
  NEED_NODE();
  const fs::path file = fs::path(::testing::TempDir()) / "mcp_memory.jsonl";
  fs::remove(file);
  McpServerConfig cfg = stdio_server("memory", {server_js("server-memory")});
  cfg.env["MEMORY_FILE_PATH"] = file.string();
  auto c = McpClient::connect(cfg);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  auto made = (*c)->call_tool("create_entities", {{"entities", json::array({{{"name", "서울"}, {"entityType", "city"},
                                                                            {"observations", {"capital of Korea"}}}})}});
  ASSERT_TRUE(made.ok()) << made.status().to_string();
  EXPECT_FALSE(made->is_error) << made->text();
  auto graph = (*c)->call_tool("read_graph", json::object());
  ASSERT_TRUE(graph.ok());
  EXPECT_NE(graph->text().find("capital of Korea"), std::string::npos) << graph->text();
}

// Servers that misbehave, written in node inline.
McpServerConfig fake(const std::string& name, const std::string& js, double timeout = 2) {
  return stdio_server(name, {"-e", js}, timeout);
}

// A minimal server: answers initialize, then `on_call` decides the tools/call answers.
std::string fake_js(const std::string& tools_json, const std::string& call_answer) {
  return R"(
const rl = require('readline').createInterface({input: process.stdin});
const send = (m) => process.stdout.write(JSON.stringify(m) + '\n');
rl.on('line', (l) => { const m = JSON.parse(l); if (m.id === undefined) return;
  if (m.method === 'initialize') send({jsonrpc: '2.0', id: m.id, result: {protocolVersion: m.params.protocolVersion,
    capabilities: {tools: {}}, serverInfo: {name: 'fake', version: '0'}}});
  else if (m.method === 'tools/list') send({jsonrpc: '2.0', id: m.id, result: {tools: )" +
         tools_json + R"(}});
  else if (m.method === 'tools/call') { )" +
         call_answer + R"( }
  else send({jsonrpc: '2.0', id: m.id, result: {}}); });
)";
}

TEST(Mcp, MisbehavingServersGiveClearErrors) {
  NEED_NODE();
  // Not installed.
  McpServerConfig missing;
  missing.name = "missing";
  missing.command = "/nonexistent/mcp-server";
  auto m = McpClient::connect(missing);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("cannot run"), std::string::npos) << m.status().to_string();
  // Dies at once, after a word on stderr.
  auto dead = McpClient::connect(fake("dead", "console.error('no config found'); process.exit(3)"));
  ASSERT_FALSE(dead.ok());
  EXPECT_NE(dead.status().message().find("no config found"), std::string::npos) << dead.status().to_string();
  // Hangs.
  auto hung = McpClient::connect(fake("hung", "setInterval(() => {}, 1000)", 1));
  ASSERT_FALSE(hung.ok());
  EXPECT_NE(hung.status().message().find("did not answer"), std::string::npos) << hung.status().to_string();
  // Garbage on stdout.
  auto garbage = McpClient::connect(fake("garbage", "setInterval(() => console.log('{not json'), 100)", 1));
  ASSERT_FALSE(garbage.ok());
  EXPECT_NE(garbage.status().message().find("not JSON-RPC"), std::string::npos) << garbage.status().to_string();
  // Lies about its tools: lists one, refuses to run it; another's structured content breaks its
  // outputSchema; the third dies during a call.
  const std::string tools = R"([{name: 'listed', inputSchema: {type: 'object'}},
    {name: 'typed', inputSchema: {type: 'object'}, outputSchema: {type: 'object', properties: {n: {type: 'integer'}}, required: ['n']}},
    {name: 'crash', inputSchema: {type: 'object'}}, {inputSchema: {}}])";
  const std::string answer = R"(
    if (m.params.name === 'listed') send({jsonrpc: '2.0', id: m.id, error: {code: -32602, message: 'Unknown tool: listed'}});
    else if (m.params.name === 'typed') send({jsonrpc: '2.0', id: m.id, result: {content: [], structuredContent: {n: 'two'}}});
    else process.exit(1);)";
  auto liar = McpClient::connect(fake("liar", fake_js(tools, answer), 5));
  ASSERT_TRUE(liar.ok()) << liar.status().to_string();
  auto listed = (*liar)->list_tools();
  ASSERT_TRUE(listed.ok()) << listed.status().to_string();
  EXPECT_EQ(listed->size(), 3u) << "the nameless tool is left out";
  EXPECT_FALSE((*liar)->warnings().empty());
  auto r = (*liar)->call_tool("listed", json::object());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->is_error);
  EXPECT_NE(r->text().find("Unknown tool"), std::string::npos);
  r = (*liar)->call_tool("typed", json::object());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->is_error);
  EXPECT_NE(r->text().find("outputSchema"), std::string::npos) << r->text();
  r = (*liar)->call_tool("crash", json::object());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("exited"), std::string::npos) << r.status().to_string();
}

// A stdio server started in the sandbox writes only in the workspace, cannot read ~/.ssh and runs
// under the seccomp filter.
TEST(Mcp, SandboxedServerIsConfined) {
  NEED_NODE();
  if (Status s = sandbox_available(); !s.ok()) GTEST_SKIP() << s.to_string();
  const fs::path ws = fs::path(::testing::TempDir()) / "mcp_sandbox_ws";
  const fs::path outside = fs::path(::testing::TempDir()) / "mcp_sandbox_outside";
  fs::create_directories(ws);
  fs::create_directories(outside);
  fs::remove(outside / "escaped.txt");
  const char* home = std::getenv("HOME");
  const fs::path ssh = fs::path(home ? home : "/root") / ".ssh";
  const bool made_ssh = !fs::exists(ssh);
  fs::create_directories(ssh);
  std::ofstream(ssh / "modu_mcp_probe") << "secret";
  const std::string answer = R"(
    const fs = require('fs'); const out = [];
    const tryit = (what, f) => { try { f(); out.push(what + ': ok'); } catch (e) { out.push(what + ': ' + e.code); } };
    tryit('inside', () => fs.writeFileSync(')" + (ws / "inside.txt").string() + R"(', 'x'));
    tryit('outside', () => fs.writeFileSync(')" + (outside / "escaped.txt").string() + R"(', 'x'));
    tryit('ssh', () => fs.readFileSync(')" + (ssh / "modu_mcp_probe").string() + R"('));
    out.push('seccomp: ' + fs.readFileSync('/proc/self/status', 'utf8').match(/Seccomp:\s*(\d)/)[1]);
    send({jsonrpc: '2.0', id: m.id, result: {content: [{type: 'text', text: out.join('\n')}]}});)";
  McpServerConfig cfg = fake("boxed", fake_js("[{name: 'probe', inputSchema: {type: 'object'}}]", answer), 10);
  cfg.sandbox = true;
  cfg.workspace = ws.string();
  auto c = McpClient::connect(cfg);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  auto r = (*c)->call_tool("probe", json::object());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const std::string text = r->text();
  EXPECT_NE(text.find("inside: ok"), std::string::npos) << text;
  EXPECT_TRUE(fs::exists(ws / "inside.txt"));
  EXPECT_FALSE(fs::exists(outside / "escaped.txt")) << text;
  EXPECT_EQ(text.find("ssh: ok"), std::string::npos) << text;
  EXPECT_NE(text.find("seccomp: 2"), std::string::npos) << text;  // under the sandbox's filter
  fs::remove(ssh / "modu_mcp_probe");
  if (made_ssh) fs::remove(ssh);
}

TEST(McpConfig, ParsesServersAndFlags) {
  auto cfg = parse_mcp_config(json::parse(R"({"mcpServers": {
      "fs": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/data"], "env": {"A": "1"}},
      "remote": {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer x"}, "timeout": 5}}})"));
  ASSERT_TRUE(cfg.ok()) << cfg.status().to_string();
  ASSERT_EQ(cfg->size(), 2u);
  EXPECT_EQ((*cfg)[0].args.size(), 3u);
  EXPECT_EQ((*cfg)[0].env.at("A"), "1");
  EXPECT_EQ((*cfg)[1].headers.at("Authorization"), "Bearer x");
  EXPECT_EQ((*cfg)[1].timeout_s, 5);
  for (const char* bad : {R"({})", R"({"mcpServers": {"x": {}}})", R"({"mcpServers": {"x": {"command": 3}}})",
                          R"({"mcpServers": {"x": {"command": "a", "url": "http://b"}}})", R"({"mcpServers": {"x": {"command": "a", "args": "b"}}})"}) {
    auto r = parse_mcp_config(json::parse(bad));
    EXPECT_FALSE(r.ok()) << bad;
  }
  auto f = parse_mcp_flag(R"(node "my server.js" --root '/a b' x\ y)", "s");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->command, "node");
  EXPECT_EQ(f->args, (std::vector<std::string>{"my server.js", "--root", "/a b", "x y"}));
  auto u = parse_mcp_flag("http://127.0.0.1:3001/mcp", "u");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->url, "http://127.0.0.1:3001/mcp");
  EXPECT_FALSE(parse_mcp_flag("node 'unbalanced", "x").ok());
  EXPECT_FALSE(parse_mcp_flag("  ", "x").ok());
}

}  // namespace
}  // namespace modu::agent
