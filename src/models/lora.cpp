// LoRA adapters: reading llama.cpp's adapter GGUF, attaching adapters to a model's matrices, and
// the low-rank term each matmul adds.
#include "modu/models/lora.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "modu/gguf/gguf.h"
#include "modu/kernels/dispatch.h"
#include "modu/kernels/dtype.h"
#include "modu/models/model.h"

namespace modu {

namespace {

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

// A 2-D tensor as F32 rows: [shape[1], shape[0]].
Result<std::vector<float>> to_f32(const GgufTensor& t, const std::string& where) {
  const DTypeTraits* tr = dtype_traits(t.dtype);
  if (!tr || !tr->dequantize) return invalid_argument(where + ": tensor " + t.name + " has a dtype modu cannot read");
  if (t.shape[0] % tr->block_size != 0)
    return invalid_argument(where + ": tensor " + t.name + " rows are not whole " + tr->name + " blocks");
  std::vector<float> out((size_t)t.n_elements());
  const size_t row_bytes = dtype_row_bytes(t.dtype, t.shape[0]);
  for (int64_t r = 0; r < t.shape[1]; ++r) tr->dequantize(t.data + (size_t)r * row_bytes, out.data() + r * t.shape[0], t.shape[0]);
  for (float v : out)
    if (!std::isfinite(v)) return invalid_argument(where + ": tensor " + t.name + " holds a non-finite value");
  return out;
}

}  // namespace

Result<std::shared_ptr<const LoraAdapter>> LoraAdapter::load(const std::string& path) {
  MODU_ASSIGN_OR_RETURN(GgufFile f, GgufFile::open(path));
  auto a = std::make_shared<LoraAdapter>();
  MODU_RETURN_IF_ERROR(read(f, path, a.get()));
  return std::shared_ptr<const LoraAdapter>(std::move(a));
}

Result<std::shared_ptr<const LoraAdapter>> LoraAdapter::parse(const uint8_t* data, size_t size, const std::string& name) {
  MODU_ASSIGN_OR_RETURN(GgufFile f, GgufFile::parse(data, size, name));
  auto a = std::make_shared<LoraAdapter>();
  MODU_RETURN_IF_ERROR(read(f, name, a.get()));
  return std::shared_ptr<const LoraAdapter>(std::move(a));
}

std::shared_ptr<const LoraAdapter> LoraAdapter::from_pairs(std::string name, std::string arch, float alpha,
                                                           std::map<std::string, LoraPair> pairs) {
  auto a = std::make_shared<LoraAdapter>();
  a->name_ = std::move(name);
  a->arch_ = std::move(arch);
  a->alpha_ = alpha;
  a->pairs_ = std::move(pairs);
  return a;
}

Status LoraAdapter::read(const GgufFile& f, const std::string& name, LoraAdapter* out) {
  MODU_ASSIGN_OR_RETURN(std::string type, f.get_string("general.type", std::string()));
  if (type != "adapter")
    return invalid_argument(name + " is not an adapter file (general.type is '" + type +
                            "', expected 'adapter'); give the base model with -m and the adapter with --lora");
  MODU_ASSIGN_OR_RETURN(std::string atype, f.get_string("adapter.type", std::string()));
  if (atype != "lora") return unimplemented(name + ": adapter.type '" + atype + "' is not supported (only 'lora')");
  MODU_ASSIGN_OR_RETURN(double alpha, f.get_float("adapter.lora.alpha", 0.0));
  if (!std::isfinite(alpha) || alpha < 0) return invalid_argument(name + ": adapter.lora.alpha must be a number >= 0");
  MODU_ASSIGN_OR_RETURN(out->arch_, f.get_string("general.architecture", std::string()));
  out->name_ = name;
  out->alpha_ = (float)alpha;
  struct Halves {
    const GgufTensor* a = nullptr;
    const GgufTensor* b = nullptr;
  };
  std::map<std::string, Halves> halves;
  for (const GgufTensor& t : f.tensors()) {
    if (ends_with(t.name, ".lora_a")) halves[t.name.substr(0, t.name.size() - 7)].a = &t;
    else if (ends_with(t.name, ".lora_b")) halves[t.name.substr(0, t.name.size() - 7)].b = &t;
    else return invalid_argument(name + ": tensor " + t.name + " is neither a .lora_a nor a .lora_b");
  }
  if (halves.empty()) return invalid_argument(name + ": the adapter has no tensors");
  for (const auto& [base, h] : halves) {
    if (!h.a || !h.b) return invalid_argument(name + ": " + base + " has only one of .lora_a / .lora_b");
    if (h.a->shape.size() != 2 || h.b->shape.size() != 2)
      return invalid_argument(name + ": " + base + ": .lora_a and .lora_b must be 2-D");
    LoraPair p;
    p.cols = h.a->shape[0];
    p.rank = h.a->shape[1];
    p.rows = h.b->shape[1];
    if (h.b->shape[0] != p.rank || p.rank <= 0 || p.cols <= 0 || p.rows <= 0)
      return invalid_argument(name + ": " + base + ": lora_a is " + std::to_string(p.cols) + " x rank " +
                              std::to_string(p.rank) + " but lora_b's rank dimension is " + std::to_string(h.b->shape[0]));
    MODU_ASSIGN_OR_RETURN(p.a, to_f32(*h.a, name));
    MODU_ASSIGN_OR_RETURN(p.b, to_f32(*h.b, name));
    out->pairs_[base] = std::move(p);
  }
  return Status::Ok();
}

Status Model::add_lora(std::shared_ptr<const LoraAdapter> adapter, float scale) { return attach_lora(std::move(adapter), scale, -1); }

Result<int> Model::add_named_lora(const std::string& name, std::shared_ptr<const LoraAdapter> adapter, float scale) {
  if (name.empty()) return invalid_argument("a named LoRA adapter needs a name");
  if (named_lora_index(name) >= 0) return invalid_argument("LoRA adapter name '" + name + "' is used twice");
  int slot = (int)lora_names_.size();
  for (size_t i = 0; i < lora_names_.size(); ++i)
    if (lora_names_[i].empty()) {
      slot = (int)i;
      break;
    }
  if (slot == kMaxNamedLoras) return resource_exhausted("at most " + std::to_string(kMaxNamedLoras) + " named LoRA adapters");
  MODU_RETURN_IF_ERROR(attach_lora(std::move(adapter), scale, slot));
  if (slot == (int)lora_names_.size()) lora_names_.emplace_back();
  lora_names_[(size_t)slot] = name;
  return slot;
}

Status Model::remove_named_lora(const std::string& name) {
  const int slot = name.empty() ? -1 : named_lora_index(name);
  if (slot < 0) return not_found("no LoRA adapter named '" + name + "' is attached");
  // Each adapted weight gets a delta without the slot's terms (none left: no delta at all).
  std::vector<Weight*> all;
  for (LayerWeights& L : w_.layers)
    for (Weight* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.wqkv, &L.w_gate, &L.w_up, &L.w_down}) all.push_back(w);
  all.push_back(&w_.output);
  for (Weight* w : all) {
    if (!w->lora) continue;
    auto delta = std::make_unique<LoraDelta>();
    for (const LoraTerm& t : w->lora->terms)
      if (t.slot != slot) delta->terms.push_back(t);
    if (delta->terms.size() == w->lora->terms.size()) continue;
    w->lora = delta->terms.empty() ? nullptr : delta.get();
    if (w->lora) lora_deltas_.push_back(std::move(delta));
  }
  // Deltas no weight points to any more go (they may name the adapter's pairs), then the adapter.
  std::vector<const LoraDelta*> live;
  for (Weight* w : all)
    if (w->lora) live.push_back(w->lora);
  std::erase_if(lora_deltas_, [&](const std::unique_ptr<LoraDelta>& d) {
    return std::find(live.begin(), live.end(), d.get()) == live.end();
  });
  for (size_t i = loras_.size(); i-- > 0;)
    if (lora_slots_[i] == slot) {
      loras_.erase(loras_.begin() + (std::ptrdiff_t)i);
      lora_slots_.erase(lora_slots_.begin() + (std::ptrdiff_t)i);
    }
  lora_names_[(size_t)slot].clear();
  return Status::Ok();
}

int Model::named_lora_index(const std::string& name) const {
  if (name.empty()) return -1;
  for (size_t i = 0; i < lora_names_.size(); ++i)
    if (lora_names_[i] == name) return (int)i;
  return -1;
}

Status Model::attach_lora(std::shared_ptr<const LoraAdapter> adapter, float scale, int slot) {
  if (!adapter) return invalid_argument("add_lora: no adapter");
  if (!std::isfinite(scale)) return invalid_argument("LoRA scale must be a finite number");
  if (!adapter->arch().empty() && adapter->arch() != cfg_.arch.name)
    return invalid_argument(adapter->name() + " is an adapter for '" + adapter->arch() + "', but the model is '" +
                            cfg_.arch.name + "'");
  // The dense matrices an adapter may target, by tensor name.
  std::map<std::string, Weight*> targets;
  auto add = [&](Weight& w) {
    if (w && w.tensor) targets[w.tensor->name] = &w;
  };
  for (LayerWeights& L : w_.layers)
    for (Weight* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.wqkv, &L.w_gate, &L.w_up, &L.w_down}) add(*w);
  add(w_.output);
  // Check everything first: a failed attach leaves the model as it was.
  for (const auto& [base, p] : adapter->pairs()) {
    auto it = targets.find(base);
    if (it == targets.end())
      return invalid_argument(adapter->name() + ": " + base + " is not a matrix of this model that LoRA can adapt "
                              "(attention, feed-forward and output matrices can; embeddings and MoE experts cannot)");
    if (it->second->cols != p.cols || it->second->rows != p.rows)
      return invalid_argument(adapter->name() + ": " + base + " is " + std::to_string(p.rows) + " x " + std::to_string(p.cols) +
                              " in the adapter but " + std::to_string(it->second->rows) + " x " +
                              std::to_string(it->second->cols) + " in the model: an adapter for another model?");
    if (&w_.output == it->second && w_.output.data == w_.tok_embd.data)
      return invalid_argument(adapter->name() + ": " + base + ": the output shares the token embedding (tied), which LoRA here does not adapt");
  }
  for (const auto& [base, p] : adapter->pairs()) {
    Weight* w = targets[base];
    auto delta = std::make_unique<LoraDelta>();
    if (w->lora) delta->terms = w->lora->terms;
    delta->terms.push_back({&p, adapter->scale_for(scale, p.rank), slot});
    w->lora = delta.get();
    lora_deltas_.push_back(std::move(delta));
  }
  loras_.emplace_back(std::move(adapter), scale);
  lora_slots_.push_back(slot);
  return Status::Ok();
}

namespace ops {

namespace {
thread_local const uint32_t* t_lora_rows = nullptr;
}  // namespace

LoraRowsScope::LoraRowsScope(const uint32_t* masks) : prev_(t_lora_rows) { t_lora_rows = masks; }
LoraRowsScope::~LoraRowsScope() { t_lora_rows = prev_; }

void apply_lora(const Weight& w, const float* x, int64_t n, float* y, ThreadPool& pool) {
  if (!w.lora) return;
  const int64_t cols = w.cols, rows = w.rows;
  const uint32_t* masks = t_lora_rows;  // read on the calling thread: the workers see this copy
  for (const LoraTerm& t : w.lora->terms) {
    // A named adapter applies to the rows that selected it; skip the term when none did.
    std::vector<uint8_t> on;
    if (t.slot >= 0) {
      if (!masks) continue;
      on.resize((size_t)n);
      bool any = false;
      for (int64_t i = 0; i < n; ++i) any |= (on[(size_t)i] = (masks[i] >> t.slot) & 1u) != 0;
      if (!any) continue;
    }
    const LoraPair& p = *t.pair;
    const int64_t r = p.rank;
    // The dispatched F32 dot (SIMD at every ISA level; checked against the scalar reference in
    // kernels_test): a plain loop's float reduction does not vectorize without -ffast-math.
    const VecDotFn dot = kernels().vec_dot[(int)DType::F32];
    std::vector<float> ax((size_t)(n * r), 0.0f);  // [n, rank] = scale * x A^T (0 for rows left out)
    pool.parallel_for(n * r, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        if (!on.empty() && !on[(size_t)(i / r)]) continue;
        ax[(size_t)i] = t.scale * dot(cols, p.a.data() + (i % r) * cols, x + (i / r) * cols);
      }
    });
    // y [n, rows] += ax B^T in blocks of 64 rows: a block of B (64 x rank floats) stays in L1
    // across the tokens, and each token's writes are contiguous.
    pool.parallel_for(rows, [&](int64_t b, int64_t e) {
      for (int64_t tok = 0; tok < n; ++tok) {
        if (!on.empty() && !on[(size_t)tok]) continue;
        const float* at = ax.data() + tok * r;
        float* yt = y + tok * rows;
        for (int64_t row = b; row < e; ++row) yt[row] += dot(r, p.b.data() + row * r, at);
      }
    }, 64);
  }
}

}  // namespace ops

}  // namespace modu
