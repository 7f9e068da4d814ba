// GGUF writer: builds GGUF v3 files (ordered metadata, aligned tensor data) in memory or atomically on disk.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <string>

#include "modu/gguf/gguf.h"

namespace modu {

namespace {

constexpr const char* kAlignmentKey = "general.alignment";
constexpr uint32_t kVersion = 3;
constexpr uint32_t kMaxDims = 4;

bool is_pow2(uint64_t a) { return a != 0 && (a & (a - 1)) == 0; }
uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

class Encoder {
 public:
  explicit Encoder(std::vector<uint8_t>* out) : out_(out) {}
  template <typename T>
  void put(T v) {
    const size_t n = out_->size();
    out_->resize(n + sizeof(T));
    std::memcpy(out_->data() + n, &v, sizeof(T));  // little-endian host (the reader asserts it)
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    out_->insert(out_->end(), s.begin(), s.end());
  }
  void put_value(const GgufValue& v) {
    switch (v.type()) {
      case GgufType::UINT8: put<uint8_t>(static_cast<uint8_t>(*v.as_uint())); return;
      case GgufType::INT8: put<int8_t>(static_cast<int8_t>(*v.as_int())); return;
      case GgufType::UINT16: put<uint16_t>(static_cast<uint16_t>(*v.as_uint())); return;
      case GgufType::INT16: put<int16_t>(static_cast<int16_t>(*v.as_int())); return;
      case GgufType::UINT32: put<uint32_t>(static_cast<uint32_t>(*v.as_uint())); return;
      case GgufType::INT32: put<int32_t>(static_cast<int32_t>(*v.as_int())); return;
      case GgufType::UINT64: put<uint64_t>(*v.as_uint()); return;
      case GgufType::INT64: put<int64_t>(*v.as_int()); return;
      case GgufType::FLOAT32: put<float>(static_cast<float>(*v.as_float())); return;
      case GgufType::FLOAT64: put<double>(*v.as_float()); return;
      case GgufType::BOOL: put<uint8_t>(*v.as_bool() ? 1 : 0); return;
      case GgufType::STRING: put_string(*v.as_string()); return;
      case GgufType::ARRAY:
        put<uint32_t>(static_cast<uint32_t>(v.array_type()));
        put<uint64_t>(v.size());
        for (const GgufValue& e : v.elems()) put_value(e);
        return;
    }
    MODU_CHECK_MSG(false, "GgufValue with an invalid type");
  }
  void pad_to(uint64_t alignment) { out_->resize(align_up(out_->size(), alignment), 0); }

 private:
  std::vector<uint8_t>* out_;
};

// Checks a tensor's name, shape and dtype and returns its byte size.
Result<size_t> tensor_bytes(const std::string& name, DType dtype, const std::vector<int64_t>& shape) {
  const std::string what = "tensor '" + name + "'";
  if (name.empty()) return invalid_argument("tensor name is empty");
  const DTypeTraits* tr = dtype_traits(dtype);
  if (tr == nullptr) {
    return invalid_argument(what + ": unknown dtype id " + std::to_string(static_cast<uint32_t>(dtype)));
  }
  if (shape.empty() || shape.size() > kMaxDims) {
    return invalid_argument(what + ": shape has " + std::to_string(shape.size()) + " dimensions (must be 1..4)");
  }
  int64_t n = 1;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] <= 0) {
      return invalid_argument(what + ": dimension " + std::to_string(d) + " is " + std::to_string(shape[d]) +
                              " (must be >= 1)");
    }
    if (__builtin_mul_overflow(n, shape[d], &n)) return invalid_argument(what + ": element count overflows int64");
  }
  if (shape[0] % tr->block_size != 0) {
    return invalid_argument(what + ": row length " + std::to_string(shape[0]) + " is not a multiple of the " +
                            tr->name + " block size " + std::to_string(tr->block_size));
  }
  size_t bytes = 0;
  if (__builtin_mul_overflow(dtype_row_bytes(dtype, shape[0]), static_cast<size_t>(n / shape[0]), &bytes)) {
    return invalid_argument(what + ": byte size overflows");
  }
  return bytes;
}

Status os_error(const std::string& what, const std::string& path, int err) {
  return io_error("cannot " + what + " '" + path + "': " + std::strerror(err));
}

Status write_all(int fd, const uint8_t* p, size_t n, const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return os_error("write", path, errno);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

}  // namespace

void GgufWriter::set(const std::string& key, GgufValue value) {
  if (key == kAlignmentKey) {
    // The alignment key controls the layout, so it must be a power-of-two uint32 (a bug otherwise).
    MODU_CHECK_MSG(value.type() == GgufType::UINT32 && is_pow2(*value.as_uint()),
                   "general.alignment must be a power-of-two uint32");
    alignment_ = static_cast<uint32_t>(*value.as_uint());
  }
  for (auto& kv : kv_) {
    if (kv.first == key) {
      kv.second = std::move(value);
      return;
    }
  }
  kv_.emplace_back(key, std::move(value));
}

void GgufWriter::set_alignment(uint32_t alignment) { set(kAlignmentKey, GgufValue::u32(alignment)); }

Status GgufWriter::add_tensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                              const void* data, size_t nbytes) {
  MODU_ASSIGN_OR_RETURN(const size_t expected, tensor_bytes(name, dtype, shape));
  for (const Pending& p : tensors_)
    if (p.name == name) return invalid_argument("duplicate tensor name '" + name + "'");
  if (nbytes != expected) {
    return invalid_argument("tensor '" + name + "': " + std::to_string(nbytes) + " bytes given but a " +
                            dtype_name(dtype) + " tensor of this shape needs " + std::to_string(expected));
  }
  if (data == nullptr) return invalid_argument("tensor '" + name + "': data is null");
  const uint8_t* p = static_cast<const uint8_t*>(data);
  tensors_.push_back(Pending{name, dtype, shape, std::vector<uint8_t>(p, p + nbytes)});
  return Status::Ok();
}

Status GgufWriter::add_tensor_f32(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                                  const float* data) {
  MODU_ASSIGN_OR_RETURN(const size_t nbytes, tensor_bytes(name, dtype, shape));
  const DTypeTraits* tr = dtype_traits(dtype);
  if (tr->quantize == nullptr) {
    return invalid_argument("tensor '" + name + "': modu cannot produce " + tr->name +
                            " data (no quantize function for this dtype)");
  }
  if (data == nullptr) return invalid_argument("tensor '" + name + "': data is null");
  const int64_t ne0 = shape[0];
  const size_t row_bytes = dtype_row_bytes(dtype, ne0);
  const size_t rows = nbytes / row_bytes;
  std::vector<uint8_t> bytes(nbytes);
  for (size_t r = 0; r < rows; ++r) tr->quantize(data + r * static_cast<size_t>(ne0), bytes.data() + r * row_bytes, ne0);
  return add_tensor(name, dtype, shape, bytes.data(), bytes.size());
}

namespace {

// Where everything goes: the encoded header (padded to the alignment) and each tensor's offset
// relative to the data section (each a multiple of the alignment; the last one is padded too).
struct Layout {
  std::vector<uint8_t> header;
  std::vector<uint64_t> offsets;
  uint64_t data_size = 0;
};

template <typename PendingT>
Layout make_layout(uint32_t alignment, const std::vector<std::pair<std::string, GgufValue>>& kv,
                   const std::vector<PendingT>& tensors) {
  Layout l;
  Encoder e(&l.header);
  l.header.insert(l.header.end(), {'G', 'G', 'U', 'F'});
  e.put<uint32_t>(kVersion);
  e.put<uint64_t>(tensors.size());
  e.put<uint64_t>(kv.size());
  for (const auto& [key, value] : kv) {
    e.put_string(key);
    e.put<uint32_t>(static_cast<uint32_t>(value.type()));
    e.put_value(value);
  }
  for (const auto& t : tensors) {
    l.offsets.push_back(l.data_size);
    e.put_string(t.name);
    e.put<uint32_t>(static_cast<uint32_t>(t.shape.size()));
    for (int64_t d : t.shape) e.put<int64_t>(d);
    e.put<uint32_t>(static_cast<uint32_t>(t.dtype));
    e.put<uint64_t>(l.data_size);
    l.data_size = align_up(l.data_size + t.bytes.size(), alignment);
  }
  // The data section starts aligned; without tensors there is none, and padding to an alignment
  // read from a file (up to 2^31) would write up to 2 GiB of zeros for nothing.
  if (!tensors.empty()) e.pad_to(alignment);
  return l;
}

}  // namespace

std::vector<uint8_t> GgufWriter::serialize() const {
  Layout l = make_layout(alignment_, kv_, tensors_);
  std::vector<uint8_t> out = std::move(l.header);
  const size_t data_start = out.size();
  out.resize(data_start + l.data_size, 0);
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const std::vector<uint8_t>& b = tensors_[i].bytes;
    if (!b.empty()) std::memcpy(out.data() + data_start + l.offsets[i], b.data(), b.size());
  }
  return out;
}

Status GgufWriter::write(const std::string& path) const {
  // Header first, then each tensor streamed from its own buffer (no second copy of the weights).
  const Layout l = make_layout(alignment_, kv_, tensors_);
  const std::vector<uint8_t>& header = l.header;
  const std::vector<uint64_t>& offsets = l.offsets;

  // Temp file in the same directory so that rename() is atomic.
  std::string tmpl = path + ".tmp.XXXXXX";
  const int fd = ::mkstemp(tmpl.data());
  if (fd < 0) return os_error("create a temporary file next to", path, errno);
  const std::string tmp = tmpl;
  auto fail = [&](Status s) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  };
  if (::fchmod(fd, 0644) != 0) return fail(os_error("chmod", tmp, errno));
  Status s = write_all(fd, header.data(), header.size(), tmp);
  if (!s.ok()) return fail(s);
  const std::vector<uint8_t> zeros(alignment_, 0);
  uint64_t pos = 0;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const std::vector<uint8_t>& b = tensors_[i].bytes;
    s = write_all(fd, b.data(), b.size(), tmp);
    if (!s.ok()) return fail(s);
    pos = offsets[i] + b.size();
    const uint64_t pad = align_up(pos, alignment_) - pos;
    s = write_all(fd, zeros.data(), static_cast<size_t>(pad), tmp);
    if (!s.ok()) return fail(s);
  }
  if (::fsync(fd) != 0) return fail(os_error("fsync", tmp, errno));
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return os_error("close", tmp, err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return os_error("rename '" + tmp + "' to", path, err);
  }
  // Make the rename itself durable.
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

}  // namespace modu
