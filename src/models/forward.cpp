// The shared decoder forward pass: every Llama-like architecture runs through this one layer,
// configured by ModelConfig flags (biases, QK-norm, rope type and scaling, GQA).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "modu/kernels/dispatch.h"
#include "modu/models/model.h"
#include "activations.h"
#include "moe.h"
#include "ops.h"

namespace modu {

namespace {

Status validate_batch(const std::vector<BatchToken>& batch, const ModelConfig& c, const KvCache& kv,
                      std::vector<int64_t>& new_len) {
  if (batch.empty()) return invalid_argument("forward: empty batch");
  new_len.assign(kv.n_seq(), -1);
  for (size_t i = 0; i < batch.size(); ++i) {
    const BatchToken& t = batch[i];
    if (t.embd == nullptr && (t.token < 0 || t.token >= c.n_vocab))
      return invalid_argument("forward: token id " + std::to_string(t.token) + " at batch index " +
                              std::to_string(i) + " is outside the vocabulary [0, " + std::to_string(c.n_vocab) + ")");
    if (t.seq < 0 || t.seq >= kv.n_seq())
      return invalid_argument("forward: sequence id " + std::to_string(t.seq) + " outside [0, " +
                              std::to_string(kv.n_seq()) + ")");
    int64_t expected = new_len[t.seq] < 0 ? kv.seq_len(t.seq) : new_len[t.seq];
    if (t.pos != expected)
      return invalid_argument("forward: sequence " + std::to_string(t.seq) + " expects position " +
                              std::to_string(expected) + " next, got " + std::to_string(t.pos));
    if (t.pos >= kv.n_ctx())
      return out_of_range("forward: position " + std::to_string(t.pos) + " exceeds the context size " +
                          std::to_string(kv.n_ctx()) + "; use a larger context or a shorter prompt");
    new_len[t.seq] = t.pos + 1;
  }
  for (const BatchToken& t : batch)
    if (t.attn_end > t.pos + 1 && t.attn_end > new_len[t.seq])
      return invalid_argument("forward: a bidirectional span of sequence " + std::to_string(t.seq) + " ends at " +
                              std::to_string(t.attn_end) + " but the batch only reaches " +
                              std::to_string(new_len[t.seq]) + "; feed the whole span in one batch");
  return Status::Ok();
}

// Writes one token's K or V row [n_kv * head_dim] into the cache (F16 through the dispatched
// conversion, fp32_to_fp16's bytes).
void store_row(uint8_t* dst, const float* src, int64_t n, KvType type) {
  if (type == KvType::kF32) {
    std::memcpy(dst, src, (size_t)n * 4);
  } else {
    kernels().quantize_row[(int)(type == KvType::kQ8_0 ? DType::Q8_0 : DType::F16)](src, dst, n);
  }
}

}  // namespace

void place_in_spans(BatchToken& t, const std::vector<EmbdSpan>& spans, int64_t n_embd) {
  int64_t shift = 0;  // M-RoPE: positions skipped by the images before t
  for (const EmbdSpan& sp : spans) {
    if (t.pos < sp.begin) break;
    if (t.pos < sp.begin + sp.n) {
      t.embd = sp.rows + (t.pos - sp.begin) * n_embd;
      t.attn_end = sp.bidirectional ? sp.begin + sp.n : 0;
      if (sp.mrope && sp.grid_w > 0) {
        const int64_t j = t.pos - sp.begin, t0 = sp.begin + shift;
        t.rope_t = t0;
        t.rope_h = t0 + j / sp.grid_w;
        t.rope_w = t0 + j % sp.grid_w;
      }
      return;
    }
    if (sp.mrope && sp.grid_w > 0) shift += std::max(sp.grid_w, sp.grid_h) - sp.n;
  }
  if (shift != 0) t.rope_t = t.rope_h = t.rope_w = t.pos + shift;
}

Status Model::forward(const std::vector<BatchToken>& batch, KvCache& kv, ThreadPool& pool,
                      std::vector<float>& logits) const {
  return run(batch, kv, pool, logits, false);
}

Status Model::forward_hidden(const std::vector<BatchToken>& batch, KvCache& kv, ThreadPool& pool,
                             std::vector<float>& hidden) const {
  return run(batch, kv, pool, hidden, true);
}

Status Model::run(const std::vector<BatchToken>& batch, KvCache& kv, ThreadPool& pool, std::vector<float>& out,
                  bool want_hidden) const {
  const ModelConfig& c = cfg_;
  std::vector<int64_t> new_len;
  MODU_RETURN_IF_ERROR(validate_batch(batch, c, kv, new_len));
  for (int s = 0; s < kv.n_seq(); ++s)  // the blocks this batch writes into (paged cache)
    if (new_len[s] >= 0) MODU_RETURN_IF_ERROR(kv.prepare(s, new_len[s]));
  if (kv.has_ring() && (int64_t)batch.size() > KvCache::kSwaSlack) {
    // Sliding-window rings hold window + kSwaSlack positions: feed the batch in parts that fit.
    std::vector<float> part;
    out.clear();
    for (size_t b = 0; b < batch.size(); b += KvCache::kSwaSlack) {
      const std::vector<BatchToken> sub(batch.begin() + b, batch.begin() + std::min(batch.size(), b + KvCache::kSwaSlack));
      MODU_RETURN_IF_ERROR(run(sub, kv, pool, part, want_hidden));
      out.insert(out.end(), part.begin(), part.end());
    }
    return Status::Ok();
  }
  const int64_t n = (int64_t)batch.size();
  const int64_t d = c.n_embd, hd = c.head_dim;
  const int64_t q_dim = c.n_head * hd, kv_dim = c.n_head_kv * hd;
  const KvType kvt = kv.type();
  // Phi-3 LongRoPE: long factors once the cache exceeds the original context; cos/sin x attn_factor.
  const bool long_rope = !rope_freqs_long_.empty() && kv.n_ctx() > c.rope_orig_ctx;
  ops::RopeParams rp_global = ops::make_rope_params(c, long_rope ? rope_freqs_long_ : rope_freqs_);
  if (!w_.rope_factors_short.empty() && !rp_global.yarn && c.yarn_attn_factor != 1.0f) {
    rp_global.yarn = true;  // the kernel's magnitude path, with no interpolation
    rp_global.yarn_freq_scale = 1.0f;
    rp_global.yarn_ext_factor = 0.0f;
    rp_global.yarn_mscale = c.yarn_attn_factor;
  }
  const ops::RopeParams rp_swa = ops::make_rope_params(c, rope_freqs_swa_.empty() ? rope_freqs_ : rope_freqs_swa_);
  // cos and sin of every token's rotation, once per pass instead of once per layer:
  // [n, n_rot / 2] each, for the global layers and (when there are any) the sliding-window ones.
  const int64_t half_rot = c.n_rot / 2;
  bool any_swa = false;
  for (int64_t il = 0; il < c.n_layer; ++il) any_swa = any_swa || c.is_swa(il);
  std::vector<float> rope_g(2 * n * half_rot), rope_s(any_swa ? 2 * n * half_rot : 0);  // [cs | sn]
  // M-RoPE: each pair turns with the t, row or column position of its section.
  // Pairs past the t, h and w sections (the 4th section and any rest) turn with t.
  std::vector<int> section(c.arch.mrope ? half_rot : 0, 0);
  for (int64_t k = 0, start = 0; c.arch.mrope && k < 3; start += c.rope_sections[k++])
    for (int64_t i = start; i < std::min(start + c.rope_sections[k], half_rot); ++i) section[i] = (int)k;
  std::vector<float> mc(c.arch.mrope ? 2 * half_rot : 0), ms(c.arch.mrope ? 2 * half_rot : 0);
  for (int64_t t = 0; t < n; ++t) {
    const BatchToken& b = batch[t];
    const int64_t rpos = b.rope_t >= 0 ? b.rope_t : b.pos;
    float* cs = rope_g.data() + t * half_rot;
    float* sn = rope_g.data() + (n + t) * half_rot;
    ops::rope_angles(rpos, rp_global, cs, sn);
    if (c.arch.mrope && b.rope_t >= 0 && (b.rope_h != b.rope_t || b.rope_w != b.rope_t)) {
      ops::rope_angles(b.rope_h, rp_global, mc.data(), ms.data());
      ops::rope_angles(b.rope_w, rp_global, mc.data() + half_rot, ms.data() + half_rot);
      for (int64_t i = 0; i < half_rot; ++i) {
        if (section[i] == 0) continue;
        const int64_t o = (section[i] - 1) * half_rot + i;
        cs[i] = mc[o];
        sn[i] = ms[o];
      }
    }
    if (any_swa)
      ops::rope_angles(rpos, rp_swa, rope_s.data() + t * half_rot, rope_s.data() + (n + t) * half_rot);
  }
  const float kq_scale = c.attn_scale > 0 ? c.attn_scale : 1.0f / std::sqrt((float)hd);

  std::vector<float> x(n * d), h(n * d), q(n * q_dim), k(n * kv_dim), v(n * kv_dim), att(n * q_dim);
  std::vector<float> gate(n * c.n_ff), up(n * std::max(c.n_ff, c.n_embd));  // up also holds the MoE output
  // x: [n, d_model] token embeddings
  // (given embeddings, e.g. an image's, are used as they are)
  for (int64_t t = 0; t < n; ++t) {
    float* xt = x.data() + t * d;
    if (batch[t].embd != nullptr) {
      std::copy_n(batch[t].embd, d, xt);
      continue;
    }
    ops::get_row(w_.tok_embd, batch[t].token, xt);
    if (c.embd_scale != 1.0f)
      for (int64_t i = 0; i < d; ++i) xt[i] *= c.embd_scale;
  }

  // The matrices each decode matmul is followed by, so threads can prefetch them while waiting
  // (ops::matmul's `next`): a layer's first matrices, then the output after the last layer.
  auto attn_in = [&](int64_t il) -> std::vector<const Weight*> {
    if (il == c.n_layer) return {&w_.output};
    const LayerWeights& L = w_.layers[il];
    if (L.wqkv) return {&L.wqkv};
    return {&L.wq, &L.wk, &L.wv};
  };
  const bool swiglu = c.arch.ffn_act == FfnAct::kSilu;  // gate and up through ops::gate_up_swiglu
  auto ffn_in = [&](const LayerWeights& L) -> std::vector<const Weight*> {
    if (c.n_expert > 0) return {};
    if (L.w_gate) return swiglu ? ops::gate_up_next(L.w_gate, L.w_up) : std::vector<const Weight*>{&L.w_gate, &L.w_up};
    return {&L.w_up};
  };

  // Named LoRA adapters: which each token uses (null when no named adapter is attached).
  std::vector<uint32_t> lora_rows;
  if (!lora_names_.empty())
    for (const BatchToken& t : batch) lora_rows.push_back(t.lora);
  ops::LoraRowsScope lora_scope(lora_rows.empty() ? nullptr : lora_rows.data());

  for (int64_t il = 0; il < c.n_layer; ++il) {
    const LayerWeights& L = w_.layers[il];
    // --- attention ---
    if (L.attn_norm) {
      ops::rms_norm(x.data(), (const float*)L.attn_norm.data, n, d, c.rms_eps, h.data());
    } else {  // EXAONE 4: no pre-norm
      std::copy(x.begin(), x.end(), h.begin());
    }
    if (L.wqkv) {  // fused: one matmul, then split each row into Q, K, V
      std::vector<float> qkv(n * (q_dim + 2 * kv_dim));  // [n, q_dim + 2 kv_dim]
      ops::matmul(L.wqkv, h.data(), n, qkv.data(), pool, {&L.wo});
      for (int64_t t = 0; t < n; ++t) {
        const float* r = qkv.data() + t * (q_dim + 2 * kv_dim);
        std::copy(r, r + q_dim, q.begin() + t * q_dim);
        std::copy(r + q_dim, r + q_dim + kv_dim, k.begin() + t * kv_dim);
        std::copy(r + q_dim + kv_dim, r + q_dim + 2 * kv_dim, v.begin() + t * kv_dim);
      }
    } else {
      // q: [n, n_head * hd], k and v: [n, n_kv * hd]
      ops::matmul_many({&L.wq, &L.wk, &L.wv}, h.data(), n, {q.data(), k.data(), v.data()}, pool, {&L.wo});
    }
    if (L.bq) ops::add_bias(q.data(), (const float*)L.bq.data, n, q_dim);
    if (L.bk) ops::add_bias(k.data(), (const float*)L.bk.data, n, kv_dim);
    if (L.bv) ops::add_bias(v.data(), (const float*)L.bv.data, n, kv_dim);
    if (L.q_norm) ops::rms_norm(q.data(), (const float*)L.q_norm.data, n * c.n_head, hd, c.rms_eps, q.data());
    if (L.k_norm) ops::rms_norm(k.data(), (const float*)L.k_norm.data, n * c.n_head_kv, hd, c.rms_eps, k.data());
    const bool swa = c.is_swa(il);
    const ops::RopeParams& rp = swa ? rp_swa : rp_global;
    const float* rope_tab = swa ? rope_s.data() : rope_g.data();
    const bool rope_layer = c.uses_rope(il);
    for (int64_t t = 0; t < n; ++t) {
      if (rope_layer) {
        const float* cs = rope_tab + t * half_rot;
        const float* sn = rope_tab + (n + t) * half_rot;
        ops::rope_apply(q.data() + t * q_dim, c.n_head, hd, cs, sn, rp);
        ops::rope_apply(k.data() + t * kv_dim, c.n_head_kv, hd, cs, sn, rp);
      }
      store_row(kv.k_row(il, batch[t].seq, batch[t].pos), k.data() + t * kv_dim, kv_dim, kvt);
      store_row(kv.v_row(il, batch[t].seq, batch[t].pos), v.data() + t * kv_dim, kv_dim, kvt);
    }
    // Causal attention per (token, KV head) through the dispatched kernel (K/V rows read once per group).
    ops::attention(q.data(), n, batch.data(), kv, il, c.n_head, c.n_head_kv, hd, kq_scale, att.data(), pool,
                   swa ? c.n_swa : 0, c.attn_softcap);
    ops::matmul(L.wo, att.data(), n, h.data(), pool, ffn_in(L));  // [n, d_model]
    if (L.post_attn_norm) ops::rms_norm(h.data(), (const float*)L.post_attn_norm.data, n, d, c.rms_eps, h.data());
    for (int64_t i = 0; i < n * d; ++i) x[i] += c.residual_scale * h[i];

    // --- feed-forward (SwiGLU) ---
    if (L.ffn_norm) {
      ops::rms_norm(x.data(), (const float*)L.ffn_norm.data, n, d, c.rms_eps, h.data());
    } else {
      std::copy(x.begin(), x.end(), h.begin());
    }
    if (c.n_expert > 0) {
      moe::ffn(L, c, h.data(), n, up.data(), pool);  // [n, d_model]
      std::copy(up.begin(), up.begin() + n * d, h.begin());
    } else {
      if (L.w_gate && swiglu) {  // [n, n_ff]: SiLU(gate) * up, in gate
        ops::gate_up_swiglu(L.w_gate, L.w_up, h.data(), n, gate.data(), up.data(), pool, {&L.w_down});
      } else {
        if (L.w_gate) {
          // [n, n_ff] x2
          ops::matmul_many({&L.w_gate, &L.w_up}, h.data(), n, {gate.data(), up.data()}, pool, {&L.w_down});
        } else {  // fused gate/up (Phi-3): [n, 2 n_ff], gate half first
          std::vector<float> gu(n * 2 * c.n_ff);
          ops::matmul(L.w_up, h.data(), n, gu.data(), pool, {&L.w_down});
          for (int64_t t = 0; t < n; ++t) {
            std::copy(gu.begin() + t * 2 * c.n_ff, gu.begin() + t * 2 * c.n_ff + c.n_ff, gate.begin() + t * c.n_ff);
            std::copy(gu.begin() + t * 2 * c.n_ff + c.n_ff, gu.begin() + (t + 1) * 2 * c.n_ff, up.begin() + t * c.n_ff);
          }
        }
        if (c.arch.ffn_act == FfnAct::kGeluTanh) {
          act::geglu(gate.data(), up.data(), n * c.n_ff);
        } else {
          ops::swiglu(gate.data(), up.data(), n * c.n_ff, pool);
        }
      }
      ops::matmul(L.w_down, gate.data(), n, h.data(), pool, attn_in(il + 1));  // [n, d_model]
    }
    if (L.post_ffw_norm) ops::rms_norm(h.data(), (const float*)L.post_ffw_norm.data, n, d, c.rms_eps, h.data());
    for (int64_t i = 0; i < n * d; ++i) x[i] += c.residual_scale * h[i];
  }

  for (int s = 0; s < kv.n_seq(); ++s)
    if (new_len[s] >= 0) kv.set_len(s, new_len[s]);

  // Only the wanted rows go through the final norm and the (large) output projection.
  std::vector<float> sel;
  std::vector<uint32_t> sel_lora;  // the output rows' adapters
  int64_t n_out = 0;
  for (int64_t t = 0; t < n; ++t) {
    if (!batch[t].want_logits) continue;
    sel.insert(sel.end(), x.begin() + t * d, x.begin() + (t + 1) * d);
    sel_lora.push_back(batch[t].lora);
    ++n_out;
  }
  if (n_out == 0) {
    out.clear();
    return Status::Ok();
  }
  ops::rms_norm(sel.data(), (const float*)w_.output_norm.data, n_out, d, c.rms_eps, sel.data());
  if (want_hidden) {
    out = std::move(sel);
    return Status::Ok();
  }
  out.resize(n_out * c.n_vocab);
  // After the logits comes the next token's first layer.
  ops::LoraRowsScope out_scope(lora_rows.empty() ? nullptr : sel_lora.data());
  ops::matmul(w_.output, sel.data(), n_out, out.data(), pool, attn_in(0));  // [n_out, n_vocab]
  if (c.logit_scale != 1.0f)
    for (float& l : out) l /= c.logit_scale;
  if (c.final_softcap > 0) act::softcap(out.data(), (int64_t)out.size(), c.final_softcap);
  return Status::Ok();
}

}  // namespace modu
