// fuzz_request: the server's request parsing (chat, completions, embeddings, Anthropic Messages,
// OpenAI Responses) on arbitrary bytes. Every input must give either a parsed request or a 4xx
// error; nothing may crash, throw or hang. A response_format schema is compiled into a
// JsonConstraint, which then reads the body and the schema's own text byte by
// byte: whatever it accepts as a complete value must be valid JSON.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "modu/runtime/json_constraint.h"
#include "modu/server/api.h"
#include "modu/server/api_compat.h"

using namespace modu::server;

static void check_error(const std::optional<ApiError>& e) {
  if (!e) return;
  if (e->status < 400 || e->status >= 500 || e->message.empty()) std::abort();
  (void)dump_json(e->to_json());
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  ApiLimits lim;
  lim.n_ctx = 256;
  lim.n_vocab = 1000;
  ChatRequest chat;
  auto e = parse_chat_request(body, lim, &chat);
  check_error(e);
  if (!e) {
    (void)dump_json(chat.messages);
    for (const auto& [id, bias] : chat.sampling.logit_bias)
      if (id < 0 || id >= lim.n_vocab) std::abort();
    if (chat.sampling.max_tokens && (*chat.sampling.max_tokens < 1 || *chat.sampling.max_tokens > lim.n_ctx)) std::abort();
    if (chat.response_format == "json_schema") {
      auto c = modu::JsonConstraint::from_schema(chat.json_schema);
      if (c.ok()) {
        for (const std::string& text : {std::string(body), chat.json_schema.dump()}) {
          modu::JsonConstraint k = *c;
          size_t n = 0;
          while (n < text.size() && k.accept(std::string_view(text).substr(n, 1))) ++n;
          if (k.done() && !nlohmann::json::accept(text.substr(0, n))) std::abort();
        }
      }
    }
  }
  CompletionRequest cmp;
  e = parse_completion_request(body, lim, &cmp);
  check_error(e);
  if (!e)
    for (int32_t t : cmp.prompt_tokens)
      if (t < 0 || t >= lim.n_vocab) std::abort();
  EmbeddingRequest emb;
  check_error(parse_embedding_request(body, lim, &emb));
  // Anthropic Messages and OpenAI Responses bodies (with one stored response to continue from).
  ChatRequest msg;
  e = parse_messages_request(body, lim, &msg);
  check_error(e);
  if (e) (void)dump_json(anthropic_error_json(*e));
  else (void)dump_json(msg.messages);
  static ResponseStore store(4);
  if (store.size() == 0) store.put("resp_1", nlohmann::ordered_json::array({{{"role", "user"}, {"content", "hi"}}}));
  ChatRequest rq;
  ResponsesInfo info;
  e = parse_responses_request(body, lim, &store, &rq, &info);
  check_error(e);
  if (!e) (void)dump_json(rq.messages);
  return 0;
}
