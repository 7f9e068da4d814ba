// `modu lora merge BASE ADAPTER... OUT [--type T]`: bakes LoRA adapters into a GGUF model's
// weights (W + s B A) and optionally quantizes the result.
#include <cstdio>
#include <filesystem>

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

}  // namespace

void add_lora_command(CLI::App& app, int& rc) {
  auto a = std::make_shared<MergeArgs>();
  CLI::App* c = app.add_subcommand("lora", "LoRA adapters: merge into a model");
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
}

}  // namespace modu::cli
