// OpenAI response shapes (completions, chat, chunks, logprobs, usage), built from engine output.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "modu/server/engine.h"
#include "modu/tokenizer/tokenizer.h"

namespace modu::server {

struct ResponseMeta {
  std::string id;
  int64_t created = 0;
  std::string model;
};

// "stop" / "length", or null when the request did not finish normally.
nlohmann::json finish_json(Finish f);
nlohmann::json usage_json(const Stream& st);

// Chat logprobs: {"content": [{"token","logprob","bytes","top_logprobs":[...]}]}.
nlohmann::json chat_logprobs(const Tokenizer& tok, const std::vector<TokenInfo>& toks);

// Legacy completions logprobs; `offset` is the text offset of the first token, advanced in place.
// `first_is_null`: the first token is a prompt start with no logprob (echo).
void append_completion_logprobs(const Tokenizer& tok, const std::vector<TokenInfo>& toks, size_t* offset,
                                bool first_is_null, nlohmann::json* lp);
nlohmann::json empty_completion_logprobs();

nlohmann::json chat_chunk(const ResponseMeta& m, const nlohmann::json& delta, const nlohmann::json& finish,
                          const nlohmann::json& logprobs);
nlohmann::json completion_chunk(const ResponseMeta& m, const std::string& text, const nlohmann::json& finish,
                                const nlohmann::json& logprobs);

// Base64 of the little-endian float32 bytes (encoding_format "base64").
std::string base64_floats(const std::vector<float>& v);

// "data: <json>\n\n"
std::string sse(const nlohmann::json& j);

}  // namespace modu::server
