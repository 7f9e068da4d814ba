// MappedFile: a read-only memory map of a whole file (weights are never copied when they need not be).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "modu/core/status.h"

namespace modu {

class MappedFile {
 public:
  MappedFile() = default;
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // Maps `path` read-only. An empty file maps to size() == 0 and data() == nullptr.
  static Result<MappedFile> open(const std::string& path);

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Hint the kernel that the whole map will be read soon (MADV_WILLNEED).
  void advise_willneed() const;
  // Drops this process's pages of [p, p + n) (the whole pages inside it that lie in this mapping):
  // RSS falls, and a later read faults the file's bytes back in. For data copied elsewhere.
  void release(const uint8_t* p, size_t n) const;

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

}  // namespace modu
