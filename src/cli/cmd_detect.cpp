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
  bool jsonl = false;  // many texts: one JSON string (or {"text": ...}) per input line, one result per line
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
  auto score = [&](const std::string& t, WatermarkDetection* d, size_t* n_tokens) {
    const std::vector<int32_t> ids = (*tok)->encode(t, /*add_special=*/false, /*parse_special=*/false);
    *d = detect_watermark(ids, key, a.gamma, a.threshold);
    *n_tokens = ids.size();
    return d->watermarked ? "watermarked" : d->scored < 16 ? "too short to tell" : "not watermarked";
  };
  auto as_json = [&](const WatermarkDetection& d, size_t n_tokens, const char* verdict) {
    return nlohmann::json{{"key_id", key.id}, {"tokens", n_tokens}, {"scored", d.scored}, {"green", d.green}, {"gamma", a.gamma},
                          {"z", d.z}, {"p_value", d.p_value}, {"watermarked", d.watermarked}, {"verdict", verdict}};
  };
  if (a.jsonl) {
    std::istringstream lines(text);
    std::string line;
    int64_t n = 0, line_no = 0;
    while (std::getline(lines, line)) {
      ++line_no;
      if (line.empty()) continue;
      const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      std::string t;
      if (j.is_string()) t = j.get<std::string>();
      else if (j.is_object() && j.contains("text") && j["text"].is_string()) t = j["text"].get<std::string>();
      else return fail(invalid_argument("--jsonl: line " + std::to_string(line_no) + " is neither a JSON string nor {\"text\": ...}"));
      WatermarkDetection d;
      size_t n_tokens = 0;
      const char* verdict = score(t, &d, &n_tokens);
      nlohmann::json out = as_json(d, n_tokens, verdict);
      out["line"] = line_no;
      std::printf("%s\n", out.dump().c_str());
      ++n;
    }
    std::fprintf(stderr, "modu detect: %lld texts\n", (long long)n);
    return 0;
  }
  WatermarkDetection d;
  size_t n_tokens = 0;
  const char* verdict = score(text, &d, &n_tokens);
  if (a.json) {
    std::printf("%s\n", as_json(d, n_tokens, verdict).dump().c_str());
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
  c->add_flag("--jsonl", a->jsonl, "Many texts: each input line a JSON string or {\"text\": ...}; one JSON result per line (exit 0)");
  c->callback([a, &rc] { rc = detect(*a); });
}

}  // namespace modu::cli
