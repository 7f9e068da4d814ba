// Append-only JSON Lines record of every tool call the agent decided on (what, who approved, result).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "modu/core/status.h"
#include "modu/trust/audit_log.h"
#include "modu/trust/digest.h"

namespace modu::agent {

struct ActionRecord {
  std::string time;  // ISO 8601 UTC ("2025-01-31T12:00:00.123Z"); filled by append() if empty
  std::string tool, source;
  nlohmann::json arguments;
  bool approved = false;
  std::string decided_by;
  bool is_error = false;
  std::string result_sha256;  // of the result text
  size_t result_bytes = 0;
  double duration_s = 0;
};

nlohmann::json to_json(const ActionRecord& r);

// One JSON object per line. Each append is a single write(2) of the whole line on an O_APPEND
// descriptor, under a mutex, so lines from threads (and processes) never interleave. With an
// audit log, every record also goes there (kind "action", hash-chained and signed).
class ActionLog {
 public:
  // Opens (creating the file, mode 0600) for appending. The folder must exist. `path` may be
  // empty when `audit` is given: then the records go to the audit log only.
  static Result<ActionLog> open(const std::string& path, std::shared_ptr<trust::AuditLog> audit = nullptr);

  Status append(ActionRecord r);
  const std::string& path() const { return path_; }

 private:
  struct Fd;
  std::string path_;
  std::shared_ptr<trust::AuditLog> audit_;
  std::shared_ptr<Fd> fd_;
  std::shared_ptr<std::mutex> mu_;
};

// Lower-case hex SHA-256, and now as ISO 8601 UTC with milliseconds (from the trust layer).
using trust::sha256_hex;
using trust::utc_now_iso8601;

}  // namespace modu::agent
