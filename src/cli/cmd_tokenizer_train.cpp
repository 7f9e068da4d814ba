// `modu tokenizer train`: learn a byte-level BPE vocabulary and write it as GGUF tokenizer metadata.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "common.h"
#include "modu/gguf/gguf.h"
#include "modu/train/bpe.h"

namespace modu::cli {

namespace {

struct TokTrainArgs {
  std::string text, out, pre = "llama-bpe", name = "modu-tokenizer";
  int32_t vocab = 4096;
  int64_t min_freq = 2;
};

int tok_train(const TokTrainArgs& a) {
  std::ifstream in(a.text, std::ios::binary);
  if (!in) return fail(not_found("cannot read '" + a.text + "'"));
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  const auto t0 = std::chrono::steady_clock::now();
  train::BpeTrainOptions opt;
  opt.vocab_size = a.vocab;
  opt.pre = a.pre;
  opt.min_frequency = a.min_freq;
  auto cfg = train::train_bpe(text, opt);
  if (!cfg.ok()) return fail(cfg.status());
  GgufWriter w;
  w.set("general.name", GgufValue::string(a.name));
  train::add_tokenizer_to_gguf(w, *cfg, train::chatml_template());
  Status s = w.write(a.out);
  if (!s.ok()) return fail(s);
  // Check the written vocabulary loads and round-trips, and report its compression.
  auto f = GgufFile::open(a.out);
  if (!f.ok()) return fail(f.status());
  auto tok = Tokenizer::from_gguf(*f);
  if (!tok.ok()) return fail(tok.status().with_context("loading the trained tokenizer"));
  const std::string sample = text.substr(0, std::min<size_t>(text.size(), 1 << 20));
  const auto ids = (*tok)->encode(sample, false, false);
  if ((*tok)->decode(ids) != sample) return fail(internal_error("trained tokenizer does not round-trip the text"));
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "modu: wrote %s: %zu tokens (%zu merges, pre '%s'), %.2f bytes/token on the first %zu bytes, %.1f s\n",
               a.out.c_str(), cfg->tokens.size(), cfg->merges.size(), a.pre.c_str(),
               (double)sample.size() / (double)std::max<size_t>(1, ids.size()), sample.size(), dt);
  return 0;
}

}  // namespace

void add_tokenizer_train_command(CLI::App& app, int& rc) {
  auto a = std::make_shared<TokTrainArgs>();
  CLI::App* tokc = app.add_subcommand("tokenizer", "Build tokenizers");
  tokc->require_subcommand(1);
  CLI::App* c = tokc->add_subcommand("train", "Train a byte-level BPE tokenizer into GGUF metadata (deterministic)");
  c->add_option("-f,--file", a->text, "Training text (UTF-8; documents separated by blank lines)")->required()
      ->check(CLI::ExistingFile);
  c->add_option("-o,--output", a->out, "Output GGUF (tokenizer metadata only)")->required();
  c->add_option("--vocab-size", a->vocab, "Vocabulary size including bytes and special tokens")->check(CLI::Range(259, 1 << 20));
  c->add_option("--pre", a->pre, "Pre-tokenizer (tokenizer.ggml.pre); llama-bpe keeps Hangul runs as words");
  c->add_option("--min-frequency", a->min_freq, "Stop merging when the best pair is rarer");
  c->add_option("--name", a->name, "general.name");
  c->callback([a, &rc] { rc = tok_train(*a); });
}

}  // namespace modu::cli
