// Tests for the sandbox: each escape attempt must fail inside bubblewrap (and, where harmless, the
// same command is shown to succeed unsandboxed so the test proves something); limits stop runaway
// commands quickly and leave nothing behind.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "modu/agent/sandbox.h"
#include "pids_cgroup.h"

namespace modu::agent {
namespace {

namespace fs = std::filesystem;

#define REQUIRE_SANDBOX()                                                     \
  do {                                                                        \
    Status s_ = sandbox_available();                                          \
    if (!s_.ok()) GTEST_SKIP() << "sandbox unavailable: " << s_.to_string();  \
  } while (0)

struct TempDir {
  std::string path;
  explicit TempDir(const char* base = "/tmp") {
    std::string t = std::string(base) + "/modu_sbx_XXXXXX";
    path = mkdtemp(t.data());
  }
  ~TempDir() { fs::remove_all(path); }
};

ProcessResult run(const std::string& cmd, const std::string& ws, const SandboxOptions& o = {},
                  const std::map<std::string, std::string>& env = {}) {
  auto r = run_sandboxed({"bash", "-c", cmd}, ws, o, env);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? *r : ProcessResult{};
}

SandboxOptions unsandboxed() {
  SandboxOptions o;
  o.enabled = false;
  return o;
}

bool exists(const std::string& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

TEST(Sandbox, AvailableHere) {
  Status s = sandbox_available();
  if (!s.ok()) GTEST_SKIP() << s.to_string();
  SUCCEED();
}

TEST(Sandbox, RunsInTheWorkspaceWithExitCode) {
  REQUIRE_SANDBOX();
  TempDir ws;
  ProcessResult r = run("pwd; echo out; echo err >&2; exit 3", ws.path);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.output, ws.path + "\nout\nerr\n");
  EXPECT_TRUE(r.note.empty()) << r.note;
  r = run("echo inside > made.txt", ws.path);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::ifstream f(ws.path + "/made.txt");
  std::string line;
  std::getline(f, line);
  EXPECT_EQ(line, "inside");
}

TEST(Sandbox, CannotWriteOutsideTheWorkspace) {
  REQUIRE_SANDBOX();
  TempDir ws;
  TempDir out_tmp;              // another folder in /tmp
  TempDir out_var("/var/tmp");  // and one on the real disk
  ASSERT_FALSE(exists("/etc/modu_test"));
  ProcessResult r = run("echo x > /tmp/../etc/modu_test", ws.path);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_FALSE(exists("/etc/modu_test"));
  std::remove("/etc/modu_test");

  for (const std::string& dir : {out_tmp.path, out_var.path}) {
    r = run("echo x > " + dir + "/escaped", ws.path);
    EXPECT_NE(r.exit_code, 0) << dir;
    EXPECT_FALSE(exists(dir + "/escaped")) << dir;
    r = run("echo x > " + ws.path + "/../" + fs::path(dir).filename().string() + "/escaped2", ws.path);
    EXPECT_FALSE(exists(dir + "/escaped2")) << dir;
  }
  // Control: the same write unsandboxed does land, so the checks above mean something.
  r = run("echo x > " + out_var.path + "/escaped", ws.path, unsandboxed());
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(exists(out_var.path + "/escaped"));
  EXPECT_NE(r.note.find("UNSANDBOXED"), std::string::npos);
}

TEST(Sandbox, HomeSshIsHidden) {
  REQUIRE_SANDBOX();
  const char* home = getenv("HOME");
  if (!home || !*home || std::string(home) == "/") GTEST_SKIP() << "no HOME";
  TempDir ws;
  std::string ssh = std::string(home) + "/.ssh";
  bool made_dir = !exists(ssh);
  std::error_code ec;
  fs::create_directories(ssh, ec);
  ASSERT_FALSE(ec) << ec.message();
  std::string probe = ssh + "/modu_sandbox_probe";
  std::ofstream(probe) << "SECRET-KEY-MATERIAL\n";
  ProcessResult r = run("cat " + probe, ws.path);
  ProcessResult control = run("cat " + probe, ws.path, unsandboxed());
  std::remove(probe.c_str());
  if (made_dir) fs::remove(ssh, ec);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.output.find("SECRET"), std::string::npos) << r.output;
  EXPECT_EQ(control.exit_code, 0);
  EXPECT_NE(control.output.find("SECRET"), std::string::npos);
}

TEST(Sandbox, NoNetwork) {
  REQUIRE_SANDBOX();
  TempDir ws;
  int s = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(s, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(s, 16), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string cmd = "echo hi > /dev/tcp/127.0.0.1/" + std::to_string(ntohs(addr.sin_port));
  ProcessResult r = run(cmd, ws.path);
  EXPECT_NE(r.exit_code, 0) << r.output;
  // Control: with the network shared the same connection works.
  SandboxOptions net;
  net.network = true;
  ProcessResult control = run(cmd, ws.path, net);
  EXPECT_EQ(control.exit_code, 0) << control.output;
  close(s);
}

// The seccomp filter: system calls a tool never needs fail with EPERM in the sandbox. Perl (Debian's
// perl-base) makes the raw calls: ptrace(PTRACE_TRACEME) succeeds on its own, io_uring_setup with a
// null params pointer fails with EFAULT and keyctl(KEYCTL_GET_KEYRING_ID) is answered by the kernel;
// behind the filter each is EPERM. The unsandboxed run is the control.
TEST(Sandbox, SeccompDeniesKernelAttackSurface) {
  REQUIRE_SANDBOX();
  TempDir ws;
  const std::string probe = R"SH(perl -e 'use Errno; for my $c ([ptrace => 101, 0, 0, 0, 0], [io_uring_setup => 425, 1, 0], [keyctl => 250, 0, -3, 0]) { my ($n, $nr, @a) = @$c; $! = 0; my $r = syscall($nr, @a); print "$n=", ($r == -1 && $!{EPERM} ? "EPERM" : "ran"), "\n" }')SH";
  ProcessResult r = run(probe, ws.path);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("ptrace=EPERM"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("io_uring_setup=EPERM"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("keyctl=EPERM"), std::string::npos) << r.output;
  ProcessResult control = run(probe, ws.path, unsandboxed());
  EXPECT_NE(control.output.find("ptrace=ran"), std::string::npos) << control.output;
  EXPECT_NE(control.output.find("io_uring_setup=ran"), std::string::npos) << control.output;
  // Ordinary work is untouched: processes, pipes, files, threads.
  ProcessResult ok = run(R"SH(seq 1 3 | sort -r > out.txt && cat out.txt && perl -e 'print "done\n"')SH", ws.path);
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(ok.output.find("3\n2\n1\ndone"), std::string::npos) << ok.output;
}

int processes_with(const std::string& marker) {
  int n = 0;
  DIR* d = opendir("/proc");
  while (dirent* e = d ? readdir(d) : nullptr) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    // read(2), not ifstream: a process that exits between open and read makes libstdc++ throw (ESRCH).
    std::string c;
    const int fd = ::open((std::string("/proc/") + e->d_name + "/cmdline").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      char buf[4096];
      for (ssize_t k; (k = ::read(fd, buf, sizeof buf)) > 0;) c.append(buf, (size_t)k);
      ::close(fd);
    }
    if (c.find(marker) != std::string::npos) ++n;
  }
  if (d) closedir(d);
  return n;
}

TEST(Sandbox, ForkBombIsStopped) {
  REQUIRE_SANDBOX();
  TempDir ws;
  SandboxOptions o;
  o.max_processes = 32;
  o.wall_seconds = 5;
  o.cpu_seconds = 5;
  const std::string marker = "modu_fork_bomb_marker";
  // The shell stays alive while the bomb grows: the process watchdog must stop it.
  auto t0 = std::chrono::steady_clock::now();
  ProcessResult r = run(":(){ :|:& };:; sleep 30 # " + marker, ws.path, o);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(r.process_limit) << r.note;
  EXPECT_NE(r.note.find("processes"), std::string::npos) << r.note;
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_LT(took, 3.0);
  EXPECT_EQ(processes_with(marker), 0);
  // The classic one-liner: its shell exits at once, and the PID namespace dies with it.
  t0 = std::chrono::steady_clock::now();
  r = run(":(){ :|:& };: # " + marker, ws.path, o);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 6.0);
  EXPECT_EQ(processes_with(marker), 0);
  // The machine is still responsive.
  t0 = std::chrono::steady_clock::now();
  ProcessResult ok = run("echo alive", ws.path);
  EXPECT_EQ(ok.output, "alive\n");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 3.0);
}

// A background child that leaves the process group (setsid) of an unsandboxed run is still killed
// when the run ends: the run's pids cgroup lists it.
TEST(Sandbox, UnsandboxedRunLeavesNothingBehind) {
  if (!PidsCgroup::create(8, nullptr)) GTEST_SKIP() << "no pids cgroup here: a setsid child may outlive an unsandboxed run";
  TempDir ws;
  const std::string marker = "modu_setsid_marker";
  ProcessResult r = run("setsid bash -c 'sleep 30; : " + marker + "' >/dev/null 2>&1 & echo started", ws.path, unsandboxed());
  EXPECT_EQ(r.output, "started\n");
  for (int i = 0; i < 100 && processes_with(marker) > 0; ++i) ::usleep(10000);
  EXPECT_EQ(processes_with(marker), 0);
}

TEST(Sandbox, EndlessLoopHitsCpuLimit) {
  REQUIRE_SANDBOX();
  TempDir ws;
  SandboxOptions o;
  o.cpu_seconds = 1;
  o.wall_seconds = 20;
  ProcessResult r = run("while :; do :; done", ws.path, o);
  EXPECT_TRUE(r.cpu_limit) << r.note << " exit=" << r.exit_code << " sig=" << r.signal;
  EXPECT_NE(r.note.find("CPU"), std::string::npos) << r.note;
  EXPECT_LT(r.seconds, 6.0);
}

TEST(Sandbox, SleeperHitsWallLimitWithChildren) {
  REQUIRE_SANDBOX();
  TempDir ws;
  SandboxOptions o;
  o.wall_seconds = 1;
  const std::string marker = "modu_sleeper_marker";
  ProcessResult r = run("sleep 77 & sleep 78; : " + marker, ws.path, o);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_NE(r.note.find("wall-clock"), std::string::npos) << r.note;
  EXPECT_LT(r.seconds, 3.0);
  EXPECT_EQ(processes_with(marker), 0);
}

TEST(Sandbox, HugeOutputIsTruncatedFast) {
  REQUIRE_SANDBOX();
  TempDir ws;
  SandboxOptions o;
  o.max_output_bytes = 1 << 20;
  ProcessResult r = run("head -c 1G /dev/zero", ws.path, o);
  EXPECT_TRUE(r.output_truncated);
  EXPECT_EQ(r.output.size(), size_t{1} << 20);
  EXPECT_NE(r.note.find("truncated"), std::string::npos) << r.note;
  EXPECT_LT(r.seconds, 5.0);
}

TEST(Sandbox, MemoryLimit) {
  REQUIRE_SANDBOX();
  TempDir ws;
  SandboxOptions o;
  o.memory_mb = 64;
  ProcessResult r = run("x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}", ws.path, o);
  EXPECT_EQ(r.output.find("200000000"), std::string::npos) << r.output;
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_TRUE(r.memory_limit) << r.output.substr(0, 300);
}

TEST(Sandbox, CleanEnvironment) {
  REQUIRE_SANDBOX();
  TempDir ws;
  setenv("MODU_SANDBOX_LEAK", "leaked", 1);
  ProcessResult r = run("env", ws.path, {}, {{"EXTRA", "given"}});
  unsetenv("MODU_SANDBOX_LEAK");
  EXPECT_EQ(r.output.find("leaked"), std::string::npos);
  EXPECT_NE(r.output.find("EXTRA=given"), std::string::npos);
  EXPECT_NE(r.output.find("PATH="), std::string::npos);
}

TEST(Sandbox, RefusesWorkspacesThatExposeHome) {
  REQUIRE_SANDBOX();
  auto r = run_sandboxed({"true"}, "/", SandboxOptions{});
  EXPECT_FALSE(r.ok());
  if (const char* home = getenv("HOME"); home && fs::is_directory(home)) {
    r = run_sandboxed({"true"}, home, SandboxOptions{});
    EXPECT_FALSE(r.ok());
  }
  EXPECT_FALSE(run_sandboxed({}, "/tmp", SandboxOptions{}).ok());
  EXPECT_FALSE(run_sandboxed({"true"}, "/nonexistent_modu", SandboxOptions{}).ok());
}

TEST(Sandbox, UnsandboxedSaysSo) {
  TempDir ws;
  ProcessResult r = run("echo hi", ws.path, unsandboxed());
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output, "hi\n");
  EXPECT_EQ(r.note, "UNSANDBOXED");
}

}  // namespace
}  // namespace modu::agent
