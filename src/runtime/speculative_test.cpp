// Speculative decoding: prompt-lookup proposals; on modu-tiny, greedy output with lookup drafts
// and with a draft model is byte-identical to plain decoding (and drafts are accepted); sampled
// output keeps the sampler's distribution (two-token continuations counted over many seeds, with
// and without drafts, by total variation distance); a stop inside accepted drafts ends the text
// where plain decoding ends it; mismatched tokenizers are refused.
#include "modu/runtime/speculative.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "modu/gguf/gguf.h"
#include "modu/runtime/generate.h"

namespace modu {
namespace {

TEST(NgramDrafter, ProposesWhatFollowedTheMostRecentMatch) {
  NgramDrafter d(2, 4);
  // "1 2 3" occurs at 0 and (more recently) at 6; the suffix "2 3" last occurred at 7..8 -> after it: 7 8.
  auto p = d.propose({1, 2, 3, 4, 5, 9, 1, 2, 3, 7, 8, 5, 1, 2, 3}, 4);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, (std::vector<int32_t>{7, 8, 5, 1}));
  EXPECT_EQ(*d.propose({1, 2, 3, 7, 8, 5, 1, 2, 3}, 2), (std::vector<int32_t>{7, 8}));
  EXPECT_TRUE(d.propose({1, 2, 3, 4, 5}, 8)->empty());   // no earlier occurrence
  EXPECT_TRUE(d.propose({5, 5}, 8)->empty());             // too short for a 2-gram before the suffix
  EXPECT_EQ(*d.propose({5, 5, 5}, 8), (std::vector<int32_t>{5}));  // overlapping match
  EXPECT_TRUE(d.propose({1, 2, 1, 2}, 0)->empty());
  // An image's placeholder ids (negative) are never proposed.
  EXPECT_EQ(*d.propose({1, 2, 3, -1, -1, 4, 1, 2}, 8), (std::vector<int32_t>{3}));
}

class Spec : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto m = Model::load(std::string(MODU_SOURCE_DIR) + "/models/modu-tiny.gguf");
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    model_ = std::move(m).value().release();
    auto f = GgufFile::open(std::string(MODU_SOURCE_DIR) + "/models/modu-tiny.gguf");
    ASSERT_TRUE(f.ok());
    auto t = Tokenizer::from_gguf(*f);
    ASSERT_TRUE(t.ok());
    tok_ = std::move(t).value().release();
  }
  static GenerateResult run(const std::string& text, GenerateOptions o, uint64_t seed = 1) {
    ThreadPool pool(1);
    KvCache kv(model_->config(), 1, 256, KvType::kF16);
    o.sampling.seed = seed;
    auto r = generate(*model_, *tok_, kv, pool, tok_->encode(text, true, false), o, nullptr);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? *r : GenerateResult{};
  }
  static Model* model_;
  static Tokenizer* tok_;
};
Model* Spec::model_ = nullptr;
Tokenizer* Spec::tok_ = nullptr;

const char* kRepetitive = "데비안 패키지를 설치합니다. 데비안 패키지를 설치합니다. 데비안 패키지를 설치합니다. 데비안 패키지를";

TEST_F(Spec, GreedyOutputIsByteIdentical) {
  GenerateOptions plain;
  plain.n_predict = 80;
  plain.sampling.temperature = 0;
  const GenerateResult base = run(kRepetitive, plain);
  NgramDrafter lookup;
  GenerateOptions with = plain;
  with.drafter = &lookup;
  for (int max : {1, 3, 8}) {
    with.draft_max = max;
    const GenerateResult r = run(kRepetitive, with);
    EXPECT_EQ(r.text, base.text) << "draft_max " << max;
    EXPECT_EQ(r.tokens, base.tokens);
    EXPECT_GT(r.accepted, 0) << "the repetitive text is drafted and accepted";
    EXPECT_LE(r.accepted, r.drafted);
  }
  // A draft model (here the model itself: every greedy draft is accepted).
  ThreadPool pool(1);
  ModelDrafter self(*model_, pool, 256);
  with.drafter = &self;
  with.draft_max = 4;
  const GenerateResult r = run(kRepetitive, with);
  EXPECT_EQ(r.text, base.text);
  EXPECT_EQ(r.accepted, r.drafted);
  EXPECT_GT(r.drafted, 40);
  // Stop strings and the token limit end the text where plain decoding ends it.
  for (int n : {5, 17}) {
    GenerateOptions a = plain, b = with;
    a.n_predict = b.n_predict = n;
    b.drafter = &lookup;
    b.draft_max = 8;
    EXPECT_EQ(run(kRepetitive, b).text, run(kRepetitive, a).text) << n;
  }
  const std::string cut = base.text.substr(0, base.text.size() / 2);
  const std::string stop = cut.substr(cut.size() >= 6 ? cut.size() - 6 : 0);
  GenerateOptions a = plain, b = plain;
  a.stop = b.stop = {stop};
  b.drafter = &lookup;
  const GenerateResult ra = run(kRepetitive, a), rb = run(kRepetitive, b);
  EXPECT_EQ(rb.text, ra.text);
  EXPECT_EQ(rb.reason, ra.reason);
}

// The first two sampled tokens over many seeds: with drafts (accepted with their probability, a
// rejection replaced from the rest) the counts follow the plain sampler's.
TEST_F(Spec, SampledOutputKeepsTheDistribution) {
  GenerateOptions plain;
  plain.n_predict = 3;
  plain.sampling.temperature = 0.7f;
  plain.sampling.top_k = 40;
  plain.sampling.top_p = 1.0f;
  plain.sampling.min_p = 0.0f;
  // Drafts: the model's own greedy continuation of the actual history, which the sampler often
  // but not always agrees with (at temperature 0.7 the argmax has a middling probability).
  ThreadPool dpool(1);
  ModelDrafter greedy(*model_, dpool, 256);
  GenerateOptions with = plain;
  with.drafter = &greedy;
  with.draft_max = 4;
  // The prompt is prefilled once; each sample recomputes only its last token.
  ThreadPool pool(1);
  KvCache kv(model_->config(), 1, 256, KvType::kF16);
  const std::vector<int32_t> prompt = tok_->encode(kRepetitive, true, false);
  std::vector<float> logits;
  std::vector<BatchToken> batch;
  for (size_t i = 0; i + 1 < prompt.size(); ++i) batch.push_back({prompt[i], (int64_t)i, 0, false});
  ASSERT_TRUE(model_->forward(batch, kv, pool, logits).ok());
  auto sample = [&](GenerateOptions o, uint64_t seed) {
    kv.truncate(0, (int64_t)prompt.size() - 1);
    o.n_cached = (int64_t)prompt.size() - 1;
    o.sampling.seed = seed;
    auto r = generate(*model_, *tok_, kv, pool, prompt, o, nullptr);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : GenerateResult{};
  };
  std::map<std::vector<int32_t>, double> pa, pb;
  const int n = 2500;
  int64_t drafted = 0, accepted = 0;
  for (int i = 0; i < n; ++i) {
    const GenerateResult a = sample(plain, 1000 + i), b = sample(with, 500000 + i);
    pa[std::vector<int32_t>(a.tokens.begin(), a.tokens.begin() + std::min<size_t>(2, a.tokens.size()))] += 1.0 / n;
    pb[std::vector<int32_t>(b.tokens.begin(), b.tokens.begin() + std::min<size_t>(2, b.tokens.size()))] += 1.0 / n;
    drafted += b.drafted;
    accepted += b.accepted;
  }
  // Buckets: the plain sampler's eight most frequent continuations, and everything else.
  std::vector<std::pair<double, std::vector<int32_t>>> top;
  for (const auto& [k, v] : pa) top.push_back({v, k});
  std::sort(top.rbegin(), top.rend());
  top.resize(std::min<size_t>(top.size(), 8));
  double tv = 0, rest_a = 1, rest_b = 1;
  for (const auto& [v, k] : top) {
    const double b = pb.count(k) ? pb[k] : 0.0;
    tv += std::fabs(v - b);
    rest_a -= v;
    rest_b -= b;
  }
  tv = (tv + std::fabs(rest_a - rest_b)) / 2;
  EXPECT_GT(accepted, 200) << "drafts are accepted (" << accepted << " of " << drafted << ")";
  EXPECT_LT(accepted, drafted) << "and some rejected";
  // Two samples of 2500 from one distribution over nine buckets differ by about 0.02 (sd ~0.01).
  EXPECT_LT(tv, 0.05) << "total variation distance; top continuation " << top[0].first;
  std::printf("speculative sampling: %lld of %lld drafts accepted, total variation %.4f\n", (long long)accepted, (long long)drafted, tv);
}

TEST_F(Spec, DraftTokenizerMustMatch) {
  EXPECT_TRUE(check_draft_tokenizer(*tok_, *tok_).ok());
  auto f = GgufFile::open(std::string(MODU_SHARED_DIR) + "/testdata/vocab/ggml-vocab-gpt-2.gguf");
  ASSERT_TRUE(f.ok());
  auto other = Tokenizer::from_gguf(*f);
  ASSERT_TRUE(other.ok());
  const Status s = check_draft_tokenizer(*tok_, **other);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("same tokenizer"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace modu
