// Loss CSV and SVG curve (raw loss in light grey, a 20-step moving average on top).
#include "logplot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace modu::train {

void LossLog::load(const std::string& path, int64_t max_step) {
  rows_.clear();
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    LossRow r{};
    long long step = 0;
    if (std::sscanf(line.c_str(), "%lld,%lf,%lf,%lf,%lf,%lf", &step, &r.loss, &r.lr, &r.grad_norm, &r.tokens_per_s,
                    &r.elapsed_s) != 6)
      continue;  // header or a torn last line
    r.step = step;
    if (r.step <= max_step) rows_.push_back(r);
  }
}

Status LossLog::save(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << "step,loss,lr,grad_norm,tokens_per_s,elapsed_s\n";
    char b[256];
    for (const LossRow& r : rows_) {
      std::snprintf(b, sizeof b, "%lld,%.6f,%.6e,%.4f,%.1f,%.2f\n", (long long)r.step, r.loss, r.lr, r.grad_norm,
                    r.tokens_per_s, r.elapsed_s);
      out << b;
    }
    if (!out) return io_error("cannot write " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return io_error("renaming " + tmp + ": " + ec.message());
  return Status::Ok();
}

Status write_loss_svg(const LossLog& log, const std::string& path, const std::string& title) {
  const auto& rows = log.rows();
  const double W = 640, H = 400, ml = 60, mr = 20, mt = 40, mb = 50;
  double lo = 1e30, hi = -1e30;
  int64_t smax = 1;
  for (const LossRow& r : rows) {
    lo = std::min(lo, r.loss);
    hi = std::max(hi, r.loss);
    smax = std::max(smax, r.step);
  }
  if (rows.empty()) { lo = 0; hi = 1; }
  lo = std::floor(lo);
  hi = std::ceil(hi);
  if (hi <= lo) hi = lo + 1;
  auto X = [&](double s) { return ml + (W - ml - mr) * s / (double)smax; };
  auto Y = [&](double l) { return mt + (H - mt - mb) * (hi - l) / (hi - lo); };
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o << "<text x=\"" << W / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" << title
    << ": training loss (cross-entropy, nats/token)</text>\n";
  o << "<line x1=\"" << ml << "\" y1=\"" << H - mb << "\" x2=\"" << W - mr << "\" y2=\"" << H - mb << "\" stroke=\"black\"/>\n";
  o << "<line x1=\"" << ml << "\" y1=\"" << mt << "\" x2=\"" << ml << "\" y2=\"" << H - mb << "\" stroke=\"black\"/>\n";
  const int yt = (int)(hi - lo);
  for (int i = 0; i <= yt; i += std::max(1, yt / 8)) {
    const double l = lo + i;
    o << "<line x1=\"" << ml - 4 << "\" y1=\"" << Y(l) << "\" x2=\"" << W - mr << "\" y2=\"" << Y(l)
      << "\" stroke=\"#ddd\"/><text x=\"" << ml - 8 << "\" y=\"" << Y(l) + 4 << "\" text-anchor=\"end\">" << l << "</text>\n";
  }
  for (int i = 0; i <= 5; ++i) {
    const int64_t s = smax * i / 5;
    o << "<text x=\"" << X((double)s) << "\" y=\"" << H - mb + 18 << "\" text-anchor=\"middle\">" << s << "</text>\n";
  }
  o << "<text x=\"" << (ml + W - mr) / 2 << "\" y=\"" << H - 12 << "\" text-anchor=\"middle\">step</text>\n";
  auto poly = [&](const std::vector<std::pair<double, double>>& pts, const char* color, double width) {
    o << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"" << width << "\" points=\"";
    for (const auto& [s, l] : pts) o << X(s) << "," << Y(l) << " ";
    o << "\"/>\n";
  };
  std::vector<std::pair<double, double>> raw, avg;
  double sum = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    raw.push_back({(double)rows[i].step, rows[i].loss});
    sum += rows[i].loss;
    if (i >= 20) sum -= rows[i - 20].loss;
    avg.push_back({(double)rows[i].step, sum / (double)std::min<size_t>(i + 1, 20)});
  }
  poly(raw, "#bbb", 1);
  poly(avg, "#c0392b", 2);
  o << "</svg>\n";
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    f << o.str();
    if (!f) return io_error("cannot write " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return io_error("renaming " + tmp + ": " + ec.message());
  return Status::Ok();
}

}  // namespace modu::train
