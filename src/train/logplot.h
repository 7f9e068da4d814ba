// Loss log (CSV, truncated to the checkpoint on resume) and a hand-written SVG loss curve.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "modu/core/status.h"

namespace modu::train {

struct LossRow {
  int64_t step;
  double loss, lr, grad_norm, tokens_per_s, elapsed_s;
};

class LossLog {
 public:
  // Reads an existing CSV keeping rows with step <= max_step (missing file: empty log).
  void load(const std::string& path, int64_t max_step);
  void add(const LossRow& r) { rows_.push_back(r); }
  Status save(const std::string& path) const;  // atomic (temp + rename)
  const std::vector<LossRow>& rows() const { return rows_; }

 private:
  std::vector<LossRow> rows_;
};

Status write_loss_svg(const LossLog& log, const std::string& path, const std::string& title);

}  // namespace modu::train
