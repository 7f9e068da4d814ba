// `modu tune`: LoRA fine-tuning on a text corpus or chat JSON Lines; writes a llama.cpp-format adapter GGUF.
#include <cmath>
#include <cstdio>

#include "common.h"
#include "modu/train/tune.h"

namespace modu::cli {

namespace {

struct TuneArgs {
  train::TuneConfig c;
  train::TuneOptions o;
  std::string peft;
};

int tune(const TuneArgs& a) {
  auto r = train::run_tune(a.c, a.o);
  if (!r.ok()) return fail(r.status());
  return a.peft.empty() ? 0 : export_peft(a.c.base, a.c.out, a.peft);
}

}  // namespace

void add_tune_command(CLI::App& app, int& rc) {
  auto a = std::make_shared<TuneArgs>();
  a->c.optim.steps = 200;
  a->c.optim.batch = 4;
  a->c.optim.lr = 2e-3;
  a->c.optim.warmup = 10;
  a->c.optim.weight_decay = 0;
  a->c.optim.checkpoint_every = 25;
  CLI::App* c = app.add_subcommand("tune", "LoRA fine-tuning of a model on a text corpus (the base stays frozen)");
  c->add_option("-m,--model", a->c.base, "Base model GGUF: any text model modu runs (Llama, Mistral, Mixtral, Qwen2/3 and MoE, Gemma 2/3, EXAONE, Granite, Phi-3, Qwen2-VL text), F32/F16/BF16 or quantized (kept frozen as stored: QLoRA)")
      ->required()->check(CLI::ExistingFile);
  c->add_option("--text", a->c.train_text, "Training text (UTF-8; documents separated by blank lines), or chat data FILE.jsonl "
                 "({\"messages\": [...]} per line; loss on the assistant turns only)")->required()->check(CLI::ExistingFile);
  c->add_option("--valid", a->c.valid_text, "Held-out text or .jsonl: its loss is printed before, every --eval-every steps, and after")
      ->check(CLI::ExistingFile);
  c->add_option("-o,--output", a->c.out, "Adapter GGUF to write (checkpoints and the loss curve go to OUTPUT.tune/)")->required();
  c->add_option("--peft", a->peft, "Also write the adapter as a PEFT folder here (adapter_config.json + adapter_model.safetensors)");
  c->add_option("--rank", a->c.rank, "LoRA rank")->capture_default_str();
  c->add_option("--alpha", a->c.alpha, "LoRA alpha (scale alpha / rank)")->capture_default_str();
  c->add_option("--targets", a->c.targets, "Matrices, comma-separated, of attn_q,attn_k,attn_v,attn_qkv,attn_output,ffn_gate,ffn_up,ffn_down (default: every kind the model has)")
      ->delimiter(',')->capture_default_str();
  c->add_option("--steps", a->c.optim.steps, "Optimizer steps")->capture_default_str();
  c->add_option("--batch", a->c.optim.batch, "Sequences per step")->capture_default_str();
  c->add_option("--accum", a->c.accum, "Gradient accumulation: micro-batches of --batch per step")->capture_default_str();
  c->add_option("--ctx", a->c.ctx, "Tokens per sequence (0: the model's context)")->capture_default_str();
  c->add_option("--lr", a->c.optim.lr, "Peak learning rate (warm-up, then cosine decay)")->capture_default_str();
  c->add_option("--warmup", a->c.optim.warmup, "Warm-up steps")->capture_default_str();
  c->add_option("--seed", a->c.optim.seed, "Seed (adapter init and batches)")->capture_default_str();
  c->add_option("--eval-every", a->c.eval_every, "Held-out loss every N steps (0: before and after only)")->capture_default_str();
  c->add_option("--checkpoint-every", a->c.optim.checkpoint_every, "Checkpoint every N steps")->capture_default_str();
  c->add_flag("--resume", a->o.resume, "Continue from OUTPUT.tune/checkpoint.bin");
  c->add_option("-t,--threads", a->o.threads, "Threads (0: all cores)");
  c->callback([a, &rc] { rc = tune(*a); });
}

}  // namespace modu::cli
