// Tests for the action log: appended JSON lines with every field, SHA-256, concurrent appends.
#include <gtest/gtest.h>

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "modu/agent/action_log.h"

namespace modu::agent {
namespace {

using nlohmann::json;

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream f(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(f, l);) out.push_back(l);
  return out;
}

struct TempDir {
  std::string path;
  TempDir() {
    char d[] = "/tmp/modu_alog_XXXXXX";
    path = mkdtemp(d);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

TEST(ActionLog, MirrorsIntoTheAuditLog) {
  TempDir d;
  trust::AuditOptions o;
  o.path = d.path + "/audit.jsonl";
  auto audit = trust::AuditLog::open(o);
  ASSERT_TRUE(audit.ok()) << audit.status().to_string();
  std::shared_ptr<trust::AuditLog> shared = std::move(audit).value();
  // Audit only (no JSON Lines file), then both.
  auto only = ActionLog::open("", shared);
  ASSERT_TRUE(only.ok());
  ActionRecord r;
  r.tool = "read_file";
  r.source = "builtin";
  r.arguments = {{"path", "a.txt"}};
  r.approved = true;
  r.decided_by = "policy: read_file[0] allow";
  ASSERT_TRUE(only->append(r).ok());
  auto both = ActionLog::open(d.path + "/actions.jsonl", shared);
  ASSERT_TRUE(both.ok());
  r.tool = "run_command";
  r.approved = false;
  ASSERT_TRUE(both->append(r).ok());
  EXPECT_EQ(lines_of(d.path + "/actions.jsonl").size(), 1u);
  ASSERT_TRUE(shared->close().ok());
  trust::AuditFilter f;
  f.kind = "action";
  auto recs = trust::read_audit_log(o.path, f);
  ASSERT_TRUE(recs.ok());
  ASSERT_EQ(recs->size(), 2u);
  EXPECT_EQ((*recs)[0]["tool"], "read_file");
  EXPECT_EQ((*recs)[0]["decided_by"], "policy: read_file[0] allow");
  EXPECT_EQ((*recs)[1]["tool"], "run_command");
  EXPECT_EQ((*recs)[1]["approved"], false);
  auto v = trust::verify_audit_log(o.path);
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->issues.empty());
  EXPECT_FALSE(ActionLog::open("").ok());
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(ActionLog, AppendsOneValidLinePerRecord) {
  TempDir dir;
  std::string path = dir.path + "/actions.jsonl";
  {
    auto log = ActionLog::open(path);
    ASSERT_TRUE(log.ok()) << log.status().to_string();
    EXPECT_EQ(log->path(), path);
    ActionRecord r;
    r.tool = "read_file";
    r.source = "builtin";
    r.arguments = {{"path", "a.txt"}};
    r.approved = true;
    r.decided_by = "policy: read_file[0] allow path=**";
    r.result_sha256 = sha256_hex("hello");
    r.result_bytes = 5;
    r.duration_s = 0.25;
    ASSERT_TRUE(log->append(r).ok());
    r.tool = "run_command";
    r.approved = false;
    r.decided_by = "user";
    r.time = "2025-01-01T00:00:00.000Z";
    ASSERT_TRUE(log->append(r).ok());
  }
  {  // Reopening appends, never truncates.
    auto log = ActionLog::open(path);
    ASSERT_TRUE(log.ok());
    ActionRecord r;
    r.tool = "x";
    r.arguments = {{"bad_utf8", std::string("\xff\xfe")}};
    ASSERT_TRUE(log->append(r).ok());
  }
  auto lines = lines_of(path);
  ASSERT_EQ(lines.size(), 3u);
  for (const auto& l : lines) {
    json j = json::parse(l);
    for (const char* k : {"time", "tool", "source", "arguments", "approved", "decided_by", "is_error",
                          "result_sha256", "result_bytes", "duration_s"})
      EXPECT_TRUE(j.contains(k)) << k << " missing in " << l;
  }
  json first = json::parse(lines[0]);
  EXPECT_EQ(first["tool"], "read_file");
  EXPECT_EQ(first["arguments"]["path"], "a.txt");
  EXPECT_EQ(first["approved"], true);
  EXPECT_EQ(first["result_bytes"], 5);
  EXPECT_DOUBLE_EQ(first["duration_s"].get<double>(), 0.25);
  std::string t = first["time"];
  ASSERT_EQ(t.size(), 24u) << t;  // 2025-01-31T12:00:00.123Z
  EXPECT_EQ(t[10], 'T');
  EXPECT_EQ(t.back(), 'Z');
  EXPECT_EQ(json::parse(lines[1])["time"], "2025-01-01T00:00:00.000Z");
  EXPECT_EQ(json::parse(lines[1])["approved"], false);
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(ActionLog, MissingFolderIsAClearError) {
  auto log = ActionLog::open("/nonexistent_modu_dir/actions.jsonl");
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), StatusCode::kNotFound);
  EXPECT_NE(log.status().message().find("/nonexistent_modu_dir"), std::string::npos);
}

TEST(ActionLog, ConcurrentAppendsGiveIntactLines) {
  TempDir dir;
  std::string path = dir.path + "/actions.jsonl";
  auto log = ActionLog::open(path);
  ASSERT_TRUE(log.ok());
  const int kThreads = 8, kEach = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        ActionRecord r;
        r.tool = std::to_string(t);
        r.tool.insert(0, 1, 't');
        r.arguments = {{"i", i}, {"pad", std::string(5000 + i, static_cast<char>('a' + t))}};
        EXPECT_TRUE(log->append(r).ok());
      }
    });
  for (auto& th : threads) th.join();
  auto lines = lines_of(path);
  ASSERT_EQ(lines.size(), static_cast<size_t>(kThreads * kEach));
  std::vector<int> per(kThreads, 0);
  for (const auto& l : lines) {
    json j = json::parse(l, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << l.substr(0, 80);
    int t = std::stoi(j["tool"].get<std::string>().substr(1));
    EXPECT_EQ(j["arguments"]["pad"].get<std::string>(),
              std::string(5000 + j["arguments"]["i"].get<int>(), static_cast<char>('a' + t)));
    ++per[t];
  }
  for (int n : per) EXPECT_EQ(n, kEach);
}

}  // namespace
}  // namespace modu::agent
