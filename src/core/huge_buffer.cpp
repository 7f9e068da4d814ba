// HugeBuffer implementation: anonymous mmap, trimmed to a 2 MiB boundary, MADV_HUGEPAGE; MemAvailable.
#include "modu/core/huge_buffer.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace modu {

namespace {
constexpr size_t kHuge = size_t(2) << 20;
}

HugeBuffer::~HugeBuffer() {
  if (data_ != nullptr) munmap(data_, size_);
}

HugeBuffer::HugeBuffer(HugeBuffer&& o) noexcept : data_(o.data_), size_(o.size_) {
  o.data_ = nullptr;
  o.size_ = 0;
}

HugeBuffer& HugeBuffer::operator=(HugeBuffer&& o) noexcept {
  if (this != &o) {
    if (data_ != nullptr) munmap(data_, size_);
    data_ = o.data_;
    size_ = o.size_;
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

Result<HugeBuffer> HugeBuffer::allocate(size_t bytes) {
  HugeBuffer b;
  if (bytes == 0) return b;
  if (bytes > SIZE_MAX - 2 * kHuge) return invalid_argument("HugeBuffer: " + std::to_string(bytes) + " bytes is too large");
  const size_t size = (bytes + kHuge - 1) & ~(kHuge - 1);
  // Over-map by one huge page, then unmap the unaligned head and the tail, so that the region
  // starts on a 2 MiB boundary (huge pages need physically and virtually aligned 2 MiB spans).
  const size_t span = size + kHuge;
  void* p = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return io_error("HugeBuffer: cannot map " + std::to_string(size >> 20) + " MiB: " + std::strerror(errno) +
                    " (free memory or raise the address-space limit)");
  const uintptr_t base = reinterpret_cast<uintptr_t>(p);
  const uintptr_t aligned = (base + kHuge - 1) & ~(uintptr_t)(kHuge - 1);
  if (aligned > base) munmap(p, aligned - base);
  const uintptr_t end = base + span, aligned_end = aligned + size;
  if (end > aligned_end) munmap(reinterpret_cast<void*>(aligned_end), end - aligned_end);
#ifdef MADV_HUGEPAGE
  static const bool want_huge = [] {
    const char* e = std::getenv("MODU_HUGEPAGES");
    return !(e && std::strcmp(e, "0") == 0);
  }();
  if (want_huge) madvise(reinterpret_cast<void*>(aligned), size, MADV_HUGEPAGE);  // advisory: may stay 4 KiB
#endif
  b.data_ = reinterpret_cast<uint8_t*>(aligned);
  b.size_ = size;
  return b;
}

namespace {
// First unsigned number in a small file, or 0 when it is missing or not a number ("max").
uint64_t read_u64(const char* path) {
  FILE* f = std::fopen(path, "r");
  if (f == nullptr) return 0;
  unsigned long long v = 0;
  if (std::fscanf(f, "%llu", &v) != 1) v = 0;
  std::fclose(f);
  return v;
}
}  // namespace

size_t available_memory_bytes() {
  size_t avail = 0;
  if (FILE* f = std::fopen("/proc/meminfo", "r")) {
    char line[256];
    size_t kb = 0;
    while (std::fgets(line, sizeof line, f) != nullptr)
      if (std::sscanf(line, "MemAvailable: %zu kB", &kb) == 1) break;
    std::fclose(f);
    avail = kb * 1024;
  }
  // A container's memory limit (cgroup v2, then v1) binds before the machine's free memory does.
  auto limit = [&](const char* max_path, const char* cur_path) {
    const uint64_t max = read_u64(max_path), cur = read_u64(cur_path);
    if (max == 0 || max >= (uint64_t(1) << 60)) return;  // no limit ("max" or the v1 sentinel)
    const size_t left = max > cur ? (size_t)(max - cur) : 0;
    avail = avail == 0 ? left : std::min(avail, left);
  };
  limit("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current");
  limit("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes");
  return avail;
}

}  // namespace modu
