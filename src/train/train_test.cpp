// Tests for training: GEMM, every backward op and the whole model against float64 finite
// differences, loss decrease, exact checkpoint resume (including kill -9), tokenizer training
// determinism, and exported-GGUF logits equal to the training forward's.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <thread>

#include "gemm.h"
#include "modu/gguf/gguf.h"
#include "modu/models/model.h"
#include "modu/train/bpe.h"
#include "modu/train/model.h"
#include "modu/train/trainer.h"
#include "ops.h"

namespace modu::train {
namespace {

namespace fs = std::filesystem;

std::vector<double> randv(size_t n, uint64_t seed, double scale = 1.0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd(0, scale);
  std::vector<double> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Checks d/dx of f(x) (a scalar) against central differences for every element of x.
void check_grad(std::vector<double>& x, const std::function<double()>& f, const std::vector<double>& analytic,
                const char* what, double tol = 1e-6) {
  ASSERT_EQ(x.size(), analytic.size());
  const double h = 1e-6;
  for (size_t i = 0; i < x.size(); ++i) {
    const double x0 = x[i];
    x[i] = x0 + h;
    const double fp = f();
    x[i] = x0 - h;
    const double fm = f();
    x[i] = x0;
    const double num = (fp - fm) / (2 * h);
    EXPECT_NEAR(analytic[i], num, tol * std::max(1.0, std::fabs(num))) << what << " element " << i;
  }
}

TEST(Gemm, MatchesNaiveForAllShapes) {
  ThreadPool pool(2);
  for (auto [M, N, K] : {std::tuple{1, 1, 1}, {5, 37, 3}, {9, 64, 300}, {17, 100, 513}, {64, 256, 64}}) {
    auto a = randv((size_t)M * K, 1), b = randv((size_t)K * N, 2), c0 = randv((size_t)M * N, 3);
    std::vector<float> af(a.begin(), a.end()), bf(b.begin(), b.end()), cf(c0.begin(), c0.end());
    gemm(M, N, K, af.data(), K, bf.data(), N, cf.data(), N, true, pool);
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < N; ++j) {
        double s = c0[i * N + j];
        for (int k = 0; k < K; ++k) s += (double)af[i * K + k] * (double)bf[k * N + j];
        ASSERT_NEAR(cf[i * N + j], s, 1e-4 * std::sqrt((double)K)) << M << "x" << N << "x" << K;
      }
  }
}

TEST(OpsGrad, RmsNorm) {
  ThreadPool pool(2);
  const int64_t N = 3, E = 8;
  auto x = randv(N * E, 1), w = randv(E, 2), R = randv(N * E, 3);
  auto f = [&] {
    std::vector<double> y(N * E), r(N);
    ops::rmsnorm_fwd(x.data(), w.data(), N, E, 1e-5, y.data(), r.data(), pool);
    return dot(y, R);
  };
  std::vector<double> y(N * E), r(N), dx(N * E), dw(E, 0.0);
  ops::rmsnorm_fwd(x.data(), w.data(), N, E, 1e-5, y.data(), r.data(), pool);
  ops::rmsnorm_bwd(x.data(), w.data(), r.data(), R.data(), N, E, dx.data(), dw.data(), pool);
  check_grad(x, f, dx, "rmsnorm dx");
  check_grad(w, f, dw, "rmsnorm dw");
}

TEST(OpsGrad, RopeBackwardIsTheInverseRotation) {
  ThreadPool pool(1);
  const int64_t S = 2, T = 5, H = 3, D = 8;
  const auto freqs = ops::rope_freqs<double>(D, 10000.0f);
  auto x = randv(S * T * H * D, 1), R = randv(S * T * H * D, 2);
  auto f = [&] {
    auto y = x;
    ops::rope(y.data(), S, T, H, D, freqs.data(), false, pool);
    return dot(y, R);
  };
  auto dx = R;
  ops::rope(dx.data(), S, T, H, D, freqs.data(), true, pool);
  check_grad(x, f, dx, "rope dx");
}

TEST(OpsGrad, CausalGqaAttention) {
  ThreadPool pool(2);
  const ops::AttnShape s{2, 5, 4, 2, 4};
  const int64_t N = s.n_seq * s.len, QD = s.n_head * s.head_dim, KD = s.n_head_kv * s.head_dim;
  auto q = randv(N * QD, 1), k = randv(N * KD, 2), v = randv(N * KD, 3), R = randv(N * QD, 4);
  std::vector<double> p(s.n_seq * s.n_head * s.len * s.len), out(N * QD);
  auto f = [&] {
    ops::attention_fwd(s, q.data(), k.data(), v.data(), p.data(), out.data(), pool);
    return dot(out, R);
  };
  f();
  std::vector<double> dq(N * QD), dk(N * KD), dv(N * KD);
  ops::attention_bwd(s, q.data(), k.data(), v.data(), p.data(), R.data(), dq.data(), dk.data(), dv.data(), pool);
  check_grad(q, f, dq, "attention dq");
  check_grad(k, f, dk, "attention dk");
  check_grad(v, f, dv, "attention dv");
  // Causality: the first output of a sequence depends only on its first value row.
  EXPECT_NEAR(out[0], v[0], 1e-12);
}

TEST(OpsGrad, SwiGlu) {
  ThreadPool pool(1);
  const int64_t n = 20;
  auto g = randv(n, 1, 2.0), u = randv(n, 2), R = randv(n, 3);
  auto f = [&] {
    std::vector<double> a(n);
    ops::swiglu_fwd(g.data(), u.data(), n, a.data(), pool);
    return dot(a, R);
  };
  std::vector<double> dg(n), du(n);
  ops::swiglu_bwd(g.data(), u.data(), R.data(), n, dg.data(), du.data(), pool);
  check_grad(g, f, dg, "swiglu dg");
  check_grad(u, f, du, "swiglu du");
}

TEST(OpsGrad, CrossEntropy) {
  ThreadPool pool(2);
  const int64_t N = 4, V = 7;
  auto z = randv(N * V, 1, 3.0);
  const std::vector<int32_t> tgt = {3, -1, 0, 6};
  auto f = [&] {
    auto c = z;
    return ops::cross_entropy(c.data(), tgt.data(), N, V, false, pool);
  };
  auto g = z;
  const double loss = ops::cross_entropy(g.data(), tgt.data(), N, V, true, pool);
  EXPECT_NEAR(loss, f(), 1e-12);
  check_grad(z, f, g, "cross-entropy");
  for (int64_t i = 0; i < V; ++i) EXPECT_EQ(g[1 * V + i], 0.0);  // ignored row
}

ModelDims tiny_dims() {
  ModelDims d;
  d.n_vocab = 11; d.n_embd = 8; d.n_layer = 2; d.n_head = 4; d.n_head_kv = 2; d.head_dim = 4; d.n_ff = 12;
  d.n_ctx = 6;
  return d;
}

TEST(ModelGrad, WholeModelMatchesFiniteDifferences) {
  ThreadPool pool(2);
  const ModelDims d = tiny_dims();
  const Layout L = make_layout(d);
  const auto pf = init_params(d, L, 7);
  std::vector<double> p(pf.begin(), pf.end());
  auto noise = randv(p.size(), 9, 0.3);  // bigger weights than init so every path matters
  for (size_t i = 0; i < p.size(); ++i) p[i] += noise[i];
  const std::vector<int32_t> tok = {1, 4, 2, 9, 10, 0, 3, 3, 5, 7, 8, 2};
  const std::vector<int32_t> tgt = {4, 2, 9, 10, 0, -1, 3, 5, 7, 8, 2, 1};
  std::vector<double> g(p.size());
  forward_backward<double>(d, L, p.data(), g.data(), tok.data(), tgt.data(), 2, 6, pool);
  auto f = [&] { return forward_backward<double>(d, L, p.data(), nullptr, tok.data(), tgt.data(), 2, 6, pool); };
  const double h = 1e-6;
  int checked = 0;
  for (size_t i = 0; i < p.size(); i += 3) {  // every third parameter, every tensor
    const double x0 = p[i];
    p[i] = x0 + h;
    const double fp = f();
    p[i] = x0 - h;
    const double fm = f();
    p[i] = x0;
    const double num = (fp - fm) / (2 * h);
    EXPECT_NEAR(g[i], num, 1e-6 * std::max(1.0, std::fabs(num))) << "param " << i;
    ++checked;
  }
  EXPECT_GT(checked, 300);
}

// A corpus with a fixed period: a model that learns it gets a loss near zero.
std::vector<int32_t> periodic_corpus(int64_t n, int32_t vocab) {
  const std::vector<int32_t> pattern = {1, 5, 2, 7, 3, 3, 9, 4, 6, 8, 2, 5, 10};
  std::vector<int32_t> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = pattern[i % pattern.size()] % vocab;
  return v;
}

TrainConfig tiny_train_config() {
  TrainConfig c;
  c.model = tiny_dims();
  c.model.n_vocab = 12; c.model.n_embd = 32; c.model.head_dim = 8; c.model.n_ff = 64; c.model.n_ctx = 16;
  c.steps = 60; c.batch = 4; c.lr = 1e-2; c.warmup = 5; c.seed = 3;
  return c;
}

TEST(Train, LossFallsOnAFixedCorpus) {
  ThreadPool pool(2);
  const TrainConfig c = tiny_train_config();
  const Layout L = make_layout(c.model);
  const auto data = periodic_corpus(4000, 12);
  TrainState st;
  st.params = init_params(c.model, L, c.seed);
  st.m.assign(L.total, 0.0f);
  st.v.assign(L.total, 0.0f);
  double first = 0, last = 0;
  for (int64_t i = 0; i < c.steps; ++i) {
    const StepStats s = train_step(c, L, st, data, pool);
    if (i == 0) first = s.loss;
    last = s.loss;
  }
  EXPECT_GT(first, 2.0);   // ~ln(12) at init
  EXPECT_LT(last, 0.3);    // stated bound: below 0.3 nats after 60 steps
}

TEST(Train, ResultDoesNotDependOnThreadCount) {
  const TrainConfig c = tiny_train_config();
  const Layout L = make_layout(c.model);
  const auto data = periodic_corpus(4000, 12);
  std::vector<std::vector<float>> out;
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    TrainState st;
    st.params = init_params(c.model, L, c.seed);
    st.m.assign(L.total, 0.0f);
    st.v.assign(L.total, 0.0f);
    for (int i = 0; i < 3; ++i) train_step(c, L, st, data, pool);
    out.push_back(st.params);
  }
  EXPECT_EQ(out[0], out[1]);
  EXPECT_EQ(out[0], out[2]);
}

TEST(Train, ScheduleWarmsUpAndDecays) {
  TrainConfig c;
  c.steps = 100; c.warmup = 10; c.lr = 1.0; c.min_lr_ratio = 0.1;
  EXPECT_NEAR(lr_at(c, 0), 0.1, 1e-12);
  EXPECT_NEAR(lr_at(c, 9), 1.0, 1e-12);
  EXPECT_NEAR(lr_at(c, 10), 1.0, 1e-12);
  EXPECT_NEAR(lr_at(c, 55), 0.55, 1e-9);
  EXPECT_NEAR(lr_at(c, 100), 0.1, 1e-12);
}

// Writes a small tokenizer GGUF and corpus into dir; returns a config training on them.
TrainConfig file_config(const fs::path& dir) {
  fs::create_directories(dir);
  std::string text;
  for (int i = 0; i < 60; ++i)
    text += "The quick brown fox " + std::to_string(i % 7) + " jumps.\n오늘 날씨는 맑습니다 " + std::to_string(i % 5) +
            ".\n\n";
  std::ofstream(dir / "corpus.txt") << text;
  BpeTrainOptions opt;
  opt.vocab_size = 300;
  auto tc = train_bpe(text, opt);
  EXPECT_TRUE(tc.ok());
  GgufWriter w;
  add_tokenizer_to_gguf(w, *tc, chatml_template());
  EXPECT_TRUE(w.write((dir / "tok.gguf").string()).ok());
  TrainConfig c = tiny_train_config();
  c.model.n_vocab = 0;
  c.tokenizer = (dir / "tok.gguf").string();
  c.train_text = (dir / "corpus.txt").string();
  c.steps = 8;
  c.checkpoint_every = 1;
  return c;
}

std::vector<float> final_params(const TrainConfig& c, int64_t n_vocab) {
  ModelDims d = c.model;
  d.n_vocab = n_vocab;
  auto st = load_checkpoint(c.out_dir + "/checkpoint.bin", d);
  EXPECT_TRUE(st.ok()) << st.status().to_string();
  EXPECT_EQ(st->step, c.steps);
  return st->params;
}

TEST(Train, ResumeAfterStopIsBitIdentical) {
  const fs::path dir = fs::temp_directory_path() / ("modu_train_resume_" + std::to_string(getpid()));
  fs::remove_all(dir);
  TrainConfig a = file_config(dir), b = a;
  a.out_dir = (dir / "a").string();
  b.out_dir = (dir / "b").string();
  RunOptions o;
  o.progress = false;
  o.threads = 2;
  ASSERT_TRUE(run_training(a, o).ok());
  RunOptions stop = o;
  stop.stop_after = 3;
  ASSERT_TRUE(run_training(b, stop).ok());
  EXPECT_FALSE(fs::exists(b.out_dir + "/model.gguf"));
  RunOptions resume = o;
  resume.resume = true;
  ASSERT_TRUE(run_training(b, resume).ok());
  EXPECT_TRUE(fs::exists(b.out_dir + "/model.gguf"));
  EXPECT_EQ(final_params(a, 300), final_params(b, 300));
  // The loss log has each step exactly once.
  std::ifstream csv(b.out_dir + "/loss.csv");
  std::string line;
  int rows = 0;
  while (std::getline(csv, line)) rows += line.rfind("step", 0) != 0;
  EXPECT_EQ(rows, 8);
  fs::remove_all(dir);
}

TEST(Train, KillNineAtAnyMomentThenResumeIsBitIdentical) {
  const fs::path dir = fs::temp_directory_path() / ("modu_train_kill_" + std::to_string(getpid()));
  fs::remove_all(dir);
  TrainConfig a = file_config(dir), b = a;
  a.steps = b.steps = 16;
  a.out_dir = (dir / "a").string();
  b.out_dir = (dir / "b").string();
  RunOptions o;
  o.progress = false;
  o.threads = 2;
  ASSERT_TRUE(run_training(a, o).ok());
  const std::vector<float> want = final_params(a, 300);
  for (int delay_ms : {30, 70}) {
    fs::remove_all(b.out_dir);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      (void)run_training(b, o);
      _exit(0);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    RunOptions resume = o;
    resume.resume = true;
    ASSERT_TRUE(run_training(b, resume).ok());
    EXPECT_EQ(want, final_params(b, 300)) << "killed after " << delay_ms << " ms";
  }
  fs::remove_all(dir);
}

TEST(Tokenizer, TrainingIsDeterministicAndRoundTrips) {
  std::string text;
  for (int i = 0; i < 40; ++i)
    text += "모두의 언어 모델은 한국어와 영어를 배웁니다. Everyone's model learns Korean and English " +
            std::to_string(i) + ".\n\n";
  BpeTrainOptions opt;
  opt.vocab_size = 400;
  auto a = train_bpe(text, opt), b = train_bpe(text, opt);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->tokens, b->tokens);
  EXPECT_EQ(a->merges, b->merges);
  EXPECT_GT(a->merges.size(), 30u);
  auto tok = Tokenizer::create(*a);
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  const std::string probe = "모두의 모델은 English를 배웁니다.";
  const auto ids = (*tok)->encode(probe, false, false);
  EXPECT_EQ((*tok)->decode(ids), probe);
  EXPECT_LT(ids.size(), probe.size() / 2);  // merges apply to Korean and English
  EXPECT_EQ((*tok)->encode(" 모델은", false, false).size(), 1u);  // a whole Korean word (with its space) is one token
  // Control tokens are recognized with parse_special and end generation.
  const auto chat = (*tok)->encode("<|im_start|>user\nhi<|im_end|>", false, true);
  EXPECT_EQ(chat.front(), 1);
  EXPECT_EQ(chat.back(), 2);
  EXPECT_TRUE((*tok)->is_eog(2));
}

TEST(Export, GgufLogitsMatchTrainingForward) {
  ThreadPool pool(2);
  ModelDims d = tiny_dims();
  d.n_vocab = 64; d.n_embd = 64; d.n_head = 4; d.n_head_kv = 2; d.head_dim = 16; d.n_ff = 96; d.n_ctx = 32;
  const Layout L = make_layout(d);
  auto p = init_params(d, L, 5);
  auto noise = randv(p.size(), 6, 0.08);
  for (size_t i = 0; i < p.size(); ++i) p[i] += (float)noise[i];
  GgufWriter w;
  ASSERT_TRUE(add_model_to_gguf(w, d, L, p.data(), "export-test").ok());
  const std::vector<uint8_t> buf = w.serialize();
  auto f = GgufFile::parse(buf.data(), buf.size());
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  auto model = Model::from_gguf(std::move(*f));
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  std::vector<int32_t> tok(20), tgt(20, -1);
  for (int i = 0; i < 20; ++i) tok[i] = (i * 37 + 11) % 64;
  std::vector<float> want;
  forward_backward<float>(d, L, p.data(), nullptr, tok.data(), tgt.data(), 1, 20, pool, &want);
  KvCache kv((*model)->config(), 1, 32, KvType::kF32);
  std::vector<BatchToken> batch;
  for (int i = 0; i < 20; ++i) batch.push_back({tok[i], i, 0, true});
  std::vector<float> got;
  ASSERT_TRUE((*model)->forward(batch, kv, pool, got).ok());
  ASSERT_EQ(got.size(), want.size());
  double max_abs = 0, max_diff = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    max_abs = std::max(max_abs, (double)std::fabs(want[i]));
    max_diff = std::max(max_diff, (double)std::fabs(got[i] - want[i]));
  }
  EXPECT_GT(max_abs, 0.1);
  EXPECT_LT(max_diff, 2e-4 * std::max(1.0, max_abs)) << "max |logit| " << max_abs;
}

}  // namespace
}  // namespace modu::train
