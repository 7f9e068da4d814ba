// kernels_bench: matrix-vector throughput of every vec_dot kernel per dtype per supported ISA level,
// over a 4096x4096 weight matrix (one activation row quantized once, dotted with every weight row).
// Reports weight GB/s (SetBytesProcessed) since decode-time matmuls are bound by weight bandwidth;
// run e.g. `kernels_bench --benchmark_filter='q4_k'`.
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "modu/kernels/dispatch.h"
#include "modu/kernels/dtype.h"

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
    for (DType at : {DType::Q8_0, DType::Q8_1, DType::Q8_K}) {
      const std::string name = std::string("quantize_row/") + dtype_name(at) + "/" + isa_name(isa);
      benchmark::RegisterBenchmark(name.c_str(), bm_quantize_row, isa, at);
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
