// Importance matrices (`modu imatrix`, `modu quantize --imatrix`): for each weight matrix, the sum
// over calibration tokens of each input column's squared activation, in llama.cpp's imatrix GGUF
// layout (`<name>.in_sum2` [cols, n_mat] and `<name>.counts` [1, n_mat] F32 tensors, general.type
// "imatrix", imatrix.datasets / chunk_count / chunk_size), so files move between the two tools.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "modu/core/status.h"
#include "modu/models/model.h"

namespace modu {

// One weight tensor's statistics: n_mat matrices (experts of a 3-D stack, else 1) of `cols` columns.
struct ImatrixEntry {
  int64_t cols = 0;
  std::vector<double> sum2;     // [n_mat * cols]: sum of x^2 per input column
  std::vector<int64_t> counts;  // [n_mat]: rows (tokens) seen by each matrix
};

// Accumulates the inputs of every matrix product of the forward passes it observes (install with
// set_matmul_observer on the thread that runs them). Weights without a file tensor are skipped.
class ImatrixCollector : public MatmulObserver {
 public:
  void on_matmul(const Weight& w, const float* x, int64_t n) override;
  const std::map<std::string, ImatrixEntry>& entries() const { return entries_; }
  // Writes the GGUF file; `datasets` names the calibration texts.
  Status save(const std::string& path, const std::vector<std::string>& datasets, int64_t chunk_count,
              int64_t chunk_size) const;

 private:
  std::map<std::string, ImatrixEntry> entries_;
};

// A loaded importance matrix: per tensor, the mean squared activation of each column.
class Imatrix {
 public:
  // Reads a file written by `modu imatrix` or llama-imatrix (GGUF); kCorrupt with the tensor's name
  // for inconsistent shapes, missing counts or non-finite values.
  static Result<Imatrix> load(const std::string& path);

  // The importances ([cols]) of matrix `index` of tensor `name`, or nullptr when the file has no
  // entry for it (or that expert never saw a token). kInvalidArgument when the entry's width is
  // not `cols` (an imatrix of another model).
  Result<const float*> find(const std::string& name, int64_t cols, int64_t index) const;

  size_t size() const { return means_.size(); }
  const std::vector<std::string>& datasets() const { return datasets_; }
  int64_t chunk_count() const { return chunk_count_; }
  const std::string& path() const { return path_; }

 private:
  struct Means {
    int64_t cols = 0, n_mat = 0;
    std::vector<float> values;  // [n_mat * cols]
    std::vector<bool> seen;     // [n_mat]: count > 0
  };
  std::map<std::string, Means> means_;
  std::vector<std::string> datasets_;
  int64_t chunk_count_ = 0;
  std::string path_;
};

}  // namespace modu
