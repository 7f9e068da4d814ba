// Importance matrices: collection from observed matrix products, and the GGUF file both ways.
#include "modu/models/imatrix.h"

#include <cmath>

#include "modu/gguf/gguf.h"

namespace modu {

void ImatrixCollector::on_matmul(const Weight& w, const float* x, int64_t n) {
  if (w.tensor == nullptr || n <= 0) return;
  ImatrixEntry& e = entries_[w.tensor->name];
  if (e.counts.empty()) {
    const int64_t n_mat = w.tensor->shape.size() == 3 ? w.tensor->shape[2] : 1;
    e.cols = w.cols;
    e.sum2.assign((size_t)(n_mat * w.cols), 0.0);
    e.counts.assign((size_t)n_mat, 0);
  }
  MODU_CHECK(e.cols == w.cols && w.stack_index < (int64_t)e.counts.size());
  double* s = e.sum2.data() + w.stack_index * w.cols;
  for (int64_t t = 0; t < n; ++t) {
    const float* xt = x + t * w.cols;  // [cols]
    for (int64_t i = 0; i < w.cols; ++i) s[i] += (double)xt[i] * (double)xt[i];
  }
  e.counts[(size_t)w.stack_index] += n;
}

Status ImatrixCollector::save(const std::string& path, const std::vector<std::string>& datasets,
                              int64_t chunk_count, int64_t chunk_size) const {
  GgufWriter w;
  w.set("general.type", GgufValue::string("imatrix"));
  w.set("imatrix.datasets", GgufValue::string_array(datasets));
  w.set("imatrix.chunk_count", GgufValue::u32((uint32_t)chunk_count));
  w.set("imatrix.chunk_size", GgufValue::u32((uint32_t)chunk_size));
  for (const auto& [name, e] : entries_) {
    const int64_t n_mat = (int64_t)e.counts.size();
    std::vector<float> sums(e.sum2.begin(), e.sum2.end()), counts(e.counts.begin(), e.counts.end());
    MODU_RETURN_IF_ERROR(w.add_tensor(name + ".in_sum2", DType::F32, {e.cols, n_mat}, sums.data(), sums.size() * 4));
    MODU_RETURN_IF_ERROR(w.add_tensor(name + ".counts", DType::F32, {1, n_mat}, counts.data(), counts.size() * 4));
  }
  return w.write(path);
}

Result<Imatrix> Imatrix::load(const std::string& path) {
  MODU_ASSIGN_OR_RETURN(GgufFile f, GgufFile::open(path));
  Imatrix im;
  im.path_ = path;
  if (const GgufValue* d = f.find("imatrix.datasets"))
    for (const GgufValue& v : d->elems())
      if (const std::string* s = v.as_string()) im.datasets_.push_back(*s);
  MODU_ASSIGN_OR_RETURN(im.chunk_count_, f.get_int("imatrix.chunk_count", 0));
  const std::string suffix = ".in_sum2";
  for (const GgufTensor& t : f.tensors()) {
    if (t.name.size() <= suffix.size() || t.name.compare(t.name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const std::string name = t.name.substr(0, t.name.size() - suffix.size());
    const GgufTensor* c = f.tensor(name + ".counts");
    const std::string where = path + ": imatrix entry '" + name + "'";
    if (c == nullptr) return corrupt(where + " has no .counts tensor");
    if (t.dtype != DType::F32 || c->dtype != DType::F32 || t.shape.empty() || t.shape.size() > 2)
      return corrupt(where + ": expected F32 tensors [cols, n_mat] and [1, n_mat]");
    Means m;
    m.cols = t.shape[0];
    m.n_mat = t.shape.size() == 2 ? t.shape[1] : 1;
    if (m.cols <= 0 || m.n_mat <= 0 || c->n_elements() != m.n_mat)
      return corrupt(where + ": " + std::to_string(c->n_elements()) + " counts for " + std::to_string(m.n_mat) +
                     " matrices");
    const float* sums = reinterpret_cast<const float*>(t.data);
    const float* counts = reinterpret_cast<const float*>(c->data);
    m.values.resize((size_t)(m.cols * m.n_mat));
    m.seen.resize((size_t)m.n_mat);
    for (int64_t j = 0; j < m.n_mat; ++j) {
      if (!std::isfinite(counts[j]) || counts[j] < 0) return corrupt(where + ": a count is negative or not finite");
      m.seen[(size_t)j] = counts[j] > 0;
      for (int64_t i = 0; i < m.cols; ++i) {
        const float s = sums[j * m.cols + i];
        if (!std::isfinite(s) || s < 0) return corrupt(where + ": a sum of squares is negative or not finite");
        m.values[(size_t)(j * m.cols + i)] = counts[j] > 0 ? s / counts[j] : 0.0f;
      }
    }
    im.means_[name] = std::move(m);
  }
  if (im.means_.empty()) return corrupt(path + ": no imatrix entries (<name>.in_sum2 tensors); is it an imatrix file?");
  return im;
}

Result<const float*> Imatrix::find(const std::string& name, int64_t cols, int64_t index) const {
  auto it = means_.find(name);
  if (it == means_.end()) return static_cast<const float*>(nullptr);
  const Means& m = it->second;
  if (m.cols != cols || index >= m.n_mat)
    return invalid_argument(path_ + ": imatrix entry '" + name + "' is for " + std::to_string(m.n_mat) + " x " +
                            std::to_string(m.cols) + " columns, the model's tensor has " + std::to_string(cols) +
                            " (an imatrix of another model?)");
  if (!m.seen[(size_t)index]) return static_cast<const float*>(nullptr);
  return m.values.data() + index * m.cols;
}

}  // namespace modu
