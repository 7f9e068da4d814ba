// Approval: TerminalApprover (asks on /dev/tty or given descriptors) and decide() (policy + approver).
#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cstring>

#include "modu/agent/policy.h"

namespace modu::agent {

namespace {

// Tool names come from MCP servers: never let them put control sequences on the terminal.
std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
  return out;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

}  // namespace

TerminalApprover::TerminalApprover() {
  int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
  if (fd >= 0) {
    in_ = out_ = fd;
    owned_ = true;
  }
}

TerminalApprover::TerminalApprover(int in_fd, int out_fd) : in_(in_fd), out_(out_fd) {}

TerminalApprover::~TerminalApprover() {
  if (owned_ && in_ >= 0) ::close(in_);
}

Result<std::unique_ptr<TerminalApprover>> TerminalApprover::open_tty() {
  auto a = std::make_unique<TerminalApprover>();
  if (!a->has_terminal())
    return io_error(std::string("cannot open /dev/tty to ask for approval (") + std::strerror(errno) +
                    "): run modu from a terminal, or decide with a policy file / --approve-all");
  return a;
}

void TerminalApprover::write_all(std::string_view s) {
  while (!s.empty()) {
    ssize_t w = ::write(out_, s.data(), s.size());
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    s.remove_prefix(static_cast<size_t>(w));
  }
}

bool TerminalApprover::read_line(std::string* line) {
  line->clear();
  for (;;) {
    char c;
    ssize_t r = ::read(in_, &c, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return !line->empty();
    if (c == '\n') return true;
    *line += c;
  }
}

Approval TerminalApprover::ask(const std::string& tool, const nlohmann::json& args) {
  if (!has_terminal()) return {false, "no terminal to ask", args};
  const std::string shown = printable(tool);
  if (always_.count(tool)) {
    write_all("\n[modu] tool call " + shown + " (allowed always this session):\n" + args.dump(2) + "\n");
    return {true, "user (always)", args};
  }
  write_all("\n[modu] the model wants to call tool " + shown + " with arguments:\n" + args.dump(2) + "\n");
  std::string line;
  for (;;) {
    write_all("Run it? [y]es / [n]o / [a]lways / [e]dit: ");
    if (!read_line(&line)) {
      write_all("\n(no answer: not running it)\n");
      return {false, "user (no answer)", args};
    }
    std::string a = trim(line);
    for (char& c : a) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (a == "y" || a == "yes") return {true, "user", args};
    if (a == "n" || a == "no") return {false, "user", args};
    if (a == "a" || a == "always") {
      always_.insert(tool);
      return {true, "user (always)", args};
    }
    if (a == "e" || a == "edit") {
      for (;;) {
        write_all("New arguments as one line of JSON: ");
        if (!read_line(&line)) {
          write_all("\n(no answer: not running it)\n");
          return {false, "user (no answer)", args};
        }
        auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (j.is_discarded() || !j.is_object()) {
          write_all("That is not a JSON object; try again.\n");
          continue;
        }
        write_all("Running " + shown + " with:\n" + j.dump(2) + "\n");
        return {true, "user (edited)", j};
      }
    }
    write_all("Please answer y, n, a or e.\n");
  }
}

Approval decide(const Policy& policy, Approver* approver, bool approve_all, const std::string& tool,
                const nlohmann::json& args) {
  Verdict v = policy.check(tool, args);
  switch (v.decision) {
    case Decision::kDeny: return {false, "policy: " + v.rule, args};
    case Decision::kAllow: return {true, "policy: " + v.rule, args};
    case Decision::kAsk: break;
  }
  if (approve_all) return {true, "--approve-all", args};
  if (!approver) return {false, "no terminal to ask", args};
  Approval a = approver->ask(tool, args);
  if (a.approved && a.args != args) {
    // Edited arguments are checked again: a user edit must not smuggle in a denied call.
    Verdict v2 = policy.check(tool, a.args);
    if (v2.decision == Decision::kDeny) return {false, "policy: " + v2.rule + " (after edit)", a.args};
  }
  return a;
}

}  // namespace modu::agent
