// SHA-256 digests (OpenSSL EVP), the model-file digest that provenance labels carry (cached by
// path, size and mtime, in memory and on disk), and UTC timestamps in ISO 8601.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "modu/core/status.h"

namespace modu::trust {

// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

// Incremental SHA-256 for large inputs (a model file is hashed in 4 MiB reads).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t n);
  std::string hex();  // finishes; the object cannot be updated afterwards

 private:
  void* ctx_;
};

// SHA-256 of a regular file's bytes.
Result<std::string> file_sha256(const std::string& path);

// The digest that identifies a model: for a file (GGUF) the SHA-256 of its bytes; for a folder
// (Hugging Face) the SHA-256 of the lines "<relative name>\0<sha256 hex>\n" of its regular files
// (config, tokenizer, safetensors; subfolders included, names sorted). Computed once per
// (canonical path, size, mtime): kept in memory for the process and in a small JSON cache file
// ($MODU_CACHE_DIR, else $XDG_CACHE_HOME/modu, else ~/.cache/modu: sha256-cache.json; written
// atomically, best effort) so a restarted server does not hash a 4 GB file again.
Result<std::string> model_sha256(const std::string& path);

// "2026-12-06T12:00:00.123Z"
std::string utc_iso8601(std::chrono::system_clock::time_point t);
std::string utc_now_iso8601();
// Parses "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS[.fff]]" with an optional "Z" (UTC only), years 1970-2200.
std::optional<std::chrono::system_clock::time_point> parse_utc_iso8601(std::string_view s);

}  // namespace modu::trust
