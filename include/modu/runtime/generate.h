// Text generation: prefill a prompt, then sample token by token, streaming complete UTF-8 text and
// stopping at end-of-generation tokens, stop strings or the token limit.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "modu/core/status.h"
#include "modu/core/threadpool.h"
#include "modu/models/model.h"
#include "modu/runtime/json_constraint.h"
#include "modu/runtime/sampler.h"
#include "modu/tokenizer/tokenizer.h"

namespace modu {

class Drafter;

struct GenerateOptions {
  int n_predict = 128;             // maximum tokens to generate (< 0: until the context is full)
  SamplingParams sampling;
  std::vector<std::string> stop;   // generation ends before the first occurrence of any of these
  int n_batch = 512;               // prompt tokens per forward pass during prefill
  int seq = 0;                     // KV cache sequence to use
  // The first n_cached prompt tokens are already in the KV cache for `seq` (a conversation's
  // earlier turns); only the rest is prefilled. kv.seq_len(seq) must equal n_cached.
  int64_t n_cached = 0;
  // Structured output: the text is kept a prefix of JSON this constraint accepts, and generation
  // ends (StopReason::kEog) once the value is complete.
  std::shared_ptr<const JsonConstraint> json;
  // Control tokens (other than end-of-generation) appear in the text as they are written, e.g.
  // tool-call markers such as Mistral's [TOOL_CALLS] that a parser must see.
  bool render_special = false;
  // An end-of-generation token does not end the text (exactly n_predict tokens are generated, as
  // the server's ignore_eos does); ignored under a JSON constraint, which must end.
  bool ignore_eos = false;
  // Image embeddings spliced into the prompt (indices into `prompt`, whose ids there are
  // placeholders and may be negative). Each span is prefilled in one forward pass of its own.
  std::vector<EmbdSpan> embd;
  // Speculative decoding (speculative.h): after each token the drafter proposes up to draft_max
  // more, verified in one forward pass; greedy output is byte-identical to decoding without it,
  // sampled output has the same distribution. Off under a JSON constraint.
  Drafter* drafter = nullptr;
  int draft_max = 8;
};

enum class StopReason { kEog, kStopString, kLength, kContextFull, kCancelled };
const char* stop_reason_name(StopReason r);

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated ids (excluding the prompt)
  std::string text;             // the streamed text, exactly
  StopReason reason = StopReason::kLength;
  int n_prompt = 0;
  double prefill_seconds = 0;
  double decode_seconds = 0;
  int64_t drafted = 0, accepted = 0;  // speculative decoding: draft tokens proposed and kept
};

// Holds back text that might be the start of a stop string, so nothing past a stop is emitted.
class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  // Adds text; returns what is safe to emit. Sets *stopped when a stop string was found (the
  // returned text then ends right before it).
  std::string push(std::string_view text, bool* stopped);
  std::string flush();

 private:
  std::vector<std::string> stops_;
  std::string pending_;
};

// Runs prompt + generation on `seq` of `kv` (holding exactly opts.n_cached tokens). on_text gets
// each piece of output as it becomes final; returning false cancels.
Result<GenerateResult> generate(const Model& model, const Tokenizer& tok, KvCache& kv, ThreadPool& pool,
                                const std::vector<int32_t>& prompt, const GenerateOptions& opts,
                                const std::function<bool(std::string_view)>& on_text);

}  // namespace modu
