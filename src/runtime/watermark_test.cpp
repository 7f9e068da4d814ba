// Watermark tests: SipHash-2-4 against the reference vectors, the green fraction, the detector's
// math on constructed sequences (exact counts, z and p), repeated pairs counted once, and the
// sampler: watermarked draws are detected, unwatermarked ones and another key's are not.
#include "modu/runtime/watermark.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <set>

#include "modu/runtime/sampler.h"

namespace modu {
namespace {

TEST(Watermark, SipHashReferenceVectors) {
  // From the SipHash paper's reference implementation: key 00..0f, messages 00, 00 01, ...
  const uint64_t k0 = 0x0706050403020100ull, k1 = 0x0f0e0d0c0b0a0908ull;
  uint8_t msg[64];
  for (int i = 0; i < 64; ++i) msg[i] = (uint8_t)i;
  EXPECT_EQ(siphash24(k0, k1, msg, 0), 0x726fdb47dd0e0e31ull);
  EXPECT_EQ(siphash24(k0, k1, msg, 1), 0x74f839c593dc67fdull);
  EXPECT_EQ(siphash24(k0, k1, msg, 8), 0x93f5f5799a932462ull);
  EXPECT_EQ(siphash24(k0, k1, msg, 15), 0xa129ca6149be45e5ull);
}

TEST(Watermark, KeysAndGreenFraction) {
  const WatermarkKey a = WatermarkKey::from_secret("modu secret"), b = WatermarkKey::from_secret("other");
  EXPECT_NE(a.k0, b.k0);
  EXPECT_EQ(a.id, WatermarkKey::from_secret("modu secret").id);
  EXPECT_EQ(a.id.size(), 11u);
  EXPECT_NE(a.id, b.id);
  int64_t green = 0, same = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const int32_t prev = i % 1000, tok = i / 1000 + 7 * (i % 13);
    const bool g = watermark_green(a, 0.25f, prev, tok);
    green += g;
    same += g == watermark_green(b, 0.25f, prev, tok);
  }
  EXPECT_NEAR((double)green / n, 0.25, 0.005);
  EXPECT_NEAR((double)same / n, 0.625, 0.01) << "another key's green list is independent";
}

// A sequence whose every next token is green (or red) after its predecessor.
// Every (previous, token) pair in it is distinct.
std::vector<int32_t> chain(const WatermarkKey& k, float gamma, int n, bool green, int32_t start = 3) {
  std::vector<int32_t> t = {start};
  std::set<std::pair<int32_t, int32_t>> used;
  int32_t cand = start;
  while ((int)t.size() < n + 1) {
    cand = (cand + 7919) % 100003;
    if (watermark_green(k, gamma, t.back(), cand) == green && used.insert({t.back(), cand}).second) t.push_back(cand);
  }
  return t;
}

TEST(Watermark, DetectorMathOnConstructedSequences) {
  const WatermarkKey k = WatermarkKey::from_secret("k");
  const float g = 0.25f;
  const auto all_green = chain(k, g, 100, true);
  WatermarkDetection d = detect_watermark(all_green, k, g);
  EXPECT_EQ(d.scored, 100);
  EXPECT_EQ(d.green, 100);
  const double z = (100 - 0.25 * 100) / std::sqrt(100 * 0.25 * 0.75);
  EXPECT_DOUBLE_EQ(d.z, z);
  EXPECT_DOUBLE_EQ(d.p_value, 0.5 * std::erfc(z / std::sqrt(2.0)));
  EXPECT_TRUE(d.watermarked);
  const auto all_red = chain(k, g, 100, false);
  d = detect_watermark(all_red, k, g);
  EXPECT_EQ(d.green, 0);
  EXPECT_DOUBLE_EQ(d.z, -25 / std::sqrt(18.75));
  EXPECT_FALSE(d.watermarked);
  // Half green, half red: green = 50 of 100.
  std::vector<int32_t> mixed(all_green.begin(), all_green.begin() + 51);
  const auto red_tail = chain(k, g, 50, false, mixed.back());
  mixed.insert(mixed.end(), red_tail.begin() + 1, red_tail.end());
  d = detect_watermark(mixed, k, g);
  EXPECT_EQ(d.scored, 100);
  EXPECT_EQ(d.green, 50);
  EXPECT_DOUBLE_EQ(d.z, (50 - 25) / std::sqrt(18.75));
  // Repeating the text does not add evidence: each (previous, token) pair counts once.
  std::vector<int32_t> twice = all_green;
  twice.insert(twice.end(), all_green.begin(), all_green.end());
  d = detect_watermark(twice, k, g);
  EXPECT_EQ(d.scored, 101);  // the 100 pairs, plus the one joining the copies
  // Too short to call.
  d = detect_watermark(chain(k, g, 10, true), k, g);
  EXPECT_GT(d.z, 4);
  EXPECT_FALSE(d.watermarked);
  EXPECT_EQ(detect_watermark({}, k, g).scored, 0);
}

// Draws n tokens from a fixed, mildly peaked distribution over V tokens.
std::vector<int32_t> draw(const SamplingParams& p, int n, int32_t vocab) {
  Sampler s(p, vocab);
  std::vector<float> logits(vocab);
  for (int32_t v = 0; v < vocab; ++v) logits[v] = (float)std::sin(v * 0.37) * 2.0f;
  std::vector<int32_t> out = {1};
  s.accept(1);
  for (int i = 0; i < n; ++i) {
    const int32_t t = s.sample(logits.data());
    s.accept(t);
    out.push_back(t);
  }
  return out;
}

TEST(Watermark, SamplerEmbedsADetectableMark) {
  const WatermarkKey k = WatermarkKey::from_secret("tenant-a");
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = 42;
  const auto plain = draw(p, 200, 2000);
  p.watermark = true;
  p.watermark_k0 = k.k0;
  p.watermark_k1 = k.k1;
  ASSERT_TRUE(p.validate(2000).ok());
  const auto marked = draw(p, 200, 2000);
  const WatermarkDetection dm = detect_watermark(marked, k, 0.25f);
  const WatermarkDetection dp = detect_watermark(plain, k, 0.25f);
  const WatermarkDetection other = detect_watermark(marked, WatermarkKey::from_secret("tenant-b"), 0.25f);
  EXPECT_TRUE(dm.watermarked) << "z=" << dm.z;
  EXPECT_FALSE(dp.watermarked) << "z=" << dp.z;
  EXPECT_FALSE(other.watermarked) << "z=" << other.z;
  EXPECT_LT(std::fabs(dp.z), 4.0);
  // Greedy decoding is left alone.
  p.temperature = 0;
  SamplingParams q = p;
  q.watermark = false;
  EXPECT_EQ(draw(p, 50, 2000), draw(q, 50, 2000));
  p.watermark_gamma = 1.5f;
  EXPECT_FALSE(p.validate(2000).ok());
}

}  // namespace
}  // namespace modu
