// Decoder tensor operations; the heavy lifting (dot products) goes through the dispatch table.
#include "ops.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "modu/core/fp16.h"
#include "modu/kernels/dispatch.h"
#include "modu/kernels/gemm.h"
#include "modu/models/model.h"

namespace modu {

namespace {
thread_local MatmulObserver* t_observer = nullptr;
}  // namespace

MatmulObserver* set_matmul_observer(MatmulObserver* obs) {
  MatmulObserver* old = t_observer;
  t_observer = obs;
  return old;
}

}  // namespace modu

namespace modu::ops {

namespace {
inline void observe(const Weight& w, const float* x, int64_t n) {
  if (t_observer != nullptr) t_observer->on_matmul(w, x, n);
}

// Below this many tokens the packed GEMM does not pay for its packing pass (each panel is packed
// once and reused n times): decode and tiny batches use the vec_dot matrix x vector path, which
// streams the mmapped rows exactly once.
constexpr int64_t kGemmMinTokens = 4;
// Work unit of the GEMM: 2 panels (32 rows), the AVX-512 microkernel's tile height.
constexpr int64_t kGemmUnitPanels = 2;

// A 64-byte aligned per-thread scratch buffer that only grows.
uint8_t* thread_scratch(size_t bytes) {
  thread_local std::vector<uint8_t> buf;
  if (buf.size() < bytes + 64) buf.resize(bytes + 64);
  return reinterpret_cast<uint8_t*>(((uintptr_t)buf.data() + 63) & ~(uintptr_t)63);
}

// Prefill path: activations quantized once per token (Q8_0 blocks, split into GemmAct arrays),
// then each thread packs its 32-row units of W into an L2-resident panel buffer and multiplies
// them with every token of the batch.
// g16: `pack` makes 16-scale panels (gemm.h kGemm16BlockBytes), multiplied by kt.gemm16.
void matmul_gemm(const Weight& w, const float* x, int64_t n, float* y, ThreadPool& pool, GemmPackFn pack, bool g16) {
  const KernelTable& kt = kernels();
  const int64_t k = w.cols, nb = k / 32;
  const size_t q8_row = dtype_row_bytes(DType::Q8_0, k);
  thread_local std::vector<int8_t> aq;
  thread_local std::vector<float> ad, as, as16;
  aq.resize((size_t)(n * k));
  ad.resize((size_t)(n * nb));
  as.resize((size_t)(n * nb));
  if (g16) as16.resize((size_t)(n * nb * 2));
  int8_t* aqp = aq.data();
  float* adp = ad.data();
  float* asp = as.data();
  float* as16p = g16 ? as16.data() : nullptr;
  QuantizeFn q = kt.quantize_row[(int)DType::Q8_0];
  pool.parallel_for(n, [&](int64_t b, int64_t e) {
    uint8_t* tmp = thread_scratch(q8_row);
    for (int64_t t = b; t < e; ++t) {
      q(x + t * k, tmp, k);
      if (g16)
        gemm_act_from_q8_0(tmp, 1, k, aqp + t * k, adp + t * nb, asp + t * nb, as16p + t * nb * 2);
      else
        gemm_act_from_q8_0(tmp, 1, k, aqp + t * k, adp + t * nb, asp + t * nb);
    }
  });
  const GemmAct act{aqp, adp, asp, k, as16p};
  const GemmFn gemm = g16 ? kt.gemm16 : kt.gemm;
  const int64_t rows = w.rows;
  const int64_t n_panels = (rows + kGemmPanelRows - 1) / kGemmPanelRows;
  const int64_t n_units = (n_panels + kGemmUnitPanels - 1) / kGemmUnitPanels;
  const size_t pbytes = g16 ? gemm16_panel_bytes(k) : gemm_panel_bytes(k);
  pool.parallel_for(n_units, [&](int64_t u0, int64_t u1) {
    uint8_t* buf = thread_scratch(pbytes * kGemmUnitPanels);
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t p0 = u * kGemmUnitPanels, p1 = std::min(n_panels, p0 + kGemmUnitPanels);
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t r0 = p * kGemmPanelRows;
        pack(w.data + (size_t)r0 * w.row_bytes, w.row_bytes, std::min(kGemmPanelRows, rows - r0), k,
             buf + (p - p0) * pbytes);
      }
      const int64_t r0 = p0 * kGemmPanelRows;
      gemm(buf, p1 - p0, rows - r0, act, n, y + r0, rows);
    }
  });
}
// Float weights (F32/F16/BF16) in prefill: each thread converts kFloatRows rows to F32 once (F16
// and BF16; F32 rows are used in place) and multiplies the block with the batch kFloatTok tokens
// at a time through the dispatched tile kernel (gemm.h GemmF32Fn: 3 rows x 3 tokens of register
// accumulators). The per-token vec_dot path converted every weight element again for every token
// (a SigLIP encoder's F16 matrices ran at ~1/3 of the Q8_0 rate). 24 rows of a 4304-wide matrix
// are 413 KB of F32, an L2's worth; 32 tokens of activations stream past them.
constexpr int64_t kFloatRows = 24, kFloatTok = 32;
void matmul_float(const Weight& w, const float* x, int64_t n, float* y, ThreadPool& pool) {
  const KernelTable& kt = kernels();
  const int64_t k = w.cols, rows = w.rows;
  const DTypeTraits* tr = dtype_traits(w.dtype);
  pool.parallel_for(rows, [&](int64_t r0, int64_t r1) {
    for (int64_t rb = r0; rb < r1; rb += kFloatRows) {
      const int64_t nr = std::min(kFloatRows, r1 - rb);
      const float* wf = reinterpret_cast<const float*>(w.data + (size_t)rb * w.row_bytes);
      size_t ldw = w.row_bytes / sizeof(float);
      if (w.dtype != DType::F32) {
        float* buf = reinterpret_cast<float*>(thread_scratch((size_t)(nr * k) * sizeof(float)));
        for (int64_t r = 0; r < nr; ++r) tr->dequantize(w.data + (size_t)(rb + r) * w.row_bytes, buf + r * k, k);
        wf = buf;
        ldw = (size_t)k;
      }
      for (int64_t t0 = 0; t0 < n; t0 += kFloatTok)
        kt.gemm_f32(wf, ldw, nr, x + t0 * k, (size_t)k, std::min(kFloatTok, n - t0), k, y + t0 * rows + rb, (size_t)rows);
    }
  }, kFloatRows);
}

// Rows per work item: 16 rows of a 4096-wide Q4_0 matrix is ~36 KiB, which stays in L2 while
// every token of a prefill batch streams past it.
constexpr int64_t kRowBlock = 16;

thread_local bool t_decode_kernels = false;

// MODU_GEMV=0 forces the per-row vec_dot loop (A/B comparisons of the decode kernels).
bool rows_kernels_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("MODU_GEMV");
    return !(e && std::strcmp(e, "0") == 0);
  }();
  return on;
}

// MODU_GEMM16=0 sends Q2_K / Q3_K / Q6_K prefill back to the rows kernels (A/B of the 16-scale GEMM).
bool gemm16_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("MODU_GEMM16");
    return !(e && std::strcmp(e, "0") == 0);
  }();
  return on;
}

// Decode (one token) over several matrices in one parallel pass: possible when they share the
// input width and activation format and each has a multi-row kernel.
bool rows_fused(const std::vector<const Weight*>& ws, int64_t n) {
  const KernelTable& kt = kernels();
  const DType act_type = dtype_traits(ws[0]->dtype)->vec_dot_type;
  bool ok = n == 1 && act_type != DType::F32 && rows_kernels_enabled();
  for (const Weight* w : ws)
    ok = ok && w->cols == ws[0]->cols && kt.vec_dot_rows[(int)w->dtype] != nullptr &&
         dtype_traits(w->dtype)->vec_dot_type == act_type;
  return ok;
}

// w's activation format of the single decode row x, in the calling thread's reused buffer.
const uint8_t* decode_activation(const Weight& w, const float* x) {
  const DType act_type = dtype_traits(w.dtype)->vec_dot_type;
  thread_local std::vector<uint8_t> qbuf;
  qbuf.resize(dtype_row_bytes(act_type, w.cols));
  kernels().quantize_row[(int)act_type](x, qbuf.data(), w.cols);
  return qbuf.data();
}

// gate_up_swiglu's paired pass: rows_fused and one row count.
bool gate_up_paired(const Weight& w_gate, const Weight& w_up, int64_t n) {
  return w_gate.rows == w_up.rows && rows_fused({&w_gate, &w_up}, n);
}
}  // namespace

// Decode streams each matrix from the start of every thread's share. Between two matmuls come
// serial steps (norm, activation quantization, rope, residual) and the barrier, during which the
// memory bus idles; a thread that is only waiting then pulls the head of its next share into L2.
// The share starts follow parallel_for's split, over the rows of `next` taken in order as
// matmul_many does (gate_up_swiglu's paired pass: gate_up_next). Up to kNextPrefetchBytes per
// thread: more than one core streams in a serial step (a few us), and far below L2.
static void hint_next(const std::vector<const Weight*>& next, ThreadPool& pool) {
  constexpr size_t kNextPrefetchBytes = 96 << 10;
  if (next.empty() || pool.size() == 1) return;
  int64_t total = 0;
  for (const Weight* w : next) total += w->rows;
  for (int t = 0; t < pool.size(); ++t) {
    int64_t r = ThreadPool::share_begin(total, kRowBlock, t, pool.size());
    for (const Weight* w : next) {
      if (r < w->rows) {
        pool.prefetch_after_next_run(t, w->data + (size_t)r * w->row_bytes,
                                     std::min(kNextPrefetchBytes, (size_t)(w->rows - r) * w->row_bytes));
        break;
      }
      r -= w->rows;
    }
  }
}

namespace {
void matmul_base(const Weight& w, const float* x, int64_t n, float* y, ThreadPool& pool,
                 const std::vector<const Weight*>& next);
}  // namespace

void matmul(const Weight& w, const float* x, int64_t n, float* y, ThreadPool& pool,
            const std::vector<const Weight*>& next) {
  observe(w, x, n);
  matmul_base(w, x, n, y, pool, next);
  if (w.lora) apply_lora(w, x, n, y, pool);
}

namespace {
void matmul_base(const Weight& w, const float* x, int64_t n, float* y, ThreadPool& pool,
                 const std::vector<const Weight*>& next) {
  const KernelTable& kt = kernels();
  const DTypeTraits* tr = dtype_traits(w.dtype);
  MODU_CHECK(tr != nullptr);
  const DType act_type = tr->vec_dot_type;
  VecDotFn dot = kt.vec_dot[(int)w.dtype];
  MODU_CHECK_MSG(dot != nullptr, std::string("no vec_dot for weight dtype ") + tr->name);
  const bool gemm_ok = n >= kGemmMinTokens && !DecodeKernelsScope::active();
  if (GemmPackFn pack = kt.gemm_pack[(int)w.dtype]; pack && kt.gemm && gemm_ok) {
    matmul_gemm(w, x, n, y, pool, pack, false);
    return;
  }
  if (GemmPackFn pack = kt.gemm16_pack[(int)w.dtype]; pack && kt.gemm16 && gemm_ok && gemm16_enabled()) {
    matmul_gemm(w, x, n, y, pool, pack, true);
    return;
  }
  if ((w.dtype == DType::F32 || w.dtype == DType::F16 || w.dtype == DType::BF16) && kt.gemm_f32 && gemm_ok) {
    matmul_float(w, x, n, y, pool);
    return;
  }

  // Convert activations once per token.
  const void* act = x;
  size_t act_row_bytes = (size_t)w.cols * sizeof(float);
  thread_local std::vector<uint8_t> qbuf;  // reused: decode calls this ~5 times a layer
  if (act_type != DType::F32) {
    act_row_bytes = dtype_row_bytes(act_type, w.cols);
    qbuf.resize(act_row_bytes * n);
    QuantizeFn q = kt.quantize_row[(int)act_type];
    MODU_CHECK(q != nullptr);
    uint8_t* qb = qbuf.data();  // the caller's buffer (a worker naming qbuf would get its own)
    if (n == 1) {
      q(x, qb, w.cols);
    } else {
      pool.parallel_for(n, [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t) q(x + t * w.cols, qb + t * act_row_bytes, w.cols);
      });
    }
    act = qbuf.data();
  }
  const uint8_t* a = static_cast<const uint8_t*>(act);
  const int64_t rows = w.rows;
  if (VecDotRowsFn dot_rows = rows_kernels_enabled() ? kt.vec_dot_rows[(int)w.dtype] : nullptr) {
    // Decode (n < kGemmMinTokens): the multi-row kernel streams each weight row once per token
    // while sharing activation work across its row tile. With 2-3 tokens, rows go in blocks of
    // kRowsPerCall (72 KiB of a 2048-wide Q4_0 matrix) so the later tokens hit L2.
    constexpr int64_t kRowsPerCall = 64;
    if (n == 1) hint_next(next, pool);
    pool.parallel_for(rows, [&](int64_t r0, int64_t r1) {
      const int64_t step = n == 1 ? r1 - r0 : kRowsPerCall;
      for (int64_t rb = r0; rb < r1; rb += step) {
        const int64_t re = std::min(r1, rb + step);
        for (int64_t t = 0; t < n; ++t)
          dot_rows(w.cols, w.data + (size_t)rb * w.row_bytes, w.row_bytes, re - rb, a + (size_t)t * act_row_bytes,
                   y + t * rows + rb);
      }
    }, kRowBlock);
    return;
  }
  // Tokens are taken in tiles so that a block of rows stays hot across all of them.
  constexpr int64_t kTokTile = 64;
  pool.parallel_for(rows, [&](int64_t r0, int64_t r1) {
    for (int64_t rb = r0; rb < r1; rb += kRowBlock) {
      const int64_t re = std::min(r1, rb + kRowBlock);
      for (int64_t t0 = 0; t0 < n; t0 += kTokTile) {
        const int64_t t1 = std::min(n, t0 + kTokTile);
        for (int64_t r = rb; r < re; ++r) {
          const uint8_t* wr = w.data + (size_t)r * w.row_bytes;
          for (int64_t t = t0; t < t1; ++t) y[t * rows + r] = dot(w.cols, wr, a + (size_t)t * act_row_bytes);
        }
      }
    }
  }, kRowBlock);
}

}  // namespace

void matmul_many(const std::vector<const Weight*>& ws, const float* x, int64_t n, const std::vector<float*>& ys,
                 ThreadPool& pool, const std::vector<const Weight*>& next) {
  MODU_CHECK(ws.size() == ys.size() && !ws.empty());
  if (!rows_fused(ws, n)) {
    for (size_t i = 0; i < ws.size(); ++i)
      matmul(*ws[i], x, n, ys[i], pool, i + 1 < ws.size() ? std::vector<const Weight*>{ws[i + 1]} : next);
    return;
  }
  for (const Weight* w : ws) observe(*w, x, n);
  const KernelTable& kt = kernels();
  const int64_t cols = ws[0]->cols;
  std::vector<int64_t> first(ws.size() + 1, 0);  // matrix i owns rows [first[i], first[i + 1])
  for (size_t i = 0; i < ws.size(); ++i) first[i + 1] = first[i] + ws[i]->rows;
  const uint8_t* a = decode_activation(*ws[0], x);
  hint_next(next, pool);
  pool.parallel_for(first.back(), [&](int64_t r0, int64_t r1) {
    for (size_t i = 0; i < ws.size(); ++i) {
      const int64_t b = std::max(r0, first[i]), e = std::min(r1, first[i + 1]);
      if (b >= e) continue;
      const Weight& w = *ws[i];
      kt.vec_dot_rows[(int)w.dtype](cols, w.data + (size_t)(b - first[i]) * w.row_bytes, w.row_bytes, e - b, a,
                                    ys[i] + (b - first[i]));
    }
  }, kRowBlock);
  for (size_t i = 0; i < ws.size(); ++i)
    if (ws[i]->lora) apply_lora(*ws[i], x, n, ys[i], pool);
}

std::vector<const Weight*> gate_up_next(const Weight& w_gate, const Weight& w_up) {
  // Paired, thread t starts at row share_begin(n_ff) of the gate matrix; otherwise matmul_many
  // splits the two matrices' rows taken in order.
  if (gate_up_paired(w_gate, w_up, 1)) return {&w_gate};
  return {&w_gate, &w_up};
}

// Decode: rows [r0, r1) of both matrices per claim (two sequential streams, as a row tile already
// reads), then SiLU(gate) * up over those rows, in L1. The separate pass read 2 x n_ff floats of
// which the other threads had written half (~5 us a layer on bench-1b, on the calling thread alone).
void gate_up_swiglu(const Weight& w_gate, const Weight& w_up, const float* x, int64_t n, float* gate, float* up,
                    ThreadPool& pool, const std::vector<const Weight*>& next) {
  if (!gate_up_paired(w_gate, w_up, n) || w_gate.lora || w_up.lora) {  // LoRA terms come before the activation
    matmul_many({&w_gate, &w_up}, x, n, {gate, up}, pool, next);
    swiglu(gate, up, n * w_gate.rows, pool);
    return;
  }
  observe(w_gate, x, n);
  observe(w_up, x, n);
  const KernelTable& kt = kernels();
  const int64_t cols = w_gate.cols;
  const uint8_t* a = decode_activation(w_gate, x);
  const auto dot_g = kt.vec_dot_rows[(int)w_gate.dtype], dot_u = kt.vec_dot_rows[(int)w_up.dtype];
  const auto act = kt.swiglu;
  hint_next(next, pool);
  pool.parallel_for(w_gate.rows, [&](int64_t r0, int64_t r1) {
    dot_g(cols, w_gate.data + (size_t)r0 * w_gate.row_bytes, w_gate.row_bytes, r1 - r0, a, gate + r0);
    dot_u(cols, w_up.data + (size_t)r0 * w_up.row_bytes, w_up.row_bytes, r1 - r0, a, up + r0);
    act(gate + r0, up + r0, r1 - r0);
  }, kRowBlock);
}

void rms_norm(const float* x, const float* weight, int64_t n, int64_t d, float eps, float* out) {
  const auto fn = kernels().rms_norm;
  for (int64_t t = 0; t < n; ++t) fn(x + t * d, weight, d, eps, out + t * d);
}

void add_bias(float* x, const float* bias, int64_t n, int64_t d) {
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < d; ++i) x[t * d + i] += bias[i];
}

RopeParams make_rope_params(const ModelConfig& cfg, const std::vector<float>& freqs) {
  RopeParams p{};
  p.type = cfg.arch.rope_type;
  p.n_rot = cfg.n_rot;
  p.freqs = freqs.data();
  p.yarn = cfg.rope_scaling == RopeScaling::kYarn;
  if (p.yarn) {
    p.yarn_freq_scale = 1.0f / cfg.rope_factor;
    p.yarn_ext_factor = cfg.yarn_ext_factor;
    p.yarn_mscale = cfg.yarn_attn_factor;
    if (p.yarn_ext_factor != 0.0f) p.yarn_mscale *= 1.0f + 0.1f * std::log(1.0f / p.yarn_freq_scale);
    // Correction range: dimensions whose wavelength fits the original context are extrapolated,
    // long ones interpolated, with a linear ramp between (YaRN, Peng et al. 2023).
    auto corr_dim = [&](float beta) {
      return (float)cfg.n_rot * std::log((float)cfg.rope_orig_ctx / (beta * 2.0f * (float)M_PI)) /
             (2.0f * std::log(cfg.rope_theta));
    };
    p.yarn_low = std::max(0.0f, std::floor(corr_dim(cfg.yarn_beta_fast)));
    p.yarn_high = std::min((float)cfg.n_rot - 1, std::ceil(corr_dim(cfg.yarn_beta_slow)));
  }
  return p;
}

void rope_angles(int64_t pos, const RopeParams& p, float* cs, float* sn) {
  for (int64_t i = 0; i < p.n_rot / 2; ++i) {
    float theta = (float)pos * p.freqs[i];
    float mscale = 1.0f;
    if (p.yarn) {
      const float extrap = theta;
      const float interp = p.yarn_freq_scale * extrap;
      theta = interp;
      if (p.yarn_ext_factor != 0.0f) {
        const float y = ((float)i - p.yarn_low) / std::max(0.001f, p.yarn_high - p.yarn_low);
        const float ramp = (1.0f - std::min(1.0f, std::max(0.0f, y))) * p.yarn_ext_factor;
        theta = interp * (1 - ramp) + extrap * ramp;
      }
      mscale = p.yarn_mscale;
    }
    cs[i] = std::cos(theta) * mscale;
    sn[i] = std::sin(theta) * mscale;
  }
}

void rope_apply(float* x, int64_t n_heads, int64_t head_dim, const float* cs, const float* sn, const RopeParams& p) {
  const int64_t half = p.n_rot / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_dim;
    if (p.type == RopeType::kNorm) {  // adjacent pairs
      for (int64_t i = 0; i < half; ++i) {
        const float a = v[2 * i], b = v[2 * i + 1];
        v[2 * i] = a * cs[i] - b * sn[i];
        v[2 * i + 1] = a * sn[i] + b * cs[i];
      }
    } else {  // NeoX: the two halves of the rotated dims (contiguous, so the loop vectorizes)
      float* v1 = v + half;
      for (int64_t i = 0; i < half; ++i) {
        const float a = v[i], b = v1[i];
        v[i] = a * cs[i] - b * sn[i];
        v1[i] = a * sn[i] + b * cs[i];
      }
    }
  }
}

void get_row(const Weight& w, int64_t row, float* out) {
  const DTypeTraits* tr = dtype_traits(w.dtype);
  tr->dequantize(w.data + (size_t)row * w.row_bytes, out, w.cols);
}

// Scalar attention with soft-capped scores (F16 or F32 rows of hd elements, `stride` bytes apart);
// lse as in gemm.h AttnFn.
static void attention_softcap(const float* q, int64_t ng, const uint8_t* k, const uint8_t* v, size_t stride, int64_t n_pos,
                       int64_t hd, bool f16, float scale, float cap, float* out, float* sc, float* lse) {
  auto at = [&](const uint8_t* row, int64_t i) {
    return f16 ? fp16_to_fp32(reinterpret_cast<const uint16_t*>(row)[i]) : reinterpret_cast<const float*>(row)[i];
  };
  for (int64_t g = 0; g < ng; ++g) {
    const float* qg = q + g * hd;
    float mx = -INFINITY;
    for (int64_t p = 0; p < n_pos; ++p) {
      float dot = 0;
      for (int64_t i = 0; i < hd; ++i) dot += qg[i] * at(k + p * stride, i);
      sc[p] = cap * std::tanh(dot * scale / cap);
      mx = std::max(mx, sc[p]);
    }
    float sum = 0;
    for (int64_t p = 0; p < n_pos; ++p) sum += sc[p] = std::exp(sc[p] - mx);
    lse[g] = mx + std::log(sum);
    float* o = out + g * hd;
    std::fill(o, o + hd, 0.0f);
    for (int64_t p = 0; p < n_pos; ++p) {
      const float w = sc[p] / sum;
      for (int64_t i = 0; i < hd; ++i) o[i] += w * at(v + p * stride, i);
    }
  }
}

namespace {
// Positions per attention block. A long cache is attended in blocks: each block's rows are scored,
// softmaxed and accumulated by one kernel call, and blocks merge by their log-sum-exp (online
// softmax), so the score scratch is group x block floats at any depth (8 heads x 512 positions =
// 16 KiB, cache resident, where a 32k context needed 1 MiB per work item) and every K and V row
// is still read once. The merge costs ~3 group x hd flops per block, nothing beside 512 rows.
int64_t g_attn_block = 512;
}  // namespace

int64_t set_attention_block(int64_t positions) {
  MODU_CHECK(positions >= 1);
  const int64_t prev = g_attn_block;
  g_attn_block = positions;
  return prev;
}

namespace {

// Queries per prefill tile and the shortest prefix worth the tile path (set_prefill_tiling).
int64_t g_prefill_tile = 32, g_prefill_min_prefix = 128;

// MODU_PREFILL_TILES=0 attends every token on its own (an A/B switch for benchmarks).
bool prefill_tiles_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("MODU_PREFILL_TILES");
    return !(e && std::strcmp(e, "0") == 0);
  }();
  return on;
}

// o, lse (one head) <- the softmax-weighted union of (o, lse) and (oc, lc): online softmax.
inline void merge_lse(float* o, float* lse, const float* oc, float lc, int64_t hd) {
  const float hi = std::max(*lse, lc);
  const float a = std::exp(*lse - hi), c = std::exp(lc - hi), inv = 1.0f / (a + c);
  for (int64_t i = 0; i < hd; ++i) o[i] = (a * o[i] + c * oc[i]) * inv;
  *lse = hi + std::log(a + c);
}

// Where a layer's cache is read from: one KV head's part of each row.
struct KvView {
  KvCache& kv;
  int64_t layer;
  bool f16, q8;  // the cache's type: F16, Q8_0, else F32
  size_t head_bytes;
};

// Attention of the `group` query heads qp [group, hd] of one token over positions [first, first +
// n_pos) of sequence `seq`, in runs of at most g_attn_block contiguous cache rows merged by their
// log-sum-exp. With `accumulate`, (o, lse) already hold the attention over other positions and the
// result is merged into them; otherwise they are overwritten (lse always: a prefill tile merges it).
void attend_span(const KvView& kvv, int seq, int64_t kvh, const float* qp, int64_t group, int64_t first, int64_t n_pos,
                 int64_t hd, float scale, float softcap, bool accumulate, float* o, float* lse) {
  const KernelTable& kt = kernels();
  const int64_t blk = g_attn_block;
  float* scratch = reinterpret_cast<float*>(thread_scratch((size_t)(group * std::min(n_pos, blk)) * sizeof(float)));
  const size_t off = (size_t)kvh * kvv.head_bytes;
  thread_local std::vector<float> ob, lse_c;
  lse_c.resize((size_t)group);
  // Blocks end where the cache's rows stop being contiguous (a paged block, a ring's end).
  for (int64_t p0 = 0, m = 0; p0 < n_pos; p0 += m) {
    const int64_t at = first + p0;
    m = std::min({blk, n_pos - p0, kvv.kv.contiguous_rows(kvv.layer, at)});
    const uint8_t* kp = kvv.kv.k_row(kvv.layer, seq, at) + off;
    const uint8_t* vp = kvv.kv.v_row(kvv.layer, seq, at) + off;
    size_t stride = kvv.kv.row_bytes();
    if (kvv.q8) {  // this head's rows of the run widened to F32, then the F32 kernel
      thread_local std::vector<float> kf, vf;
      kf.resize((size_t)(m * hd));
      vf.resize((size_t)(m * hd));
      const DequantizeFn deq = dtype_traits(DType::Q8_0)->dequantize;
      for (int64_t p = 0; p < m; ++p) {
        deq(kp + p * stride, kf.data() + p * hd, hd);
        deq(vp + p * stride, vf.data() + p * hd, hd);
      }
      kp = reinterpret_cast<const uint8_t*>(kf.data());
      vp = reinterpret_cast<const uint8_t*>(vf.data());
      stride = (size_t)hd * 4;
    }
    const bool merge = p0 > 0 || accumulate;
    if (merge) ob.resize((size_t)(group * hd));
    float* dst = merge ? ob.data() : o;
    float* l = merge ? lse_c.data() : lse;
    if (softcap > 0) {
      attention_softcap(qp, group, kp, vp, stride, m, hd, kvv.f16, scale, softcap, dst, scratch, l);
    } else {
      kt.attention(qp, group, kp, vp, stride, m, hd, kvv.f16, scale, dst, scratch, l);  // lse: one log per head
    }
    if (!merge) continue;
    for (int64_t g = 0; g < group; ++g) merge_lse(o + g * hd, lse + g, ob.data() + g * hd, lse_c[(size_t)g], hd);
  }
}

// A tile of a long prefill: batch tokens [t0, t0 + L) of one sequence at positions P .. P + L - 1
// (causal, no window or soft cap), for KV head kvh. Every query sees the whole prefix [0, P), so
// the tile's L x group query heads go through the attention kernel together, as one token's group
// does: each run of up to g_attn_block prefix rows is read from memory once for the tile (and from
// L2 by the kernel's passes over its heads) where token by token it was read L times, which beyond
// the last-level cache made prefill memory-bound. Each query's own triangle [P, pos] then goes
// through the per-token path and merges in by log-sum-exp.
void attend_prefill_tile(const KvView& kvv, const BatchToken* batch, int64_t t0, int64_t L, int64_t kvh, const float* q,
                         int64_t n_head, int64_t n_head_kv, int64_t hd, float scale, float* out) {
  const int64_t group = n_head / n_head_kv, q_dim = n_head * hd, nq = L * group;
  const int seq = batch[t0].seq;
  const int64_t P = batch[t0].pos;
  thread_local std::vector<float> qt, o_run, l_run;
  qt.resize((size_t)(nq * hd));
  o_run.resize((size_t)(nq * hd));  // [L][group][hd]: the tile's queries in kernel order
  l_run.resize((size_t)nq);
  for (int64_t i = 0; i < L; ++i)
    std::copy_n(q + (t0 + i) * q_dim + kvh * group * hd, group * hd, qt.data() + i * group * hd);
  attend_span(kvv, seq, kvh, qt.data(), nq, 0, P, hd, scale, 0.0f, false, o_run.data(), l_run.data());
  for (int64_t i = 0; i < L; ++i) {
    float* o = o_run.data() + i * group * hd;
    attend_span(kvv, seq, kvh, q + (t0 + i) * q_dim + kvh * group * hd, group, P, i + 1, hd, scale, 0.0f, true, o,
                l_run.data() + i * group);
    std::copy_n(o, group * hd, out + (t0 + i) * q_dim + kvh * group * hd);
  }
}

}  // namespace

void attention(const float* q, int64_t n, const BatchToken* batch, KvCache& kv, int64_t layer, int64_t n_head,
               int64_t n_head_kv, int64_t hd, float scale, float* out, ThreadPool& pool, int64_t window,
               float softcap) {
  const int64_t group = n_head / n_head_kv, q_dim = n_head * hd;
  const bool f16 = kv.type() == KvType::kF16, q8 = kv.type() == KvType::kQ8_0;
  const size_t elem = f16 ? 2 : 4;
  const KvView kvv{kv, layer, f16, q8, q8 ? dtype_row_bytes(DType::Q8_0, hd) : (size_t)hd * elem};
  // Prefill tiles: runs of consecutive positions of one sequence, causal, whose first position has
  // at least g_prefill_min_prefix positions before it; the other tokens are attended one by one.
  std::vector<std::pair<int64_t, int64_t>> tiles;  // (first batch index, length)
  std::vector<int64_t> single;                     // batch indices attended alone
  const bool tiling = window <= 0 && softcap <= 0;
  for (int64_t t = 0; t < n;) {
    const BatchToken& bt = batch[t];
    int64_t e = t + 1;
    if (tiling && prefill_tiles_enabled() && bt.attn_end <= bt.pos + 1 && bt.pos >= g_prefill_min_prefix) {
      while (e < n && e - t < g_prefill_tile && batch[e].seq == bt.seq && batch[e].pos == batch[e - 1].pos + 1 &&
             batch[e].attn_end <= batch[e].pos + 1)
        ++e;
    }
    if (e - t > 1) {
      tiles.push_back({t, e - t});
    } else {
      single.push_back(t);
    }
    t = e;
  }
  const int64_t n_tile_items = (int64_t)tiles.size() * n_head_kv;
  // Work items: (tile, KV head) first (the longest), then (token, KV head); the KV head's rows are
  // read once for its `group` query heads.
  pool.parallel_for(n_tile_items + (int64_t)single.size() * n_head_kv, [&](int64_t b, int64_t e) {
    thread_local std::vector<float> lse;
    lse.resize((size_t)group);
    for (int64_t idx = b; idx < e; ++idx) {
      if (idx < n_tile_items) {
        const auto [t0, L] = tiles[(size_t)(idx / n_head_kv)];
        attend_prefill_tile(kvv, batch, t0, L, idx % n_head_kv, q, n_head, n_head_kv, hd, scale, out);
        continue;
      }
      const int64_t j = idx - n_tile_items;
      const int64_t t = single[(size_t)(j / n_head_kv)], kvh = j % n_head_kv;
      const BatchToken& bt = batch[t];
      const int64_t first = window > 0 ? std::max<int64_t>(0, bt.pos - window + 1) : 0;
      const int64_t n_pos = std::max(bt.pos, bt.attn_end - 1) - first + 1;  // attn_end: bidirectional span
      attend_span(kvv, bt.seq, kvh, q + t * q_dim + kvh * group * hd, group, first, n_pos, hd, scale, softcap, false,
                  out + t * q_dim + kvh * group * hd, lse.data());
    }
  });
}

std::pair<int64_t, int64_t> set_prefill_tiling(int64_t tile, int64_t min_prefix) {
  MODU_CHECK(tile >= 1 && min_prefix >= 1);
  const std::pair<int64_t, int64_t> prev{g_prefill_tile, g_prefill_min_prefix};
  g_prefill_tile = tile;
  g_prefill_min_prefix = min_prefix;
  return prev;
}

void swiglu(float* gate, const float* up, int64_t n, ThreadPool& pool) {
  const auto fn = kernels().swiglu;
  // 16384-element chunks (~3 us of work each): a decode row (n_ff elements) runs inline without a
  // barrier, a prefill batch splits across the pool.
  pool.parallel_for(n, [&](int64_t b, int64_t e) { fn(gate + b, up + b, e - b); }, 16384);
}

}  // namespace modu::ops

namespace modu {

DecodeKernelsScope::DecodeKernelsScope() : prev_(ops::t_decode_kernels) { ops::t_decode_kernels = true; }
DecodeKernelsScope::~DecodeKernelsScope() { ops::t_decode_kernels = prev_; }
bool DecodeKernelsScope::active() { return ops::t_decode_kernels; }

}  // namespace modu
