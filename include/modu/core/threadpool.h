// ThreadPool: persistent workers for data-parallel kernels; the calling thread takes part as thread 0.
// MODU_PIN=1 pins thread i to CPU i (Linux); off by default so several processes can share a machine.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace modu {

class ThreadPool {
 public:
  // n_threads <= 0 means one per hardware thread. The pool owns n_threads - 1 workers.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(thread_index, n_threads) on every thread and returns when all are done.
  // Not reentrant: fn must not call run() on the same pool.
  void run(const std::function<void(int, int)>& fn);

  // Splits [0, n) into contiguous chunks (multiples of `grain`) and runs fn(begin, end) on each.
  // Thread t works through the t-th contiguous share in ascending order, then helps the others
  // from the back of their shares (see threadpool.cpp).
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1);

  // First index of thread t's share when parallel_for splits [0, n) in chunks of `grain` over
  // n_threads threads: where that thread's stream begins.
  static int64_t share_begin(int64_t n, int64_t grain, int t, int n_threads);

  // Idle-time prefetch for the next parallel_for/run: when that region is over, thread t pulls
  // [data, data + bytes) towards its L2 while it would otherwise wait (a worker from the end of its
  // share until the following region starts, the calling thread while it waits for the workers).
  // Meant for the head of the weights thread t streams next, so the region after a serial step
  // does not start on cold memory. One region consumes the hints; prefetches never fault.
  void prefetch_after_next_run(int t, const void* data, size_t bytes);

  static int hardware_threads();

  // Load-balance accounting since the last reset: wall time spent inside run() and the sum over
  // threads of time spent inside the job; busy / (wall * size()) is the pool's utilisation (the
  // rest is barrier wait and imbalance). A parallel_for of one chunk in a pool of several threads
  // runs inline on the caller while the others idle: serial work, counted in neither.
  struct Stats {
    double wall_s = 0;
    double busy_s = 0;
    int64_t runs = 0;
  };
  Stats stats() const;
  void reset_stats();

 private:
  void worker_loop(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  const std::function<void(int, int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<int> sleepers_{0};
  struct alignas(64) Slot {
    double busy_s = 0;
    const char* pf_data = nullptr;  // idle-time prefetch hint for after the next run()
    size_t pf_bytes = 0;
  };
  std::vector<Slot> slots_;  // per-thread busy time, written only by its thread
  double wall_s_ = 0;
  int64_t runs_ = 0;
};

}  // namespace modu
