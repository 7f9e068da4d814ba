// Ed25519 signing keys (OpenSSL) for the audit log's checkpoints: PEM files on disk, raw 32-byte
// public keys in records, base64 text.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "modu/core/status.h"

namespace modu::trust {

std::string base64_encode(std::string_view bytes);
Result<std::string> base64_decode(std::string_view text);

class SigningKey {
 public:
  // Loads a PEM (PKCS#8) Ed25519 private key; when the file does not exist, creates one (mode
  // 0600) and writes its public key beside it as PATH.pub (PEM, mode 0644).
  static Result<SigningKey> load_or_create(const std::string& path);
  static Result<SigningKey> generate();  // in memory only (tests)
  std::string sign(std::string_view message) const;  // 64-byte signature
  std::string public_raw() const;                     // 32 bytes
  std::string key_id() const;                         // "ed25519:" + 16 hex digits of SHA-256(public)
  ~SigningKey();
  SigningKey(SigningKey&&) noexcept;
  SigningKey& operator=(SigningKey&&) noexcept;

 private:
  SigningKey() = default;
  void* pkey_ = nullptr;  // EVP_PKEY*
};

// The key id of a raw 32-byte public key.
std::string key_id_of(std::string_view public_raw);
// Reads a public key from a PEM file (public or private key): the raw 32 bytes.
Result<std::string> load_public_raw(const std::string& path);
// Whether `signature` is a valid Ed25519 signature of `message` under the raw public key.
bool verify_signature(std::string_view public_raw, std::string_view message, std::string_view signature);

}  // namespace modu::trust
