// Server metrics in Prometheus text format: request and token counters, latency histograms
// (time to first token, time per output token) and gauges supplied at scrape time.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace modu::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  // Appends "# HELP/# TYPE" and the _bucket/_sum/_count lines.
  void render(std::string& out, const std::string& name, const std::string& help) const;
  uint64_t count() const;

 private:
  mutable std::mutex mu_;
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // one per bound, plus +Inf
  double sum_ = 0;
  uint64_t n_ = 0;
};

class Metrics {
 public:
  Metrics();
  void count_request(const std::string& endpoint, int status);
  void add_tokens(int64_t prompt, int64_t completion, int64_t prompt_cached);
  Histogram& ttft() { return ttft_; }
  Histogram& per_token() { return per_token_; }
  Histogram& queue_wait() { return queue_wait_; }

  struct Gauges {
    int64_t queue_depth = 0, active_slots = 0, slots = 0;
    int64_t kv_used_tokens = 0, kv_capacity_tokens = 0, kv_sequences = 0;
    int64_t cached_sequences = 0;
    int64_t decode_steps = 0;
    int64_t drafts_proposed = 0, drafts_accepted = 0;
    int64_t kv_blocks = 0, kv_free_blocks = 0, kv_evictions = 0, kv_memory_waits = 0;
  };
  std::string render(const Gauges& g) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  int64_t prompt_tokens_ = 0, completion_tokens_ = 0, prompt_cached_ = 0;
  Histogram ttft_, per_token_, queue_wait_;
};

}  // namespace modu::server
