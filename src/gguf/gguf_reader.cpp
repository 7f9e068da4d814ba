// GGUF reader: parses and validates a GGUF v2/v3 file from a memory map or buffer (zero-copy tensors).
#include <cstring>
#include <limits>
#include <string>

#include "modu/gguf/gguf.h"

namespace modu {

namespace {

constexpr uint32_t kMaxDims = 4;
constexpr int kMaxArrayDepth = 8;  // real files use 1; deeper nesting is accepted up to this
constexpr uint64_t kDefaultAlignment = 32;
// Upper bound on array elements over all metadata. Each element costs ~72 bytes in memory (vs.
// as little as 1 in the file), so this caps metadata memory at a few GB even for a huge hostile
// file; real files hold at most a few million (vocabulary tokens, scores, types and merges).
constexpr uint64_t kMaxMetadataElements = uint64_t{1} << 25;
constexpr const char* kAlignmentKey = "general.alignment";

bool mul_overflow_u64(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_mul_overflow(a, b, out); }
bool add_overflow_u64(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_add_overflow(a, b, out); }

// Smallest encoded size of one value of type `t` (used to reject counts the remaining bytes cannot
// hold before allocating anything for them). 0 for unknown types (they are rejected separately).
uint64_t min_encoded_size(uint32_t t) {
  switch (static_cast<GgufType>(t)) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::BOOL: return 1;
    case GgufType::UINT16: case GgufType::INT16: return 2;
    case GgufType::UINT32: case GgufType::INT32: case GgufType::FLOAT32: return 4;
    case GgufType::UINT64: case GgufType::INT64: case GgufType::FLOAT64: return 8;
    case GgufType::STRING: return 8;        // length only
    case GgufType::ARRAY: return 4 + 8;     // element type + count
  }
  return 0;
}

bool known_value_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::FLOAT64); }

// A bounds-checked little-endian cursor over the input. Every failure names the file, the field
// and the byte offset where the field starts.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size, const std::string& name) : data_(data), size_(size), name_(name) {}

  uint64_t elements_left = kMaxMetadataElements;  // budget for metadata array elements

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  Status error(const std::string& what, size_t at) const {
    return corrupt(name_ + ": " + what + " at byte offset " + std::to_string(at));
  }
  Status truncated(const std::string& what, size_t at, uint64_t need) const {
    return corrupt(name_ + ": truncated file: " + what + " at byte offset " + std::to_string(at) + " needs " +
                   std::to_string(need) + " bytes but only " + std::to_string(size_ - at) +
                   " remain (file size " + std::to_string(size_) + ")");
  }

  template <typename T>
  Status read(T* out, const char* what) {
    if (remaining() < sizeof(T)) return truncated(what, pos_, sizeof(T));
    std::memcpy(out, data_ + pos_, sizeof(T));  // host is little-endian (checked at build time)
    pos_ += sizeof(T);
    return Status::Ok();
  }

  Status read_string(std::string* out, const std::string& what) {
    const size_t at = pos_;
    uint64_t len = 0;
    MODU_RETURN_IF_ERROR(read(&len, (what + " length").c_str()));
    if (len > remaining()) {
      return error(what + " length " + std::to_string(len) + " exceeds the " + std::to_string(remaining()) +
                       " bytes left in the file (truncated or corrupt length)",
                   at);
    }
    *out = take_string(static_cast<size_t>(len));
    return Status::Ok();
  }

  // The next n bytes as a string; the caller has checked n <= remaining().
  std::string take_string(size_t n) {
    std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return s;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& name_;
};

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the GGUF reader assumes a little-endian host");

// Names the value being read, e.g. "value of 'tokenizer.ggml.tokens'[17]"; built only on error.
std::string value_name(const std::string& key, const std::vector<uint64_t>& path) {
  std::string s = "value of '" + key + "'";
  for (uint64_t i : path) s += "[" + std::to_string(i) + "]";
  return s;
}

template <typename T>
Status read_scalar(Reader& r, const std::string& key, const std::vector<uint64_t>& path, T* v) {
  if (r.remaining() < sizeof(T)) return r.truncated(value_name(key, path), r.pos(), sizeof(T));
  return r.read(v, "");
}

// Reads one value of (known) type `t` for metadata key `key`; `path` holds the indices of the
// enclosing arrays (its size is the nesting depth).
Status read_value(Reader& r, uint32_t t, const std::string& key, std::vector<uint64_t>& path, GgufValue* out) {
  switch (static_cast<GgufType>(t)) {
#define MODU_GGUF_READ(tag, ctype, make)                            \
  case GgufType::tag: {                                             \
    ctype v;                                                        \
    MODU_RETURN_IF_ERROR(read_scalar(r, key, path, &v));            \
    *out = GgufValue::make(v);                                      \
    return Status::Ok();                                            \
  }
    MODU_GGUF_READ(UINT8, uint8_t, u8)
    MODU_GGUF_READ(INT8, int8_t, i8)
    MODU_GGUF_READ(UINT16, uint16_t, u16)
    MODU_GGUF_READ(INT16, int16_t, i16)
    MODU_GGUF_READ(UINT32, uint32_t, u32)
    MODU_GGUF_READ(INT32, int32_t, i32)
    MODU_GGUF_READ(UINT64, uint64_t, u64)
    MODU_GGUF_READ(INT64, int64_t, i64)
    MODU_GGUF_READ(FLOAT32, float, f32)
    MODU_GGUF_READ(FLOAT64, double, f64)
#undef MODU_GGUF_READ
    case GgufType::BOOL: {
      const size_t at = r.pos();
      uint8_t v;
      MODU_RETURN_IF_ERROR(read_scalar(r, key, path, &v));
      if (v > 1) return r.error("bool " + value_name(key, path) + " is " + std::to_string(v) + " (must be 0 or 1)", at);
      *out = GgufValue::boolean(v != 0);
      return Status::Ok();
    }
    case GgufType::STRING: {
      const size_t at = r.pos();
      uint64_t len = 0;
      MODU_RETURN_IF_ERROR(read_scalar(r, key, path, &len));
      if (len > r.remaining()) {
        return r.error("string length " + std::to_string(len) + " of " + value_name(key, path) + " exceeds the " +
                           std::to_string(r.remaining()) + " bytes left in the file",
                       at);
      }
      // Any bytes are accepted: GGUF strings should be UTF-8 but real vocabularies contain
      // invalid sequences (byte tokens), so UTF-8 is not enforced here.
      *out = GgufValue::string(r.take_string(static_cast<size_t>(len)));
      return Status::Ok();
    }
    case GgufType::ARRAY: {
      const size_t at = r.pos();
      if (path.size() >= static_cast<size_t>(kMaxArrayDepth)) {
        return r.error("array " + value_name(key, path) + " nests deeper than " + std::to_string(kMaxArrayDepth) +
                           " levels",
                       at);
      }
      uint32_t elem_type = 0;
      MODU_RETURN_IF_ERROR(read_scalar(r, key, path, &elem_type));
      if (!known_value_type(elem_type)) {
        return r.error("array " + value_name(key, path) + " has unknown element type " + std::to_string(elem_type) +
                           " (valid: 0..12)",
                       at);
      }
      const size_t count_at = r.pos();
      uint64_t count = 0;
      MODU_RETURN_IF_ERROR(read_scalar(r, key, path, &count));
      const uint64_t min_size = min_encoded_size(elem_type);
      if (count > r.remaining() / min_size) {
        return r.error("array " + value_name(key, path) + " claims " + std::to_string(count) + " elements of type " +
                           gguf_type_name(static_cast<GgufType>(elem_type)) + " but only " +
                           std::to_string(r.remaining()) + " bytes remain in the file",
                       count_at);
      }
      if (count > r.elements_left) {
        return r.error("array " + value_name(key, path) + " has " + std::to_string(count) +
                           " elements, more than the " + std::to_string(kMaxMetadataElements) +
                           " metadata array elements modu accepts in one file",
                       count_at);
      }
      r.elements_left -= count;
      std::vector<GgufValue> elems(static_cast<size_t>(count));  // bounded by the checks above
      path.push_back(0);
      for (uint64_t i = 0; i < count; ++i) {
        path.back() = i;
        MODU_RETURN_IF_ERROR(read_value(r, elem_type, key, path, &elems[static_cast<size_t>(i)]));
      }
      path.pop_back();
      *out = GgufValue::array(static_cast<GgufType>(elem_type), std::move(elems));
      return Status::Ok();
    }
  }
  return r.error("unknown value type " + std::to_string(t) + " for " + value_name(key, path), r.pos());
}

}  // namespace

Result<GgufFile> GgufFile::parse(const uint8_t* data, size_t size, std::string name) {
  GgufFile f;
  f.name_ = std::move(name);
  f.size_ = size;
  Reader r(data, size, f.name_);

  // Header.
  uint32_t magic = 0;
  MODU_RETURN_IF_ERROR(r.read(&magic, "magic"));
  if (std::memcmp(&magic, "GGUF", 4) != 0) {
    std::string got;
    for (int i = 0; i < 4; ++i) {
      const unsigned char c = data[i];
      if (c >= 0x20 && c < 0x7f) {
        got += static_cast<char>(c);
      } else {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\x%02x", c);
        got += buf;
      }
    }
    return r.error("bad magic '" + got + "' (expected 'GGUF'; not a GGUF file)", 0);
  }
  MODU_RETURN_IF_ERROR(r.read(&f.version_, "version"));
  if (f.version_ == 1) {
    return r.error("unsupported GGUF version 1 (only versions 2 and 3 are supported; re-convert the model "
                   "with a current llama.cpp)",
                   4);
  }
  if (f.version_ != 2 && f.version_ != 3) {
    if (f.version_ == 0x02000000u || f.version_ == 0x03000000u) {
      return r.error("big-endian GGUF file (version field " + std::to_string(__builtin_bswap32(f.version_)) +
                         " byte-swapped); only little-endian files are supported",
                     4);
    }
    return r.error("unsupported GGUF version " + std::to_string(f.version_) + " (supported: 2, 3)", 4);
  }
  uint64_t tensor_count = 0, kv_count = 0;
  const size_t tensor_count_at = r.pos();
  MODU_RETURN_IF_ERROR(r.read(&tensor_count, "tensor count"));
  const size_t kv_count_at = r.pos();
  MODU_RETURN_IF_ERROR(r.read(&kv_count, "metadata key/value count"));
  // Each KV takes at least 8 (key length) + 4 (type) + 1 bytes; each tensor info at least
  // 8 (name length) + 4 (n_dims) + 8 (one dim) + 4 (type) + 8 (offset) bytes.
  constexpr uint64_t kMinKvBytes = 8 + 4 + 1;
  constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;
  if (kv_count > r.remaining() / kMinKvBytes) {
    return r.error("metadata key/value count " + std::to_string(kv_count) + " is impossible: only " +
                       std::to_string(r.remaining()) + " bytes remain in the file (corrupt count or truncated file)",
                   kv_count_at);
  }
  if (tensor_count > r.remaining() / kMinTensorInfoBytes) {
    return r.error("tensor count " + std::to_string(tensor_count) + " is impossible: only " +
                       std::to_string(r.remaining()) + " bytes remain in the file (corrupt count or truncated file)",
                   tensor_count_at);
  }

  // Metadata.
  f.kv_.reserve(static_cast<size_t>(kv_count));
  for (uint64_t i = 0; i < kv_count; ++i) {
    const size_t key_at = r.pos();
    std::string key;
    MODU_RETURN_IF_ERROR(r.read_string(&key, "metadata key #" + std::to_string(i)));
    if (key.empty()) return r.error("metadata key #" + std::to_string(i) + " is empty", key_at);
    if (f.kv_index_.count(key) != 0) return r.error("duplicate metadata key '" + key + "'", key_at);
    const size_t type_at = r.pos();
    uint32_t type = 0;
    MODU_RETURN_IF_ERROR(r.read(&type, ("value type of '" + key + "'").c_str()));
    if (!known_value_type(type)) {
      return r.error("metadata key '" + key + "' has unknown value type " + std::to_string(type) +
                         " (valid: 0..12)",
                     type_at);
    }
    GgufValue value;
    std::vector<uint64_t> path;
    MODU_RETURN_IF_ERROR(read_value(r, type, key, path, &value));
    if (key == kAlignmentKey) {
      if (value.type() != GgufType::UINT32) {
        return r.error(std::string(kAlignmentKey) + " has type " + gguf_type_name(value.type()) +
                           ", expected uint32",
                       type_at);
      }
      const uint64_t a = *value.as_uint();
      if (a == 0 || (a & (a - 1)) != 0) {
        return r.error(std::string(kAlignmentKey) + " is " + std::to_string(a) + ", must be a power of two",
                       type_at + 4);
      }
      f.alignment_ = a;
    }
    f.kv_index_.emplace(key, f.kv_.size());
    f.kv_.emplace_back(std::move(key), std::move(value));
  }
  if (f.kv_index_.count(kAlignmentKey) == 0) f.alignment_ = kDefaultAlignment;

  // Tensor infos.
  f.tensors_.reserve(static_cast<size_t>(tensor_count));
  std::vector<size_t> offset_field_at;
  offset_field_at.reserve(static_cast<size_t>(tensor_count));
  for (uint64_t i = 0; i < tensor_count; ++i) {
    const size_t info_at = r.pos();
    GgufTensor t;
    MODU_RETURN_IF_ERROR(r.read_string(&t.name, "tensor #" + std::to_string(i) + " name"));
    if (t.name.empty()) return r.error("tensor #" + std::to_string(i) + " has an empty name", info_at);
    if (f.tensor_index_.count(t.name) != 0) return r.error("duplicate tensor name '" + t.name + "'", info_at);
    const std::string what = "tensor '" + t.name + "'";
    const size_t ndims_at = r.pos();
    uint32_t n_dims = 0;
    MODU_RETURN_IF_ERROR(r.read(&n_dims, (what + " n_dims").c_str()));
    if (n_dims == 0 || n_dims > kMaxDims) {
      return r.error(what + " has n_dims " + std::to_string(n_dims) + " (must be 1.." + std::to_string(kMaxDims) +
                         ")",
                     ndims_at);
    }
    uint64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const size_t dim_at = r.pos();
      int64_t ne = 0;
      MODU_RETURN_IF_ERROR(r.read(&ne, (what + " dimension " + std::to_string(d)).c_str()));
      if (ne <= 0) {
        return r.error(what + " dimension " + std::to_string(d) + " is " + std::to_string(ne) +
                           " (must be >= 1)",
                       dim_at);
      }
      if (mul_overflow_u64(n_elements, static_cast<uint64_t>(ne), &n_elements) ||
          n_elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return r.error(what + " element count overflows int64 at dimension " + std::to_string(d), dim_at);
      }
      t.shape.push_back(ne);
    }
    const size_t type_at = r.pos();
    uint32_t type_id = 0;
    MODU_RETURN_IF_ERROR(r.read(&type_id, (what + " type").c_str()));
    const DTypeTraits* tr = dtype_traits_from_id(type_id);
    if (tr == nullptr || tr->internal)  // internal layouts exist only in memory
      return r.error(what + " has unknown ggml type id " + std::to_string(type_id), type_at);
    t.dtype = tr->type;
    if (t.shape[0] % tr->block_size != 0) {
      return r.error(what + " row length " + std::to_string(t.shape[0]) + " is not a multiple of the " +
                         tr->name + " block size " + std::to_string(tr->block_size),
                     info_at);
    }
    uint64_t row_bytes = 0, nbytes = 0;
    const uint64_t rows = n_elements / static_cast<uint64_t>(t.shape[0]);
    if (mul_overflow_u64(static_cast<uint64_t>(t.shape[0] / tr->block_size), tr->block_bytes, &row_bytes) ||
        mul_overflow_u64(row_bytes, rows, &nbytes) || nbytes > f.size_) {
      return r.error(what + " data size (" + std::to_string(n_elements) + " " + tr->name +
                         " elements) is larger than the whole file (" + std::to_string(f.size_) + " bytes)",
                     info_at);
    }
    t.nbytes = static_cast<size_t>(nbytes);
    const size_t offset_at = r.pos();
    MODU_RETURN_IF_ERROR(r.read(&t.offset, (what + " data offset").c_str()));
    if (t.offset % f.alignment_ != 0) {
      return r.error(what + " data offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                         std::to_string(f.alignment_),
                     offset_at);
    }
    offset_field_at.push_back(offset_at);
    f.tensor_index_.emplace(t.name, f.tensors_.size());
    f.tensors_.push_back(std::move(t));
  }

  // Data section: starts at the next multiple of the alignment after the tensor infos. A file
  // without tensor data may end before that point (llama.cpp writes vocab-only files that way).
  uint64_t data_offset = 0;
  const uint64_t header_end = r.pos();
  if (add_overflow_u64(header_end, f.alignment_ - 1, &data_offset)) {
    return r.error("alignment " + std::to_string(f.alignment_) + " pushes the data section past 2^64", header_end);
  }
  data_offset -= data_offset % f.alignment_;
  f.data_offset_ = data_offset;
  for (size_t i = 0; i < f.tensors_.size(); ++i) {
    GgufTensor& t = f.tensors_[i];
    uint64_t begin = 0, end = 0;
    if (add_overflow_u64(data_offset, t.offset, &begin) || add_overflow_u64(begin, t.nbytes, &end) ||
        end > f.size_) {
      return r.error("tensor '" + t.name + "' data [" + std::to_string(t.offset) + ", +" +
                         std::to_string(t.nbytes) + ") relative to the data section at " +
                         std::to_string(data_offset) + " extends past the end of the file (" +
                         std::to_string(f.size_) + " bytes; truncated?)",
                     offset_field_at[i]);
    }
    t.data = data + begin;
  }
  return f;
}

Result<GgufFile> GgufFile::from_parts(std::string name, std::vector<std::pair<std::string, GgufValue>> metadata,
                                      std::vector<GgufTensor> tensors, std::shared_ptr<const void> owner) {
  GgufFile f;
  f.name_ = std::move(name);
  f.version_ = 3;
  f.owner_ = std::move(owner);
  for (auto& [key, value] : metadata) {
    if (f.kv_index_.count(key) != 0) return corrupt(f.name_ + ": duplicate metadata key '" + key + "'");
    f.kv_index_.emplace(key, f.kv_.size());
    f.kv_.emplace_back(std::move(key), std::move(value));
  }
  for (GgufTensor& t : tensors) {
    if (f.tensor_index_.count(t.name) != 0) return corrupt(f.name_ + ": duplicate tensor name '" + t.name + "'");
    const DTypeTraits* tr = dtype_traits(t.dtype);
    if (tr == nullptr || t.shape.empty() || t.shape.size() > kMaxDims)
      return corrupt(f.name_ + ": tensor '" + t.name + "' has an unusable dtype or rank");
    uint64_t n = 1;
    for (int64_t ne : t.shape) {
      if (ne <= 0 || mul_overflow_u64(n, static_cast<uint64_t>(ne), &n) ||
          n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return corrupt(f.name_ + ": tensor '" + t.name + "' has an invalid shape");
    }
    if (t.shape[0] % tr->block_size != 0 ||
        dtype_row_bytes(t.dtype, t.shape[0]) * (n / static_cast<uint64_t>(t.shape[0])) != t.nbytes)
      return corrupt(f.name_ + ": tensor '" + t.name + "' byte size " + std::to_string(t.nbytes) +
                     " does not match its dtype and shape");
    f.tensor_index_.emplace(t.name, f.tensors_.size());
    f.tensors_.push_back(std::move(t));
  }
  return f;
}

Result<GgufFile> GgufFile::open(const std::string& path) {
  Result<MappedFile> m = MappedFile::open(path);
  if (!m.ok()) return m.status();
  auto map = std::make_shared<MappedFile>(std::move(m).value());
  Result<GgufFile> f = parse(map->data(), map->size(), path);
  if (!f.ok()) return f.status();
  GgufFile file = std::move(f).value();
  file.map_ = std::move(map);
  return file;
}

}  // namespace modu
