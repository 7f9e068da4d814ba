// Shared helpers for the modu subcommands: loading a model with its tokenizer, and error exits.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "modu/core/status.h"
#include "modu/models/imatrix.h"
#include "modu/models/model.h"
#include "modu/models/quant_mix.h"
#include "modu/runtime/speculative.h"
#include "modu/tokenizer/tokenizer.h"
#include "modu/vision/vision_model.h"

namespace modu::cli {

// Prints "modu: <status>" to stderr and returns exit code 1 (the library never exits by itself).
int fail(const Status& s);

// Progress of a long step on stderr: on a terminal one line rewritten in place ("\r"), elsewhere
// (logs, CI) one line per call. progress_done() ends a terminal's line before the next message.
void progress(const std::string& line);
void progress_done();

struct LoadedModel {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
};

Result<LoadedModel> load_model(const std::string& path, bool need_tokenizer);

// A vision projector: an mmproj GGUF, or the vision tower of a Hugging Face multimodal folder.
Result<std::unique_ptr<vision::VisionModel>> load_projector(const std::string& path);
// --mmproj when given; otherwise, with images to read, the model's own folder when it has a
// vision tower; otherwise none (nullptr).
Result<std::unique_ptr<vision::VisionModel>> projector_for(const std::string& mmproj, const std::string& model,
                                                           bool want_images);

// A command's --mmproj / --image: the projector (nullptr when there is none and no image), its
// output width checked against the language model, and each image decoded (under max_pixels) and
// encoded, in order. log_prefix: a line per image on stderr ("" : silent).
struct CliImages {
  std::unique_ptr<vision::VisionModel> vm;
  std::vector<vision::ImageEmbedding> images;
};
Result<CliImages> load_cli_images(const std::string& mmproj, const std::string& model, const ModelConfig& cfg,
                                  const std::vector<std::string>& paths, int64_t max_pixels, ThreadPool& pool,
                                  const std::string& log_prefix);

// --lora PATH[:SCALE] (repeatable; a GGUF adapter or a PEFT folder): loads each adapter and attaches it to the model (scale 1 when
// not given), saying so on stderr.
void add_lora_option(CLI::App* c, std::vector<std::string>* specs);
// With named_ok, NAME=PATH[:SCALE] attaches a named adapter that requests select (modu serve).
Status attach_loras(Model& model, const std::vector<std::string>& specs, bool named_ok = false);

// The AI notice of run / chat / agent (Korea's AI Basic Act): one line on stderr before any
// output, in the user's language (LANG ko* -> Korean) or the operator's own text; --label puts a
// visible mark before the generated text on stdout.
struct NoticeArgs {
  std::string ai_notice;
  bool label = false;
};
void add_notice_options(CLI::App* c, NoticeArgs* a);
void print_ai_notice(const NoticeArgs& a, const std::string& model_path);
std::string label_prefix(const NoticeArgs& a);  // "" without --label

// log(sum_v exp(z[v])) over n logits, in float64 after subtracting the maximum (eval, imatrix).
double log_sum_exp(const float* z, int64_t n);

// `modu quantize`'s work: every weight matrix of `in` to `type` (output.weight kept at Q6_K below
// 5 bits, rows that do not fit the block size at Q8_0/F16), metadata kept, written to `out`.
// With `imatrix`, each matrix it has an entry for is quantized by importance (quantize_imatrix).
Status quantize_gguf(const GgufFile& in, const std::string& out, DType type, const Imatrix* imatrix = nullptr);
// The same with a per-tensor recipe (q4_k_m, ...: modu/models/quant_mix.h).
Status quantize_gguf_mix(const GgufFile& in, const std::string& out, QuantMix mix, const Imatrix* imatrix = nullptr);

// Each subcommand registers itself on the app and returns the callback result through `rc`.
void add_run_command(CLI::App& app, int& rc);
void add_info_command(CLI::App& app, int& rc);
void add_bench_command(CLI::App& app, int& rc);
void add_quantize_command(CLI::App& app, int& rc);
void add_init_model_command(CLI::App& app, int& rc);
void add_init_mmproj_command(CLI::App& app, int& rc);
void add_serve_command(CLI::App& app, int& rc);
void add_tokenize_commands(CLI::App& app, int& rc);
void add_template_command(CLI::App& app, int& rc);
void add_toolcalls_command(CLI::App& app, int& rc);
void add_agent_command(CLI::App& app, int& rc);
void add_detect_command(CLI::App& app, int& rc);
void add_audit_command(CLI::App& app, int& rc);
void add_lora_command(CLI::App& app, int& rc);
// Writes the adapter GGUF `adapter` as a PEFT folder `dir` for the base GGUF `base` (cmd_lora.cpp).
int export_peft(const std::string& base, const std::string& adapter, const std::string& dir);
void add_tune_command(CLI::App& app, int& rc);
void add_chat_command(CLI::App& app, int& rc);
void add_train_command(CLI::App& app, int& rc);
void add_tokenizer_train_command(CLI::App& app, int& rc);
void add_eval_command(CLI::App& app, int& rc);
void add_imatrix_command(CLI::App& app, int& rc);
void add_convert_command(CLI::App& app, int& rc);

// Resident set size of this process in bytes (from /proc/self/statm), 0 if unknown.
size_t current_rss_bytes();
size_t peak_rss_bytes();

// Speculative decoding options shared by run and chat: --lookup (prompt-lookup drafts), --draft M
// (a draft model with the same tokenizer) and --draft-max N.
struct SpecArgs {
  bool lookup = false;
  std::string draft;
  int draft_max = 8;
};
void add_spec_options(CLI::App* c, SpecArgs* s);
// The drafter the options ask for (null: none). `keep` holds a draft model for the drafter's life.
Result<std::unique_ptr<Drafter>> make_drafter(const SpecArgs& s, const Tokenizer& target, ThreadPool& pool, int64_t n_ctx,
                                              LoadedModel* keep);
// "drafted N, accepted M (P %)" for the closing line, or "" without drafts.
std::string spec_summary(int64_t drafted, int64_t accepted);

}  // namespace modu::cli
