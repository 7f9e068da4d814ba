// Sampler implementation. Candidates are narrowed in the llama.cpp default order (penalties,
// top-k, top-p, min-p, temperature) so the same settings mean the same thing to users.
#include "modu/runtime/sampler.h"
#include "modu/runtime/watermark.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>

namespace modu {

Status SamplingParams::validate(int32_t n_vocab) const {
  auto bad = [](const std::string& m) { return invalid_argument(m); };
  if (!(temperature >= 0) || temperature > 100) return bad("temperature must be in [0, 100]");
  if (!(top_p > 0 && top_p <= 1.0f)) return bad("top_p must be in (0, 1]");
  if (!(min_p >= 0 && min_p <= 1)) return bad("min_p must be in [0, 1]");
  if (!(repeat_penalty > 0 && repeat_penalty <= 10)) return bad("repetition penalty must be in (0, 10]");
  if (watermark && !(watermark_gamma > 0 && watermark_gamma < 1)) return bad("watermark gamma must be in (0, 1)");
  if (watermark && !(watermark_delta >= 0 && watermark_delta <= 20)) return bad("watermark delta must be in [0, 20]");
  if (!(frequency_penalty >= -2 && frequency_penalty <= 2)) return bad("frequency_penalty must be in [-2, 2]");
  if (!(presence_penalty >= -2 && presence_penalty <= 2)) return bad("presence_penalty must be in [-2, 2]");
  for (const auto& [tok, b] : logit_bias) {
    if (tok < 0 || tok >= n_vocab)
      return bad("logit_bias token " + std::to_string(tok) + " is outside the vocabulary [0, " + std::to_string(n_vocab) + ")");
    if (std::isnan(b)) return bad("logit_bias value for token " + std::to_string(tok) + " is NaN");
  }
  return Status::Ok();
}

Sampler::Sampler(const SamplingParams& params, int32_t n_vocab) : p_(params), n_vocab_(n_vocab), rng_(params.seed) {
  adjusted_.resize(n_vocab);
  idx_.resize(n_vocab);
}

void Sampler::reset() {
  history_.clear();
  rng_.seed(p_.seed);
}

void Sampler::accept(int32_t token) { history_.push_back(token); }

double Sampler::uniform() {
  // 53 random bits -> [0, 1): identical on every platform, unlike std::uniform_real_distribution.
  return (double)(rng_() >> 11) * (1.0 / 9007199254740992.0);
}

void Sampler::adjust(const float* logits) {
  std::copy(logits, logits + n_vocab_, adjusted_.begin());
  for (const auto& [tok, b] : p_.logit_bias) adjusted_[tok] += b;
  const bool penal = p_.repeat_penalty != 1.0f || p_.frequency_penalty != 0.0f || p_.presence_penalty != 0.0f;
  if (penal && !history_.empty()) {
    size_t n = p_.repeat_last_n < 0 ? history_.size() : std::min(history_.size(), (size_t)p_.repeat_last_n);
    std::unordered_map<int32_t, int> counts;
    for (size_t i = history_.size() - n; i < history_.size(); ++i) counts[history_[i]]++;
    for (const auto& [tok, cnt] : counts) {
      if (tok < 0 || tok >= n_vocab_) continue;
      float& l = adjusted_[tok];
      if (p_.repeat_penalty != 1.0f) l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
      l -= (float)cnt * p_.frequency_penalty + p_.presence_penalty;
    }
  }
  if (p_.watermark && p_.temperature > 0 && !history_.empty()) {
    WatermarkKey key;
    key.k0 = p_.watermark_k0;
    key.k1 = p_.watermark_k1;
    const int32_t prev = history_.back();
    for (int32_t v = 0; v < n_vocab_; ++v)
      if (watermark_green(key, p_.watermark_gamma, prev, v)) adjusted_[v] += p_.watermark_delta;
  }
  float mx = -INFINITY;
  for (float v : adjusted_) mx = std::max(mx, v);
  double z = 0;
  if (std::isfinite(mx))
    for (float v : adjusted_) z += std::exp((double)v - mx);
  log_z_ = std::isfinite(mx) ? mx + std::log(z) : 0.0;
}

// The candidates after top-k / top-p / min-p and their weights exp((a - max) / T); n = 0 when
// everything is banned (then idx_[0] is the answer). Greedy is handled by the callers.
size_t Sampler::candidates(std::vector<double>* w, double* wz) {
  const std::vector<float>& a = adjusted_;
  std::iota(idx_.begin(), idx_.end(), 0);
  auto by_logit = [&](int32_t x, int32_t y) { return a[x] > a[y] || (a[x] == a[y] && x < y); };
  size_t n = idx_.size();
  if (p_.top_k > 0 && (size_t)p_.top_k < n) {
    std::partial_sort(idx_.begin(), idx_.begin() + p_.top_k, idx_.end(), by_logit);
    n = p_.top_k;
  } else {
    std::sort(idx_.begin(), idx_.end(), by_logit);
  }
  // Probabilities of the remaining candidates (temperature 1, for top-p / min-p).
  const double mx = a[idx_[0]];
  if (!std::isfinite(mx)) return 0;  // everything banned: nothing better to do
  std::vector<double> pr(n);
  double z = 0;
  for (size_t i = 0; i < n; ++i) z += pr[i] = std::exp((double)a[idx_[i]] - mx);
  if (p_.top_p < 1.0f) {
    double cum = 0;
    for (size_t i = 0; i < n; ++i) {
      cum += pr[i] / z;
      if (cum >= p_.top_p) { n = i + 1; break; }
    }
  }
  if (p_.min_p > 0.0f) {
    const double thresh = p_.min_p * pr[0];  // relative to the most likely candidate
    size_t keep = 1;
    while (keep < n && pr[keep] >= thresh) ++keep;
    n = keep;
  }
  // Temperature.
  w->resize(n);
  *wz = 0;
  for (size_t i = 0; i < n; ++i) *wz += (*w)[i] = std::exp(((double)a[idx_[i]] - mx) / p_.temperature);
  return n;
}

int32_t Sampler::sample(const float* logits) {
  adjust(logits);
  const std::vector<float>& a = adjusted_;
  // Greedy: first index of the maximum (deterministic tie-break).
  if (p_.temperature <= 0.0f) {
    return (int32_t)(std::max_element(a.begin(), a.end()) - a.begin());
  }
  std::vector<double> w;
  double wz = 0;
  const size_t n = candidates(&w, &wz);
  if (n == 0) return idx_[0];
  double r = uniform() * wz;
  for (size_t i = 0; i < n; ++i) {
    r -= w[i];
    if (r < 0) return idx_[i];
  }
  return idx_[n - 1];
}

std::vector<std::pair<int32_t, double>> Sampler::distribution(const float* logits) {
  adjust(logits);
  const std::vector<float>& a = adjusted_;
  if (p_.temperature <= 0.0f) return {{(int32_t)(std::max_element(a.begin(), a.end()) - a.begin()), 1.0}};
  std::vector<double> w;
  double wz = 0;
  const size_t n = candidates(&w, &wz);
  if (n == 0) return {{idx_[0], 1.0}};
  std::vector<std::pair<int32_t, double>> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = {idx_[i], w[i] / wz};
  return out;
}

int32_t Sampler::draw(const std::vector<std::pair<int32_t, double>>& dist) {
  double z = 0;
  for (const auto& [t, p] : dist) z += p;
  if (dist.empty()) return -1;
  double r = uniform() * z;
  for (const auto& [t, p] : dist) {
    r -= p;
    if (r < 0) return t;
  }
  return dist.back().first;
}

float Sampler::last_logprob(int32_t token) const {
  if (token < 0 || token >= n_vocab_) return -INFINITY;
  return (float)((double)adjusted_[token] - log_z_);
}

std::vector<TokenProb> Sampler::last_top(int k) const {
  k = std::max(0, std::min(k, n_vocab_));
  std::vector<int32_t> ids(n_vocab_);
  std::iota(ids.begin(), ids.end(), 0);
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [&](int32_t x, int32_t y) {
    return adjusted_[x] > adjusted_[y] || (adjusted_[x] == adjusted_[y] && x < y);
  });
  std::vector<TokenProb> out;
  for (int i = 0; i < k; ++i) out.push_back({ids[i], last_logprob(ids[i])});
  return out;
}

}  // namespace modu
