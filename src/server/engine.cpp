// The continuous-batching engine: admission (fair between tenants), prefix reuse, chunked prefill,
// one batched forward pass per step, sampling and streaming of each slot's output.
#include "modu/server/engine.h"

#include "modu/runtime/speculative.h"

#include <algorithm>
#include <cmath>
#include <future>
#include <map>
#include <numeric>

#include "modu/runtime/generate.h"

namespace modu::server {

using Clock = std::chrono::steady_clock;

const char* finish_name(Finish f) {
  switch (f) {
    case Finish::kStop: return "stop";
    case Finish::kLength: return "length";
    case Finish::kCancelled: return "cancelled";
    case Finish::kError: return "error";
    case Finish::kNone: break;
  }
  return "none";
}

bool Stream::wait(std::vector<Delta>* out, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (pending_.empty() && !closed_) cv_.wait_for(lock, timeout, [&] { return !pending_.empty() || closed_; });
  while (!pending_.empty()) {
    out->push_back(std::move(pending_.front()));
    pending_.pop_front();
  }
  return closed_;
}

void Stream::set_client_probe(std::function<bool()> alive) {
  std::lock_guard<std::mutex> lock(probe_mu_);
  probe_ = std::move(alive);
}

void Stream::clear_client_probe() {
  std::lock_guard<std::mutex> lock(probe_mu_);
  probe_ = nullptr;
}

bool Stream::client_gone() {
  if (cancelled()) return true;
  std::lock_guard<std::mutex> lock(probe_mu_);
  if (!probe_ || probe_()) return false;
  cancel();
  return true;
}

void Stream::push(Delta d) {
  if (d.text.empty() && d.tokens.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back(std::move(d));
  }
  cv_.notify_all();
}

void Stream::close(Finish f, std::string error) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    finish_ = f;
    error_ = std::move(error);
    closed_ = true;
  }
  cv_.notify_all();
}

struct Engine::Slot {
  GenJob job;
  std::shared_ptr<Stream> st;
  int seq = -1;
  size_t n_past = 0;          // prompt tokens in the cache
  int64_t n_gen = 0;
  bool prefilling = true;
  int32_t last = -1;          // sampled token not yet fed to the model
  std::vector<int32_t> drafts;  // speculative drafts fed after `last` in this step
  std::unique_ptr<ModelDrafter> drafter;  // lent from idle_drafters_ while the slot runs (draft model)
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<StreamingDetokenizer> detok;
  std::unique_ptr<StopMatcher> stops;
  std::optional<JsonConstraint> json;  // this request's structured-output state
  Clock::time_point t_last;
  bool done = false;
};

struct Engine::EmbedJob {
  std::vector<std::vector<int32_t>> inputs;
  Pooling pooling = Pooling::kMean;
  size_t input = 0, pos = 0;  // progress
  std::vector<double> acc;
  int64_t acc_n = 0;
  std::vector<std::vector<float>> out;
  std::promise<Result<std::vector<std::vector<float>>>> done;
};

Engine::Engine(const Model& model, const Tokenizer& tok, EngineOptions opts, Metrics* metrics)
    : model_(model), tok_(tok), opts_(opts), metrics_(metrics) {
  opts_.n_parallel = std::max(1, opts_.n_parallel);
  opts_.n_batch = std::max(1, opts_.n_batch);
  if (opts_.n_cache_seqs < 0) opts_.n_cache_seqs = opts_.prefix_cache ? 4 * opts_.n_parallel : 0;
  if (!opts_.prefix_cache) opts_.n_cache_seqs = 0;
  n_seq_ = opts_.n_parallel + opts_.n_cache_seqs + 1;
  embed_seq_ = n_seq_ - 1;
  const int64_t n_blocks =
      opts_.cache_bytes > 0
          ? std::max<int64_t>(1, (int64_t)(opts_.cache_bytes / KvCache::block_bytes(model.config(), opts_.n_ctx, opts_.kv_type)))
          : (int64_t)(opts_.n_parallel * (opts_.prefix_cache ? 2 : 1) + 1) * blocks_for(opts_.n_ctx);
  kv_ = std::make_unique<KvCache>(model.config(), n_seq_, opts_.n_ctx, opts_.kv_type, n_blocks);
  kv_free_ = kv_->free_blocks();
  pool_ = std::make_unique<ThreadPool>(opts_.n_threads);
  seqs_.resize(n_seq_);
  seqs_[embed_seq_].busy = true;  // reserved for embeddings, never cached
  thread_ = std::thread([this] { loop(); });
}

Engine::~Engine() { stop(); }

Engine::Submit Engine::submit(GenJob job, std::shared_ptr<Stream>* stream) {
  auto st = std::make_shared<Stream>();
  st->n_prompt_ = (int64_t)job.prompt.size();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return Submit::kStopped;
    const size_t free_slots = (size_t)std::max<int64_t>(0, opts_.n_parallel - n_active_);
    if (queue_.size() >= opts_.max_queue + free_slots) return Submit::kQueueFull;
    if (blocks_for(job_end(job)) + 1 > kv_->n_blocks()) return Submit::kTooLarge;
    queue_.push_back({std::move(job), st});
  }
  cv_.notify_all();
  *stream = std::move(st);
  return Submit::kOk;
}

Status Engine::run_between_steps(std::function<Status()> fn) {
  auto c = std::make_shared<Control>();
  c->fn = std::move(fn);
  auto fut = c->done.get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return resource_exhausted("the server is shutting down");
    control_queue_.push_back(c);
  }
  cv_.notify_all();
  return fut.get();
}

int Engine::jobs_using_lora(uint32_t bits) const {
  int n = 0;
  for (const auto& s : active_) n += (s->job.lora & bits) != 0;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& q : queue_) n += (q.job.lora & bits) != 0;
  return n;
}

void Engine::retire_lora_slot(int slot) {
  const uint32_t bit = 1u << slot;
  for (SeqInfo& s : seqs_)
    if (!s.busy && (s.lora & bit)) {
      s.tokens.clear();  // the next take_sequence starts it from position 0
      s.lora = 0;
    }
  std::lock_guard<std::mutex> lock(mu_);
  lora_freed_at_[(size_t)slot] = ++lora_epoch_;
}

Result<std::vector<std::vector<float>>> Engine::embed(const std::vector<std::vector<int32_t>>& inputs, Pooling pooling) {
  for (const auto& in : inputs) {
    if (in.empty()) return invalid_argument("an embedding input has no tokens");
    if ((int64_t)in.size() > opts_.n_ctx)
      return out_of_range("an embedding input has " + std::to_string(in.size()) + " tokens; the context holds " +
                          std::to_string(opts_.n_ctx));
  }
  auto job = std::make_shared<EmbedJob>();
  job->inputs = inputs;
  job->pooling = pooling == Pooling::kNone ? Pooling::kMean : pooling;
  auto fut = job->done.get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return resource_exhausted("the server is shutting down");
    embed_queue_.push_back(job);
  }
  cv_.notify_all();
  return fut.get();
}

void Engine::cancel_all(const std::string& reason) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancel_reason_ = reason;
    ++cancel_epoch_;
  }
  cv_.notify_all();
}

void Engine::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    if (cancel_reason_.empty()) cancel_reason_ = "the server is shutting down";
    ++cancel_epoch_;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Engine::idle() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.empty() && n_active_ == 0 && embed_queue_.empty();
}

Metrics::Gauges Engine::gauges() const {
  std::lock_guard<std::mutex> lock(mu_);
  Metrics::Gauges g;
  g.queue_depth = (int64_t)queue_.size();
  g.active_slots = n_active_;
  g.slots = opts_.n_parallel;
  g.kv_used_tokens = (kv_->n_blocks() - kv_free_) * KvCache::kBlock;
  g.kv_capacity_tokens = kv_->n_blocks() * KvCache::kBlock;
  g.kv_blocks = kv_->n_blocks();
  g.kv_free_blocks = kv_free_;
  g.kv_evictions = evictions_;
  g.kv_memory_waits = memory_waits_;
  g.kv_sequences = n_seq_;
  g.cached_sequences = cached_seqs_;
  g.decode_steps = steps_;
  g.drafts_proposed = drafts_proposed_;
  g.drafts_accepted = drafts_accepted_;
  return g;
}

int64_t Engine::blocks_for(int64_t positions) { return (positions + KvCache::kBlock - 1) / KvCache::kBlock; }

int64_t Engine::job_end(const GenJob& job) const {
  return std::min<int64_t>(opts_.n_ctx, (int64_t)job.prompt.size() + std::max<int64_t>(0, job.max_tokens) + opts_.draft_max);
}

// What running requests may still take: the blocks up to their last possible position that they
// do not hold yet, plus one each for a shared block a draft rollback may write into again.
int64_t Engine::committed_blocks() const {
  int64_t n = 0;
  for (const auto& s : active_)
    if (!s->done) n += kv_->blocks_needed(s->seq, job_end(s->job)) + 1;
  return n;
}

bool Engine::make_room(int64_t want, int keep) {
  while (kv_->free_blocks() < want) {
    int victim = -1;
    for (int s = 0; s < n_seq_; ++s) {
      if (seqs_[s].busy || s == keep || kv_->seq_blocks(s) == 0) continue;
      if (victim < 0 || seqs_[s].last_use < seqs_[victim].last_use) victim = s;
    }
    if (victim < 0) return false;
    kv_->truncate(victim, 0);
    seqs_[victim].tokens.clear();
    ++evictions_;
  }
  return true;
}

// Picks a KV sequence for a prompt: the idle sequence whose whole content the prompt extends, or
// an empty (else the least recently used) idle one, into which the longest prefix found anywhere
// is shared (KvCache::copy_prefix: whole blocks by reference, the tail copied).
int Engine::take_sequence(const std::vector<int32_t>& prompt, uint32_t lora, bool allow_reuse, int64_t* reused) {
  int best = -1;
  size_t best_len = 0;
  if (allow_reuse && opts_.prefix_cache) {
    const size_t cap = prompt.size() - 1;  // the last prompt token is always computed (its logits)
    for (int s = 0; s < n_seq_; ++s) {
      if (s == embed_seq_ || seqs_[s].lora != lora) continue;  // KV under other adapters is not this prompt's
      const auto& t = seqs_[s].tokens;
      size_t l = 0;
      const size_t m = std::min(cap, t.size());
      while (l < m && t[l] == prompt[l]) ++l;
      if (l > best_len || (l == best_len && l > 0 && best >= 0 && seqs_[best].busy && !seqs_[s].busy)) {
        best = s;
        best_len = l;
      }
    }
  }
  int target = -1;
  if (best >= 0 && !seqs_[best].busy && best_len == seqs_[best].tokens.size()) {
    target = best;  // the prompt extends it: nothing cached is lost
  } else {
    // An idle sequence holding nothing, else the least recently used one; the prefix is shared
    // into it by reference (paged cache), so the sequence it came from stays cached as it was.
    for (int s = 0; s < n_seq_; ++s) {
      if (seqs_[s].busy) continue;
      const bool empty = seqs_[s].tokens.empty();
      if (target < 0 || (empty && !seqs_[target].tokens.empty()) ||
          (empty == seqs_[target].tokens.empty() && seqs_[s].last_use < seqs_[target].last_use))
        target = s;
    }
    MODU_CHECK_MSG(target >= 0, "no idle KV sequence although a slot is free");
    if (best >= 0 && best != target && best_len > 0) {
      kv_->copy_prefix(best, target, (int64_t)best_len);
      seqs_[target].tokens.assign(seqs_[best].tokens.begin(), seqs_[best].tokens.begin() + (long)best_len);
    }
  }
  // Sliding-window layers may not be able to go back to best_len (the window is gone): the cache
  // then clears the sequence, so what is reused is whatever it kept.
  kv_->truncate(target, best >= 0 ? (int64_t)best_len : 0);
  const int64_t kept = kv_->seq_len(target);
  MODU_CHECK(kept <= (int64_t)best_len);
  seqs_[target].tokens.resize((size_t)kept);
  seqs_[target].lora = lora;
  seqs_[target].busy = true;
  seqs_[target].last_use = ++tick_;
  *reused = kept;
  return target;
}

// Moves queued requests into free slots. Fairness: the next slot goes to the tenant holding the
// fewest slots; ties go to the tenant admitted least recently (round robin), each tenant's requests
// in arrival order, within each tenant's own parallel cap.
void Engine::admit_locked() {
  // Drop requests whose clients left while queued.
  for (auto it = queue_.begin(); it != queue_.end();) {
    bool stale = false;  // an adapter it selected was unloaded after it was looked up
    for (int b = 0; b < 32 && !stale; ++b)
      stale = ((it->job.lora >> b) & 1u) && lora_freed_at_[(size_t)b] > it->job.lora_epoch;
    if (stale) {
      it->st->close(Finish::kError, "a LoRA adapter this request selected was unloaded before it started; retry");
      it = queue_.erase(it);
    } else if (it->st->client_gone()) {
      it->st->close(Finish::kCancelled, "client disconnected");
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
  while ((int64_t)active_.size() < opts_.n_parallel && !queue_.empty()) {
    std::map<std::string, int> held;
    for (const auto& s : active_) ++held[s->job.tenant];
    int pick = -1, pick_held = 0;
    uint64_t pick_last = 0;
    for (size_t i = 0; i < queue_.size(); ++i) {
      const GenJob& j = queue_[i].job;
      const int h = held.count(j.tenant) ? held[j.tenant] : 0;
      if (j.tenant_max_parallel > 0 && h >= j.tenant_max_parallel) continue;
      auto la = last_admit_.find(j.tenant);
      const uint64_t last = la == last_admit_.end() ? 0 : la->second;
      if (pick < 0 || h < pick_held || (h == pick_held && last < pick_last)) {
        pick = (int)i;
        pick_held = h;
        pick_last = last;
      }
    }
    if (pick < 0) break;
    const uint64_t prev_admit = last_admit_[queue_[pick].job.tenant];
    last_admit_[queue_[pick].job.tenant] = ++admit_tick_;
    Queued q = std::move(queue_[pick]);
    queue_.erase(queue_.begin() + pick);
    auto slot = std::make_unique<Slot>();
    slot->job = std::move(q.job);
    slot->st = std::move(q.st);
    int64_t reused = 0;
    slot->seq = take_sequence(slot->job.prompt, slot->job.lora, !slot->job.prompt_logprobs, &reused);
    // Memory: admitted only when every block it may still need is free (evicting cached
    // prefixes for it), so a running request never fails for memory; otherwise it waits, first
    // in line, until running requests finish and give blocks back.
    const int64_t need = kv_->blocks_needed(slot->seq, job_end(slot->job)) + 1;
    if (!make_room(committed_blocks() + need, slot->seq)) {
      seqs_[slot->seq].busy = false;  // what it reused stays cached
      if (active_.empty()) {  // nothing will give blocks back (embeddings hold the rest): refuse
        slot->st->close(Finish::kError, "KV cache full: the request needs " + std::to_string(need) + " blocks of " +
                                            std::to_string(KvCache::kBlock) + " positions and only " +
                                            std::to_string(kv_->free_blocks()) + " can be freed; retry later");
        continue;
      }
      last_admit_[slot->job.tenant] = prev_admit;
      queue_.insert(queue_.begin() + pick, Queued{std::move(slot->job), std::move(slot->st)});
      ++memory_waits_;
      break;
    }
    slot->n_past = (size_t)reused;
    slot->st->n_cached_ = reused;
    slot->sampler = std::make_unique<Sampler>(slot->job.sampling, (int32_t)model_.config().n_vocab);
    for (int32_t t : slot->job.prompt)
      if (t >= 0) slot->sampler->accept(t);  // image placeholders are not text
    slot->detok = std::make_unique<StreamingDetokenizer>(tok_, slot->job.render_special, /*continuation=*/true);
    slot->stops = std::make_unique<StopMatcher>(slot->job.stop);
    if (slot->job.json) slot->json = *slot->job.json;
    slot->st->started_.store(true);
    if (metrics_) metrics_->queue_wait().observe(std::chrono::duration<double>(Clock::now() - slot->st->arrival_).count());
    active_.push_back(std::move(slot));
  }
  n_active_ = (int64_t)active_.size();
}

void Engine::end_slot(Slot& s, Finish f, const std::string& error) {
  if (s.done) return;
  s.done = true;
  if (f == Finish::kStop || f == Finish::kLength) {
    bool stopped = false;
    std::string tail = s.stops->push(s.detok->flush(), &stopped);
    if (!stopped) tail += s.stops->flush();
    if (!tail.empty()) s.st->push({std::move(tail), {}});
  }
  s.st->n_completion_ = s.n_gen;
  if (metrics_) metrics_->add_tokens((int64_t)s.job.prompt.size(), s.n_gen, s.st->n_cached_);
  s.st->close(f, error);
}

// Structured output (see sample_json); -1 if no token can continue the value.
int32_t Engine::sample_constrained(Slot& s, const float* logits) {
  const int pi = s.job.render_special ? 1 : 0;
  if (!pieces_[pi]) pieces_[pi] = std::make_unique<TokenPieces>(tok_, s.job.render_special);
  return sample_json(*s.sampler, *s.json, *pieces_[pi], logits, (int32_t)model_.config().n_vocab, masked_);
}

void Engine::sample_slot(Slot& s, const float* logits) {
  if (s.n_gen >= s.job.max_tokens) return end_slot(s, Finish::kLength);
  const int32_t tok = s.json ? sample_constrained(s, logits) : s.sampler->sample(logits);
  if (tok < 0) return end_slot(s, Finish::kError, "no token can continue the JSON the response_format requires");
  take_token(s, tok);
}

// Verifies a slot's drafts against the step's rows for it (rows[0] follows `last`, rows[j] the
// j-th draft): a draft is kept while the sampler agrees (greedy: the same argmax; sampling:
// accepted with its probability), a rejection is replaced by a draw from the rest, and when all
// are kept the last row is sampled as usual. Returns how many drafts were kept.
size_t Engine::verify_slot(Slot& s, const float* rows, int32_t n_vocab) {
  const bool greedy = s.job.sampling.temperature <= 0.0f;
  size_t j = 0;
  for (; j < s.drafts.size(); ++j) {
    if (s.done) return j;
    if (s.n_gen >= s.job.max_tokens) {
      end_slot(s, Finish::kLength);
      return j;
    }
    auto dist = s.sampler->distribution(rows + j * (size_t)n_vocab);
    double p = 0;
    for (const auto& [t, q] : dist)
      if (t == s.drafts[j]) p = q;
    const bool keep = greedy ? dist.front().first == s.drafts[j] : s.sampler->uniform01() < p;
    if (!keep) {
      std::erase_if(dist, [&](const auto& e) { return e.first == s.drafts[j]; });
      const int32_t r = dist.empty() ? s.sampler->sample(rows + j * (size_t)n_vocab) : greedy ? dist.front().first : s.sampler->draw(dist);
      take_token(s, r);
      return j;
    }
    ++drafts_accepted_;
    take_token(s, s.drafts[j]);
    if (!s.done) s.last = -1;  // (the kept draft is in the cache already; the next token comes from its row)
  }
  if (!s.done) sample_slot(s, rows + j * (size_t)n_vocab);
  return j;
}

// One chosen token into the slot's output (the sampler records it).
void Engine::take_token(Slot& s, int32_t tok) {
  const auto now = Clock::now();
  s.sampler->accept(tok);
  TokenInfo info;
  info.id = tok;
  if (s.job.top_logprobs >= 0) {
    info.logprob = s.sampler->last_logprob(tok);
    info.top = s.sampler->last_top(s.job.top_logprobs);
  }
  if (metrics_) {
    if (s.n_gen == 0) metrics_->ttft().observe(std::chrono::duration<double>(now - s.st->arrival_).count());
    else metrics_->per_token().observe(std::chrono::duration<double>(now - s.t_last).count());
  }
  s.t_last = now;
  if (tok_.is_eog(tok) && (!s.job.ignore_eos || s.json)) return end_slot(s, Finish::kStop);
  if (s.json) s.json->accept(pieces_[s.job.render_special ? 1 : 0]->piece(tok));  // allowed, so it is accepted
  ++s.n_gen;
  bool stopped = false;
  std::string text = s.stops->push(s.detok->push(tok), &stopped);
  Delta d{std::move(text), {}};
  if (s.job.top_logprobs >= 0) d.tokens.push_back(std::move(info));
  s.st->push(std::move(d));
  if (stopped) return end_slot(s, Finish::kStop);
  if (s.json && s.json->done()) return end_slot(s, Finish::kStop);  // the JSON value is complete
  if (s.n_gen >= s.job.max_tokens) return end_slot(s, Finish::kLength);
  if ((int64_t)seqs_[s.seq].tokens.size() >= opts_.n_ctx) return end_slot(s, Finish::kLength);  // context full
  s.last = tok;
  s.prefilling = false;
}

// Log-softmax of raw logits: the probability the model gives `next`, and its top k.
static TokenInfo score_token(const float* logits, int32_t n_vocab, int32_t next, int k) {
  float mx = -INFINITY;
  for (int32_t i = 0; i < n_vocab; ++i) mx = std::max(mx, logits[i]);
  double z = 0;
  for (int32_t i = 0; i < n_vocab; ++i) z += std::exp((double)logits[i] - mx);
  const double lz = std::log(z) + mx;
  TokenInfo t;
  t.id = next;
  t.logprob = (float)(logits[next] - lz);
  k = std::max(0, std::min(k, n_vocab));
  std::vector<int32_t> ids(n_vocab);
  std::iota(ids.begin(), ids.end(), 0);
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  for (int i = 0; i < k; ++i) t.top.push_back({ids[i], (float)(logits[ids[i]] - lz)});
  return t;
}

void Engine::step(bool cut_all, const std::string& reason) {
  // Cancellations (client gone, or cancel_all) free slots before the next forward pass.
  for (auto& s : active_) {
    if (s->st->client_gone()) end_slot(*s, Finish::kCancelled, "client disconnected");
    else if (cut_all) end_slot(*s, Finish::kCancelled, reason);
  }
  // Batch: one token per decoding slot, then prompt chunks up to n_batch tokens in all.
  std::vector<BatchToken> batch;
  struct Row { Slot* slot; int kind; size_t prompt_index; };  // kind 0: sample, 1: score prompt token
  std::vector<Row> rows;
  std::vector<std::pair<Slot*, std::vector<int32_t>>> fed;
  int budget = opts_.n_batch;
  for (auto& s : active_) {
    if (s->done || s->prefilling) continue;
    const int64_t pos = (int64_t)seqs_[s->seq].tokens.size();
    std::vector<int32_t> toks = {s->last};
    s->drafts.clear();
    if (opts_.draft_max > 0 && !s->json && s->job.top_logprobs < 0) {
      // Prompt lookup over the sequence's tokens and `last`, within the slot's limits.
      const int64_t room = std::min<int64_t>({(int64_t)opts_.draft_max, s->job.max_tokens - s->n_gen - 1,
                                              opts_.n_ctx - pos - 2, (int64_t)budget - 1});
      if (room > 0) {
        std::vector<int32_t> hist = seqs_[s->seq].tokens;
        hist.push_back(s->last);
        if (opts_.draft_model) {
          if (s->job.embd.empty()) {  // (image placeholders mean nothing to the draft model)
            if (!s->drafter) {
              if (idle_drafters_.empty()) {
                s->drafter = std::make_unique<ModelDrafter>(*opts_.draft_model, *pool_, opts_.n_ctx);
              } else {
                s->drafter = std::move(idle_drafters_.back());
                idle_drafters_.pop_back();
              }
            }
            if (auto d = s->drafter->propose(hist, (int)room); d.ok()) s->drafts = std::move(d).value();
          }
        } else if (auto d = lookup_.propose(hist, (int)room); d.ok()) {
          s->drafts = std::move(d).value();
        }
      }
      drafts_proposed_ += s->drafts.size();
    }
    toks.insert(toks.end(), s->drafts.begin(), s->drafts.end());
    for (size_t i = 0; i < toks.size(); ++i) {
      BatchToken bt{toks[i], pos + (int64_t)i, s->seq, true, s->job.lora};
      place_in_spans(bt, s->job.embd, model_.config().n_embd);  // M-RoPE positions after images
      batch.push_back(bt);
      rows.push_back({s.get(), i == 0 ? 0 : 2, i});
    }
    fed.push_back({s.get(), std::move(toks)});
    budget -= (int)(1 + s->drafts.size());
  }
  for (auto& s : active_) {
    if (s->done || !s->prefilling || budget <= 0) continue;
    const auto& p = s->job.prompt;
    size_t n = std::min<size_t>((size_t)budget, p.size() - s->n_past);
    // Images go whole into one pass: a chunk that reaches into one ends before it, unless it
    // starts there (then the whole image, even past the budget).
    for (const EmbdSpan& sp : s->job.embd) {
      const size_t b = (size_t)sp.begin, e = (size_t)(sp.begin + sp.n);
      if (s->n_past >= b && s->n_past < e) {
        n = e - s->n_past;
        break;
      }
      if (b > s->n_past && b < s->n_past + n) n = b - s->n_past;
    }
    std::vector<int32_t> toks;
    for (size_t i = s->n_past; i < s->n_past + n; ++i) {
      const bool last = i + 1 == p.size();
      const bool score = s->job.prompt_logprobs && !last;
      BatchToken bt{p[i], (int64_t)i, s->seq, last || score, s->job.lora};
      place_in_spans(bt, s->job.embd, model_.config().n_embd);  // image rows, bidirectional end, M-RoPE
      batch.push_back(bt);
      if (last) rows.push_back({s.get(), 0, i});
      else if (score) rows.push_back({s.get(), 1, i});
      toks.push_back(p[i]);
    }
    s->n_past += n;
    budget -= (int)n;
    fed.push_back({s.get(), std::move(toks)});
  }
  if (!batch.empty()) {
    std::vector<float> logits;
    Status st = model_.forward(batch, *kv_, *pool_, logits);
    if (!st.ok()) {
      for (auto& [s, toks] : fed) {
        kv_->truncate(s->seq, 0);
        seqs_[s->seq].tokens.clear();
        end_slot(*s, Finish::kError, st.to_string());
      }
    } else {
      for (auto& [s, toks] : fed) seqs_[s->seq].tokens.insert(seqs_[s->seq].tokens.end(), toks.begin(), toks.end());
      const int32_t n_vocab = (int32_t)model_.config().n_vocab;
      for (size_t r = 0; r < rows.size(); ++r) {
        Slot& s = *rows[r].slot;
        if (s.done || rows[r].kind == 2) continue;  // (a draft's row: read by verify_slot)
        const float* row = logits.data() + r * (size_t)n_vocab;
        if (rows[r].kind == 1) {
          const size_t i = rows[r].prompt_index;
          s.st->prompt_logprobs_.push_back(score_token(row, n_vocab, s.job.prompt[i + 1], std::max(0, s.job.top_logprobs)));
        } else if (!s.drafts.empty()) {
          // The kept drafts stay in the cache; the rejected ones are forgotten.
          const size_t kept = verify_slot(s, row, n_vocab);
          const size_t drop = s.drafts.size() - kept;
          if (drop > 0 && !seqs_[s.seq].tokens.empty()) {
            seqs_[s.seq].tokens.resize(seqs_[s.seq].tokens.size() - drop);
            kv_->truncate(s.seq, (int64_t)seqs_[s.seq].tokens.size());
          }
          s.drafts.clear();
        } else {
          sample_slot(s, row);
        }
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    ++steps_;
  }
  // Retire finished slots; their sequences stay as prefix cache.
  for (auto& s : active_) {
    if (!s->done) continue;
    if (s->drafter) idle_drafters_.push_back(std::move(s->drafter));  // its cache may serve the next
    seqs_[s->seq].busy = false;
    seqs_[s->seq].last_use = ++tick_;
    if (!opts_.prefix_cache) {
      kv_->truncate(s->seq, 0);
      seqs_[s->seq].tokens.clear();
    }
  }
  active_.erase(std::remove_if(active_.begin(), active_.end(), [](const auto& s) { return s->done; }), active_.end());
}

void Engine::embed_step() {
  std::shared_ptr<EmbedJob> job;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (embed_queue_.empty()) return;
    job = embed_queue_.front();
  }
  const auto& in = job->inputs[job->input];
  const int64_t d = model_.config().n_embd;
  if (job->pos == 0) {
    kv_->truncate(embed_seq_, 0);
    job->acc.assign((size_t)d, 0.0);
    job->acc_n = 0;
  }
  const size_t n = std::min<size_t>((size_t)opts_.n_batch, in.size() - job->pos);
  std::vector<BatchToken> batch;
  for (size_t i = job->pos; i < job->pos + n; ++i) {
    bool want = job->pooling == Pooling::kMean || (job->pooling == Pooling::kCls && i == 0) ||
                (job->pooling == Pooling::kLast && i + 1 == in.size());
    batch.push_back({in[i], (int64_t)i, embed_seq_, want});
  }
  std::vector<float> hidden;
  auto finish = [&](Result<std::vector<std::vector<float>>> r) {
    kv_->truncate(embed_seq_, 0);
    {
      std::lock_guard<std::mutex> lock(mu_);
      embed_queue_.pop_front();
    }
    job->done.set_value(std::move(r));
  };
  // Blocks for this chunk, beside what running requests may still take.
  const int64_t need = kv_->blocks_needed(embed_seq_, (int64_t)(job->pos + n));
  if (!make_room(committed_blocks() + need, embed_seq_))
    return finish(resource_exhausted("KV cache full: an embedding input of " + std::to_string(in.size()) +
                                     " tokens needs " + std::to_string(need) + " more blocks than running requests leave; "
                                     "retry later, send shorter inputs or raise --cache-mb"));
  Status st = model_.forward_hidden(batch, *kv_, *pool_, hidden);
  if (!st.ok()) return finish(st);
  for (size_t r = 0; r * (size_t)d < hidden.size(); ++r) {
    for (int64_t k = 0; k < d; ++k) job->acc[(size_t)k] += hidden[r * (size_t)d + (size_t)k];
    ++job->acc_n;
  }
  job->pos += n;
  if (job->pos < in.size()) return;
  std::vector<float> v((size_t)d);
  double norm = 0;
  for (int64_t k = 0; k < d; ++k) {
    v[(size_t)k] = (float)(job->acc[(size_t)k] / std::max<int64_t>(1, job->acc_n));
    norm += (double)v[(size_t)k] * v[(size_t)k];
  }
  norm = std::sqrt(norm);
  if (norm > 0)
    for (auto& x : v) x = (float)(x / norm);
  if (metrics_) metrics_->add_tokens((int64_t)in.size(), 0, 0);
  job->out.push_back(std::move(v));
  job->pos = 0;
  kv_->truncate(embed_seq_, 0);
  if (++job->input == job->inputs.size()) finish(std::move(job->out));
}

void Engine::loop() {
  for (;;) {
    bool cut_all = false;
    std::string reason;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] {
        return stopping_ || !active_.empty() || !embed_queue_.empty() || !control_queue_.empty() ||
               cancel_epoch_ != seen_cancel_epoch_ ||
               (!queue_.empty() && (int64_t)active_.size() < opts_.n_parallel);
      });
      if (cancel_epoch_ != seen_cancel_epoch_) {
        for (auto& q : queue_) q.st->close(Finish::kCancelled, cancel_reason_);
        queue_.clear();
        cut_all = true;
        reason = cancel_reason_;
        seen_cancel_epoch_ = cancel_epoch_;
      }
      if (stopping_ && active_.empty()) {
        for (auto& q : queue_) q.st->close(Finish::kCancelled, cancel_reason_);
        queue_.clear();
        for (auto& e : embed_queue_) e->done.set_value(resource_exhausted("the server is shutting down"));
        embed_queue_.clear();
        for (auto& c : control_queue_) c->done.set_value(resource_exhausted("the server is shutting down"));
        control_queue_.clear();
        n_active_ = 0;
        return;
      }
      if (!cut_all) admit_locked();
    }
    step(cut_all, reason);
    embed_step();
    // Control tasks (adapter load/unload) between steps, outside mu_ (they may take it).
    for (;;) {
      std::shared_ptr<Control> c;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (control_queue_.empty()) break;
        c = control_queue_.front();
        control_queue_.pop_front();
      }
      // An exception (bad_alloc while attaching) must not take the engine thread down.
      Status st;
      try {
        st = c->fn();
      } catch (const std::exception& e) {
        st = internal_error(std::string("control task failed: ") + e.what());
      }
      c->done.set_value(std::move(st));
    }
    std::lock_guard<std::mutex> lock(mu_);
    n_active_ = (int64_t)active_.size();
    int64_t cached = 0;
    for (int s = 0; s < n_seq_; ++s) {
      if (!seqs_[s].busy && !seqs_[s].tokens.empty()) ++cached;
    }
    kv_free_ = kv_->free_blocks();
    cached_seqs_ = cached;
  }
}

}  // namespace modu::server
