// Tokenizer throughput (Google Benchmark): encode/decode MB/s on mixed Korean/English text for each
// shared vocabulary (SPM, byte-level BPE with three pre-tokenizers, WordPiece).
#include <benchmark/benchmark.h>

#include <fstream>
#include <map>
#include <sstream>

#include "modu/gguf/gguf.h"
#include "modu/tokenizer/tokenizer.h"

namespace {

const std::string kVocabDir = std::string(MODU_SHARED_DIR) + "/testdata/vocab/";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ~256 KiB of the shared Korean cases and the mixed-script English cases, separators removed.
const std::string& corpus() {
  static const std::string text = [] {
    std::string base = read_file(kVocabDir + "korean.inp") + read_file(kVocabDir + "ggml-vocab-gpt-2.gguf.inp");
    const std::string sep = "__ggml_vocab_test__";
    for (size_t p; (p = base.find(sep)) != std::string::npos;) base.erase(p, sep.size());
    std::string out;
    while (!base.empty() && out.size() < 256 * 1024) out += base;
    return out;
  }();
  return text;
}

const modu::Tokenizer* tokenizer(const std::string& name) {
  static std::map<std::string, std::unique_ptr<modu::Tokenizer>> cache;
  auto& slot = cache[name];
  if (!slot) {
    auto file = modu::GgufFile::open(kVocabDir + "ggml-vocab-" + name + ".gguf");
    if (!file.ok()) return nullptr;
    auto tok = modu::Tokenizer::from_gguf(*file);
    if (!tok.ok()) return nullptr;
    slot = std::move(tok).value();
  }
  return slot.get();
}

void BM_Encode(benchmark::State& state, const std::string& name) {
  const modu::Tokenizer* tok = tokenizer(name);
  if (!tok) {
    state.SkipWithError(("cannot load vocabulary " + name).c_str());
    return;
  }
  const std::string& text = corpus();
  size_t n_tokens = 0;
  for (auto _ : state) {
    auto ids = tok->encode(text, false, false);
    n_tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(n_tokens);
}

void BM_Decode(benchmark::State& state, const std::string& name) {
  const modu::Tokenizer* tok = tokenizer(name);
  if (!tok) {
    state.SkipWithError(("cannot load vocabulary " + name).c_str());
    return;
  }
  const auto ids = tok->encode(corpus(), false, false);
  size_t bytes = 0;
  for (auto _ : state) {
    std::string s = tok->decode(ids);
    bytes = s.size();
    benchmark::DoNotOptimize(s.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}

}  // namespace

BENCHMARK_CAPTURE(BM_Encode, llama_spm, std::string("llama-spm"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, gpt_2, std::string("gpt-2"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, deepseek_coder, std::string("deepseek-coder"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, falcon, std::string("falcon"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, bert_bge, std::string("bert-bge"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Decode, llama_spm, std::string("llama-spm"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Decode, gpt_2, std::string("gpt-2"))->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
