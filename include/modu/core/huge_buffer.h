// HugeBuffer: an anonymous, 2 MiB-aligned memory region advised for transparent huge pages.
#pragma once

#include <cstddef>
#include <cstdint>

#include "modu/core/status.h"

namespace modu {

// Large read-mostly buffers that are streamed end to end every token (repacked weights) live
// here: with 2 MiB pages a 1 GB stream needs ~500 TLB entries instead of ~250,000 page walks, and
// the hardware prefetchers are not cut off at every 4 KiB. The hint (MADV_HUGEPAGE) is advisory:
// where the kernel has transparent huge pages off, the buffer is ordinary 4 KiB pages and works
// the same. Pages are committed on first touch, by the thread that writes them. MODU_HUGEPAGES=0
// leaves out the hint (A/B comparisons; hosts where huge-page compaction stalls hurt more).
class HugeBuffer {
 public:
  HugeBuffer() = default;
  ~HugeBuffer();
  HugeBuffer(HugeBuffer&& other) noexcept;
  HugeBuffer& operator=(HugeBuffer&& other) noexcept;
  HugeBuffer(const HugeBuffer&) = delete;
  HugeBuffer& operator=(const HugeBuffer&) = delete;

  // Maps `bytes` (rounded up to 2 MiB) of zeroed memory; bytes == 0 gives an empty buffer.
  static Result<HugeBuffer> allocate(size_t bytes);

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Memory the OS could give this process now without swapping, in bytes: Linux's MemAvailable,
// capped by the container's cgroup memory limit (v2 or v1) minus its usage; 0 when unknown. For
// decisions such as whether a widening repack of weights fits.
size_t available_memory_bytes();

}  // namespace modu
