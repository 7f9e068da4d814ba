// Tests for digests (reference vectors, model digest cache), provenance labels, base64 and Ed25519.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "modu/trust/digest.h"
#include "modu/trust/provenance.h"
#include "modu/trust/signing.h"

namespace modu::trust {
namespace {

namespace fs = std::filesystem;

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("modu_trust_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write(const fs::path& p, const std::string& s) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << s;
}

TEST(Digest, Sha256ReferenceVectors) {  // FIPS 180-2 examples
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 h;
  const std::string a(1000, 'a');
  for (int i = 0; i < 1000; ++i) h.update(a.data(), a.size());
  EXPECT_EQ(h.hex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");  // one million 'a'
}

TEST(Digest, FileAndModelDigests) {
  const fs::path d = temp_dir("model");
  ::setenv("MODU_CACHE_DIR", (d / "cache").c_str(), 1);
  write(d / "m.gguf", "abc");
  EXPECT_EQ(*file_sha256((d / "m.gguf").string()), sha256_hex("abc"));
  EXPECT_EQ(*model_sha256((d / "m.gguf").string()), sha256_hex("abc"));
  EXPECT_TRUE(fs::exists(d / "cache" / "sha256-cache.json"));
  // A changed file (size and mtime) is hashed again, not served from the cache.
  write(d / "m.gguf", "abcd");
  EXPECT_EQ(*model_sha256((d / "m.gguf").string()), sha256_hex("abcd"));
  // A folder: names and digests of its files, sorted; independent of the folder's own path.
  fs::create_directories(d / "hf" / "sub");
  write(d / "hf" / "config.json", "{}");
  write(d / "hf" / "sub" / "w.safetensors", "xyz");
  const std::string expect =
      sha256_hex(std::string("config.json") + '\0' + sha256_hex("{}") + "\n" + "sub/w.safetensors" + '\0' + sha256_hex("xyz") + "\n");
  EXPECT_EQ(*model_sha256((d / "hf").string()), expect);
  fs::rename(d / "hf", d / "hf2");
  EXPECT_EQ(*model_sha256((d / "hf2").string()), expect);
  EXPECT_FALSE(model_sha256((d / "missing").string()).ok());
  // A cache file with a planted wrong digest for this identity is used as is (it is a cache),
  // but a damaged cache file is ignored.
  write(d / "cache" / "sha256-cache.json", "not json");
  write(d / "n.gguf", "n");
  EXPECT_EQ(*model_sha256((d / "n.gguf").string()), sha256_hex("n"));
  ::unsetenv("MODU_CACHE_DIR");
  fs::remove_all(d);
}

TEST(Digest, Iso8601) {
  const auto t = parse_utc_iso8601("2026-12-06T12:34:56.789Z");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(utc_iso8601(*t), "2026-12-06T12:34:56.789Z");
  EXPECT_EQ(utc_iso8601(*parse_utc_iso8601("2026-01-22")), "2026-01-22T00:00:00.000Z");
  EXPECT_EQ(utc_iso8601(*parse_utc_iso8601("2026-01-22T09:30")), "2026-01-22T09:30:00.000Z");
  EXPECT_FALSE(parse_utc_iso8601("yesterday").has_value());
  EXPECT_FALSE(parse_utc_iso8601("2026-13-01").has_value());
  EXPECT_FALSE(parse_utc_iso8601("2026-01-01T10:00:00+09:00").has_value());
  EXPECT_FALSE(parse_utc_iso8601("2999-01-01").has_value());  // beyond what system_clock holds
  EXPECT_TRUE(parse_utc_iso8601("2200-01-01").has_value());
}

TEST(Provenance, JsonAndHeader) {
  Provenance p;
  p.model = "tiny \"q\" 모델";
  p.model_sha256 = std::string(64, 'a');
  const auto j = provenance_json(p, "2026-12-06T00:00:00.000Z");
  EXPECT_EQ(j["ai_generated"], true);
  EXPECT_EQ(j["model"], p.model);
  EXPECT_EQ(j["model_sha256"], p.model_sha256);
  EXPECT_EQ(j["generator"], std::string("modu/") + modu_version());
  EXPECT_TRUE(j["watermark_key_id"].is_null());
  EXPECT_TRUE(j["operator"].is_null());
  EXPECT_NE(j["notice"].get<std::string>().find("인공지능"), std::string::npos);
  EXPECT_NE(j["notice"].get<std::string>().find("artificial intelligence"), std::string::npos);
  EXPECT_EQ(j["created"], "2026-12-06T00:00:00.000Z");
  p.watermark_key_id = "wm-0123abcd";
  p.operator_name = "Seoul City";
  p.notice = "custom";
  const auto j2 = provenance_json(p, "t");
  EXPECT_EQ(j2["watermark_key_id"], "wm-0123abcd");
  EXPECT_EQ(j2["operator"], "Seoul City");
  EXPECT_EQ(j2["notice"], "custom");
  const std::string h = provenance_header(p);
  for (unsigned char c : h) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << h;
  EXPECT_NE(h.find("sha256=" + p.model_sha256), std::string::npos);
  EXPECT_NE(h.find("watermark=wm-0123abcd"), std::string::npos);
  EXPECT_EQ(h.find("\"q\""), std::string::npos);  // quotes inside the name cannot end the value
}

TEST(Provenance, LanguageFromEnvironment) {
  ::setenv("LC_ALL", "ko_KR.UTF-8", 1);
  EXPECT_EQ(lang_from_env(), Lang::kKorean);
  EXPECT_EQ(visible_label(lang_from_env()), "[AI 생성] ");
  ::setenv("LC_ALL", "en_US.UTF-8", 1);
  EXPECT_EQ(lang_from_env(), Lang::kEnglish);
  ::unsetenv("LC_ALL");
}

TEST(Signing, Base64RoundTrip) {
  for (const std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    EXPECT_EQ(*base64_decode(base64_encode(s)), s);
  }
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_FALSE(base64_decode("Zm8").ok());
  EXPECT_FALSE(base64_decode("Z=8=").ok());
  EXPECT_FALSE(base64_decode("Zm*=").ok());
}

TEST(Signing, Ed25519SignVerifyAndKeyFiles) {
  const fs::path d = temp_dir("keys");
  auto k = SigningKey::load_or_create((d / "k.pem").string());
  ASSERT_TRUE(k.ok()) << k.status().to_string();
  EXPECT_EQ(fs::status(d / "k.pem").permissions() & fs::perms::others_read, fs::perms::none);
  ASSERT_TRUE(fs::exists(d / "k.pem.pub"));
  const std::string sig = k->sign("hello");
  EXPECT_EQ(sig.size(), 64u);
  EXPECT_TRUE(verify_signature(k->public_raw(), "hello", sig));
  EXPECT_FALSE(verify_signature(k->public_raw(), "hellO", sig));
  std::string bad = sig;
  bad[3] ^= 1;
  EXPECT_FALSE(verify_signature(k->public_raw(), "hello", bad));
  // Reloaded from the file, and the public key read from either file, are the same key.
  auto k2 = SigningKey::load_or_create((d / "k.pem").string());
  ASSERT_TRUE(k2.ok());
  EXPECT_EQ(k2->public_raw(), k->public_raw());
  EXPECT_EQ(*load_public_raw((d / "k.pem.pub").string()), k->public_raw());
  EXPECT_EQ(*load_public_raw((d / "k.pem").string()), k->public_raw());
  EXPECT_EQ(k->key_id().rfind("ed25519:", 0), 0u);
  write(d / "junk.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
  EXPECT_FALSE(SigningKey::load_or_create((d / "junk.pem").string()).ok());
  EXPECT_FALSE(load_public_raw((d / "junk.pem").string()).ok());
  fs::remove_all(d);
}

}  // namespace
}  // namespace modu::trust
