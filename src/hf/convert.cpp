// HF folder -> GGUF conversion: llama.cpp's conventions (tensor names and keys come from the
// folder mapping), Q/K rows permuted to adjacent-pair rotary for llama-convention architectures,
// llama3 rope scaling written as rope_freqs.weight, optional quantization of weight matrices.
#include <cmath>
#include <cstring>

#include "modu/hf/hf_model.h"
#include "modu/models/config.h"

namespace modu {

namespace {

// GGUF llama conversions store each head's rows as (0, half, 1, half+1, ...): row 2i is HF row i
// and row 2i+1 is HF row half + i, so adjacent-pair rotary equals HF's half-split rotary.
std::vector<uint8_t> permute_rows(const GgufTensor& t, int64_t n_heads) {
  const int64_t rows = t.shape.size() == 1 ? t.shape[0] : t.n_rows();
  const size_t rb = t.nbytes / (size_t)rows;
  const int64_t hd = rows / n_heads, half = hd / 2;
  std::vector<uint8_t> out(t.nbytes);
  for (int64_t h = 0; h < n_heads; ++h)
    for (int64_t i = 0; i < half; ++i) {
      std::memcpy(out.data() + (size_t)(h * hd + 2 * i) * rb, t.data + (size_t)(h * hd + i) * rb, rb);
      std::memcpy(out.data() + (size_t)(h * hd + 2 * i + 1) * rb, t.data + (size_t)(h * hd + half + i) * rb, rb);
    }
  return out;
}

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

}  // namespace

Status convert_to_gguf(const GgufFile& src, const std::string& out_path, std::optional<DType> type) {
  MODU_ASSIGN_OR_RETURN(ModelConfig cfg, read_model_config(src));
  MODU_ASSIGN_OR_RETURN(bool hf_neox, src.get_bool(kHfRopeNeoxKey, false));
  const ArchSpec* spec = find_arch(cfg.arch.name);
  const bool permute = hf_neox && spec != nullptr && spec->rope_type == RopeType::kNorm;
  if (type) {
    const DTypeTraits* tt = dtype_traits(*type);
    if (tt == nullptr || tt->quantize == nullptr || tt->vec_dot == nullptr)
      return invalid_argument(std::string("convert: cannot write weights as ") + dtype_name(*type));
  }
  const std::string p = cfg.arch.name + ".";
  const bool llama3 = cfg.rope_scaling == RopeScaling::kLlama3;
  GgufWriter w;
  for (const auto& [k, v] : src.metadata()) {
    if (k.rfind("modu.", 0) == 0 || k == "general.alignment") continue;
    if (llama3 && k.rfind(p + "rope.scaling.", 0) == 0) continue;  // becomes rope_freqs.weight
    w.set(k, v);
  }
  if (src.find(p + "rope.dimension_count") == nullptr)
    w.set(p + "rope.dimension_count", GgufValue::u32((uint32_t)cfg.n_rot));
  if (llama3 && src.tensor("rope_freqs.weight") == nullptr) {
    // Factors such that base frequency / factor = the llama3-scaled frequency.
    ModelConfig plain = cfg;
    plain.rope_scaling = RopeScaling::kNone;
    const std::vector<float> base = rope_frequencies(plain, nullptr), scaled = rope_frequencies(cfg, nullptr);
    std::vector<float> factors(base.size());
    for (size_t i = 0; i < base.size(); ++i) factors[i] = base[i] / scaled[i];
    MODU_RETURN_IF_ERROR(w.add_tensor_f32("rope_freqs.weight", DType::F32, {(int64_t)factors.size()}, factors.data()));
  }
  std::vector<float> buf;
  for (const auto& t : src.tensors()) {
    std::vector<uint8_t> permuted;
    const uint8_t* data = t.data;
    if (permute && (ends_with(t.name, ".attn_q.weight") || ends_with(t.name, ".attn_q.bias") ||
                    ends_with(t.name, ".attn_k.weight") || ends_with(t.name, ".attn_k.bias"))) {
      const bool is_q = t.name.find(".attn_q.") != std::string::npos;
      permuted = permute_rows(t, is_q ? cfg.n_head : cfg.n_head_kv);
      data = permuted.data();
    }
    DType target = t.dtype;
    const bool matrix = t.shape.size() >= 2 && ends_with(t.name, ".weight");
    if (type && matrix) {
      target = *type;
      if (t.shape[0] % dtype_traits(target)->block_size != 0) target = DType::F16;
    }
    if (target == t.dtype) {
      MODU_RETURN_IF_ERROR(w.add_tensor(t.name, t.dtype, t.shape, data, t.nbytes));
      continue;
    }
    buf.resize((size_t)t.n_elements());
    dtype_traits(t.dtype)->dequantize(data, buf.data(), t.n_elements());
    MODU_RETURN_IF_ERROR(w.add_tensor_f32(t.name, target, t.shape, buf.data()));
  }
  return w.write(out_path);
}

}  // namespace modu
