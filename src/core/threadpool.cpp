// ThreadPool: workers spin briefly on a generation counter (cheap hand-off between the many small
// kernels of one token) and fall back to a condition variable when idle, so an idle pool costs no CPU.
#include "modu/core/threadpool.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MODU_PAUSE() _mm_pause()
#else
#define MODU_PAUSE() std::this_thread::yield()
#endif

namespace modu {

namespace {
constexpr int kSpinIterations = 1 << 16;
// After this many PAUSEs a waiting thread also yields its time slice: when the machine is
// oversubscribed (other processes, or more threads than cores) the thread we wait for may be
// descheduled, and pure spinning would burn the very core it needs.
constexpr int kYieldAfter = 1 << 10;

// Idle-time prefetch step: 16 lines towards L2 (locality 2 = PREFETCHT1 on x86), then the caller
// checks whether to go on. Small steps keep the reaction to a new region within ~1 us.
constexpr size_t kPrefetchStep = 1024;
inline void prefetch_step(const char*& p, size_t& left) {
  const size_t n = std::min(left, kPrefetchStep);
  for (size_t o = 0; o < n; o += 64) __builtin_prefetch(p + o, 0, 2);
  p += n;
  left -= n;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void maybe_pin(int index) {
#if defined(__linux__)
  static const bool pin = [] {
    const char* e = std::getenv("MODU_PIN");
    return e && *e && *e != '0';
  }();
  if (!pin) return;
  const int n = ThreadPool::hardware_threads();
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(index % n, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
#else
  (void)index;
#endif
}
}  // namespace

int ThreadPool::hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

ThreadPool::ThreadPool(int n_threads) {
  n_threads_ = n_threads <= 0 ? hardware_threads() : n_threads;
  slots_.resize(n_threads_);
  maybe_pin(0);
  workers_.reserve(n_threads_ - 1);
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::worker_loop(int index) {
  maybe_pin(index);
  uint64_t seen = 0;
  for (;;) {
    int spins = 0;
    uint64_t g;
    while ((g = generation_.load(std::memory_order_acquire)) == seen) {
      if (++spins < kSpinIterations) {
        if (spins > kYieldAfter) std::this_thread::yield(); else MODU_PAUSE();
        continue;
      }
      std::unique_lock<std::mutex> lock(mu_);
      sleepers_.fetch_add(1);
      cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      sleepers_.fetch_sub(1);
      spins = 0;
    }
    seen = g;
    if (stop_.load()) return;
    const double t0 = now_s();
    (*job_)(index, n_threads_);
    slots_[index].busy_s += now_s() - t0;
    // Copy the hint before signalling: once pending_ drops the caller may reset the slot.
    const char* pf = slots_[index].pf_data;
    size_t pf_left = slots_[index].pf_bytes;
    pending_.fetch_sub(1, std::memory_order_acq_rel);
    while (pf_left > 0 && generation_.load(std::memory_order_relaxed) == seen) prefetch_step(pf, pf_left);
  }
}

ThreadPool::Stats ThreadPool::stats() const {
  Stats s;
  s.wall_s = wall_s_;
  s.runs = runs_;
  for (const Slot& sl : slots_) s.busy_s += sl.busy_s;
  return s;
}

void ThreadPool::reset_stats() {
  wall_s_ = 0;
  runs_ = 0;
  for (Slot& sl : slots_) sl.busy_s = 0;
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
  const double t0 = now_s();
  ++runs_;
  if (n_threads_ == 1) {
    fn(0, 1);
    const double dt = now_s() - t0;
    slots_[0].busy_s += dt;
    wall_s_ += dt;
    slots_[0].pf_data = nullptr, slots_[0].pf_bytes = 0;  // one thread never waits: nothing to overlap
    return;
  }
  job_ = &fn;
  pending_.store(n_threads_ - 1, std::memory_order_release);
  {
    // Publishing under the mutex avoids a lost wake-up for a worker about to sleep.
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  if (sleepers_.load() > 0) cv_.notify_all();
  fn(0, n_threads_);
  slots_[0].busy_s += now_s() - t0;
  const char* pf = slots_[0].pf_data;
  size_t pf_left = slots_[0].pf_bytes;
  for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) {
    if (pf_left > 0) {
      prefetch_step(pf, pf_left);
      spins = 0;
    } else if (spins > kYieldAfter) {
      std::this_thread::yield();
    } else {
      MODU_PAUSE();
    }
  }
  // Every worker has copied its hint (before its pending_ decrement): the hints are used up.
  for (Slot& sl : slots_) sl.pf_data = nullptr, sl.pf_bytes = 0;
  job_ = nullptr;
  wall_s_ += now_s() - t0;
}

int64_t ThreadPool::share_begin(int64_t n, int64_t grain, int t, int n_threads) {
  grain = std::max<int64_t>(1, grain);
  const int64_t n_chunks = (n + grain - 1) / grain;
  return std::min(n, n_chunks * t / std::max(1, n_threads) * grain);
}

void ThreadPool::prefetch_after_next_run(int t, const void* data, size_t bytes) {
  if (t < 0 || t >= n_threads_) return;
  slots_[t].pf_data = static_cast<const char*>(data);
  slots_[t].pf_bytes = data ? bytes : 0;
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t n_chunks = (n + grain - 1) / grain;
  if (n_chunks == 1 && n_threads_ > 1) {  // serial work on the caller (see Stats)
    fn(0, n);
    return;
  }
  if (n_threads_ == 1) {
    const double t0 = now_s();
    fn(0, n);
    const double dt = now_s() - t0;
    slots_[0].busy_s += dt;
    wall_s_ += dt;
    ++runs_;
    return;
  }
  // Dynamic scheduling over contiguous ranges. Thread t owns [t * n / T, (t + 1) * n / T) and claims
  // it from the front, in order, so its rows form one ascending stream: the decode kernels prefetch
  // a row tile ahead, and a stream cut into chunks that alternate between threads starts cold at
  // every chunk (a 2-thread Q4_0 decode-kernel harness: 82-86% of read bandwidth with interleaved
  // claims of 1/16 of the rows, 86-91% with contiguous ones). A thread that runs out (descheduled
  // peer, slower core) steals from the back of the others' ranges, so the owners' streams stay
  // unbroken. Claims are guided (1/(2T) of what is left, at least one chunk): few claims while
  // much is left, single chunks at the end, so threads reach the barrier within ~one chunk of
  // each other. Front and back share one 64-bit word, changed by CAS.
  if (n_chunks >= (int64_t(1) << 31)) {  // packed counters hold 31 bits; coarsen instead
    const int64_t k = n_chunks / (int64_t(1) << 30) + 1;
    return parallel_for(n, fn, grain * k);
  }
  const int T = n_threads_;
  struct alignas(64) Range {
    std::atomic<uint64_t> fb{0};  // low 32 bits: next chunk from the front; high 32 bits: end
  };
  constexpr int kInline = 16;
  Range inline_ranges[kInline];
  std::unique_ptr<Range[]> heap_ranges;
  Range* ranges = inline_ranges;
  if (T > kInline) {
    heap_ranges = std::make_unique<Range[]>(T);
    ranges = heap_ranges.get();
  }
  for (int t = 0; t < T; ++t) {
    const uint64_t b = (uint64_t)(n_chunks * t / T), e = (uint64_t)(n_chunks * (t + 1) / T);
    ranges[t].fb.store(b | (e << 32), std::memory_order_relaxed);
  }
  run([&](int self, int) {
    for (int k = 0; k < T; ++k) {
      const int t = (self + k) % T;
      const bool own = k == 0;
      std::atomic<uint64_t>& fb = ranges[t].fb;
      uint64_t cur = fb.load(std::memory_order_relaxed);
      for (;;) {
        const int64_t f = (int64_t)(cur & 0xffffffffu), e = (int64_t)(cur >> 32);
        if (f >= e) break;
        const int64_t take = std::max<int64_t>(1, (e - f) / (2 * (int64_t)T));
        int64_t c0, c1;
        uint64_t next;
        if (own) {
          c0 = f;
          c1 = f + take;
          next = (uint64_t)c1 | ((uint64_t)e << 32);
        } else {
          c1 = e;
          c0 = e - take;
          next = (uint64_t)f | ((uint64_t)c0 << 32);
        }
        if (!fb.compare_exchange_weak(cur, next, std::memory_order_relaxed)) continue;
        fn(c0 * grain, std::min(n, c1 * grain));
        cur = fb.load(std::memory_order_relaxed);
      }
    }
  });
}

}  // namespace modu
