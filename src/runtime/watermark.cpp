// Keyed green-list watermark (see watermark.h): SipHash-2-4 as the keyed hash, the detector's
// z-score with each (previous, token) pair counted once, and the normal tail p-value.
#include "modu/runtime/watermark.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>

namespace modu {

namespace {
inline uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }
inline void sipround(uint64_t& v0, uint64_t& v1, uint64_t& v2, uint64_t& v3) {
  v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);
  v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;
  v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;
  v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);
}
}  // namespace

// SipHash-2-4 (Aumasson & Bernstein), little-endian message words, as the reference does.
uint64_t siphash24(uint64_t k0, uint64_t k1, const void* data, size_t len) {
  uint64_t v0 = 0x736f6d6570736575ull ^ k0, v1 = 0x646f72616e646f6dull ^ k1;
  uint64_t v2 = 0x6c7967656e657261ull ^ k0, v3 = 0x7465646279746573ull ^ k1;
  const auto* p = static_cast<const uint8_t*>(data);
  const size_t end = len - len % 8;
  for (size_t i = 0; i < end; i += 8) {
    uint64_t m = 0;
    for (int b = 0; b < 8; ++b) m |= (uint64_t)p[i + b] << (8 * b);
    v3 ^= m;
    sipround(v0, v1, v2, v3);
    sipround(v0, v1, v2, v3);
    v0 ^= m;
  }
  uint64_t last = (uint64_t)(len & 0xff) << 56;
  for (size_t b = 0; b < len % 8; ++b) last |= (uint64_t)p[end + b] << (8 * b);
  v3 ^= last;
  sipround(v0, v1, v2, v3);
  sipround(v0, v1, v2, v3);
  v0 ^= last;
  v2 ^= 0xff;
  for (int r = 0; r < 4; ++r) sipround(v0, v1, v2, v3);
  return v0 ^ v1 ^ v2 ^ v3;
}

WatermarkKey WatermarkKey::from_secret(std::string_view secret) {
  WatermarkKey k;
  // Two SipHash passes under fixed, distinct keys stretch the passphrase into 128 key bits.
  k.k0 = siphash24(0x6d6f64752d776d30ull, 0x6b65792d30000000ull, secret.data(), secret.size());
  k.k1 = siphash24(0x6d6f64752d776d31ull, 0x6b65792d31000000ull, secret.data(), secret.size());
  char buf[16];
  std::snprintf(buf, sizeof buf, "wm-%08x", (unsigned)(siphash24(k.k0, k.k1, "id", 2) >> 32));
  k.id = buf;
  return k;
}

bool watermark_green(const WatermarkKey& key, float gamma, int32_t prev, int32_t token) {
  uint8_t msg[8];
  const uint32_t a = (uint32_t)prev, b = (uint32_t)token;
  for (int i = 0; i < 4; ++i) {
    msg[i] = (uint8_t)(a >> (8 * i));
    msg[4 + i] = (uint8_t)(b >> (8 * i));
  }
  const uint64_t h = siphash24(key.k0, key.k1, msg, sizeof msg);
  return (double)h < (double)gamma * 18446744073709551616.0;  // gamma * 2^64
}

WatermarkDetection detect_watermark(const std::vector<int32_t>& tokens, const WatermarkKey& key, float gamma,
                                    double z_threshold, int64_t min_tokens) {
  WatermarkDetection d;
  std::set<std::pair<int32_t, int32_t>> seen;
  for (size_t i = 1; i < tokens.size(); ++i) {
    if (!seen.insert({tokens[i - 1], tokens[i]}).second) continue;
    ++d.scored;
    d.green += watermark_green(key, gamma, tokens[i - 1], tokens[i]) ? 1 : 0;
  }
  if (d.scored == 0 || gamma <= 0 || gamma >= 1) return d;
  const double t = (double)d.scored;
  d.z = ((double)d.green - gamma * t) / std::sqrt(t * gamma * (1 - gamma));
  d.p_value = 0.5 * std::erfc(d.z / std::sqrt(2.0));
  d.watermarked = d.scored >= min_tokens && d.z >= z_threshold;
  return d;
}

}  // namespace modu
