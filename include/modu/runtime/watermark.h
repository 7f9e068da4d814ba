// Text watermark: a keyed green list (Kirchenbauer et al. 2023). For each position the previous
// token and a secret key pick a "green" fraction gamma of the vocabulary; sampling adds delta to
// green logits, and a detector that knows the key (no model weights needed) counts green tokens
// and reports a one-sided z-score. Green membership is SipHash-2-4(key, prev, token) < gamma * 2^64,
// so it costs one hash per vocabulary entry and needs no permutation tables.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace modu {

struct WatermarkKey {
  uint64_t k0 = 0, k1 = 0;
  std::string id;  // public id of the key ("wm-" + 8 hex digits), safe to publish with outputs
  // The key derived from a secret passphrase (any length).
  static WatermarkKey from_secret(std::string_view secret);
};

uint64_t siphash24(uint64_t k0, uint64_t k1, const void* data, size_t len);

// Whether `token` is green after `prev` under the key.
bool watermark_green(const WatermarkKey& key, float gamma, int32_t prev, int32_t token);

struct WatermarkDetection {
  int64_t scored = 0;  // distinct (previous token, token) pairs counted
  int64_t green = 0;
  double z = 0;        // (green - gamma * scored) / sqrt(scored * gamma * (1 - gamma))
  double p_value = 1;  // one-sided: P(Z >= z) under "not watermarked"
  bool watermarked = false;  // z >= threshold (and at least min_tokens scored)
};

// Scores tokens[1..]: each position's (previous token, token) pair counts once, so repeated
// n-grams (copied text, loops) do not inflate the score.
WatermarkDetection detect_watermark(const std::vector<int32_t>& tokens, const WatermarkKey& key, float gamma,
                                    double z_threshold = 4.0, int64_t min_tokens = 16);

}  // namespace modu
