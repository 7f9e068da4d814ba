// PidsCgroup: find the caller's pids cgroup (v1 or v2) from /proc/self, make a child with a cap.
#include "pids_cgroup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <vector>

namespace modu::agent {
namespace {

std::string read_small(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

bool write_small(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  return out;
}

struct Hierarchy {
  std::string dir;  // the caller's own cgroup directory in it
  bool v2 = false;
};

// /proc/self/mountinfo: "id parent major:minor root mountpoint opts... - fstype source superopts".
// The caller's cgroup is /proc/self/cgroup's path made relative to the mount's root.
bool find_hierarchy(Hierarchy* h, std::string* why) {
  std::string v1_path, v2_path;
  bool have_v1 = false, have_v2 = false;
  for (const std::string& line : split(read_small("/proc/self/cgroup"), '\n')) {
    // "N:controllers:path"
    const size_t a = line.find(':'), b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string ctl = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    if (ctl.empty() && line.compare(0, a, "0") == 0) {
      have_v2 = true;
      v2_path = path;
    }
    for (const std::string& c : split(ctl, ','))
      if (c == "pids") {
        have_v1 = true;
        v1_path = path;
      }
  }
  std::string v2_dir;
  for (const std::string& line : split(read_small("/proc/self/mountinfo"), '\n')) {
    std::vector<std::string> f = split(line, ' ');
    size_t dash = 0;
    while (dash < f.size() && f[dash] != "-") ++dash;
    if (f.size() < 5 || dash + 3 >= f.size()) continue;
    const std::string& root = f[3];
    const std::string& mnt = f[4];
    const std::string& fstype = f[dash + 1];
    const std::string& super = f[dash + 3];
    auto below = [&](const std::string& p) -> std::string {
      if (root == "/") return mnt + (p == "/" ? "" : p);
      if (p.compare(0, root.size(), root) != 0) return "";
      return mnt + p.substr(root.size());
    };
    if (have_v1 && fstype == "cgroup") {
      for (const std::string& o : split(super, ','))
        if (o == "pids") {
          const std::string d = below(v1_path);
          if (!d.empty()) {
            *h = {d, false};
            return true;
          }
        }
    }
    if (have_v2 && fstype == "cgroup2" && v2_dir.empty()) v2_dir = below(v2_path);
  }
  if (!v2_dir.empty()) {
    // A child may use pids.max only if this cgroup already delegates the controller; enabling it
    // here would need this cgroup to hold no processes (cgroup v2's no-internal-process rule).
    for (const std::string& c : split(read_small(v2_dir + "/cgroup.subtree_control"), ' '))
      if (c == "pids" || c == "pids\n") {
        *h = {v2_dir, true};
        return true;
      }
    *why = "cgroup v2 at " + v2_dir + " does not delegate the pids controller to its children";
    return false;
  }
  *why = "no pids cgroup hierarchy is mounted";
  return false;
}

std::atomic<unsigned> g_serial{0};

}  // namespace

std::unique_ptr<PidsCgroup> PidsCgroup::create(long max_tasks, std::string* why) {
  std::string ignored;
  if (!why) why = &ignored;
  Hierarchy h;
  if (!find_hierarchy(&h, why)) return nullptr;
  const std::string dir = h.dir + "/modu-sandbox-" + std::to_string(::getpid()) + "-" +
                          std::to_string(g_serial.fetch_add(1));
  if (::mkdir(dir.c_str(), 0755) != 0) {
    *why = "cannot create " + dir + ": " + std::strerror(errno);
    return nullptr;
  }
  if (!write_small(dir + "/pids.max", std::to_string(max_tasks) + "\n")) {
    *why = "cannot set " + dir + "/pids.max: " + std::strerror(errno);
    ::rmdir(dir.c_str());
    return nullptr;
  }
  const int fd = ::open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    *why = "cannot open " + dir + "/cgroup.procs: " + std::strerror(errno);
    ::rmdir(dir.c_str());
    return nullptr;
  }
  return std::unique_ptr<PidsCgroup>(new PidsCgroup(dir, fd));
}

long PidsCgroup::current() const {
  const std::string s = read_small(dir_ + "/pids.current");
  return s.empty() ? -1 : std::atol(s.c_str());
}

PidsCgroup::~PidsCgroup() {
  if (procs_fd_ >= 0) ::close(procs_fd_);
  // Whatever is still inside (a background child of an unsandboxed run that left the process
  // group) is killed: the cgroup is the one complete list of the run's tasks. Tasks leave it when
  // they are reaped, so removal is retried briefly; one that cannot be removed is left behind.
  const bool has_kill = ::access((dir_ + "/cgroup.kill").c_str(), W_OK) == 0;  // cgroup v2, Linux 5.14+
  for (int i = 0; i < 200; ++i) {
    if (::rmdir(dir_.c_str()) == 0 || errno == ENOENT) return;
    if (errno != EBUSY) return;
    if (has_kill) {
      write_small(dir_ + "/cgroup.kill", "1\n");
    } else {
      std::istringstream procs(read_small(dir_ + "/cgroup.procs"));
      for (long p; procs >> p;)
        if (p > 0) ::kill((pid_t)p, SIGKILL);
    }
    ::usleep(5000);
  }
}

}  // namespace modu::agent
