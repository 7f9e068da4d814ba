// libFuzzer target: SafetensorsFile::parse must never crash, every accepted tensor must lie inside
// the buffer, and anything accepted must round-trip through write_safetensors.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "modu/hf/safetensors.h"

namespace {
void require(bool cond) {
  if (!cond) __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = modu::SafetensorsFile::parse(data, size, "fuzz");
  if (!f.ok()) return 0;
  for (const auto& t : f->tensors()) {
    require(t.data >= data && t.data + t.nbytes <= data + size);
    uint8_t sink = 0;  // touch the data so the sanitizers see every page read
    for (size_t i = 0; i < t.nbytes; i += 4096) sink = (uint8_t)(sink ^ t.data[i]);
    asm volatile("" : : "r"(sink));
  }
  auto bytes = modu::write_safetensors(f->tensors(), f->metadata());
  auto g = modu::SafetensorsFile::parse(bytes.data(), bytes.size(), "again");
  require(g.ok() && g->tensors().size() == f->tensors().size() && g->metadata() == f->metadata());
  for (const auto& t : f->tensors()) {
    const auto* u = g->find(t.name);
    require(u != nullptr && u->shape == t.shape && u->dtype == t.dtype && u->nbytes == t.nbytes &&
            (t.nbytes == 0 || std::memcmp(u->data, t.data, t.nbytes) == 0));
  }
  return 0;
}
