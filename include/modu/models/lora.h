// LoRA adapters at inference: y = W x + sum_i s_i * B_i (A_i x), applied at matmul time without
// touching the base weights (so quantized and repacked bases work unchanged). An adapter is read
// from llama.cpp's adapter GGUF; Model::add_lora attaches it to the matching weights.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "modu/core/status.h"
#include "modu/core/threadpool.h"
#include "modu/gguf/gguf.h"

namespace modu {

struct Weight;

// One adapter's low-rank pair for one base matrix W [rows, cols] (row-major, F32).
struct LoraPair {
  std::vector<float> a;  // A [rank, cols]
  std::vector<float> b;  // B [rows, rank]
  int64_t rank = 0, cols = 0, rows = 0;
};

class LoraAdapter {
 public:
  // llama.cpp's adapter GGUF: general.type = "adapter", adapter.type = "lora",
  // adapter.lora.alpha, general.architecture; tensors "<base tensor name>.lora_a" (ne [cols, r])
  // and ".lora_b" (ne [r, rows]) in any dtype modu reads (dequantized to F32 here: adapters are
  // small). Errors name the file and the tensor.
  static Result<std::shared_ptr<const LoraAdapter>> load(const std::string& path);
  // The same from memory (tests; `name` appears in errors).
  static Result<std::shared_ptr<const LoraAdapter>> parse(const uint8_t* data, size_t size, const std::string& name);

  // Built from pairs already in F32 (the PEFT reader in the hf layer). `alpha` follows scale_for's
  // rule (0: no alpha); pairs are keyed by base tensor name.
  static std::shared_ptr<const LoraAdapter> from_pairs(std::string name, std::string arch, float alpha,
                                                       std::map<std::string, LoraPair> pairs);

  const std::string& name() const { return name_; }
  const std::string& arch() const { return arch_; }
  float alpha() const { return alpha_; }  // 0: none given (the scale is then the user's alone)
  const std::map<std::string, LoraPair>& pairs() const { return pairs_; }  // by base tensor name
  // The factor applied to B (A x) at user scale `s`: s * alpha / rank (llama.cpp's rule), or s
  // when the adapter gives no alpha.
  float scale_for(float s, int64_t rank) const { return alpha_ > 0 ? s * alpha_ / (float)rank : s; }

 private:
  static Status read(const GgufFile& f, const std::string& name, LoraAdapter* out);
  std::string name_, arch_;
  float alpha_ = 0;
  std::map<std::string, LoraPair> pairs_;
};

// What a base matrix carries when adapters target it: each term adds scale * B (A x).
struct LoraTerm {
  const LoraPair* pair;
  float scale;
  int slot = -1;  // -1: every token; else only tokens whose BatchToken::lora has bit `slot`
};
struct LoraDelta {
  std::vector<LoraTerm> terms;
};

namespace ops {
// The named-adapter masks of the rows the next matmuls see (one per row, BatchToken::lora), set
// by the forward pass for its duration on the calling thread; null: no named adapter applies.
class LoraRowsScope {
 public:
  explicit LoraRowsScope(const uint32_t* masks);
  ~LoraRowsScope();
  LoraRowsScope(const LoraRowsScope&) = delete;
  LoraRowsScope& operator=(const LoraRowsScope&) = delete;

 private:
  const uint32_t* prev_;
};

// y [n, w.rows] += sum over w.lora's terms of scale * (x [n, w.cols] A^T) B^T. Plain loops (the
// rank is small: the two thin products cost ~2 r (rows + cols) flops per token, a few percent of
// the base matmul at r = 16), parallel over tokens x rank, then over output rows.
void apply_lora(const Weight& w, const float* x, int64_t n, float* y, ThreadPool& pool);
}  // namespace ops

}  // namespace modu
