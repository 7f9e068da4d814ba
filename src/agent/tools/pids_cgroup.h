// A pids cgroup for one sandboxed run: the kernel's hard cap on its tasks, under the process watchdog.
#pragma once

#include <memory>
#include <string>

namespace modu::agent {

// Why: RLIMIT_NPROC does not bind root (the kernel exempts uid 0), and a watchdog that polls /proc
// loses the race against a fork bomb on a busy machine (the scheduler shares the CPU between it and
// thousands of forks). A pids cgroup makes fork() fail past the cap, whoever runs it. Needs a
// writable pids hierarchy (cgroup v1 "pids", or a cgroup v2 whose subtree already has +pids): true
// for root on most machines and containers; otherwise create() returns null and says why.
class PidsCgroup {
 public:
  // A fresh cgroup below the caller's own, with pids.max = max_tasks (threads count as tasks).
  static std::unique_ptr<PidsCgroup> create(long max_tasks, std::string* why);
  ~PidsCgroup();  // removes the cgroup (retrying briefly while its last tasks are reaped)
  PidsCgroup(const PidsCgroup&) = delete;
  PidsCgroup& operator=(const PidsCgroup&) = delete;

  // Open for writing "0" from a forked child (async-signal-safe: write(2)) to move itself in.
  int procs_fd() const { return procs_fd_; }
  // Tasks in it now, -1 if unknown.
  long current() const;
  const std::string& path() const { return dir_; }

 private:
  PidsCgroup(std::string dir, int procs_fd) : dir_(std::move(dir)), procs_fd_(procs_fd) {}
  std::string dir_;
  int procs_fd_ = -1;
};

}  // namespace modu::agent
