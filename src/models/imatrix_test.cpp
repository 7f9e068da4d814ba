// Tests for importance-matrix collection: the statistics of the first layer's Q/K/V input against a
// float64 RMS norm of the embeddings computed here, counts per matrix and per expert, the observer
// scoped to its thread, and the GGUF file read back (means, width checks, corrupt files).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <thread>

#include "modu/gguf/gguf.h"
#include "modu/models/imatrix.h"
#include "modu/models/model.h"
#include "reference_model.h"

namespace modu {
namespace {

struct Loaded {
  std::vector<uint8_t> bytes;
  std::unique_ptr<GgufFile> file;  // the same bytes, for the test's own reads
  std::unique_ptr<Model> model;
};

Loaded load(const testing::TestModelSpec& s) {
  Loaded l;
  l.bytes = testing::make_random_model(s);
  auto f = GgufFile::parse(l.bytes.data(), l.bytes.size(), "imatrix-test");
  EXPECT_TRUE(f.ok());
  l.file = std::make_unique<GgufFile>(std::move(f).value());
  auto f2 = GgufFile::parse(l.bytes.data(), l.bytes.size(), "imatrix-test");
  auto m = Model::from_gguf(std::move(f2).value());
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

Status feed(const Model& m, const std::vector<int32_t>& toks) {
  ThreadPool pool(2);
  KvCache kv(m.config(), 1, 256, KvType::kF32);
  std::vector<BatchToken> b;
  for (size_t i = 0; i < toks.size(); ++i) b.push_back({toks[i], (int64_t)i, 0, true});
  std::vector<float> logits;
  return m.forward(b, kv, pool, logits);
}

const float* f32_data(const GgufFile& f, const std::string& name) {
  const GgufTensor* t = f.tensor(name);
  EXPECT_NE(t, nullptr) << name;
  EXPECT_EQ(t->dtype, DType::F32) << name;
  return reinterpret_cast<const float*>(t->data);
}

TEST(Imatrix, FirstLayerInputMatchesFloat64NormOfEmbeddings) {
  testing::TestModelSpec s;  // plain Llama, F32 weights
  Loaded l = load(s);
  const auto toks = tokens(40, (int)s.n_vocab, 3);
  ImatrixCollector c;
  ASSERT_EQ(set_matmul_observer(&c), nullptr);
  ASSERT_TRUE(feed(*l.model, toks).ok());
  EXPECT_EQ(set_matmul_observer(nullptr), &c);

  // Independent: x = embedding row, y = x / sqrt(mean(x^2) + eps) * attn_norm, summed y^2 per column.
  const int64_t d = s.n_embd;
  const float* emb = f32_data(*l.file, "token_embd.weight");
  const float* norm = f32_data(*l.file, "blk.0.attn_norm.weight");
  std::vector<double> want((size_t)d, 0.0);
  for (int32_t t : toks) {
    const float* x = emb + (int64_t)t * d;
    double ms = 0;
    for (int64_t i = 0; i < d; ++i) ms += (double)x[i] * x[i];
    const double r = 1.0 / std::sqrt(ms / (double)d + s.rms_eps);
    for (int64_t i = 0; i < d; ++i) {
      const double y = (double)x[i] * r * (double)norm[i];
      want[(size_t)i] += y * y;
    }
  }
  for (const char* w : {"attn_q", "attn_k", "attn_v"}) {
    const std::string name = std::string("blk.0.") + w + ".weight";
    ASSERT_TRUE(c.entries().count(name)) << name;
    const ImatrixEntry& e = c.entries().at(name);
    ASSERT_EQ(e.cols, d);
    ASSERT_EQ(e.counts, std::vector<int64_t>{40});
    for (int64_t i = 0; i < d; ++i) EXPECT_NEAR(e.sum2[(size_t)i], want[(size_t)i], 1e-4 * want[(size_t)i]) << name << " " << i;
  }
  // Every matrix of every layer and the output head were seen, each with its input width.
  for (int64_t il = 0; il < s.n_layer; ++il)
    for (const auto& [w, cols] : std::vector<std::pair<std::string, int64_t>>{
             {"attn_output", s.n_head * s.head_dim}, {"ffn_gate", d}, {"ffn_up", d}, {"ffn_down", s.n_ff}}) {
      const std::string name = "blk." + std::to_string(il) + "." + w + ".weight";
      ASSERT_TRUE(c.entries().count(name)) << name;
      EXPECT_EQ(c.entries().at(name).cols, cols) << name;
      EXPECT_EQ(c.entries().at(name).counts, std::vector<int64_t>{40}) << name;
    }
  ASSERT_TRUE(c.entries().count("output.weight"));
  EXPECT_EQ(c.entries().size(), (size_t)(7 * s.n_layer + 1));

  // Removed: nothing more is counted; installed on another thread: this thread is not observed.
  ASSERT_TRUE(feed(*l.model, toks).ok());
  std::thread other([&] { set_matmul_observer(&c); });
  other.join();
  ASSERT_TRUE(feed(*l.model, toks).ok());
  EXPECT_EQ(c.entries().at("blk.0.attn_q.weight").counts, std::vector<int64_t>{40});
}

TEST(Imatrix, ExpertsAreCountedOneByOne) {
  testing::TestModelSpec s = testing::arch_spec("qwen3moe");
  Loaded l = load(s);
  ImatrixCollector c;
  set_matmul_observer(&c);
  ASSERT_TRUE(feed(*l.model, tokens(30, (int)s.n_vocab, 4)).ok());
  set_matmul_observer(nullptr);
  for (const char* w : {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"}) {
    const std::string name = std::string("blk.1.") + w + ".weight";
    ASSERT_TRUE(c.entries().count(name)) << name;
    const ImatrixEntry& e = c.entries().at(name);
    ASSERT_EQ((int64_t)e.counts.size(), s.n_expert);
    int64_t routed = 0, used = 0;
    for (int64_t k : e.counts) {
      routed += k;
      used += k > 0;
    }
    EXPECT_EQ(routed, 30 * s.n_expert_used) << name << ": each token goes to n_expert_used experts";
    EXPECT_GT(used, 1) << name;
    EXPECT_EQ((int64_t)e.sum2.size(), s.n_expert * e.cols);
  }
}

TEST(Imatrix, FileRoundTripAndErrors) {
  testing::TestModelSpec s = testing::arch_spec("qwen3moe");
  Loaded l = load(s);
  ImatrixCollector c;
  set_matmul_observer(&c);
  ASSERT_TRUE(feed(*l.model, tokens(30, (int)s.n_vocab, 5)).ok());
  set_matmul_observer(nullptr);
  const std::string path = ::testing::TempDir() + "/imatrix_test.gguf";
  ASSERT_TRUE(c.save(path, {"calib.txt"}, 3, 10).ok());
  auto im = Imatrix::load(path);
  ASSERT_TRUE(im.ok()) << im.status().to_string();
  EXPECT_EQ(im->size(), c.entries().size());
  EXPECT_EQ(im->datasets(), std::vector<std::string>{"calib.txt"});
  EXPECT_EQ(im->chunk_count(), 3);
  for (const auto& [name, e] : c.entries())
    for (int64_t m = 0; m < (int64_t)e.counts.size(); ++m) {
      auto p = im->find(name, e.cols, m);
      ASSERT_TRUE(p.ok()) << name;
      if (e.counts[(size_t)m] == 0) {
        EXPECT_EQ(*p, nullptr) << name << ": an expert that saw no token has no importances";
        continue;
      }
      ASSERT_NE(*p, nullptr) << name;
      for (int64_t i = 0; i < e.cols; ++i)
        EXPECT_NEAR((*p)[i], e.sum2[(size_t)(m * e.cols + i)] / (double)e.counts[(size_t)m], 1e-5 * (1 + (*p)[i]));
    }
  auto missing = im->find("blk.0.nothing.weight", 8, 0);
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(*missing, nullptr);
  auto wrong = im->find("blk.0.attn_q.weight", s.n_embd + 1, 0);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("another model"), std::string::npos);

  // A file without counts, and a model file, are refused with the reason.
  GgufWriter w;
  float v[4] = {1, 2, 3, 4};
  ASSERT_TRUE(w.add_tensor("blk.0.attn_q.weight.in_sum2", DType::F32, {4, 1}, v, sizeof v).ok());
  const std::string bad = ::testing::TempDir() + "/imatrix_bad.gguf";
  ASSERT_TRUE(w.write(bad).ok());
  auto b = Imatrix::load(bad);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("no .counts"), std::string::npos) << b.status().to_string();
  const std::string model_path = ::testing::TempDir() + "/imatrix_model.gguf";
  FILE* fp = std::fopen(model_path.c_str(), "wb");
  std::fwrite(l.bytes.data(), 1, l.bytes.size(), fp);
  std::fclose(fp);
  auto m = Imatrix::load(model_path);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("no imatrix entries"), std::string::npos);
}

}  // namespace
}  // namespace modu
