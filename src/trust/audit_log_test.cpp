// Tests for the audit log: an untouched log verifies; each kind of tampering planted here (edit,
// edit with a recomputed hash, delete, insert, reorder, a rewritten chain, a foreign key) is found
// and named; concurrent writers (threads and processes), kill -9 mid-write and rotation keep it
// verifiable; filters of `audit show`.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "modu/trust/audit_log.h"
#include "modu/trust/digest.h"
#include "modu/trust/signing.h"

namespace modu::trust {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("modu_audit_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::vector<std::string> read_lines(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  std::string l;
  while (std::getline(in, l)) out.push_back(l);
  return out;
}

void write_lines(const fs::path& p, const std::vector<std::string>& lines) {
  std::ofstream out(p, std::ios::trunc);
  for (const auto& l : lines) out << l << "\n";
}

// The line with its own hash recomputed (what a careful forger does).
std::string rehash(const std::string& line) {
  const size_t k = line.rfind(",\"hash\":\"");
  const std::string prefix = line.substr(0, k);
  return prefix + ",\"hash\":\"" + sha256_hex(prefix) + "\"}";
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  const size_t k = s.find(from);
  EXPECT_NE(k, std::string::npos) << from;
  if (k != std::string::npos) s.replace(k, from.size(), to);
  return s;
}

// A closed log: open, 10 request records (tenant t0..t4, checkpoint every 4), close.
fs::path make_log(const fs::path& dir, int n = 10, int every = 4) {
  AuditOptions o;
  o.path = (dir / "audit.jsonl").string();
  o.checkpoint_every = every;
  auto log = AuditLog::open(o);
  EXPECT_TRUE(log.ok()) << log.status().to_string();
  for (int i = 0; i < n; ++i) {
    std::string tenant = "t";
    tenant += std::to_string(i % 5);
    EXPECT_TRUE((*log)->append("request", ojson{{"tenant", tenant}, {"endpoint", "/v1/chat/completions"}, {"n", i}}).ok());
  }
  EXPECT_TRUE((*log)->close().ok());
  return dir / "audit.jsonl";
}

std::vector<std::string> kinds(const AuditReport& r, bool errors_only = true) {
  std::vector<std::string> k;
  for (const auto& i : r.issues)
    if (i.error || !errors_only) k.push_back(i.kind);
  return k;
}

AuditFilter by_kind(const std::string& k) {
  AuditFilter f;
  f.kind = k;
  return f;
}

AuditFilter by_tenant(const std::string& t) {
  AuditFilter f;
  f.tenant = t;
  return f;
}

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

std::string dump(const AuditReport& r) {
  std::string s;
  for (const auto& i : r.issues) s += (i.error ? "E " : "N ") + i.kind + " line " + std::to_string(i.line) + ": " + i.message + "\n";
  return s;
}

// Index of the line holding `"n":K`.
size_t line_of(const std::vector<std::string>& lines, int k) {
  for (size_t i = 0; i < lines.size(); ++i)
    if (lines[i].find("\"n\":" + std::to_string(k) + ",") != std::string::npos) return i;
  ADD_FAILURE() << "no record n=" << k;
  return 0;
}

TEST(AuditLog, UntouchedLogVerifies) {
  const fs::path d = temp_dir("clean");
  const fs::path log = make_log(d);
  auto r = verify_audit_log(log.string());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->ok()) << dump(*r);
  EXPECT_TRUE(r->issues.empty()) << dump(*r);
  EXPECT_EQ(r->first_seq, 0);
  EXPECT_EQ(r->last_signed_seq, r->last_seq);  // close() ends with a checkpoint
  EXPECT_GE(r->checkpoints, 3);
  EXPECT_EQ(r->key_source, log.string() + ".key.pub");
  // Every line: hash over its prefix, prev = the hash before it, seq 0, 1, 2, ...
  const auto lines = read_lines(log);
  std::string prev(64, '0');
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto j = ojson::parse(lines[i]);
    EXPECT_EQ(j["seq"], (int64_t)i);
    EXPECT_EQ(j["prev"], prev);
    EXPECT_EQ(rehash(lines[i]), lines[i]);
    prev = j["hash"];
  }
  fs::remove_all(d);
}

TEST(AuditLog, EditIsFound) {
  const fs::path d = temp_dir("edit");
  const fs::path log = make_log(d);
  auto lines = read_lines(log);
  const size_t i = line_of(lines, 5);
  lines[i] = replace(lines[i], "\"tenant\":\"t0\"", "\"tenant\":\"tX\"");
  write_lines(log, lines);
  auto r = verify_audit_log(log.string());
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->ok());
  EXPECT_TRUE(has(kinds(*r), "edited")) << dump(*r);
  EXPECT_EQ(r->issues[0].line, (int64_t)i + 1) << dump(*r);
  fs::remove_all(d);
}

TEST(AuditLog, EditWithRecomputedHashIsFoundByTheNextRecord) {
  const fs::path d = temp_dir("edit2");
  const fs::path log = make_log(d);
  auto lines = read_lines(log);
  const size_t i = line_of(lines, 5);
  lines[i] = rehash(replace(lines[i], "\"tenant\":\"t0\"", "\"tenant\":\"tX\""));
  write_lines(log, lines);
  auto r = verify_audit_log(log.string());
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->ok());
  ASSERT_TRUE(has(kinds(*r), "edited")) << dump(*r);
  const auto j = ojson::parse(lines[i]);
  EXPECT_NE(dump(*r).find("record " + std::to_string(j["seq"].get<int64_t>()) + " was changed"), std::string::npos) << dump(*r);
  fs::remove_all(d);
}

TEST(AuditLog, DeletionIsFound) {
  const fs::path d = temp_dir("delete");
  const fs::path log = make_log(d);
  auto lines = read_lines(log);
  const size_t i = line_of(lines, 3);
  const int64_t seq = ojson::parse(lines[i])["seq"];
  lines.erase(lines.begin() + (long)i);
  write_lines(log, lines);
  auto r = verify_audit_log(log.string());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(kinds(*r), std::vector<std::string>{"deleted"}) << dump(*r);
  EXPECT_NE(dump(*r).find("record " + std::to_string(seq) + " before"), std::string::npos) << dump(*r);
  // Deleting the first record too.
  lines.erase(lines.begin());
  write_lines(log, lines);
  EXPECT_TRUE(has(kinds(*verify_audit_log(log.string())), "deleted"));
  fs::remove_all(d);
}

TEST(AuditLog, InsertionIsFound) {
  const fs::path d = temp_dir("insert");
  const fs::path log = make_log(d);
  auto lines = read_lines(log);
  // A copy of record n=2 placed later, and a forged record with a fresh hash.
  auto copy = lines;
  copy.insert(copy.begin() + (long)line_of(copy, 6), lines[line_of(lines, 2)]);
  write_lines(log, copy);
  auto r = verify_audit_log(log.string());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(has(kinds(*r), "inserted")) << dump(*r);
  auto forged = lines;
  const size_t i = line_of(forged, 4);
  std::string f = rehash(replace(forged[i], "\"n\":4,", "\"n\":44,"));
  forged.insert(forged.begin() + (long)i + 1, f);
  write_lines(log, forged);
  r = verify_audit_log(log.string());
  EXPECT_TRUE(has(kinds(*r), "inserted")) << dump(*r);
  write_lines(log, lines);
  // Plain garbage between records.
  auto junk = lines;
  junk.insert(junk.begin() + 3, "{\"seq\": 99, \"note\": \"hello\"}");
  write_lines(log, junk);
  EXPECT_TRUE(has(kinds(*verify_audit_log(log.string())), "garbage"));
  fs::remove_all(d);
}

TEST(AuditLog, ReorderIsFound) {
  const fs::path d = temp_dir("reorder");
  const fs::path log = make_log(d);
  auto lines = read_lines(log);
  std::swap(lines[line_of(lines, 6)], lines[line_of(lines, 7)]);
  write_lines(log, lines);
  auto r = verify_audit_log(log.string());
  ASSERT_TRUE(r.ok());
  const auto k = kinds(*r);
  EXPECT_TRUE(has(k, "reordered")) << dump(*r);
  EXPECT_FALSE(has(k, "deleted")) << dump(*r);
  fs::remove_all(d);
}

TEST(AuditLog, RewrittenChainFailsTheSignature) {
  // A forger who edits a record and recomputes every hash after it still cannot sign.
  const fs::path d = temp_dir("rechain");
  const fs::path log = make_log(d);
  auto lines = read_lines(log);
  const size_t i = line_of(lines, 1);
  lines[i] = replace(lines[i], "\"tenant\":\"t1\"", "\"tenant\":\"tX\"");
  std::string prev = ojson::parse(lines[i - 1])["hash"];
  for (size_t k = i; k < lines.size(); ++k) {
    const std::string old_prev = ojson::parse(lines[k])["prev"];
    lines[k] = rehash(replace(lines[k], "\"prev\":\"" + old_prev + "\"", "\"prev\":\"" + prev + "\""));
    prev = ojson::parse(lines[k])["hash"];
  }
  write_lines(log, lines);
  auto r = verify_audit_log(log.string());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(kinds(*r)[0], "signature") << dump(*r);
  EXPECT_LT(r->last_signed_seq, ojson::parse(lines[i])["seq"].get<int64_t>());
  // A whole log written and signed with a forger's own key, put in place of the real one: the
  // key beside the log (or --pubkey) refuses it; without any trusted key it is only consistent.
  const fs::path e = temp_dir("rechain_b");
  write_lines(log, read_lines(make_log(e)));
  auto r2 = verify_audit_log(log.string());
  ASSERT_TRUE(r2.ok());
  EXPECT_TRUE(has(kinds(*r2), "signature")) << dump(*r2);
  auto r3 = verify_audit_log(log.string(), (e / "audit.jsonl.key.pub").string());
  EXPECT_TRUE(r3->ok()) << dump(*r3);
  fs::remove(log.string() + ".key");
  fs::remove(log.string() + ".key.pub");
  auto r4 = verify_audit_log(log.string());
  EXPECT_TRUE(r4->ok()) << dump(*r4);
  EXPECT_NE(r4->key_source.find("own checkpoints"), std::string::npos);
  fs::remove_all(d);
  fs::remove_all(e);
}

TEST(AuditLog, ConcurrentThreadsAndProcesses) {
  const fs::path d = temp_dir("concurrent");
  AuditOptions o;
  o.path = (d / "audit.jsonl").string();
  o.checkpoint_every = 16;
  o.sync = false;  // the ordering logic is what is tested here, not the disk
  constexpr int kProcs = 2, kThreads = 4, kEach = 40;
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto log = AuditLog::open(o);
      if (!log.ok()) ::_exit(3);
      for (int i = 0; i < kEach; ++i)
        if (!(*log)->append("request", ojson{{"tenant", "proc" + std::to_string(p)}, {"i", i}}).ok()) ::_exit(4);
      ::_exit((*log)->close().ok() ? 0 : 5);
    }
    kids.push_back(pid);
  }
  {
    auto log = AuditLog::open(o);
    ASSERT_TRUE(log.ok());
    std::vector<std::thread> ts;
    for (int t = 0; t < kThreads; ++t)
      ts.emplace_back([&, t] {
        for (int i = 0; i < kEach; ++i) EXPECT_TRUE((*log)->append("request", ojson{{"tenant", "thread" + std::to_string(t)}, {"i", i}}).ok());
      });
    for (auto& t : ts) t.join();
  }
  for (pid_t pid : kids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  auto r = verify_audit_log(o.path);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->issues.empty()) << dump(*r);
  auto recs = read_audit_log(o.path, by_kind("request"));
  ASSERT_TRUE(recs.ok());
  EXPECT_EQ(recs->size(), (size_t)(kProcs + kThreads) * kEach);
  fs::remove_all(d);
}

TEST(AuditLog, KillMinus9MidWriteLosesAtMostTheTornRecord) {
  const fs::path d = temp_dir("kill9");
  AuditOptions o;
  o.path = (d / "audit.jsonl").string();
  o.checkpoint_every = 8;
  o.max_bytes = 0;  // one file: line i holds record i
  const std::string big(50000, 'x');  // long records make a kill inside a write likely
  for (int round = 0; round < 3; ++round) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto log = AuditLog::open(o);
      if (!log.ok()) ::_exit(3);
      for (int i = 0;; ++i) (void)(*log)->append("request", ojson{{"tenant", "k"}, {"output", big}, {"i", i}});
    }
    // Once the writer is writing (however loaded the machine), kill it at a different moment each round.
    for (int w = 0; w < 1000 && read_lines(o.path).size() < 3; ++w) ::usleep(10000);
    ::usleep(20000 + 30000 * round);
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    auto r = verify_audit_log(o.path);
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->ok()) << dump(*r);
  }
  // A torn record for certain: half a line at the end, as a kill inside write(2) leaves it.
  const auto lines = read_lines(o.path);
  ASSERT_FALSE(lines.empty());
  const int64_t before = ojson::parse(lines.back())["seq"];
  ASSERT_EQ(before + 1, (int64_t)lines.size());
  {
    std::ofstream out(o.path, std::ios::app);
    out << lines.back().substr(0, lines.back().size() / 2);
  }
  auto r = verify_audit_log(o.path);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->ok()) << dump(*r);
  EXPECT_TRUE(has(kinds(*r, false), "torn")) << dump(*r);
  // The next writer cuts it off and says so; everything before still verifies.
  {
    auto log = AuditLog::open(o);
    ASSERT_TRUE(log.ok()) << log.status().to_string();
  }
  const auto after = read_lines(o.path);
  ASSERT_GT(after.size(), (size_t)before + 1);
  EXPECT_EQ(ojson::parse(after[(size_t)before + 1])["kind"], "recovery");
  r = verify_audit_log(o.path);
  EXPECT_TRUE(r->issues.empty()) << dump(*r);
  fs::remove_all(d);
}

TEST(AuditLog, RotationKeepsOneChain) {
  const fs::path d = temp_dir("rotate");
  AuditOptions o;
  o.path = (d / "audit.jsonl").string();
  o.max_bytes = 2000;
  o.checkpoint_every = 5;
  {
    auto log = AuditLog::open(o);
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 60; ++i) ASSERT_TRUE((*log)->append("request", ojson{{"tenant", "t"}, {"i", i}}).ok());
    const Status st = (*log)->close();
    ASSERT_TRUE(st.ok()) << st.to_string();
  }
  const auto files = audit_log_files(o.path);
  ASSERT_GE(files.size(), 3u);
  EXPECT_EQ(files.front(), o.path + ".000001");
  EXPECT_EQ(files.back(), o.path);
  auto r = verify_audit_log(o.path);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->issues.empty()) << dump(*r);
  EXPECT_EQ(r->files, (int64_t)files.size());
  // Retention removed the oldest file: a note, the rest still verifies.
  fs::remove(files.front());
  r = verify_audit_log(o.path);
  EXPECT_TRUE(r->ok()) << dump(*r);
  EXPECT_TRUE(has(kinds(*r, false), "truncated-history"));
  // A record deleted inside a rotated file is found.
  auto lines = read_lines(files[1]);
  lines.erase(lines.begin() + 2);
  write_lines(files[1], lines);
  EXPECT_TRUE(has(kinds(*verify_audit_log(o.path)), "deleted"));
  fs::remove_all(d);
}

TEST(AuditLog, ShowFilters) {
  const fs::path d = temp_dir("show");
  const fs::path log = make_log(d);
  auto all = read_audit_log(log.string(), {});
  ASSERT_TRUE(all.ok());
  auto t1 = read_audit_log(log.string(), by_tenant("t1"));
  EXPECT_EQ(t1->size(), 2u);
  EXPECT_EQ(read_audit_log(log.string(), by_kind("open"))->size(), 1u);
  AuditFilter future;
  future.since = std::chrono::system_clock::now() + std::chrono::hours(1);
  EXPECT_TRUE(read_audit_log(log.string(), future)->empty());
  AuditFilter past;
  past.until = std::chrono::system_clock::now() - std::chrono::hours(1);
  EXPECT_TRUE(read_audit_log(log.string(), past)->empty());
  EXPECT_FALSE(read_audit_log((d / "nope").string(), {}).ok());
  fs::remove_all(d);
}

TEST(AuditLog, BadUse) {
  const fs::path d = temp_dir("bad");
  AuditOptions o;
  o.path = (d / "no" / "such" / "a.jsonl").string();
  EXPECT_FALSE(AuditLog::open(o).ok());
  o.path = (d / "a.jsonl").string();
  auto log = AuditLog::open(o);
  ASSERT_TRUE(log.ok());
  EXPECT_FALSE((*log)->append("request", ojson{{"seq", 3}}).ok());
  EXPECT_FALSE((*log)->append("request", ojson::array()).ok());
  EXPECT_TRUE((*log)->close().ok());
  EXPECT_FALSE((*log)->append("request", ojson::object()).ok());
  fs::remove_all(d);
}

}  // namespace
}  // namespace modu::trust
