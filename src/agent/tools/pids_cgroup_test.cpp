// Tests for PidsCgroup: where this machine lets us make one, fork() fails past its cap, and the
// cgroup is gone afterwards.
#include "pids_cgroup.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>

namespace modu::agent {
namespace {

TEST(PidsCgroup, CapsForksAndCleansUp) {
  std::string why;
  auto cg = PidsCgroup::create(3, &why);
  if (!cg) GTEST_SKIP() << "no pids cgroup here: " << why;
  const std::string dir = cg->path();
  EXPECT_TRUE(std::filesystem::is_directory(dir));
  EXPECT_EQ(cg->current(), 0);
  const int fd = cg->procs_fd();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::write(fd, "0\n", 2) != 2) ::_exit(100);
    int started = 0;
    for (int i = 0; i < 10; ++i) {
      const pid_t c = ::fork();
      if (c == 0) {
        ::sleep(2);
        ::_exit(0);
      }
      if (c > 0) ++started;
    }
    ::_exit(started);  // children are left to be killed below
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2) << "the cap is 3 tasks: the child and two of its forks";
  // Kill the two sleepers through the cgroup's own list, then the destructor removes it.
  std::ifstream procs(dir + "/cgroup.procs");
  for (pid_t p; procs >> p;) ::kill(p, SIGKILL);
  cg.reset();
  EXPECT_FALSE(std::filesystem::exists(dir));
}

}  // namespace
}  // namespace modu::agent
