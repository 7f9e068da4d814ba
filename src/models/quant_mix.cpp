// The quantization mix recipes (see quant_mix.h): per-tensor type rules by mix, layer and shape.
#include "modu/models/quant_mix.h"

#include <cctype>
#include <cstdio>

namespace modu {
namespace {

struct MixInfo {
  QuantMix mix;
  const char* name;
  int file_type;
  DType base;
};

// Bare q2_k ... q6_k stay single dtypes in `modu quantize` (like llama-quantize --pure); llama.cpp's
// Q2_K recipe is reachable as q2_k_mix, and its Q6_K recipe is the single dtype anyway.
constexpr MixInfo kMixes[] = {
    {QuantMix::kQ2_K, "q2_k_mix", 10, DType::Q2_K}, {QuantMix::kQ3_K_S, "q3_k_s", 11, DType::Q3_K},
    {QuantMix::kQ3_K_M, "q3_k_m", 12, DType::Q3_K}, {QuantMix::kQ3_K_L, "q3_k_l", 13, DType::Q3_K},
    {QuantMix::kQ4_K_S, "q4_k_s", 14, DType::Q4_K}, {QuantMix::kQ4_K_M, "q4_k_m", 15, DType::Q4_K},
    {QuantMix::kQ5_K_S, "q5_k_s", 16, DType::Q5_K}, {QuantMix::kQ5_K_M, "q5_k_m", 17, DType::Q5_K},
};

const MixInfo& info(QuantMix m) {
  for (const MixInfo& i : kMixes)
    if (i.mix == m) return i;
  return kMixes[0];
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The layers that get more bits: the first and last eighth, and every third one between.
bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

// A K-quant needs rows that are whole 256-element super-blocks.
DType fallback(DType t, int64_t cols) {
  if (cols % dtype_traits(t)->block_size == 0) return t;
  DType f = DType::F16;
  switch (t) {
    case DType::Q2_K:
    case DType::Q3_K: f = DType::Q4_0; break;
    case DType::Q4_K: f = DType::Q5_0; break;
    case DType::Q5_K: f = DType::Q5_1; break;
    case DType::Q6_K: f = DType::Q8_0; break;
    default: f = DType::F16;
  }
  return cols % dtype_traits(f)->block_size == 0 ? f : DType::F16;
}

}  // namespace

Result<QuantMix> quant_mix_from_name(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = (char)std::tolower((unsigned char)c);
  std::string known;
  for (const MixInfo& i : kMixes) {
    if (lower == i.name) return i.mix;
    known += (known.empty() ? "" : ", ") + std::string(i.name);
  }
  return invalid_argument("unknown quantization mix '" + std::string(name) + "' (mixes: " + known + ")");
}

const char* quant_mix_name(QuantMix m) { return info(m).name; }
int quant_mix_file_type(QuantMix m) { return info(m).file_type; }
DType quant_mix_base(QuantMix m) { return info(m).base; }

DType quant_mix_type(QuantMix m, const std::string& name, int64_t cols, const QuantMixModel& model) {
  using Q = QuantMix;
  DType t = info(m).base;
  int layer = -1;
  if (name.rfind("blk.", 0) == 0) std::sscanf(name.c_str() + 4, "%d", &layer);
  const int n = model.n_layer > 0 ? model.n_layer : 1;
  const bool more = layer >= 0 && use_more_bits(layer, n);
  if (name == "output.weight" || (model.tied_output && name == "token_embd.weight")) {
    // The output projection is the most sensitive matrix.
    return cols % 256 == 0 ? DType::Q6_K : DType::Q8_0;
  }
  if (name == "token_embd.weight") return fallback(t, cols);
  if (ends_with(name, ".attn_v.weight")) {
    if (m == Q::kQ2_K) t = model.n_gqa >= 4 ? DType::Q4_K : DType::Q3_K;
    else if (m == Q::kQ3_K_M) t = layer < 2 ? DType::Q5_K : DType::Q4_K;
    else if (m == Q::kQ3_K_L) t = DType::Q5_K;
    else if ((m == Q::kQ4_K_M || m == Q::kQ5_K_M) && more) t = DType::Q6_K;
    else if (m == Q::kQ4_K_S && layer < 4) t = DType::Q5_K;
    if (model.n_expert == 8) t = DType::Q8_0;  // 8 experts share it: more bits cost little
  } else if (ends_with(name, ".attn_k.weight")) {
    if (model.n_expert == 8) t = DType::Q8_0;
  } else if (name.find(".ffn_down") != std::string::npos) {
    if (m == Q::kQ2_K) t = DType::Q3_K;
    else if (m == Q::kQ3_K_M) t = layer < n / 16 ? DType::Q5_K : DType::Q4_K;
    else if (m == Q::kQ3_K_L) t = DType::Q5_K;
    else if ((m == Q::kQ4_K_M || m == Q::kQ5_K_M) && more) t = DType::Q6_K;
    else if (m == Q::kQ4_K_S && layer < n / 8) t = DType::Q5_K;
  } else if (ends_with(name, ".attn_output.weight")) {
    if (model.n_expert == 8) {
      if (m == Q::kQ2_K || m == Q::kQ3_K_S || m == Q::kQ3_K_M || m == Q::kQ4_K_S || m == Q::kQ4_K_M) t = DType::Q5_K;
    } else if (m == Q::kQ2_K) {
      t = DType::Q3_K;
    } else if (m == Q::kQ3_K_M) {
      t = DType::Q4_K;
    } else if (m == Q::kQ3_K_L) {
      t = DType::Q5_K;
    }
  } else if (ends_with(name, ".attn_qkv.weight")) {
    if (m == Q::kQ3_K_M || m == Q::kQ3_K_L) t = DType::Q4_K;
    else if (m == Q::kQ4_K_M) t = DType::Q5_K;
    else if (m == Q::kQ5_K_M) t = DType::Q6_K;
  }
  return fallback(t, cols);
}

}  // namespace modu
