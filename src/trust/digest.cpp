// SHA-256 (OpenSSL EVP), file and model digests with their (path, size, mtime) cache, and UTC
// ISO 8601 timestamps.
#include "modu/trust/digest.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

namespace modu::trust {

namespace fs = std::filesystem;

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  MODU_CHECK_MSG(ctx_ && EVP_DigestInit_ex((EVP_MD_CTX*)ctx_, EVP_sha256(), nullptr) == 1, "OpenSSL SHA-256 init failed");
}

Sha256::~Sha256() { EVP_MD_CTX_free((EVP_MD_CTX*)ctx_); }

void Sha256::update(const void* data, size_t n) {
  MODU_CHECK_MSG(EVP_DigestUpdate((EVP_MD_CTX*)ctx_, data, n) == 1, "OpenSSL SHA-256 update failed");
}

std::string Sha256::hex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  MODU_CHECK_MSG(EVP_DigestFinal_ex((EVP_MD_CTX*)ctx_, md, &len) == 1, "OpenSSL SHA-256 final failed");
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  Sha256 h;
  h.update(data.data(), data.size());
  return h.hex();
}

Result<std::string> file_sha256(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open " + path + " to hash it: " + std::strerror(errno));
  Sha256 h;
  std::vector<char> buf(4 << 20);
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      return io_error("read error while hashing " + path + ": " + std::strerror(e));
    }
    if (n == 0) break;
    h.update(buf.data(), (size_t)n);
  }
  ::close(fd);
  return h.hex();
}

namespace {

std::string cache_file() {
  if (const char* d = std::getenv("MODU_CACHE_DIR"); d && *d) return std::string(d) + "/sha256-cache.json";
  if (const char* d = std::getenv("XDG_CACHE_HOME"); d && *d) return std::string(d) + "/modu/sha256-cache.json";
  if (const char* d = std::getenv("HOME"); d && *d) return std::string(d) + "/.cache/modu/sha256-cache.json";
  return "";
}

// The key a digest is cached under: what changes when the file (or any file of a folder) does.
Result<std::string> identity(const fs::path& p) {
  std::error_code ec;
  std::ostringstream key;
  auto stamp = [&](const fs::path& f) -> Status {
    struct stat st{};
    if (::stat(f.c_str(), &st) != 0) return io_error("cannot stat " + f.string() + ": " + std::strerror(errno));
    key << f.string() << '|' << (long long)st.st_size << '|' << (long long)st.st_mtim.tv_sec << '.'
        << (long long)st.st_mtim.tv_nsec << '\n';
    return Status::Ok();
  };
  if (fs::is_directory(p, ec)) {
    std::vector<fs::path> files;
    for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
      if (it->is_regular_file(ec)) files.push_back(it->path());
    if (ec) return io_error("cannot list " + p.string() + ": " + ec.message());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) MODU_RETURN_IF_ERROR(stamp(f));
  } else {
    MODU_RETURN_IF_ERROR(stamp(p));
  }
  return key.str();
}

Result<std::string> compute(const fs::path& p) {
  std::error_code ec;
  if (!fs::is_directory(p, ec)) return file_sha256(p.string());
  std::vector<fs::path> files;
  for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file(ec)) files.push_back(it->path());
  if (ec) return io_error("cannot list " + p.string() + ": " + ec.message());
  std::vector<std::string> names;
  for (const auto& f : files) names.push_back(fs::relative(f, p).generic_string());
  std::sort(names.begin(), names.end());
  Sha256 h;
  for (const auto& n : names) {
    MODU_ASSIGN_OR_RETURN(std::string d, file_sha256((p / n).string()));
    h.update(n.data(), n.size());
    h.update("\0", 1);
    h.update(d.data(), d.size());
    h.update("\n", 1);
  }
  return h.hex();
}

std::mutex g_mu;
std::map<std::string, std::string> g_memo;  // identity -> digest

}  // namespace

Result<std::string> model_sha256(const std::string& path) {
  std::error_code ec;
  const fs::path canon = fs::canonical(path, ec);
  if (ec) return not_found("cannot hash the model: " + path + ": " + ec.message());
  MODU_ASSIGN_OR_RETURN(const std::string id, identity(canon));
  const std::string key = sha256_hex(id);
  {
    std::lock_guard<std::mutex> lock(g_mu);
    if (auto it = g_memo.find(key); it != g_memo.end()) return it->second;
  }
  const std::string cf = cache_file();
  nlohmann::json cache = nlohmann::json::object();
  if (!cf.empty()) {
    std::ifstream in(cf);
    if (in) {
      cache = nlohmann::json::parse(in, nullptr, false);
      if (!cache.is_object()) cache = nlohmann::json::object();
      if (auto it = cache.find(key); it != cache.end() && it->is_string() && it->get<std::string>().size() == 64) {
        std::lock_guard<std::mutex> lock(g_mu);
        g_memo[key] = it->get<std::string>();
        return it->get<std::string>();
      }
    }
  }
  MODU_ASSIGN_OR_RETURN(std::string digest, compute(canon));
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_memo[key] = digest;
  }
  if (!cf.empty()) {  // best effort: a read-only home only costs a re-hash next time
    cache[key] = digest;
    if (cache.size() > 256) cache.erase(cache.begin());
    fs::create_directories(fs::path(cf).parent_path(), ec);
    const std::string tmp = cf + ".tmp." + std::to_string(::getpid());
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << cache.dump();
    }
    fs::rename(tmp, cf, ec);
    if (ec) fs::remove(tmp, ec);
  }
  return digest;
}

std::string utc_iso8601(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[48];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms % 1000));
  return buf;
}

std::string utc_now_iso8601() { return utc_iso8601(std::chrono::system_clock::now()); }

std::optional<std::chrono::system_clock::time_point> parse_utc_iso8601(std::string_view s) {
  if (!s.empty() && s.back() == 'Z') s.remove_suffix(1);
  std::tm tm{};
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, ms = 0;
  const std::string str(s);
  int consumed = 0;
  if (str.size() == 10) {
    if (std::sscanf(str.c_str(), "%4d-%2d-%2d%n", &y, &mo, &d, &consumed) != 3 || consumed != 10) return std::nullopt;
  } else {
    const int got = std::sscanf(str.c_str(), "%4d-%2d-%2dT%2d:%2d%n", &y, &mo, &d, &h, &mi, &consumed);
    if (got != 5) return std::nullopt;
    std::string_view rest = std::string_view(str).substr(consumed);
    if (!rest.empty()) {
      int c2 = 0;
      if (std::sscanf(std::string(rest).c_str(), ":%2d%n", &sec, &c2) != 1) return std::nullopt;
      rest.remove_prefix(c2);
      if (!rest.empty()) {
        int c3 = 0;
        if (std::sscanf(std::string(rest).c_str(), ".%3d%n", &ms, &c3) != 1) return std::nullopt;
        rest.remove_prefix(c3);
      }
      if (!rest.empty()) return std::nullopt;
    }
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  if (y < 1970 || y > 2200) return std::nullopt;  // system_clock counts nanoseconds: +-292 years around 1970
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  const std::time_t t = timegm(&tm);
  return std::chrono::system_clock::from_time_t(t) + std::chrono::milliseconds(ms);
}

}  // namespace modu::trust
