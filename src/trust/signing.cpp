// Ed25519 keys through OpenSSL's EVP interface (Debian's libssl): PEM files, raw public keys,
// signatures, and base64.
#include "modu/trust/signing.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "modu/trust/digest.h"

namespace modu::trust {

namespace {

EVP_PKEY* as_pkey(void* p) { return static_cast<EVP_PKEY*>(p); }

const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

}  // namespace

std::string base64_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = ((uint8_t)in[i] << 16) | ((uint8_t)in[i + 1] << 8) | (uint8_t)in[i + 2];
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  if (i < in.size()) {
    const uint32_t v = ((uint8_t)in[i] << 16) | (i + 1 < in.size() ? (uint8_t)in[i + 1] << 8 : 0);
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += i + 1 < in.size() ? kB64[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

Result<std::string> base64_decode(std::string_view in) {
  if (in.size() % 4 != 0) return invalid_argument("base64 text length is not a multiple of 4");
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (size_t i = 0; i < in.size(); i += 4) {
    uint32_t v = 0;
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = in[i + k];
      int d;
      if (c == '=' && i + 4 == in.size() && k >= 2) {
        d = 0;
        ++pad;
      } else {
        if (pad) return invalid_argument("base64 padding in the middle");
        const char* p = std::strchr(kB64, c);
        if (!p || c == 0) return invalid_argument("invalid base64 character");
        d = (int)(p - kB64);
      }
      v = (v << 6) | (uint32_t)d;
    }
    out += (char)(v >> 16);
    if (pad < 2) out += (char)((v >> 8) & 255);
    if (pad < 1) out += (char)(v & 255);
  }
  return out;
}

SigningKey::~SigningKey() { EVP_PKEY_free(as_pkey(pkey_)); }
SigningKey::SigningKey(SigningKey&& o) noexcept : pkey_(o.pkey_) { o.pkey_ = nullptr; }
SigningKey& SigningKey::operator=(SigningKey&& o) noexcept {
  std::swap(pkey_, o.pkey_);
  return *this;
}

Result<SigningKey> SigningKey::generate() {
  EVP_PKEY* pkey = nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr);
  const bool ok = ctx && EVP_PKEY_keygen_init(ctx) == 1 && EVP_PKEY_keygen(ctx, &pkey) == 1;
  EVP_PKEY_CTX_free(ctx);
  if (!ok) return internal_error("OpenSSL could not generate an Ed25519 key");
  SigningKey k;
  k.pkey_ = pkey;
  return k;
}

Result<SigningKey> SigningKey::load_or_create(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    // Written whole to a temporary file, then linked into place: a process that starts at the
    // same moment either wins the link or loads the complete key the other one linked.
    MODU_ASSIGN_OR_RETURN(SigningKey k, generate());
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    const mode_t old = ::umask(077);
    FILE* f = std::fopen(tmp.c_str(), "w");
    ::umask(old);
    if (!f) return io_error("cannot create the audit signing key " + path + ": " + std::strerror(errno));
    const bool ok = PEM_write_PrivateKey(f, as_pkey(k.pkey_), nullptr, nullptr, 0, nullptr, nullptr) == 1 &&
                    std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
    std::fclose(f);
    if (!ok) {
      std::remove(tmp.c_str());
      return io_error("cannot write the audit signing key " + path);
    }
    const int linked = ::link(tmp.c_str(), path.c_str());
    const int link_errno = errno;
    std::remove(tmp.c_str());
    if (linked == 0) {
      const std::string pub = path + ".pub", pub_tmp = pub + ".tmp." + std::to_string(::getpid());
      FILE* pf = std::fopen(pub_tmp.c_str(), "w");
      if (!pf) return io_error("cannot write the audit public key " + pub + ": " + std::strerror(errno));
      const bool pok = PEM_write_PUBKEY(pf, as_pkey(k.pkey_)) == 1;
      std::fclose(pf);
      if (!pok || std::rename(pub_tmp.c_str(), pub.c_str()) != 0) return io_error("cannot write the audit public key " + pub);
      return k;
    }
    if (link_errno != EEXIST)
      return io_error("cannot create the audit signing key " + path + ": " + std::strerror(link_errno));
  }
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return io_error("cannot read the audit signing key " + path + ": " + std::strerror(errno));
  EVP_PKEY* pkey = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (!pkey) return corrupt(path + " is not a PEM private key (expected an Ed25519 key, as modu creates)");
  if (EVP_PKEY_id(pkey) != EVP_PKEY_ED25519) {
    EVP_PKEY_free(pkey);
    return invalid_argument(path + " holds a private key that is not Ed25519");
  }
  SigningKey k;
  k.pkey_ = pkey;
  return k;
}

std::string SigningKey::sign(std::string_view message) const {
  unsigned char sig[64];
  size_t len = sizeof sig;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok = ctx && EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, as_pkey(pkey_)) == 1 &&
                  EVP_DigestSign(ctx, sig, &len, (const unsigned char*)message.data(), message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  MODU_CHECK_MSG(ok && len == 64, "OpenSSL Ed25519 signing failed");
  return std::string((const char*)sig, len);
}

std::string SigningKey::public_raw() const {
  unsigned char raw[32];
  size_t len = sizeof raw;
  MODU_CHECK_MSG(EVP_PKEY_get_raw_public_key(as_pkey(pkey_), raw, &len) == 1 && len == 32, "Ed25519 public key");
  return std::string((const char*)raw, len);
}

std::string SigningKey::key_id() const { return key_id_of(public_raw()); }

std::string key_id_of(std::string_view public_raw) { return "ed25519:" + sha256_hex(public_raw).substr(0, 16); }

Result<std::string> load_public_raw(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return io_error("cannot read the public key " + path + ": " + std::strerror(errno));
  EVP_PKEY* pkey = PEM_read_PUBKEY(f, nullptr, nullptr, nullptr);
  if (!pkey) {
    std::rewind(f);
    pkey = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  }
  std::fclose(f);
  if (!pkey) return corrupt(path + " holds no PEM public or private key");
  unsigned char raw[32];
  size_t len = sizeof raw;
  const bool ok = EVP_PKEY_id(pkey) == EVP_PKEY_ED25519 && EVP_PKEY_get_raw_public_key(pkey, raw, &len) == 1 && len == 32;
  EVP_PKEY_free(pkey);
  if (!ok) return invalid_argument(path + " is not an Ed25519 key");
  return std::string((const char*)raw, len);
}

bool verify_signature(std::string_view public_raw, std::string_view message, std::string_view signature) {
  if (public_raw.size() != 32 || signature.size() != 64) return false;
  EVP_PKEY* pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, (const unsigned char*)public_raw.data(), 32);
  if (!pkey) return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok = ctx && EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, pkey) == 1 &&
                  EVP_DigestVerify(ctx, (const unsigned char*)signature.data(), signature.size(),
                                   (const unsigned char*)message.data(), message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pkey);
  return ok;
}

}  // namespace modu::trust
