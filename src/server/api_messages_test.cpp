// Anthropic Messages compatibility: request parsing into ChatRequest, error shapes, the Message
// object and the SSE event stream.
#include "api_compat_test_util.h"

namespace modu::server {
namespace {

using namespace compat_test;

std::optional<ApiError> messages(const std::string& body, ChatRequest* out = nullptr) {
  ChatRequest r;
  return parse_messages_request(body, limits(), out ? out : &r);
}

TEST(ApiCompatMessages, FullRequestConverts) {
  ChatRequest r;
  auto e = messages(R"({
    "model": "claude-x", "max_tokens": 100,
    "system": "be brief",
    "messages": [
      {"role": "user", "content": [{"type": "text", "text": "weather in"}, {"type": "text", "text": "Paris?"}]},
      {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "need a tool", "signature": "sig"},
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}}]},
      {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
        {"type": "tool_result", "tool_use_id": "toolu_2",
         "content": [{"type": "text", "text": "12:00"}, {"type": "text", "text": "UTC"}], "is_error": false},
        {"type": "text", "text": "thanks"}]},
      {"role": "assistant", "content": "You're welcome."}
    ],
    "tools": [{"name": "get_weather", "description": "Weather by city",
               "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
              {"type": "custom", "name": "get_time", "input_schema": {"type": "object"}}],
    "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
    "stop_sequences": ["END", "", "STOP"],
    "temperature": 0.25, "top_p": 0.5, "top_k": 40, "stream": true,
    "metadata": {"user_id": "u1"}, "thinking": {"type": "enabled", "budget_tokens": 1024}
  })", &r);
  ASSERT_FALSE(e) << e->message;
  EXPECT_EQ(r.model, "claude-x");
  ASSERT_TRUE(r.sampling.max_tokens.has_value());
  EXPECT_EQ(*r.sampling.max_tokens, 100);
  EXPECT_FLOAT_EQ(r.sampling.temperature, 0.25f);
  EXPECT_FLOAT_EQ(r.sampling.top_p, 0.5f);
  EXPECT_EQ(r.sampling.top_k, 40);
  EXPECT_TRUE(r.stream);
  EXPECT_EQ(r.sampling.stop, (std::vector<std::string>{"END", "STOP"}));  // empty strings dropped
  EXPECT_EQ(r.tool_choice, "required");
  EXPECT_FALSE(r.parallel_tool_calls);

  const ojson& m = r.messages;
  ASSERT_TRUE(m.is_array());
  ASSERT_EQ(m.size(), 7u) << m.dump();
  EXPECT_EQ(m[0], (ojson{{"role", "system"}, {"content", "be brief"}}));
  EXPECT_EQ(m[1]["role"], "user");
  EXPECT_EQ(m[1]["content"], "weather in\n\nParis?");

  EXPECT_EQ(m[2]["role"], "assistant");
  EXPECT_EQ(m[2]["content"], "Let me check.");
  EXPECT_EQ(m[2]["reasoning_content"], "need a tool");
  ASSERT_TRUE(m[2]["tool_calls"].is_array());
  ASSERT_EQ(m[2]["tool_calls"].size(), 2u);
  EXPECT_EQ(m[2]["tool_calls"][0]["id"], "toolu_1");
  EXPECT_EQ(m[2]["tool_calls"][0]["type"], "function");
  EXPECT_EQ(m[2]["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(m[2]["tool_calls"][0]["function"]["arguments"], (ojson{{"city", "Paris"}}));
  EXPECT_EQ(m[2]["tool_calls"][1]["function"]["name"], "get_time");
  EXPECT_EQ(m[2]["tool_calls"][1]["function"]["arguments"], ojson::object());

  // tool_result blocks become tool messages (before the user text of the same message)
  EXPECT_EQ(m[3]["role"], "tool");
  EXPECT_EQ(m[3]["tool_call_id"], "toolu_1");
  EXPECT_EQ(m[3]["content"], "sunny");
  EXPECT_EQ(m[3]["name"], "get_weather");
  EXPECT_EQ(m[4]["role"], "tool");
  EXPECT_EQ(m[4]["tool_call_id"], "toolu_2");
  EXPECT_EQ(m[4]["content"], "12:00\n\nUTC");
  EXPECT_EQ(m[4]["name"], "get_time");
  EXPECT_EQ(m[5], (ojson{{"role", "user"}, {"content", "thanks"}}));
  EXPECT_EQ(m[6], (ojson{{"role", "assistant"}, {"content", "You're welcome."}}));
  for (const auto& msg : m) EXPECT_TRUE(msg["content"].is_string()) << msg.dump();

  ASSERT_TRUE(r.tools.is_array());
  ASSERT_EQ(r.tools.size(), 2u);
  EXPECT_EQ(r.tools[0]["type"], "function");
  EXPECT_EQ(r.tools[0]["function"]["name"], "get_weather");
  EXPECT_EQ(r.tools[0]["function"]["description"], "Weather by city");
  EXPECT_EQ(r.tools[0]["function"]["parameters"]["properties"]["city"]["type"], "string");
  EXPECT_EQ(r.tools[0]["function"]["parameters"]["required"], (ojson{"city"}));
  EXPECT_EQ(r.tools[1]["function"]["name"], "get_time");
  EXPECT_FALSE(r.tools[1]["function"].contains("description"));
  EXPECT_EQ(r.tools[1]["function"]["parameters"], (ojson{{"type", "object"}}));
}

TEST(ApiCompatMessages, SystemAsBlocksAndDefaults) {
  ChatRequest r;
  auto e = messages(R"({"model":"m","max_tokens":5,
      "system":[{"type":"text","text":"one"},{"type":"text","text":"two"}],
      "messages":[{"role":"user","content":"hi"}]})", &r);
  ASSERT_FALSE(e) << e->message;
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0]["role"], "system");
  EXPECT_EQ(r.messages[0]["content"], "one\n\ntwo");
  EXPECT_EQ(r.messages[1], (ojson{{"role", "user"}, {"content", "hi"}}));
  // defaults
  EXPECT_FALSE(r.stream);
  EXPECT_EQ(r.tool_choice, "auto");
  EXPECT_TRUE(r.parallel_tool_calls);
  EXPECT_TRUE(r.tools.is_null());
  EXPECT_FLOAT_EQ(r.sampling.temperature, 1.0f);
  EXPECT_TRUE(r.sampling.stop.empty());
}

TEST(ApiCompatMessages, ToolChoiceMapping) {
  const std::string head = R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],
      "tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":)";
  {
    ChatRequest r;
    ASSERT_FALSE(messages(head + R"({"type":"auto"}})", &r));
    EXPECT_EQ(r.tool_choice, "auto");
    EXPECT_TRUE(r.parallel_tool_calls);
  }
  {
    ChatRequest r;
    ASSERT_FALSE(messages(head + R"({"type":"any"}})", &r));
    EXPECT_EQ(r.tool_choice, "required");
  }
  {
    ChatRequest r;
    ASSERT_FALSE(messages(head + R"({"type":"tool","name":"f"}})", &r));
    EXPECT_EQ(r.tool_choice, "function");
    EXPECT_EQ(r.tool_choice_name, "f");
  }
  {
    ChatRequest r;
    ASSERT_FALSE(messages(head + R"({"type":"none"}})", &r));
    EXPECT_EQ(r.tool_choice, "none");
  }
  {
    auto e = messages(head + R"({"type":"tool"}})");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->param, "tool_choice.name");
  }
  {
    auto e = messages(head + R"({"type":"sometimes"}})");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->param, "tool_choice.type");
  }
  {
    auto e = messages(head + R"("auto"})");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->param, "tool_choice");
  }
}

TEST(ApiCompatMessages, ToolResultForUnknownIdIsAcceptedWithoutName) {
  // The parser does not require a matching tool_use; the tool message then carries no "name".
  ChatRequest r;
  auto e = messages(R"({"model":"m","max_tokens":5,"messages":[
      {"role":"user","content":[{"type":"tool_result","tool_use_id":"nope","content":"r"}]}]})", &r);
  ASSERT_FALSE(e) << e->message;
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0]["role"], "tool");
  EXPECT_EQ(r.messages[0]["tool_call_id"], "nope");
  EXPECT_EQ(r.messages[0]["content"], "r");
  EXPECT_FALSE(r.messages[0].contains("name"));
}

// Image blocks: base64 sources become data: URLs and url sources stay URLs, each an image marker
// where the block is, in order.
TEST(ApiCompatMessages, ImageBlocksBecomeImageUrls) {
  ChatRequest r;
  auto e = messages(R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[
      {"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}},
      {"type":"text","text":"and"},
      {"type":"image","source":{"type":"url","url":"https://example.com/a.jpg"}}]}]})", &r);
  ASSERT_FALSE(e) << e->message;
  ASSERT_EQ(r.messages.size(), 1u);
  const std::string c = r.messages[0]["content"];
  EXPECT_EQ(c.find("<__media__>"), 0u) << c;
  EXPECT_NE(c.find("and"), std::string::npos) << c;
  EXPECT_EQ(c.rfind("<__media__>"), c.size() - 11) << c;
  EXPECT_EQ(r.image_urls, (std::vector<std::string>{"data:image/png;base64,AAAA", "https://example.com/a.jpg"}));
}

TEST(ApiCompatMessages, TopPZeroIsClampedPositive) {
  ChatRequest r;
  ASSERT_FALSE(messages(R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"top_p":0})", &r));
  EXPECT_GT(r.sampling.top_p, 0.0f);
  EXPECT_LT(r.sampling.top_p, 1e-3f);
}

TEST(ApiCompatMessages, RejectsMistakesWithParam) {
  const std::string ok_msgs = R"("messages":[{"role":"user","content":"x"}])";
  const std::vector<BadCase> cases = {
      {"missing max_tokens", R"({"model":"m",)" + ok_msgs + "}", "max_tokens"},
      {"missing messages", R"({"model":"m","max_tokens":5})", "messages"},
      {"messages not array", R"({"model":"m","max_tokens":5,"messages":{"role":"user"}})", "messages"},
      {"messages empty", R"({"model":"m","max_tokens":5,"messages":[]})", "messages"},
      {"missing model", R"({"max_tokens":5,)" + ok_msgs + "}", "model"},
      {"bad role", R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"},{"role":"system","content":"s"}]})",
       "messages[1].role"},
      {"missing content", R"({"model":"m","max_tokens":5,"messages":[{"role":"user"}]})", "messages[0].content"},
      {"unknown block type",
       R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"bogus"}]}]})",
       "messages[0].content[1].type"},
      {"image block without source type",
       R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{}}]}]})",
       "messages[0].content[0].source.type"},
      {"image block with a file source",
       R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]})",
       "messages[0].content[0].source.type"},
      {"image block without data",
       R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png"}}]}]})",
       "messages[0].content[0].source.data"},
      {"image block in an assistant message",
       R"({"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"image","source":{"type":"url","url":"u"}}]}]})",
       "messages[0].content[0].type"},
      {"tool_use without id",
       R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"},
           {"role":"assistant","content":[{"type":"tool_use","name":"f","input":{}}]}]})",
       "messages[1].content[0].id"},
      {"tool_use input not object",
       R"({"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"a","name":"f","input":"{}"}]}]})",
       "messages[0].content[0].input"},
      {"tool_use in user message",
       R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_use","id":"a","name":"f","input":{}}]}]})",
       "messages[0].content[0].type"},
      {"tool_result in assistant message",
       R"({"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_result","tool_use_id":"a"}]}]})",
       "messages[0].content[0].type"},
      {"tool_result without tool_use_id",
       R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","content":"r"}]}]})",
       "messages[0].content[0].tool_use_id"},
      {"tool_result content bad block",
       R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"a",
           "content":[{"type":"image"}]}]}]})",
       "messages[0].content[0].content[0].type"},
      {"max_tokens zero", R"({"model":"m","max_tokens":0,)" + ok_msgs + "}", "max_tokens"},
      {"max_tokens above context", R"({"model":"m","max_tokens":513,)" + ok_msgs + "}", "max_tokens"},
      {"max_tokens not integer", R"({"model":"m","max_tokens":"5",)" + ok_msgs + "}", "max_tokens"},
      {"tools not array", R"({"model":"m","max_tokens":5,)" + ok_msgs + R"(,"tools":{"name":"f"}})", "tools"},
      {"tool without input_schema", R"({"model":"m","max_tokens":5,)" + ok_msgs + R"(,"tools":[{"name":"f"}]})",
       "tools[0].input_schema"},
      {"server tool", R"({"model":"m","max_tokens":5,)" + ok_msgs + R"(,"tools":[{"type":"web_search_20250305","name":"w"}]})",
       "tools[0].type"},
      {"tool empty name", R"({"model":"m","max_tokens":5,)" + ok_msgs + R"(,"tools":[{"name":"","input_schema":{}}]})",
       "tools[0].name"},
      {"temperature above 1", R"({"model":"m","max_tokens":5,)" + ok_msgs + R"(,"temperature":1.5})", "temperature"},
      {"temperature negative", R"({"model":"m","max_tokens":5,)" + ok_msgs + R"(,"temperature":-0.1})", "temperature"},
      {"top_p above 1", R"({"model":"m","max_tokens":5,)" + ok_msgs + R"(,"top_p":2})", "top_p"},
      {"top_k negative", R"({"model":"m","max_tokens":5,)" + ok_msgs + R"(,"top_k":-1})", "top_k"},
      {"stream not bool", R"({"model":"m","max_tokens":5,)" + ok_msgs + R"(,"stream":"yes"})", "stream"},
      {"stop_sequences not array", R"({"model":"m","max_tokens":5,)" + ok_msgs + R"(,"stop_sequences":"END"})",
       "stop_sequences"},
      {"stop_sequences non-string", R"({"model":"m","max_tokens":5,)" + ok_msgs + R"(,"stop_sequences":[1]})",
       "stop_sequences"},
      {"thinking in user message",
       R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"thinking","thinking":"t"}]}]})",
       "messages[0].content[0].type"},
      {"too many stop_sequences", R"({"model":"m","max_tokens":5,)" + ok_msgs +
       R"(,"stop_sequences":["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17"]})",
       "stop_sequences"},
      {"content block not object", R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":["x"]}]})",
       "messages[0].content[0]"},
      {"block without type", R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"text":"x"}]}]})",
       "messages[0].content[0].type"},
      {"system bad block", R"({"model":"m","max_tokens":5,"system":[{"type":"image"}],)" + ok_msgs + "}", "system[0].type"},
      {"system number", R"({"model":"m","max_tokens":5,"system":3,)" + ok_msgs + "}", "system"},
      {"metadata not object", R"({"model":"m","max_tokens":5,)" + ok_msgs + R"(,"metadata":"x"})", "metadata"},
      {"invalid JSON", R"({"model":"m","max_tokens":5,)", ""},
      {"body not object", R"([1,2])", ""},
      {"empty body", "", ""},
  };
  for (const auto& c : cases) {
    auto e = messages(c.body);
    ASSERT_TRUE(e) << c.name << " was accepted";
    EXPECT_EQ(e->status, 400) << c.name;
    EXPECT_EQ(e->param, c.param) << c.name << ": " << e->message;
    EXPECT_FALSE(e->message.empty()) << c.name;
    if (*c.param) {
      EXPECT_NE(e->message.find(c.param), std::string::npos) << c.name << ": " << e->message;
    }
    const json aj = anthropic_error_json(*e);
    EXPECT_EQ(aj["type"], "error") << c.name;
    ASSERT_TRUE(aj["error"].is_object()) << c.name;
    EXPECT_EQ(aj["error"]["type"], "invalid_request_error") << c.name;
    EXPECT_EQ(aj["error"]["message"], e->message) << c.name;
    EXPECT_EQ(aj.size(), 2u) << c.name;
  }
}

TEST(ApiCompatMessages, SpecificErrorCodes) {
  auto e = messages(R"({"model":"m","messages":[{"role":"user","content":"x"}]})");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "missing_required_parameter");
  e = messages(R"({"model":"m","max_tokens":5,"messages":"x"})");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "invalid_type");
  e = messages(R"({"model":"m","max_tokens":9999,"messages":[{"role":"user","content":"x"}]})");
  ASSERT_TRUE(e);
  EXPECT_NE(e->message.find("512"), std::string::npos) << e->message;  // names the context size
  e = messages("{not json");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "invalid_json");
}

TEST(ApiCompatMessages, ErrorTypesByStatus) {
  EXPECT_STREQ(anthropic_error_type(400), "invalid_request_error");
  EXPECT_STREQ(anthropic_error_type(401), "authentication_error");
  EXPECT_STREQ(anthropic_error_type(403), "permission_error");
  EXPECT_STREQ(anthropic_error_type(404), "not_found_error");
  EXPECT_STREQ(anthropic_error_type(413), "request_too_large");
  EXPECT_STREQ(anthropic_error_type(429), "rate_limit_error");
  EXPECT_STREQ(anthropic_error_type(500), "api_error");
  EXPECT_STREQ(anthropic_error_type(529), "overloaded_error");
  ApiError e;
  e.status = 429;
  e.message = "slow down";
  EXPECT_EQ(anthropic_error_json(e),
            (json{{"type", "error"}, {"error", {{"type", "rate_limit_error"}, {"message", "slow down"}}}}));
}

// =========================================================================================================
// Anthropic Messages: the Message object

toolcall::Reply reply_with_calls() {
  toolcall::Reply r;
  r.content = "Checking.";
  r.calls.push_back({"toolu_a", "get_weather", R"({"city":"Paris"})"});
  r.calls.push_back({"toolu_b", "get_time", "not json"});
  return r;
}

TEST(ApiCompatMessages, ResponseWithToolUse) {
  const CompatMeta meta{"msg_123", "model-x", 1700000000};
  const json j = messages_response_json(meta, reply_with_calls(), CompatFinish{}, CompatUsage{100, 20, 30});
  EXPECT_EQ(j["id"], "msg_123");
  EXPECT_EQ(j["type"], "message");
  EXPECT_EQ(j["role"], "assistant");
  EXPECT_EQ(j["model"], "model-x");
  EXPECT_EQ(j["stop_reason"], "tool_use");
  EXPECT_TRUE(j["stop_sequence"].is_null());
  ASSERT_EQ(j["content"].size(), 3u) << j.dump();
  EXPECT_EQ(j["content"][0], (json{{"type", "text"}, {"text", "Checking."}}));
  EXPECT_EQ(j["content"][1]["type"], "tool_use");
  EXPECT_EQ(j["content"][1]["id"], "toolu_a");
  EXPECT_EQ(j["content"][1]["name"], "get_weather");
  EXPECT_EQ(j["content"][1]["input"], (json{{"city", "Paris"}}));
  EXPECT_EQ(j["content"][2]["id"], "toolu_b");
  EXPECT_EQ(j["content"][2]["input"], json::object());  // unparsable arguments: an empty object
  // input_tokens excludes the cached tokens
  EXPECT_EQ(j["usage"]["input_tokens"], 70);
  EXPECT_EQ(j["usage"]["output_tokens"], 20);
  EXPECT_EQ(j["usage"]["cache_read_input_tokens"], 30);
  EXPECT_EQ(j["usage"]["cache_creation_input_tokens"], 0);

  // tool use wins over the length limit
  CompatFinish len;
  len.length = true;
  EXPECT_EQ(messages_response_json(meta, reply_with_calls(), len, {})["stop_reason"], "tool_use");
}

TEST(ApiCompatMessages, ResponseStopReasonsAndThinking) {
  const CompatMeta meta{"msg_1", "m", 0};
  toolcall::Reply r;
  r.content = "Hello";
  r.reasoning = "hmm";
  json j = messages_response_json(meta, r, CompatFinish{}, CompatUsage{10, 2, 0});
  EXPECT_EQ(j["stop_reason"], "end_turn");
  EXPECT_TRUE(j["stop_sequence"].is_null());
  ASSERT_EQ(j["content"].size(), 2u);
  EXPECT_EQ(j["content"][0]["type"], "thinking");
  EXPECT_EQ(j["content"][0]["thinking"], "hmm");
  EXPECT_TRUE(j["content"][0].contains("signature"));
  EXPECT_EQ(j["content"][1], (json{{"type", "text"}, {"text", "Hello"}}));
  EXPECT_EQ(j["usage"]["input_tokens"], 10);
  EXPECT_EQ(j["usage"]["cache_read_input_tokens"], 0);

  CompatFinish len;
  len.length = true;
  j = messages_response_json(meta, r, len, {});
  EXPECT_EQ(j["stop_reason"], "max_tokens");
  EXPECT_TRUE(j["stop_sequence"].is_null());

  CompatFinish stop;
  stop.stop_sequence = "END";
  j = messages_response_json(meta, r, stop, {});
  EXPECT_EQ(j["stop_reason"], "stop_sequence");
  EXPECT_EQ(j["stop_sequence"], "END");

  toolcall::Reply plain;
  plain.content = "x";
  j = messages_response_json(meta, plain, CompatFinish{}, {});
  ASSERT_EQ(j["content"].size(), 1u);  // no thinking block without reasoning
  EXPECT_EQ(j["content"][0]["type"], "text");

  // cached > input never goes negative
  j = messages_response_json(meta, plain, CompatFinish{}, CompatUsage{5, 1, 9});
  EXPECT_GE(j["usage"]["input_tokens"].get<int64_t>(), 0);
}

// =========================================================================================================
// Anthropic Messages: streaming

TEST(ApiCompatMessages, StreamEventsInOrder) {
  const CompatMeta meta{"msg_abc", "model-x", 0};
  MessagesStream s(meta);
  std::string text = s.start(100, 40);
  text += s.push(reasoning_delta("Let me "));
  text += s.push(reasoning_delta("think."));
  text += s.push(content_delta("Sure, "));
  text += s.push(content_delta("checking."));
  text += s.push(call_delta(0, "", "get_weather", ""));
  text += s.push(call_delta(0, "", "", R"({"city":)"));
  text += s.push(call_delta(0, "", "", R"( "Paris"})"));
  {
    toolcall::Delta d = call_delta(1, "", "get_time", R"({"tz":)");
    d.calls.push_back({1, "", "", R"("UTC"})"});
    text += s.push(d);
  }
  text += s.finish(CompatFinish{}, CompatUsage{100, 25, 40});
  EXPECT_EQ(s.finish(CompatFinish{}, CompatUsage{}), "");  // nothing after the end
  EXPECT_EQ(s.push(content_delta("late")), "");

  const auto ev = parse_sse(text);
  ASSERT_FALSE(ev.empty());
  for (const auto& e : ev) EXPECT_EQ(e.data["type"], e.name) << e.data.dump();

  // The sequence of event names, with runs of deltas collapsed.
  std::vector<std::string> seq;
  for (const auto& n : names(ev))
    if (seq.empty() || seq.back() != n || n != "content_block_delta") seq.push_back(n);
  const std::vector<std::string> want = {
      "message_start",       "ping",
      "content_block_start", "content_block_delta", "content_block_stop",   // thinking
      "content_block_start", "content_block_delta", "content_block_stop",   // text
      "content_block_start", "content_block_delta", "content_block_stop",   // tool_use 1
      "content_block_start", "content_block_delta", "content_block_stop",   // tool_use 2
      "message_delta",       "message_stop"};
  EXPECT_EQ(seq, want);

  // message_start
  const json& msg = ev[0].data["message"];
  EXPECT_EQ(msg["id"], "msg_abc");
  EXPECT_EQ(msg["model"], "model-x");
  EXPECT_EQ(msg["role"], "assistant");
  EXPECT_EQ(msg["content"], json::array());
  EXPECT_TRUE(msg["stop_reason"].is_null());
  EXPECT_EQ(msg["usage"]["input_tokens"], 60);
  EXPECT_EQ(msg["usage"]["cache_read_input_tokens"], 40);

  // Blocks: indexes from 0, start/delta/stop carry the open block's index; accumulate per block.
  struct Block {
    json start;
    std::string thinking, text, partial_json;
    bool stopped = false;
  };
  std::vector<Block> blocks;
  int open = -1;
  for (const auto& e : ev) {
    if (e.name == "content_block_start") {
      EXPECT_EQ(open, -1) << "a block started while another is open";
      const int idx = e.data["index"].get<int>();
      EXPECT_EQ(idx, (int)blocks.size());
      blocks.push_back({e.data["content_block"], "", "", "", false});
      open = idx;
    } else if (e.name == "content_block_delta") {
      ASSERT_GE(open, 0);
      EXPECT_EQ(e.data["index"], open);
      const json& d = e.data["delta"];
      const std::string kind = blocks[open].start["type"];
      if (kind == "thinking") {
        EXPECT_EQ(d["type"], "thinking_delta");
        blocks[open].thinking += d["thinking"].get<std::string>();
      } else if (kind == "text") {
        EXPECT_EQ(d["type"], "text_delta");
        blocks[open].text += d["text"].get<std::string>();
      } else {
        EXPECT_EQ(d["type"], "input_json_delta");
        blocks[open].partial_json += d["partial_json"].get<std::string>();
      }
    } else if (e.name == "content_block_stop") {
      ASSERT_GE(open, 0);
      EXPECT_EQ(e.data["index"], open);
      blocks[open].stopped = true;
      open = -1;
    }
  }
  EXPECT_EQ(open, -1);
  ASSERT_EQ(blocks.size(), 4u);
  for (const auto& b : blocks) EXPECT_TRUE(b.stopped);
  EXPECT_EQ(blocks[0].start["type"], "thinking");
  EXPECT_EQ(blocks[0].thinking, "Let me think.");
  EXPECT_EQ(blocks[1].start, (json{{"type", "text"}, {"text", ""}}));
  EXPECT_EQ(blocks[1].text, "Sure, checking.");
  EXPECT_EQ(blocks[2].start["type"], "tool_use");
  EXPECT_EQ(blocks[2].start["name"], "get_weather");
  EXPECT_EQ(blocks[2].start["input"], json::object());
  EXPECT_EQ(blocks[2].partial_json, R"({"city": "Paris"})");
  EXPECT_EQ(json::parse(blocks[2].partial_json), (json{{"city", "Paris"}}));
  EXPECT_EQ(blocks[3].start["type"], "tool_use");
  EXPECT_EQ(blocks[3].start["name"], "get_time");
  EXPECT_EQ(blocks[3].partial_json, R"({"tz":"UTC"})");
  const std::string id0 = blocks[2].start["id"], id1 = blocks[3].start["id"];
  EXPECT_FALSE(id0.empty());
  EXPECT_FALSE(id1.empty());
  EXPECT_NE(id0, id1);
  EXPECT_EQ(id0.rfind("toolu_", 0), 0u) << id0;

  // message_delta
  const Sse& md = ev[ev.size() - 2];
  ASSERT_EQ(md.name, "message_delta");
  EXPECT_EQ(md.data["delta"]["stop_reason"], "tool_use");
  EXPECT_TRUE(md.data["delta"]["stop_sequence"].is_null());
  EXPECT_EQ(md.data["usage"]["output_tokens"], 25);

  // The accumulated reply matches, and the non-streaming object agrees with the streamed blocks.
  const toolcall::Reply& r = s.reply();
  EXPECT_EQ(r.reasoning, "Let me think.");
  EXPECT_EQ(r.content, "Sure, checking.");
  ASSERT_EQ(r.calls.size(), 2u);
  EXPECT_EQ(r.calls[0].id, id0);
  EXPECT_EQ(r.calls[0].name, "get_weather");
  EXPECT_EQ(r.calls[0].arguments, R"({"city": "Paris"})");
  EXPECT_EQ(r.calls[1].id, id1);
  EXPECT_EQ(r.calls[1].arguments, R"({"tz":"UTC"})");
  const json full = messages_response_json(meta, r, CompatFinish{}, CompatUsage{100, 25, 40});
  ASSERT_EQ(full["content"].size(), 4u);
  EXPECT_EQ(full["content"][2]["id"], id0);
  EXPECT_EQ(full["content"][3]["input"], (json{{"tz", "UTC"}}));
}

TEST(ApiCompatMessages, StreamKeepsGivenIdsAndTextOnly) {
  MessagesStream s(CompatMeta{"msg_q", "m", 0});
  std::string text = s.push(content_delta("hi"));  // start() implied
  text += s.push(call_delta(0, "toolu_given", "f", "{}"));
  CompatFinish len;
  len.length = true;
  text += s.finish(len, CompatUsage{3, 4, 0});
  const auto ev = parse_sse(text);
  ASSERT_GE(ev.size(), 2u);
  EXPECT_EQ(ev[0].name, "message_start");
  EXPECT_EQ(ev.back().name, "message_stop");
  bool saw = false;
  for (const auto& e : ev)
    if (e.name == "content_block_start" && e.data["content_block"]["type"] == "tool_use") {
      EXPECT_EQ(e.data["content_block"]["id"], "toolu_given");
      EXPECT_EQ(e.data["index"], 1);
      saw = true;
    }
  EXPECT_TRUE(saw);
  EXPECT_EQ(ev[ev.size() - 2].data["delta"]["stop_reason"], "tool_use");

  MessagesStream t(CompatMeta{"msg_r", "m", 0});
  std::string t2 = t.start(1) + t.push(content_delta("a")) + t.finish(len, {});
  const auto ev2 = parse_sse(t2);
  ASSERT_GE(ev2.size(), 2u);
  EXPECT_EQ(ev2[ev2.size() - 2].data["delta"]["stop_reason"], "max_tokens");
}

TEST(ApiCompatMessages, StreamError) {
  MessagesStream s(CompatMeta{"msg_e", "m", 0});
  std::string text = s.start(5) + s.push(content_delta("partial"));
  ApiError err;
  err.status = 529;
  err.message = "overloaded";
  const std::string etext = s.error(err);
  const auto ev = parse_sse(etext);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].name, "error");
  EXPECT_EQ(ev[0].data, (json{{"type", "error"}, {"error", {{"type", "overloaded_error"}, {"message", "overloaded"}}}}));
  // nothing may follow
  EXPECT_EQ(s.push(content_delta("x")), "");
  EXPECT_EQ(s.finish(CompatFinish{}, {}), "");
  EXPECT_EQ(s.error(err), "");
}

TEST(ApiCompatMessages, SseEventFormat) {
  EXPECT_EQ(sse_event("ping", json{{"type", "ping"}}), "event: ping\ndata: {\"type\":\"ping\"}\n\n");
}

TEST(ApiCompatMessages, ReplyToChatMessage) {
  toolcall::Reply r = reply_with_calls();
  r.reasoning = "why";
  const ojson m = reply_to_chat_message(r);
  EXPECT_EQ(m["role"], "assistant");
  EXPECT_EQ(m["content"], "Checking.");
  EXPECT_EQ(m["reasoning_content"], "why");
  ASSERT_EQ(m["tool_calls"].size(), 2u);
  EXPECT_EQ(m["tool_calls"][0]["id"], "toolu_a");
  EXPECT_EQ(m["tool_calls"][0]["type"], "function");
  EXPECT_EQ(m["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(m["tool_calls"][0]["function"]["arguments"], (ojson{{"city", "Paris"}}));
  EXPECT_EQ(m["tool_calls"][1]["function"]["arguments"], "not json");  // kept as text
  toolcall::Reply plain;
  plain.content = "x";
  const ojson p = reply_to_chat_message(plain);
  EXPECT_FALSE(p.contains("tool_calls"));
  EXPECT_FALSE(p.contains("reasoning_content"));
}

// =========================================================================================================
// ResponseStore


}  // namespace
}  // namespace modu::server
