// Model loading: validates every tensor's presence, dtype and shape against the config, and views
// the weights in the memory map without copying (small 1-D tensors are converted to F32), then repacks
// Q4_0/Q8_0/Q4_K/Q6_K matrices for the decode kernels where the kernel level has kernels for it (repack.h).
#include "modu/models/model.h"

#include <chrono>
#include <cstring>
#include <iterator>
#include <map>
#include <new>
#include <thread>

#include "modu/core/fp16.h"
#include "modu/kernels/repack.h"
#include "weight_loader.h"

namespace modu {

Result<std::unique_ptr<Model>> Model::load(const std::string& path) {
  MODU_ASSIGN_OR_RETURN(GgufFile f, GgufFile::open(path));
  return from_gguf(std::move(f));
}

Result<std::unique_ptr<Model>> Model::from_gguf(GgufFile file) {
  std::unique_ptr<Model> m(new Model());
  m->file_ = std::move(file);
  const GgufFile& f = m->file_;
  MODU_ASSIGN_OR_RETURN(m->cfg_, read_model_config(f));
  const ModelConfig& c = m->cfg_;
  m->owned_.reserve(4 * c.n_layer + 8);
  Loader L{f, m->owned_};
  ModelWeights& w = m->w_;
  const int64_t q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
  MODU_ASSIGN_OR_RETURN(w.tok_embd, L.matrix("token_embd.weight", c.n_embd, c.n_vocab, true));
  MODU_ASSIGN_OR_RETURN(w.output_norm, L.vec("output_norm.weight", c.n_embd, true));
  MODU_ASSIGN_OR_RETURN(w.output, L.matrix("output.weight", c.n_embd, c.n_vocab, false));
  if (!w.output) {
    w.output = w.tok_embd;
    w.tied_output = true;
  }
  if (const GgufTensor* rf = f.tensor("rope_freqs.weight"); rf != nullptr) {
    MODU_ASSIGN_OR_RETURN(Weight r, L.vec("rope_freqs.weight", c.n_rot / 2, true));
    const float* p = reinterpret_cast<const float*>(r.data);
    w.rope_freq_factors.assign(p, p + c.n_rot / 2);
  }
  w.layers.resize(c.n_layer);
  for (int64_t i = 0; i < c.n_layer; ++i) {
    LayerWeights& l = w.layers[i];
    const std::string b = "blk." + std::to_string(i) + ".";
    MODU_ASSIGN_OR_RETURN(l.attn_norm, L.vec(b + "attn_norm.weight", c.n_embd, c.arch.pre_norms));
    if (f.tensor(b + "attn_qkv.weight") != nullptr) {
      MODU_ASSIGN_OR_RETURN(l.wqkv, L.matrix(b + "attn_qkv.weight", c.n_embd, q_dim + 2 * kv_dim, true));
    } else {
      MODU_ASSIGN_OR_RETURN(l.wq, L.matrix(b + "attn_q.weight", c.n_embd, q_dim, true));
      MODU_ASSIGN_OR_RETURN(l.wk, L.matrix(b + "attn_k.weight", c.n_embd, kv_dim, true));
      MODU_ASSIGN_OR_RETURN(l.wv, L.matrix(b + "attn_v.weight", c.n_embd, kv_dim, true));
    }
    MODU_ASSIGN_OR_RETURN(l.wo, L.matrix(b + "attn_output.weight", q_dim, c.n_embd, true));
    if (c.arch.allows_qkv_bias || c.arch.requires_qkv_bias) {
      const bool req = c.arch.requires_qkv_bias;
      MODU_ASSIGN_OR_RETURN(l.bq, L.vec(b + "attn_q.bias", q_dim, req));
      MODU_ASSIGN_OR_RETURN(l.bk, L.vec(b + "attn_k.bias", kv_dim, req));
      MODU_ASSIGN_OR_RETURN(l.bv, L.vec(b + "attn_v.bias", kv_dim, req));
    }
    MODU_ASSIGN_OR_RETURN(l.q_norm, L.vec(b + "attn_q_norm.weight", c.head_dim, c.arch.requires_qk_norm));
    MODU_ASSIGN_OR_RETURN(l.k_norm, L.vec(b + "attn_k_norm.weight", c.head_dim, c.arch.requires_qk_norm));
    MODU_ASSIGN_OR_RETURN(l.ffn_norm, L.vec(b + "ffn_norm.weight", c.n_embd, c.arch.pre_norms));
    MODU_ASSIGN_OR_RETURN(l.post_attn_norm, L.vec(b + "post_attention_norm.weight", c.n_embd, c.arch.post_norms));
    MODU_ASSIGN_OR_RETURN(l.post_ffw_norm, L.vec(b + "post_ffw_norm.weight", c.n_embd, c.arch.post_norms));
    if (c.n_expert > 0) {
      MODU_ASSIGN_OR_RETURN(l.moe_router, L.matrix(b + "ffn_gate_inp.weight", c.n_embd, c.n_expert, true));
      MODU_ASSIGN_OR_RETURN(l.exp_gate, L.stack(b + "ffn_gate_exps.weight", c.n_embd, c.n_ff_exp, c.n_expert));
      MODU_ASSIGN_OR_RETURN(l.exp_up, L.stack(b + "ffn_up_exps.weight", c.n_embd, c.n_ff_exp, c.n_expert));
      MODU_ASSIGN_OR_RETURN(l.exp_down, L.stack(b + "ffn_down_exps.weight", c.n_ff_exp, c.n_embd, c.n_expert));
      const bool shared = f.tensor(b + "ffn_gate_shexp.weight") != nullptr;
      MODU_ASSIGN_OR_RETURN(l.sh_gate, L.matrix(b + "ffn_gate_shexp.weight", c.n_embd, c.n_ff_shexp, shared));
      MODU_ASSIGN_OR_RETURN(l.sh_up, L.matrix(b + "ffn_up_shexp.weight", c.n_embd, c.n_ff_shexp, shared));
      MODU_ASSIGN_OR_RETURN(l.sh_down, L.matrix(b + "ffn_down_shexp.weight", c.n_ff_shexp, c.n_embd, shared));
      MODU_ASSIGN_OR_RETURN(l.sh_router, L.vec(b + "ffn_gate_inp_shexp.weight", c.n_embd, false));
    } else if (c.arch.fused_gate_up && f.tensor(b + "ffn_gate.weight") == nullptr) {
      MODU_ASSIGN_OR_RETURN(l.w_up, L.matrix(b + "ffn_up.weight", c.n_embd, 2 * c.n_ff, true));
      MODU_ASSIGN_OR_RETURN(l.w_down, L.matrix(b + "ffn_down.weight", c.n_ff, c.n_embd, true));
    } else {
      MODU_ASSIGN_OR_RETURN(l.w_gate, L.matrix(b + "ffn_gate.weight", c.n_embd, c.n_ff, true));
      MODU_ASSIGN_OR_RETURN(l.w_up, L.matrix(b + "ffn_up.weight", c.n_embd, c.n_ff, true));
      MODU_ASSIGN_OR_RETURN(l.w_down, L.matrix(b + "ffn_down.weight", c.n_ff, c.n_embd, true));
    }
  }
  m->rope_freqs_ = rope_frequencies(c, w.rope_freq_factors.empty() ? nullptr : w.rope_freq_factors.data());
  for (auto [name, dst] : {std::pair{"rope_factors_short.weight", &w.rope_factors_short},
                           std::pair{"rope_factors_long.weight", &w.rope_factors_long}}) {
    if (f.tensor(name) == nullptr) continue;
    MODU_ASSIGN_OR_RETURN(Weight r, L.vec(name, c.n_rot / 2, true));
    const float* p = reinterpret_cast<const float*>(r.data);
    dst->assign(p, p + c.n_rot / 2);
  }
  if (!w.rope_factors_short.empty()) m->rope_freqs_ = rope_frequencies(c, w.rope_factors_short.data());
  if (!w.rope_factors_long.empty()) m->rope_freqs_long_ = rope_frequencies(c, w.rope_factors_long.data());
  if (c.n_swa > 0 && c.rope_theta_swa > 0) {  // windowed layers: their own base, no scaling
    ModelConfig local = c;
    local.rope_theta = c.rope_theta_swa;
    local.rope_scaling = RopeScaling::kNone;
    m->rope_freqs_swa_ = rope_frequencies(local, nullptr);
  }
  m->repack_weights();
  return m;
}

// Rewrites the Q4_0 / Q8_0 / Q2_K..Q6_K matrices into the decode kernels' block-interleaved layouts when
// the kernel level in use has kernels for them (repack.h); views into a tensor (one expert of a
// stack) move to the same rows of the new buffer. The token embedding keeps the file layout:
// its rows are looked up one by one, and a tied output matrix shares it. MODU_REPACK=0 keeps every
// matrix as stored (A/B comparisons).
void Model::repack_weights() {
  if (const char* e = std::getenv("MODU_REPACK"); e && std::strcmp(e, "0") == 0) return;
  const KernelTable& kt = kernels();
  const auto t0 = std::chrono::steady_clock::now();
  std::map<const GgufTensor*, std::vector<Weight*>> by_tensor;
  auto add = [&](Weight& w) {
    if (w.tensor != nullptr && w.tensor != w_.tok_embd.tensor && w.dtype == w.tensor->dtype &&
        repack_pays(w.dtype, w.cols, kt))
      by_tensor[w.tensor].push_back(&w);
  };
  if (!w_.tied_output) add(w_.output);
  for (LayerWeights& l : w_.layers) {
    for (Weight* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.wqkv, &l.w_gate, &l.w_up, &l.w_down, &l.moe_router, &l.sh_gate,
                      &l.sh_up, &l.sh_down})
      add(*w);
    for (auto* v : {&l.exp_gate, &l.exp_up, &l.exp_down})
      for (Weight& w : *v) add(w);
  }
  // One arena for every repacked matrix, on 2 MiB pages where the OS grants them (HugeBuffer):
  // decode streams all of it once per token.
  auto out_bytes_of = [](const GgufTensor* t) {
    const size_t rb = dtype_row_bytes(t->dtype, t->shape[0]);
    return ((t->nbytes / rb) * dtype_row_bytes(repacked_dtype(t->dtype), t->shape[0]) + 63) & ~(size_t)63;
  };
  auto widens = [&](const GgufTensor* t) { return out_bytes_of(t) > t->nbytes + t->nbytes / 8; };
  size_t total = 0, widened = 0;
  for (auto& entry : by_tensor) {
    total += out_bytes_of(entry.first);
    if (widens(entry.first)) widened += out_bytes_of(entry.first);
  }
  // Widening layouts (Q3_K into Q6_K_R16: 1.9x the bytes) trade memory for 20-30x the decode speed
  // of the scalar file-layout dot; they are used only when the arena fits in available memory
  // with 512 MiB to spare (the file's pages are released as each matrix is repacked).
  if (widened > 0) {
    const size_t avail = available_memory_bytes();
    if (avail != 0 && total + (size_t(512) << 20) > avail) {
      for (auto it = by_tensor.begin(); it != by_tensor.end();)
        it = widens(it->first) ? by_tensor.erase(it) : std::next(it);
      repack_note_ = "widening Q3_K matrices for the fast kernels needs " + std::to_string(total >> 20) + " MiB, " +
                     std::to_string(avail >> 20) + " MiB available: they stay in the file layout (slow)";
      total -= widened;
    }
  }
  if (total == 0) return;
  Result<HugeBuffer> arena = HugeBuffer::allocate(total);
  if (!arena.ok()) {  // an optimization only: the file layouts still work, at lower decode speed
    repack_note_ = "matrices kept in the file layout: " + arena.status().message();
    return;
  }
  repacked_ = std::move(*arena);
  uint8_t* next = repacked_.data();
  const unsigned n_threads = std::max(1u, std::min(8u, std::thread::hardware_concurrency()));
  for (auto& entry : by_tensor) {
    const GgufTensor* t = entry.first;  // (not a structured binding: lambdas below capture it)
    const std::vector<Weight*>& ws = entry.second;
    const int64_t cols = t->shape[0];
    const DType rt = repacked_dtype(t->dtype);
    const size_t rb = dtype_row_bytes(t->dtype, cols), rb_out = dtype_row_bytes(rt, cols);
    const int64_t rows = (int64_t)(t->nbytes / rb);
    const size_t out_bytes = (size_t)rows * rb_out;
    uint8_t* dst = next;
    next += (out_bytes + 63) & ~(size_t)63;
    std::vector<std::thread> th;
    for (unsigned i = 0; i < n_threads; ++i)
      th.emplace_back([&, i] {
        const int64_t r0 = rows * i / n_threads, r1 = rows * (i + 1) / n_threads;
        repack_rows(t->dtype, t->data + (size_t)r0 * rb, dst + (size_t)r0 * rb_out, cols, r1 - r0);
      });
    for (auto& x : th) x.join();
    for (Weight* w : ws) {  // views (experts of a stack) start at whole rows
      w->data = dst + (size_t)(w->data - t->data) / rb * rb_out;
      w->dtype = rt;
      w->row_bytes = rb_out;
    }
    file_.release_data(t->data, t->nbytes);
    repacked_bytes_ += out_bytes;
  }
  repack_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int64_t Model::n_params() const {
  int64_t n = 0;
  for (const auto& t : file_.tensors()) n += t.n_elements();
  return n;
}

size_t Model::weight_bytes() const {
  size_t n = 0;
  for (const auto& t : file_.tensors()) n += t.nbytes;
  return n;
}

// ---- KV cache ----

namespace {
// The cache layout, shared by the constructor and bytes_for: row size, ring size of windowed
// layers (0: none) and rows per layer.
size_t kv_row_bytes(const ModelConfig& cfg, KvType type) {
  const int64_t n = cfg.n_head_kv * cfg.head_dim;
  if (type == KvType::kQ8_0) return dtype_row_bytes(DType::Q8_0, n);
  return (size_t)n * (type == KvType::kF16 ? 2 : 4);
}
int64_t kv_ring(const ModelConfig& cfg, int64_t n_ctx) {
  return cfg.n_swa > 0 && cfg.n_swa + KvCache::kSwaSlack < n_ctx ? cfg.n_swa + KvCache::kSwaSlack : 0;
}
int64_t kv_layer_rows(const ModelConfig& cfg, int64_t n_ctx, int64_t ring, int64_t layer) {
  return ring > 0 && cfg.is_swa(layer) ? ring : n_ctx;
}
int64_t kv_default_blocks(int n_seq, int64_t n_ctx) {
  return (int64_t)n_seq * ((n_ctx + KvCache::kBlock - 1) / KvCache::kBlock);
}
// Bytes of one of K / V: rings per sequence plus the pool.
size_t kv_half_bytes(const ModelConfig& cfg, int n_seq, int64_t n_ctx, KvType type, int64_t n_blocks) {
  const int64_t ring = kv_ring(cfg, n_ctx);
  size_t total = 0;
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    const int64_t rows = kv_layer_rows(cfg, n_ctx, ring, l);
    total += (rows < n_ctx ? (size_t)n_seq * (size_t)rows : (size_t)n_blocks * KvCache::kBlock) * kv_row_bytes(cfg, type);
  }
  return total;
}
}  // namespace

Status KvCache::check_type(const ModelConfig& cfg, KvType type) {
  if (type == KvType::kQ8_0 && cfg.head_dim % 32 != 0)
    return invalid_argument("a Q8_0 KV cache needs a head size that is a multiple of 32; this model's is " +
                            std::to_string(cfg.head_dim) + ": use f16");
  return Status::Ok();
}

size_t KvCache::bytes_for(const ModelConfig& cfg, int n_seq, int64_t n_ctx, KvType type, int64_t n_blocks) {
  return 2 * kv_half_bytes(cfg, n_seq, n_ctx, type, n_blocks < 0 ? kv_default_blocks(n_seq, n_ctx) : n_blocks);
}

size_t KvCache::block_bytes(const ModelConfig& cfg, int64_t n_ctx, KvType type) {
  return 2 * (kv_half_bytes(cfg, 1, n_ctx, type, 1) - kv_half_bytes(cfg, 1, n_ctx, type, 0));
}

KvCache::KvCache(const ModelConfig& cfg, int n_seq, int64_t n_ctx, KvType type, int64_t n_blocks)
    : n_seq_(n_seq), n_ctx_(n_ctx), n_layer_(cfg.n_layer), type_(type) {
  MODU_CHECK(n_seq > 0 && n_ctx > 0);
  MODU_CHECK_MSG(check_type(cfg, type).ok(), check_type(cfg, type).message());
  n_blocks_ = n_blocks < 0 ? kv_default_blocks(n_seq, n_ctx) : n_blocks;
  MODU_CHECK_MSG(n_blocks_ < INT32_MAX, "KV cache: too many blocks");
  row_bytes_ = kv_row_bytes(cfg, type);
  ring_ = kv_ring(cfg, n_ctx);
  if (ring_ > 0) window_ = cfg.n_swa;
  size_t total = 0;
  for (int64_t l = 0; l < n_layer_; ++l) {
    rows_.push_back(kv_layer_rows(cfg, n_ctx_, ring_, l));
    layer_off_.push_back(total);
    total += (ring_layer(l) ? (size_t)n_seq_ * (size_t)rows_.back() : (size_t)n_blocks_ * kBlock) * row_bytes_;
  }
  total_ = total;
  auto k = HugeBuffer::allocate(std::max<size_t>(total, 1)), v = HugeBuffer::allocate(std::max<size_t>(total, 1));
  if (!k.ok() || !v.ok()) throw std::bad_alloc();  // as the std::vector it replaces did
  k_ = std::move(*k);
  v_ = std::move(*v);
  len_.assign(n_seq_, 0);
  table_.resize(n_seq_);
  refs_.assign((size_t)n_blocks_, 0);
  free_.reserve((size_t)n_blocks_);
  for (int64_t b = n_blocks_ - 1; b >= 0; --b) free_.push_back((int32_t)b);  // block 0 first
}

int32_t KvCache::take_block() {
  if (free_.empty()) return -1;
  const int32_t b = free_.back();
  free_.pop_back();
  refs_[(size_t)b] = 1;
  return b;
}

void KvCache::copy_block(int32_t from, int32_t to, int64_t rows) {
  for (int64_t l = 0; l < n_layer_; ++l) {
    if (ring_layer(l)) continue;
    const size_t a = layer_off_[l] + (size_t)from * kBlock * row_bytes_, b = layer_off_[l] + (size_t)to * kBlock * row_bytes_;
    std::memcpy(k_.data() + b, k_.data() + a, (size_t)rows * row_bytes_);
    std::memcpy(v_.data() + b, v_.data() + a, (size_t)rows * row_bytes_);
  }
}

void KvCache::release_after(int seq) {
  auto& t = table_[seq];
  const size_t keep = (size_t)((len_[seq] + kBlock - 1) / kBlock);
  while (t.size() > keep) {
    const int32_t b = t.back();
    t.pop_back();
    if (--refs_[(size_t)b] == 0) free_.push_back(b);
  }
}

int64_t KvCache::exclusive_blocks(int seq) const {
  int64_t n = 0;
  for (int32_t b : table_[seq]) n += refs_[(size_t)b] == 1;
  return n;
}

int64_t KvCache::blocks_needed(int seq, int64_t end) const {
  const auto& t = table_[seq];
  const int64_t want = (std::min(end, n_ctx_) + kBlock - 1) / kBlock;
  int64_t n = std::max<int64_t>(0, want - (int64_t)t.size());
  for (int64_t i = len_[seq] / kBlock; i < std::min<int64_t>(want, (int64_t)t.size()); ++i)
    n += refs_[(size_t)t[(size_t)i]] > 1;  // written into while shared: copied first
  return n;
}

Status KvCache::prepare(int seq, int64_t end) {
  MODU_CHECK(seq >= 0 && seq < n_seq_ && end <= n_ctx_);
  auto& t = table_[seq];
  const int64_t want = (end + kBlock - 1) / kBlock;
  for (int64_t i = len_[seq] / kBlock; i < want; ++i) {
    if (i < (int64_t)t.size() && refs_[(size_t)t[(size_t)i]] == 1) continue;
    const int32_t nb = take_block();
    if (nb < 0) {
      release_after(seq);  // blocks taken for positions past seq_len go back
      return resource_exhausted("KV cache full: sequence " + std::to_string(seq) + " needs " +
                                std::to_string(blocks_needed(seq, end)) + " more blocks of " + std::to_string(kBlock) +
                                " positions and none of the " + std::to_string(n_blocks_) +
                                " is free; use a larger cache (--cache-mb) or fewer parallel requests");
    }
    if (i < (int64_t)t.size()) {  // shared: copy the rows this sequence holds, then let go
      const int32_t old = t[(size_t)i];
      copy_block(old, nb, std::min(kBlock, len_[seq] - i * kBlock));
      --refs_[(size_t)old];
      t[(size_t)i] = nb;
    } else {
      t.push_back(nb);
    }
  }
  return Status::Ok();
}

void KvCache::keep_window(int seq, int64_t n) {
  // Ring layers hold positions [len - ring, len); continuing at n needs [n - window + 1, n).
  if (ring_ > 0 && n > 0 && n - window_ + 1 < len_[seq] - ring_) n = 0;
  len_[seq] = n;
}

void KvCache::truncate(int seq, int64_t n) {
  MODU_CHECK(seq >= 0 && seq < n_seq_ && n >= 0);
  if (n < len_[seq]) keep_window(seq, n);
  release_after(seq);
}

void KvCache::copy_prefix(int src, int dst, int64_t n) {
  MODU_CHECK(src >= 0 && src < n_seq_ && dst >= 0 && dst < n_seq_ && n <= len_[src]);
  if (src == dst) return;
  len_[dst] = 0;
  release_after(dst);
  for (int64_t l = 0; l < n_layer_; ++l) {  // a ring is copied whole
    if (!ring_layer(l)) continue;
    std::memcpy(k_row(l, dst, 0), k_row(l, src, 0), (size_t)rows_[l] * row_bytes_);
    std::memcpy(v_row(l, dst, 0), v_row(l, src, 0), (size_t)rows_[l] * row_bytes_);
  }
  const int64_t whole = n / kBlock;
  for (int64_t i = 0; i < whole; ++i) {
    const int32_t b = table_[src][(size_t)i];
    ++refs_[(size_t)b];
    table_[dst].push_back(b);
  }
  int64_t kept = whole * kBlock;
  if (n > kept) {
    if (const int32_t nb = take_block(); nb >= 0) {
      copy_block(table_[src][(size_t)whole], nb, n - kept);
      table_[dst].push_back(nb);
      kept = n;
    }
  }
  len_[dst] = len_[src];
  keep_window(dst, kept);
  release_after(dst);
}

}  // namespace modu
