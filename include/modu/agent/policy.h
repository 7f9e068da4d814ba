// Tool-call policy (allow / ask / deny per tool and argument globs) and interactive approval.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "modu/core/status.h"

namespace modu::agent {

enum class Decision { kAllow, kAsk, kDeny };
const char* decision_name(Decision d);  // "allow", "ask", "deny"

struct Verdict {
  Decision decision = Decision::kAsk;
  std::string rule;  // human-readable, e.g. "read_file[0] allow path=docs/**" or "default"
};

// Glob match: `**` matches any run of characters including '/', `*` any run without '/',
// `?` one character other than '/'. Everything else is literal.
bool glob_match(std::string_view pattern, std::string_view text);

// A policy file (JSON):
//   {"default": "ask",
//    "tools": {"read_file": [{"allow": {"path": "docs/**"}}, {"ask": {}}],
//              "server.*":  [{"allow": {}}]}}
// Tool keys are exact names or globs. The exact key is tried first, then glob keys from the most
// specific (longest) to the least; within a key, rules in file order. The first rule whose listed
// arguments all match (glob on the string value; compact JSON for other values) decides. An
// "allow" rule never matches a string containing a ".." path segment, so "docs/**" cannot be
// escaped with "docs/../secret". No matching rule: "default" (itself "ask" when absent).
class Policy {
 public:
  static Result<Policy> parse(const nlohmann::json& j);
  static Result<Policy> load(const std::string& path);
  static Policy ask_all();
  // The same rules with every "allow" (and an "allow" default) turned into "ask": a person
  // approves every action (high-impact mode). "deny" stays.
  Policy supervised() const;

  Verdict check(const std::string& tool, const nlohmann::json& args) const;

 private:
  struct Rule {
    Decision decision = Decision::kAsk;
    std::vector<std::pair<std::string, std::string>> args;  // argument name, glob
    bool supervised = false;  // an "allow" that supervised() turned into "ask" (keeps allow's ".." guard)
  };
  struct Entry {
    std::string key;  // exact name or glob
    std::vector<Rule> rules;
  };
  Decision default_ = Decision::kAsk;
  std::vector<Entry> exact_, globs_;  // globs_ sorted most specific first
};

enum class Answer { kYes, kNo, kAlways, kEdit };

struct Approval {
  bool approved = false;
  std::string by;       // "user", "user (always)", "policy: <rule>", "--approve-all", ...
  nlohmann::json args;  // the arguments to run with (possibly edited by the user)
};

// Asks a person whether one tool call may run.
class Approver {
 public:
  virtual ~Approver() = default;
  virtual Approval ask(const std::string& tool, const nlohmann::json& args) = 0;
};

// Asks on the terminal: prints the exact call (tool name + pretty JSON arguments), then
// "Run it? [y]es / [n]o / [a]lways / [e]dit: ". "always" approves the tool for the rest of the
// session; "edit" reads one line of replacement JSON arguments (re-asked until valid JSON object).
// End of input means no.
class TerminalApprover : public Approver {
 public:
  TerminalApprover();                    // opens /dev/tty; without one every ask() says no
  TerminalApprover(int in_fd, int out_fd);  // explicit descriptors (not owned), e.g. a pty in tests
  ~TerminalApprover() override;
  TerminalApprover(const TerminalApprover&) = delete;
  TerminalApprover& operator=(const TerminalApprover&) = delete;

  // Opens /dev/tty or says why not.
  static Result<std::unique_ptr<TerminalApprover>> open_tty();

  bool has_terminal() const { return in_ >= 0 && out_ >= 0; }
  Approval ask(const std::string& tool, const nlohmann::json& args) override;

 private:
  bool read_line(std::string* line);
  void write_all(std::string_view s);

  int in_ = -1, out_ = -1;
  bool owned_ = false;
  std::set<std::string> always_;
};

// Policy + approver: deny -> not approved ("policy: <rule>"); allow -> approved ("policy: <rule>");
// ask -> approved by "--approve-all" when approve_all, else approver->ask() (no approver: not
// approved, by "no terminal to ask"). The returned args are what to run with.
Approval decide(const Policy& policy, Approver* approver, bool approve_all, const std::string& tool,
                const nlohmann::json& args);

}  // namespace modu::agent
