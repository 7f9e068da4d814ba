// `modu bench`: prefill and decode throughput like llama-bench (warm-up, repetitions, mean and
// standard deviation), with weight-streaming bandwidth and memory use.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include <nlohmann/json.hpp>

#include "common.h"
#include "modu/kernels/dispatch.h"

namespace modu::cli {

namespace {

struct BenchArgs {
  std::string model;
  int n_prompt = 512;
  int n_gen = 128;
  int threads = 0;
  int reps = 3;
  bool json = false;
};

struct Stats {
  double mean = 0, stddev = 0;
};

Stats stats(const std::vector<double>& v) {
  Stats s;
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= v.size();
  if (v.size() > 1) {
    double ss = 0;
    for (double x : v) ss += (x - s.mean) * (x - s.mean);
    s.stddev = std::sqrt(ss / (v.size() - 1));
  }
  return s;
}

int bench(const BenchArgs& a) {
  using clock = std::chrono::steady_clock;
  auto lm = load_model(a.model, false);
  if (!lm.ok()) return fail(lm.status());
  const Model& m = *lm->model;
  const ModelConfig& c = m.config();
  if (a.n_prompt < 0 || a.n_gen < 0 || a.reps < 1) return fail(invalid_argument("-p, -n must be >= 0 and -r >= 1"));
  ThreadPool pool(a.threads);
  const int64_t ctx = std::max<int64_t>(1, std::max(a.n_prompt, a.n_gen) + 1);
  KvCache kv(c, 1, ctx, KvType::kF16);
  std::mt19937 rng(1234);
  std::vector<float> logits;
  auto rand_tok = [&] { return (int32_t)(rng() % c.n_vocab); };

  auto run_prefill = [&](int n) -> Result<double> {
    kv.truncate(0, 0);
    std::vector<BatchToken> batch;
    for (int i = 0; i < n; ++i) batch.push_back({rand_tok(), i, 0, i + 1 == n});
    auto t0 = clock::now();
    MODU_RETURN_IF_ERROR(m.forward(batch, kv, pool, logits));
    return std::chrono::duration<double>(clock::now() - t0).count();
  };
  auto run_decode = [&](int n) -> Result<double> {
    kv.truncate(0, 0);
    auto t0 = clock::now();
    for (int i = 0; i < n; ++i) MODU_RETURN_IF_ERROR(m.forward({{rand_tok(), i, 0, true}}, kv, pool, logits));
    return std::chrono::duration<double>(clock::now() - t0).count();
  };
  std::vector<double> pp, tg;
  if (a.n_prompt > 0) {
    auto w = run_prefill(std::min(a.n_prompt, 32));  // warm-up: page in weights, spin up threads
    if (!w.ok()) return fail(w.status());
    for (int r = 0; r < a.reps; ++r) {
      auto s = run_prefill(a.n_prompt);
      if (!s.ok()) return fail(s.status());
      pp.push_back(a.n_prompt / *s);
    }
  }
  if (a.n_gen > 0) {
    auto w = run_decode(std::min(a.n_gen, 4));
    if (!w.ok()) return fail(w.status());
    for (int r = 0; r < a.reps; ++r) {
      auto s = run_decode(a.n_gen);
      if (!s.ok()) return fail(s.status());
      tg.push_back(a.n_gen / *s);
    }
  }
  const Stats sp = stats(pp), sg = stats(tg);
  // Decode streams every weight once per token (the output matrix included; the embedding is
  // read one row per token).
  const double stream_bytes = (double)m.weight_bytes() - (m.weights().tied_output ? 0.0 : (double)m.weights().tok_embd.rows * m.weights().tok_embd.row_bytes);
  nlohmann::ordered_json j;
  j["model"] = a.model;
  j["architecture"] = c.arch.name;
  j["parameters"] = m.n_params();
  j["weight_bytes"] = m.weight_bytes();
  j["isa"] = isa_name(kernels().isa);
  j["threads"] = pool.size();
  j["n_prompt"] = a.n_prompt;
  j["n_gen"] = a.n_gen;
  j["repetitions"] = a.reps;
  j["prefill_tokens_per_s"] = sp.mean;
  j["prefill_tokens_per_s_stddev"] = sp.stddev;
  j["decode_tokens_per_s"] = sg.mean;
  j["decode_tokens_per_s_stddev"] = sg.stddev;
  j["decode_weight_gb_per_s"] = sg.mean * stream_bytes / 1e9;
  j["rss_bytes"] = current_rss_bytes();
  j["peak_rss_bytes"] = peak_rss_bytes();
  j["kv_cache_bytes"] = kv.bytes();
  if (a.json) {
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("model: %s (%s, %.2f B params, %.2f GB weights), isa %s, %d threads\n", a.model.c_str(),
              c.arch.name.c_str(), m.n_params() / 1e9, m.weight_bytes() / 1e9, isa_name(kernels().isa), pool.size());
  std::printf("| test   |     tokens/s |  stddev |\n|--------|--------------|---------|\n");
  if (a.n_prompt > 0) std::printf("| pp%-4d | %12.2f | %7.2f |\n", a.n_prompt, sp.mean, sp.stddev);
  if (a.n_gen > 0) std::printf("| tg%-4d | %12.2f | %7.2f |\n", a.n_gen, sg.mean, sg.stddev);
  if (a.n_gen > 0) std::printf("decode streams %.2f GB/s of weights\n", sg.mean * stream_bytes / 1e9);
  std::printf("memory: RSS %.2f GB (peak %.2f GB), KV cache %.1f MB\n", current_rss_bytes() / 1e9,
              peak_rss_bytes() / 1e9, kv.bytes() / 1e6);
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, int& rc) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* c = app.add_subcommand("bench", "Measure prefill and decode tokens/s");
  c->add_option("-m,--model", a->model, "GGUF model file")->required()->check(CLI::ExistingFile);
  c->add_option("-p,--n-prompt", a->n_prompt, "Prompt tokens for the prefill test (0: skip)")->capture_default_str();
  c->add_option("-n,--n-gen", a->n_gen, "Tokens for the decode test (0: skip)")->capture_default_str();
  c->add_option("-t,--threads", a->threads, "Threads (0: all cores)")->capture_default_str();
  c->add_option("-r,--repetitions", a->reps, "Repetitions")->capture_default_str();
  c->add_flag("--json", a->json, "Print one JSON object");
  c->callback([a, &rc] { rc = bench(*a); });
}

}  // namespace modu::cli
