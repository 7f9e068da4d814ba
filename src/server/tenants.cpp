// API key file parsing and per-tenant sliding-window rate limits.
#include "modu/server/tenants.h"

#include <fstream>
#include <sstream>

namespace modu::server {

Result<TenantRegistry> TenantRegistry::parse(std::string_view text, const std::string& source) {
  TenantRegistry reg;
  std::istringstream in{std::string(text)};
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (auto h = line.find('#'); h != std::string::npos) line.resize(h);
    std::istringstream ls(line);
    std::string key, name, opt;
    if (!(ls >> key)) continue;
    const std::string where = source + ":" + std::to_string(line_no);
    if (!(ls >> name)) return invalid_argument(where + ": expected 'KEY TENANT [rpm=N] [tpm=N] [parallel=N] [watermark=SECRET|off]'");
    TenantLimits lim;
    std::string watermark;
    while (ls >> opt) {
      const auto eq = opt.find('=');
      if (eq == std::string::npos) return invalid_argument(where + ": option '" + opt + "' is not NAME=VALUE");
      const std::string k = opt.substr(0, eq), v = opt.substr(eq + 1);
      if (k == "watermark") {
        if (v.empty()) return invalid_argument(where + ": 'watermark' needs a secret (or 'off')");
        watermark = v;
        continue;
      }
      char* end = nullptr;
      const long long x = std::strtoll(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || x < 0 || x > (1ll << 40))
        return invalid_argument(where + ": '" + k + "' needs a non-negative integer, got '" + v + "'");
      if (k == "rpm") lim.requests_per_min = x;
      else if (k == "tpm") lim.tokens_per_min = x;
      else if (k == "parallel") lim.max_parallel = (int)x;
      else return invalid_argument(where + ": unknown option '" + k + "' (rpm, tpm, parallel, watermark)");
    }
    for (const auto& [k, idx] : reg.keys_)
      if (k == key) return invalid_argument(where + ": key listed twice");
    size_t idx = reg.tenants_.size();
    for (size_t i = 0; i < reg.tenants_.size(); ++i)
      if (reg.tenants_[i].name == name) idx = i;
    if (idx == reg.tenants_.size()) reg.tenants_.push_back({name, lim, watermark});
    reg.keys_.push_back({key, idx});
  }
  if (reg.keys_.empty()) return invalid_argument(source + ": no API keys in the file");
  return reg;
}

Result<TenantRegistry> TenantRegistry::load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return io_error("cannot read API key file '" + path + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  return parse(ss.str(), path);
}

const Tenant* TenantRegistry::find_key(std::string_view key) const {
  const Tenant* found = nullptr;
  for (const auto& [k, idx] : keys_) {
    // Compare all bytes regardless of where the first difference is.
    unsigned diff = (unsigned)(k.size() ^ key.size());
    for (size_t i = 0; i < k.size(); ++i) diff |= (unsigned char)k[i] ^ (unsigned char)(i < key.size() ? key[i] : 0);
    if (diff == 0) found = &tenants_[idx];
  }
  return found;
}

void RateLimiter::expire(Window& w, Clock::time_point now) {
  const auto cutoff = now - std::chrono::seconds(60);
  while (!w.requests.empty() && w.requests.front() <= cutoff) w.requests.pop_front();
  while (!w.tokens.empty() && w.tokens.front().first <= cutoff) {
    w.token_sum -= w.tokens.front().second;
    w.tokens.pop_front();
  }
}

std::optional<int> RateLimiter::admit(const std::string& tenant, const TenantLimits& limits, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  Window& w = windows_[tenant];
  expire(w, now);
  auto retry_after = [&](Clock::time_point oldest) {
    const auto wait = oldest + std::chrono::seconds(60) - now;
    return std::max(1, (int)std::chrono::ceil<std::chrono::seconds>(wait).count());
  };
  if (limits.requests_per_min > 0 && (int64_t)w.requests.size() >= limits.requests_per_min)
    return retry_after(w.requests.front());
  if (limits.tokens_per_min > 0 && w.token_sum >= limits.tokens_per_min) return retry_after(w.tokens.front().first);
  w.requests.push_back(now);
  return std::nullopt;
}

void RateLimiter::charge_tokens(const std::string& tenant, int64_t n, Clock::time_point now) {
  if (n <= 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  Window& w = windows_[tenant];
  expire(w, now);
  w.tokens.push_back({now, n});
  w.token_sum += n;
}

}  // namespace modu::server
