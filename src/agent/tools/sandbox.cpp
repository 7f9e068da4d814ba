// Sandbox: runs a command under bubblewrap (or, only when asked, directly) with a watchdog for
// wall time, output size and process count, and rlimits for CPU and memory.
#include "modu/agent/sandbox.h"

#include "pids_cgroup.h"
#include "seccomp_filter.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>

#include <nlohmann/json.hpp>

namespace modu::agent {

namespace fs = std::filesystem;

namespace {

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr int kInfoFd = 3;     // bwrap --info-fd in the child
constexpr int kSeccompFd = 4;  // bwrap --seccomp in the child (the filter of seccomp_filter.h)

std::atomic<bool> g_disable_userns{true};  // cleared when this bwrap lacks --disable-userns

std::string find_in_path(const std::string& exe, const std::string& path) {
  if (exe.find('/') != std::string::npos) return exe;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find(':', i);
    if (j == std::string::npos) j = path.size();
    std::string cand = j > i ? path.substr(i, j - i) : std::string(1, '.');
    cand += '/';
    cand += exe;
    if (::access(cand.c_str(), X_OK) == 0) return cand;
    i = j + 1;
  }
  return "";
}

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

bool inside(const fs::path& p, const fs::path& dir) {
  auto pi = p.begin(), di = dir.begin();
  for (; di != dir.end(); ++di, ++pi) {
    if (di->empty()) continue;  // trailing slash
    if (pi == p.end() || *pi != *di) return false;
  }
  return true;
}

std::vector<std::string> bwrap_args(const std::string& bwrap, const fs::path& ws, const SandboxOptions& o,
                                    const std::map<std::string, std::string>& env,
                                    const std::vector<std::string>& argv, bool info_fd = true,
                                    int seccomp_fd = kSeccompFd) {
  std::vector<std::string> a = {bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                                "--tmpfs", "/tmp"};
  std::error_code ec;
  const std::string home = env_or("HOME", "");
  if (fs::is_directory("/root", ec)) a.insert(a.end(), {"--tmpfs", "/root"});
  if (!home.empty() && home[0] == '/' && home != "/" && home != "/root" && fs::is_directory(home, ec))
    a.insert(a.end(), {"--tmpfs", home});
  for (const auto& p : o.extra_ro_binds) a.insert(a.end(), {"--ro-bind", p, p});
  a.insert(a.end(), {"--bind", ws.string(), ws.string()});
  a.insert(a.end(), {"--unshare-all", "--unshare-user"});
  if (g_disable_userns.load()) a.push_back("--disable-userns");
  if (o.network) a.push_back("--share-net");
  a.insert(a.end(), {"--cap-drop", "ALL", "--die-with-parent", "--new-session", "--chdir", ws.string(),
                     "--clearenv", "--setenv", "PATH", kDefaultPath, "--setenv", "HOME",
                     home.empty() ? "/tmp" : home, "--setenv", "LANG", env_or("LANG", "C.UTF-8")});
  for (const auto& [k, v] : env) a.insert(a.end(), {"--setenv", k, v});
  if (info_fd) a.insert(a.end(), {"--info-fd", std::to_string(kInfoFd)});
  if (seccomp_fd >= 0) a.insert(a.end(), {"--seccomp", std::to_string(seccomp_fd)});
  a.push_back("--");
  a.insert(a.end(), argv.begin(), argv.end());
  return a;
}

// Live processes in the sandbox: host processes whose PID namespace is the sandbox's (its /proc,
// seen through /proc/<init>/root, is not usable: bwrap reports the pid before it mounts it).
// Nested PID namespaces would need a nested user namespace, which --disable-userns forbids.
int count_sandbox_processes(unsigned long pidns) {
  DIR* d = opendir("/proc");
  if (!d) return -1;
  int n = 0;
  std::string path;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    path.assign("/proc/").append(e->d_name).append("/ns/pid");
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && st.st_ino == pidns) ++n;
  }
  closedir(d);
  return n;
}

// A /proc file's text, "" when it cannot be read. Plain read(2): a process can exit between the
// open and the read (ESRCH), and libstdc++'s filebuf throws on that instead of failing the stream.
std::string read_proc_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, (size_t)n);
  }
  ::close(fd);
  return out;
}

// Tasks owned by `uid` (RLIMIT_NPROC counts them all, not only ours).
long count_user_tasks(uid_t uid) {
  DIR* d = opendir("/proc");
  if (!d) return -1;
  long n = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    struct stat st;
    std::string base = std::string("/proc/") + e->d_name;
    if (::stat(base.c_str(), &st) != 0 || st.st_uid != uid) continue;
    const std::string status = read_proc_file(base + "/status");
    long threads = 1;
    if (const size_t k = status.find("\nThreads:"); k != std::string::npos) threads = std::atol(status.c_str() + k + 9);
    n += threads;
  }
  closedir(d);
  return n;
}

bool gone_or_zombie(pid_t pid) {
  const std::string s = read_proc_file("/proc/" + std::to_string(pid) + "/stat");
  if (s.empty()) return true;
  size_t rp = s.rfind(')');
  return rp == std::string::npos || rp + 2 >= s.size() || s[rp + 2] == 'Z' || s[rp + 2] == 'X';
}

struct CArgs {
  std::vector<std::string> store;
  std::vector<char*> ptrs;
  explicit CArgs(std::vector<std::string> v) : store(std::move(v)) {
    for (auto& s : store) ptrs.push_back(s.data());
    ptrs.push_back(nullptr);
  }
};

std::string trim_copy(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

Result<ProcessResult> run_impl(const std::vector<std::string>& argv, const fs::path& ws,
                               const SandboxOptions& o, const std::map<std::string, std::string>& env) {
  using clock = std::chrono::steady_clock;
  const bool sandboxed = o.enabled;
  std::vector<std::string> args;
  std::vector<std::string> envv;
  if (sandboxed) {
    std::string bwrap = find_in_path("bwrap", env_or("PATH", kDefaultPath));
    if (bwrap.empty()) return not_found("bwrap (bubblewrap) not found in PATH: install it (apt install bubblewrap)");
    args = bwrap_args(bwrap, ws, o, env, argv);
    envv = {std::string("PATH=") + kDefaultPath};
  } else {
    std::map<std::string, std::string> e = {{"PATH", kDefaultPath}, {"HOME", env_or("HOME", "/tmp")},
                                            {"LANG", env_or("LANG", "C.UTF-8")}};
    for (const auto& [k, v] : env) e[k] = v;
    std::string exe = find_in_path(argv[0], e["PATH"]);
    if (exe.empty()) return not_found("command " + argv[0] + " not found in PATH " + e["PATH"]);
    args = argv;
    args[0] = exe;
    for (const auto& [k, v] : e) envv.push_back(k + "=" + v);
  }
  CArgs cargs(args), cenv(envv);
  const std::string ws_str = ws.string();

  // Limits, computed before fork (the child may only call async-signal-safe functions).
  rlim_t cpu = static_cast<rlim_t>(std::max(1.0, std::ceil(o.cpu_seconds)));
  rlim_t as = o.memory_mb > 0 ? static_cast<rlim_t>(o.memory_mb) << 20 : RLIM_INFINITY;
  rlim_t nproc = RLIM_INFINITY;
  if (::geteuid() != 0 && o.max_processes > 0) {
    // Per-uid: as a backstop to the watchdog, allow what the user already runs plus the budget.
    long mine = count_user_tasks(::geteuid());
    if (mine >= 0) nproc = static_cast<rlim_t>(mine + o.max_processes + 8);
  }

  // The kernel's cap under the watchdog (which counts processes precisely but can be outrun): tasks,
  // threads included, so with room for threaded programs plus bwrap's two processes.
  std::unique_ptr<PidsCgroup> cgroup;
  if (o.max_processes > 0) {
    // Threaded programs (OpenMP, Go, the JVM) start about a thread per core.
    const long ncpu = std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN));
    cgroup = PidsCgroup::create(std::max(4L * o.max_processes, o.max_processes + 4 * ncpu) + 16, nullptr);
  }
  const int cg_fd = cgroup ? cgroup->procs_fd() : -1;

  int seccomp_fd = -1;  // the filter bwrap installs before exec (closed here once the child has it)
  if (sandboxed) {
    auto sf = seccomp_program_fd();
    if (!sf.ok()) return Status(sf.status().code(), sf.status().message() + " (the sandbox needs its seccomp filter)");
    seccomp_fd = *sf;
  }
  int out[2], info[2] = {-1, -1}, err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0 || (sandboxed && ::pipe2(info, O_CLOEXEC) != 0))
    return io_error(std::string("sandbox: pipe failed: ") + std::strerror(errno));
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);

  const auto start = clock::now();
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    for (int fd : {out[0], out[1], err[0], err[1], info[0], info[1], devnull, seccomp_fd})
      if (fd >= 0) ::close(fd);
    return resource_exhausted(std::string("sandbox: fork failed: ") + std::strerror(e));
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    if (cg_fd >= 0) {  // join before anything forks
      [[maybe_unused]] ssize_t w = ::write(cg_fd, "0\n", 2);
    }
    // Move what the child keeps out of the way first, so the dup2s below cannot clobber it.
    int o1 = ::fcntl(out[1], F_DUPFD_CLOEXEC, 100);
    int i1 = sandboxed ? ::fcntl(info[1], F_DUPFD_CLOEXEC, 100) : -1;
    int s1 = sandboxed ? ::fcntl(seccomp_fd, F_DUPFD_CLOEXEC, 100) : -1;
    int e1 = ::fcntl(err[1], F_DUPFD_CLOEXEC, 100);
    int dn = devnull >= 0 ? ::fcntl(devnull, F_DUPFD_CLOEXEC, 100) : -1;
    if (dn >= 0) ::dup2(dn, 0);
    ::dup2(o1, 1);
    ::dup2(o1, 2);
    if (sandboxed) {  // dup2 clears O_CLOEXEC: bwrap inherits them
      ::dup2(i1, kInfoFd);
      ::dup2(s1, kSeccompFd);
    }
    const int errfd = sandboxed ? kSeccompFd + 1 : 3;
    ::dup3(e1, errfd, O_CLOEXEC);
    if (::syscall(SYS_close_range, errfd + 1, ~0U, 0) != 0)
      for (int fd = errfd + 1; fd < 4096; ++fd) ::close(fd);
    struct rlimit rl;
    rl = {cpu, cpu + 1};
    ::setrlimit(RLIMIT_CPU, &rl);
    rl = {as, as};
    ::setrlimit(RLIMIT_AS, &rl);
    rl = {0, 0};
    ::setrlimit(RLIMIT_CORE, &rl);
    if (nproc != RLIM_INFINITY) {
      rl = {nproc, nproc};
      ::setrlimit(RLIMIT_NPROC, &rl);
    }
    if (!sandboxed && ::chdir(ws_str.c_str()) != 0) ::_exit(126);
    ::signal(SIGPIPE, SIG_DFL);
    ::execve(cargs.ptrs[0], cargs.ptrs.data(), cenv.ptrs.data());
    int e = errno;
    [[maybe_unused]] ssize_t w = ::write(errfd, &e, sizeof e);
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  if (info[1] >= 0) ::close(info[1]);
  if (devnull >= 0) ::close(devnull);
  if (seccomp_fd >= 0) ::close(seccomp_fd);
  ::setpgid(pid, pid);  // also in the parent, so kill(-pid) works whoever runs first

  ProcessResult r;
  const auto deadline = start + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(o.wall_seconds));
  bool out_open = true, info_open = sandboxed, exited = false, killed = false;
  int status = 0;
  struct rusage ru{};
  pid_t init_pid = 0;
  unsigned long pidns = 0;
  std::string info_buf;
  clock::time_point exited_at{}, last_count{};
  // The namespace's init is held by a pidfd (opened when bwrap reports it, then checked to be in the
  // reported namespace), so signals and waits cannot reach another process that reuses its pid.
  // Without one (kernel < 5.3), only a pid whose namespace is the sandbox's is signalled.
  int init_fd = -1;
  auto ns_matches = [&] {
    struct stat st;
    const std::string ns = "/proc/" + std::to_string(init_pid) + "/ns/pid";
    return pidns != 0 && ::stat(ns.c_str(), &st) == 0 && st.st_ino == pidns;
  };
  auto init_alive = [&] {
    if (init_fd >= 0) {
      pollfd p{init_fd, POLLIN, 0};  // readable once it has exited
      return ::poll(&p, 1, 0) == 0;
    }
    return init_pid > 0 && !gone_or_zombie(init_pid) && ns_matches();
  };
  auto kill_init = [&] {
    if (init_fd >= 0) ::syscall(SYS_pidfd_send_signal, init_fd, SIGKILL, nullptr, 0);
    else if (init_pid > 0 && ns_matches()) ::kill(init_pid, SIGKILL);
  };
  auto kill_all = [&] {
    killed = true;
    ::kill(-pid, SIGKILL);
    kill_init();  // its death empties the PID namespace
  };
  char buf[65536];
  for (;;) {
    auto now = clock::now();
    if (!killed && now >= deadline) {
      r.timed_out = true;
      kill_all();
    }
    int wait_ms = 50;
    if (sandboxed && o.max_processes > 0) wait_ms = 10;
    if (!killed) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
      wait_ms = static_cast<int>(std::clamp<long long>(left, 0, wait_ms));
    }
    pollfd fds[2];
    int nfds = 0;
    if (out_open) fds[nfds++] = {out[0], POLLIN, 0};
    if (info_open) fds[nfds++] = {info[0], POLLIN, 0};
    if (nfds > 0) ::poll(fds, nfds, wait_ms);
    else ::usleep(wait_ms * 1000);
    for (int i = 0; i < nfds; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (fds[i].fd == out[0]) {
        if (n <= 0) {
          out_open = false;
          continue;
        }
        size_t room = o.max_output_bytes - std::min(o.max_output_bytes, r.output.size());
        r.output.append(buf, std::min(room, static_cast<size_t>(n)));
        if (static_cast<size_t>(n) > room && !r.output_truncated) {
          r.output_truncated = true;
          if (!killed) kill_all();
        }
      } else {
        if (n <= 0) {
          info_open = false;
          auto j = nlohmann::json::parse(info_buf, nullptr, false);
          if (j.is_object() && j.contains("child-pid") && j["child-pid"].is_number_integer()) {
            init_pid = j["child-pid"].get<pid_t>();
            if (j.contains("pid-namespace") && j["pid-namespace"].is_number_unsigned())
              pidns = j["pid-namespace"].get<unsigned long>();
            init_fd = (int)::syscall(SYS_pidfd_open, init_pid, 0);
            if (init_fd >= 0 && pidns != 0 && !ns_matches()) {  // already gone and its pid reused
              ::close(init_fd);
              init_fd = -1;
            }
            if (killed) kill_init();
          }
          continue;
        }
        info_buf.append(buf, static_cast<size_t>(n));
      }
    }
    if (!exited && ::wait4(pid, &status, WNOHANG, &ru) == pid) {
      exited = true;
      exited_at = clock::now();
    }
    now = clock::now();
    if (exited && !out_open) break;
    if (exited && now - exited_at > std::chrono::milliseconds(200)) {
      // Something outside the main process still holds the output open (a background child when
      // unsandboxed): stop it.
      if (!killed) ::kill(-pid, SIGKILL);
      break;
    }
    // Also after the main process exited: what it left running in the background (the classic
    // fork bomb's shell exits at once) must not grow unchecked until the namespace is torn down.
    if (!killed && pidns != 0 && o.max_processes > 0 && now - last_count >= std::chrono::milliseconds(10)) {
      last_count = now;
      int n = count_sandbox_processes(pidns);
      // The sandbox's own init (bwrap) is one of them.
      if (n > o.max_processes + 1) {
        r.process_limit = true;
        kill_all();
      }
    }
  }
  if (!exited) ::wait4(pid, &status, 0, &ru);
  ::close(out[0]);
  if (info_open) ::close(info[0]);
  int exec_errno = 0;
  bool exec_failed = ::read(err[0], &exec_errno, sizeof exec_errno) == sizeof exec_errno;
  ::close(err[0]);
  int leftover = 0;
  if (init_pid > 0) {
    // The main process is done: nothing in its namespace may outlive the call. bwrap's init waits
    // for every process in it, and its outer process exits as soon as the main one has, so kill the
    // init: the kernel then kills the rest, and the init becomes a zombie only once the namespace is
    // empty. Tearing down a large namespace on a busy machine takes seconds: the wait is generous.
    const auto give_up = clock::now() + std::chrono::seconds(30);
    while (init_alive()) {
      if (clock::now() >= give_up) {
        leftover = std::max(1, count_sandbox_processes(pidns));
        break;
      }
      kill_init();
      ::usleep(5000);
    }
  }
  if (init_fd >= 0) ::close(init_fd);
  r.seconds = std::chrono::duration<double>(clock::now() - start).count();
  if (exec_failed)
    return io_error("sandbox: cannot run " + args[0] + ": " + std::strerror(exec_errno));

  if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
    if (sandboxed && r.exit_code > 128 && r.exit_code < 128 + 65) r.signal = r.exit_code - 128;
  } else if (WIFSIGNALED(status)) {
    r.signal = WTERMSIG(status);
    r.exit_code = 128 + r.signal;
  }
  if (killed) {
    r.exit_code = -1;
    r.signal = SIGKILL;
  }
  if (sandboxed && init_pid == 0 && !killed && r.exit_code != 0)
    return internal_error("sandbox: bubblewrap failed to start: " + trim_copy(r.output));
  if (sandboxed && !killed && r.exit_code == 1 && r.output.rfind("bwrap: ", 0) == 0)
    return internal_error("sandbox: bubblewrap failed to set up: " + trim_copy(r.output));

  double cpu_used = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
  if (!killed && (r.signal == SIGXCPU || (r.signal == SIGKILL && cpu_used >= static_cast<double>(cpu) - 0.05)))
    r.cpu_limit = true;
  if (!killed && r.exit_code != 0) {
    for (const char* m : {"Cannot allocate", "cannot allocate", "bad_alloc", "MemoryError", "out of memory",
                          "Out of memory", "memory exhausted"})
      if (r.output.find(m) != std::string::npos) r.memory_limit = true;
  }
  std::vector<std::string> notes;
  if (!sandboxed) notes.push_back("UNSANDBOXED");
  if (r.timed_out) notes.push_back("stopped: wall-clock limit of " + std::to_string(o.wall_seconds) + " s reached");
  if (r.output_truncated)
    notes.push_back("stopped: output exceeded " + std::to_string(o.max_output_bytes) + " bytes (truncated)");
  if (r.process_limit)
    notes.push_back("stopped: more than " + std::to_string(o.max_processes) + " processes (fork bomb?)");
  if (leftover > 0)
    notes.push_back("warning: " + std::to_string(leftover) + " process(es) still in the sandbox 30 s after it ended");
  if (r.cpu_limit) notes.push_back("stopped: CPU limit of " + std::to_string(cpu) + " s reached");
  if (r.memory_limit) notes.push_back("probably hit the memory limit of " + std::to_string(o.memory_mb) + " MB");
  for (size_t i = 0; i < notes.size(); ++i) r.note += (i ? "; " : "") + notes[i];
  return r;
}

}  // namespace

Status sandbox_available() {
  static std::once_flag once;
  static Status status;
  std::call_once(once, [] {
    SandboxOptions o;
    o.wall_seconds = 20;
    auto probe = [&] { return run_impl({"true"}, fs::path("/tmp"), o, {}); };
    auto r = probe();
    if (!r.ok() && r.status().message().find("--disable-userns") != std::string::npos) {
      g_disable_userns = false;  // bubblewrap < 0.8: no way to forbid nested user namespaces
      r = probe();
    }
    if (r.ok() && r->exit_code == 0) return;
    std::string why = r.ok() ? "exit code " + std::to_string(r->exit_code) + ": " + trim_copy(r->output)
                             : r.status().message();
    if (!r.ok() && r.status().code() == StatusCode::kNotFound) {
      status = r.status();
      return;
    }
    status = unimplemented(
        "the command sandbox (bubblewrap) does not work here (" + why +
        "). Usually the kernel refuses unprivileged user namespaces: allow them with "
        "`sudo sysctl -w kernel.unprivileged_userns_clone=1` (Debian), "
        "`sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (Ubuntu 23.10+) or "
        "`sudo sysctl -w user.max_user_namespaces=15000`, or run as root; inside a container, "
        "start it with user namespaces allowed. Until then commands do not run, unless the sandbox is "
        "explicitly turned off (they then run UNSANDBOXED)");
  });
  return status;
}

namespace {
// The workspace, canonical, when it may be the sandbox's writable folder.
Result<fs::path> sandbox_workspace(const fs::path& workspace, bool enabled) {
  std::error_code ec;
  fs::path ws = fs::canonical(workspace, ec);
  if (ec || !fs::is_directory(ws)) return not_found("sandbox: workspace " + workspace.string() + " is not a folder");
  if (enabled) {
    const std::string home = env_or("HOME", "");
    if (ws == "/" || (!home.empty() && inside(fs::weakly_canonical(home, ec), ws)) || inside("/root", ws) ||
        inside("/tmp", ws))
      return invalid_argument("sandbox: workspace " + ws.string() +
                              " contains your home folder, /root or /tmp (or is /): choose a project folder");
    MODU_RETURN_IF_ERROR(sandbox_available());
  }
  return ws;
}
}  // namespace

Result<ProcessResult> run_sandboxed(const std::vector<std::string>& argv, const fs::path& workspace,
                                    const SandboxOptions& o, const std::map<std::string, std::string>& env) {
  if (argv.empty() || argv[0].empty()) return invalid_argument("sandbox: empty command");
  MODU_ASSIGN_OR_RETURN(fs::path ws, sandbox_workspace(workspace, o.enabled));
  if (o.wall_seconds <= 0) return invalid_argument("sandbox: wall_seconds must be positive");
  return run_impl(argv, ws, o, env);
}

Result<int> sandbox_seccomp_fd() { return seccomp_program_fd(); }

Result<std::vector<std::string>> sandbox_command(const std::vector<std::string>& argv, const fs::path& workspace,
                                                 const SandboxOptions& o, const std::map<std::string, std::string>& env,
                                                 int seccomp_child_fd) {
  if (argv.empty() || argv[0].empty()) return invalid_argument("sandbox: empty command");
  MODU_ASSIGN_OR_RETURN(fs::path ws, sandbox_workspace(workspace, true));
  const std::string bwrap = find_in_path("bwrap", env_or("PATH", kDefaultPath));
  if (bwrap.empty()) return not_found("bwrap (bubblewrap) not found in PATH: install it (apt install bubblewrap)");
  return bwrap_args(bwrap, ws, o, env, argv, /*info_fd=*/false, seccomp_child_fd);
}

}  // namespace modu::agent
