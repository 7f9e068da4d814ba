// Request parsing and validation: accepted shapes of each OpenAI field, and the 4xx each mistake gets.
#include "modu/server/api.h"

#include <gtest/gtest.h>

#include <cmath>

namespace modu::server {
namespace {

ApiLimits limits() {
  ApiLimits l;
  l.n_ctx = 512;
  l.n_vocab = 1000;
  return l;
}

std::optional<ApiError> chat(const std::string& body, ChatRequest* out = nullptr) {
  ChatRequest r;
  return parse_chat_request(body, limits(), out ? out : &r);
}

TEST(ServerApi, ChatMinimalAndContentParts) {
  ChatRequest r;
  ASSERT_FALSE(chat(R"({"model":"m","messages":[{"role":"developer","content":"be brief"},
      {"role":"user","content":[{"type":"text","text":"hi "},{"type":"text","text":"there"}]}]})", &r));
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0]["role"], "system");
  EXPECT_EQ(r.messages[1]["content"], "hi there");
  EXPECT_FLOAT_EQ(r.sampling.temperature, 1.0f);
  EXPECT_FALSE(r.sampling.max_tokens.has_value());
  EXPECT_FALSE(r.stream);
}

// image_url parts leave a marker where they were and their URLs in order.
TEST(ServerApi, ChatImagePartsBecomeMarkers) {
  ChatRequest r;
  ASSERT_FALSE(chat(R"({"messages":[{"role":"user","content":[{"type":"text","text":"A "},
      {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA","detail":"low"}},{"type":"text","text":" B"},
      {"type":"image_url","image_url":"data:image/jpeg;base64,BBBB"}]}]})", &r));
  EXPECT_EQ(r.messages[0]["content"], "A <__media__> B<__media__>");
  ASSERT_EQ(r.image_urls.size(), 2u);
  EXPECT_EQ(r.image_urls[0], "data:image/png;base64,AAAA");
  EXPECT_EQ(r.image_urls[1], "data:image/jpeg;base64,BBBB");
}

TEST(ServerApi, ChatSamplingFields) {
  ChatRequest r;
  ASSERT_FALSE(chat(R"({"messages":[{"role":"user","content":"x"}],"temperature":0,"top_p":0.5,"max_completion_tokens":7,
      "stop":["a","b"],"seed":-3,"presence_penalty":1.5,"frequency_penalty":-1,"logit_bias":{"5":-100,"7":3},
      "logprobs":true,"top_logprobs":3,"stream":true,"stream_options":{"include_usage":true},"top_k":5,"min_p":0.1,
      "repetition_penalty":1.1,"n":1,"user":"u","unknown_extension":{"x":1}})", &r));
  EXPECT_FLOAT_EQ(r.sampling.temperature, 0);
  EXPECT_EQ(*r.sampling.max_tokens, 7);
  EXPECT_EQ(r.sampling.stop.size(), 2u);
  EXPECT_EQ(*r.sampling.seed, (uint64_t)-3);
  ASSERT_EQ(r.sampling.logit_bias.size(), 2u);
  EXPECT_TRUE(std::isinf(r.sampling.logit_bias[0].second));
  EXPECT_EQ(r.sampling.logit_bias[1].first, 7);
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.top_logprobs, 3);
  EXPECT_TRUE(r.stream && r.include_usage);
  EXPECT_EQ(r.sampling.top_k, 5);
}

struct BadCase {
  const char* body;
  const char* param;  // expected "param" ("" for none)
};

TEST(ServerApi, ChatRejectsMistakesWithParam) {
  const BadCase cases[] = {
      {R"({"messages":"hi"})", "messages"},
      {R"({"messages":[]})", "messages"},
      {R"({})", "messages"},
      {R"({"messages":[1]})", "messages[0]"},
      {R"({"messages":[{"content":"x"}]})", "messages[0].role"},
      {R"({"messages":[{"role":"wizard","content":"x"}]})", "messages[0].role"},
      {R"({"messages":[{"role":"user","content":5}]})", "messages[0].content"},
      {R"({"messages":[{"role":"user"}]})", "messages[0].content"},
      {R"({"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"x"}}]}]})", "messages[0].content[0].type"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":5}}]}]})", "messages[0].content[0].image_url.url"},
      {R"({"messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"x"}}]}]})", "messages[0].content[0].type"},
      {R"({"messages":[{"role":"user","content":"x"}],"temperature":"hot"})", "temperature"},
      {R"({"messages":[{"role":"user","content":"x"}],"temperature":2.5})", "temperature"},
      {R"({"messages":[{"role":"user","content":"x"}],"top_p":1.5})", "top_p"},
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":0})", "max_tokens"},
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":-4})", "max_tokens"},
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":100000000000})", "max_tokens"},
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":1.5})", "max_tokens"},
      {R"({"messages":[{"role":"user","content":"x"}],"n":2})", "n"},
      {R"({"messages":[{"role":"user","content":"x"}],"stop":7})", "stop"},
      {R"({"messages":[{"role":"user","content":"x"}],"stop":["a","b","c","d","e"]})", "stop"},
      {R"({"messages":[{"role":"user","content":"x"}],"seed":"1"})", "seed"},
      {R"({"messages":[{"role":"user","content":"x"}],"presence_penalty":3})", "presence_penalty"},
      {R"({"messages":[{"role":"user","content":"x"}],"logit_bias":[1]})", "logit_bias"},
      {R"({"messages":[{"role":"user","content":"x"}],"logit_bias":{"abc":1}})", "logit_bias"},
      {R"({"messages":[{"role":"user","content":"x"}],"logit_bias":{"5000":1}})", "logit_bias"},
      {R"({"messages":[{"role":"user","content":"x"}],"logit_bias":{"5":101}})", "logit_bias"},
      {R"({"messages":[{"role":"user","content":"x"}],"logprobs":"yes"})", "logprobs"},
      {R"({"messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":21})", "top_logprobs"},
      {R"({"messages":[{"role":"user","content":"x"}],"top_logprobs":2})", "top_logprobs"},
      {R"({"messages":[{"role":"user","content":"x"}],"stream":"true"})", "stream"},
      {R"({"messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":true}})", "stream_options"},
      {R"({"messages":[{"role":"user","content":"x"}],"model":5})", "model"},
      {R"({"messages":[{"role":"user","content":"x"}],"user":5})", "user"},
      {R"({"messages":[{"role":"user","content":"x"}],"tools":{}})", "tools"},
      {R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"yaml"}})", "response_format.type"},
      {R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema"}})", "response_format.json_schema"},
      {R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"schema":3}}})", "response_format.json_schema.schema"},
  };
  for (const auto& c : cases) {
    auto e = chat(c.body);
    ASSERT_TRUE(e.has_value()) << c.body;
    EXPECT_EQ(e->status, 400) << c.body;
    EXPECT_EQ(e->param, c.param) << c.body << " -> " << e->message;
    EXPECT_FALSE(e->message.empty());
    const auto j = e->to_json();
    EXPECT_TRUE(j["error"]["message"].is_string());
    EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  }
}

TEST(ServerApi, MalformedBodies) {
  for (std::string body : {std::string(""), std::string("{"), std::string("[1,2]"), std::string("null"), std::string("\"x\""),
                           std::string("{\"messages\": [}"), std::string("{\"a\":\"\xff\xfe\"}"),
                           std::string("{\"a\":\"\xed\xa0\x80\"}"), std::string(200, '[') + std::string(200, ']')}) {
    auto e = chat(body);
    ASSERT_TRUE(e.has_value()) << body;
    EXPECT_EQ(e->status, 400);
  }
}

TEST(ServerApi, Utf8Validation) {
  EXPECT_TRUE(valid_utf8("héllo 한국어 🙂"));
  EXPECT_FALSE(valid_utf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(valid_utf8("abc\xe2\x82"));       // truncated
}

TEST(ServerApi, Completions) {
  CompletionRequest r;
  ASSERT_FALSE(parse_completion_request(R"({"prompt":"Hello","echo":true,"logprobs":2,"max_tokens":0})", limits(), &r));
  EXPECT_EQ(r.prompt_text, "Hello");
  EXPECT_TRUE(r.echo);
  EXPECT_EQ(r.logprobs, 2);
  EXPECT_EQ(*r.sampling.max_tokens, 0);
  CompletionRequest t;
  ASSERT_FALSE(parse_completion_request(R"({"prompt":[[1,2,3]]})", limits(), &t));
  EXPECT_TRUE(t.prompt_is_tokens);
  EXPECT_EQ(t.prompt_tokens, (std::vector<int32_t>{1, 2, 3}));
  for (const char* body : {R"({})", R"({"prompt":5})", R"({"prompt":[1,2000]})", R"({"prompt":[1,-1]})",
                           R"({"prompt":["a","b"]})", R"({"prompt":"x","logprobs":6})", R"({"prompt":"x","max_tokens":0})",
                           R"({"prompt":[]})", R"({"prompt":"x","best_of":3})", R"({"prompt":[1.5]})"}) {
    CompletionRequest c;
    auto e = parse_completion_request(body, limits(), &c);
    ASSERT_TRUE(e.has_value()) << body;
    EXPECT_EQ(e->status, 400) << body;
  }
}

TEST(ServerApi, Embeddings) {
  EmbeddingRequest r;
  ASSERT_FALSE(parse_embedding_request(R"({"input":["a","b"],"encoding_format":"base64"})", limits(), &r));
  EXPECT_EQ(r.texts.size(), 2u);
  EXPECT_TRUE(r.base64);
  EmbeddingRequest t;
  ASSERT_FALSE(parse_embedding_request(R"({"input":[[1,2],[3]]})", limits(), &t));
  EXPECT_EQ(t.token_inputs.size(), 2u);
  for (const char* body : {R"({})", R"({"input":""})", R"({"input":[]})", R"({"input":5})", R"({"input":["a",1]})",
                           R"({"input":"a","encoding_format":"hex"})", R"({"input":"a","dimensions":8})",
                           R"({"input":[[1],[]]})"}) {
    EmbeddingRequest e2;
    auto e = parse_embedding_request(body, limits(), &e2);
    ASSERT_TRUE(e.has_value()) << body;
    EXPECT_EQ(e->status, 400) << body;
  }
}

TEST(ServerApi, DumpReplacesInvalidUtf8) {
  nlohmann::json j = std::string("a\xff");
  EXPECT_EQ(dump_json(j), "\"a\xef\xbf\xbd\"");
}

}  // namespace
}  // namespace modu::server
