// Safetensors files: a validating header parser over a memory map (zero-copy tensor views), and a
// small writer (tests, tools). Format: u64 little-endian header size, JSON header, raw data.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "modu/core/mmap.h"
#include "modu/core/status.h"

namespace modu {

struct SafetensorsTensor {
  std::string name;
  std::string dtype;           // "F32", "F16", "BF16", "I64", ... as written in the header
  std::vector<int64_t> shape;  // row-major, outermost first (PyTorch order)
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
};

// Bytes per element of a safetensors dtype name, 0 if unknown.
size_t safetensors_dtype_size(std::string_view dtype);

class SafetensorsFile {
 public:
  // Maps and validates a file; errors (kCorrupt) name the file and the offending entry.
  static Result<SafetensorsFile> open(const std::string& path);
  // Parses a buffer that outlives the result. Accepted: header size <= 100 MiB and inside the
  // buffer; a JSON object of tensors {dtype, shape (<= 8 dims, each >= 0), data_offsets [b, e]}
  // with e - b = elements * dtype size and e <= data size; optional "__metadata__" of strings.
  static Result<SafetensorsFile> parse(const uint8_t* data, size_t size, std::string name = "<memory>");

  const std::string& name() const { return name_; }
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* find(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::shared_ptr<MappedFile> map_;
  std::string name_;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

// Serializes tensors (data copied from each tensor's `data`/`nbytes`) into safetensors bytes.
std::vector<uint8_t> write_safetensors(const std::vector<SafetensorsTensor>& tensors,
                                       const std::map<std::string, std::string>& metadata = {});

}  // namespace modu
