// fuzz_audit: the audit-log verifier and reader (`modu audit verify/show`) on arbitrary file
// contents: whatever the bytes, they report (never crash, never loop), and a log that verifies
// must have no error issue and consistent counts.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "modu/trust/audit_log.h"

namespace {

const std::string& log_path() {
  static const std::string path = [] {
    char dir[] = "/tmp/modu_fuzz_audit_XXXXXX";
    if (!::mkdtemp(dir)) std::abort();
    return std::string(dir) + "/audit.jsonl";
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = log_path();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), (std::streamsize)size);
  }
  auto r = modu::trust::verify_audit_log(path);
  if (r.ok()) {
    if (r->ok() && r->records > 0 && (r->first_seq < 0 || r->last_seq < r->first_seq)) std::abort();
    for (const auto& i : r->issues)
      if (i.message.empty() || i.kind.empty()) std::abort();
  }
  auto recs = modu::trust::read_audit_log(path, {});
  if (recs.ok() && r.ok() && (int64_t)recs->size() < r->records) std::abort();  // show sees every record verify counted
  return 0;
}
