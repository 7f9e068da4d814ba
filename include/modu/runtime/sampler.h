// Sampler: turns logits into the next token through a fixed chain (logit bias, penalties, top-k,
// top-p, min-p, temperature, seeded draw). Same seed and inputs give the same tokens.
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "modu/core/status.h"

namespace modu {

struct SamplingParams {
  float temperature = 0.8f;     // <= 0: greedy (argmax after bias and penalties)
  int top_k = 40;               // <= 0: off
  float top_p = 0.95f;          // >= 1: off
  float min_p = 0.05f;          // <= 0: off
  float repeat_penalty = 1.0f;  // 1: off (divides positive logits, multiplies negative ones)
  int repeat_last_n = 64;       // how many recent tokens penalties look at (-1: all)
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  std::vector<std::pair<int32_t, float>> logit_bias;  // added to the logit; -inf bans a token
  uint64_t seed = 0xC0FFEE;
  // Text watermark (watermark.h): after bias and penalties the green tokens of the step (keyed by
  // the previous token) get +watermark_delta. Off for greedy decoding, where adding delta would
  // only flip near-ties and leave a weak, uneven signal.
  bool watermark = false;
  uint64_t watermark_k0 = 0, watermark_k1 = 0;
  float watermark_gamma = 0.25f, watermark_delta = 2.0f;

  // Checks ranges; the message names the field and the allowed range.
  Status validate(int32_t n_vocab) const;
};

struct TokenProb {
  int32_t token;
  float logprob;  // natural log of the probability after penalties and bias, before truncation
};

class Sampler {
 public:
  Sampler(const SamplingParams& params, int32_t n_vocab);

  // Chooses the next token from logits [n_vocab]. Does not record it (call accept()).
  int32_t sample(const float* logits);
  // The distribution sample() draws from for these logits: (token, probability) pairs summing to
  // 1, most likely first (greedy: the argmax alone). Records nothing. Speculative decoding
  // accepts a draft token with its probability here and, on rejection, draws the next token
  // from the rest (draw()), which keeps the output distribution exactly the sampler's.
  std::vector<std::pair<int32_t, double>> distribution(const float* logits);
  // Draws from (token, weight) pairs (weights need not sum to 1) with the seeded generator; -1 if empty.
  int32_t draw(const std::vector<std::pair<int32_t, double>>& dist);
  // A uniform number in [0, 1) from the seeded generator.
  double uniform01() { return uniform(); }
  // Records a token (prompt or generated) for the repetition penalties.
  void accept(int32_t token);
  void reset();
  // Log-probability of `token` and the `k` most likely tokens under the distribution of the
  // last sample() call (softmax of the adjusted logits at temperature 1).
  float last_logprob(int32_t token) const;
  std::vector<TokenProb> last_top(int k) const;

  const SamplingParams& params() const { return p_; }

 private:
  void adjust(const float* logits);
  size_t candidates(std::vector<double>* w, double* wz);
  double uniform();

  SamplingParams p_;
  int32_t n_vocab_;
  std::mt19937_64 rng_;
  std::vector<int32_t> history_;
  std::vector<float> adjusted_;  // logits after bias and penalties
  double log_z_ = 0;             // log-sum-exp of adjusted_
  std::vector<int32_t> idx_;
};

}  // namespace modu
