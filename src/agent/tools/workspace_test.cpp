// Tests for the workspace and the built-in tools: path confinement (.., absolute, symlinks),
// read/write/list, run_command in the sandbox, fetch_url against a local server, bad arguments.
#include <gtest/gtest.h>

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <chrono>
#include <thread>

#include <httplib.h>

#include "modu/agent/workspace.h"

namespace modu::agent {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct TempDir {
  std::string path;
  TempDir() {
    char d[] = "/tmp/modu_ws_XXXXXX";
    path = mkdtemp(d);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

TEST(Workspace, OpenNeedsAnExistingFolder) {
  EXPECT_FALSE(Workspace::open("/nonexistent_modu_ws").ok());
  TempDir d;
  std::ofstream(d.path + "/file") << "x";
  EXPECT_FALSE(Workspace::open(d.path + "/file").ok());
  auto ws = Workspace::open(d.path + "/.");
  ASSERT_TRUE(ws.ok());
  EXPECT_EQ(ws->root(), fs::canonical(d.path));
}

TEST(Workspace, ResolveConfinesPaths) {
  TempDir d, outside;
  auto ws = *Workspace::open(d.path);
  fs::create_directories(d.path + "/sub");
  std::ofstream(d.path + "/sub/a.txt") << "a";
  std::ofstream(outside.path + "/secret") << "s";

  auto r = ws.resolve("sub/a.txt", false);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(*r, ws.root() / "sub/a.txt");
  EXPECT_TRUE(ws.resolve((ws.root() / "sub/a.txt").string(), false).ok());  // absolute inside
  EXPECT_TRUE(ws.resolve("", false).ok());
  EXPECT_TRUE(ws.resolve("new/deeper/file.txt", true).ok());

  for (std::string bad : {"../x", "sub/../../x", "sub/..", ".."}) {
    auto b = ws.resolve(bad, false);
    ASSERT_FALSE(b.ok()) << bad;
    EXPECT_NE(b.status().message().find(bad), std::string::npos);
    EXPECT_NE(b.status().message().find(ws.root().string()), std::string::npos);
    EXPECT_FALSE(ws.resolve(bad, true).ok()) << bad;
  }
  EXPECT_FALSE(ws.resolve("/etc/passwd", false).ok());
  EXPECT_FALSE(ws.resolve(outside.path + "/secret", false).ok());
  EXPECT_FALSE(ws.resolve(outside.path + "/new", true).ok());
  EXPECT_FALSE(ws.resolve("sub/missing.txt", false).ok());

  // Symlinks that escape: a folder link, a file link, and a dangling link to a new outside file.
  fs::create_directory_symlink(outside.path, d.path + "/out");
  fs::create_symlink(outside.path + "/secret", d.path + "/secret_link");
  fs::create_symlink(outside.path + "/created_by_write", d.path + "/dangling");
  fs::create_symlink(d.path + "/sub/a.txt", d.path + "/inner_link");
  EXPECT_FALSE(ws.resolve("out/secret", false).ok());
  EXPECT_FALSE(ws.resolve("out/new.txt", true).ok());
  EXPECT_FALSE(ws.resolve("secret_link", false).ok());
  EXPECT_FALSE(ws.resolve("secret_link", true).ok());
  EXPECT_FALSE(ws.resolve("dangling", true).ok());
  auto in = ws.resolve("inner_link", false);
  ASSERT_TRUE(in.ok());
  EXPECT_EQ(*in, ws.root() / "sub/a.txt");
}

TEST(Builtins, SpecsAndSelection) {
  auto all = builtin_tools({});
  ASSERT_EQ(all.size(), 5u);
  for (const auto& t : all) {
    EXPECT_EQ(t.source, "builtin");
    EXPECT_EQ(t.input_schema["type"], "object");
    EXPECT_FALSE(t.description.empty());
    EXPECT_TRUE(is_builtin_tool(t.name));
  }
  auto some = builtin_tools({"read_file", "fetch_url", "nope"});
  ASSERT_EQ(some.size(), 2u);
  EXPECT_EQ(some[0].name, "read_file");
  EXPECT_EQ(some[0].input_schema["required"], json::array({"path"}));
  EXPECT_EQ(some[1].name, "fetch_url");
  EXPECT_FALSE(is_builtin_tool("rm"));
}

TEST(Builtins, ReadWriteList) {
  TempDir d;
  auto ws = *Workspace::open(d.path);
  SandboxOptions sb;
  ToolResult w = run_builtin("write_file", {{"path", "notes/today.md"}, {"content", "hello\nworld\n"}}, ws, sb);
  ASSERT_FALSE(w.is_error) << w.text;
  EXPECT_EQ(slurp(d.path + "/notes/today.md"), "hello\nworld\n");

  ToolResult r = run_builtin("read_file", {{"path", "notes/today.md"}}, ws, sb);
  ASSERT_FALSE(r.is_error) << r.text;
  EXPECT_EQ(r.text, "hello\nworld\n");
  r = run_builtin("read_file", {{"path", "notes/today.md"}, {"max_bytes", 5}}, ws, sb);
  EXPECT_EQ(r.text.substr(0, 6), "hello\n");
  EXPECT_NE(r.text.find("truncated"), std::string::npos);
  EXPECT_TRUE(r.structured["truncated"].get<bool>());

  ToolResult l = run_builtin("list_dir", json::object(), ws, sb);
  ASSERT_FALSE(l.is_error) << l.text;
  EXPECT_EQ(l.text, "notes/\n");
  l = run_builtin("list_dir", {{"path", "notes"}}, ws, sb);
  EXPECT_EQ(l.text, "today.md (12 bytes)\n");
  EXPECT_EQ(l.structured["entries"][0]["name"], "today.md");
}

TEST(Builtins, ErrorsAreResultsNotCrashes) {
  TempDir d, outside;
  auto ws = *Workspace::open(d.path);
  SandboxOptions sb;
  fs::create_directory_symlink(outside.path, d.path + "/out");
  struct Case { const char* tool; json args; const char* needle; };
  std::vector<Case> cases = {
      {"read_file", json::object(), "missing required argument \"path\""},
      {"read_file", {{"path", 3}}, "must be a string"},
      {"read_file", {{"path", "nope.txt"}}, "does not exist"},
      {"read_file", {{"path", "../x"}}, ".."},
      {"read_file", {{"path", "/etc/passwd"}}, "outside the workspace"},
      {"read_file", {{"path", "."}}, "folder"},
      {"read_file", {{"path", "a"}, {"max_bytes", -1}}, "positive"},
      {"write_file", {{"path", "a.txt"}}, "\"content\""},
      {"write_file", {{"path", "out/evil.txt"}, {"content", "x"}}, "symlink"},
      {"list_dir", {{"path", "missing"}}, "does not exist"},
      {"run_command", json::object(), "\"command\""},
      {"fetch_url", {{"url", "file:///etc/passwd"}}, "only http"},
      {"fetch_url", {{"url", "http://127.0.0.1:1/"}}, "fetch_url"},
      {"no_such_tool", json::object(), "unknown built-in"},
      {"read_file", json::array(), "JSON object"},
  };
  for (const auto& c : cases) {
    ToolResult r = run_builtin(c.tool, c.args, ws, sb);
    EXPECT_TRUE(r.is_error) << c.tool << " " << c.args.dump();
    EXPECT_NE(r.text.find(c.needle), std::string::npos) << c.tool << ": " << r.text;
  }
  EXPECT_FALSE(fs::exists(outside.path + "/evil.txt"));
}

TEST(Builtins, RunCommandWritesInTheWorkspaceSandboxed) {
  Status s = sandbox_available();
  if (!s.ok()) GTEST_SKIP() << s.to_string();
  TempDir d;
  auto ws = *Workspace::open(d.path);
  SandboxOptions sb;
  ToolResult r = run_builtin("run_command", {{"command", "echo made > made.txt; pwd; touch /etc/modu_ws_probe"}}, ws, sb);
  EXPECT_EQ(slurp(d.path + "/made.txt"), "made\n");
  EXPECT_NE(r.text.find(ws.root().string()), std::string::npos) << r.text;
  EXPECT_TRUE(r.is_error);  // touch outside failed, so the exit code is not 0
  EXPECT_NE(r.text.find("[exit code 1]"), std::string::npos) << r.text;
  EXPECT_FALSE(fs::exists("/etc/modu_ws_probe"));
  EXPECT_EQ(r.structured["exit_code"], 1);
  r = run_builtin("run_command", {{"command", "sleep 10"}, {"timeout_s", 0.5}}, ws, sb);
  EXPECT_TRUE(r.is_error);
  EXPECT_TRUE(r.structured["timed_out"].get<bool>());
}

TEST(Builtins, FetchUrlFromALocalServer) {
  httplib::Server srv;
  srv.Get("/hello", [](const httplib::Request&, httplib::Response& res) { res.set_content("hi there", "text/plain"); });
  srv.Get("/big", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(3 << 20, 'z'), "text/plain");
  });
  srv.Get("/moved", [](const httplib::Request&, httplib::Response& res) { res.set_redirect("http://elsewhere.example/"); });
  int port = srv.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread th([&] { srv.listen_after_bind(); });
  while (!srv.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  TempDir d;
  auto ws = *Workspace::open(d.path);
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  ToolResult r = run_builtin("fetch_url", {{"url", base + "/hello"}}, ws, {});
  EXPECT_FALSE(r.is_error) << r.text;
  EXPECT_NE(r.text.find("HTTP 200"), std::string::npos);
  EXPECT_NE(r.text.find("hi there"), std::string::npos);
  r = run_builtin("fetch_url", {{"url", base + "/big"}}, ws, {});
  EXPECT_FALSE(r.is_error) << r.text.substr(0, 200);
  EXPECT_TRUE(r.structured["truncated"].get<bool>());
  EXPECT_EQ(r.structured["bytes"], 1 << 20);
  EXPECT_NE(r.text.find("[truncated at"), std::string::npos);
  r = run_builtin("fetch_url", {{"url", base + "/missing"}}, ws, {});
  EXPECT_TRUE(r.is_error);
  EXPECT_NE(r.text.find("HTTP 404"), std::string::npos);
  r = run_builtin("fetch_url", {{"url", base + "/moved"}}, ws, {});
  EXPECT_NE(r.text.find("not followed"), std::string::npos) << r.text;
  srv.stop();
  th.join();
}

}  // namespace
}  // namespace modu::agent
