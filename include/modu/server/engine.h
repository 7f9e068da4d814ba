// Engine: the continuous-batching scheduler. N slots (KV sequences) share one batched forward pass
// per step; new requests join between steps, long prompts are prefilled in chunks, waiting
// requests sit in a bounded queue and are admitted fairly between tenants, and finished sequences
// stay behind as an LRU prefix cache that later prompts reuse instead of recomputing. The KV
// cache is one pool of blocks (paged, models/model.h KvCache): a request holds the blocks its
// positions use, prefixes are shared by reference, and a request is admitted only when the
// blocks it may still need are free (cached prefixes are evicted for them, least recently used
// first), so no running request fails for memory.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "modu/core/status.h"
#include "modu/core/threadpool.h"
#include "modu/models/model.h"
#include "modu/vision/vision_model.h"
#include "modu/runtime/json_constraint.h"
#include "modu/runtime/sampler.h"
#include "modu/runtime/speculative.h"
#include "modu/server/metrics.h"
#include "modu/tokenizer/tokenizer.h"

namespace modu::server {

struct GenJob {
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  int64_t max_tokens = 16;        // 0 only makes sense with prompt_logprobs (scoring a prompt)
  std::vector<std::string> stop;
  int top_logprobs = -1;          // -1: no logprobs; k >= 0: the sampled token's plus k alternatives
  bool prompt_logprobs = false;   // also score each prompt token (completions echo + logprobs)
  bool ignore_eos = false;
  bool render_special = false;    // control tokens appear in the text (tool-call markers)
  // Structured output: generation is restricted to JSON this constraint accepts (its initial
  // state; each request advances its own copy) and ends as soon as the value is complete.
  std::shared_ptr<const JsonConstraint> json;
  std::string tenant = "default";
  int tenant_max_parallel = 0;    // 0: no per-tenant cap
  // Named LoRA adapters (Model::add_named_lora) this request runs with: bit i = adapter i. The
  // prefix cache reuses only KV computed under the same set.
  uint32_t lora = 0;
  // Engine::lora_epoch() when `lora` was looked up: a job whose adapters were unloaded after that
  // is refused at admission instead of running with another adapter in the same slot.
  uint64_t lora_epoch = 0;
  // Image embeddings spliced into the prompt (positions with placeholder ids): each span is
  // prefilled whole in one forward pass; `images` keeps the rows the spans point to alive.
  std::vector<EmbdSpan> embd;
  std::shared_ptr<const std::vector<vision::ImageEmbedding>> images;
};

struct TokenInfo {
  int32_t id = -1;
  float logprob = 0;
  std::vector<TokenProb> top;
};

// Text that became final in one step, with the tokens sampled in that step.
struct Delta {
  std::string text;
  std::vector<TokenInfo> tokens;
};

enum class Finish { kNone, kStop, kLength, kCancelled, kError };
const char* finish_name(Finish f);  // "stop", "length", "cancelled", "error"

// One request's output channel between the engine thread and the HTTP thread serving it.
class Stream {
 public:
  using Clock = std::chrono::steady_clock;
  // Consumer: waits up to `timeout` for news and moves undelivered deltas into *out. Returns true
  // once the request has finished and everything was delivered.
  bool wait(std::vector<Delta>* out, std::chrono::milliseconds timeout);
  // The client went away: the engine frees the slot at its next step.
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }
  // An optional liveness check of the client's connection (the HTTP layer's socket probe) that
  // the engine runs before every step, so a vanished client frees its slot within one decode
  // step even when nothing is being written to it (non-streaming, or between tokens).
  // clear_client_probe() blocks until no probe is running: after it returns the probe's
  // resources (the socket) may be released.
  void set_client_probe(std::function<bool()> alive);
  void clear_client_probe();
  // True if cancelled, or the probe says the client is gone (which then also cancels).
  bool client_gone();
  bool started() const { return started_.load(); }  // admitted to a slot

  // Valid once wait() returned true.
  Finish finish() const { return finish_; }
  const std::string& error() const { return error_; }
  int64_t n_prompt() const { return n_prompt_; }
  int64_t n_cached() const { return n_cached_; }
  int64_t n_completion() const { return n_completion_; }
  // Completions echo + logprobs: one entry per prompt token after the first.
  const std::vector<TokenInfo>& prompt_logprobs() const { return prompt_logprobs_; }

 private:
  friend class Engine;
  void push(Delta d);
  void close(Finish f, std::string error);
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Delta> pending_;
  bool closed_ = false;
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> started_{false};
  std::mutex probe_mu_;
  std::function<bool()> probe_;  // guarded by probe_mu_
  Finish finish_ = Finish::kNone;
  std::string error_;
  int64_t n_prompt_ = 0, n_cached_ = 0, n_completion_ = 0;
  std::vector<TokenInfo> prompt_logprobs_;
  Clock::time_point arrival_ = Clock::now();
};

struct EngineOptions {
  int n_parallel = 4;        // slots: requests generating at once
  int64_t n_ctx = 2048;      // positions per sequence
  int n_cache_seqs = -1;     // idle sequences kept as prefix cache (-1: 4 per slot; they hold only blocks)
  // KV pool for running requests and cached prefixes together, in bytes (0: 2 full contexts per
  // slot plus one for embeddings). A request whose prompt + max_tokens can never fit is refused
  // at submit (kTooLarge); one that fits waits in the queue until its blocks are free.
  size_t cache_bytes = 0;
  int n_batch = 256;         // tokens per forward pass (decode tokens first, then prompt chunks)
  size_t max_queue = 64;     // waiting requests beyond the slots; more are refused
  int n_threads = 0;         // compute threads (0: all cores)
  KvType kv_type = KvType::kF16;
  bool prefix_cache = true;
  // Speculative decoding with prompt-lookup drafts (speculative.h): each decoding slot feeds its
  // token and up to draft_max drafts in the step's batch; the drafts the sampler agrees with are
  // kept (sampling: the same distribution; greedy: the same text as far as a batched step ever
  // keeps it, since a step's kernels depend on its size with or without drafts, and a near-tie
  // may go either way). 0: off. Not for requests with a JSON constraint or logprobs.
  int draft_max = 0;
  // With draft_max > 0: drafts from this small model (same tokenizer; callers check it with
  // check_draft_tokenizer) instead of prompt lookup. Each slot holds a drafter with its own KV
  // cache of n_ctx positions while it runs; drafting is per slot, verification batched. Not for
  // requests with images. Must outlive the engine.
  const Model* draft_model = nullptr;
};

// Embedding pooling, as GGUF {arch}.pooling_type numbers it.
enum class Pooling { kNone = 0, kMean = 1, kCls = 2, kLast = 3 };

class Engine {
 public:
  Engine(const Model& model, const Tokenizer& tok, EngineOptions opts, Metrics* metrics = nullptr);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  enum class Submit { kOk, kQueueFull, kStopped, kTooLarge };
  // Queues a request; the stream is set only when kOk. The prompt must be non-empty and shorter
  // than n_ctx (callers validate; violations are reported on the stream as errors). kTooLarge:
  // prompt + max_tokens needs more KV blocks than the whole pool holds.
  Submit submit(GenJob job, std::shared_ptr<Stream>* stream);
  // Blocks of KvCache::kBlock positions in the pool, and the blocks `positions` positions fill.
  int64_t kv_blocks() const { return kv_->n_blocks(); }
  static int64_t blocks_for(int64_t positions);

  // Runs inputs through the model on the engine thread and pools their final hidden states into
  // L2-normalized vectors. Blocks the caller; interleaves with generation.
  Result<std::vector<std::vector<float>>> embed(const std::vector<std::vector<int32_t>>& inputs, Pooling pooling);

  // Runs `fn` on the engine thread between two steps (no forward pass in flight) and returns its
  // status; blocks the caller. For changing the model's adapters at run time: inside `fn`,
  // jobs_using_lora / retire_lora_slot may be called.
  Status run_between_steps(std::function<Status()> fn);
  // Inside run_between_steps: queued and running requests that use any of `bits`.
  int jobs_using_lora(uint32_t bits) const;
  // Inside run_between_steps, after the slot's adapter was removed: cached KV computed under it is
  // dropped, and requests that looked the slot up before now (GenJob::lora_epoch) are refused.
  void retire_lora_slot(int slot);
  uint64_t lora_epoch() const { return lora_epoch_.load(); }

  // Cuts every queued and running request (finish = cancelled, with `reason` as the error).
  void cancel_all(const std::string& reason);
  // Stops the engine thread after cutting everything; further submits get kStopped.
  void stop();
  // No queued or running request.
  bool idle() const;

  const EngineOptions& options() const { return opts_; }
  int n_sequences() const { return n_seq_; }
  Metrics::Gauges gauges() const;

 private:
  struct Queued {
    GenJob job;
    std::shared_ptr<Stream> st;
  };
  struct Slot;
  struct SeqInfo {
    std::vector<int32_t> tokens;  // tokens whose K/V are in the cache (== kv seq_len)
    uint32_t lora = 0;            // the named adapters those K/V were computed with
    bool busy = false;
    uint64_t last_use = 0;
  };
  struct EmbedJob;

  void loop();
  void admit_locked();
  int take_sequence(const std::vector<int32_t>& prompt, uint32_t lora, bool allow_reuse, int64_t* reused);
  int64_t job_end(const GenJob& job) const;   // positions a request may reach
  int64_t committed_blocks() const;           // blocks running requests may still take
  // Evicts least recently used idle sequences (never `keep`) until `want` blocks are free.
  bool make_room(int64_t want, int keep);
  void step(bool cut_all, const std::string& reason);
  void sample_slot(Slot& s, const float* logits);
  void take_token(Slot& s, int32_t tok);
  size_t verify_slot(Slot& s, const float* rows, int32_t n_vocab);
  void end_slot(Slot& s, Finish f, const std::string& error = "");
  void embed_step();
  int32_t sample_constrained(Slot& s, const float* logits);

  const Model& model_;
  const Tokenizer& tok_;
  EngineOptions opts_;
  Metrics* metrics_;
  int n_seq_;
  int embed_seq_;
  std::unique_ptr<KvCache> kv_;
  std::unique_ptr<ThreadPool> pool_;
  // Token texts for structured output, built on first use: [0] plain, [1] with control tokens
  // rendered (requests with render_special).
  std::unique_ptr<TokenPieces> pieces_[2];
  std::vector<float> masked_;            // scratch logits for constrained sampling

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Queued> queue_;
  std::deque<std::shared_ptr<EmbedJob>> embed_queue_;
  struct Control {
    std::function<Status()> fn;
    std::promise<Status> done;
  };
  std::deque<std::shared_ptr<Control>> control_queue_;
  std::atomic<uint64_t> lora_epoch_{0};
  std::array<uint64_t, 32> lora_freed_at_{};  // per slot: the epoch it was last freed at (mu_)
  std::vector<std::unique_ptr<Slot>> active_;  // engine thread only (size read under mu_)
  std::vector<SeqInfo> seqs_;                  // engine thread only
  int64_t n_active_ = 0;
  int64_t cached_seqs_ = 0, steps_ = 0, kv_free_ = 0;
  int64_t evictions_ = 0, memory_waits_ = 0;
  std::atomic<int64_t> drafts_proposed_{0}, drafts_accepted_{0};  // speculative decoding (read by gauges())
  NgramDrafter lookup_;
  std::vector<std::unique_ptr<ModelDrafter>> idle_drafters_;  // draft-model drafters not lent to a slot
  bool stopping_ = false;
  std::string cancel_reason_;
  uint64_t cancel_epoch_ = 0, seen_cancel_epoch_ = 0;
  uint64_t tick_ = 0;
  std::map<std::string, uint64_t> last_admit_;  // tenant -> admission tick (round robin)
  uint64_t admit_tick_ = 0;
  std::thread thread_;
};

}  // namespace modu::server
