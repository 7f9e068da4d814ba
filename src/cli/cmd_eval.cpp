// `modu eval`: perplexity and bits per byte of a model over a text file, with Model::forward in
// windows of the context length (consecutive windows overlap by one token so every token but the
// first is predicted once). Documents separated by blank lines each start with BOS, as in training.
// With --kl-base, also the KL divergence from a base model's next-token distributions (what a
// quantized file loses against its F16 original, token by token: less noisy than perplexity).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common.h"

namespace modu::cli {

namespace {

struct EvalArgs {
  std::string model, file, kl_base;
  bool json = false;
  int threads = 0;
  int64_t ctx = 0;
  int64_t max_tokens = 0;
};

int eval_main(const EvalArgs& a) {
  auto lm = load_model(a.model, true);
  if (!lm.ok()) return fail(lm.status());
  const Model& model = *lm->model;
  const Tokenizer& tok = *lm->tokenizer;
  std::ifstream in(a.file, std::ios::binary);
  if (!in) return fail(not_found("cannot read '" + a.file + "'"));
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  size_t n_bytes = 0;
  std::vector<int32_t> ids = encode_documents(tok, text, &n_bytes);  // as training reads a corpus
  if (a.max_tokens > 0 && (int64_t)ids.size() > a.max_tokens) ids.resize(a.max_tokens);
  if (ids.size() < 2) return fail(invalid_argument("'" + a.file + "' has too little text to evaluate"));
  const int64_t ctx = a.ctx > 0 ? a.ctx : model.config().n_ctx_train;
  if (ctx < 2) return fail(invalid_argument("context must be >= 2"));
  ThreadPool pool(a.threads);
  KvCache kv(model.config(), 1, ctx, KvType::kF32);
  const int64_t V = model.config().n_vocab;
  std::unique_ptr<Model> base;
  std::unique_ptr<KvCache> base_kv;
  if (!a.kl_base.empty()) {
    auto b = Model::load(a.kl_base);
    if (!b.ok()) return fail(b.status());
    base = std::move(b).value();
    if (base->config().n_vocab != V)
      return fail(invalid_argument("--kl-base '" + a.kl_base + "' has " + std::to_string(base->config().n_vocab) +
                                   " tokens in its vocabulary, the model " + std::to_string(V) + ": not the same tokenizer"));
    base_kv = std::make_unique<KvCache>(base->config(), 1, ctx, KvType::kF32);
  }
  double nll = 0, kl = 0;
  int64_t n_pred = 0, same_top1 = 0;
  std::vector<double> kls;
  std::vector<float> logits, base_logits;
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t start = 0; start + 1 < ids.size(); start += (size_t)ctx - 1) {
    const size_t len = std::min<size_t>((size_t)ctx, ids.size() - start);
    std::vector<BatchToken> batch(len);
    for (size_t i = 0; i < len; ++i) batch[i] = {ids[start + i], (int64_t)i, 0, i + 1 < len};
    kv.truncate(0, 0);
    Status s = model.forward(batch, kv, pool, logits);
    if (!s.ok()) return fail(s);
    if (base) {
      base_kv->truncate(0, 0);
      if (Status bs = base->forward(batch, *base_kv, pool, base_logits); !bs.ok()) return fail(bs);
    }
    for (size_t i = 0; i + 1 < len; ++i) {
      const float* z = logits.data() + i * V;
      const double lz = log_sum_exp(z, V);
      nll += lz - (double)z[ids[start + i + 1]];
      ++n_pred;
      if (!base) continue;
      // KL(base || model) = sum_v p_base(v) (log p_base(v) - log p_model(v)), in float64.
      const float* zb = base_logits.data() + i * V;
      const double lb = log_sum_exp(zb, V);
      double d = 0;
      int64_t top = 0, top_b = 0;
      for (int64_t v = 0; v < V; ++v) {
        const double lpb = (double)zb[v] - lb;
        d += std::exp(lpb) * (lpb - ((double)z[v] - lz));
        if (z[v] > z[top]) top = v;
        if (zb[v] > zb[top_b]) top_b = v;
      }
      d = std::max(0.0, d);  // rounding can leave -1e-17
      kl += d;
      kls.push_back(d);
      same_top1 += top == top_b;
    }
    if (!a.json)
      std::fprintf(stderr, "\rmodu eval: %lld/%zu tokens, ppl %.3f", (long long)n_pred, ids.size() - 1,
                   std::exp(nll / (double)n_pred));
  }
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // Bits per byte over the tokens actually scored (all of the text unless --max-tokens cut it).
  if (a.max_tokens > 0 && (int64_t)ids.size() == a.max_tokens) {
    std::string scored;
    for (size_t i = 1; i < ids.size(); ++i) scored += tok.token_to_piece(ids[i]);
    n_bytes = scored.size();
  }
  const double ppl = std::exp(nll / (double)n_pred);
  const double bpb = nll / std::log(2.0) / (double)std::max<size_t>(1, n_bytes);
  double kl_p99 = 0;
  if (!kls.empty()) {
    std::sort(kls.begin(), kls.end());
    kl_p99 = kls[std::min(kls.size() - 1, (size_t)(0.99 * (double)kls.size()))];
  }
  if (a.json) {
    nlohmann::ordered_json j;
    j["perplexity"] = ppl;
    j["bits_per_byte"] = bpb;
    j["tokens"] = n_pred;
    if (base) {
      j["kl_divergence"] = kl / (double)n_pred;
      j["kl_divergence_p99"] = kl_p99;
      j["same_top1"] = (double)same_top1 / (double)n_pred;
    }
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::fprintf(stderr, "\n");
    std::printf("perplexity %.4f  bits/byte %.4f  tokens %lld  bytes %zu  (%.1f s, %.0f tok/s)\n", ppl, bpb,
                (long long)n_pred, n_bytes, dt, n_pred / dt);
    if (base)
      std::printf("KL divergence from %s: mean %.6f  p99 %.6f  same top token %.2f%%\n", a.kl_base.c_str(),
                  kl / (double)n_pred, kl_p99, 100.0 * (double)same_top1 / (double)n_pred);
  }
  return 0;
}

}  // namespace

void add_eval_command(CLI::App& app, int& rc) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* c = app.add_subcommand("eval", "Perplexity and bits per byte of a model over a text file");
  c->add_option("-m,--model", a->model, "GGUF model or Hugging Face folder")->required()->check(CLI::ExistingPath);
  c->add_option("-f,--file", a->file, "UTF-8 text (documents separated by blank lines)")->required()
      ->check(CLI::ExistingFile);
  c->add_flag("--json", a->json, "Print {\"perplexity\", \"bits_per_byte\", \"tokens\"} as JSON");
  c->add_option("-t,--threads", a->threads, "Threads (0 = all cores)");
  c->add_option("-c,--ctx", a->ctx, "Window length (default: the model's context length)");
  c->add_option("--max-tokens", a->max_tokens, "Evaluate only the first N tokens");
  c->add_option("--kl-base", a->kl_base, "Also the KL divergence of the model's next-token distributions from this "
                "model's (e.g. the F16 file a quantized one was made from), and how often their top tokens agree")
      ->check(CLI::ExistingPath);
  c->callback([a, &rc] { rc = eval_main(*a); });
}

}  // namespace modu::cli
