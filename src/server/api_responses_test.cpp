// OpenAI Responses compatibility: the ResponseStore, request parsing into ChatRequest (input items,
// previous_response_id), error shapes, the Response object and the typed SSE event stream.
#include "api_compat_test_util.h"

namespace modu::server {
namespace {

using namespace compat_test;

TEST(ApiCompatResponseStore, PutGetAndLruEviction) {
  ResponseStore st(2);
  EXPECT_EQ(st.size(), 0u);
  EXPECT_FALSE(st.get("a"));
  st.put("a", ojson::array({{{"role", "user"}, {"content", "A"}}}));
  st.put("b", ojson::array({{{"role", "user"}, {"content", "B"}}}));
  EXPECT_EQ(st.size(), 2u);
  auto a = st.get("a");  // a becomes the most recent: b is evicted next
  ASSERT_TRUE(a);
  EXPECT_EQ((*a)[0]["content"], "A");
  st.put("c", ojson::array({{{"role", "user"}, {"content", "C"}}}));
  EXPECT_EQ(st.size(), 2u);
  EXPECT_FALSE(st.get("b"));
  EXPECT_TRUE(st.get("a"));
  ASSERT_TRUE(st.get("c"));
  EXPECT_EQ((*st.get("c"))[0]["content"], "C");

  // Without the get, the oldest goes.
  ResponseStore st2(2);
  st2.put("a", ojson::array());
  st2.put("b", ojson::array());
  st2.put("c", ojson::array());
  EXPECT_FALSE(st2.get("a"));
  EXPECT_TRUE(st2.get("b"));
  EXPECT_TRUE(st2.get("c"));

  // Re-putting an id replaces it and refreshes it, without growing.
  ResponseStore st3(2);
  st3.put("a", ojson::array({1}));
  st3.put("b", ojson::array({2}));
  st3.put("a", ojson::array({3}));
  EXPECT_EQ(st3.size(), 2u);
  st3.put("c", ojson::array({4}));
  EXPECT_FALSE(st3.get("b"));
  ASSERT_TRUE(st3.get("a"));
  EXPECT_EQ(*st3.get("a"), ojson::array({3}));

  ResponseStore none(0);
  none.put("a", ojson::array());
  EXPECT_EQ(none.size(), 0u);
  EXPECT_FALSE(none.get("a"));
}

// =========================================================================================================
// OpenAI Responses: requests

std::optional<ApiError> responses(const std::string& body, ChatRequest* out = nullptr, ResponsesInfo* info = nullptr,
                                  const ResponseStore* store = nullptr) {
  ChatRequest r;
  ResponsesInfo i;
  return parse_responses_request(body, limits(), store, out ? out : &r, info ? info : &i);
}

// MCP tools: require_approval in its three forms, and mcp_approval_response input items.
TEST(ApiCompatResponses, McpApprovalForms) {
  ResponsesInfo info;
  auto e = responses(R"({"input":[{"role":"user","content":"x"},
      {"type":"mcp_approval_response","approval_request_id":"mcpr_1","approve":false,"reason":"no"},
      {"type":"mcp_call","id":"mcp_0","name":"t","arguments":"{}"}],
    "tools":[{"type":"mcp","server_label":"a"},
             {"type":"mcp","server_label":"b","require_approval":"never"},
             {"type":"mcp","server_label":"c","require_approval":{"never":{"tool_names":["t1"]},"always":["t2"]}}]})",
                     nullptr, &info);
  ASSERT_FALSE(e) << e->message;
  ASSERT_EQ(info.mcp.size(), 3u);
  EXPECT_EQ(info.mcp[0]["require_approval"], "always");  // OpenAI's default
  EXPECT_EQ(info.mcp[1]["require_approval"], "never");
  EXPECT_EQ(info.mcp[2]["require_approval"], "always");
  EXPECT_EQ(info.mcp[2]["never_tools"], json::array({"t1"}));
  EXPECT_EQ(info.mcp[2]["always_tools"], json::array({"t2"}));
  ASSERT_EQ(info.approvals.size(), 1u);
  EXPECT_EQ(info.approvals[0], (json{{"id", "mcpr_1"}, {"approve", false}, {"reason", "no"}}));
  EXPECT_EQ(info.conversation.size(), 1u) << "approval answers and replayed mcp items are not messages";
  for (const char* bad : {R"({"input":"x","tools":[{"type":"mcp","server_label":"a","require_approval":"sometimes"}]})",
                          R"({"input":"x","tools":[{"type":"mcp","server_label":"a","require_approval":{"maybe":[]}}]})",
                          R"({"input":"x","tools":[{"type":"mcp","server_label":"a","require_approval":{"never":[1]}}]})",
                          R"({"input":[{"type":"mcp_approval_response","approval_request_id":"r"}]})",
                          R"({"input":[{"type":"mcp_approval_response","approval_request_id":"r","approve":"yes"}]})"}) {
    auto err = responses(bad, nullptr, nullptr);
    EXPECT_TRUE(err) << bad;
    if (err) {
      EXPECT_EQ(err->status, 400) << bad;
    }
  }
}

TEST(ApiCompatResponses, InputString) {
  ChatRequest r;
  ResponsesInfo info;
  auto e = responses(R"({"model":"m","input":"hello","instructions":"be nice","max_output_tokens":50,
      "temperature":1.5,"top_p":0.9,"stream":true,"metadata":{"k":"v"},"user":"u1"})", &r, &info);
  ASSERT_FALSE(e) << e->message;
  EXPECT_EQ(r.model, "m");
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0], (ojson{{"role", "system"}, {"content", "be nice"}}));
  EXPECT_EQ(r.messages[1], (ojson{{"role", "user"}, {"content", "hello"}}));
  // instructions are not part of the conversation
  ASSERT_EQ(info.conversation.size(), 1u);
  EXPECT_EQ(info.conversation[0], (ojson{{"role", "user"}, {"content", "hello"}}));
  ASSERT_TRUE(info.instructions);
  EXPECT_EQ(*info.instructions, "be nice");
  ASSERT_TRUE(r.sampling.max_tokens);
  EXPECT_EQ(*r.sampling.max_tokens, 50);
  EXPECT_EQ(info.max_output_tokens, 50);
  EXPECT_FLOAT_EQ(r.sampling.temperature, 1.5f);
  EXPECT_FLOAT_EQ(r.sampling.top_p, 0.9f);
  EXPECT_EQ(info.temperature, 1.5);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(info.store);
  EXPECT_EQ(info.metadata, (json{{"k", "v"}}));
  EXPECT_EQ(info.user, "u1");
  EXPECT_FALSE(info.previous_response_id);
}

TEST(ApiCompatResponses, InputItems) {
  ChatRequest r;
  ResponsesInfo info;
  auto e = responses(R"({"model":"m","input":[
      {"type":"message","role":"developer","content":"dev rules"},
      {"role":"user","content":[{"type":"input_text","text":"weather "},{"type":"input_text","text":"in Paris?"}]},
      {"type":"reasoning","summary":[],"content":[{"type":"reasoning_text","text":"use the tool"}]},
      {"type":"message","role":"assistant","content":[{"type":"output_text","text":"Checking."}]},
      {"type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
      {"type":"function_call","call_id":"call_2","name":"get_time","arguments":"{}"},
      {"type":"function_call_output","call_id":"call_1","output":"sunny"},
      {"type":"function_call_output","call_id":"call_2","output":[{"type":"input_text","text":"noon"}]},
      {"type":"message","role":"user","content":"thanks"}],
    "tools":[{"type":"function","name":"get_weather","description":"Weather",
              "parameters":{"type":"object","properties":{"city":{"type":"string"}}},"strict":true},
             {"type":"function","name":"get_time"}],
    "tool_choice":"required","parallel_tool_calls":false,"store":false})", &r, &info);
  ASSERT_FALSE(e) << e->message;
  const ojson& m = r.messages;
  ASSERT_EQ(m.size(), 6u) << m.dump();
  EXPECT_EQ(m[0], (ojson{{"role", "system"}, {"content", "dev rules"}}));
  EXPECT_EQ(m[1], (ojson{{"role", "user"}, {"content", "weather in Paris?"}}));
  EXPECT_EQ(m[2]["role"], "assistant");
  EXPECT_EQ(m[2]["content"], "Checking.");
  EXPECT_EQ(m[2]["reasoning_content"], "use the tool");
  ASSERT_TRUE(m[2].contains("tool_calls"));
  ASSERT_EQ(m[2]["tool_calls"].size(), 2u);
  EXPECT_EQ(m[2]["tool_calls"][0]["id"], "call_1");
  EXPECT_EQ(m[2]["tool_calls"][0]["type"], "function");
  EXPECT_EQ(m[2]["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(m[2]["tool_calls"][0]["function"]["arguments"], (ojson{{"city", "Paris"}}));
  EXPECT_EQ(m[2]["tool_calls"][1]["id"], "call_2");
  EXPECT_EQ(m[3]["role"], "tool");
  EXPECT_EQ(m[3]["tool_call_id"], "call_1");
  EXPECT_EQ(m[3]["content"], "sunny");
  EXPECT_EQ(m[3]["name"], "get_weather");
  EXPECT_EQ(m[4]["tool_call_id"], "call_2");
  EXPECT_EQ(m[4]["content"], "noon");
  EXPECT_EQ(m[4]["name"], "get_time");
  EXPECT_EQ(m[5], (ojson{{"role", "user"}, {"content", "thanks"}}));
  EXPECT_EQ(info.conversation, m);  // no instructions: the same messages

  ASSERT_TRUE(r.tools.is_array());
  ASSERT_EQ(r.tools.size(), 2u);
  EXPECT_EQ(r.tools[0]["type"], "function");
  EXPECT_EQ(r.tools[0]["function"]["name"], "get_weather");
  EXPECT_EQ(r.tools[0]["function"]["description"], "Weather");
  EXPECT_EQ(r.tools[0]["function"]["parameters"]["properties"]["city"]["type"], "string");
  EXPECT_EQ(r.tools[1]["function"]["name"], "get_time");
  EXPECT_EQ(r.tools[1]["function"]["parameters"]["type"], "object");  // default schema
  // echoed in Responses' flat shape
  ASSERT_EQ(info.tools.size(), 2u);
  EXPECT_EQ(info.tools[0]["type"], "function");
  EXPECT_EQ(info.tools[0]["name"], "get_weather");
  EXPECT_EQ(info.tools[0]["strict"], true);
  EXPECT_TRUE(info.tools[1]["parameters"].is_null());

  EXPECT_EQ(r.tool_choice, "required");
  EXPECT_EQ(info.tool_choice, "required");
  EXPECT_FALSE(r.parallel_tool_calls);
  EXPECT_FALSE(info.parallel_tool_calls);
  EXPECT_FALSE(info.store);
}

TEST(ApiCompatResponses, FunctionCallWithoutAssistantMessage) {
  ChatRequest r;
  auto e = responses(R"({"input":[{"role":"user","content":"x"},
      {"type":"function_call","call_id":"c1","name":"f","arguments":"not json"},
      {"type":"function_call_output","call_id":"c1","output":"done"}]})", &r);
  ASSERT_FALSE(e) << e->message;
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[1]["role"], "assistant");
  EXPECT_EQ(r.messages[1]["content"], "");
  ASSERT_EQ(r.messages[1]["tool_calls"].size(), 1u);
  EXPECT_EQ(r.messages[1]["tool_calls"][0]["function"]["arguments"], "not json");
  EXPECT_EQ(r.messages[2]["name"], "f");
}

TEST(ApiCompatResponses, ReasoningJoinsFollowingFunctionCall) {
  ChatRequest r;
  auto e = responses(R"({"input":[{"role":"user","content":"x"},
      {"type":"reasoning","summary":[{"type":"summary_text","text":"plan"}]},
      {"type":"function_call","call_id":"c1","name":"f","arguments":"{\"a\":1}"},
      {"type":"function_call","call_id":"c2","name":"g","arguments":"{}"}]})", &r);
  ASSERT_FALSE(e) << e->message;
  ASSERT_EQ(r.messages.size(), 2u) << r.messages.dump();
  EXPECT_EQ(r.messages[1]["role"], "assistant");
  EXPECT_EQ(r.messages[1]["reasoning_content"], "plan");  // summary used when there is no content
  ASSERT_EQ(r.messages[1]["tool_calls"].size(), 2u);
  EXPECT_EQ(r.messages[1]["tool_calls"][0]["function"]["arguments"], (ojson{{"a", 1}}));
  EXPECT_EQ(r.messages[1]["tool_calls"][1]["id"], "c2");
}

TEST(ApiCompatResponses, ToolChoiceFunctionAndText) {
  ChatRequest r;
  ResponsesInfo info;
  auto e = responses(R"({"input":"x","tools":[{"type":"function","name":"f"}],
      "tool_choice":{"type":"function","name":"f"},
      "text":{"format":{"type":"json_schema","name":"out","schema":{"type":"object"}}}})", &r, &info);
  ASSERT_FALSE(e) << e->message;
  EXPECT_EQ(r.tool_choice, "function");
  EXPECT_EQ(r.tool_choice_name, "f");
  EXPECT_EQ(info.tool_choice, (json{{"type", "function"}, {"name", "f"}}));
  EXPECT_EQ(r.response_format, "json_schema");
  EXPECT_EQ(r.json_schema, (json{{"type", "object"}}));

  ChatRequest r2;
  ASSERT_FALSE(responses(R"({"input":"x","tool_choice":"none"})", &r2));
  EXPECT_EQ(r2.tool_choice, "none");
}

TEST(ApiCompatResponses, PreviousResponseId) {
  ResponseStore store;
  store.put("resp_prev", ojson::array({ojson{{"role", "user"}, {"content", "first"}},
                                       ojson{{"role", "assistant"}, {"content", "answer"}}}));
  ChatRequest r;
  ResponsesInfo info;
  auto e = responses(R"({"input":"second","previous_response_id":"resp_prev","instructions":"sys"})", &r, &info, &store);
  ASSERT_FALSE(e) << e->message;
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[0]["role"], "system");
  EXPECT_EQ(r.messages[1]["content"], "first");
  EXPECT_EQ(r.messages[2]["content"], "answer");
  EXPECT_EQ(r.messages[3], (ojson{{"role", "user"}, {"content", "second"}}));
  ASSERT_TRUE(info.previous_response_id);
  EXPECT_EQ(*info.previous_response_id, "resp_prev");
  ASSERT_EQ(info.conversation.size(), 3u);
  EXPECT_EQ(info.conversation[0]["content"], "first");

  // not found, with and without a store
  for (const ResponseStore* st : {(const ResponseStore*)&store, (const ResponseStore*)nullptr}) {
    auto e2 = responses(R"({"input":"x","previous_response_id":"resp_missing"})", nullptr, nullptr, st);
    ASSERT_TRUE(e2);
    EXPECT_EQ(e2->status, 400);
    EXPECT_EQ(e2->code, "previous_response_not_found");
    EXPECT_EQ(e2->param, "previous_response_id");
    const json j = e2->to_json();
    EXPECT_EQ(j["error"]["code"], "previous_response_not_found");
    EXPECT_EQ(j["error"]["param"], "previous_response_id");
    EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  }
}

TEST(ApiCompatResponses, StoreResponseThenContinue) {
  ResponseStore store;
  ChatRequest r;
  ResponsesInfo info;
  ASSERT_FALSE(responses(R"({"input":"What's the weather?","instructions":"sys",
      "tools":[{"type":"function","name":"get_weather"}]})", &r, &info, &store));
  toolcall::Reply reply;
  reply.content = "Let me look.";
  reply.calls.push_back({"call_9", "get_weather", R"({"city":"Oslo"})"});
  store_response(&store, "resp_1", info, reply);
  ASSERT_EQ(store.size(), 1u);

  ChatRequest r2;
  ResponsesInfo info2;
  auto e = responses(R"({"previous_response_id":"resp_1","input":[
      {"type":"function_call_output","call_id":"call_9","output":"rain"}]})", &r2, &info2, &store);
  ASSERT_FALSE(e) << e->message;
  // no instructions carried over; stored input, the assistant turn, then the new tool output
  ASSERT_EQ(r2.messages.size(), 3u) << r2.messages.dump();
  EXPECT_EQ(r2.messages[0], (ojson{{"role", "user"}, {"content", "What's the weather?"}}));
  EXPECT_EQ(r2.messages[1]["role"], "assistant");
  EXPECT_EQ(r2.messages[1]["content"], "Let me look.");
  ASSERT_EQ(r2.messages[1]["tool_calls"].size(), 1u);
  EXPECT_EQ(r2.messages[1]["tool_calls"][0]["id"], "call_9");
  EXPECT_EQ(r2.messages[1]["tool_calls"][0]["function"]["arguments"], (ojson{{"city", "Oslo"}}));
  EXPECT_EQ(r2.messages[2]["role"], "tool");
  EXPECT_EQ(r2.messages[2]["tool_call_id"], "call_9");
  EXPECT_EQ(r2.messages[2]["name"], "get_weather");  // known from the stored call

  // store:false is not stored
  ResponsesInfo nostore;
  ChatRequest r3;
  ASSERT_FALSE(responses(R"({"input":"x","store":false})", &r3, &nostore, &store));
  store_response(&store, "resp_2", nostore, reply);
  EXPECT_FALSE(store.get("resp_2"));
  EXPECT_EQ(store.size(), 1u);
  store_response(nullptr, "resp_3", info, reply);  // no store: nothing happens
}

// input_image parts: an image marker where the part is, the URL for the handler, and the images of
// a stored conversation sent again with the next turn (previous_response_id).
TEST(ApiCompatResponses, InputImages) {
  ChatRequest r;
  ResponsesInfo info;
  auto e = responses(R"({"input":[{"role":"user","content":[{"type":"input_text","text":"A"},
      {"type":"input_image","image_url":"data:image/png;base64,AAAA","detail":"auto"},{"type":"input_text","text":"B"},
      {"type":"input_image","image_url":"data:image/png;base64,BBBB"}]}]})", &r, &info);
  ASSERT_FALSE(e) << e->message;
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0]["content"], "A<__media__>B<__media__>");
  EXPECT_FALSE(r.messages[0].contains("_modu_images"));  // kept in the stored conversation only
  EXPECT_EQ(r.image_urls, (std::vector<std::string>{"data:image/png;base64,AAAA", "data:image/png;base64,BBBB"}));
  ResponseStore store(4);
  toolcall::Reply reply;
  reply.content = "two pictures";
  store_response(&store, "resp_img", info, reply);
  ChatRequest r2;
  ResponsesInfo info2;
  e = responses(R"({"input":[{"role":"user","content":[{"type":"input_text","text":"and this"},
      {"type":"input_image","image_url":"data:image/png;base64,CCCC"}]}],"previous_response_id":"resp_img"})", &r2, &info2,
                &store);
  ASSERT_FALSE(e) << e->message;
  ASSERT_EQ(r2.messages.size(), 3u);
  EXPECT_EQ(r2.image_urls, (std::vector<std::string>{"data:image/png;base64,AAAA", "data:image/png;base64,BBBB",
                                                     "data:image/png;base64,CCCC"}));
}

TEST(ApiCompatResponses, RejectsMistakesWithParam) {
  const std::vector<BadCase> cases = {
      {"input missing", R"({"model":"m"})", "input"},
      {"input number", R"({"input":3})", "input"},
      {"input object", R"({"input":{"role":"user"}})", "input"},
      {"input empty", R"({"input":[]})", "input"},
      {"item not object", R"({"input":["hi"]})", "input[0]"},
      {"unknown item type", R"({"input":[{"type":"web_search_call"}]})", "input[0].type"},
      {"item_reference", R"({"input":[{"type":"item_reference","id":"x"}]})", "input[0].type"},
      {"item without type or role", R"({"input":[{"content":"x"}]})", "input[0].type"},
      {"bad role", R"({"input":[{"role":"tool","content":"x"}]})", "input[0].role"},
      {"message without content", R"({"input":[{"role":"user"}]})", "input[0].content"},
      {"bad content part", R"({"input":[{"role":"user","content":[{"type":"text","text":"x"}]}]})",
       "input[0].content[0].type"},
      {"image in an assistant message", R"({"input":[{"role":"assistant","content":[{"type":"input_image","image_url":"x"}]}]})",
       "input[0].content[0].type"},
      {"image without url", R"({"input":[{"role":"user","content":[{"type":"input_image","detail":"auto"}]}]})",
       "input[0].content[0].image_url"},
      {"image by file_id", R"({"input":[{"role":"user","content":[{"type":"input_image","file_id":"f"}]}]})",
       "input[0].content[0].file_id"},
      {"file part", R"({"input":[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]})",
       "input[0].content[0].type"},
      {"function_call without call_id", R"({"input":[{"type":"function_call","name":"f","arguments":"{}"}]})",
       "input[0].call_id"},
      {"function_call without arguments", R"({"input":[{"type":"function_call","call_id":"c","name":"f"}]})",
       "input[0].arguments"},
      {"function_call_output without output", R"({"input":[{"type":"function_call_output","call_id":"c"}]})",
       "input[0].output"},
      {"tools not array", R"({"input":"x","tools":{}})", "tools"},
      {"bad tool type", R"({"input":"x","tools":[{"type":"web_search"}]})", "tools[0].type"},
      {"tool without type", R"({"input":"x","tools":[{"name":"f"}]})", "tools[0].type"},
      {"tool without name", R"({"input":"x","tools":[{"type":"function"}]})", "tools[0].name"},
      {"tool parameters not object", R"({"input":"x","tools":[{"type":"function","name":"f","parameters":[]}]})",
       "tools[0].parameters"},
      {"bad tool_choice string", R"({"input":"x","tool_choice":"any"})", "tool_choice"},
      {"bad tool_choice type", R"({"input":"x","tool_choice":{"type":"file_search"}})", "tool_choice.type"},
      {"tool_choice without name", R"({"input":"x","tool_choice":{"type":"function"}})", "tool_choice.name"},
      {"tool_choice number", R"({"input":"x","tool_choice":1})", "tool_choice"},
      {"max_output_tokens zero", R"({"input":"x","max_output_tokens":0})", "max_output_tokens"},
      {"max_output_tokens above context", R"({"input":"x","max_output_tokens":100000})", "max_output_tokens"},
      {"temperature above 2", R"({"input":"x","temperature":2.5})", "temperature"},
      {"top_p above 1", R"({"input":"x","top_p":1.5})", "top_p"},
      {"store not bool", R"({"input":"x","store":"no"})", "store"},
      {"metadata value not string", R"({"input":"x","metadata":{"k":1}})", "metadata.k"},
      {"previous_response_id number", R"({"input":"x","previous_response_id":5})", "previous_response_id"},
      {"instructions not string", R"({"input":"x","instructions":["a"]})", "instructions"},
      {"background", R"({"input":"x","background":true})", "background"},
      {"conversation", R"({"input":"x","conversation":"conv_1"})", "conversation"},
      {"text.format bad type", R"({"input":"x","text":{"format":{"type":"xml"}}})", "text.format.type"},
      {"json_schema without schema", R"({"input":"x","text":{"format":{"type":"json_schema","name":"n"}}})",
       "text.format.schema"},
      {"reasoning bad part", R"({"input":[{"type":"reasoning","content":[{"type":"summary_text","text":"x"}]}]})",
       "input[0].content[0].type"},
      {"invalid JSON", R"({"input":)", ""},
  };
  for (const auto& c : cases) {
    auto e = responses(c.body);
    ASSERT_TRUE(e) << c.name << " was accepted";
    EXPECT_EQ(e->status, 400) << c.name;
    EXPECT_EQ(e->param, c.param) << c.name << ": " << e->message;
    EXPECT_FALSE(e->message.empty()) << c.name;
    const json j = e->to_json();
    ASSERT_TRUE(j.contains("error")) << c.name;
    EXPECT_EQ(j.size(), 1u) << c.name;
    EXPECT_EQ(j["error"]["message"], e->message) << c.name;
    EXPECT_EQ(j["error"]["type"], "invalid_request_error") << c.name;
    if (*c.param) {
      EXPECT_EQ(j["error"]["param"], c.param) << c.name;
    } else {
      EXPECT_TRUE(j["error"]["param"].is_null()) << c.name;
    }
    EXPECT_TRUE(j["error"].contains("code")) << c.name;
  }
  auto e = responses(R"({"model":"m"})");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "missing_required_parameter");
  e = responses(R"({"input":[{"type":"web_search_call"}]})");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "unsupported_value");
}

// =========================================================================================================
// OpenAI Responses: the Response object and its stream

toolcall::Reply full_reply() {
  toolcall::Reply r;
  r.reasoning = "thinking hard";
  r.content = "Here you go.";
  r.calls.push_back({"call_a", "get_weather", R"({"city":"Paris"})"});
  r.calls.push_back({"call_b", "get_time", "{}"});
  return r;
}

TEST(ApiCompatResponses, ResponseObject) {
  const CompatMeta meta{"resp_xyz", "model-x", 1700000000};
  ResponsesInfo info;
  info.instructions = "sys";
  info.max_output_tokens = 64;
  const json j = responses_response_json(meta, info, full_reply(), CompatFinish{}, CompatUsage{50, 10, 20});
  EXPECT_EQ(j["id"], "resp_xyz");
  EXPECT_EQ(j["object"], "response");
  EXPECT_EQ(j["created_at"], 1700000000);
  EXPECT_EQ(j["model"], "model-x");
  EXPECT_EQ(j["status"], "completed");
  EXPECT_TRUE(j["incomplete_details"].is_null());
  EXPECT_TRUE(j["error"].is_null());
  EXPECT_EQ(j["instructions"], "sys");
  EXPECT_EQ(j["max_output_tokens"], 64);
  EXPECT_TRUE(j["previous_response_id"].is_null());
  const json& out = j["output"];
  ASSERT_EQ(out.size(), 4u) << out.dump();
  EXPECT_EQ(out[0]["type"], "reasoning");
  EXPECT_EQ(out[0]["id"], "rs_xyz_0");
  ASSERT_EQ(out[0]["content"].size(), 1u);
  EXPECT_EQ(out[0]["content"][0]["type"], "reasoning_text");
  EXPECT_EQ(out[0]["content"][0]["text"], "thinking hard");
  EXPECT_EQ(out[1]["type"], "message");
  EXPECT_EQ(out[1]["id"], "msg_xyz_1");
  EXPECT_EQ(out[1]["role"], "assistant");
  EXPECT_EQ(out[1]["status"], "completed");
  ASSERT_EQ(out[1]["content"].size(), 1u);
  EXPECT_EQ(out[1]["content"][0]["type"], "output_text");
  EXPECT_EQ(out[1]["content"][0]["text"], "Here you go.");
  EXPECT_EQ(out[1]["content"][0]["annotations"], json::array());
  EXPECT_EQ(out[2]["type"], "function_call");
  EXPECT_EQ(out[2]["id"], "fc_xyz_2");
  EXPECT_EQ(out[2]["call_id"], "call_a");
  EXPECT_EQ(out[2]["name"], "get_weather");
  EXPECT_EQ(out[2]["arguments"], R"({"city":"Paris"})");
  EXPECT_EQ(out[2]["status"], "completed");
  EXPECT_EQ(out[3]["id"], "fc_xyz_3");
  EXPECT_EQ(out[3]["call_id"], "call_b");
  // usage in OpenAI's convention: input includes cached
  EXPECT_EQ(j["usage"]["input_tokens"], 50);
  EXPECT_EQ(j["usage"]["input_tokens_details"]["cached_tokens"], 20);
  EXPECT_EQ(j["usage"]["output_tokens"], 10);
  EXPECT_EQ(j["usage"]["total_tokens"], 60);

  // Length cut without calls: incomplete. With calls: completed.
  CompatFinish len;
  len.length = true;
  toolcall::Reply text_only;
  text_only.content = "cut";
  const json inc = responses_response_json(meta, info, text_only, len, {});
  EXPECT_EQ(inc["status"], "incomplete");
  EXPECT_EQ(inc["incomplete_details"], (json{{"reason", "max_output_tokens"}}));
  ASSERT_EQ(inc["output"].size(), 1u);
  EXPECT_EQ(inc["output"][0]["id"], "msg_xyz_0");
  EXPECT_EQ(responses_response_json(meta, info, full_reply(), len, {})["status"], "completed");
}

struct ItemTrace {
  std::string added_type;
  std::string text, args;
  bool done = false;
  json done_item;
};

TEST(ApiCompatResponses, StreamEventsMatchResponseObject) {
  const CompatMeta meta{"resp_s1", "model-x", 123};
  ResponsesInfo info;
  info.max_output_tokens = 100;
  ResponsesStream s(meta, info);
  std::string text = s.start();
  EXPECT_EQ(s.start(), "");  // once
  text += s.push(reasoning_delta("thinking "));
  text += s.push(reasoning_delta("hard"));
  text += s.push(content_delta("Here "));
  text += s.push(content_delta("you go."));
  text += s.push(call_delta(0, "", "get_weather", ""));
  text += s.push(call_delta(0, "", "", R"({"city":)"));
  text += s.push(call_delta(0, "", "", R"("Paris"})"));
  text += s.push(call_delta(1, "call_given", "get_time", "{}"));
  const CompatUsage usage{50, 10, 20};
  text += s.finish(CompatFinish{}, usage);
  EXPECT_EQ(s.finish(CompatFinish{}, usage), "");
  EXPECT_EQ(s.push(content_delta("late")), "");

  const auto ev = parse_sse(text);
  ASSERT_GE(ev.size(), 4u);
  for (size_t i = 0; i < ev.size(); ++i) {
    EXPECT_EQ(ev[i].data["type"], ev[i].name) << i;
    EXPECT_EQ(ev[i].data["sequence_number"], (int64_t)i) << ev[i].name;
  }
  EXPECT_EQ(ev[0].name, "response.created");
  EXPECT_EQ(ev[0].data["response"]["status"], "in_progress");
  EXPECT_EQ(ev[0].data["response"]["output"], json::array());
  EXPECT_EQ(ev[0].data["response"]["id"], "resp_s1");
  EXPECT_EQ(ev[1].name, "response.in_progress");
  EXPECT_EQ(ev.back().name, "response.completed");

  const std::vector<std::string> n = names(ev);
  const std::set<std::string> seen(n.begin(), n.end());
  for (const char* want : {"response.output_item.added", "response.content_part.added", "response.reasoning_text.delta",
                           "response.reasoning_text.done", "response.output_text.delta", "response.output_text.done",
                           "response.content_part.done", "response.function_call_arguments.delta",
                           "response.function_call_arguments.done", "response.output_item.done"})
    EXPECT_TRUE(seen.count(want)) << want;

  // Per output_index: items open in order, deltas only for the open item, done closes it.
  std::vector<ItemTrace> items;
  int open = -1;
  for (const auto& e : ev) {
    if (!e.data.contains("output_index")) continue;
    const int idx = e.data["output_index"].get<int>();
    if (e.name == "response.output_item.added") {
      EXPECT_EQ(open, -1) << "item added while another is open";
      EXPECT_EQ(idx, (int)items.size());
      items.push_back({e.data["item"]["type"].get<std::string>(), "", "", false, nullptr});
      open = idx;
      continue;
    }
    ASSERT_EQ(idx, open) << e.name << " for an item that is not open";
    if (e.name == "response.output_text.delta" || e.name == "response.reasoning_text.delta") {
      items[idx].text += e.data["delta"].get<std::string>();
      EXPECT_EQ(e.data["content_index"], 0);
    } else if (e.name == "response.function_call_arguments.delta") {
      items[idx].args += e.data["delta"].get<std::string>();
    } else if (e.name == "response.function_call_arguments.done") {
      EXPECT_EQ(e.data["arguments"], items[idx].args);
    } else if (e.name == "response.output_text.done" || e.name == "response.reasoning_text.done") {
      EXPECT_EQ(e.data["text"], items[idx].text);
    } else if (e.name == "response.output_item.done") {
      items[idx].done = true;
      items[idx].done_item = e.data["item"];
      open = -1;
    }
  }
  EXPECT_EQ(open, -1);
  ASSERT_EQ(items.size(), 4u);
  EXPECT_EQ(items[0].added_type, "reasoning");
  EXPECT_EQ(items[0].text, "thinking hard");
  EXPECT_EQ(items[1].added_type, "message");
  EXPECT_EQ(items[1].text, "Here you go.");
  EXPECT_EQ(items[2].added_type, "function_call");
  EXPECT_EQ(items[2].args, R"({"city":"Paris"})");
  EXPECT_EQ(items[3].added_type, "function_call");
  EXPECT_EQ(items[3].args, "{}");
  for (const auto& it : items) EXPECT_TRUE(it.done);
  EXPECT_EQ(items[2].done_item["name"], "get_weather");
  const std::string cid = items[2].done_item["call_id"];
  EXPECT_FALSE(cid.empty());
  EXPECT_EQ(items[3].done_item["call_id"], "call_given");
  EXPECT_NE(cid, "call_given");

  // The final response equals the non-streaming object for the same reply.
  const toolcall::Reply& r = s.reply();
  EXPECT_EQ(r.reasoning, "thinking hard");
  EXPECT_EQ(r.content, "Here you go.");
  ASSERT_EQ(r.calls.size(), 2u);
  EXPECT_EQ(r.calls[0].id, cid);
  EXPECT_EQ(r.calls[0].arguments, R"({"city":"Paris"})");
  const json final_resp = ev.back().data["response"];
  const json want = responses_response_json(meta, info, r, CompatFinish{}, usage);
  EXPECT_EQ(final_resp["output"], want["output"]);
  EXPECT_EQ(final_resp, want);
  EXPECT_EQ(s.response(), want);
  for (size_t i = 0; i < items.size(); ++i) EXPECT_EQ(items[i].done_item, want["output"][i]) << i;
}

TEST(ApiCompatResponses, StreamIncompleteAndError) {
  const CompatMeta meta{"resp_s2", "m", 0};
  {
    ResponsesStream s(meta, ResponsesInfo{});
    std::string text = s.start() + s.push(content_delta("cut off"));
    CompatFinish len;
    len.length = true;
    text += s.finish(len, CompatUsage{5, 100, 0});
    const auto ev = parse_sse(text);
    ASSERT_FALSE(ev.empty());
    EXPECT_EQ(ev.back().name, "response.incomplete");
    EXPECT_EQ(ev.back().data["response"]["status"], "incomplete");
    EXPECT_EQ(ev.back().data["response"]["incomplete_details"]["reason"], "max_output_tokens");
    toolcall::Reply r;
    r.content = "cut off";
    EXPECT_EQ(ev.back().data["response"], responses_response_json(meta, ResponsesInfo{}, r, len, CompatUsage{5, 100, 0}));
  }
  {
    ResponsesStream s(meta, ResponsesInfo{});
    std::string text = s.start() + s.push(content_delta("part"));
    ApiError err;
    err.status = 500;
    err.message = "boom";
    err.code = "server_error";
    text += s.error(err);
    EXPECT_EQ(s.error(err), "");
    EXPECT_EQ(s.push(content_delta("x")), "");
    EXPECT_EQ(s.finish(CompatFinish{}, {}), "");
    const auto ev = parse_sse(text);
    ASSERT_GE(ev.size(), 2u);
    for (size_t i = 0; i < ev.size(); ++i) EXPECT_EQ(ev[i].data["sequence_number"], (int64_t)i);
    const Sse& e = ev[ev.size() - 2];
    EXPECT_EQ(e.name, "error");
    EXPECT_EQ(e.data["message"], "boom");
    EXPECT_EQ(e.data["code"], "server_error");
    EXPECT_EQ(ev.back().name, "response.failed");
    const json& resp = ev.back().data["response"];
    EXPECT_EQ(resp["status"], "failed");
    EXPECT_EQ(resp["error"]["message"], "boom");
    ASSERT_EQ(resp["output"].size(), 1u);  // the open message, as far as it got
    EXPECT_EQ(resp["output"][0]["status"], "incomplete");
    EXPECT_EQ(resp["output"][0]["content"][0]["text"], "part");
    EXPECT_EQ(s.response(), resp);
  }
}


}  // namespace
}  // namespace modu::server
