// The continuous-batching engine on a tiny random model: batching and prefix reuse do not change
// greedy output, fairness between tenants, the bounded queue, cancellation and embeddings.
#include "modu/server/engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <random>
#include <thread>

#include "modu/gguf/gguf.h"
#include "modu/runtime/generate.h"

namespace modu::server {
namespace {

// A 2-layer llama with a byte vocabulary and random weights; with arch "gemma2", a Gemma 2 whose
// even layer has a sliding window of `window` positions.
std::string write_tiny_model(const std::string& arch = "llama", int64_t window = 0) {
  const std::string path = testing::TempDir() + "/engine_test_tiny_" + arch + ".gguf";
  GgufWriter w;
  w.set("general.architecture", GgufValue::string(arch));
  write_byte_vocab(w);
  const int64_t d = 64, ff = 128, heads = 4, kv = 2, hd = d / heads, n_vocab = 259;  // write_byte_vocab: 3 specials + 256 bytes
  w.set(arch + ".context_length", GgufValue::u32(512));
  w.set(arch + ".embedding_length", GgufValue::u32((uint32_t)d));
  w.set(arch + ".block_count", GgufValue::u32(2));
  w.set(arch + ".feed_forward_length", GgufValue::u32((uint32_t)ff));
  w.set(arch + ".attention.head_count", GgufValue::u32((uint32_t)heads));
  w.set(arch + ".attention.head_count_kv", GgufValue::u32((uint32_t)kv));
  w.set(arch + ".attention.layer_norm_rms_epsilon", GgufValue::f32(1e-5f));
  w.set(arch + ".rope.dimension_count", GgufValue::u32((uint32_t)hd));
  if (window > 0) w.set(arch + ".attention.sliding_window", GgufValue::u32((uint32_t)window));
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0, 1);
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float mean, float sd) {
    int64_t n = 1;
    for (auto s : shape) n *= s;
    std::vector<float> v((size_t)n);
    for (auto& x : v) x = mean + sd * nd(rng);
    ASSERT_TRUE(w.add_tensor_f32(name, DType::F32, shape, v.data()).ok()) << name;
  };
  add("token_embd.weight", {d, n_vocab}, 0, 1);
  add("output_norm.weight", {d}, 1, 0.1f);
  add("output.weight", {d, n_vocab}, 0, 0.3f);
  for (int l = 0; l < 2; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    add(b + "attn_norm.weight", {d}, 1, 0.1f);
    add(b + "attn_q.weight", {d, heads * hd}, 0, 0.2f);
    add(b + "attn_k.weight", {d, kv * hd}, 0, 0.2f);
    add(b + "attn_v.weight", {d, kv * hd}, 0, 0.2f);
    add(b + "attn_output.weight", {heads * hd, d}, 0, 0.2f);
    add(b + "ffn_norm.weight", {d}, 1, 0.1f);
    add(b + "ffn_gate.weight", {d, ff}, 0, 0.2f);
    add(b + "ffn_up.weight", {d, ff}, 0, 0.2f);
    add(b + "ffn_down.weight", {ff, d}, 0, 0.2f);
    if (arch == "gemma2") {
      add(b + "post_attention_norm.weight", {d}, 1, 0.1f);
      add(b + "post_ffw_norm.weight", {d}, 1, 0.1f);
    }
  }
  EXPECT_TRUE(w.write(path).ok());
  return path;
}

class EngineTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto m = Model::load(write_tiny_model());
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    model_ = std::move(m).value().release();
    auto t = Tokenizer::from_gguf(model_->gguf());
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    tok_ = std::move(t).value().release();
  }
  static GenJob greedy(const std::string& prompt, int n, const std::string& tenant = "default") {
    GenJob j;
    j.prompt = tok_->encode(prompt, true, false);
    j.sampling.temperature = 0;
    j.max_tokens = n;
    j.ignore_eos = true;
    j.tenant = tenant;
    return j;
  }
  // The reference: the plain generation loop on its own one-sequence cache.
  static std::vector<int32_t> solo(const GenJob& j, const Model* model = model_) {
    KvCache kv(model->config(), 1, 1024, KvType::kF16);
    ThreadPool pool(1);
    GenerateOptions o;
    o.n_predict = (int)j.max_tokens;
    o.sampling = j.sampling;
    std::vector<int32_t> out;
    // generate() stops at EOG; the jobs here ignore EOG, so drive the model directly when needed.
    Sampler s(j.sampling, (int32_t)model->config().n_vocab);
    std::vector<float> logits;
    std::vector<BatchToken> b;
    for (size_t i = 0; i < j.prompt.size(); ++i) b.push_back({j.prompt[i], (int64_t)i, 0, i + 1 == j.prompt.size()});
    EXPECT_TRUE(model->forward(b, kv, pool, logits).ok());
    int64_t pos = (int64_t)j.prompt.size();
    for (int64_t n = 0; n < j.max_tokens; ++n) {
      const int32_t t = s.sample(logits.data());
      out.push_back(t);
      EXPECT_TRUE(model->forward({{t, pos++, 0, true}}, kv, pool, logits).ok());
    }
    return out;
  }
  static std::vector<int32_t> run(std::shared_ptr<Stream> st) {
    std::vector<Delta> ds;
    while (!st->wait(&ds, std::chrono::milliseconds(100))) {
    }
    std::vector<int32_t> ids;
    for (auto& d : ds)
      for (auto& t : d.tokens) ids.push_back(t.id);
    return ids;
  }
  // Waits for the request and returns its whole text.
  static std::string run_text(const std::shared_ptr<Stream>& st) {
    std::vector<Delta> ds;
    while (!st->wait(&ds, std::chrono::milliseconds(100))) {
    }
    std::string text;
    for (auto& d : ds) text += d.text;
    return text;
  }
  static EngineOptions opts(int parallel) {
    EngineOptions o;
    o.n_parallel = parallel;
    o.n_ctx = 256;
    o.n_threads = 1;
    o.n_batch = 16;  // small: long prompts take several steps (chunked prefill)
    return o;
  }
  static Model* model_;
  static Tokenizer* tok_;
};
Model* EngineTest::model_ = nullptr;
Tokenizer* EngineTest::tok_ = nullptr;

TEST_F(EngineTest, BatchedGreedyEqualsSolo) {
  Engine e(*model_, *tok_, opts(6));
  std::vector<GenJob> jobs;
  for (int i = 0; i < 8; ++i) {
    GenJob j = greedy("prompt number " + std::to_string(i) + std::string(i * 7, 'x'), 12 + i);
    j.top_logprobs = 0;  // report token ids
    jobs.push_back(j);
  }
  std::vector<std::shared_ptr<Stream>> sts(jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) ASSERT_EQ(e.submit(jobs[i], &sts[i]), Engine::Submit::kOk);
  for (size_t i = 0; i < jobs.size(); ++i) {
    EXPECT_EQ(run(sts[i]), solo(jobs[i])) << "request " << i;
    EXPECT_EQ(sts[i]->finish(), Finish::kLength);
    EXPECT_EQ(sts[i]->n_completion(), jobs[i].max_tokens);
  }
  // n_active_ is refreshed after the step that finished the last stream returns: wait, bounded.
  for (int i = 0; i < 500 && !e.idle(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(e.idle());
}

TEST_F(EngineTest, PrefixCacheReusesAndMatches) {
  Engine e(*model_, *tok_, opts(2));
  GenJob a = greedy("a shared system prompt that is fairly long, then question one", 10);
  a.top_logprobs = 0;
  std::shared_ptr<Stream> s1, s2, s3;
  ASSERT_EQ(e.submit(a, &s1), Engine::Submit::kOk);
  const auto out1 = run(s1);
  EXPECT_EQ(s1->n_cached(), 0);
  ASSERT_EQ(e.submit(a, &s2), Engine::Submit::kOk);
  EXPECT_EQ(run(s2), out1);
  EXPECT_EQ(s2->n_cached(), (int64_t)a.prompt.size() - 1);
  GenJob b = greedy("a shared system prompt that is fairly long, then question two", 10);
  b.top_logprobs = 0;
  ASSERT_EQ(e.submit(b, &s3), Engine::Submit::kOk);
  EXPECT_EQ(run(s3), solo(b));
  EXPECT_GT(s3->n_cached(), 40);
  // The engine thread refreshes its gauges after the step that finished s3 returns, which can
  // come after run() sees the finish (1 failure in a few loaded runs): wait for it, bounded.
  for (int i = 0; i < 500 && e.gauges().cached_sequences == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GT(e.gauges().cached_sequences, 0);
}

// The KV pool is shared by memory, not by slot: with room for two requests' blocks, four slots
// run two requests at a time and the rest wait (in order, with unchanged greedy output); a
// request that could never fit is refused at submit.
TEST_F(EngineTest, PagedPoolAdmitsByMemory) {
  const size_t bb = KvCache::block_bytes(model_->config(), 256, KvType::kF16);
  EngineOptions o = opts(4);
  o.cache_bytes = 5 * bb;  // each job below may need 1 block + 1 spare: two fit, not three
  Engine e(*model_, *tok_, o);
  EXPECT_EQ(e.kv_blocks(), 5);
  std::vector<GenJob> jobs;
  std::vector<std::shared_ptr<Stream>> sts(4);
  for (int i = 0; i < 4; ++i) {
    jobs.push_back(greedy("request " + std::to_string(i) + " asks", 60));
    jobs.back().top_logprobs = 0;
    ASSERT_EQ(e.submit(jobs.back(), &sts[(size_t)i]), Engine::Submit::kOk);
  }
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(run(sts[(size_t)i]), solo(jobs[(size_t)i])) << "request " << i;
    EXPECT_EQ(sts[(size_t)i]->finish(), Finish::kLength);
  }
  for (int i = 0; i < 500 && !e.idle(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const Metrics::Gauges g = e.gauges();
  EXPECT_GT(g.kv_memory_waits, 0) << "the third request waited for blocks";
  EXPECT_EQ(g.kv_blocks, 5);
  EXPECT_LE(g.kv_free_blocks, 5);
  // prompt + max_tokens reaches the whole 256-position context: 2 blocks + 1 spare > 2.
  EngineOptions small = opts(1);
  small.cache_bytes = 2 * bb;
  Engine e2(*model_, *tok_, small);
  std::shared_ptr<Stream> st;
  EXPECT_EQ(e2.submit(greedy("too long for this pool", 250), &st), Engine::Submit::kTooLarge);
  EXPECT_EQ(e2.submit(greedy("fits", 20), &st), Engine::Submit::kOk);
  EXPECT_EQ(run(st).size(), 0u);  // (no top_logprobs: ids are not reported)
  EXPECT_EQ(st->finish(), Finish::kLength);
}

// Cached prefixes are evicted, least recently used first, when a request needs their blocks.
TEST_F(EngineTest, CachedPrefixesGiveWayToNewRequests) {
  const size_t bb = KvCache::block_bytes(model_->config(), 256, KvType::kF16);
  EngineOptions o = opts(1);
  o.cache_bytes = 4 * bb;
  Engine e(*model_, *tok_, o);
  std::vector<GenJob> jobs;
  for (int i = 0; i < 5; ++i) {
    jobs.push_back(greedy(std::to_string(i) + " a different prompt of some length to hold a block", 20));
    jobs.back().top_logprobs = 0;
    std::shared_ptr<Stream> st;
    ASSERT_EQ(e.submit(jobs.back(), &st), Engine::Submit::kOk);
    EXPECT_EQ(run(st), solo(jobs.back())) << "request " << i;
  }
  for (int i = 0; i < 500 && !e.idle(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GT(e.gauges().kv_evictions, 0);
  // The most recent prompt is still cached.
  std::shared_ptr<Stream> again;
  ASSERT_EQ(e.submit(jobs.back(), &again), Engine::Submit::kOk);
  EXPECT_EQ(run(again), solo(jobs.back()));
  EXPECT_EQ(again->n_cached(), (int64_t)jobs.back().prompt.size() - 1);
}

TEST_F(EngineTest, StopStringsAndText) {
  Engine e(*model_, *tok_, opts(1));
  GenJob j = greedy("hello", 30);
  std::shared_ptr<Stream> st;
  ASSERT_EQ(e.submit(j, &st), Engine::Submit::kOk);
  const std::string text = run_text(st);
  ASSERT_GE(text.size(), 4u);
  // Ask again with a stop string taken from the middle of that output.
  GenJob k = j;
  k.stop = {text.substr(2, 2)};
  std::shared_ptr<Stream> st2;
  ASSERT_EQ(e.submit(k, &st2), Engine::Submit::kOk);
  const std::string text2 = run_text(st2);
  EXPECT_EQ(st2->finish(), Finish::kStop);
  EXPECT_EQ(text2, text.substr(0, text.find(k.stop[0])));
}

TEST_F(EngineTest, FairBetweenTenants) {
  Engine e(*model_, *tok_, opts(1));
  std::vector<std::shared_ptr<Stream>> a(4), b(1);
  // a's requests are long enough that none can finish while the others are being submitted (a
  // short one raced with submission on a fast or idle machine).
  for (auto& s : a) ASSERT_EQ(e.submit(greedy("tenant a", 200, "a"), &s), Engine::Submit::kOk);
  ASSERT_EQ(e.submit(greedy("tenant b", 20, "b"), &b[0]), Engine::Submit::kOk);
  run(b[0]);
  // b arrived last but must not wait for all of a: a's last request has not started yet.
  EXPECT_FALSE(a[3]->started());
  for (auto& s : a) run(s);
}

TEST_F(EngineTest, TenantParallelCap) {
  Engine e(*model_, *tok_, opts(4));
  std::vector<std::shared_ptr<Stream>> a(3);
  for (auto& s : a) {
    GenJob j = greedy("capped", 40, "a");
    j.tenant_max_parallel = 1;
    ASSERT_EQ(e.submit(j, &s), Engine::Submit::kOk);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_LE(e.gauges().active_slots, 1);
  for (auto& s : a) run(s);
}

TEST_F(EngineTest, QueueBoundAndCancel) {
  EngineOptions o = opts(1);
  o.max_queue = 1;
  Engine e(*model_, *tok_, o);
  std::shared_ptr<Stream> s1, s2, s3;
  ASSERT_EQ(e.submit(greedy("long one", 200), &s1), Engine::Submit::kOk);
  // Hold the engine between steps (its client probe waits) so that s1 keeps the slot while the
  // queue fills, however the threads are scheduled (on a loaded machine s1 once finished first).
  // The probe waits only once s1 holds the slot: admission also asks a queued client whether it
  // is gone, under the engine's lock, and a probe waiting there would block submit() below.
  std::atomic<bool> release{false};
  s1->set_client_probe([&release, s = s1.get()] {
    while (s->started() && !release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return true;
  });
  ASSERT_EQ(e.submit(greedy("waits", 5), &s2), Engine::Submit::kOk);
  EXPECT_EQ(e.submit(greedy("refused", 5), &s3), Engine::Submit::kQueueFull);
  s1->cancel();
  release = true;
  run(s1);
  EXPECT_EQ(s1->finish(), Finish::kCancelled);
  EXPECT_LT(s1->n_completion(), 200);
  run(s2);
  EXPECT_EQ(s2->finish(), Finish::kLength);
  e.stop();
  EXPECT_EQ(e.submit(greedy("late", 5), &s3), Engine::Submit::kStopped);
}

// A client probe that reports the connection gone ends the request before the next step: each
// probe call precedes at most one sampled token.
TEST_F(EngineTest, ClientProbeCancelsWithinOneStep) {
  Engine e(*model_, *tok_, opts(1));
  std::shared_ptr<Stream> blocker, st;  // the blocker holds the only slot while the probe is set
  ASSERT_EQ(e.submit(greedy("hold the slot", 200), &blocker), Engine::Submit::kOk);
  ASSERT_EQ(e.submit(greedy("a client that leaves", 200), &st), Engine::Submit::kOk);
  auto calls = std::make_shared<std::atomic<int>>(0);
  st->set_client_probe([calls] { return ++*calls <= 10; });
  blocker->cancel();
  run(blocker);
  run(st);
  EXPECT_EQ(st->finish(), Finish::kCancelled);
  EXPECT_LE(st->n_completion(), 10);
  EXPECT_TRUE(st->cancelled());
  st->clear_client_probe();
}

// A sliding-window model cannot rewind a cached sequence far back (its window ring has moved on):
// the cache clears it, and prefix reuse must fall back to recomputing instead of trusting the
// shared prefix length.
TEST_F(EngineTest, SlidingWindowPrefixReuseBeyondTheRing) {
  auto m = Model::load(write_tiny_model("gemma2", 8));
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const Model& swa = *m.value();
  ASSERT_GT(swa.config().n_swa, 0);
  EngineOptions o = opts(1);
  o.n_ctx = 1024;
  o.n_batch = 64;
  Engine e(swa, *tok_, o);
  const std::string common = "The same opening words. ";
  std::string tail_a;
  for (int i = 0; i < 40; ++i) tail_a += "filler " + std::to_string(i) + " ";  // > kSwaSlack tokens
  ASSERT_GT(tail_a.size(), (size_t)KvCache::kSwaSlack + 32);
  std::shared_ptr<Stream> a, b;
  ASSERT_EQ(e.submit(greedy(common + tail_a, 4), &a), Engine::Submit::kOk);
  run(a);
  ASSERT_EQ(a->finish(), Finish::kLength);
  GenJob jb = greedy(common + "then something else", 12);
  jb.top_logprobs = 0;  // report token ids
  ASSERT_EQ(e.submit(jb, &b), Engine::Submit::kOk);
  EXPECT_EQ(run(b), solo(jb, &swa));
  EXPECT_EQ(b->finish(), Finish::kLength);
  EXPECT_EQ(b->n_cached(), 0);  // the window was gone: nothing could be reused
  // Going back within the ring still reuses: same long prompt, different last words.
  std::shared_ptr<Stream> c;
  GenJob jc = greedy(common + tail_a.substr(0, tail_a.size() - 12) + "other ending", 6);
  jc.top_logprobs = 0;
  ASSERT_EQ(e.submit(greedy(common + tail_a, 1), &c), Engine::Submit::kOk);
  run(c);
  ASSERT_EQ(e.submit(jc, &c), Engine::Submit::kOk);
  EXPECT_EQ(run(c), solo(jc, &swa));
  EXPECT_GT(c->n_cached(), 0);
}

// Structured output: whatever the random model prefers, the text is JSON matching the schema and
// the request ends (finish "stop") as soon as the value is complete.
TEST_F(EngineTest, JsonSchemaConstrainsTheOutput) {
  EngineOptions o = opts(2);
  o.n_ctx = 1024;  // room for whitespace runs whatever the random weights prefer (see JsonConstraint)
  Engine e(*model_, *tok_, o);
  auto schema = JsonConstraint::from_schema(nlohmann::json::parse(R"({"type":"object","properties":{
      "ok":{"type":"boolean"},"word":{"type":"string","maxLength":4},"color":{"enum":["red","blue"]}},
      "required":["ok","word","color"],"additionalProperties":false})"));
  ASSERT_TRUE(schema.ok()) << schema.status().to_string();
  for (int i = 0; i < 4; ++i) {
    GenJob j = greedy("json please " + std::to_string(i), 1000);
    j.sampling.temperature = i == 0 ? 0.0f : 1.0f;
    j.sampling.seed = (uint64_t)i;
    j.json = std::make_shared<const JsonConstraint>(*schema);
    std::shared_ptr<Stream> st;
    ASSERT_EQ(e.submit(j, &st), Engine::Submit::kOk);
    const std::string text = run_text(st);
    ASSERT_EQ(st->finish(), Finish::kStop) << text;
    nlohmann::json v;
    ASSERT_NO_THROW(v = nlohmann::json::parse(text)) << text;
    ASSERT_TRUE(v.is_object() && v.size() == 3) << text;
    EXPECT_TRUE(v["ok"].is_boolean()) << text;
    EXPECT_TRUE(v["word"].is_string()) << text;
    EXPECT_TRUE(v["color"] == "red" || v["color"] == "blue") << text;
  }
  // json_object: any object.
  GenJob j = greedy("an object", 1000);
  j.json = std::make_shared<const JsonConstraint>(JsonConstraint::any_object());
  std::shared_ptr<Stream> st;
  ASSERT_EQ(e.submit(j, &st), Engine::Submit::kOk);
  const std::string text = run_text(st);
  if (st->finish() == Finish::kStop) {
    EXPECT_TRUE(nlohmann::json::accept(text)) << text;
  } else {  // a long free-form string may run out of max_tokens; what was produced is a prefix
    EXPECT_EQ(st->finish(), Finish::kLength);
    JsonConstraint c = JsonConstraint::any_object();
    EXPECT_TRUE(c.accept(text)) << text;
  }
}

TEST_F(EngineTest, PromptLogprobs) {
  Engine e(*model_, *tok_, opts(2));
  GenJob j = greedy("score me", 0);
  j.prompt_logprobs = true;
  j.top_logprobs = 2;
  std::shared_ptr<Stream> st;
  ASSERT_EQ(e.submit(j, &st), Engine::Submit::kOk);
  run(st);
  ASSERT_EQ(st->prompt_logprobs().size(), j.prompt.size() - 1);
  for (size_t i = 0; i < st->prompt_logprobs().size(); ++i) {
    const auto& t = st->prompt_logprobs()[i];
    EXPECT_EQ(t.id, j.prompt[i + 1]);
    EXPECT_LE(t.logprob, 0);
    ASSERT_EQ(t.top.size(), 2u);
    EXPECT_GE(t.top[0].logprob, t.logprob);
  }
  EXPECT_EQ(st->n_completion(), 0);
}

TEST_F(EngineTest, Embeddings) {
  Engine e(*model_, *tok_, opts(2));
  auto in1 = tok_->encode("embed this text please", true, false);
  auto in2 = tok_->encode("something else", true, false);
  for (Pooling p : {Pooling::kMean, Pooling::kCls, Pooling::kLast}) {
    auto r = e.embed({in1, in2, in1}, p);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    ASSERT_EQ(r->size(), 3u);
    double norm = 0;
    for (float x : (*r)[0]) norm += (double)x * x;
    EXPECT_NEAR(norm, 1.0, 1e-4);
    EXPECT_EQ((*r)[0], (*r)[2]);
    // Both inputs start with BOS and attention is causal: CLS (first token) pooling cannot differ.
    if (p == Pooling::kCls) EXPECT_EQ((*r)[0], (*r)[1]);
    else EXPECT_NE((*r)[0], (*r)[1]);
  }
  EXPECT_FALSE(e.embed({std::vector<int32_t>(300, 5)}, Pooling::kMean).ok());
}

}  // namespace
}  // namespace modu::server
