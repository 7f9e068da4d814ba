// Tests for policy: globs, rule order, defaults, malformed files, decide(), and TerminalApprover
// driven through a real pseudo-terminal.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>

#include "modu/agent/policy.h"

namespace modu::agent {
namespace {

using nlohmann::json;

TEST(Glob, StarsAndSlashes) {
  EXPECT_TRUE(glob_match("docs/**", "docs/a/b/c.md"));
  EXPECT_TRUE(glob_match("docs/*", "docs/a.md"));
  EXPECT_FALSE(glob_match("docs/*", "docs/a/b.md"));
  EXPECT_TRUE(glob_match("**/*.md", "x/y/z.md"));
  EXPECT_FALSE(glob_match("*.md", "x/z.md"));
  EXPECT_TRUE(glob_match("a?c", "abc"));
  EXPECT_FALSE(glob_match("a?c", "a/c"));
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_FALSE(glob_match("", "x"));
  EXPECT_TRUE(glob_match("https://example.com/*", "https://example.com/page"));
  EXPECT_FALSE(glob_match("https://example.com/*", "https://example.com/a/b"));
  EXPECT_FALSE(glob_match("https://example.com/*", "https://example.com.evil.org/x"));
  EXPECT_TRUE(glob_match("server.*", "server.tool"));
  EXPECT_TRUE(glob_match("a*b*c", "aXbYbZc"));
  EXPECT_FALSE(glob_match("a*b*c", "aXbYbZ"));
  EXPECT_TRUE(glob_match("**/b*", "x/y/bz"));
  EXPECT_FALSE(glob_match("**/b*", "x/y/bz/q"));
  EXPECT_TRUE(glob_match("**b/*", "x/y/b/q"));
}

const char* kPolicy = R"({"default": "ask",
 "tools": {
   "read_file":   [{"allow": {"path": "docs/**"}}, {"ask": {}}],
   "run_command": [{"ask": {}}],
   "fetch_url":   [{"allow": {"url": "https://example.com/*"}}, {"deny": {}}],
   "everything.*": [{"allow": {}}],
   "write_file":  [{"deny": {"path": "*.sh"}}, {"allow": {"path": "out/**", "content": "*"}}],
   "counter":     [{"allow": {"n": "4?"}}]
 }})";

Policy parse_ok(const std::string& text) {
  auto p = Policy::parse(json::parse(text));
  EXPECT_TRUE(p.ok()) << p.status().to_string();
  return p.ok() ? *p : Policy::ask_all();
}

TEST(Policy, RulesInOrderWithArgGlobs) {
  Policy p = parse_ok(kPolicy);
  Verdict v = p.check("read_file", {{"path", "docs/guide/intro.md"}});
  EXPECT_EQ(v.decision, Decision::kAllow);
  EXPECT_EQ(v.rule, "read_file[0] allow path=docs/**");
  v = p.check("read_file", {{"path", "src/main.cpp"}});
  EXPECT_EQ(v.decision, Decision::kAsk);
  EXPECT_EQ(v.rule, "read_file[1] ask");
  EXPECT_EQ(p.check("read_file", json::object()).decision, Decision::kAsk);  // missing arg: no match
  EXPECT_EQ(p.check("run_command", {{"command", "ls"}}).decision, Decision::kAsk);
  EXPECT_EQ(p.check("fetch_url", {{"url", "https://example.com/x"}}).decision, Decision::kAllow);
  v = p.check("fetch_url", {{"url", "https://evil.org/x"}});
  EXPECT_EQ(v.decision, Decision::kDeny);
  EXPECT_EQ(v.rule, "fetch_url[1] deny");
  EXPECT_EQ(p.check("everything.echo", json::object()).decision, Decision::kAllow);
  EXPECT_EQ(p.check("everything.echo", json::object()).rule, "everything.*[0] allow");
  // First match wins: deny before allow.
  EXPECT_EQ(p.check("write_file", {{"path", "run.sh"}, {"content", "x"}}).decision, Decision::kDeny);
  EXPECT_EQ(p.check("write_file", {{"path", "out/a.txt"}, {"content", "x"}}).decision, Decision::kAllow);
  // All listed args must match: content missing.
  EXPECT_EQ(p.check("write_file", {{"path", "out/a.txt"}}).decision, Decision::kAsk);
  // Non-string values match their compact JSON.
  EXPECT_EQ(p.check("counter", {{"n", 42}}).decision, Decision::kAllow);
  EXPECT_EQ(p.check("counter", {{"n", 5}}).decision, Decision::kAsk);
  // Unknown tool: the default.
  v = p.check("other", json::object());
  EXPECT_EQ(v.decision, Decision::kAsk);
  EXPECT_EQ(v.rule, "default");
}

TEST(Policy, DotDotNeverMatchesAllow) {
  Policy p = parse_ok(kPolicy);
  EXPECT_EQ(p.check("read_file", {{"path", "docs/../secrets.txt"}}).decision, Decision::kAsk);
  EXPECT_EQ(p.check("read_file", {{"path", "docs/.."}}).decision, Decision::kAsk);
  EXPECT_EQ(p.check("read_file", {{"path", "docs/..x/a"}}).decision, Decision::kAllow);
}

TEST(Policy, SupervisedAsksWhereItAllowed) {
  const Policy p = parse_ok(kPolicy).supervised();
  Verdict v = p.check("read_file", {{"path", "docs/guide/intro.md"}});
  EXPECT_EQ(v.decision, Decision::kAsk);
  EXPECT_EQ(v.rule, "read_file[0] ask (allow, supervised) path=docs/**");
  EXPECT_EQ(p.check("fetch_url", {{"url", "https://evil.org/x"}}).decision, Decision::kDeny);  // deny stays
  EXPECT_EQ(p.check("everything.echo", json::object()).decision, Decision::kAsk);
  EXPECT_EQ(p.check("read_file", {{"path", "docs/../secrets.txt"}}).rule, "read_file[1] ask");  // the '..' guard stays
  EXPECT_EQ(parse_ok(R"({"default": "allow"})").supervised().check("x", json::object()).decision, Decision::kAsk);
  // Nothing is approved without a person: no terminal means no.
  const Approval a = decide(p, nullptr, /*approve_all=*/false, "read_file", {{"path", "docs/a.md"}});
  EXPECT_FALSE(a.approved);
}

TEST(Policy, DefaultsAndGlobSpecificity) {
  EXPECT_EQ(Policy::ask_all().check("anything", json::object()).decision, Decision::kAsk);
  Policy p = parse_ok(R"({"default": "deny", "tools": {"*": [{"ask": {}}], "srv.*": [{"allow": {}}],
                          "srv.rm": [{"deny": {}}]}})");
  EXPECT_EQ(p.check("srv.rm", json::object()).decision, Decision::kDeny);
  EXPECT_EQ(p.check("srv.ls", json::object()).decision, Decision::kAllow);
  EXPECT_EQ(p.check("local", json::object()).decision, Decision::kAsk);
  Policy d = parse_ok(R"({"default": "deny"})");
  EXPECT_EQ(d.check("x", json::object()).decision, Decision::kDeny);
  Policy e = parse_ok(R"({"tools": {"x": [{"deny": {"a": "1"}}]}})");
  EXPECT_EQ(e.check("x", {{"a", "2"}}).decision, Decision::kAsk);  // default of default
  EXPECT_EQ(e.check("x", {{"a", "1"}}).decision, Decision::kDeny);
}

TEST(Policy, MalformedFilesNameTheKey) {
  auto bad = [](const char* text, const char* needle) {
    auto p = Policy::parse(json::parse(text));
    ASSERT_FALSE(p.ok()) << text;
    EXPECT_NE(p.status().message().find(needle), std::string::npos) << p.status().message();
  };
  bad(R"([1])", "top level");
  bad(R"({"default": "maybe"})", "\"default\"");
  bad(R"({"defualt": "ask"})", "defualt");
  bad(R"({"tools": []})", "\"tools\"");
  bad(R"({"tools": {"read_file": {"allow": {}}}})", "tools[\"read_file\"]");
  bad(R"({"tools": {"read_file": [{"permit": {}}]}})", "permit");
  bad(R"({"tools": {"read_file": [{"allow": {}, "deny": {}}]}})", "read_file\"][0]");
  bad(R"({"tools": {"read_file": [{"allow": {}}, {"allow": {"path": 3}}]}})", "read_file\"][1].allow[\"path\"]");
  bad(R"({"tools": {"read_file": [{"allow": "docs/**"}]}})", "read_file\"][0].allow");

  char dir[] = "/tmp/modu_policy_XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/policy.json";
  EXPECT_EQ(Policy::load(path).status().code(), StatusCode::kNotFound);
  std::ofstream(path) << "{ not json";
  auto p = Policy::load(path);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find(path), std::string::npos);
  std::ofstream(path, std::ios::trunc) << kPolicy;
  EXPECT_TRUE(Policy::load(path).ok());
  std::ofstream(path, std::ios::trunc) << R"({"default": 1})";
  p = Policy::load(path);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find(path), std::string::npos);
  EXPECT_NE(p.status().message().find("\"default\""), std::string::npos);
  std::remove(path.c_str());
  rmdir(dir);
}

struct FakeApprover : Approver {
  int calls = 0;
  Approval answer{true, "user", json::object()};
  Approval ask(const std::string&, const json& args) override {
    ++calls;
    Approval a = answer;
    if (a.args.empty()) a.args = args;
    return a;
  }
};

TEST(Decide, CombinesPolicyFlagAndApprover) {
  Policy p = parse_ok(kPolicy);
  FakeApprover fa;
  json url_bad = {{"url", "https://evil.org/"}};
  Approval a = decide(p, &fa, true, "fetch_url", url_bad);
  EXPECT_FALSE(a.approved);  // deny beats --approve-all
  EXPECT_EQ(a.by, "policy: fetch_url[1] deny");
  a = decide(p, &fa, false, "read_file", {{"path", "docs/a"}});
  EXPECT_TRUE(a.approved);
  EXPECT_EQ(a.by, "policy: read_file[0] allow path=docs/**");
  EXPECT_EQ(a.args, json({{"path", "docs/a"}}));
  EXPECT_EQ(fa.calls, 0);
  a = decide(p, &fa, true, "run_command", {{"command", "ls"}});
  EXPECT_TRUE(a.approved);
  EXPECT_EQ(a.by, "--approve-all");
  EXPECT_EQ(fa.calls, 0);
  a = decide(p, &fa, false, "run_command", {{"command", "ls"}});
  EXPECT_TRUE(a.approved);
  EXPECT_EQ(a.by, "user");
  EXPECT_EQ(fa.calls, 1);
  a = decide(p, nullptr, false, "run_command", {{"command", "ls"}});
  EXPECT_FALSE(a.approved);
  EXPECT_EQ(a.by, "no terminal to ask");
  // An edit that turns the call into a denied one is refused.
  fa.answer = {true, "user (edited)", {{"path", "x.sh"}, {"content", "rm -rf /"}}};
  a = decide(p, &fa, false, "write_file", {{"path", "a.txt"}, {"content", "hi"}});
  EXPECT_FALSE(a.approved);
}

// A pseudo-terminal: the approver talks to the slave side, the test types into the master.
class Pty {
 public:
  Pty() {
    master_ = posix_openpt(O_RDWR | O_NOCTTY);
    if (master_ < 0 || grantpt(master_) != 0 || unlockpt(master_) != 0) return;
    slave_ = ::open(ptsname(master_), O_RDWR | O_NOCTTY);
  }
  ~Pty() {
    if (slave_ >= 0) ::close(slave_);
    if (master_ >= 0) ::close(master_);
  }
  bool ok() const { return master_ >= 0 && slave_ >= 0; }
  int slave() const { return slave_; }
  void type(const std::string& s) { ASSERT_EQ(::write(master_, s.data(), s.size()), static_cast<ssize_t>(s.size())); }
  // Everything the approver printed (and the terminal echoed) so far.
  std::string screen() {
    std::string out;
    char buf[4096];
    pollfd p{master_, POLLIN, 0};
    while (::poll(&p, 1, 100) > 0) {
      ssize_t n = ::read(master_, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    std::string clean;  // the terminal turns "\n" into "\r\n"
    for (char c : out)
      if (c != '\r') clean += c;
    return clean;
  }

 private:
  int master_ = -1, slave_ = -1;
};

TEST(TerminalApprover, YesNoAlwaysEditThroughAPty) {
  Pty pty;
  ASSERT_TRUE(pty.ok());
  TerminalApprover ta(pty.slave(), pty.slave());
  ASSERT_TRUE(ta.has_terminal());
  json args = {{"path", "docs/a.md"}, {"max_bytes", 10}};

  pty.type("y\n");
  Approval a = ta.ask("read_file", args);
  EXPECT_TRUE(a.approved);
  EXPECT_EQ(a.by, "user");
  EXPECT_EQ(a.args, args);
  std::string screen = pty.screen();
  EXPECT_NE(screen.find("read_file"), std::string::npos) << screen;
  EXPECT_NE(screen.find(args.dump(2)), std::string::npos) << screen;
  EXPECT_NE(screen.find("Run it? [y]es / [n]o / [a]lways / [e]dit: "), std::string::npos) << screen;

  pty.type("n\n");
  a = ta.ask("read_file", args);
  EXPECT_FALSE(a.approved);
  EXPECT_EQ(a.by, "user");
  pty.screen();

  pty.type("what\nno\n");  // an unknown answer is asked again
  a = ta.ask("read_file", args);
  EXPECT_FALSE(a.approved);
  EXPECT_NE(pty.screen().find("Please answer"), std::string::npos);

  pty.type("e\nnot json\n{\"path\": \"docs/b.md\"}\n");
  a = ta.ask("read_file", args);
  EXPECT_TRUE(a.approved);
  EXPECT_EQ(a.args, json({{"path", "docs/b.md"}}));
  screen = pty.screen();
  EXPECT_NE(screen.find("not a JSON object"), std::string::npos) << screen;

  pty.type("a\n");
  a = ta.ask("run_command", {{"command", "make"}});
  EXPECT_TRUE(a.approved);
  EXPECT_EQ(a.by, "user (always)");
  pty.screen();
  // Remembered for the session: no question, nothing typed.
  a = ta.ask("run_command", {{"command", "make test"}});
  EXPECT_TRUE(a.approved);
  EXPECT_EQ(a.by, "user (always)");
  screen = pty.screen();
  EXPECT_NE(screen.find("make test"), std::string::npos);
  EXPECT_EQ(screen.find("Run it?"), std::string::npos);
  // ...but only for that tool.
  pty.type("n\n");
  EXPECT_FALSE(ta.ask("write_file", {{"path", "x"}}).approved);
  pty.screen();
}

TEST(TerminalApprover, ControlCharactersInToolNamesAreNotPrinted) {
  Pty pty;
  ASSERT_TRUE(pty.ok());
  TerminalApprover ta(pty.slave(), pty.slave());
  pty.type("n\n");
  ta.ask("evil\x1b[2Jtool", {{"s", "\x1b[31m"}});
  std::string screen = pty.screen();
  EXPECT_EQ(screen.find('\x1b'), std::string::npos);
}

TEST(TerminalApprover, EndOfInputMeansNo) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  int devnull = ::open("/dev/null", O_WRONLY);
  ::close(p[1]);
  TerminalApprover ta(p[0], devnull);
  Approval a = ta.ask("x", json::object());
  EXPECT_FALSE(a.approved);
  ::close(p[0]);
  ::close(devnull);
}

}  // namespace
}  // namespace modu::agent
