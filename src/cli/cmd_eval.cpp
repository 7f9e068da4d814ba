// `modu eval`: perplexity and bits per byte of a model over a text file, with Model::forward in
// windows of the context length (consecutive windows overlap by one token so every token but the
// first is predicted once). Documents separated by blank lines each start with BOS, as in training.
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
  std::string model, file;
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
  double nll = 0;
  int64_t n_pred = 0;
  std::vector<float> logits;
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t start = 0; start + 1 < ids.size(); start += (size_t)ctx - 1) {
    const size_t len = std::min<size_t>((size_t)ctx, ids.size() - start);
    std::vector<BatchToken> batch(len);
    for (size_t i = 0; i < len; ++i) batch[i] = {ids[start + i], (int64_t)i, 0, i + 1 < len};
    kv.truncate(0, 0);
    Status s = model.forward(batch, kv, pool, logits);
    if (!s.ok()) return fail(s);
    for (size_t i = 0; i + 1 < len; ++i) {
      const float* z = logits.data() + i * V;
      float mx = z[0];
      for (int64_t v = 1; v < V; ++v) mx = std::max(mx, z[v]);
      double sum = 0;
      for (int64_t v = 0; v < V; ++v) sum += std::exp((double)(z[v] - mx));
      nll += (double)mx + std::log(sum) - (double)z[ids[start + i + 1]];
      ++n_pred;
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
  if (a.json) {
    nlohmann::ordered_json j;
    j["perplexity"] = ppl;
    j["bits_per_byte"] = bpb;
    j["tokens"] = n_pred;
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::fprintf(stderr, "\n");
    std::printf("perplexity %.4f  bits/byte %.4f  tokens %lld  bytes %zu  (%.1f s, %.0f tok/s)\n", ppl, bpb,
                (long long)n_pred, n_bytes, dt, n_pred / dt);
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
  c->callback([a, &rc] { rc = eval_main(*a); });
}

}  // namespace modu::cli
