// `modu lora merge BASE ADAPTER... OUT [--type T]`: bakes LoRA adapters into a GGUF model's
// weights (W + s B A) and optionally quantizes the result; `modu lora export`: an adapter GGUF as
// a PEFT folder; `modu lora init`: a random adapter for a model (benchmarks and tests).
#include <cmath>
#include <array>
#include <cstdio>
#include <filesystem>
#include <random>

#include "common.h"
#include "modu/hf/hf_model.h"

namespace modu::cli {

namespace {

struct MergeArgs {
  std::string base, out, type;
  std::vector<std::string> adapters;  // PATH[:SCALE]
};

int merge(const MergeArgs& a) {
  auto base = GgufFile::open(a.base);
  if (!base.ok()) return fail(base.status().with_context("the base must be a GGUF file (convert a Hugging Face folder first with `modu convert`)"));
  // The model checks each adapter against the base (names, shapes, architecture) and holds the
  // terms each matrix gets; its weights are what the merge adds to.
  auto model = Model::load(a.base);
  if (!model.ok()) return fail(model.status());
  if (Status st = attach_loras(**model, a.adapters); !st.ok()) return fail(st);
  std::map<std::string, const LoraDelta*> deltas;
  auto note = [&](const Weight& w) {
    if (w.lora && w.tensor) deltas[w.tensor->name] = w.lora;
  };
  for (const auto& L : (*model)->weights().layers)
    for (const Weight* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.wqkv, &L.w_gate, &L.w_up, &L.w_down}) note(*w);
  note((*model)->weights().output);
  GgufWriter w;
  for (const auto& [k, v] : base->metadata())
    if (k != "general.alignment") w.set(k, v);
  std::vector<float> row, ax;
  for (const GgufTensor& t : base->tensors()) {
    auto it = deltas.find(t.name);
    if (it == deltas.end()) {
      if (Status st = w.add_tensor(t.name, t.dtype, t.shape, t.data, t.nbytes); !st.ok()) return fail(st);
      continue;
    }
    const int64_t cols = t.shape[0], rows = t.shape[1];
    std::vector<float> out((size_t)(rows * cols));
    const size_t rb = dtype_row_bytes(t.dtype, cols);
    for (int64_t r = 0; r < rows; ++r) dtype_traits(t.dtype)->dequantize(t.data + (size_t)r * rb, out.data() + r * cols, cols);
    for (const LoraTerm& term : it->second->terms) {  // W += scale * B A, accumulated in double per element
      const LoraPair& p = *term.pair;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
          double d = 0;
          for (int64_t k = 0; k < p.rank; ++k) d += (double)p.b[r * p.rank + k] * p.a[k * cols + c];
          out[r * cols + c] += (float)(term.scale * d);
        }
    }
    // Merged into the matrix's own dtype (a quantized base is re-quantized; F32 when that dtype cannot be written).
    DType dt = dtype_traits(t.dtype)->quantize ? t.dtype : DType::F32;
    if (Status st = w.add_tensor_f32(t.name, dt, t.shape, out.data()); !st.ok()) return fail(st.with_context(t.name));
  }
  if (a.type.empty()) {
    if (Status st = w.write(a.out); !st.ok()) return fail(st);
    std::fprintf(stderr, "modu: merged %zu matrices into %s\n", deltas.size(), a.out.c_str());
    return 0;
  }
  auto type = dtype_from_name(a.type);
  if (!type.ok()) return fail(type.status());
  const std::vector<uint8_t> bytes = w.serialize();
  auto merged = GgufFile::parse(bytes.data(), bytes.size(), "merged");
  if (!merged.ok()) return fail(merged.status());
  if (Status st = quantize_gguf(*merged, a.out, *type); !st.ok()) return fail(st);
  std::fprintf(stderr, "modu: merged %zu matrices and quantized to %s: %s\n", deltas.size(), a.type.c_str(), a.out.c_str());
  return 0;
}

struct InitArgs {
  std::string base, out;
  std::vector<std::string> targets = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
  int rank = 16;
  float alpha = 32;
  float strength = 0.1f;  // about |s B A x| / |x| for a random x
  uint64_t seed = 1;
};

// A random adapter in llama.cpp's layout: A ~ N(0, 1/cols), B ~ N(0, 1) scaled so that s B A x
// is about --strength times |x|, for each matrix whose name ends in a target.
int init(const InitArgs& a) {
  auto base = GgufFile::open(a.base);
  if (!base.ok()) return fail(base.status());
  auto arch = base->get_string("general.architecture", std::string());
  if (!arch.ok()) return fail(arch.status());
  if (a.rank <= 0) return fail(invalid_argument("--rank must be positive"));
  std::vector<std::string> targets;
  for (const auto& t : a.targets) targets.push_back(t + ".weight");
  GgufWriter w;
  w.set("general.architecture", GgufValue::string(*arch));
  w.set("general.type", GgufValue::string("adapter"));
  w.set("adapter.type", GgufValue::string("lora"));
  w.set("adapter.lora.alpha", GgufValue::f32(a.alpha));
  std::mt19937_64 rng(a.seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  int n = 0;
  for (const GgufTensor& t : base->tensors()) {
    bool hit = false;
    for (const auto& suf : targets) hit |= t.name.size() > suf.size() && t.name.compare(t.name.size() - suf.size(), suf.size(), suf) == 0 &&
                                           t.name[t.name.size() - suf.size() - 1] == '.';
    if (!hit || t.shape.size() != 2) continue;
    const int64_t cols = t.shape[0], rows = t.shape[1];
    std::vector<float> A((size_t)(a.rank * cols)), B((size_t)(rows * a.rank));
    for (auto& v : A) v = nd(rng) / std::sqrt((float)cols);
    for (auto& v : B) v = a.strength * nd(rng) / std::sqrt((float)a.rank) * (float)a.rank / a.alpha;
    if (Status st = w.add_tensor_f32(t.name + ".lora_a", DType::F32, {cols, a.rank}, A.data()); !st.ok()) return fail(st);
    if (Status st = w.add_tensor_f32(t.name + ".lora_b", DType::F32, {a.rank, rows}, B.data()); !st.ok()) return fail(st);
    ++n;
  }
  if (n == 0) return fail(invalid_argument("no matrix of " + a.base + " matches --targets"));
  if (Status st = w.write(a.out); !st.ok()) return fail(st);
  std::fprintf(stderr, "modu: wrote %s (random rank-%d LoRA for %d matrices of %s)\n", a.out.c_str(), a.rank, n, a.base.c_str());
  return 0;
}

}  // namespace

// Shared with `modu tune --peft`: the adapter GGUF at `adapter` written as a PEFT folder for `base`.
int export_peft(const std::string& base, const std::string& adapter, const std::string& dir) {
  auto g = GgufFile::open(base);
  if (!g.ok()) return fail(g.status());
  auto ad = LoraAdapter::load(adapter);
  if (!ad.ok()) return fail(ad.status());
  if (Status st = save_peft_adapter(**ad, *g, dir); !st.ok()) return fail(st);
  std::fprintf(stderr, "modu: wrote PEFT folder %s (%zu matrices, adapter_config.json + adapter_model.safetensors)\n",
               dir.c_str(), (*ad)->pairs().size());
  return 0;
}

void add_lora_command(CLI::App& app, int& rc) {
  auto a = std::make_shared<MergeArgs>();
  CLI::App* c = app.add_subcommand("lora", "LoRA adapters: merge into a model, or make a random one");
  c->require_subcommand(1);
  CLI::App* m = c->add_subcommand("merge", "Bake adapters into a GGUF model's weights (W + s B A), optionally quantizing");
  m->add_option("base", a->base, "Base model GGUF")->required()->check(CLI::ExistingFile);
  m->add_option("adapters", a->adapters, "Adapters (GGUF or PEFT folder), each PATH[:SCALE]; the last argument is the output")
      ->required()->expected(2, -1);
  m->add_option("--type", a->type, "Quantize the merged model (f16, q8_0, q4_k, ...)");
  m->callback([a, &rc] {
    a->out = a->adapters.back();
    a->adapters.pop_back();
    rc = merge(*a);
  });
  auto ea = std::make_shared<std::array<std::string, 3>>();
  CLI::App* e = c->add_subcommand("export", "Write an adapter GGUF as a PEFT folder (adapter_config.json + adapter_model.safetensors)");
  e->add_option("base", (*ea)[0], "The base model GGUF it adapts (names, Q/K layout)")->required()->check(CLI::ExistingFile);
  e->add_option("adapter", (*ea)[1], "Adapter GGUF")->required()->check(CLI::ExistingFile);
  e->add_option("out", (*ea)[2], "Output folder")->required();
  e->callback([ea, &rc] { rc = export_peft((*ea)[0], (*ea)[1], (*ea)[2]); });
  auto ia = std::make_shared<InitArgs>();
  CLI::App* i = c->add_subcommand("init", "Write a random LoRA adapter for a model (benchmarks, tests)");
  i->add_option("-m,--model", ia->base, "Base model GGUF")->required()->check(CLI::ExistingFile);
  i->add_option("-o,--output", ia->out, "Output adapter GGUF")->required();
  i->add_option("--rank", ia->rank, "Rank")->capture_default_str();
  i->add_option("--alpha", ia->alpha, "adapter.lora.alpha")->capture_default_str();
  i->add_option("--strength", ia->strength, "Size of the adapter's term relative to its input")->capture_default_str();
  i->add_option("--targets", ia->targets, "Matrix names, comma-separated (attn_q, ..., ffn_down, output)")->delimiter(',')->capture_default_str();
  i->add_option("--seed", ia->seed, "Random seed")->capture_default_str();
  i->callback([ia, &rc] { rc = init(*ia); });
}

}  // namespace modu::cli
