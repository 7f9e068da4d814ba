// Safetensors header parsing (validating, never crashes on malformed input) and writing.
#include "modu/hf/safetensors.h"

#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

namespace modu {

namespace {
constexpr uint64_t kMaxHeader = uint64_t{100} << 20;
constexpr size_t kMaxDims = 8;
}  // namespace

size_t safetensors_dtype_size(std::string_view d) {
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  if (d == "I8" || d == "U8" || d == "BOOL" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
  return 0;
}

const SafetensorsTensor* SafetensorsFile::find(std::string_view n) const {
  auto it = index_.find(n);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Result<SafetensorsFile> SafetensorsFile::parse(const uint8_t* data, size_t size, std::string name) {
  SafetensorsFile f;
  f.name_ = std::move(name);
  auto bad = [&](const std::string& what) { return corrupt(f.name_ + ": safetensors " + what); };
  if (size < 8) return bad("file is shorter than its 8-byte header size");
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | data[i];
  if (hlen > kMaxHeader || hlen > size - 8)
    return bad("header size " + std::to_string(hlen) + " exceeds the file (" + std::to_string(size) +
               " bytes) or 100 MiB");
  const uint8_t* body = data + 8 + hlen;
  const uint64_t body_size = size - 8 - hlen;
  nlohmann::json h = nlohmann::json::parse(data + 8, data + 8 + hlen, nullptr, /*allow_exceptions=*/false);
  if (h.is_discarded() || !h.is_object()) return bad("header is not a JSON object");
  for (auto it = h.begin(); it != h.end(); ++it) {
    const std::string& key = it.key();
    const nlohmann::json& v = it.value();
    if (key == "__metadata__") {
      if (!v.is_object()) return bad("__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) return bad("__metadata__ value '" + m.key() + "' is not a string");
        f.metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + key + "'";
    if (!v.is_object()) return bad(where + " entry is not an object");
    auto dt = v.find("dtype");
    auto sh = v.find("shape");
    auto off = v.find("data_offsets");
    if (dt == v.end() || !dt->is_string()) return bad(where + " has no string dtype");
    if (sh == v.end() || !sh->is_array() || sh->size() > kMaxDims) return bad(where + " has no shape of <= 8 dims");
    if (off == v.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
        !(*off)[1].is_number_unsigned())
      return bad(where + " has no data_offsets [begin, end]");
    SafetensorsTensor t;
    t.name = key;
    t.dtype = dt->get<std::string>();
    const size_t esize = safetensors_dtype_size(t.dtype);
    if (esize == 0) return bad(where + " has unknown dtype '" + t.dtype + "'");
    uint64_t n = 1;
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned()) return bad(where + " shape has a non-integer or negative dimension");
      const uint64_t dim = d.get<uint64_t>();
      if (dim > (uint64_t{1} << 40) || __builtin_mul_overflow(n, dim, &n) || n > (uint64_t{1} << 50))
        return bad(where + " shape is too large");
      t.shape.push_back((int64_t)dim);
    }
    const uint64_t b = (*off)[0].get<uint64_t>(), e = (*off)[1].get<uint64_t>();
    if (b > e || e > body_size)
      return bad(where + " data_offsets [" + std::to_string(b) + ", " + std::to_string(e) +
                 ") lie outside the data section of " + std::to_string(body_size) + " bytes (truncated?)");
    if (e - b != n * esize)
      return bad(where + " has " + std::to_string(e - b) + " bytes but its shape and dtype need " +
                 std::to_string(n * esize));
    t.data = body + b;
    t.nbytes = (size_t)(e - b);
    if (f.index_.count(key) != 0) return bad("duplicate tensor '" + key + "'");
    f.index_.emplace(key, f.tensors_.size());
    f.tensors_.push_back(std::move(t));
  }
  return f;
}

Result<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  Result<MappedFile> m = MappedFile::open(path);
  if (!m.ok()) return m.status();
  auto map = std::make_shared<MappedFile>(std::move(m).value());
  Result<SafetensorsFile> f = parse(map->data(), map->size(), path);
  if (!f.ok()) return f.status();
  SafetensorsFile out = std::move(f).value();
  out.map_ = std::move(map);
  return out;
}

std::vector<uint8_t> write_safetensors(const std::vector<SafetensorsTensor>& tensors,
                                       const std::map<std::string, std::string>& metadata) {
  nlohmann::json h = nlohmann::json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t pos = 0;
  for (const auto& t : tensors) {
    h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {pos, pos + t.nbytes}}};
    pos += t.nbytes;
  }
  std::string hs = h.dump();
  while ((hs.size() + 8) % 8 != 0) hs.push_back(' ');
  std::vector<uint8_t> out(8 + hs.size() + pos);
  uint64_t hl = hs.size();
  for (int i = 0; i < 8; ++i) out[i] = (uint8_t)(hl >> (8 * i));
  std::memcpy(out.data() + 8, hs.data(), hs.size());
  uint8_t* p = out.data() + 8 + hs.size();
  for (const auto& t : tensors) {  // same order as the offsets above (json object order differs)
    if (t.nbytes) std::memcpy(p, t.data, t.nbytes);
    p += t.nbytes;
  }
  return out;
}

}  // namespace modu
