// The generation loop (prefill in batches, then one token per forward pass, or a token and its
// drafts when decoding speculatively) and stop-string matching.
#include "modu/runtime/generate.h"

#include "modu/runtime/speculative.h"

#include <chrono>
#include <optional>

namespace modu {

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::kEog: return "eog";
    case StopReason::kStopString: return "stop";
    case StopReason::kLength: return "length";
    case StopReason::kContextFull: return "context";
    case StopReason::kCancelled: return "cancelled";
  }
  return "?";
}

std::string StopMatcher::push(std::string_view text, bool* stopped) {
  *stopped = false;
  pending_.append(text);
  size_t cut = std::string::npos;
  for (const auto& s : stops_) {
    if (s.empty()) continue;
    size_t at = pending_.find(s);
    if (at != std::string::npos && at < cut) cut = at;
  }
  if (cut != std::string::npos) {
    *stopped = true;
    std::string out = pending_.substr(0, cut);
    pending_.clear();
    return out;
  }
  // Keep the longest suffix of pending_ that is a proper prefix of some stop string.
  size_t keep = 0;
  for (const auto& s : stops_) {
    for (size_t k = std::min(s.size() - (s.empty() ? 0 : 1), pending_.size()); k > keep; --k) {
      if (pending_.compare(pending_.size() - k, k, s, 0, k) == 0) {
        keep = k;
        break;
      }
    }
  }
  std::string out = pending_.substr(0, pending_.size() - keep);
  pending_.erase(0, pending_.size() - keep);
  return out;
}

std::string StopMatcher::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

Result<GenerateResult> generate(const Model& model, const Tokenizer& tok, KvCache& kv, ThreadPool& pool,
                                const std::vector<int32_t>& prompt, const GenerateOptions& opts,
                                const std::function<bool(std::string_view)>& on_text) {
  using clock = std::chrono::steady_clock;
  const ModelConfig& cfg = model.config();
  MODU_RETURN_IF_ERROR(opts.sampling.validate((int32_t)cfg.n_vocab));
  if (prompt.empty()) return invalid_argument("generate: the prompt has no tokens");
  if (opts.seq < 0 || opts.seq >= kv.n_seq()) return invalid_argument("generate: bad sequence id");
  if (opts.n_cached < 0 || opts.n_cached >= (int64_t)prompt.size())
    return invalid_argument("generate: n_cached must leave at least one prompt token to process");
  if (kv.seq_len(opts.seq) != opts.n_cached)
    return invalid_argument("generate: the KV sequence holds " + std::to_string(kv.seq_len(opts.seq)) +
                            " tokens, expected n_cached = " + std::to_string(opts.n_cached));
  if ((int64_t)prompt.size() >= kv.n_ctx())
    return out_of_range("the prompt has " + std::to_string(prompt.size()) + " tokens but the context holds " +
                        std::to_string(kv.n_ctx()) + "; use a larger --ctx or a shorter prompt");
  GenerateResult res;
  res.n_prompt = (int)prompt.size();
  Sampler sampler(opts.sampling, (int32_t)cfg.n_vocab);
  for (int32_t t : prompt)
    if (t >= 0) sampler.accept(t);  // image placeholders are not text
  for (size_t k = 0; k < opts.embd.size(); ++k) {
    const EmbdSpan& sp = opts.embd[k];
    if (sp.n <= 0 || sp.begin < 0 || sp.begin + sp.n > (int64_t)prompt.size() || sp.rows == nullptr ||
        (k > 0 && sp.begin < opts.embd[k - 1].begin + opts.embd[k - 1].n))
      return invalid_argument("generate: embedding spans must lie inside the prompt, in order, without overlap");
  }

  std::vector<float> logits;
  auto t0 = clock::now();
  const int n_batch = std::max(1, opts.n_batch);
  const int64_t n_embd = cfg.n_embd;
  size_t span = 0;  // the first span not yet behind b
  for (size_t b = (size_t)opts.n_cached; b < prompt.size();) {
    while (span < opts.embd.size() && opts.embd[span].begin + opts.embd[span].n <= (int64_t)b) ++span;
    std::vector<BatchToken> batch;
    size_t e;
    if (span < opts.embd.size() && opts.embd[span].begin <= (int64_t)b) {  // inside an image: the rest of it
      const EmbdSpan& sp = opts.embd[span];
      e = (size_t)(sp.begin + sp.n);
      for (size_t i = b; i < e; ++i) {
        BatchToken t{prompt[i], (int64_t)i, opts.seq, i + 1 == prompt.size()};
        place_in_spans(t, opts.embd, n_embd);
        batch.push_back(t);
      }
    } else {  // text up to n_batch tokens or the next image
      e = std::min(prompt.size(), b + n_batch);
      if (span < opts.embd.size()) e = std::min(e, (size_t)opts.embd[span].begin);
      for (size_t i = b; i < e; ++i) {
        BatchToken t{prompt[i], (int64_t)i, opts.seq, i + 1 == prompt.size()};
        place_in_spans(t, opts.embd, n_embd);  // M-RoPE positions after an image
        batch.push_back(t);
      }
    }
    MODU_RETURN_IF_ERROR(model.forward(batch, kv, pool, logits));
    b = e;
  }
  auto t1 = clock::now();
  res.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();

  StreamingDetokenizer detok(tok, opts.render_special, /*continuation=*/true);
  StopMatcher stops(opts.stop);
  int64_t pos = (int64_t)prompt.size();
  auto emit = [&](const std::string& s) -> bool {
    if (s.empty()) return true;
    res.text += s;
    return on_text ? on_text(s) : true;
  };
  std::optional<JsonConstraint> json;
  std::unique_ptr<TokenPieces> pieces;
  std::vector<float> scratch;
  if (opts.json) {
    json = *opts.json;
    pieces = std::make_unique<TokenPieces>(tok, opts.render_special);
  }
  Drafter* drafter = json ? nullptr : opts.drafter;
  std::vector<int32_t> history;  // what the drafter sees: the prompt and the output so far
  if (drafter) history = prompt;
  const bool greedy = opts.sampling.temperature <= 0.0f;
  const int64_t n_vocab = cfg.n_vocab;
  // Takes one token into the output; false when generation ends with it (res.reason set).
  auto take = [&](int32_t t) -> bool {
    sampler.accept(t);
    if (tok.is_eog(t) && (!opts.ignore_eos || json)) { res.reason = StopReason::kEog; return false; }
    if (json) json->accept(pieces->piece(t));
    res.tokens.push_back(t);
    if (drafter) history.push_back(t);
    bool stopped = false;
    if (!emit(stops.push(detok.push(t), &stopped))) { res.reason = StopReason::kCancelled; return false; }
    if (stopped) { res.reason = StopReason::kStopString; return false; }
    if (json && json->done()) { res.reason = StopReason::kEog; return false; }  // the value is complete
    return true;
  };
  int32_t forced = -1;  // the next token, already drawn (the replacement of a rejected draft)
  std::vector<BatchToken> batch;
  for (int n = 0;;) {
    if (opts.n_predict >= 0 && n >= opts.n_predict) { res.reason = StopReason::kLength; break; }
    if (pos >= kv.n_ctx()) { res.reason = StopReason::kContextFull; break; }
    const int32_t next = forced >= 0 ? forced
                         : json      ? sample_json(sampler, *json, *pieces, logits.data(), (int32_t)cfg.n_vocab, scratch)
                                     : sampler.sample(logits.data());
    forced = -1;
    if (next < 0) return invalid_argument("generate: no token can continue the JSON the schema requires");
    if (!take(next)) break;
    ++n;
    if ((opts.n_predict >= 0 && n >= opts.n_predict) || pos + 1 > kv.n_ctx()) continue;  // no need to decode
    std::vector<int32_t> drafts;
    if (drafter) {
      int64_t room = std::min<int64_t>(opts.draft_max, kv.n_ctx() - pos - 1);
      if (opts.n_predict >= 0) room = std::min<int64_t>(room, opts.n_predict - n);
      if (room > 0) {
        MODU_ASSIGN_OR_RETURN(drafts, drafter->propose(history, (int)room));
      }
    }
    batch.clear();
    batch.push_back({next, pos, opts.seq, true});
    for (size_t i = 0; i < drafts.size(); ++i) batch.push_back({drafts[i], pos + 1 + (int64_t)i, opts.seq, true});
    for (BatchToken& bt : batch) place_in_spans(bt, opts.embd, n_embd);  // M-RoPE: text continues after the images
    {
      DecodeKernelsScope exact;  // each token's logits exactly as one-token decoding computes them
      MODU_RETURN_IF_ERROR(model.forward(batch, kv, pool, logits));
    }
    ++pos;
    if (drafts.empty()) continue;
    // Verify: keep drafts while the target agrees; logits row j follows the j-th kept draft.
    res.drafted += (int64_t)drafts.size();
    size_t j = 0;
    bool ended = false;
    for (; j < drafts.size(); ++j) {
      std::vector<std::pair<int32_t, double>> dist = sampler.distribution(logits.data() + j * n_vocab);
      double p = 0;
      for (const auto& [t, q] : dist)
        if (t == drafts[j]) p = q;
      const bool keep = greedy ? dist.front().first == drafts[j] : sampler.uniform01() < p;
      if (!keep) {  // the replacement: the rest of the distribution (greedy: its argmax)
        std::erase_if(dist, [&](const auto& e) { return e.first == drafts[j]; });
        forced = greedy ? dist.front().first : sampler.draw(dist);
        break;
      }
      ++res.accepted;
      if (!take(drafts[j])) { ended = true; ++j; break; }
      ++n;
      ++pos;
    }
    if (ended) break;
    if (j < drafts.size()) kv.truncate(opts.seq, pos);  // forget the rejected drafts
    if (forced < 0) std::copy(logits.begin() + (long)(j * n_vocab), logits.begin() + (long)((j + 1) * n_vocab), logits.begin());
    logits.resize((size_t)n_vocab);
  }
  // The cache holds the prompt and the output but the last token (as without drafts).
  if (drafter && kv.seq_len(opts.seq) > (int64_t)(prompt.size() + res.tokens.size()))
    kv.truncate(opts.seq, (int64_t)(prompt.size() + res.tokens.size()));
  if (res.reason != StopReason::kStopString && res.reason != StopReason::kCancelled) {
    bool stopped = false;
    std::string tail = stops.push(detok.flush(), &stopped);
    if (!stopped) tail += stops.flush();
    else res.reason = StopReason::kStopString;
    emit(tail);
  }
  res.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  return res;
}

}  // namespace modu
