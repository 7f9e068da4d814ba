// AuditLog: the hash-chained, signed, append-only JSON Lines log (writer, verifier, reader). See
// audit_log.h for the record format. Durability policy: every record is one write(2) on an
// O_APPEND descriptor under flock(LOCK_EX), then fdatasync, before append() returns; a writer
// killed mid-write leaves at most one torn line, which the next writer cuts off (noting its size
// and digest in a "recovery" record) and the verifier reports as a note, not a break.
#include "modu/trust/audit_log.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

#include "modu/trust/digest.h"
#include "modu/trust/provenance.h"
#include "modu/trust/signing.h"

namespace modu::trust {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

const std::string kGenesis(64, '0');
constexpr const char* kHashKey = ",\"hash\":\"";

std::string checkpoint_message(int64_t seq, const std::string& prev, const std::string& time) {
  return "modu-audit-checkpoint-v1\n" + std::to_string(seq) + "\n" + prev + "\n" + time;
}

bool is_hex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Splits a line into its hashed prefix and its hash; false when the framing is wrong.
bool split_hash(std::string_view line, std::string_view* prefix, std::string_view* hash) {
  const size_t k = line.rfind(kHashKey);
  if (k == std::string_view::npos) return false;
  const std::string_view h = line.substr(k + std::strlen(kHashKey));
  if (h.size() != 66 || h.substr(64) != "\"}") return false;
  *prefix = line.substr(0, k);
  *hash = h.substr(0, 64);
  return is_hex64(*hash);
}

// The last complete line of the first `size` bytes of fd ("" when there is none).
Result<std::string> last_line(int fd, off_t size) {
  if (size <= 0) return std::string();
  std::string tail;
  off_t end = size;  // the byte at end-1 is '\n'
  off_t pos = end - 1;
  while (pos > 0) {
    const off_t start = std::max<off_t>(0, pos - 65536);
    std::string chunk((size_t)(pos - start), '\0');
    if (::pread(fd, chunk.data(), chunk.size(), start) != (ssize_t)chunk.size())
      return io_error(std::string("audit log: read failed: ") + std::strerror(errno));
    tail = chunk + tail;
    const size_t nl = chunk.rfind('\n');
    if (nl != std::string::npos) return tail.substr(nl + 1);
    pos = start;
  }
  return tail;
}

std::string rotated_name(const std::string& path, int n) {
  char buf[16];
  std::snprintf(buf, sizeof buf, ".%06d", n);
  return path + buf;
}

}  // namespace

std::vector<std::string> audit_log_files(const std::string& path) {
  std::vector<std::pair<int, std::string>> rotated;
  const fs::path p(path);
  fs::path dir = p.parent_path();
  if (dir.empty()) dir = ".";
  const std::string base = p.filename().string() + ".";
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() != base.size() + 6 || name.rfind(base, 0) != 0) continue;
    const std::string num = name.substr(base.size());
    if (!std::all_of(num.begin(), num.end(), ::isdigit)) continue;
    rotated.emplace_back(std::stoi(num), (dir / name).string());
  }
  std::sort(rotated.begin(), rotated.end());
  std::vector<std::string> out;
  for (auto& r : rotated) out.push_back(r.second);
  if (fs::exists(path, ec)) out.push_back(path);
  return out;
}

struct AuditLog::Impl {
  AuditOptions opts;
  std::optional<SigningKey> key;
  std::mutex mu;
  int fd = -1;
  off_t known_size = -1;  // the file's size after this writer's last write (-1: unknown)
  int64_t last_seq = -1;
  std::string last_hash = kGenesis;
  int since_checkpoint = 0;
  bool closed = false;

  ~Impl() {
    if (fd >= 0) ::close(fd);
  }

  Status open_fd() {
    if (fd >= 0) ::close(fd);
    fd = ::open(opts.path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);  // read: the tail, for the chain head
    if (fd < 0) return io_error("audit log " + opts.path + ": cannot open for appending: " + std::strerror(errno));
    known_size = -1;
    return Status::Ok();
  }

  // Takes the lock on the file that is at `path` now (another process may have rotated it).
  Status lock() {
    for (int tries = 0; tries < 100; ++tries) {
      if (::flock(fd, LOCK_EX) != 0) return io_error("audit log " + opts.path + ": flock failed: " + std::strerror(errno));
      struct stat a{}, b{};
      if (::fstat(fd, &a) == 0 && ::stat(opts.path.c_str(), &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
        return Status::Ok();
      ::flock(fd, LOCK_UN);
      MODU_RETURN_IF_ERROR(open_fd());
    }
    return io_error("audit log " + opts.path + ": the file keeps being replaced; is something else rotating it?");
  }

  // Under the lock: learns the chain's head when another writer appended (or at first use), and
  // cuts off a torn last line. Returns the torn bytes' (length, digest), if any.
  Result<std::optional<std::pair<int64_t, std::string>>> sync_head() {
    struct stat st{};
    if (::fstat(fd, &st) != 0) return io_error("audit log " + opts.path + ": fstat failed: " + std::strerror(errno));
    if (st.st_size == known_size) return std::optional<std::pair<int64_t, std::string>>();
    std::optional<std::pair<int64_t, std::string>> torn;
    off_t size = st.st_size;
    if (size > 0) {
      char c = 0;
      if (::pread(fd, &c, 1, size - 1) != 1) return io_error("audit log " + opts.path + ": read failed");
      if (c != '\n') {
        // last_line treats the byte at its size - 1 as the newline: size + 1 yields the fragment after the last one.
        MODU_ASSIGN_OR_RETURN(std::string frag, last_line(fd, size + 1));
        const off_t keep = size - (off_t)frag.size();
        torn = std::make_pair((int64_t)frag.size(), sha256_hex(frag));
        if (::ftruncate(fd, keep) != 0) return io_error("audit log " + opts.path + ": cannot cut a torn record: " + std::strerror(errno));
        size = keep;
      }
    }
    std::string line;
    if (size > 0) {
      MODU_ASSIGN_OR_RETURN(line, last_line(fd, size));
      if (!line.empty() && line.back() == '\n') line.pop_back();
    } else {
      // An empty current file continues the chain of the newest rotated one.
      const auto files = audit_log_files(opts.path);
      for (auto it = files.rbegin(); it != files.rend(); ++it) {
        if (*it == opts.path) continue;
        const int rfd = ::open(it->c_str(), O_RDONLY | O_CLOEXEC);
        if (rfd < 0) continue;
        struct stat rs{};
        ::fstat(rfd, &rs);
        auto l = last_line(rfd, rs.st_size);
        ::close(rfd);
        if (l.ok()) line = *l;
        if (!line.empty() && line.back() == '\n') line.pop_back();
        break;
      }
    }
    if (line.empty()) {
      last_seq = -1;
      last_hash = kGenesis;
    } else {
      std::string_view prefix, hash;
      const ojson j = ojson::parse(line, nullptr, false);
      if (!split_hash(line, &prefix, &hash) || j.is_discarded() || !j.contains("seq") || !j["seq"].is_number_integer())
        return corrupt("audit log " + opts.path + ": the last record is damaged; run `modu audit verify " + opts.path +
                       "` and start a new log (move this one aside)");
      last_seq = j["seq"].get<int64_t>();
      last_hash = std::string(hash);
    }
    known_size = size;
    return torn;
  }

  Status write_record(const std::string& kind, const ojson& fields) {
    ojson j = ojson::object();
    j["seq"] = last_seq + 1;
    const std::string time = utc_now_iso8601();
    j["time"] = time;
    j["kind"] = kind;
    for (auto it = fields.begin(); it != fields.end(); ++it) {
      if (it.key() == "seq" || it.key() == "time" || it.key() == "kind" || it.key() == "prev" || it.key() == "hash")
        return invalid_argument("audit record field '" + it.key() + "' is reserved");
      j[it.key()] = it.value();
    }
    if (kind == "checkpoint") {
      MODU_CHECK(key.has_value());
      j["public_key"] = base64_encode(key->public_raw());
      j["key_id"] = key->key_id();
      j["signature"] = base64_encode(key->sign(checkpoint_message(last_seq + 1, last_hash, time)));
    }
    j["prev"] = last_hash;
    std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    line.pop_back();  // the closing brace: the hash covers everything before its own key
    const std::string hash = sha256_hex(line);
    line += kHashKey + hash + "\"}\n";
    std::string_view rest = line;
    while (!rest.empty()) {
      const ssize_t w = ::write(fd, rest.data(), rest.size());
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        known_size = -1;  // a partial line may be there: the next append re-reads and cuts it
        return io_error("audit log " + opts.path + ": write failed: " + std::strerror(errno));
      }
      rest.remove_prefix((size_t)w);
    }
    if (opts.sync && ::fdatasync(fd) != 0)
      return io_error("audit log " + opts.path + ": fdatasync failed: " + std::strerror(errno));
    known_size += (off_t)line.size();
    last_seq += 1;
    last_hash = hash;
    since_checkpoint = kind == "checkpoint" ? 0 : since_checkpoint + 1;
    return Status::Ok();
  }

  Status rotate() {
    if (since_checkpoint > 0) MODU_RETURN_IF_ERROR(write_record("checkpoint", ojson::object()));
    int next = 1;
    for (const auto& f : audit_log_files(opts.path))
      if (f != opts.path) next = std::max(next, std::stoi(f.substr(f.size() - 6)) + 1);
    const std::string to = rotated_name(opts.path, next);
    if (::rename(opts.path.c_str(), to.c_str()) != 0)
      return io_error("audit log: cannot rotate " + opts.path + " to " + to + ": " + std::strerror(errno));
    return Status::Ok();  // the caller unlocks; the next append opens a new file at path
  }

  // One locked append of `kind` (plus a recovery record first, a checkpoint and rotation after, as due).
  Status append_locked(const std::string& kind, const ojson& fields) {
    MODU_RETURN_IF_ERROR(lock());
    Status st = [&]() -> Status {
      MODU_ASSIGN_OR_RETURN(auto torn, sync_head());
      if (torn)
        MODU_RETURN_IF_ERROR(write_record("recovery", ojson{{"torn_bytes", torn->first}, {"torn_sha256", torn->second},
                                                             {"note", "a writer stopped mid-record; its partial line was cut off"}}));
      MODU_RETURN_IF_ERROR(write_record(kind, fields));
      if (kind != "checkpoint" && since_checkpoint >= std::max(1, opts.checkpoint_every))
        MODU_RETURN_IF_ERROR(write_record("checkpoint", ojson::object()));
      // Not after close / checkpoint: a closed log keeps its last file in place.
      if (kind != "close" && kind != "checkpoint" && opts.max_bytes > 0 && (uint64_t)known_size > opts.max_bytes)
        MODU_RETURN_IF_ERROR(rotate());
      return Status::Ok();
    }();
    ::flock(fd, LOCK_UN);
    return st;
  }
};

AuditLog::AuditLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AuditLog::~AuditLog() { (void)close(); }

Result<std::unique_ptr<AuditLog>> AuditLog::open(AuditOptions opts) {
  if (opts.path.empty()) return invalid_argument("audit log: empty path");
  fs::path parent = fs::path(opts.path).parent_path();
  if (parent.empty()) parent = ".";
  std::error_code ec;
  if (!fs::is_directory(parent, ec))
    return not_found("audit log " + opts.path + ": folder " + parent.string() + " does not exist (create it first)");
  if (opts.key_path.empty()) opts.key_path = opts.path + ".key";
  auto impl = std::make_unique<Impl>();
  MODU_ASSIGN_OR_RETURN(SigningKey k, SigningKey::load_or_create(opts.key_path));
  impl->key = std::move(k);
  impl->opts = std::move(opts);
  MODU_RETURN_IF_ERROR(impl->open_fd());
  std::unique_ptr<AuditLog> log(new AuditLog(std::move(impl)));
  MODU_RETURN_IF_ERROR(log->append("open", ojson{{"pid", (int64_t)::getpid()},
                                                 {"generator", std::string("modu/") + modu_version()},
                                                 {"key_id", log->key_id()}}));
  return log;
}

Status AuditLog::append(const std::string& kind, const ojson& fields) {
  if (!fields.is_object()) return invalid_argument("audit record fields must be a JSON object");
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->closed) return invalid_argument("audit log " + impl_->opts.path + " is closed");
  return impl_->append_locked(kind, fields);
}

Status AuditLog::checkpoint() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->closed) return invalid_argument("audit log " + impl_->opts.path + " is closed");
  return impl_->append_locked("checkpoint", ojson::object());
}

Status AuditLog::close() {
  if (!impl_) return Status::Ok();
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->closed) return Status::Ok();
  impl_->closed = true;
  Status st = impl_->append_locked("close", ojson{{"pid", (int64_t)::getpid()}});
  if (st.ok()) st = impl_->append_locked("checkpoint", ojson::object());
  return st;
}

const std::string& AuditLog::path() const { return impl_->opts.path; }
std::string AuditLog::key_id() const { return impl_->key->key_id(); }

// ---------------------------------------------------------------------------------------------
// Verification

bool AuditReport::ok() const {
  return std::none_of(issues.begin(), issues.end(), [](const AuditIssue& i) { return i.error; });
}

namespace {

struct Parsed {
  std::string file;
  int64_t line = 0;
  std::string text;
  bool framed = false;  // hash framing and JSON parse
  bool self_ok = false;
  std::string hash;
  ojson j;
  int64_t seq = -1;
};

Result<std::string> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error("cannot read " + path + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

Result<AuditReport> verify_audit_log(const std::string& path, const std::string& pubkey_path) {
  AuditReport rep;
  const auto files = audit_log_files(path);
  if (files.empty()) return not_found("audit log " + path + " does not exist");
  auto issue = [&](const Parsed* p, bool error, const char* kind, std::string msg) {
    rep.issues.push_back({p ? p->file : path, p ? p->line : 0, p ? p->seq : -1, error, kind, std::move(msg)});
  };
  std::string trusted;
  if (!pubkey_path.empty()) {
    MODU_ASSIGN_OR_RETURN(trusted, load_public_raw(pubkey_path));
    rep.key_source = pubkey_path;
  } else {
    std::error_code ec;
    for (const auto& cand : std::vector<std::string>{path + ".key.pub", path + ".key"}) {
      if (!fs::exists(cand, ec)) continue;
      auto k = load_public_raw(cand);
      if (k.ok()) {
        trusted = *k;
        rep.key_source = cand;
        break;
      }
    }
  }
  // Pass 1: every line, framed and parsed.
  std::vector<Parsed> recs;
  for (size_t fi = 0; fi < files.size(); ++fi) {
    MODU_ASSIGN_OR_RETURN(std::string data, read_all(files[fi]));
    ++rep.files;
    size_t pos = 0;
    int64_t ln = 0;
    while (pos < data.size()) {
      ++ln;
      const size_t nl = data.find('\n', pos);
      Parsed p;
      p.file = files[fi];
      p.line = ln;
      if (nl == std::string::npos) {
        p.text = data.substr(pos);
        const bool last_file = fi + 1 == files.size();
        issue(&p, !last_file, "torn",
              last_file ? "the last line is incomplete (" + std::to_string(p.text.size()) +
                              " bytes): a writer was stopped mid-record; it is ignored and the next writer cuts it off"
                        : "a rotated file ends mid-record");
        break;
      }
      p.text = data.substr(pos, nl - pos);
      pos = nl + 1;
      std::string_view prefix, hash;
      if (split_hash(p.text, &prefix, &hash)) {
        p.j = ojson::parse(p.text, nullptr, false);
        if (!p.j.is_discarded() && p.j.is_object() && p.j.contains("seq") && p.j["seq"].is_number_integer() &&
            p.j.contains("prev") && p.j["prev"].is_string() && p.j.contains("kind") && p.j["kind"].is_string()) {
          p.framed = true;
          p.hash = std::string(hash);
          p.self_ok = sha256_hex(prefix) == p.hash;
          p.seq = p.j["seq"].get<int64_t>();
        }
      }
      recs.push_back(std::move(p));
    }
  }
  std::multiset<int64_t> all;
  for (const auto& p : recs)
    if (p.framed) all.insert(p.seq);
  // Pass 2: each record against the one before it.
  const Parsed* prev = nullptr;
  bool chain_clean = true;  // no error since the start: a valid checkpoint then covers everything before it
  std::set<int64_t> seen;
  std::string embedded;  // the log's own key, when no trusted key was found
  for (const auto& p : recs) {
    if (!p.framed) {
      issue(&p, true, "garbage", "not an audit record (damaged, or text was inserted)");
      chain_clean = false;
      continue;
    }
    ++rep.records;
    if (rep.first_seq < 0) rep.first_seq = p.seq;
    rep.last_seq = std::max(rep.last_seq, p.seq);
    bool order_issue = false;
    if (!p.self_ok) {
      issue(&p, true, "edited", "record " + std::to_string(p.seq) + " was edited: its content no longer matches its hash");
      chain_clean = false;
    }
    if (seen.count(p.seq)) {
      issue(&p, true, "inserted", "record " + std::to_string(p.seq) + " appears a second time: a copied or forged record was inserted");
      order_issue = true;
    } else if (prev && p.seq < prev->seq) {
      issue(&p, true, "reordered", "record " + std::to_string(p.seq) + " comes after record " + std::to_string(prev->seq) +
                                      ": records were moved");
      order_issue = true;
    } else if (prev && p.seq > prev->seq + 1) {
      std::vector<int64_t> missing, later;
      for (int64_t s = prev->seq + 1; s < p.seq; ++s) (all.count(s) ? later : missing).push_back(s);
      if (!missing.empty())
        issue(&p, true, "deleted", "record" + std::string(missing.size() > 1 ? "s " : " ") + std::to_string(missing.front()) +
                                       (missing.size() > 1 ? ".." + std::to_string(missing.back()) : "") +
                                       " before record " + std::to_string(p.seq) + " are missing: deleted");
      if (!later.empty())
        issue(&p, true, "reordered", "record " + std::to_string(p.seq) + " comes before record " + std::to_string(later.front()) +
                                         ": records were moved");
      order_issue = true;
    } else if (!prev && p.seq != 0) {
      if (p.j["prev"] == kGenesis)
        issue(&p, true, "deleted", "the log starts at record " + std::to_string(p.seq) + " instead of 0: the first records were deleted");
      else
        issue(&p, false, "truncated-history", "the oldest file starts at record " + std::to_string(p.seq) +
                                                  " (older rotated files were removed); the chain is checked from there");
      order_issue = p.j["prev"] == kGenesis;
    } else if (!prev && p.j["prev"] != kGenesis) {
      issue(&p, true, "chain", "record 0 does not start the chain (its prev is not the genesis value)");
    }
    if (order_issue) chain_clean = false;
    if (prev && !order_issue && p.j["prev"].get<std::string>() != prev->hash) {
      issue(&p, true, "edited", "record " + std::to_string(prev->seq) + " was changed after record " + std::to_string(p.seq) +
                                    " was written (the hash it holds for its predecessor does not match)");
      chain_clean = false;
    }
    seen.insert(p.seq);
    if (p.j["kind"] == "checkpoint") {
      ++rep.checkpoints;
      std::string pub;
      const auto b64 = p.j.value("public_key", std::string());
      auto raw = base64_decode(b64);
      if (!trusted.empty()) {
        pub = trusted;
        if (raw.ok() && *raw != trusted)
          issue(&p, true, "signature", "checkpoint " + std::to_string(p.seq) + " names another key (" +
                                           p.j.value("key_id", std::string("?")) + ") than the trusted one (" + key_id_of(trusted) + ")");
      } else if (raw.ok()) {
        if (embedded.empty()) {
          embedded = *raw;
          rep.key_source = "the log's own checkpoints (no trusted key given: this proves consistency, not authorship; pass --pubkey)";
        }
        pub = embedded;
      }
      auto sig = base64_decode(p.j.value("signature", std::string()));
      const bool valid = sig.ok() && verify_signature(pub, checkpoint_message(p.seq, p.j["prev"].get<std::string>(),
                                                                              p.j.value("time", std::string())), *sig);
      if (!valid) {
        issue(&p, true, "signature", "checkpoint " + std::to_string(p.seq) +
                                         ": the signature does not verify (the records before it were rewritten, or the checkpoint was)");
        chain_clean = false;
      } else if (chain_clean && p.self_ok) {
        rep.last_signed_seq = p.seq;
      }
    }
    prev = &p;
  }
  if (rep.records > 0 && rep.last_seq > rep.last_signed_seq)
    issue(nullptr, false, "unsigned",
          rep.last_signed_seq < 0 ? "no record is covered by a valid signed checkpoint"
                                  : "records " + std::to_string(rep.last_signed_seq + 1) + ".." + std::to_string(rep.last_seq) +
                                        " are chained but not yet covered by a signed checkpoint (the writer is running, or crashed)");
  return rep;
}

Result<std::vector<ojson>> read_audit_log(const std::string& path, const AuditFilter& f) {
  const auto files = audit_log_files(path);
  if (files.empty()) return not_found("audit log " + path + " does not exist");
  std::vector<ojson> out;
  for (const auto& file : files) {
    std::ifstream in(file);
    if (!in) return io_error("cannot read " + file);
    std::string line;
    while (std::getline(in, line)) {
      ojson j = ojson::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object()) continue;
      if (!f.kind.empty() && j.value("kind", std::string()) != f.kind) continue;
      if (!f.tenant.empty() && j.value("tenant", std::string()) != f.tenant) continue;
      if (!f.endpoint.empty() && j.value("endpoint", std::string()) != f.endpoint) continue;
      if (f.since || f.until) {
        auto t = parse_utc_iso8601(j.value("time", std::string()));
        if (!t) continue;
        if (f.since && *t < *f.since) continue;
        if (f.until && *t > *f.until) continue;
      }
      out.push_back(std::move(j));
    }
  }
  return out;
}

}  // namespace modu::trust
