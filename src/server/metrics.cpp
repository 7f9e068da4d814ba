// Prometheus text exposition of the server's counters, histograms and gauges.
#include "modu/server/metrics.h"

#include <cstdio>

namespace modu::server {

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++n_;
}

uint64_t Histogram::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return n_;
}

static std::string fmt(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& help) const {
  std::lock_guard<std::mutex> lock(mu_);
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    out += name + "_bucket{le=\"" + fmt(bounds_[i]) + "\"} " + std::to_string(cum) + "\n";
  }
  cum += counts_.back();
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(cum) + "\n";
  out += name + "_sum " + fmt(sum_) + "\n" + name + "_count " + std::to_string(n_) + "\n";
}

Metrics::Metrics()
    : ttft_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}),
      per_token_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}),
      queue_wait_({0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30}) {}

void Metrics::count_request(const std::string& endpoint, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{endpoint, status}];
}

void Metrics::add_tokens(int64_t prompt, int64_t completion, int64_t prompt_cached) {
  std::lock_guard<std::mutex> lock(mu_);
  prompt_tokens_ += prompt;
  completion_tokens_ += completion;
  prompt_cached_ += prompt_cached;
}

std::string Metrics::render(const Gauges& g) const {
  std::string out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    out += "# HELP modu_requests_total HTTP requests by endpoint and status.\n# TYPE modu_requests_total counter\n";
    for (const auto& [k, n] : requests_)
      out += "modu_requests_total{endpoint=\"" + k.first + "\",status=\"" + std::to_string(k.second) + "\"} " +
             std::to_string(n) + "\n";
    out += "# HELP modu_prompt_tokens_total Prompt tokens of finished requests.\n# TYPE modu_prompt_tokens_total counter\n";
    out += "modu_prompt_tokens_total " + std::to_string(prompt_tokens_) + "\n";
    out += "# HELP modu_prompt_tokens_cached_total Prompt tokens reused from the prefix cache.\n"
           "# TYPE modu_prompt_tokens_cached_total counter\n";
    out += "modu_prompt_tokens_cached_total " + std::to_string(prompt_cached_) + "\n";
    out += "# HELP modu_completion_tokens_total Generated tokens.\n# TYPE modu_completion_tokens_total counter\n";
    out += "modu_completion_tokens_total " + std::to_string(completion_tokens_) + "\n";
  }
  auto gauge = [&](const char* name, const char* help, int64_t v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n" + name + " " +
           std::to_string(v) + "\n";
  };
  gauge("modu_queue_depth", "Requests waiting for a slot.", g.queue_depth);
  gauge("modu_slots_active", "Slots running a request.", g.active_slots);
  gauge("modu_slots_total", "Slots (parallel requests).", g.slots);
  gauge("modu_kv_cache_used_tokens", "KV cache positions in blocks that are in use (running requests and cached prefixes; a shared block counts once).", g.kv_used_tokens);
  gauge("modu_kv_cache_capacity_tokens", "KV cache positions in the block pool.", g.kv_capacity_tokens);
  gauge("modu_kv_cache_blocks", "KV cache blocks in the pool.", g.kv_blocks);
  gauge("modu_kv_cache_free_blocks", "KV cache blocks no sequence holds.", g.kv_free_blocks);
  gauge("modu_kv_cache_evictions", "Cached prefixes evicted to make room for requests so far.", g.kv_evictions);
  gauge("modu_kv_cache_memory_waits", "Admissions deferred until running requests gave KV blocks back.", g.kv_memory_waits);
  gauge("modu_kv_cache_sequences", "KV cache sequences (slots plus prefix cache).", g.kv_sequences);
  gauge("modu_prefix_cache_sequences", "Idle sequences holding a reusable prefix.", g.cached_sequences);
  gauge("modu_decode_steps", "Batched forward passes run so far.", g.decode_steps);
  gauge("modu_draft_tokens", "Speculative draft tokens verified so far (--lookup).", g.drafts_proposed);
  gauge("modu_draft_tokens_accepted", "Speculative draft tokens kept so far.", g.drafts_accepted);
  out += "# HELP modu_kv_cache_usage_ratio Fraction of KV cache positions in use.\n"
         "# TYPE modu_kv_cache_usage_ratio gauge\nmodu_kv_cache_usage_ratio " +
         fmt(g.kv_capacity_tokens ? (double)g.kv_used_tokens / (double)g.kv_capacity_tokens : 0.0) + "\n";
  ttft_.render(out, "modu_time_to_first_token_seconds", "Time from arrival to the first generated token.");
  per_token_.render(out, "modu_time_per_output_token_seconds", "Time between generated tokens of a request.");
  queue_wait_.render(out, "modu_queue_wait_seconds", "Time a request waited for a slot.");
  return out;
}

}  // namespace modu::server
