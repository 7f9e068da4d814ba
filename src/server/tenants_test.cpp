// API key files and sliding-window rate limits.
#include "modu/server/tenants.h"

#include <gtest/gtest.h>

namespace modu::server {
namespace {

TEST(Tenants, ParsesKeysAndLimits) {
  auto reg = TenantRegistry::parse("# comment\nsk-a alice rpm=2 tpm=100 parallel=1\nsk-b bob\n\nsk-a2 alice  # same\n");
  ASSERT_TRUE(reg.ok()) << reg.status().to_string();
  ASSERT_EQ(reg->n_keys(), 3u);
  const Tenant* a = reg->find_key("sk-a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->name, "alice");
  EXPECT_EQ(a->limits.requests_per_min, 2);
  EXPECT_EQ(a->limits.tokens_per_min, 100);
  EXPECT_EQ(a->limits.max_parallel, 1);
  EXPECT_EQ(reg->find_key("sk-a2"), a);
  EXPECT_EQ(reg->find_key("sk-b")->limits.max_parallel, 0);
  EXPECT_EQ(reg->find_key("sk-"), nullptr);
  EXPECT_EQ(reg->find_key("sk-aa"), nullptr);
  EXPECT_EQ(reg->find_key(""), nullptr);
}

TEST(Tenants, WatermarkKeys) {
  auto reg = TenantRegistry::parse("k1 gov watermark=s3cret rpm=5\nk2 press watermark=off\nk3 plain\n");
  ASSERT_TRUE(reg.ok()) << reg.status().to_string();
  EXPECT_EQ(reg->find_key("k1")->watermark, "s3cret");
  EXPECT_EQ(reg->find_key("k1")->limits.requests_per_min, 5);
  EXPECT_EQ(reg->find_key("k2")->watermark, "off");
  EXPECT_EQ(reg->find_key("k3")->watermark, "");
  EXPECT_FALSE(TenantRegistry::parse("k t watermark=\n").ok());
}

TEST(Tenants, RejectsBadFiles) {
  EXPECT_FALSE(TenantRegistry::parse("").ok());
  EXPECT_FALSE(TenantRegistry::parse("lonelykey\n").ok());
  EXPECT_FALSE(TenantRegistry::parse("k t rpm=abc\n").ok());
  EXPECT_FALSE(TenantRegistry::parse("k t burst=3\n").ok());
  EXPECT_FALSE(TenantRegistry::parse("k t\nk u\n").ok());
  auto r = TenantRegistry::parse("k t rpm=-1\n", "keys.txt");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("keys.txt:1"), std::string::npos);
}

TEST(Tenants, RequestsPerMinute) {
  RateLimiter rl;
  TenantLimits lim;
  lim.requests_per_min = 2;
  auto t0 = RateLimiter::Clock::now();
  EXPECT_FALSE(rl.admit("a", lim, t0));
  EXPECT_FALSE(rl.admit("a", lim, t0 + std::chrono::seconds(10)));
  auto retry = rl.admit("a", lim, t0 + std::chrono::seconds(20));
  ASSERT_TRUE(retry.has_value());
  EXPECT_EQ(*retry, 40);
  EXPECT_FALSE(rl.admit("b", lim, t0 + std::chrono::seconds(20)));  // tenants are independent
  EXPECT_FALSE(rl.admit("a", lim, t0 + std::chrono::seconds(61)));  // the first request left the window
}

TEST(Tenants, TokensPerMinute) {
  RateLimiter rl;
  TenantLimits lim;
  lim.tokens_per_min = 100;
  auto t0 = RateLimiter::Clock::now();
  EXPECT_FALSE(rl.admit("a", lim, t0));
  rl.charge_tokens("a", 150, t0);
  EXPECT_TRUE(rl.admit("a", lim, t0 + std::chrono::seconds(1)).has_value());
  EXPECT_FALSE(rl.admit("a", lim, t0 + std::chrono::seconds(61)));
}

}  // namespace
}  // namespace modu::server
