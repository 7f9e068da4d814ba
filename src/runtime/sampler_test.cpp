// Tests for the sampler chain and stop-string matching.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "modu/runtime/generate.h"
#include "modu/runtime/sampler.h"

namespace modu {
namespace {

std::vector<float> logits_of(std::vector<double> probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(p > 0 ? (float)std::log(p) : -INFINITY);
  return l;
}

TEST(Sampler, GreedyTakesArgmaxFirstOnTies) {
  SamplingParams p;
  p.temperature = 0;
  Sampler s(p, 4);
  std::vector<float> l = {1, 3, 3, 2};
  EXPECT_EQ(s.sample(l.data()), 1);
}

TEST(Sampler, LogitBiasCanBanAndForce) {
  SamplingParams p;
  p.temperature = 0;
  p.logit_bias = {{1, -INFINITY}, {3, 0.5f}};
  Sampler s(p, 4);
  std::vector<float> l = {1, 3, 2.9f, 2.6f};
  EXPECT_EQ(s.sample(l.data()), 3);
}

TEST(Sampler, SameSeedSameTokensDifferentSeedDiffers) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0; p.top_p = 1; p.min_p = 0;
  std::vector<float> l = logits_of({0.2, 0.2, 0.2, 0.2, 0.2});
  auto draw = [&](uint64_t seed) {
    p.seed = seed;
    Sampler s(p, 5);
    std::vector<int> out;
    for (int i = 0; i < 50; ++i) out.push_back(s.sample(l.data()));
    return out;
  };
  EXPECT_EQ(draw(1), draw(1));
  EXPECT_NE(draw(1), draw(2));
}

TEST(Sampler, FrequenciesFollowSoftmaxAtTemperatureOne) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0; p.top_p = 1; p.min_p = 0;
  p.seed = 42;
  std::vector<double> probs = {0.5, 0.3, 0.15, 0.05};
  auto l = logits_of(probs);
  Sampler s(p, 4);
  std::map<int, int> counts;
  const int n = 40000;
  for (int i = 0; i < n; ++i) counts[s.sample(l.data())]++;
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(counts[i] / (double)n, probs[i], 0.01) << i;
}

TEST(Sampler, TopKTopPMinPTruncate) {
  std::vector<double> probs = {0.4, 0.3, 0.2, 0.09, 0.01};
  auto l = logits_of(probs);
  auto support = [&](SamplingParams p) {
    p.temperature = 1.0f;
    Sampler s(p, 5);
    std::set<int> seen;
    for (int i = 0; i < 3000; ++i) seen.insert(s.sample(l.data()));
    return seen;
  };
  SamplingParams k; k.top_k = 2; k.top_p = 1; k.min_p = 0;
  EXPECT_EQ(support(k), (std::set<int>{0, 1}));
  SamplingParams tp; tp.top_k = 0; tp.top_p = 0.85f; tp.min_p = 0;  // 0.4+0.3+0.2 = 0.9 >= 0.85
  EXPECT_EQ(support(tp), (std::set<int>{0, 1, 2}));
  SamplingParams mp; mp.top_k = 0; mp.top_p = 1; mp.min_p = 0.45f;  // keep p >= 0.18
  EXPECT_EQ(support(mp), (std::set<int>{0, 1, 2}));
}

TEST(Sampler, PenaltiesLowerRepeatedTokens) {
  SamplingParams p;
  p.temperature = 0;
  p.repeat_penalty = 2.0f;
  Sampler s(p, 3);
  std::vector<float> l = {2.0f, 1.5f, -1.0f};
  s.accept(0);
  EXPECT_EQ(s.sample(l.data()), 1);  // 2.0 / 2 = 1.0 < 1.5
  SamplingParams f;
  f.temperature = 0;
  f.frequency_penalty = 0.3f;
  f.presence_penalty = 0.1f;
  Sampler s2(f, 3);
  s2.accept(1); s2.accept(1);
  std::vector<float> l2 = {1.0f, 1.6f, 0.0f};
  EXPECT_EQ(s2.sample(l2.data()), 0);  // 1.6 - 0.6 - 0.1 = 0.9 < 1.0
  EXPECT_NEAR(s2.last_logprob(1), 0.9 - std::log(std::exp(1.0) + std::exp(0.9) + 1.0), 1e-5);
}

TEST(Sampler, ValidateRejectsBadValues) {
  SamplingParams p;
  EXPECT_TRUE(p.validate(10).ok());
  p.top_p = 0;
  EXPECT_FALSE(p.validate(10).ok());
  p = SamplingParams();
  p.temperature = -1;
  EXPECT_FALSE(p.validate(10).ok());
  p = SamplingParams();
  p.logit_bias = {{10, 1.0f}};
  EXPECT_NE(p.validate(10).message().find("outside the vocabulary"), std::string::npos);
}

TEST(StopMatcher, HoldsBackPrefixesAndCutsAtStop) {
  StopMatcher m({"</s>", "\nUser:"});
  bool stopped = false;
  EXPECT_EQ(m.push("Hello <", &stopped), "Hello ");
  EXPECT_FALSE(stopped);
  EXPECT_EQ(m.push("b>", &stopped), "<b>");
  EXPECT_EQ(m.push(" ok\nUs", &stopped), " ok");
  EXPECT_EQ(m.push("er: hi", &stopped), "");
  EXPECT_TRUE(stopped);
  StopMatcher m2({"END"});
  EXPECT_EQ(m2.push("abcEN", &stopped), "abc");
  EXPECT_EQ(m2.flush(), "EN");
}

}  // namespace
}  // namespace modu
