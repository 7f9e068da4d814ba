// Tenants: API keys read from a file (key -> tenant name and optional limits), and per-tenant
// sliding-window rate limits (requests per minute, tokens per minute).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "modu/core/status.h"

namespace modu::server {

struct TenantLimits {
  int64_t requests_per_min = 0;  // 0: unlimited
  int64_t tokens_per_min = 0;    // prompt + completion tokens; 0: unlimited
  int max_parallel = 0;          // slots a tenant may hold at once; 0: any
};

struct Tenant {
  std::string name;
  TenantLimits limits;
  // This tenant's text-watermark secret ("off": its outputs are not watermarked; "": the
  // server's --watermark-key applies).
  std::string watermark;
};

// Key file format, one key per line ('#' starts a comment):
//   KEY TENANT [rpm=N] [tpm=N] [parallel=N] [watermark=SECRET|off]
// Several keys may name the same tenant; the limits of the tenant's first line apply.
class TenantRegistry {
 public:
  static Result<TenantRegistry> parse(std::string_view text, const std::string& source = "<keys>");
  static Result<TenantRegistry> load(const std::string& path);
  bool empty() const { return keys_.empty(); }
  size_t n_keys() const { return keys_.size(); }
  // The tenant of an API key, or nullptr (compares every key in constant time per key).
  const Tenant* find_key(std::string_view key) const;

 private:
  std::vector<std::pair<std::string, size_t>> keys_;  // key -> index into tenants_
  std::vector<Tenant> tenants_;
};

// Sliding 60-second windows per tenant. Thread-safe.
class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  // Counts a request if the tenant is within its limits and returns nullopt; otherwise returns the
  // seconds after which a retry can succeed (the request is not counted).
  std::optional<int> admit(const std::string& tenant, const TenantLimits& limits, Clock::time_point now);
  // Charges tokens (prompt + completion) to a tenant's tokens-per-minute window.
  void charge_tokens(const std::string& tenant, int64_t n, Clock::time_point now);

 private:
  struct Window {
    std::deque<Clock::time_point> requests;
    std::deque<std::pair<Clock::time_point, int64_t>> tokens;
    int64_t token_sum = 0;
  };
  void expire(Window& w, Clock::time_point now);
  std::mutex mu_;
  std::map<std::string, Window> windows_;
};

}  // namespace modu::server
