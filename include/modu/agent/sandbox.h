// Running commands in a bubblewrap sandbox: read-only system, writable workspace only, no network,
// hidden home, CPU / memory / process / wall-time / output limits.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "modu/core/status.h"

namespace modu::agent {

struct SandboxOptions {
  bool enabled = true;        // false: run directly (ProcessResult.note says "UNSANDBOXED")
  bool network = false;       // true: share the host network namespace
  double cpu_seconds = 30;    // RLIMIT_CPU per process
  double wall_seconds = 60;   // whole run, then everything is killed
  size_t memory_mb = 1024;    // RLIMIT_AS per process
  int max_processes = 64;     // live processes in the sandbox's PID namespace (watchdog)
  size_t max_output_bytes = 1 << 20;
  std::vector<std::string> extra_ro_binds;  // paths re-exposed read-only (e.g. under a hidden $HOME)
};

struct ProcessResult {
  int exit_code = -1;  // -1 when it was killed by a limit
  int signal = 0;      // the signal that ended it, if any
  bool timed_out = false, output_truncated = false, cpu_limit = false, memory_limit = false;
  bool process_limit = false;
  std::string output;  // stdout + stderr interleaved, at most max_output_bytes
  double seconds = 0;
  std::string note;    // human-readable reason when stopped; "UNSANDBOXED" when not sandboxed
};

// OK when bubblewrap runs here (checked once per process, then cached). Otherwise says why and how
// to fix (install bubblewrap; allow unprivileged user namespaces; run as root).
Status sandbox_available();

// Runs argv with cwd = workspace. Sandboxed (o.enabled): bwrap --ro-bind / /, tmpfs over /tmp,
// /root and $HOME, --bind workspace (the only writable path), fresh /dev and /proc, all namespaces
// unshared (network too unless o.network), no capabilities, no nested user namespaces, the seccomp
// filter, new session, clean environment (PATH, HOME, LANG + env). Errors (Status) only when it could not be started;
// a command that fails or hits a limit is an OK ProcessResult.
Result<ProcessResult> run_sandboxed(const std::vector<std::string>& argv,
                                    const std::filesystem::path& workspace, const SandboxOptions& o,
                                    const std::map<std::string, std::string>& env = {});

// The same sandbox for a long-running process the caller starts itself (a stdio MCP server): the
// bwrap command line that runs argv in it. No CPU / process watchdog (the server lives as long
// as the session); it dies with its parent. With seccomp_child_fd >= 0 bwrap installs the system
// call filter it reads from that descriptor of the started process (see sandbox_seccomp_fd).
Result<std::vector<std::string>> sandbox_command(const std::vector<std::string>& argv,
                                                 const std::filesystem::path& workspace, const SandboxOptions& o,
                                                 const std::map<std::string, std::string>& env = {},
                                                 int seccomp_child_fd = -1);

// A new descriptor (close-on-exec; the caller owns it) holding the sandbox's seccomp filter as
// bwrap --seccomp reads it: ptrace, kernel modules and BPF, keyrings, mounts, io_uring, clock and
// swap changes fail with EPERM (run_sandboxed always installs it).
Result<int> sandbox_seccomp_fd();

}  // namespace modu::agent
