// Speculative decoding's drafters. A drafter proposes the next few tokens; generate() verifies
// them in one forward pass of the target model and keeps the longest prefix the target agrees
// with (greedy: the same argmax, so the text is byte-identical; sampling: each draft accepted
// with its probability under the sampler and a rejected one replaced by a draw from the rest,
// which leaves the output distribution exactly the sampler's).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "modu/core/status.h"
#include "modu/core/threadpool.h"
#include "modu/models/model.h"
#include "modu/tokenizer/tokenizer.h"

namespace modu {

class Drafter {
 public:
  virtual ~Drafter() = default;
  // Up to `max` tokens that may follow `history` (the prompt and the tokens generated so far).
  virtual Result<std::vector<int32_t>> propose(const std::vector<int32_t>& history, int max) = 0;
};

// Prompt lookup: the text's last n tokens (n from n_max down to n_min) are searched for earlier in
// the history, most recent occurrence first, and what followed them there is proposed. Free, and
// strong wherever the output repeats its input: code edits, quotes, extraction, agents that see
// the same context again.
class NgramDrafter : public Drafter {
 public:
  explicit NgramDrafter(int n_min = 2, int n_max = 4) : n_min_(n_min), n_max_(n_max) {}
  Result<std::vector<int32_t>> propose(const std::vector<int32_t>& history, int max) override;

 private:
  int n_min_, n_max_;
};

// A small model with the same tokenizer proposes greedily; its KV cache follows the history
// (the common prefix is kept between calls, so each call feeds only what is new).
class ModelDrafter : public Drafter {
 public:
  ModelDrafter(const Model& draft, ThreadPool& pool, int64_t n_ctx);
  Result<std::vector<int32_t>> propose(const std::vector<int32_t>& history, int max) override;

 private:
  const Model& model_;
  ThreadPool& pool_;
  KvCache kv_;
  std::vector<int32_t> cached_;  // tokens whose KV is in kv_
};

// A draft model must share the target's vocabulary: same size, same text for every id, same
// special tokens. The error names the first difference.
Status check_draft_tokenizer(const Tokenizer& target, const Tokenizer& draft);

}  // namespace modu
