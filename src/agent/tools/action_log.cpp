// ActionLog: the append-only JSON Lines audit trail of tool calls; SHA-256 digests via OpenSSL EVP.
#include "modu/agent/action_log.h"

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>

#include <openssl/evp.h>

namespace modu::agent {

struct ActionLog::Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1 &&
            EVP_DigestUpdate(ctx, data.data(), data.size()) == 1 &&
            EVP_DigestFinal_ex(ctx, md, &len) == 1;
  EVP_MD_CTX_free(ctx);
  MODU_CHECK_MSG(ok, "OpenSSL SHA-256 failed");
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

std::string utc_now_iso8601() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms % 1000));
  return buf;
}

nlohmann::json to_json(const ActionRecord& r) {
  return nlohmann::json{{"time", r.time},
                        {"tool", r.tool},
                        {"source", r.source},
                        {"arguments", r.arguments},
                        {"approved", r.approved},
                        {"decided_by", r.decided_by},
                        {"is_error", r.is_error},
                        {"result_sha256", r.result_sha256},
                        {"result_bytes", r.result_bytes},
                        {"duration_s", r.duration_s}};
}

Result<ActionLog> ActionLog::open(const std::string& path) {
  namespace fs = std::filesystem;
  if (path.empty()) return invalid_argument("action log: empty path");
  fs::path parent = fs::path(path).parent_path();
  if (parent.empty()) parent = ".";
  std::error_code ec;
  if (!fs::is_directory(parent, ec))
    return not_found("action log " + path + ": folder " + parent.string() +
                     " does not exist (create it first, or choose another --action-log path)");
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return io_error("action log " + path + ": cannot open for appending: " + std::strerror(errno));
  ActionLog log;
  log.path_ = path;
  log.fd_ = std::make_shared<Fd>();
  log.fd_->fd = fd;
  log.mu_ = std::make_shared<std::mutex>();
  return log;
}

Status ActionLog::append(ActionRecord r) {
  if (r.time.empty()) r.time = utc_now_iso8601();
  // Invalid UTF-8 in arguments must not make the log unwritable: replace it.
  std::string line = to_json(r).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line += '\n';
  std::lock_guard<std::mutex> lock(*mu_);
  // O_APPEND: each write lands at the end. A regular-file write of one line is done in one call;
  // the loop only matters for a signal-interrupted or short write.
  std::string_view rest = line;
  while (!rest.empty()) {
    ssize_t w = ::write(fd_->fd, rest.data(), rest.size());
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return io_error("action log " + path_ + ": write failed: " + std::strerror(errno));
    rest.remove_prefix(static_cast<size_t>(w));
  }
  return Status::Ok();
}

}  // namespace modu::agent
