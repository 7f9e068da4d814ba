// Tests for the paged KV cache: blocks taken and returned, prefixes shared by reference with the
// partial tail copied, copy on write, a full pool as a clear error, and the logits of sequences
// that share blocks against sequences computed on their own.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "modu/models/model.h"
#include "reference_model.h"

namespace modu {
namespace {

struct Loaded {
  std::vector<uint8_t> bytes;
  std::unique_ptr<Model> model;
};

Loaded load_llama() {
  testing::TestModelSpec s = testing::arch_spec("llama");
  s.n_ctx = 1024;
  Loaded l;
  l.bytes = testing::make_random_model(s);
  auto f = GgufFile::parse(l.bytes.data(), l.bytes.size(), "kv-test");
  EXPECT_TRUE(f.ok());
  auto m = Model::from_gguf(std::move(f).value());
  EXPECT_TRUE(m.ok()) << m.status().to_string();
  l.model = std::move(m).value();
  return l;
}

std::vector<int32_t> tokens(int n, int vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> t((size_t)n);
  for (auto& x : t) x = (int32_t)(rng() % (uint64_t)vocab);
  return t;
}

// Feeds toks[from, to) to `seq` (positions from..to-1) in one batch; the last token's logits.
Result<std::vector<float>> feed(const Model& m, KvCache& kv, ThreadPool& pool, int seq, const std::vector<int32_t>& toks,
                                int64_t from, int64_t to) {
  std::vector<BatchToken> b;
  for (int64_t i = from; i < to; ++i) b.push_back({toks[(size_t)i], i, seq, i + 1 == to});
  std::vector<float> logits;
  MODU_RETURN_IF_ERROR(m.forward(b, kv, pool, logits));
  return logits;
}

constexpr int64_t B = KvCache::kBlock;

TEST(PagedKv, BlocksAreTakenAndReturned) {
  Loaded l = load_llama();
  ThreadPool pool(2);
  KvCache kv(l.model->config(), 3, 1024, KvType::kF32, 10);
  EXPECT_EQ(kv.n_blocks(), 10);
  EXPECT_EQ(kv.free_blocks(), 10);
  const auto t = tokens(300, (int)l.model->config().n_vocab, 1);
  EXPECT_EQ(kv.blocks_needed(0, 300), 3);
  ASSERT_TRUE(feed(*l.model, kv, pool, 0, t, 0, 300).ok());
  EXPECT_EQ(kv.seq_blocks(0), 3);
  EXPECT_EQ(kv.free_blocks(), 7);
  EXPECT_EQ(kv.blocks_needed(0, 384), 0) << "the third block has room up to 384";
  EXPECT_EQ(kv.blocks_needed(0, 385), 1);
  kv.truncate(0, B);
  EXPECT_EQ(kv.free_blocks(), 9);
  kv.truncate(0, 0);
  EXPECT_EQ(kv.free_blocks(), 10);
  // Bytes: the pool, not n_seq x n_ctx.
  EXPECT_EQ(kv.bytes(), (size_t)10 * KvCache::block_bytes(l.model->config(), 1024, KvType::kF32));
}

TEST(PagedKv, SharedPrefixGivesTheLogitsOfAFreshSequence) {
  Loaded l = load_llama();
  ThreadPool pool(2);
  const int vocab = (int)l.model->config().n_vocab;
  KvCache kv(l.model->config(), 2, 1024, KvType::kF32, 12);
  auto t = tokens(400, vocab, 2);
  ASSERT_TRUE(feed(*l.model, kv, pool, 0, t, 0, 300).ok());
  kv.copy_prefix(0, 1, 260);  // blocks 0-1 shared, positions 256..259 copied into a block of seq 1
  EXPECT_EQ(kv.seq_len(1), 260);
  EXPECT_EQ(kv.seq_blocks(1), 3);
  EXPECT_EQ(kv.exclusive_blocks(1), 1);
  EXPECT_EQ(kv.free_blocks(), 12 - 3 - 1);
  // Seq 1 continues with other tokens; seq 0 and a fresh cache are the references.
  auto u = t;
  for (int i = 260; i < 400; ++i) u[(size_t)i] = (int32_t)((t[(size_t)i] + 1) % vocab);
  auto got = feed(*l.model, kv, pool, 1, u, 260, 330);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  KvCache fresh(l.model->config(), 1, 1024, KvType::kF32);
  ASSERT_TRUE(feed(*l.model, fresh, pool, 0, u, 0, 260).ok());
  auto want = feed(*l.model, fresh, pool, 0, u, 260, 330);
  ASSERT_TRUE(want.ok());
  double mx = 0, err = 0;
  for (size_t i = 0; i < want->size(); ++i) {
    mx = std::max(mx, std::fabs((double)(*want)[i]));
    err = std::max(err, std::fabs((double)(*got)[i] - (*want)[i]));
  }
  EXPECT_LE(err / mx, 1e-5);
  // Seq 0 was not disturbed: its next token's logits equal those of a cache it never shared.
  KvCache alone(l.model->config(), 1, 1024, KvType::kF32);
  ASSERT_TRUE(feed(*l.model, alone, pool, 0, t, 0, 300).ok());
  auto a = feed(*l.model, alone, pool, 0, t, 300, 301);
  auto b = feed(*l.model, kv, pool, 0, t, 300, 301);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
}

TEST(PagedKv, WritingIntoASharedBlockCopiesItFirst) {
  Loaded l = load_llama();
  ThreadPool pool(2);
  const int vocab = (int)l.model->config().n_vocab;
  KvCache kv(l.model->config(), 2, 1024, KvType::kF32, 8);
  auto t = tokens(300, vocab, 3);
  ASSERT_TRUE(feed(*l.model, kv, pool, 0, t, 0, 2 * B).ok());
  KvCache alone(l.model->config(), 1, 1024, KvType::kF32);
  ASSERT_TRUE(feed(*l.model, alone, pool, 0, t, 0, 2 * B).ok());
  kv.copy_prefix(0, 1, 2 * B);  // whole blocks only: both shared
  EXPECT_EQ(kv.exclusive_blocks(1), 0);
  EXPECT_EQ(kv.free_blocks(), 6);
  kv.truncate(1, 200);  // back into the shared second block
  EXPECT_EQ(kv.blocks_needed(1, 2 * B), 1) << "the shared block is copied before it is written";
  auto u = t;
  for (int i = 200; i < 2 * B; ++i) u[(size_t)i] = (int32_t)((t[(size_t)i] + 7) % vocab);
  ASSERT_TRUE(feed(*l.model, kv, pool, 1, u, 200, 2 * B).ok());
  EXPECT_EQ(kv.exclusive_blocks(1), 1);
  EXPECT_EQ(kv.free_blocks(), 5);
  // Seq 0's second block still holds t: its next logits equal the unshared cache's.
  auto a = feed(*l.model, alone, pool, 0, t, 2 * B, 2 * B + 1);
  auto b = feed(*l.model, kv, pool, 0, t, 2 * B, 2 * B + 1);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
}

TEST(PagedKv, AFullPoolIsAClearErrorAndLeaksNothing) {
  Loaded l = load_llama();
  ThreadPool pool(2);
  KvCache kv(l.model->config(), 2, 1024, KvType::kF16, 2);
  const auto t = tokens(300, (int)l.model->config().n_vocab, 4);
  auto r = feed(*l.model, kv, pool, 0, t, 0, 300);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("KV cache full"), std::string::npos) << r.status().to_string();
  EXPECT_NE(r.status().message().find("--cache-mb"), std::string::npos);
  EXPECT_EQ(kv.seq_len(0), 0);
  EXPECT_EQ(kv.free_blocks(), 2) << "blocks taken for the failed batch went back";
  ASSERT_TRUE(feed(*l.model, kv, pool, 0, t, 0, 2 * B).ok()) << "what fits still runs";
  // No free block for the tail of a copy: only whole blocks are shared, seq_len says so.
  kv.copy_prefix(0, 1, B + 5);
  EXPECT_EQ(kv.seq_len(1), B);
}

}  // namespace
}  // namespace modu
