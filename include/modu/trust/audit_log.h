// The tamper-evident audit log: an append-only JSON Lines file in which every record carries the
// SHA-256 of the record before it and of itself, with Ed25519-signed checkpoints, durable writes
// (one write(2) + fdatasync per record, under flock so several processes may share a log),
// rotation by size, and a verifier that says which record was edited, deleted, inserted or moved.
//
// One record (one line; keys in this order):
//   {"seq":N,"time":"...","kind":"request|action|checkpoint|open|close|recovery", <fields>,
//    "prev":"<hash of record N-1>","hash":"<SHA-256 of this line up to the ',"hash"' key>"}
// A checkpoint adds "public_key" (base64 raw Ed25519), "key_id" and "signature" over
// "modu-audit-checkpoint-v1\n<seq>\n<prev>\n<time>".
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "modu/core/status.h"

namespace modu::trust {

struct AuditOptions {
  std::string path;                  // the current file; rotated files are PATH.000001, PATH.000002, ...
  std::string key_path;              // Ed25519 private key (PEM); "" : PATH.key. Created when missing.
  uint64_t max_bytes = 64ull << 20;  // rotate once the current file is larger (0: never)
  int checkpoint_every = 64;         // a signed checkpoint after this many records (and at close)
  bool sync = true;                  // fdatasync each record before append() returns
};

class AuditLog {
 public:
  // Opens the log for appending (creating the file, mode 0600, and the key when missing). A torn
  // last line left by a writer that was killed mid-write is cut off and noted in a "recovery"
  // record with its length and digest; then an "open" record names this writer (pid, version).
  static Result<std::unique_ptr<AuditLog>> open(AuditOptions opts);
  ~AuditLog();  // close()

  // Appends one record of `kind` with `fields` (a JSON object whose keys must not be seq, time,
  // kind, prev or hash). Thread-safe; other processes appending to the same path are serialized
  // by flock. Returns once the record is on disk (when opts.sync).
  Status append(const std::string& kind, const nlohmann::ordered_json& fields);
  // A signed checkpoint now.
  Status checkpoint();
  // A final "close" record and checkpoint; later appends fail. Idempotent.
  Status close();

  const std::string& path() const;
  std::string key_id() const;

  struct Impl;

 private:
  explicit AuditLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct AuditIssue {
  std::string file;
  int64_t line = 0;     // 1-based line in `file` (0: the file as a whole)
  int64_t seq = -1;     // the record's seq when known
  bool error = true;    // false: a note (e.g. a torn last line, records not yet signed)
  // "edited", "deleted", "inserted", "reordered", "chain", "signature", "garbage", "torn", "unsigned", "truncated-history"
  std::string kind;
  std::string message;
};

struct AuditReport {
  int64_t files = 0, records = 0, checkpoints = 0;
  int64_t first_seq = -1, last_seq = -1;
  int64_t last_signed_seq = -1;  // the newest record covered by a valid checkpoint signature
  std::string key_source;        // where the trusted public key came from
  std::vector<AuditIssue> issues;
  bool ok() const;               // no issue is an error
};

// Verifies PATH and its rotated files (PATH.NNNNNN, oldest first). The checkpoint signatures are
// checked against `pubkey_path` (a PEM public or private key) when given, else PATH.key.pub or
// PATH.key beside the log, else the key the log itself carries (said in key_source: that only
// proves consistency, not who wrote it). Fails only when the log cannot be read at all.
Result<AuditReport> verify_audit_log(const std::string& path, const std::string& pubkey_path = "");

struct AuditFilter {
  std::string tenant, kind, endpoint;  // "" : any
  std::optional<std::chrono::system_clock::time_point> since, until;
};

// The records of PATH and its rotated files that match, oldest first (lines that do not parse
// are skipped: verify reports them).
Result<std::vector<nlohmann::ordered_json>> read_audit_log(const std::string& path, const AuditFilter& filter);

// The files of a log, oldest first: PATH.000001 ... then PATH (those that exist).
std::vector<std::string> audit_log_files(const std::string& path);

}  // namespace modu::trust
