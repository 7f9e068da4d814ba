// `modu train --config CONFIG`: pretrain a Llama-style model from scratch on the CPU (resumable).
#include <fstream>
#include <sstream>

#include "common.h"
#include "modu/train/trainer.h"

namespace modu::cli {

namespace {

struct TrainArgs {
  std::string config;
  bool resume = false;
  int threads = 0;
  int64_t stop_after = -1;
  bool quiet = false;
  std::string export_only;
};

int train_main(const TrainArgs& a) {
  std::ifstream in(a.config);
  if (!in) return fail(not_found("cannot read training config '" + a.config + "'"));
  std::stringstream ss;
  ss << in.rdbuf();
  auto cfg = train::parse_train_config(ss.str());
  if (!cfg.ok()) return fail(cfg.status().with_context(a.config));
  train::RunOptions opt;
  opt.resume = a.resume;
  opt.threads = a.threads;
  opt.stop_after = a.stop_after;
  opt.progress = !a.quiet;
  opt.export_only = a.export_only;
  Status s = train::run_training(*cfg, opt);
  return s.ok() ? 0 : fail(s);
}

}  // namespace

void add_train_command(CLI::App& app, int& rc) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* c = app.add_subcommand("train", "Pretrain a Llama-style model from scratch on the CPU");
  c->add_option("--config", a->config, "Training config (JSON; see models/modu-tiny.json)")->required()
      ->check(CLI::ExistingFile);
  c->add_flag("--resume", a->resume, "Continue from OUT_DIR/checkpoint.bin (same steps, data order and result)");
  c->add_option("-t,--threads", a->threads, "Threads (0 = all cores); results depend on it only through rounding")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--stop-after", a->stop_after, "Stop after this many total steps (checkpointed; resume later)");
  c->add_option("--export", a->export_only, "Only write the current checkpoint's model to this GGUF (no training)");
  c->add_flag("-q,--quiet", a->quiet, "No progress output");
  c->callback([a, &rc] { rc = train_main(*a); });
}

}  // namespace modu::cli
