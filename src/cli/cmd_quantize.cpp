// `modu quantize`: rewrite a GGUF model's weight matrices in another dtype or a mix (metadata kept).
#include <cstdio>
#include <functional>
#include <map>
#include <optional>

#include "common.h"
#include "modu/models/imatrix.h"
#include "modu/models/quant_mix.h"

namespace modu::cli {

namespace {

// llama.cpp's general.file_type values for the types modu writes.
int file_type_of(DType t) {
  switch (t) {
    case DType::F32: return 0;
    case DType::F16: return 1;
    case DType::Q4_0: return 2;
    case DType::Q4_1: return 3;
    case DType::Q8_0: return 7;
    case DType::Q5_0: return 8;
    case DType::Q5_1: return 9;
    case DType::Q2_K: return 10;
    case DType::Q3_K: return 12;  // Q3_K_M
    case DType::Q4_K: return 15;  // Q4_K_M
    case DType::Q5_K: return 17;  // Q5_K_M
    case DType::Q6_K: return 18;
    case DType::BF16: return 32;
    default: return -1;
  }
}

// Quantizes t's values `src` ([n_mat][rows][cols]) to `target`, each matrix with its importances
// from `im` when it has them and the type has an importance-weighted quantizer. Importances are
// floored at 1e-6 of their mean so no column is ignored outright.
Result<std::vector<uint8_t>> quantize_tensor(const GgufTensor& t, DType target, const float* src, const Imatrix* im,
                                             int* weighted) {
  const DTypeTraits* tr = dtype_traits(target);
  if (tr->quantize == nullptr) return invalid_argument("tensor '" + t.name + "': modu cannot produce " + tr->name);
  const int64_t cols = t.shape[0];
  const int64_t n_rows_total = t.n_elements() / cols;
  const int64_t n_mat = t.shape.size() == 3 ? t.shape[2] : 1, rows = n_rows_total / n_mat;
  const size_t row_bytes = dtype_row_bytes(target, cols);
  std::vector<uint8_t> bytes(row_bytes * (size_t)n_rows_total);
  std::vector<float> imp((size_t)cols);
  for (int64_t m = 0; m < n_mat; ++m) {
    const float* found = nullptr;
    if (im != nullptr && tr->quantize_imatrix != nullptr) {
      MODU_ASSIGN_OR_RETURN(found, im->find(t.name, cols, m));
    }
    if (found != nullptr) {
      double mean = 0;
      for (int64_t i = 0; i < cols; ++i) mean += found[i];
      mean /= (double)cols;
      for (int64_t i = 0; i < cols; ++i) imp[(size_t)i] = std::max(found[i], (float)(1e-6 * mean));
      ++*weighted;
    }
    for (int64_t r = m * rows; r < (m + 1) * rows; ++r) {
      const float* x = src + r * cols;
      uint8_t* q = bytes.data() + (size_t)r * row_bytes;
      if (found != nullptr) tr->quantize_imatrix(x, q, cols, imp.data());
      else tr->quantize(x, q, cols);
    }
  }
  return bytes;
}

// Writes `in` with each matrix converted to choose(tensor) (vectors, norms, biases and rope factors
// stay as they are) and general.file_type = file_type; with `im`, weighted by its importances.
Status write_quantized(const GgufFile& in, const std::string& out, int file_type,
                       const std::function<DType(const GgufTensor&)>& choose, const Imatrix* im) {
  const GgufFile* file = &in;
  GgufWriter w;
  for (const auto& [k, v] : file->metadata()) {
    if (k == "general.alignment") continue;
    w.set(k, v);
  }
  w.set("general.file_type", GgufValue::u32((uint32_t)file_type));
  w.set("general.quantization_version", GgufValue::u32(2));
  if (im != nullptr) {  // the keys llama-quantize records
    w.set("quantize.imatrix.file", GgufValue::string(im->path()));
    if (!im->datasets().empty()) w.set("quantize.imatrix.dataset", GgufValue::string(im->datasets()[0]));
    w.set("quantize.imatrix.entries_count", GgufValue::i32((int32_t)im->size()));
    w.set("quantize.imatrix.chunks_count", GgufValue::i32((int32_t)im->chunk_count()));
  }
  int weighted = 0;
  size_t in_bytes = 0;
  std::vector<float> buf;
  std::map<std::string, int> counts;
  for (const auto& t : file->tensors()) {
    in_bytes += t.nbytes;
    const bool matrix = t.shape.size() >= 2 && t.name != "rope_freqs.weight";
    const DType target = matrix ? choose(t) : t.dtype;
    if (matrix) ++counts[dtype_name(target)];
    if (target == t.dtype) {
      MODU_RETURN_IF_ERROR(w.add_tensor(t.name, t.dtype, t.shape, t.data, t.nbytes));
      continue;
    }
    buf.resize(t.n_elements());
    dtype_traits(t.dtype)->dequantize(t.data, buf.data(), t.n_elements());
    MODU_ASSIGN_OR_RETURN(std::vector<uint8_t> q, quantize_tensor(t, target, buf.data(), im, &weighted));
    MODU_RETURN_IF_ERROR(w.add_tensor(t.name, target, t.shape, q.data(), q.size()).with_context(t.name));
    progress("modu: quantized " + t.name + " " + dtype_name(t.dtype) + " -> " + dtype_name(target));
  }
  progress_done();
  MODU_RETURN_IF_ERROR(w.write(out));
  MODU_ASSIGN_OR_RETURN(GgufFile written, GgufFile::open(out));
  size_t out_bytes = 0;
  for (const auto& t : written.tensors()) out_bytes += t.nbytes;
  std::string mix;
  for (const auto& [name, n] : counts) mix += (mix.empty() ? "" : ", ") + std::to_string(n) + " " + name;
  std::fprintf(stderr, "modu: wrote %s: weights %.1f MB -> %.1f MB (matrices: %s)\n", out.c_str(), in_bytes / 1e6,
               out_bytes / 1e6, mix.c_str());
  if (im != nullptr) std::fprintf(stderr, "modu: %d matrices quantized by importance (%s)\n", weighted, im->path().c_str());
  return Status::Ok();
}

}  // namespace

Status quantize_gguf(const GgufFile& in, const std::string& out, DType type, const Imatrix* imatrix) {
  const DTypeTraits* tt = dtype_traits(type);
  if (tt->quantize == nullptr || tt->vec_dot == nullptr) return invalid_argument(std::string("cannot quantize to ") + tt->name);
  return write_quantized(in, out, file_type_of(type), [&](const GgufTensor& t) {
    DType target = type;
    // The output projection is the most sensitive matrix: at 4 bits or less keep it at Q6_K.
    if (t.name == "output.weight" && tt->block_bytes * 8.0 / tt->block_size < 5.0) target = DType::Q6_K;
    if (t.shape[0] % dtype_traits(target)->block_size != 0) target = t.shape[0] % 32 == 0 ? DType::Q8_0 : DType::F16;
    return target;
  }, imatrix);
}

Status quantize_gguf_mix(const GgufFile& in, const std::string& out, QuantMix mix, const Imatrix* imatrix) {
  QuantMixModel m;
  MODU_ASSIGN_OR_RETURN(std::string arch, in.get_string("general.architecture"));
  auto num = [&](const std::string& key, int def) {
    auto v = in.get_int(arch + "." + key, def);
    return v.ok() ? (int)*v : def;
  };
  m.n_layer = num("block_count", 0);
  const int n_head = num("attention.head_count", 1), n_head_kv = num("attention.head_count_kv", n_head);
  m.n_gqa = n_head_kv > 0 ? n_head / n_head_kv : 1;
  m.n_expert = num("expert_count", 0);
  m.tied_output = in.tensor("output.weight") == nullptr;
  return write_quantized(in, out, quant_mix_file_type(mix),
                         [&](const GgufTensor& t) { return quant_mix_type(mix, t.name, t.shape[0], m); }, imatrix);
}

namespace {

int quantize(const std::string& in, const std::string& out, const std::string& type_name, const std::string& imatrix) {
  auto mix = quant_mix_from_name(type_name);
  auto type = dtype_from_name(type_name);
  if (!mix.ok() && !type.ok())
    return fail(invalid_argument(type.status().message() + "; or a mix: q3_k_s, q3_k_m, q3_k_l, q4_k_s, q4_k_m, q5_k_s, q5_k_m, q2_k_mix"));
  auto file = GgufFile::open(in);
  if (!file.ok()) return fail(file.status());
  std::optional<Imatrix> im;
  if (!imatrix.empty()) {
    auto loaded = Imatrix::load(imatrix);
    if (!loaded.ok()) return fail(loaded.status());
    im = std::move(loaded).value();
  }
  const Imatrix* imp = im ? &*im : nullptr;
  Status st = mix.ok() ? quantize_gguf_mix(*file, out, *mix, imp) : quantize_gguf(*file, out, *type, imp);
  return st.ok() ? 0 : fail(st);
}

}  // namespace

void add_quantize_command(CLI::App& app, int& rc) {
  auto in = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto type = std::make_shared<std::string>();
  auto imatrix = std::make_shared<std::string>();
  CLI::App* c = app.add_subcommand("quantize", "Convert a GGUF model's weights to another dtype");
  c->add_option("input", *in, "Input GGUF")->required()->check(CLI::ExistingFile);
  c->add_option("output", *out, "Output GGUF")->required();
  c->add_option("type", *type, "A dtype for every matrix (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, "
                 "q6_k), or a mix as llama.cpp makes them: q3_k_s, q3_k_m, q3_k_l, q4_k_s, q4_k_m, q5_k_s, q5_k_m, q2_k_mix")->required();
  c->add_option("--imatrix", *imatrix, "Importance matrix from `modu imatrix` (or llama-imatrix's GGUF): matrices "
                 "it covers are quantized to keep their most used columns most exact")->check(CLI::ExistingFile);
  c->callback([in, out, type, imatrix, &rc] { rc = quantize(*in, *out, *type, *imatrix); });
}

}  // namespace modu::cli
