// kernels_bench: matrix-vector throughput of every vec_dot kernel per dtype per supported ISA level,
// over a 4096x4096 weight matrix (one activation row quantized once, dotted with every weight row).
// Reports weight GB/s (SetBytesProcessed) since decode-time matmuls are bound by weight bandwidth;
// gemv/* compares vec_dot per row with the multi-row decode kernels (vec_dot_rows), L2 vs DRAM;
// plus the prefill GEMM (pack + multiply, GOP/s), attention (KV GB/s), the vision encoders' block
// attention (GOP/s) and the SwiGLU activation per level.
// Run e.g. `kernels_bench --benchmark_filter='q4_k'`.
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "modu/core/huge_buffer.h"
#include "modu/kernels/dispatch.h"
#include "modu/kernels/dtype.h"
#include "modu/kernels/gemm.h"
#include "modu/core/fp16.h"

namespace {

using namespace modu;

constexpr int64_t kRows = 4096, kCols = 4096;
constexpr int64_t kDistinctRows = 64;  // quantized once, then tiled (the search quantizers are slow)

std::vector<float> gaussian(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v((size_t)n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// A kRows x kCols matrix of dtype t (built once per dtype and shared by all ISA levels).
const std::vector<uint8_t>& weights(DType t) {
  static std::vector<uint8_t> cache[kMaxDTypeId];
  std::vector<uint8_t>& w = cache[(int)t];
  if (w.empty()) {
    const size_t rb = dtype_row_bytes(t, kCols);
    std::vector<uint8_t> distinct(rb * kDistinctRows);
    const auto x = gaussian(kCols * kDistinctRows, 42);
    dtype_traits(t)->quantize(x.data(), distinct.data(), kCols * kDistinctRows);
    w.resize(rb * kRows);
    for (int64_t r = 0; r < kRows; ++r)
      std::memcpy(w.data() + r * rb, distinct.data() + (r % kDistinctRows) * rb, rb);
  }
  return w;
}

void bm_matvec(benchmark::State& state, Isa isa, DType t) {
  const KernelTable& k = *kernels_for(isa);
  const VecDotFn dot = k.vec_dot[(int)t];
  const DType at = dtype_traits(t)->vec_dot_type;
  const auto& w = weights(t);
  const size_t rb = dtype_row_bytes(t, kCols);
  const auto xa = gaussian(kCols, 7);
  std::vector<uint8_t> qa(dtype_row_bytes(at, kCols));
  k.quantize_row[(int)at](xa.data(), qa.data(), kCols);
  std::vector<float> out(kRows);
  for (auto _ : state) {
    for (int64_t r = 0; r < kRows; ++r) out[r] = dot(kCols, w.data() + r * rb, qa.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed((int64_t)state.iterations() * (int64_t)w.size());
  state.counters["weight_MiB"] = (double)w.size() / (1 << 20);
  state.counters["bits_per_weight"] = 8.0 * (double)rb / (double)kCols;
  state.counters["rows/s"] = benchmark::Counter((double)state.iterations() * kRows, benchmark::Counter::kIsRate);
}

// Decode matrix x vector over a 2048-column matrix of `bytes` weight bytes, single thread:
// `rows` uses the multi-row kernel (vec_dot_rows, as ops::matmul does for decode), otherwise one
// vec_dot per row. 512 MiB is twice this machine's L3, so every pass streams from DRAM (what
// decode sees: bench-1b's Q4_0 weights are 0.64 GB); 1 MiB stays in L2 and shows the kernel's
// own speed. Reports weight GB/s over CPU time.
void bm_gemv(benchmark::State& state, Isa isa, DType t, bool rows, size_t bytes) {
  constexpr int64_t cols = 2048;
  const KernelTable& k = *kernels_for(isa);
  const DType at = dtype_traits(t)->vec_dot_type;
  const size_t rb = dtype_row_bytes(t, cols);
  const int64_t nrows = (int64_t)(bytes / rb);
  // The same kind of memory as a loaded model's repacked weights (huge pages where granted).
  struct Matrix { HugeBuffer mem; size_t size = 0; uint8_t* data() { return mem.data(); } };
  static Matrix cache[kMaxDTypeId][2];
  Matrix& w = cache[(int)t][bytes > (64u << 20)];
  if (w.size != (size_t)nrows * rb) {
    std::vector<uint8_t> distinct(rb * kDistinctRows);
    const auto x = gaussian(cols * kDistinctRows, 43);
    dtype_traits(t)->quantize(x.data(), distinct.data(), cols * kDistinctRows);
    auto mem = HugeBuffer::allocate((size_t)nrows * rb);
    if (!mem.ok()) {
      state.SkipWithError(mem.status().message().c_str());
      return;
    }
    w.mem = std::move(*mem);
    w.size = (size_t)nrows * rb;
    for (int64_t r = 0; r < nrows; ++r) std::memcpy(w.data() + r * rb, distinct.data() + (r % kDistinctRows) * rb, rb);
  }
  const auto xa = gaussian(cols, 8);
  std::vector<uint8_t> qa(dtype_row_bytes(at, cols));
  k.quantize_row[(int)at](xa.data(), qa.data(), cols);
  std::vector<float> out((size_t)nrows);
  const VecDotRowsFn dot_rows = k.vec_dot_rows[(int)t];
  const VecDotFn dot = k.vec_dot[(int)t];
  for (auto _ : state) {
    if (rows) {
      dot_rows(cols, w.data(), rb, nrows, qa.data(), out.data());
    } else {
      for (int64_t r = 0; r < nrows; ++r) out[r] = dot(cols, w.data() + r * rb, qa.data());
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed((int64_t)state.iterations() * (int64_t)w.size);
}

// The ceiling of the gemv/*/dram figures: the roofline read probe (modu bench --roofline) over
// the same 512 MiB of huge-page memory, one thread.
void bm_read(benchmark::State& state, Isa isa) {
  constexpr size_t kBytes = size_t{512} << 20;
  static HugeBuffer mem;
  if (!mem.data()) {
    auto m = HugeBuffer::allocate(kBytes);
    if (!m.ok()) {
      state.SkipWithError(m.status().message().c_str());
      return;
    }
    mem = std::move(*m);
    std::memset(mem.data(), 1, kBytes);
  }
  const auto probe = kernels_for(isa)->probe_read;
  for (auto _ : state) benchmark::DoNotOptimize(probe(mem.data(), kBytes));
  state.SetBytesProcessed((int64_t)state.iterations() * (int64_t)kBytes);
}

// Activation quantization (done once per token per matmul input; should be negligible).
void bm_quantize_row(benchmark::State& state, Isa isa, DType at) {
  const KernelTable& k = *kernels_for(isa);
  const auto x = gaussian(kCols, 9);
  std::vector<uint8_t> q(dtype_row_bytes(at, kCols));
  for (auto _ : state) {
    k.quantize_row[(int)at](x.data(), q.data(), kCols);
    benchmark::DoNotOptimize(q.data());
  }
  state.SetBytesProcessed((int64_t)state.iterations() * kCols * (int64_t)sizeof(float));
}

// Prefill GEMM on a 4096x4096 matrix and n_tok tokens, single thread, packing included (as in
// ops::matmul: each 32-row unit is packed once, then multiplied with every token).
void bm_gemm(benchmark::State& state, Isa isa, DType t, int64_t n_tok) {
  const KernelTable& k = *kernels_for(isa);
  const GemmPackFn pack = k.gemm_pack[(int)t];
  const auto& w = weights(t);
  const size_t rb = dtype_row_bytes(t, kCols);
  const auto xa = gaussian(kCols * n_tok, 7);
  std::vector<uint8_t> q8(dtype_row_bytes(DType::Q8_0, kCols) * n_tok);
  k.quantize_row[(int)DType::Q8_0](xa.data(), q8.data(), kCols * n_tok);
  std::vector<int8_t> aq(kCols * n_tok);
  std::vector<float> ad(kCols / 32 * n_tok), as(kCols / 32 * n_tok), y(kRows * n_tok);
  gemm_act_from_q8_0(q8.data(), n_tok, kCols, aq.data(), ad.data(), as.data());
  const GemmAct act{aq.data(), ad.data(), as.data(), kCols};
  const size_t pb = gemm_panel_bytes(kCols);
  std::vector<uint8_t> raw(2 * pb + 64);
  uint8_t* buf = reinterpret_cast<uint8_t*>(((uintptr_t)raw.data() + 63) & ~(uintptr_t)63);
  for (auto _ : state) {
    for (int64_t r0 = 0; r0 < kRows; r0 += 32) {
      pack(w.data() + r0 * rb, rb, 16, kCols, buf);
      pack(w.data() + (r0 + 16) * rb, rb, 16, kCols, buf + pb);
      k.gemm(buf, 2, 32, act, n_tok, y.data() + r0, kRows);
    }
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GOP/s"] = benchmark::Counter(2.0 * kRows * kCols * n_tok * (double)state.iterations(),
                                               benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

// Attention for one token, one KV head, 4 query heads (GQA), head_dim 64, F16 cache.
void bm_attention(benchmark::State& state, Isa isa, int64_t n_pos) {
  const KernelTable& k = *kernels_for(isa);
  const int64_t hd = 64, ng = 4;
  const auto kv = gaussian(n_pos * hd * 2, 3);
  std::vector<uint16_t> kh(n_pos * hd), vh(n_pos * hd);
  for (int64_t i = 0; i < n_pos * hd; ++i) { kh[i] = fp32_to_fp16(kv[i]); vh[i] = fp32_to_fp16(kv[n_pos * hd + i]); }
  const auto q = gaussian(ng * hd, 5);
  std::vector<float> out(ng * hd), scratch(ng * n_pos);
  for (auto _ : state) {
    k.attention(q.data(), ng, kh.data(), vh.data(), hd * 2, n_pos, hd, true, 0.125f, out.data(), scratch.data(), nullptr);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed((int64_t)state.iterations() * n_pos * hd * 2 * 2);
  state.counters["GOP/s"] = benchmark::Counter(4.0 * ng * hd * n_pos * (double)state.iterations(),
                                               benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

// The vision encoders' block attention: 64 queries of one head (hd 72, SigLIP-so400m) against
// n_kv keys (1024: a 448² image, 4096: 896²), single thread; GOP/s counts scores and output.
void bm_attention_block(benchmark::State& state, Isa isa, int64_t n_kv) {
  const KernelTable& k = *kernels_for(isa);
  const int64_t hd = 72, n_q = 64;
  const auto q = gaussian(n_q * hd, 7);
  const auto kt = gaussian((n_kv + kAttnKeyBlock - 1) / kAttnKeyBlock * kAttnKeyBlock * hd, 8);
  const auto v = gaussian(n_kv * hd, 9);
  std::vector<float> out(n_q * hd), scratch(attn_block_scratch(n_q, n_kv));
  for (auto _ : state) {
    k.attention_block(q.data(), hd, n_q, kt.data(), v.data(), hd, n_kv, hd, 0.118f, out.data(), hd, scratch.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["GOP/s"] = benchmark::Counter(4.0 * n_q * n_kv * hd * (double)state.iterations(),
                                               benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

// SwiGLU activation over one prefill batch's FFN row block (128 tokens x 8192), single thread:
// bytes are the two float inputs read and the output written.
void bm_swiglu(benchmark::State& state, Isa isa) {
  const KernelTable& k = *kernels_for(isa);
  constexpr int64_t n = 128 * 8192;
  const auto g0 = gaussian(n, 21), u = gaussian(n, 22);
  std::vector<float> g = g0;
  for (auto _ : state) {
    state.PauseTiming();
    std::copy(g0.begin(), g0.end(), g.begin());
    state.ResumeTiming();
    k.swiglu(g.data(), u.data(), n);
    benchmark::DoNotOptimize(g.data());
  }
  state.SetBytesProcessed((int64_t)state.iterations() * n * 12);
  state.counters["elements/s"] = benchmark::Counter((double)state.iterations() * n, benchmark::Counter::kIsRate);
}

// One decode row of the serial steps between matmuls: RMS norm of d_model = 2048 floats, and the
// F16 conversion of a K or V row (quantize_row[F16], 512 floats).
void bm_rms_norm(benchmark::State& state, Isa isa) {
  const KernelTable& k = *kernels_for(isa);
  constexpr int64_t d = 2048;
  const auto x = gaussian(d, 23), w = gaussian(d, 24);
  std::vector<float> out(d);
  for (auto _ : state) {
    k.rms_norm(x.data(), w.data(), d, 1e-5f, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed((int64_t)state.iterations() * d * 4);
}

void bm_f16_row(benchmark::State& state, Isa isa) {
  const KernelTable& k = *kernels_for(isa);
  constexpr int64_t n = 512;
  const auto x = gaussian(n, 25);
  std::vector<uint16_t> out(n);
  for (auto _ : state) {
    k.quantize_row[(int)DType::F16](x.data(), out.data(), n);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed((int64_t)state.iterations() * n * 4);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  size_t count = 0;
  const DType* types = weight_dtypes(&count);
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni}) {
    if (!isa_supported(isa)) continue;
    for (size_t i = 0; i < count; ++i) {
      const std::string name = std::string("vec_dot/") + dtype_name(types[i]) + "/" + isa_name(isa);
      benchmark::RegisterBenchmark(name.c_str(), bm_matvec, isa, types[i])->Unit(benchmark::kMillisecond);
    }
    benchmark::RegisterBenchmark((std::string("read/") + isa_name(isa) + "/dram").c_str(), bm_read, isa)
        ->Unit(benchmark::kMillisecond);
    // The load-time repacked layouts (repack.h) next to the file layouts they replace.
    std::vector<DType> gemv_types(types, types + count);
    gemv_types.insert(gemv_types.end(), {DType::Q4_0_R16, DType::Q8_0_R16, DType::Q2_K_R16, DType::Q4_K_R16, DType::Q5_K_R16,
                                         DType::Q6_K_R16});
    for (DType t : gemv_types) {
      for (bool rows : {false, true}) {
        if (!kernels_for(isa)->vec_dot[(int)t] || (rows && !kernels_for(isa)->vec_dot_rows[(int)t])) continue;
        for (size_t bytes : {size_t{1} << 20, size_t{512} << 20}) {
          const std::string name = std::string("gemv/") + dtype_name(t) + "/" + isa_name(isa) +
                                   (rows ? "/rows" : "/vec_dot") + (bytes > (64u << 20) ? "/dram" : "/l2");
          benchmark::RegisterBenchmark(name.c_str(), bm_gemv, isa, t, rows, bytes)->Unit(benchmark::kMillisecond);
        }
      }
    }
    for (size_t i = 0; i < count; ++i) {
      if (!kernels_for(isa)->gemm_pack[(int)types[i]]) continue;
      for (int64_t n_tok : {16, 128}) {
        const std::string name = std::string("gemm/") + dtype_name(types[i]) + "/" + isa_name(isa) + "/n" + std::to_string(n_tok);
        benchmark::RegisterBenchmark(name.c_str(), bm_gemm, isa, types[i], n_tok)->Unit(benchmark::kMillisecond);
      }
    }
    for (int64_t n_pos : {64, 512}) {
      const std::string name = std::string("attention/f16/hd64/gqa4/") + isa_name(isa) + "/pos" + std::to_string(n_pos);
      benchmark::RegisterBenchmark(name.c_str(), bm_attention, isa, n_pos);
    }
    for (int64_t n_kv : {1024, 4096}) {
      const std::string name = std::string("attention_block/hd72/q64/") + isa_name(isa) + "/kv" + std::to_string(n_kv);
      benchmark::RegisterBenchmark(name.c_str(), bm_attention_block, isa, n_kv)->Unit(benchmark::kMillisecond);
    }
    benchmark::RegisterBenchmark((std::string("swiglu/") + isa_name(isa)).c_str(), bm_swiglu, isa)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark((std::string("rms_norm/d2048/") + isa_name(isa)).c_str(), bm_rms_norm, isa);
    benchmark::RegisterBenchmark((std::string("f16_row/n512/") + isa_name(isa)).c_str(), bm_f16_row, isa);
    for (DType at : {DType::Q8_0, DType::Q8_1, DType::Q8_K, DType::Q8_0_A16}) {
      const std::string name = std::string("quantize_row/") + dtype_name(at) + "/" + isa_name(isa);
      benchmark::RegisterBenchmark(name.c_str(), bm_quantize_row, isa, at);
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
