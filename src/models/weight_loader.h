// Weight views of GGUF tensors with shape and dtype checks (matrices in place, small vectors as
// F32), shared by the text decoder and the vision encoder. Internal to the models layer.
#pragma once

#include <string>
#include <vector>

#include "modu/gguf/gguf.h"
#include "modu/models/model.h"

namespace modu {

inline std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

struct Loader {
  const GgufFile& f;
  std::vector<std::vector<float>>& owned;  // storage for converted 1-D tensors

  // A matrix with `cols` contiguous elements per row and `rows` rows (GGUF ne = [cols, rows]).
  Result<Weight> matrix(const std::string& name, int64_t cols, int64_t rows, bool required) {
    const GgufTensor* t = f.tensor(name);
    if (t == nullptr) {
      if (required) return corrupt(f.name() + ": missing tensor '" + name + "'");
      return Weight{};
    }
    if (t->shape.size() != 2 || t->shape[0] != cols || t->shape[1] != rows)
      return corrupt(f.name() + ": tensor '" + name + "' has shape " + shape_str(t->shape) + ", expected " +
                     shape_str({cols, rows}));
    const DTypeTraits* tr = dtype_traits(t->dtype);
    if (tr == nullptr || tr->vec_dot == nullptr)
      return unimplemented(f.name() + ": tensor '" + name + "' has dtype " + dtype_name(t->dtype) +
                           " which cannot be used as a weight");
    Weight w;
    w.tensor = t;
    w.dtype = t->dtype;
    w.cols = cols;
    w.rows = rows;
    w.data = t->data;
    w.row_bytes = dtype_row_bytes(t->dtype, cols);
    return w;
  }

  // A 3-D stack of n matrices (GGUF ne = [cols, rows, n]) as n matrix views.
  Result<std::vector<Weight>> stack(const std::string& name, int64_t cols, int64_t rows, int64_t n) {
    const GgufTensor* t = f.tensor(name);
    if (t == nullptr) return corrupt(f.name() + ": missing tensor '" + name + "'");
    if (t->shape != std::vector<int64_t>{cols, rows, n})
      return corrupt(f.name() + ": tensor '" + name + "' has shape " + shape_str(t->shape) + ", expected " +
                     shape_str({cols, rows, n}));
    const DTypeTraits* tr = dtype_traits(t->dtype);
    if (tr == nullptr || tr->vec_dot == nullptr)
      return unimplemented(f.name() + ": tensor '" + name + "' has dtype " + dtype_name(t->dtype) +
                           " which cannot be used as a weight");
    std::vector<Weight> out(n);
    for (int64_t e = 0; e < n; ++e) {
      Weight& w = out[e];
      w.tensor = t;
      w.dtype = t->dtype;
      w.cols = cols;
      w.rows = rows;
      w.row_bytes = dtype_row_bytes(t->dtype, cols);
      w.data = t->data + (size_t)e * (size_t)rows * w.row_bytes;
      w.stack_index = e;
    }
    return out;
  }

  // A vector of n elements, converted to F32 if stored otherwise.
  Result<Weight> vec(const std::string& name, int64_t n, bool required) {
    const GgufTensor* t = f.tensor(name);
    if (t == nullptr) {
      if (required) return corrupt(f.name() + ": missing tensor '" + name + "'");
      return Weight{};
    }
    if (t->n_elements() != n)
      return corrupt(f.name() + ": tensor '" + name + "' has shape " + shape_str(t->shape) + ", expected [" +
                     std::to_string(n) + "]");
    Weight w;
    w.tensor = t;
    w.dtype = DType::F32;
    w.cols = n;
    w.rows = 1;
    w.row_bytes = (size_t)n * 4;
    if (t->dtype == DType::F32) {
      w.data = t->data;
    } else {
      const DTypeTraits* tr = dtype_traits(t->dtype);
      if (tr == nullptr || n % tr->block_size != 0)
        return unimplemented(f.name() + ": tensor '" + name + "' dtype " + dtype_name(t->dtype) + " not usable");
      owned.emplace_back(n);
      tr->dequantize(t->data, owned.back().data(), n);
      w.data = reinterpret_cast<const uint8_t*>(owned.back().data());
    }
    return w;
  }
};


}  // namespace modu
