// The shared tool loop (loop.h) with scripted turns and the workspace built-ins: results reach the
// next turn, calls get ids, unknown tools and bad arguments are error results, long results are
// cut on a character boundary, client calls and deferred approvals end the loop before anything
// of theirs runs, the token budget and the step limit hold, and every decision is logged.
#include "modu/agent/loop.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace modu::agent {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

toolcall::Reply call(const std::string& name, const std::string& args, const std::string& content = "") {
  toolcall::Reply r;
  r.content = content;
  r.calls.push_back({"", name, args});
  return r;
}

toolcall::Reply answer(const std::string& text) {
  toolcall::Reply r;
  r.content = text;
  return r;
}

class Loop : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("modu_loop_test_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir / "docs");
    std::ofstream(dir / "docs" / "a.txt") << std::string(30, 'x') << "안녕하세요안녕하세요안녕하세요";
    auto w = Workspace::open(dir.string());
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    ws.emplace(std::move(w).value());
    box.add_builtins(&*ws, {"read_file", "list_dir"}, SandboxOptions{});
  }
  void TearDown() override { fs::remove_all(dir); }

  // A turn function that plays `script` and records what each turn saw.
  TurnFn scripted(std::vector<toolcall::Reply> script) {
    return [this, script](const Turn& t) -> Result<TurnOutput> {
      seen.push_back(t.messages);
      choices.push_back(t.tool_choice);
      EXPECT_EQ(t.tools.size(), 2u);
      TurnOutput o;
      o.reply = script.at(t.step);
      o.generated = 10;
      return o;
    };
  }

  fs::path dir;
  std::optional<Workspace> ws;
  Toolbox box;
  std::vector<ojson> seen;
  std::vector<std::string> choices;
  Policy allow = Policy::parse(json{{"default", "allow"}}).value();
};

TEST_F(Loop, ResultsReachTheNextTurn) {
  ojson messages = ojson::array({{{"role", "user"}, {"content", "read it"}}});
  LoopOptions lo;
  lo.tool_choice = {"read_file"};
  auto r = run_loop(messages, box, scripted({call("read_file", R"({"path": "docs/a.txt"})"), answer("done")}),
                    policy_decider(allow, nullptr, false), nullptr, lo, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->stop_reason, "answer");
  EXPECT_EQ(r->last.content, "done");
  EXPECT_EQ(r->generated, 20);
  ASSERT_EQ(choices, (std::vector<std::string>{"read_file", "auto"}));
  ASSERT_EQ(messages.size(), 4u);  // user, assistant (call), tool, assistant
  EXPECT_EQ(messages[1]["tool_calls"][0]["id"], "call_1");
  EXPECT_EQ(messages[2]["role"], "tool");
  EXPECT_EQ(messages[2]["tool_call_id"], "call_1");
  EXPECT_NE(messages[2]["content"].get<std::string>().find("안녕하세요"), std::string::npos);
  EXPECT_EQ(seen[1].size(), 3u) << "the second turn saw the tool's result";
  EXPECT_EQ(r->steps[0]["calls"][0]["decided_by"], "policy: default");
}

TEST_F(Loop, ErrorsAreResultsAndLongResultsAreCut) {
  ojson messages = ojson::array({{{"role", "user"}, {"content", "x"}}});
  toolcall::Reply three;
  three.calls = {{"", "nope", "{}"}, {"", "read_file", "not json"}, {"", "read_file", R"({"path": "docs/a.txt"})"}};
  LoopOptions lo;
  lo.max_result_chars = 47;  // inside the sixth Hangul syllable: the cut keeps whole characters
  std::vector<json> results;
  auto r = run_loop(messages, box, scripted({three, answer("ok")}), policy_decider(allow, nullptr, false), nullptr, lo,
                    [&](const std::string& kind, const json& d) {
                      if (kind == "result") results.push_back(d);
                    });
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(results.size(), 3u);
  EXPECT_TRUE(results[0]["is_error"]);
  EXPECT_NE(results[0]["text"].get<std::string>().find("no tool named 'nope'"), std::string::npos);
  EXPECT_TRUE(results[1]["is_error"]);
  EXPECT_NE(results[1]["text"].get<std::string>().find("not a JSON object"), std::string::npos);
  EXPECT_FALSE(results[2]["is_error"]);
  EXPECT_EQ(results[2]["text"].get<std::string>().rfind(std::string(30, 'x') + "안녕하세요\n[modu: the result had 75", 0), 0u)
      << results[2]["text"];
}

TEST_F(Loop, ClientCallsAndDeferredCallsEndTheLoop) {
  // A call of the caller's own function: the toolbox's calls of that turn run, then the loop ends.
  ojson messages = ojson::array({{{"role", "user"}, {"content", "x"}}});
  toolcall::Reply mixed;
  mixed.calls = {{"", "list_dir", R"({"path": "."})"}, {"", "my_function", "{}"}};
  LoopOptions lo;
  lo.client_tools = {"my_function"};
  lo.new_id = [](const char* kind, size_t i) { return std::string(kind) + "_" + std::to_string(i); };
  auto r = run_loop(messages, box, scripted({mixed}), policy_decider(allow, nullptr, false), nullptr, lo, nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stop_reason, "client calls");
  EXPECT_EQ(r->last.calls[0].id, "run_0");
  EXPECT_EQ(r->last.calls[1].id, "client_1");
  ASSERT_EQ(messages.size(), 3u);  // user, assistant, the list_dir result
  EXPECT_EQ(messages[2]["tool_call_id"], "run_0");

  // A person answers later: nothing of the turn runs, and the log stays empty.
  const fs::path log_path = dir / "actions.jsonl";
  auto log = ActionLog::open(log_path.string());
  ASSERT_TRUE(log.ok());
  ojson m2 = ojson::array({{{"role", "user"}, {"content", "x"}}});
  LoopOptions ask;
  ask.defer = [](const BoundTool& t, const json&) { return t.spec.name == "read_file"; };
  toolcall::Reply both;
  both.calls = {{"", "list_dir", R"({"path":   "."})"}, {"", "read_file", R"({"path": "docs/a.txt"})"}};
  seen.clear();
  auto d = run_loop(m2, box, scripted({both}), policy_decider(allow, nullptr, false), &*log, ask, nullptr);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->stop_reason, "approval");
  ASSERT_EQ(d->deferred.size(), 2u);
  EXPECT_EQ(d->deferred[0].arguments, R"({"path":"."})") << "what the person sees is what will run";
  EXPECT_EQ(m2.size(), 2u);
  EXPECT_FALSE(fs::exists(log_path) && fs::file_size(log_path) > 0);
}

TEST_F(Loop, BudgetStepsAndLog) {
  ojson messages = ojson::array({{{"role", "user"}, {"content", "x"}}});
  const fs::path log_path = dir / "actions.jsonl";
  auto log = ActionLog::open(log_path.string());
  ASSERT_TRUE(log.ok());
  Policy deny_read = Policy::parse(json{{"default", "allow"}, {"tools", {{"read_file", json::array({{{"deny", json::object()}}})}}}}).value();
  LoopOptions lo;
  lo.token_budget = 10;  // spent by the first turn: the second never starts
  auto r = run_loop(messages, box, scripted({call("read_file", R"({"path": "docs/a.txt"})"), answer("no")}),
                    policy_decider(deny_read, nullptr, false), &*log, lo, nullptr, nullptr, " (test)");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stop_reason, "token budget");
  EXPECT_NE(messages[2]["content"].get<std::string>().find("not approved"), std::string::npos);
  std::ifstream in(log_path);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  const json a = json::parse(line);
  EXPECT_EQ(a["tool"], "read_file");
  EXPECT_FALSE(a["approved"]);
  EXPECT_NE(a["decided_by"].get<std::string>().find("(test)"), std::string::npos);

  ojson m2 = ojson::array({{{"role", "user"}, {"content", "x"}}});
  LoopOptions two;
  two.max_steps = 2;
  auto s = run_loop(m2, box, scripted({call("list_dir", "{}"), call("list_dir", "{}"), answer("never")}),
                    policy_decider(allow, nullptr, false), nullptr, two, nullptr);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->stop_reason, "step limit");
  EXPECT_EQ(s->steps.size(), 2u);
  std::atomic<bool> stop{true};
  auto st = run_loop(m2, box, scripted({answer("never")}), policy_decider(allow, nullptr, false), nullptr, two, nullptr, &stop);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->stop_reason, "stopped");
}

// The server's rule: a turn cut by its token limit ends the loop; none of its calls runs or stays.
TEST_F(Loop, ACutTurnEndsTheLoopWhenAsked) {
  ojson messages = ojson::array({{{"role", "user"}, {"content", "x"}}});
  LoopOptions lo;
  lo.stop_on_cut = true;
  lo.client_tools = {"my_function"};
  toolcall::Reply two;
  two.calls = {{"", "list_dir", R"({"path": "."})"}, {"", "my_function", "{}"}};
  auto turn = [&](const Turn&) -> Result<TurnOutput> {
    TurnOutput o;
    o.reply = two;
    o.cut = true;
    return o;
  };
  std::vector<std::string> kinds;
  auto r = run_loop(messages, box, turn, policy_decider(allow, nullptr, false), nullptr, lo,
                    [&](const std::string& k, const json&) { kinds.push_back(k); });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stop_reason, "length");
  EXPECT_TRUE(r->cut);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "result"), 0) << "nothing ran";
  ASSERT_EQ(messages.size(), 2u);
  ASSERT_EQ(messages[1]["tool_calls"].size(), 1u) << "the client's call stays, the toolbox's does not";
  EXPECT_EQ(messages[1]["tool_calls"][0]["function"]["name"], "my_function");
  ASSERT_EQ(r->last.calls.size(), 1u);
}

}  // namespace
}  // namespace modu::agent
