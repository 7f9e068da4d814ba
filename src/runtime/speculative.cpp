// Speculative decoding's drafters (speculative.h): prompt lookup and a draft model.
#include "modu/runtime/speculative.h"

#include <algorithm>

namespace modu {

Result<std::vector<int32_t>> NgramDrafter::propose(const std::vector<int32_t>& h, int max) {
  std::vector<int32_t> out;
  const int64_t L = (int64_t)h.size();
  if (max <= 0) return out;
  for (int n = std::min<int64_t>(n_max_, L - 1); n >= n_min_; --n) {
    const int32_t* key = h.data() + L - n;
    // The most recent earlier occurrence ending at e (e < L - 1: not the suffix itself).
    for (int64_t e = L - 2; e >= n - 1; --e) {
      if (h[e] != key[n - 1] || !std::equal(key, key + n, h.data() + e - n + 1)) continue;
      for (int64_t i = e + 1; i < L && (int)out.size() < max && h[i] >= 0; ++i) out.push_back(h[i]);  // (not an image's placeholders)
      return out;
    }
  }
  return out;
}

ModelDrafter::ModelDrafter(const Model& draft, ThreadPool& pool, int64_t n_ctx)
    : model_(draft), pool_(pool), kv_(draft.config(), 1, n_ctx, KvType::kF16) {}

Result<std::vector<int32_t>> ModelDrafter::propose(const std::vector<int32_t>& h, int max) {
  std::vector<int32_t> out;
  if (max <= 0 || h.empty()) return out;
  if ((int64_t)h.size() + max > kv_.n_ctx()) return out;  // no room: no drafts (the target goes on alone)
  for (int32_t t : h)
    if (t < 0) return out;  // an image placeholder: the draft model cannot see it
  // Keep the common prefix (at least one token is fed, for the logits).
  size_t common = 0;
  while (common < cached_.size() && common < h.size() && cached_[common] == h[common]) ++common;
  common = std::min(common, h.size() - 1);
  kv_.truncate(0, (int64_t)common);
  common = std::min<size_t>(common, (size_t)kv_.seq_len(0));
  cached_.resize(common);
  std::vector<float> logits;
  std::vector<BatchToken> batch;
  for (size_t i = common; i < h.size(); ++i) batch.push_back({h[i], (int64_t)i, 0, i + 1 == h.size()});
  const int64_t n_vocab = model_.config().n_vocab;
  for (size_t b = 0; b < batch.size(); b += 512) {
    std::vector<BatchToken> part(batch.begin() + (long)b, batch.begin() + (long)std::min(batch.size(), b + 512));
    MODU_RETURN_IF_ERROR(model_.forward(part, kv_, pool_, logits));
  }
  cached_ = h;
  for (int i = 0; i < max; ++i) {
    const int32_t next = (int32_t)(std::max_element(logits.begin(), logits.begin() + n_vocab) - logits.begin());
    out.push_back(next);
    if (i + 1 == max) break;
    MODU_RETURN_IF_ERROR(model_.forward({{next, (int64_t)cached_.size(), 0, true}}, kv_, pool_, logits));
    cached_.push_back(next);
  }
  return out;
}

Status check_draft_tokenizer(const Tokenizer& t, const Tokenizer& d) {
  if (t.n_vocab() != d.n_vocab())
    return invalid_argument("the draft model's vocabulary has " + std::to_string(d.n_vocab()) + " tokens, the model's " +
                            std::to_string(t.n_vocab()) + ": a draft model must use the same tokenizer");
  for (int32_t i = 0; i < t.n_vocab(); ++i)
    if (t.token_text(i) != d.token_text(i))
      return invalid_argument("the draft model's token " + std::to_string(i) + " is '" + d.token_text(i) + "', the model's '" +
                              t.token_text(i) + "': a draft model must use the same tokenizer");
  if (t.bos_id() != d.bos_id() || t.eos_id() != d.eos_id())
    return invalid_argument("the draft model's BOS/EOS tokens differ from the model's: a draft model must use the same tokenizer");
  return Status::Ok();
}

}  // namespace modu
