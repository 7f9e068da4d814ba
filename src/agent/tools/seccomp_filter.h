// The seccomp filter bubblewrap installs before it runs a sandboxed command: system calls that no
// tool needs and that widen the kernel's attack surface fail with EPERM.
#pragma once

#include <string>
#include <vector>

#include "modu/core/status.h"

namespace modu::agent {

// The denied system calls, by name (those this kernel's architecture lacks are skipped).
const std::vector<std::string>& seccomp_denied_syscalls();

// The filter as a classic-BPF program for this architecture (what `bwrap --seccomp FD` reads),
// built once with libseccomp. Other architectures' system call ABIs (i386 / x32 on x86-64) are
// killed, so the list cannot be sidestepped through them.
Result<std::string> seccomp_bpf_program();

// A fresh read-only-by-convention memfd holding the program at offset 0 (bwrap reads it to EOF);
// the caller owns and closes it. -1 with a Status on failure.
Result<int> seccomp_program_fd();

}  // namespace modu::agent
