// libFuzzer target: GgufFile::parse must never crash, and anything it accepts must round-trip
// through GgufWriter (serialize + parse gives the same metadata and tensors).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "modu/gguf/gguf.h"

namespace {

void require(bool cond) {
  if (!cond) __builtin_trap();
}

// Compares two values structurally (floats bitwise, so NaN payloads count).
bool same(const modu::GgufValue& a, const modu::GgufValue& b) {
  if (a.type() != b.type()) return false;
  if (a.is_array()) {
    if (a.array_type() != b.array_type() || a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (!same(a.elems()[i], b.elems()[i])) return false;
    return true;
  }
  if (a.is_string()) return *a.as_string() == *b.as_string();
  if (a.is_float()) {
    const double x = *a.as_float(), y = *b.as_float();
    return std::memcmp(&x, &y, sizeof x) == 0;
  }
  if (a.is_integer()) return a.as_int() == b.as_int() && a.as_uint() == b.as_uint();
  return a.as_bool() == b.as_bool();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto r = modu::GgufFile::parse(data, size, "fuzz.gguf");
  if (!r.ok()) {
    require(r.status().code() == modu::StatusCode::kCorrupt && !r.status().message().empty());
    return 0;
  }
  const modu::GgufFile& f = *r;

  // Exercise the getters on every key (errors are fine, crashes are not).
  for (const auto& [key, value] : f.metadata()) {
    require(f.find(key) == &value);
    (void)f.get_int(key);
    (void)f.get_float(key);
    (void)f.get_bool(key);
    (void)f.get_string(key);
  }

  // Re-encode and re-parse.
  modu::GgufWriter w;
  for (const auto& [key, value] : f.metadata()) w.set(key, value);
  uint64_t sum = 0;
  for (const modu::GgufTensor& t : f.tensors()) {
    require(f.tensor(t.name) == &t);
    for (size_t i = 0; i < t.nbytes; ++i) sum += t.data[i];  // every byte of every view is readable
    require(w.add_tensor(t.name, t.dtype, t.shape, t.data, t.nbytes).ok());
  }
  const std::vector<uint8_t> bytes = w.serialize();
  auto r2 = modu::GgufFile::parse(bytes.data(), bytes.size(), "roundtrip.gguf");
  require(r2.ok());
  const modu::GgufFile& g = *r2;
  require(g.alignment() == f.alignment());
  require(g.metadata().size() == f.metadata().size());
  for (size_t i = 0; i < f.metadata().size(); ++i) {
    require(g.metadata()[i].first == f.metadata()[i].first);
    require(same(g.metadata()[i].second, f.metadata()[i].second));
  }
  require(g.tensors().size() == f.tensors().size());
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    const modu::GgufTensor& a = f.tensors()[i];
    const modu::GgufTensor& b = g.tensors()[i];
    require(a.name == b.name && a.dtype == b.dtype && a.shape == b.shape && a.nbytes == b.nbytes);
    require(std::memcmp(a.data, b.data, a.nbytes) == 0);
  }
  return static_cast<int>(sum & 0);
}
