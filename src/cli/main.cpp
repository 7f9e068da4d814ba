// modu: one binary, one subcommand per job (run, info, bench, quantize, ...).
#include <CLI/CLI.hpp>

#include <cstdio>

#include "common.h"
#include "modu/kernels/dispatch.h"

int main(int argc, char** argv) {
  CLI::App app{"modu (모두): run, serve and build open foundation models on the machine you have"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("modu 0.1.0 (") + modu::isa_name(modu::kernels().isa) + ")");
  int rc = 0;
  modu::cli::add_run_command(app, rc);
  modu::cli::add_info_command(app, rc);
  modu::cli::add_bench_command(app, rc);
  modu::cli::add_quantize_command(app, rc);
  modu::cli::add_init_model_command(app, rc);
  modu::cli::add_init_mmproj_command(app, rc);
  modu::cli::add_serve_command(app, rc);
  modu::cli::add_tokenize_commands(app, rc);
  modu::cli::add_template_command(app, rc);
  modu::cli::add_toolcalls_command(app, rc);
  modu::cli::add_agent_command(app, rc);
  modu::cli::add_detect_command(app, rc);
  modu::cli::add_audit_command(app, rc);
  modu::cli::add_lora_command(app, rc);
  modu::cli::add_tune_command(app, rc);
  modu::cli::add_chat_command(app, rc);
  modu::cli::add_train_command(app, rc);
  modu::cli::add_tokenizer_train_command(app, rc);
  modu::cli::add_eval_command(app, rc);
  modu::cli::add_imatrix_command(app, rc);
  modu::cli::add_convert_command(app, rc);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return rc;
}
