// `modu convert DIR OUT.gguf [--type T]`: a Hugging Face folder written as a GGUF file that other
// GGUF runtimes load (llama.cpp names and keys, permuted Q/K for llama, tokenizer metadata).
#include <cstdio>

#include "common.h"
#include "modu/hf/hf_model.h"

namespace modu::cli {

namespace {

int convert(const std::string& in, const std::string& out, const std::string& type_name) {
  std::optional<DType> type;
  if (!type_name.empty()) {
    auto t = dtype_from_name(type_name);
    if (!t.ok()) return fail(t.status());
    type = *t;
  }
  auto src = open_model_path(in);
  if (!src.ok()) return fail(src.status());
  Status s = convert_to_gguf(*src, out, type);
  if (!s.ok()) return fail(s.with_context("convert " + in));
  auto written = Model::load(out);  // the result must load as a model
  if (!written.ok()) return fail(written.status().with_context("checking " + out));
  std::printf("wrote %s: %s, %.1f MiB\n", out.c_str(), (*written)->config().describe().c_str(),
              (double)(*written)->weight_bytes() / (1 << 20));
  return 0;
}

}  // namespace

void add_convert_command(CLI::App& app, int& rc) {
  CLI::App* c = app.add_subcommand("convert", "Convert a Hugging Face model folder to a GGUF file");
  auto in = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto type = std::make_shared<std::string>();
  c->add_option("DIR", *in, "Hugging Face folder (config.json, tokenizer.json, *.safetensors)")->required();
  c->add_option("OUT", *out, "output GGUF path")->required();
  c->add_option("--type", *type, "weight matrix dtype: f16, bf16, q8_0, q4_k, ... (default: as stored)");
  c->callback([in, out, type, &rc] { rc = convert(*in, *out, *type); });
}

}  // namespace modu::cli
