// End-to-end model tests: modu's forward pass against the float64 reference, for every
// architecture, several dtypes and rope scalings; batching equivalence; greedy generation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>

#include "modu/kernels/dispatch.h"
#include "modu/kernels/repack.h"
#include "modu/models/model.h"
#include "moe.h"
#include "ops.h"
#include "reference_model.h"

namespace modu {
namespace {

// The worst over tokens of max |got - ref| / max |ref| over the vocabulary: logits [n_tokens, n_vocab].
double worst_rel(const float* got, const std::vector<std::vector<double>>& ref, int n_tokens, int64_t n_vocab) {
  double worst = 0;
  for (int t = 0; t < n_tokens; ++t) {
    double mx = 0, err = 0;
    for (int64_t v = 0; v < n_vocab; ++v) {
      mx = std::max(mx, std::fabs(ref[t][v]));
      err = std::max(err, std::fabs(got[t * n_vocab + v] - ref[t][v]));
    }
    worst = std::max(worst, err / mx);
  }
  return worst;
}


using testing::TestModelSpec;

struct Loaded {
  std::vector<uint8_t> bytes;
  std::unique_ptr<Model> model;
};

Loaded load(const TestModelSpec& spec) {
  Loaded l;
  l.bytes = testing::make_random_model(spec);
  auto f = GgufFile::parse(l.bytes.data(), l.bytes.size(), "test-" + spec.arch);
  EXPECT_TRUE(f.ok()) << f.status().to_string();
  auto m = Model::from_gguf(std::move(f).value());
  EXPECT_TRUE(m.ok()) << m.status().to_string();
  l.model = std::move(m).value();
  return l;
}

std::vector<int32_t> random_tokens(int n, int vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = (int32_t)(rng() % vocab);
  return t;
}

// Max over positions of max|modu - ref| / max|ref| (relative to the logit scale).
double compare(const TestModelSpec& spec, KvType kvt, int n_tokens, int threads, int chunk = 0,
               size_t* repacked = nullptr) {
  Loaded l = load(spec);
  if (repacked) *repacked = l.model->repacked_bytes();
  auto tokens = random_tokens(n_tokens, (int)spec.n_vocab, spec.seed + 7);
  auto f = GgufFile::parse(l.bytes.data(), l.bytes.size());
  auto ref = testing::reference_logits(*f, spec, tokens);
  KvCache kv(l.model->config(), 1, spec.n_ctx, kvt);
  ThreadPool pool(threads);
  std::vector<float> logits;
  std::vector<float> all;
  const int step = chunk > 0 ? chunk : n_tokens;
  for (int b = 0; b < n_tokens; b += step) {
    std::vector<BatchToken> batch;
    for (int t = b; t < std::min(n_tokens, b + step); ++t) batch.push_back({tokens[t], t, 0, true});
    Status st = l.model->forward(batch, kv, pool, logits);
    EXPECT_TRUE(st.ok()) << st.to_string();
    all.insert(all.end(), logits.begin(), logits.end());
  }
  return worst_rel(all.data(), ref, n_tokens, spec.n_vocab);
}

TestModelSpec spec_for(const std::string& arch) { return testing::arch_spec(arch); }

class ArchTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ArchTest, F32MatchesFloat64Reference) {
  TestModelSpec s = spec_for(GetParam());
  EXPECT_LE(compare(s, KvType::kF32, 40, 2), 1e-4);
}

TEST_P(ArchTest, F32TiedOutputChunkedPrefill) {
  TestModelSpec s = spec_for(GetParam());
  s.tied_output = true;
  s.seed = 5;
  EXPECT_LE(compare(s, KvType::kF32, 37, 3, /*chunk=*/5), 1e-4);
}

TEST_P(ArchTest, F16KvCache) {
  TestModelSpec s = spec_for(GetParam());
  EXPECT_LE(compare(s, KvType::kF16, 33, 2), 5e-3);
}

// Quantized weights: modu quantizes activations to 8 bits for the integer dot products, so the
// comparison (against float64 on the dequantized weights) allows the error that adds.
struct DtypeCase { DType dt; double tol; };
class DtypeTest : public ::testing::TestWithParam<std::tuple<std::string, DtypeCase>> {};

TEST_P(DtypeTest, MatchesReferenceOnDequantizedWeights) {
  auto [arch, dc] = GetParam();
  TestModelSpec s = spec_for(arch);
  s.weight_type = dc.dt;
  s.embd_type = dc.dt;
  if (dtype_traits(dc.dt)->block_size == 256) { s.n_embd = 256; s.n_ff = 512; s.n_head = 8; s.head_dim = 32; }
  if (arch == "qwen3" && dtype_traits(dc.dt)->block_size == 256) s.head_dim = 32;
  EXPECT_LE(compare(s, KvType::kF32, 32, 2), dc.tol) << dtype_name(dc.dt);
}

INSTANTIATE_TEST_SUITE_P(AllArchs, ArchTest, ::testing::Values("llama", "mistral", "qwen2", "qwen3", "qwen2moe", "qwen3moe",
                                                                 "gemma2", "gemma3", "exaone", "exaone4", "granite",
                                                                 "phi3"));

// --- LoRA adapters ---------------------------------------------------------------------------------
// An adapter for every dense matrix of `base` (attention, feed-forward, output; MoE experts have
// other names and stay unadapted) with random A [rank, cols] and B [rows, rank], written with
// modu's GGUF writer in llama.cpp's adapter layout; `pairs` gets them in float64.
using Pairs = testing::LoraPairs;

bool lora_target(const std::string& name) {
  for (const char* suf : {"attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight", "attn_qkv.weight",
                          "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"})
    if (name.size() > std::strlen(suf) && name.compare(name.size() - std::strlen(suf), std::strlen(suf), suf) == 0) return true;
  return name == "output.weight";
}

std::vector<uint8_t> make_adapter(const GgufFile& base, const std::string& arch, int64_t rank, float alpha, uint64_t seed,
                                  DType dtype, Pairs* pairs) {
  GgufWriter w;
  w.set("general.architecture", GgufValue::string(arch));
  w.set("general.type", GgufValue::string("adapter"));
  w.set("adapter.type", GgufValue::string("lora"));
  w.set("adapter.lora.alpha", GgufValue::f32(alpha));
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (const GgufTensor& t : base.tensors()) {
    if (!lora_target(t.name)) continue;
    const int64_t cols = t.shape[0], rows = t.shape[1];
    std::vector<float> a(rank * cols), b(rows * rank);
    for (auto& v : a) v = nd(rng) / std::sqrt((float)cols);
    for (auto& v : b) v = 0.5f * nd(rng) / std::sqrt((float)rank);
    EXPECT_TRUE(w.add_tensor_f32(t.name + ".lora_a", dtype, {cols, rank}, a.data()).ok());
    EXPECT_TRUE(w.add_tensor_f32(t.name + ".lora_b", dtype, {rank, rows}, b.data()).ok());
    // What the file holds (after dtype rounding), as the reference must see it.
    auto& [da, db] = (*pairs)[t.name];
    da.resize(a.size());
    db.resize(b.size());
    const DTypeTraits* tr = dtype_traits(dtype);
    std::vector<float> back(std::max(a.size(), b.size()));
    auto round_trip = [&](const std::vector<float>& v, int64_t row_len, std::vector<double>* out) {
      std::vector<uint8_t> q(dtype_row_bytes(dtype, row_len));
      for (size_t r = 0; r < v.size() / row_len; ++r) {
        if (dtype == DType::F32) {
          std::copy(v.begin() + r * row_len, v.begin() + (r + 1) * row_len, back.begin());
        } else {
          tr->quantize(v.data() + r * row_len, q.data(), row_len);
          tr->dequantize(q.data(), back.data(), row_len);
        }
        for (int64_t c = 0; c < row_len; ++c) (*out)[r * row_len + c] = back[c];
      }
    };
    round_trip(a, cols, &da);
    round_trip(b, rank, &db);
  }
  return w.serialize();
}

// Max relative logit error of the base + adapters (seed, user scale; rank 4, alpha 8) against
// the float64 reference run on the merged weights; half the tokens prefilled, the rest decoded.
double lora_error(const TestModelSpec& spec, const std::vector<std::pair<uint64_t, float>>& adapters, DType adapter_dtype,
                  int n_tokens, int threads) {
  Loaded l = load(spec);
  auto f = GgufFile::parse(l.bytes.data(), l.bytes.size());
  std::vector<std::pair<Pairs, double>> deltas;
  for (const auto& [seed, s] : adapters) {
    Pairs p;
    const std::vector<uint8_t> file = make_adapter(*f, spec.arch, 4, 8.0f, seed, adapter_dtype, &p);
    auto ad = LoraAdapter::parse(file.data(), file.size(), "adapter");
    EXPECT_TRUE(ad.ok()) << ad.status().to_string();
    const Status st = l.model->add_lora(*ad, s);
    EXPECT_TRUE(st.ok()) << st.to_string();
    deltas.emplace_back(std::move(p), s * 8.0 / 4.0);  // alpha / rank
  }
  const std::vector<uint8_t> m = testing::merge_lora(*f, deltas);
  auto mf = GgufFile::parse(m.data(), m.size());
  EXPECT_TRUE(mf.ok());
  auto tokens = random_tokens(n_tokens, (int)spec.n_vocab, spec.seed + 7);
  auto ref = testing::reference_logits(*mf, spec, tokens);
  KvCache kv(l.model->config(), 1, spec.n_ctx, KvType::kF32);
  ThreadPool pool(threads);
  std::vector<float> logits, all_logits;
  std::vector<BatchToken> prefill;
  for (int t = 0; t < n_tokens / 2; ++t) prefill.push_back({tokens[t], t, 0, true});
  Status st = l.model->forward(prefill, kv, pool, logits);
  EXPECT_TRUE(st.ok()) << st.to_string();
  all_logits = logits;
  for (int t = n_tokens / 2; t < n_tokens; ++t) {
    st = l.model->forward({{tokens[t], t, 0, true}}, kv, pool, logits);
    EXPECT_TRUE(st.ok()) << st.to_string();
    all_logits.insert(all_logits.end(), logits.begin(), logits.end());
  }
  double worst = 0, base_diff = 0;
  for (int t = 0; t < n_tokens; ++t) {
    double mx = 0, err = 0;
    for (int64_t v = 0; v < spec.n_vocab; ++v) {
      mx = std::max(mx, std::fabs(ref[t][v]));
      err = std::max(err, std::fabs(all_logits[t * spec.n_vocab + v] - ref[t][v]));
    }
    worst = std::max(worst, err / mx);
  }
  // The adapters must matter: the base alone is far from the merged reference.
  auto base_ref = testing::reference_logits(*f, spec, tokens);
  for (int t = 0; t < n_tokens; ++t)
    for (int64_t v = 0; v < spec.n_vocab; ++v) base_diff = std::max(base_diff, std::fabs(base_ref[t][v] - ref[t][v]));
  if (std::any_of(adapters.begin(), adapters.end(), [](const auto& a) { return a.second != 0; })) {
    EXPECT_GT(base_diff, 0.05) << "the adapter changed nothing";
  }
  return worst;
}

class LoraArchTest : public ::testing::TestWithParam<std::string> {};

TEST_P(LoraArchTest, AdapterEqualsFloat64ReferenceOfMergedWeights) {
  TestModelSpec spec = spec_for(GetParam());
  spec.tied_output = false;  // the output matrix is adapted too
  EXPECT_LT(lora_error(spec, {{11, 1.0f}}, DType::F32, 10, 2), 2e-4) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(AllArchs, LoraArchTest, ::testing::Values("llama", "mistral", "qwen2", "qwen3", "qwen3moe",
                                                                     "gemma3", "exaone4", "granite", "phi3"));

TEST(Lora, F16BaseTwoAdaptersInF16) {
  TestModelSpec spec = spec_for("llama");
  spec.weight_type = DType::F16;
  EXPECT_LT(lora_error(spec, {{21, 0.5f}, {22, -1.5f}}, DType::F16, 12, 2), 2e-4);
}

TEST(Lora, QuantizedBaseStaysQuantized) {
  TestModelSpec spec = spec_for("llama");
  spec.weight_type = DType::Q8_0;  // the base stays quantized (and repacked); the reference dequantizes it
  // Q8_0 activations cost the base ~1.5% against the float64 reference (as in DtypeTest); small
  // adapters add next to nothing to that. (Large ones grow the weights, and with them how far the
  // activation rounding carries: the exact check of the LoRA term is the F32/F16 tests above.)
  const double base_err = lora_error(spec, {{21, 0.0f}}, DType::F16, 12, 2);  // same passes, no delta
  const double lora_err = lora_error(spec, {{21, 0.2f}, {22, -0.1f}}, DType::F16, 12, 2);
  EXPECT_LT(lora_err, 1.25 * base_err + 1e-3) << "base alone " << base_err;
}

// Multi-LoRA: three sequences in one batch — no adapter, adapter a, adapters a + b — each equal
// to the float64 reference of its own merged weights, prefill and decode.
TEST(Lora, NamedAdaptersPerTokenInOneBatch) {
  TestModelSpec spec = spec_for("qwen2");
  Loaded l = load(spec);
  auto f = GgufFile::parse(l.bytes.data(), l.bytes.size());
  Pairs pa, pb;
  const auto fa = make_adapter(*f, spec.arch, 4, 8.0f, 31, DType::F32, &pa);
  const auto fb = make_adapter(*f, spec.arch, 4, 8.0f, 32, DType::F32, &pb);
  auto a = LoraAdapter::parse(fa.data(), fa.size(), "a.gguf");
  auto b = LoraAdapter::parse(fb.data(), fb.size(), "b.gguf");
  ASSERT_TRUE(a.ok() && b.ok());
  auto ia = l.model->add_named_lora("a", *a, 0.5f);
  auto ib = l.model->add_named_lora("b", *b, 1.0f);
  ASSERT_TRUE(ia.ok() && ib.ok());
  EXPECT_EQ(*ia, 0);
  EXPECT_EQ(*ib, 1);
  EXPECT_FALSE(l.model->add_named_lora("a", *b, 1.0f).ok());  // names are unique
  EXPECT_EQ(l.model->named_lora_index("b"), 1);
  EXPECT_EQ(l.model->named_lora_index("c"), -1);
  const uint32_t masks[3] = {0u, 1u, 3u};
  const std::vector<uint8_t> m1 = testing::merge_lora(*f, {{pa, 0.5 * 2}});
  const std::vector<uint8_t> m2 = testing::merge_lora(*f, {{pa, 0.5 * 2}, {pb, 1.0 * 2}});
  auto g1 = GgufFile::parse(m1.data(), m1.size());
  auto g2 = GgufFile::parse(m2.data(), m2.size());
  const int n = 8;
  std::vector<std::vector<int32_t>> toks;
  std::vector<std::vector<std::vector<double>>> refs;
  for (int s = 0; s < 3; ++s) {
    toks.push_back(random_tokens(n, (int)spec.n_vocab, 40 + s));
    refs.push_back(testing::reference_logits(s == 0 ? *f : s == 1 ? *g1 : *g2, spec, toks.back()));
  }
  KvCache kv(l.model->config(), 3, spec.n_ctx, KvType::kF32);
  ThreadPool pool(2);
  std::vector<float> logits;
  std::vector<std::vector<float>> got(3);
  // Prefill 5 tokens of each sequence in one batch, then decode the rest three at a time.
  std::vector<BatchToken> batch;
  for (int s = 0; s < 3; ++s)
    for (int t = 0; t < 5; ++t) batch.push_back({toks[s][t], t, s, true, masks[s]});
  ASSERT_TRUE(l.model->forward(batch, kv, pool, logits).ok());
  for (int s = 0; s < 3; ++s) got[s].assign(logits.begin() + s * 5 * spec.n_vocab, logits.begin() + (s + 1) * 5 * spec.n_vocab);
  for (int t = 5; t < n; ++t) {
    batch.clear();
    for (int s = 0; s < 3; ++s) batch.push_back({toks[s][t], t, s, true, masks[s]});
    ASSERT_TRUE(l.model->forward(batch, kv, pool, logits).ok());
    for (int s = 0; s < 3; ++s) got[s].insert(got[s].end(), logits.begin() + s * spec.n_vocab, logits.begin() + (s + 1) * spec.n_vocab);
  }
  for (int s = 0; s < 3; ++s) EXPECT_LT(worst_rel(got[s].data(), refs[s], n, spec.n_vocab), 2e-4) << "sequence " << s;
  // Unloading "a" frees slot 0: mask 3 then means b alone, and the next adapter reuses slot 0.
  auto one_seq = [&](uint32_t mask) {
    KvCache kv1(l.model->config(), 1, spec.n_ctx, KvType::kF32);
    std::vector<BatchToken> bt;
    for (int t = 0; t < n; ++t) bt.push_back({toks[2][t], t, 0, true, mask});
    std::vector<float> lg;
    EXPECT_TRUE(l.model->forward(bt, kv1, pool, lg).ok());
    return lg;
  };
  auto rel_to = [&](const std::vector<float>& got1, const std::vector<std::vector<double>>& ref) {
    return worst_rel(got1.data(), ref, n, spec.n_vocab);
  };
  ASSERT_TRUE(l.model->remove_named_lora("a").ok());
  EXPECT_EQ(l.model->named_loras()[0], "");
  EXPECT_EQ(l.model->named_lora_index("a"), -1);
  EXPECT_NE(l.model->remove_named_lora("a").message().find("no LoRA adapter named 'a'"), std::string::npos);
  const std::vector<uint8_t> mb = testing::merge_lora(*f, {{pb, 1.0 * 2}});
  auto gb = GgufFile::parse(mb.data(), mb.size());
  EXPECT_LT(rel_to(one_seq(3u), testing::reference_logits(*gb, spec, toks[2])), 2e-4);
  auto ic = l.model->add_named_lora("c", *a, 0.5f);
  ASSERT_TRUE(ic.ok());
  EXPECT_EQ(*ic, 0);
  EXPECT_LT(rel_to(one_seq(3u), refs[2]), 2e-4);
  ASSERT_TRUE(l.model->remove_named_lora("b").ok());
  ASSERT_TRUE(l.model->remove_named_lora("c").ok());
  for (const auto& L : l.model->weights().layers) EXPECT_EQ(L.wq.lora, nullptr);  // nothing left attached
  EXPECT_LT(rel_to(one_seq(3u), testing::reference_logits(*f, spec, toks[2])), 2e-4);
}

TEST(Lora, BadAdaptersAreClearErrors) {
  TestModelSpec spec = spec_for("llama");
  Loaded l = load(spec);
  auto f = GgufFile::parse(l.bytes.data(), l.bytes.size());
  Pairs p;
  // Another architecture, another shape, and a model file passed as an adapter.
  std::vector<uint8_t> other = make_adapter(*f, "qwen2", 4, 8.0f, 1, DType::F32, &p);
  auto a = LoraAdapter::parse(other.data(), other.size(), "other.gguf");
  ASSERT_TRUE(a.ok());
  Status st = l.model->add_lora(*a, 1.0f);
  EXPECT_NE(st.message().find("adapter for 'qwen2'"), std::string::npos) << st.to_string();
  TestModelSpec wide = spec;
  wide.n_ff = 128;
  Loaded lw = load(wide);
  auto fw = GgufFile::parse(lw.bytes.data(), lw.bytes.size());
  std::vector<uint8_t> wrong = make_adapter(*fw, "llama", 4, 8.0f, 1, DType::F32, &p);
  auto b = LoraAdapter::parse(wrong.data(), wrong.size(), "wide.gguf");
  ASSERT_TRUE(b.ok());
  st = l.model->add_lora(*b, 1.0f);
  EXPECT_NE(st.message().find("in the model: an adapter for another model?"), std::string::npos) << st.to_string();
  for (const auto& L : l.model->weights().layers) EXPECT_EQ(L.w_up.lora, nullptr);  // nothing half-attached
  auto c = LoraAdapter::parse(l.bytes.data(), l.bytes.size(), "model.gguf");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("not an adapter file"), std::string::npos);
}

TEST(LongRope, ShortFactorsWithinTheOriginalContext) {
  TestModelSpec s = spec_for("phi3");
  s.n_ctx = 48;  // <= orig_ctx 64: short factors
  s.seed = 3;
  EXPECT_LE(compare(s, KvType::kF32, 40, 2), 1e-4);
}

// Sliding-window layers keep a ring of window + kSwaSlack positions: a sequence longer than the
// ring (wrapping it several times), fed whole (split internally) and in odd chunks, must still
// match the reference, and the cache must be smaller than a full one.
TEST(SlidingWindow, RingCacheMatchesReferenceAndSavesMemory) {
  for (std::string arch : {"gemma2", "gemma3", "exaone4"}) {
    TestModelSpec s = spec_for(arch);
    s.n_ctx = 700;
    s.seed = 17;
    EXPECT_LE(compare(s, KvType::kF32, 600, 2), 1e-4) << arch << " whole";
    EXPECT_LE(compare(s, KvType::kF16, 600, 3, /*chunk=*/37), 5e-3) << arch << " chunked";
    Loaded l = load(s);
    const ModelConfig& c = l.model->config();
    KvCache kv(c, 2, 4096, KvType::kF16);
    int64_t rows = 0, ring_layers = 0;
    for (int64_t il = 0; il < c.n_layer; ++il) {
      rows += c.is_swa(il) ? s.n_swa + KvCache::kSwaSlack : 4096;
      ring_layers += c.is_swa(il);
    }
    EXPECT_GT(ring_layers, 0);
    EXPECT_EQ(kv.bytes(), (size_t)(2 * 2 * rows * c.n_head_kv * c.head_dim * 2)) << arch;
  }
}

// Long spans are attended in blocks merged by their log-sum-exp (ops::attention). Blocks of 16 and
// 61 positions on a 300-token context (prefill and one-token decode) match the float64 reference
// as one block does, with plain, soft-capped (gemma2) and sliding-window ring layers (gemma3).
TEST(Attention, BlockMergeMatchesReference) {
  for (std::string arch : {"llama", "gemma2", "gemma3"}) {
    TestModelSpec s = spec_for(arch);
    s.n_ctx = 320;
    s.seed = 23;
    const double whole = compare(s, KvType::kF32, 300, 2);
    for (int64_t blk : {16, 61}) {
      const int64_t prev = ops::set_attention_block(blk);
      EXPECT_LE(compare(s, KvType::kF32, 300, 2), 1e-4) << arch << " blocks of " << blk;
      EXPECT_LE(compare(s, KvType::kF16, 300, 3, /*chunk=*/1), 5e-3) << arch << " decode, blocks of " << blk;
      ops::set_attention_block(prev);
    }
    EXPECT_LE(whole, 1e-4) << arch;
  }
}

// Chunks of a long prompt are attended in tiles of queries (ops::set_prefill_tiling): all of the
// tile's queries at once over the prefix they share, each query's triangle on its own, merged by
// log-sum-exp. Tiles of 16 and 7 queries with prefixes split in runs of 61 positions and paged
// blocks match the float64 reference, in F32, F16 and Q8_0 caches, with GQA groups of 2 and 4 and
// with the layers the tiles skip (soft caps: gemma2; sliding windows: gemma3).
TEST(Attention, PrefillTilesMatchReference) {
  for (std::string arch : {"llama", "mistral", "gemma2", "gemma3", "qwen3"}) {
    TestModelSpec s = spec_for(arch);
    s.n_ctx = 320;
    s.seed = 29;
    if (arch == "qwen3") s.head_dim = 32;  // Q8_0 rows need a multiple of 32
    for (int64_t tile : {16, 7}) {
      const auto prev = ops::set_prefill_tiling(tile, 1);
      const int64_t prev_blk = ops::set_attention_block(61);
      EXPECT_LE(compare(s, KvType::kF32, 300, 2, /*chunk=*/100), 1e-4) << arch << " tiles of " << tile;
      EXPECT_LE(compare(s, KvType::kF16, 300, 2, /*chunk=*/90), 5e-3) << arch << " tiles of " << tile;
      if (arch == "qwen3") {
        EXPECT_LE(compare(s, KvType::kQ8_0, 300, 2, /*chunk=*/90), 3e-2) << arch << " Q8_0";
      }
      ops::set_attention_block(prev_blk);
      ops::set_prefill_tiling(prev.first, prev.second);
    }
  }
}

// A Q8_0 KV cache (KvType::kQ8_0): within Q8_0's rounding of the float64 reference, in prefill
// and one-token decode, with plain and sliding-window layers, at 53% of F16's bytes; a head size
// that is not a multiple of 32 is refused.
TEST(KvQ8, MatchesReferenceAtHalfTheMemory) {
  for (std::string arch : {"llama", "gemma3", "qwen3"}) {
    TestModelSpec s = spec_for(arch);
    s.head_dim = 32;
    s.seed = 31;
    EXPECT_LE(compare(s, KvType::kQ8_0, 60, 2), 3e-2) << arch;
    EXPECT_LE(compare(s, KvType::kQ8_0, 40, 2, /*chunk=*/1), 3e-2) << arch << " decode";
    Loaded l = load(s);
    EXPECT_TRUE(KvCache::check_type(l.model->config(), KvType::kQ8_0).ok());
    EXPECT_EQ(KvCache::bytes_for(l.model->config(), 1, 256, KvType::kQ8_0) * 64,
              KvCache::bytes_for(l.model->config(), 1, 256, KvType::kF16) * 34);
  }
  Loaded l16 = load(spec_for("llama"));  // head_dim 16
  EXPECT_FALSE(KvCache::check_type(l16.model->config(), KvType::kQ8_0).ok());
}

TEST(SlidingWindow, TruncateKeepsOrDropsTheWindow) {
  TestModelSpec s = spec_for("gemma2");
  s.n_ctx = 1024;
  Loaded l = load(s);
  ThreadPool pool(2);
  KvCache kv(l.model->config(), 2, 1024, KvType::kF32);
  auto toks = random_tokens(400, 96, 5);
  std::vector<BatchToken> b;
  for (int i = 0; i < 400; ++i) b.push_back({toks[i], i, 0, i == 399});
  std::vector<float> full;
  ASSERT_TRUE(l.model->forward(b, kv, pool, full).ok());
  // Going back a little keeps the window: recomputing the last token gives the same logits.
  kv.truncate(0, 399);
  EXPECT_EQ(kv.seq_len(0), 399);
  std::vector<float> again;
  ASSERT_TRUE(l.model->forward({{toks[399], 399, 0, true}}, kv, pool, again).ok());
  ASSERT_EQ(again.size(), full.size());
  for (size_t i = 0; i < full.size(); ++i) ASSERT_NEAR(again[i], full[i], 1e-4) << i;
  kv.copy_prefix(0, 1, 398);
  EXPECT_EQ(kv.seq_len(1), 398);
  // Going back further than the ring's slack loses the window: the sequence is cleared.
  kv.truncate(0, 10);
  EXPECT_EQ(kv.seq_len(0), 0);
}

TEST(Moe, MixtralStyleLlamaQuantizedAndRouterTies) {
  TestModelSpec s = spec_for("llama");  // Mixtral: llama with experts, renormalized top-2
  s.n_expert = 4;
  s.n_expert_used = 2;
  EXPECT_LE(compare(s, KvType::kF32, 30, 2), 1e-4) << "mixtral";
  s.weight_type = DType::Q8_0;
  EXPECT_LE(compare(s, KvType::kF32, 30, 2), 2e-2) << "mixtral q8_0";
  for (std::string arch : {"llama", "qwen2moe", "qwen3moe"}) {  // duplicated router rows: exact ties
    TestModelSpec t = spec_for(arch);
    if (arch == "llama") { t.n_expert = 6; t.n_expert_used = 3; }
    t.router_ties = true;
    t.seed = 21;
    EXPECT_LE(compare(t, KvType::kF32, 30, 3, /*chunk=*/7), 1e-4) << arch << " with router ties";
  }
}

// Q4_0 / Q8_0 / Q4_K / Q6_K matrices with rows of whole 512-element groups are repacked at load on levels with
// kernels for it (kernels/repack.h): decode (one token per step: the rows kernels) and prefill
// (the GEMM through the repacked panel packers) must still match the float64 reference, dense and
// with expert stacks.
TEST(Repack, RepackedQuantizedModelsMatchReference) {
  for (std::string arch : {"llama", "qwen3moe"})
    // Q4_K: 4e-2 because the file layout itself reaches 0.035 here (qwen3moe decode, Q8_K
    // activations; 8-bit activation rounding can flip a router pick).
    for (DtypeCase dc : {DtypeCase{DType::Q8_0, 2e-2}, DtypeCase{DType::Q4_0, 3e-2}, DtypeCase{DType::Q4_K, 4e-2},
                         DtypeCase{DType::Q5_K, 3e-2}, DtypeCase{DType::Q6_K, 3e-2}, DtypeCase{DType::Q3_K, 3e-2},
                         DtypeCase{DType::Q2_K, 3e-2}}) {
      // 2-bit weights flip qwen3moe's router picks even in the file layout (0.12 at the scalar
      // level, where nothing is repacked), so Q2_K is checked on the dense stack only.
      if (dc.dt == DType::Q2_K && arch == "qwen3moe") continue;
      TestModelSpec s = spec_for(arch);
      s.weight_type = dc.dt;
      s.n_embd = 512; s.n_head = 8; s.n_head_kv = 2; s.head_dim = 64; s.n_ff = 1024;
      s.n_ff_exp = 512; s.n_ff_shexp = 512;
      for (int chunk : {1, 0}) {
        size_t repacked = 0;
        EXPECT_LE(compare(s, KvType::kF32, 12, 2, chunk, &repacked), dc.tol)
            << arch << " " << dtype_name(dc.dt) << (chunk ? " decode" : " prefill");
        if (repack_pays(dc.dt, 512, kernels())) {
          EXPECT_GT(repacked, 0u) << arch << " " << dtype_name(dc.dt);
        } else {
          EXPECT_EQ(repacked, 0u) << arch << " " << dtype_name(dc.dt);
        }
      }
    }
}

TEST(Moe, SelectExpertsOrderTiesAndNormalization) {
  const float logits[5] = {1.0f, 3.0f, 3.0f, -2.0f, 1.0f};
  int32_t ids[3];
  float w[3];
  moe::select_experts(logits, 5, 3, false, ids, w);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], 2);
  EXPECT_EQ(ids[2], 0);  // tie between 0 and 4: the lower index
  double z = 0;
  for (float l : logits) z += std::exp(l - 3.0);
  EXPECT_NEAR(w[0], 1.0 / z, 1e-6);
  EXPECT_NEAR(w[2], std::exp(-2.0) / z, 1e-6);
  moe::select_experts(logits, 5, 3, true, ids, w);
  EXPECT_NEAR(w[0] + w[1] + w[2], 1.0, 1e-6);
  EXPECT_NEAR(w[0], 1.0 / (2 + std::exp(-2.0)), 1e-6);
}
INSTANTIATE_TEST_SUITE_P(
    Dtypes, DtypeTest,
    ::testing::Combine(::testing::Values("llama", "qwen2", "qwen3"),
                       ::testing::Values(DtypeCase{DType::F16, 1e-4}, DtypeCase{DType::BF16, 1e-4},
                                         DtypeCase{DType::Q8_0, 2e-2}, DtypeCase{DType::Q4_0, 3e-2},
                                         DtypeCase{DType::Q4_1, 3e-2}, DtypeCase{DType::Q5_0, 3e-2},
                                         DtypeCase{DType::Q5_1, 3e-2}, DtypeCase{DType::Q2_K, 3e-2},
                                         DtypeCase{DType::Q3_K, 3e-2}, DtypeCase{DType::Q4_K, 3e-2},
                                         DtypeCase{DType::Q5_K, 3e-2}, DtypeCase{DType::Q6_K, 3e-2})));

TEST(RopeScaling, AllTypesMatchReference) {
  for (std::string sc : {"linear", "llama3", "yarn"}) {
    TestModelSpec s;
    s.scaling = sc;
    s.scaling_factor = 4.0;
    s.orig_ctx = 32;
    EXPECT_LE(compare(s, KvType::kF32, 40, 2), 1e-4) << sc;
  }
  TestModelSpec s;
  s.scaling = "llama3";
  s.rope_freqs_tensor = true;
  EXPECT_LE(compare(s, KvType::kF32, 40, 2), 1e-4) << "rope_freqs.weight";
  TestModelSpec partial;  // rope over part of each head
  partial.n_rot = 8;
  EXPECT_LE(compare(partial, KvType::kF32, 34, 2), 1e-4) << "partial rotary";
}

TEST(Batching, ThreeSequencesInOneBatchEqualSeparateRuns) {
  TestModelSpec s = spec_for("qwen2");
  Loaded l = load(s);
  ThreadPool pool(2);
  std::vector<std::vector<int32_t>> seqs = {random_tokens(9, 96, 1), random_tokens(17, 96, 2), random_tokens(4, 96, 3)};
  // Separate runs.
  std::vector<std::vector<float>> solo;
  for (auto& toks : seqs) {
    KvCache kv(l.model->config(), 1, 64, KvType::kF32);
    std::vector<BatchToken> b;
    for (size_t i = 0; i < toks.size(); ++i) b.push_back({toks[i], (int64_t)i, 0, true});
    std::vector<float> lg;
    ASSERT_TRUE(l.model->forward(b, kv, pool, lg).ok());
    solo.push_back(lg);
  }
  // Interleaved in one batch.
  KvCache kv(l.model->config(), 3, 64, KvType::kF32);
  std::vector<BatchToken> b;
  std::vector<std::pair<int, int>> where;
  for (size_t i = 0; i < 17; ++i)
    for (int sq = 0; sq < 3; ++sq)
      if (i < seqs[sq].size()) { b.push_back({seqs[sq][i], (int64_t)i, sq, true}); where.push_back({sq, (int)i}); }
  std::vector<float> lg;
  ASSERT_TRUE(l.model->forward(b, kv, pool, lg).ok());
  for (size_t k = 0; k < where.size(); ++k) {
    auto [sq, i] = where[k];
    for (int64_t v = 0; v < s.n_vocab; ++v)
      ASSERT_EQ(lg[k * s.n_vocab + v], solo[sq][i * s.n_vocab + v]) << "seq " << sq << " pos " << i;
  }
}

TEST(Generation, GreedyMatchesReferenceFor32Tokens) {
  for (std::string arch : {"llama", "qwen2", "qwen3"}) {
    TestModelSpec s = spec_for(arch);
    Loaded l = load(s);
    auto f = GgufFile::parse(l.bytes.data(), l.bytes.size());
    ThreadPool pool(2);
    KvCache kv(l.model->config(), 1, 128, KvType::kF32);
    std::vector<int32_t> prompt = random_tokens(8, 96, 11);
    std::vector<int32_t> ref_seq = prompt, modu_seq = prompt;
    std::vector<BatchToken> b;
    for (size_t i = 0; i < prompt.size(); ++i) b.push_back({prompt[i], (int64_t)i, 0, i + 1 == prompt.size()});
    std::vector<float> lg;
    for (int step = 0; step < 32; ++step) {
      ASSERT_TRUE(l.model->forward(b, kv, pool, lg).ok());
      int32_t next = (int32_t)(std::max_element(lg.begin(), lg.end()) - lg.begin());
      modu_seq.push_back(next);
      b = {{next, (int64_t)modu_seq.size() - 1, 0, true}};
      auto ref = testing::reference_logits(*f, s, ref_seq);
      const auto& last = ref.back();
      ref_seq.push_back((int32_t)(std::max_element(last.begin(), last.end()) - last.begin()));
    }
    EXPECT_EQ(modu_seq, ref_seq) << arch;
  }
}

TEST(Forward, RejectsBadBatches) {
  Loaded l = load(spec_for("llama"));
  ThreadPool pool(1);
  KvCache kv(l.model->config(), 2, 8, KvType::kF32);
  std::vector<float> lg;
  EXPECT_EQ(l.model->forward({}, kv, pool, lg).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(l.model->forward({{1000, 0, 0, true}}, kv, pool, lg).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(l.model->forward({{1, 0, 5, true}}, kv, pool, lg).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(l.model->forward({{1, 3, 0, true}}, kv, pool, lg).code(), StatusCode::kInvalidArgument);
  std::vector<BatchToken> too_long;
  for (int i = 0; i < 9; ++i) too_long.push_back({1, i, 0, false});
  EXPECT_EQ(l.model->forward(too_long, kv, pool, lg).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(kv.seq_len(0), 0);  // a rejected batch leaves the cache as it was
}

TEST(Loading, MissingTensorAndUnknownArchAreClearErrors) {
  TestModelSpec s;
  s.arch = "llama";
  auto bytes = testing::make_random_model(s);
  auto f = GgufFile::parse(bytes.data(), bytes.size());
  ASSERT_TRUE(f.ok());
  // Rebuild without one tensor.
  GgufWriter w;
  for (const auto& [k, v] : f->metadata()) if (k != "general.alignment") w.set(k, v);
  for (const auto& t : f->tensors()) {
    if (t.name != "blk.1.ffn_up.weight") {
      ASSERT_TRUE(w.add_tensor(t.name, t.dtype, t.shape, t.data, t.nbytes).ok());
    }
  }
  auto b2 = w.serialize();
  auto f2 = GgufFile::parse(b2.data(), b2.size(), "x.gguf");
  auto m = Model::from_gguf(std::move(f2).value());
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("blk.1.ffn_up.weight"), std::string::npos) << m.status().to_string();
  GgufWriter w3;
  w3.set("general.architecture", GgufValue::string("nonexistent"));
  auto b3 = w3.serialize();
  auto m3 = Model::from_gguf(std::move(GgufFile::parse(b3.data(), b3.size())).value());
  ASSERT_FALSE(m3.ok());
  EXPECT_NE(m3.status().message().find("qwen3"), std::string::npos) << m3.status().to_string();
}

}  // namespace
}  // namespace modu
