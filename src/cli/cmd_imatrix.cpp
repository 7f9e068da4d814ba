// `modu imatrix`: an importance matrix from a calibration text: the text in windows of the context
// length through Model::forward with an ImatrixCollector observing every matrix product (the
// perplexity of each window is printed as llama-imatrix does, so a broken run shows).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "common.h"
#include "modu/models/imatrix.h"

namespace modu::cli {

namespace {

struct ImatrixArgs {
  std::string model, file, out = "imatrix.gguf";
  int threads = 0;
  int64_t ctx = 512;
  int64_t chunks = 0;
};

int imatrix_main(const ImatrixArgs& a) {
  auto lm = load_model(a.model, true);
  if (!lm.ok()) return fail(lm.status());
  const Model& model = *lm->model;
  std::ifstream in(a.file, std::ios::binary);
  if (!in) return fail(not_found("cannot read '" + a.file + "'"));
  std::stringstream ss;
  ss << in.rdbuf();
  const std::vector<int32_t> ids = encode_documents(*lm->tokenizer, ss.str());
  const int64_t ctx = a.ctx > 0 ? std::min<int64_t>(a.ctx, model.config().n_ctx_train) : model.config().n_ctx_train;
  if (ctx < 2) return fail(invalid_argument("--ctx must be at least 2"));
  int64_t n_chunks = (int64_t)ids.size() / ctx;
  if (a.chunks > 0) n_chunks = std::min(n_chunks, a.chunks);
  if (n_chunks < 1)
    return fail(invalid_argument("'" + a.file + "' has " + std::to_string(ids.size()) + " tokens, fewer than one window of " +
                                 std::to_string(ctx) + " (use a longer text or a smaller --ctx)"));
  ThreadPool pool(a.threads);
  KvCache kv(model.config(), 1, ctx, KvType::kF32);
  ImatrixCollector collector;
  MatmulObserver* previous = set_matmul_observer(&collector);
  const int64_t V = model.config().n_vocab;
  double nll = 0;
  int64_t n_pred = 0;
  std::vector<float> logits;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t c = 0; c < n_chunks; ++c) {
    std::vector<BatchToken> batch((size_t)ctx);
    for (int64_t i = 0; i < ctx; ++i) batch[(size_t)i] = {ids[(size_t)(c * ctx + i)], i, 0, i + 1 < ctx};
    kv.truncate(0, 0);
    Status s = model.forward(batch, kv, pool, logits);
    if (!s.ok()) {
      set_matmul_observer(previous);
      return fail(s.with_context("window " + std::to_string(c)));
    }
    for (int64_t i = 0; i + 1 < ctx; ++i) {  // logits rows are the tokens that asked for them, in order
      const float* z = logits.data() + i * V;
      nll += log_sum_exp(z, V) - (double)z[ids[(size_t)(c * ctx + i + 1)]];
      ++n_pred;
    }
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "\rmodu imatrix: window %lld/%lld, ppl %.3f, %.0f tok/s", (long long)(c + 1),
                 (long long)n_chunks, std::exp(nll / (double)n_pred), (double)((c + 1) * ctx) / dt);
  }
  std::fprintf(stderr, "\n");
  set_matmul_observer(previous);
  Status s = collector.save(a.out, {a.file}, n_chunks, ctx);
  if (!s.ok()) return fail(s);
  std::printf("wrote %s: %zu matrices, %lld windows of %lld tokens, perplexity %.4f\n", a.out.c_str(),
              collector.entries().size(), (long long)n_chunks, (long long)ctx, std::exp(nll / (double)n_pred));
  return 0;
}

}  // namespace

void add_imatrix_command(CLI::App& app, int& rc) {
  auto a = std::make_shared<ImatrixArgs>();
  CLI::App* c = app.add_subcommand("imatrix", "Importance matrix of a model's weights from a calibration text "
                                   "(for `modu quantize --imatrix`)");
  c->add_option("-m,--model", a->model, "GGUF model or Hugging Face folder")->required()->check(CLI::ExistingPath);
  c->add_option("-f,--file", a->file, "Calibration text (UTF-8)")->required()->check(CLI::ExistingFile);
  c->add_option("-o,--output", a->out, "Output GGUF (llama.cpp's imatrix layout)")->capture_default_str();
  c->add_option("-c,--ctx", a->ctx, "Window length in tokens (capped at the model's context)")->capture_default_str();
  c->add_option("--chunks", a->chunks, "Use at most N windows (0: the whole text)");
  c->add_option("-t,--threads", a->threads, "Threads (0 = all cores)");
  c->callback([a, &rc] { rc = imatrix_main(*a); });
}

}  // namespace modu::cli
