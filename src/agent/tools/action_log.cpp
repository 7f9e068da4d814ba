// ActionLog: the append-only JSON Lines record of tool calls, mirrored into the audit log when one is set.
#include "modu/agent/action_log.h"

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>


namespace modu::agent {

struct ActionLog::Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

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

Result<ActionLog> ActionLog::open(const std::string& path, std::shared_ptr<trust::AuditLog> audit) {
  namespace fs = std::filesystem;
  if (path.empty() && audit) {
    ActionLog log;
    log.audit_ = std::move(audit);
    log.mu_ = std::make_shared<std::mutex>();
    return log;
  }
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
  log.audit_ = std::move(audit);
  return log;
}

Status ActionLog::append(ActionRecord r) {
  if (r.time.empty()) r.time = utc_now_iso8601();
  // Invalid UTF-8 in arguments must not make the log unwritable: replace it.
  std::string line = to_json(r).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line += '\n';
  if (audit_) {
    nlohmann::ordered_json fields = nlohmann::ordered_json::parse(to_json(r).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    fields.erase("time");  // the audit record has its own
    MODU_RETURN_IF_ERROR(audit_->append("action", fields));
  }
  if (!fd_) return Status::Ok();
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
