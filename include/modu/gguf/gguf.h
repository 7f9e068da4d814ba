// GGUF v2/v3 files: a validating reader over a memory map (zero-copy tensor views) and a writer.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "modu/core/mmap.h"
#include "modu/core/status.h"
#include "modu/kernels/dtype.h"

namespace modu {

// Metadata value types as stored in the file.
enum class GgufType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6,
  BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* gguf_type_name(GgufType t);

// One metadata value: a scalar, a string, or an array of scalars / strings (no nested arrays
// beyond one level are produced by real tools, but they are accepted and represented).
class GgufValue {
 public:
  GgufValue() = default;
  static GgufValue u8(uint8_t v); static GgufValue i8(int8_t v);
  static GgufValue u16(uint16_t v); static GgufValue i16(int16_t v);
  static GgufValue u32(uint32_t v); static GgufValue i32(int32_t v);
  static GgufValue u64(uint64_t v); static GgufValue i64(int64_t v);
  static GgufValue f32(float v); static GgufValue f64(double v);
  static GgufValue boolean(bool v);
  static GgufValue string(std::string v);
  // Array of elements that all have type `elem_type`.
  static GgufValue array(GgufType elem_type, std::vector<GgufValue> elems);
  static GgufValue string_array(std::vector<std::string> v);
  static GgufValue f32_array(const std::vector<float>& v);
  static GgufValue i32_array(const std::vector<int32_t>& v);

  GgufType type() const { return type_; }
  bool is_integer() const;   // any of the 8 integer types (not bool)
  bool is_float() const;     // FLOAT32 or FLOAT64
  bool is_string() const { return type_ == GgufType::STRING; }
  bool is_array() const { return type_ == GgufType::ARRAY; }

  // Conversions: nullopt when the stored type does not convert (e.g. string as int, or an
  // integer that does not fit). Integers convert to float; bool only to bool.
  std::optional<int64_t> as_int() const;
  std::optional<uint64_t> as_uint() const;
  std::optional<double> as_float() const;
  std::optional<bool> as_bool() const;
  const std::string* as_string() const;  // nullptr unless STRING

  // Arrays.
  GgufType array_type() const { return array_type_; }
  const std::vector<GgufValue>& elems() const { return elems_; }
  size_t size() const { return elems_.size(); }

 private:
  GgufType type_ = GgufType::UINT8;
  GgufType array_type_ = GgufType::UINT8;
  std::variant<uint64_t, int64_t, double, bool, std::string> v_;
  std::vector<GgufValue> elems_;
};

struct GgufTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;  // ne: shape[0] is the contiguous (fastest) dimension
  uint64_t offset = 0;         // relative to the start of the tensor data section
  const uint8_t* data = nullptr;  // points into the map (zero-copy)
  size_t nbytes = 0;
  int64_t n_elements() const;
  int64_t n_rows() const { return shape.empty() ? 1 : n_elements() / shape[0]; }
};

class GgufFile {
 public:
  GgufFile() = default;
  GgufFile(GgufFile&&) = default;
  GgufFile& operator=(GgufFile&&) = default;

  // Maps and validates a whole file. Any malformation gives one kCorrupt status naming the file,
  // the offending field and its byte offset; never crashes. OS failures give kIoError.
  // Accepted: versions 2 and 3 (little-endian); 1..4 dims, each >= 1, row length a multiple of the
  // dtype's block size; tensor offsets multiples of general.alignment (a power-of-two uint32,
  // default 32) whose data lies inside the file; unique keys and tensor names; arrays nested at
  // most 8 deep and at most 2^25 metadata array elements per file. Strings are not checked for
  // UTF-8. A file without tensors may end before data_offset().
  static Result<GgufFile> open(const std::string& path);
  // Parses a buffer that outlives the GgufFile (for fuzzing and tests); tensor data points into it.
  static Result<GgufFile> parse(const uint8_t* data, size_t size, std::string name = "<memory>");
  // Assembles a file from parts (e.g. a Hugging Face folder's safetensors maps): tensors' `data`
  // must stay valid while `owner` lives (the GgufFile keeps it). Checks unique keys and tensor
  // names and each tensor's nbytes against its dtype and shape (kCorrupt naming `name`).
  static Result<GgufFile> from_parts(std::string name, std::vector<std::pair<std::string, GgufValue>> metadata,
                                     std::vector<GgufTensor> tensors, std::shared_ptr<const void> owner);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  const std::string& name() const { return name_; }  // path or label, for messages
  size_t file_size() const { return size_; }
  uint64_t data_offset() const { return data_offset_; }

  // Metadata, in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* find(std::string_view key) const;
  // Typed getters: default when absent; error when present with an incompatible type.
  Result<int64_t> get_int(std::string_view key, std::optional<int64_t> def = std::nullopt) const;
  Result<double> get_float(std::string_view key, std::optional<double> def = std::nullopt) const;
  Result<bool> get_bool(std::string_view key, std::optional<bool> def = std::nullopt) const;
  Result<std::string> get_string(std::string_view key, std::optional<std::string> def = std::nullopt) const;

  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* tensor(std::string_view name) const;
  // For tensor data the caller has copied elsewhere (repacked weights): drops the mapped pages of
  // [p, p + n) from RSS when the file is memory-mapped (open()); a no-op for parse()/from_parts().
  void release_data(const uint8_t* p, size_t n) const {
    if (map_) map_->release(p, n);
  }

 private:
  std::shared_ptr<MappedFile> map_;  // keeps the mapping alive (null for parse())
  std::shared_ptr<const void> owner_;  // keeps from_parts() data alive
  std::string name_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  size_t size_ = 0;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<GgufTensor> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

// Builds a GGUF v3 file. Metadata keeps insertion order (setting a key twice replaces it).
class GgufWriter {
 public:
  void set(const std::string& key, GgufValue value);
  // Also written as general.alignment; must be a power of two (anything else is a caller bug).
  void set_alignment(uint32_t alignment);
  // Copies `nbytes` of data; nbytes must equal dtype_row_bytes(dtype, shape[0]) * rows.
  Status add_tensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                    const void* data, size_t nbytes);
  // Convenience: quantizes/converts F32 data to `dtype` row by row (error if the dtype has no
  // quantize function).
  Status add_tensor_f32(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                        const float* data);
  // Writes atomically: a temp file in the same directory, fsync, rename over `path`.
  Status write(const std::string& path) const;
  // Serializes to memory.
  std::vector<uint8_t> serialize() const;

 private:
  struct Pending { std::string name; DType dtype; std::vector<int64_t> shape; std::vector<uint8_t> bytes; };
  uint32_t alignment_ = 32;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Pending> tensors_;
};

}  // namespace modu
