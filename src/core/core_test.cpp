// Tests for core: Status/Result, half-float conversions, thread pool, mmap, huge-page buffers.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <set>

#include "modu/core/fp16.h"
#include "modu/core/huge_buffer.h"
#include "modu/core/mmap.h"
#include "modu/core/status.h"
#include "modu/core/threadpool.h"

namespace modu {
namespace {

Result<int> parse_positive(int x) {
  if (x <= 0) return invalid_argument("x must be positive");
  return x;
}

Status use_it(int x, int* out) {
  MODU_ASSIGN_OR_RETURN(*out, parse_positive(x));
  return Status::Ok();
}

TEST(Status, ResultAndMacros) {
  int v = 0;
  EXPECT_TRUE(use_it(3, &v).ok());
  EXPECT_EQ(v, 3);
  Status s = use_it(-1, &v);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.to_string(), "invalid argument: x must be positive");
  EXPECT_EQ(s.with_context("f").message(), "f: x must be positive");
}

// Reference: exact decode of a binary16 by its definition, in double.
double fp16_value(uint16_t h) {
  int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  double v;
  if (e == 0) v = std::ldexp(m, -24);
  else if (e == 31) v = m ? NAN : INFINITY;
  else v = std::ldexp(1024 + m, e - 25);
  return s ? -v : v;
}

TEST(Fp16, AllHalfValuesRoundTrip) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = fp16_to_fp32((uint16_t)h);
    const double ref = fp16_value((uint16_t)h);
    if (std::isnan(ref)) {
      EXPECT_TRUE(std::isnan(f));
      continue;
    }
    ASSERT_EQ((double)f, ref) << h;
    ASSERT_EQ(fp32_to_fp16(f), h) << h;
  }
}

TEST(Fp16, RoundsToNearestEven) {
  // For many floats, the result must be the nearest half (ties to even), found by brute force.
  uint32_t seed = 12345;
  for (int i = 0; i < 200000; ++i) {
    seed = seed * 1664525u + 1013904223u;
    float f = bits_to_f32((seed & 0x8fffffffu) | 0x30000000u);  // magnitudes around 2^-31 .. 2^32
    if (std::isnan(f) || std::isinf(f)) continue;
    uint16_t got = fp32_to_fp16(f);
    double best = INFINITY;
    for (int d = -1; d <= 1; ++d) {  // neighbours of the result must not be closer
      uint16_t n = (uint16_t)(got + d);
      if ((n & 0x7c00) == 0x7c00 && (n & 0x3ff)) continue;
      best = std::min(best, std::fabs(fp16_value(n) - f));
    }
    double err = std::fabs(fp16_value(got) - f);
    if (std::isinf(fp16_value(got))) continue;
    ASSERT_LE(err, best) << f;
  }
}

TEST(Bf16, RoundTripAndRounding) {
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_fp32(0x3f80), 1.0f);
  // 1 + 2^-8 is exactly halfway between 1 and 1+2^-7: ties to even -> 1.
  EXPECT_EQ(fp32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  EXPECT_EQ(fp32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(NAN))));
}

TEST(ThreadPool, ParallelForCoversEveryIndexOnce) {
  for (int nt : {1, 2, 3, 7}) {
    ThreadPool pool(nt);
    EXPECT_EQ(pool.size(), nt);
    for (int64_t n : {0, 1, 5, 1000, 1023}) {
      std::vector<std::atomic<int>> hits(n);
      for (int rep = 0; rep < 20; ++rep) {
        pool.parallel_for(n, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) hits[i]++;
        }, 16);
      }
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 20);
    }
  }
}

// A thread that stalls in its first claim must not hold the others: they take the rest of its
// range (from the back) and every index still runs exactly once. The worker's range is [32, 64);
// the caller waits for the worker's first claim (a quarter of its range, 8 chunks), in which the
// worker then stalls until the caller has done everything else, which only stealing allows (or
// 5 s pass, and the test fails).
TEST(ThreadPool, ParallelForStealsFromAStalledThread) {
  ThreadPool pool(2);
  const std::thread::id caller = std::this_thread::get_id();
  const int64_t n = 64;
  std::vector<std::atomic<int>> hits(n);
  std::atomic<int64_t> by_caller{0};
  std::atomic<bool> stalled{false};
  pool.parallel_for(n, [&](int64_t b, int64_t e) {
    if (std::this_thread::get_id() != caller) {
      if (!stalled.exchange(true)) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (by_caller.load() < n - (e - b) && std::chrono::steady_clock::now() < deadline)
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    } else {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (!stalled.load() && std::chrono::steady_clock::now() < deadline)  // the worker starts first
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      by_caller += e - b;
    }
    for (int64_t i = b; i < e; ++i) hits[i]++;
  });
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << i;
  EXPECT_TRUE(stalled.load()) << "the worker never ran a claim";
  EXPECT_EQ(by_caller.load(), n - 8);
}

// Each thread's claims from its own range come in ascending, gap-free order from where the range
// starts (the property the decode kernels' prefetch relies on); thieves take from the back, so this
// holds whatever the scheduling.
TEST(ThreadPool, ParallelForOwnClaimsAreOneAscendingStream) {
  ThreadPool pool(2);
  const std::thread::id caller = std::this_thread::get_id();
  int reps_with_own_claims = 0;
  for (int rep = 0; rep < 50; ++rep) {
    std::vector<std::pair<int64_t, int64_t>> mine;  // written by the caller only
    pool.parallel_for(1000, [&](int64_t b, int64_t e) {
      if (std::this_thread::get_id() == caller) mine.emplace_back(b, e);
    }, 3);
    int64_t expect = 0;
    for (const auto& c : mine) {
      if (c.first >= 500) break;  // the caller's own range is [0, 501); later claims are stolen
      ASSERT_EQ(c.first, expect);
      expect = c.second;
    }
    // On a loaded machine the worker may take the whole range while the caller is descheduled
    // (then the caller has no own claims, which is allowed); it must not happen every time.
    reps_with_own_claims += expect > 0;
  }
  EXPECT_GT(reps_with_own_claims, 0);
}

// share_begin is where each thread's stream starts (ops prefetches there ahead of time). Every
// thread's first claim comes from the front of its own share as long as no share is exhausted;
// the job holds each thread in its first call until all have made theirs, so none can steal yet.
TEST(ThreadPool, ShareBeginIsWhereEachThreadStarts) {
  for (int nt : {2, 3, 5}) {
    ThreadPool pool(nt);
    for (auto [n, grain] : {std::pair<int64_t, int64_t>{1000, 16}, {97, 1}, {4096, 64}, {50, 7}}) {
      std::mutex mu;
      std::map<std::thread::id, int64_t> first;
      std::atomic<int> arrived{0};
      pool.parallel_for(n, [&](int64_t b, int64_t) {
        bool is_first = false;
        {
          std::lock_guard<std::mutex> lock(mu);
          is_first = first.emplace(std::this_thread::get_id(), b).second;
        }
        if (!is_first) return;
        arrived++;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (arrived.load() < nt && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
      }, grain);
      ASSERT_EQ((int)first.size(), nt) << "n=" << n << " threads=" << nt;
      std::set<int64_t> got, want;
      for (const auto& kv : first) got.insert(kv.second);
      for (int t = 0; t < nt; ++t) want.insert(ThreadPool::share_begin(n, grain, t, nt));
      EXPECT_EQ(got, want) << "n=" << n << " grain=" << grain << " threads=" << nt;
      EXPECT_EQ(ThreadPool::share_begin(n, grain, 0, nt), 0);
    }
  }
}

// The idle-time prefetch hint is only a hint: any address (prefetches never fault), any size, and
// hints for threads that do not exist change nothing, and every index still runs exactly once.
TEST(ThreadPool, PrefetchHintsNeverChangeResults) {
  std::vector<uint8_t> buf(1 << 20, 1);
  for (int nt : {1, 2, 3}) {
    ThreadPool pool(nt);
    for (int rep = 0; rep < 20; ++rep) {
      for (int t = -1; t <= nt; ++t) pool.prefetch_after_next_run(t, buf.data() + 4096 * (t + 1), buf.size() / 2);
      if (rep % 3 == 1) pool.prefetch_after_next_run(0, nullptr, 1 << 20);
      if (rep % 3 == 2) pool.prefetch_after_next_run(nt - 1, reinterpret_cast<const void*>(uintptr_t(64)), 1 << 16);
      std::vector<std::atomic<int>> hits(1000);
      pool.parallel_for(1000, [&](int64_t b, int64_t e) { for (int64_t i = b; i < e; ++i) hits[i]++; }, 8);
      for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(hits[i].load(), 1) << i;
    }
  }
}

TEST(HugeBuffer, AllocatesAlignedZeroedMemory) {
  auto empty = HugeBuffer::allocate(0);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->data(), nullptr);
  EXPECT_EQ(empty->size(), 0u);
  const size_t want = (size_t(5) << 20) + 123;
  auto b = HugeBuffer::allocate(want);
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b->data()) % (size_t(2) << 20), 0u);
  EXPECT_EQ(b->size(), size_t(6) << 20);
  for (size_t i = 0; i < b->size(); i += 4096) ASSERT_EQ(b->data()[i], 0) << i;
  std::memset(b->data(), 0xAB, want);
  HugeBuffer moved = std::move(*b);
  EXPECT_EQ(b->data(), nullptr);
  EXPECT_EQ(moved.data()[want - 1], 0xAB);
  auto huge = HugeBuffer::allocate(SIZE_MAX - 100);
  EXPECT_FALSE(huge.ok());
}

TEST(HugeBuffer, AvailableMemoryIsPlausible) {
  const size_t avail = available_memory_bytes();
#if defined(__linux__)
  EXPECT_GT(avail, size_t(16) << 20) << "a Linux test machine has /proc/meminfo and some free memory";
#endif
  EXPECT_LT(avail, size_t(1) << 50);
}

TEST(ThreadPool, StatsCountParallelRegionsOnly) {
  ThreadPool pool(2);
  std::atomic<int64_t> sum{0};
  pool.reset_stats();
  pool.parallel_for(10, [&](int64_t b, int64_t e) { sum += e - b; }, 16);  // one chunk: inline, serial
  EXPECT_EQ(pool.stats().runs, 0);
  EXPECT_EQ(pool.stats().wall_s, 0.0);
  EXPECT_EQ(pool.stats().busy_s, 0.0);
  pool.parallel_for(1000, [&](int64_t b, int64_t e) { sum += e - b; }, 16);
  EXPECT_EQ(pool.stats().runs, 1);
  EXPECT_GT(pool.stats().wall_s, 0.0);
  EXPECT_GT(pool.stats().busy_s, 0.0);
  EXPECT_EQ(sum.load(), 1010);
  ThreadPool one(1);  // a one-thread pool's regions are all its work
  one.parallel_for(10, [&](int64_t b, int64_t e) { sum += e - b; }, 16);
  EXPECT_EQ(one.stats().runs, 1);
}

TEST(ThreadPool, RunGivesEachThreadItsIndex) {
  ThreadPool pool(4);
  std::vector<int> seen(4, 0);
  pool.run([&](int t, int n) { EXPECT_EQ(n, 4); seen[t]++; });
  for (int s : seen) EXPECT_EQ(s, 1);
}

TEST(MappedFile, MapsAndReportsErrors) {
  std::string path = ::testing::TempDir() + "/modu_mmap_test.bin";
  { std::ofstream f(path, std::ios::binary); f << "hello"; }
  auto m = MappedFile::open(path);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  ASSERT_EQ(m->size(), 5u);
  EXPECT_EQ(std::string((const char*)m->data(), 5), "hello");
  auto bad = MappedFile::open(path + ".missing");
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kIoError);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace modu
