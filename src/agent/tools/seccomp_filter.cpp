// The sandbox's seccomp filter (see seccomp_filter.h), written with libseccomp (Debian
// libseccomp-dev): it resolves names per architecture and emits the BPF that bwrap loads.
// Why a denylist: the commands are arbitrary programs (shells, compilers, interpreters), so an
// allowlist would break them; what is denied here is what escapes or probes the kernel —
// tracing other processes, loading kernel code or BPF, keyrings, mounts, io_uring (which has
// bypassed seccomp before), clock and swap changes — none of which a tool run needs.
#include "seccomp_filter.h"

#include <seccomp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

namespace modu::agent {

const std::vector<std::string>& seccomp_denied_syscalls() {
  static const std::vector<std::string> k = {
      "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",                     // other processes
      "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",  // kernel code
      "bpf", "perf_event_open", "userfaultfd", "lookup_dcookie",                     // kernel probes
      "keyctl", "add_key", "request_key",                                            // keyrings
      "mount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen", "fsmount", "fsconfig",
      "fspick", "mount_setattr", "open_by_handle_at", "name_to_handle_at", "quotactl",  // file systems
      "io_uring_setup", "io_uring_enter", "io_uring_register",                       // io_uring
      "swapon", "swapoff", "reboot", "acct", "settimeofday", "clock_settime", "clock_adjtime",
      "adjtimex", "syslog", "vhangup", "fanotify_init", "uselib", "nfsservctl",      // the machine
  };
  return k;
}

Result<std::string> seccomp_bpf_program() {
  static std::mutex mu;
  static std::string cached;
  std::lock_guard<std::mutex> lock(mu);
  if (!cached.empty()) return cached;
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return internal_error("seccomp: seccomp_init failed");
  std::string err;
  if (int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS); rc != 0)
    err = "seccomp: setting the bad-architecture action failed: " + std::string(std::strerror(-rc));
  for (const std::string& name : seccomp_denied_syscalls()) {
    if (!err.empty()) break;
    const int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR || nr < 0) continue;  // not on this architecture
    if (int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0); rc != 0)
      err = "seccomp: rule for " + name + " failed: " + std::strerror(-rc);
  }
  int fd = -1;
  if (err.empty()) {
    fd = ::memfd_create("modu-seccomp-build", MFD_CLOEXEC);
    if (fd < 0) err = std::string("seccomp: memfd_create failed: ") + std::strerror(errno);
  }
  if (err.empty()) {
    if (int rc = seccomp_export_bpf(ctx, fd); rc != 0) err = std::string("seccomp: export failed: ") + std::strerror(-rc);
  }
  seccomp_release(ctx);
  if (err.empty()) {
    const off_t n = ::lseek(fd, 0, SEEK_END);
    std::string prog(n > 0 ? (size_t)n : 0, '\0');
    if (n <= 0 || ::pread(fd, prog.data(), prog.size(), 0) != (ssize_t)prog.size()) err = "seccomp: reading the program back failed";
    else cached = std::move(prog);
  }
  if (fd >= 0) ::close(fd);
  if (!err.empty()) return internal_error(err);
  return cached;
}

Result<int> seccomp_program_fd() {
  MODU_ASSIGN_OR_RETURN(std::string prog, seccomp_bpf_program());
  const int fd = ::memfd_create("modu-seccomp", MFD_CLOEXEC);
  if (fd < 0) return io_error(std::string("seccomp: memfd_create failed: ") + std::strerror(errno));
  size_t at = 0;
  while (at < prog.size()) {
    const ssize_t w = ::write(fd, prog.data() + at, prog.size() - at);
    if (w <= 0) {
      ::close(fd);
      return io_error(std::string("seccomp: writing the program failed: ") + std::strerror(errno));
    }
    at += (size_t)w;
  }
  ::lseek(fd, 0, SEEK_SET);
  return fd;
}

}  // namespace modu::agent
