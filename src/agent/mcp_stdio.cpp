// MCP over stdio: the server is a child process; messages are single lines of JSON on its stdin
// and stdout; its stderr is kept as a log. Closing stops it (stdin closed, then SIGTERM, SIGKILL).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include "mcp_transport.h"

extern char** environ;

namespace modu::agent {

namespace {

class StdioTransport final : public McpTransport {
 public:
  explicit StdioTransport(McpServerConfig c) : c_(std::move(c)) {}
  ~StdioTransport() override { close(); }

  Status start(OnMessage on_message, OnLog on_log) override {
    on_message_ = std::move(on_message);
    on_log_ = std::move(on_log);
    signal(SIGPIPE, SIG_IGN);  // a server that exits makes writes fail with EPIPE, not kill us
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)
      return io_error("MCP server '" + c_.name + "': cannot create pipes: " + std::strerror(errno));
    std::vector<std::string> env_strings;
    for (char** e = environ; *e; ++e) {
      const std::string kv = *e;
      const std::string key = kv.substr(0, kv.find('='));
      if (!c_.env.count(key)) env_strings.push_back(kv);
    }
    for (const auto& [k, v] : c_.env) env_strings.push_back(k + "=" + v);
    std::vector<char*> argv, envp;
    std::string cmd = c_.command;
    argv.push_back(cmd.data());
    std::vector<std::string> args = c_.args;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    int status_pipe[2];  // the child writes errno here if exec fails
    if (pipe2(status_pipe, O_CLOEXEC) != 0) return io_error("MCP server '" + c_.name + "': cannot create a pipe");
    pid_ = fork();
    if (pid_ < 0) return io_error("MCP server '" + c_.name + "': fork failed: " + std::strerror(errno));
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      dup2(err[1], 2);
      if (c_.inherit_fd == 3) {
        fcntl(3, F_SETFD, 0);  // already there: only keep it open across exec
      } else if (c_.inherit_fd >= 0) {
        dup2(c_.inherit_fd, 3);  // dup2 clears close-on-exec
      }
      setpgid(0, 0);  // its own process group: closing stops its children too
      if (!c_.cwd.empty() && chdir(c_.cwd.c_str()) != 0) {
        const int e = errno;
        (void)!write(status_pipe[1], &e, sizeof e);
        _exit(127);
      }
      execvpe(argv[0], argv.data(), envp.data());
      const int e = errno;
      (void)!write(status_pipe[1], &e, sizeof e);
      _exit(127);
    }
    ::close(status_pipe[1]);
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    int child_errno = 0;
    const ssize_t n = read(status_pipe[0], &child_errno, sizeof child_errno);
    ::close(status_pipe[0]);
    stdin_ = in[1];
    if (n == (ssize_t)sizeof child_errno) {
      ::close(out[0]);
      ::close(err[0]);
      reap(true);
      return not_found("MCP server '" + c_.name + "': cannot run '" + c_.command + "': " + std::strerror(child_errno) +
                       " (is it installed and on PATH?)");
    }
    reader_ = std::thread([this, fd = out[0]] { read_loop(fd, true); });
    err_reader_ = std::thread([this, fd = err[0]] { read_loop(fd, false); });
    return Status::Ok();
  }

  Status send(const nlohmann::json& m) override {
    std::string line = m.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    std::lock_guard<std::mutex> lock(write_mu_);
    if (stdin_ < 0) return io_error("MCP server '" + c_.name + "' is not running");
    size_t off = 0;
    while (off < line.size()) {
      const ssize_t w = ::write(stdin_, line.data() + off, line.size() - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return io_error("MCP server '" + c_.name + "' stopped reading its input (" + std::strerror(errno) + ")");
      off += (size_t)w;
    }
    return Status::Ok();
  }

  void close() override {
    {
      std::lock_guard<std::mutex> lock(write_mu_);
      if (stdin_ >= 0) ::close(stdin_);
      stdin_ = -1;
    }
    if (pid_ > 0) reap(false);
    if (reader_.joinable()) reader_.join();
    if (err_reader_.joinable()) err_reader_.join();
  }

  std::string describe() const override {
    std::string s = "stdio: " + c_.command;
    for (const auto& a : c_.args) s += " " + a;
    return s;
  }

 private:
  // Waits for the child; after closing stdin it gets 2 s to exit, then SIGTERM, then SIGKILL.
  void reap(bool now) {
    using namespace std::chrono;
    const auto deadline = steady_clock::now() + (now ? milliseconds(0) : milliseconds(2000));
    int st = 0;
    while (waitpid(pid_, &st, WNOHANG) == 0) {
      if (steady_clock::now() >= deadline) {
        kill(-pid_, SIGTERM);
        kill(pid_, SIGTERM);
        const auto hard = steady_clock::now() + milliseconds(1000);
        while (waitpid(pid_, &st, WNOHANG) == 0) {
          if (steady_clock::now() >= hard) {
            kill(-pid_, SIGKILL);
            kill(pid_, SIGKILL);
            waitpid(pid_, &st, 0);
            break;
          }
          std::this_thread::sleep_for(milliseconds(10));
        }
        break;
      }
      std::this_thread::sleep_for(milliseconds(10));
    }
    pid_ = -1;
  }

  void read_loop(int fd, bool is_stdout) {
    std::string buf;
    char chunk[65536];
    while (true) {
      const ssize_t n = ::read(fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      buf.append(chunk, (size_t)n);
      size_t nl;
      while ((nl = buf.find('\n')) != std::string::npos) {
        std::string line = buf.substr(0, nl);
        buf.erase(0, nl + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        if (!is_stdout) {
          on_log_(line, false);
          continue;
        }
        nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded() || !(j.is_object() || j.is_array())) on_log_("not JSON-RPC on stdout: " + line.substr(0, 300), false);
        else if (j.is_array()) for (auto& m : j) on_message_(std::move(m));
        else on_message_(std::move(j));
      }
      if (buf.size() > (64u << 20)) {  // a "line" of 64 MiB: not a well-behaved server
        on_log_("a line over 64 MiB on stdout; dropped", false);
        buf.clear();
      }
    }
    ::close(fd);
    if (!is_stdout) {
      err_done_ = true;
      return;
    }
    // The server's last words on stderr explain why it exited: let them arrive first.
    for (int i = 0; i < 50 && !err_done_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    on_log_("", true);
  }

  McpServerConfig c_;
  OnMessage on_message_;
  OnLog on_log_;
  pid_t pid_ = -1;
  int stdin_ = -1;
  std::mutex write_mu_;
  std::thread reader_, err_reader_;
  std::atomic<bool> err_done_{false};
};

}  // namespace

std::unique_ptr<McpTransport> make_stdio_transport(const McpServerConfig& c) { return std::make_unique<StdioTransport>(c); }

}  // namespace modu::agent
