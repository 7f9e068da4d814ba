// `modu detect`: is a text watermarked with this key? Tokenizes the text with the model's (or a
// vocabulary file's) tokenizer, no weights loaded, and prints the green count, z-score, p-value
// and verdict.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common.h"
#include "modu/hf/hf_model.h"
#include "modu/runtime/watermark.h"

namespace modu::cli {

namespace {

struct DetectArgs {
  std::string key, model, file;
  float gamma = 0.25f;
  double threshold = 4.0;
  bool json = false;
};

int detect(const DetectArgs& a) {
  auto f = open_model_path(a.model);  // only the tokenizer metadata is read
  if (!f.ok()) return fail(f.status());
  auto tok = Tokenizer::from_gguf(*f);
  if (!tok.ok()) return fail(tok.status());
  std::string text;
  if (a.file.empty() || a.file == "-") {
    std::ostringstream ss;
    ss << std::cin.rdbuf();
    text = ss.str();
  } else {
    std::ifstream in(a.file, std::ios::binary);
    if (!in) return fail(io_error("cannot read " + a.file));
    std::ostringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  if (!(a.gamma > 0 && a.gamma < 1)) return fail(invalid_argument("--gamma must be in (0, 1)"));
  const WatermarkKey key = WatermarkKey::from_secret(a.key);
  const std::vector<int32_t> ids = (*tok)->encode(text, /*add_special=*/false, /*parse_special=*/false);
  const WatermarkDetection d = detect_watermark(ids, key, a.gamma, a.threshold);
  const char* verdict = d.watermarked ? "watermarked" : d.scored < 16 ? "too short to tell" : "not watermarked";
  if (a.json) {
    nlohmann::json j = {{"key_id", key.id}, {"tokens", ids.size()}, {"scored", d.scored}, {"green", d.green},
                        {"gamma", a.gamma}, {"z", d.z}, {"p_value", d.p_value}, {"watermarked", d.watermarked}, {"verdict", verdict}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%s: %lld of %lld scored tokens green (expected %.0f without a watermark), z = %.2f, p = %.3g (key %s)\n",
                verdict, (long long)d.green, (long long)d.scored, a.gamma * d.scored, d.z, d.p_value, key.id.c_str());
  }
  return d.watermarked ? 0 : 3;  // scripts can branch on it
}

}  // namespace

void add_detect_command(CLI::App& app, int& rc) {
  auto a = std::make_shared<DetectArgs>();
  CLI::App* c = app.add_subcommand("detect", "Tell whether a text carries modu's watermark for a key (exit 0: yes, 3: no)");
  c->add_option("--key", a->key, "The watermark secret")->required();
  c->add_option("-m,--model,--tokenizer", a->model, "GGUF model or vocabulary file (or HF folder) whose tokenizer wrote the text")
      ->required()->check(CLI::ExistingPath);
  c->add_option("file", a->file, "Text file (default: stdin)");
  c->add_option("--gamma", a->gamma, "Green fraction used when generating")->capture_default_str();
  c->add_option("--threshold", a->threshold, "z-score from which a text counts as watermarked")->capture_default_str();
  c->add_flag("--json", a->json, "Print one JSON object");
  c->callback([a, &rc] { rc = detect(*a); });
}

}  // namespace modu::cli
