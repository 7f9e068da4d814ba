// OpenAI response shapes: chat and completion objects and chunks, logprobs in both dialects, usage.
#include "format.h"

#include <cstring>

#include "modu/server/api.h"

namespace modu::server {

using json = nlohmann::json;

json finish_json(Finish f) {
  if (f == Finish::kStop) return "stop";
  if (f == Finish::kLength) return "length";
  return nullptr;
}

json usage_json(const Stream& st) {
  return json{{"prompt_tokens", st.n_prompt()},
              {"completion_tokens", st.n_completion()},
              {"total_tokens", st.n_prompt() + st.n_completion()},
              {"prompt_tokens_details", {{"cached_tokens", st.n_cached()}}}};
}

static json bytes_of(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back((int)c);
  return b;
}

json chat_logprobs(const Tokenizer& tok, const std::vector<TokenInfo>& toks) {
  json content = json::array();
  for (const auto& t : toks) {
    const std::string piece = tok.token_to_piece(t.id, true);
    json top = json::array();
    for (const auto& a : t.top) {
      const std::string p = tok.token_to_piece(a.token, true);
      top.push_back({{"token", p}, {"logprob", a.logprob}, {"bytes", bytes_of(p)}});
    }
    content.push_back({{"token", piece}, {"logprob", t.logprob}, {"bytes", bytes_of(piece)}, {"top_logprobs", top}});
  }
  return json{{"content", content}, {"refusal", nullptr}};
}

json empty_completion_logprobs() {
  return json{{"tokens", json::array()},
              {"token_logprobs", json::array()},
              {"top_logprobs", json::array()},
              {"text_offset", json::array()}};
}

void append_completion_logprobs(const Tokenizer& tok, const std::vector<TokenInfo>& toks, size_t* offset,
                                bool first_is_null, json* lp) {
  for (size_t i = 0; i < toks.size(); ++i) {
    const auto& t = toks[i];
    const std::string piece = tok.token_to_piece(t.id, true);
    (*lp)["tokens"].push_back(piece);
    (*lp)["text_offset"].push_back(*offset);
    *offset += piece.size();
    if (first_is_null && i == 0) {
      (*lp)["token_logprobs"].push_back(nullptr);
      (*lp)["top_logprobs"].push_back(nullptr);
      continue;
    }
    (*lp)["token_logprobs"].push_back(t.logprob);
    json top = json::object();
    for (const auto& a : t.top) top[tok.token_to_piece(a.token, true)] = a.logprob;
    (*lp)["top_logprobs"].push_back(top);
  }
}

json chat_chunk(const ResponseMeta& m, const json& delta, const json& finish, const json& logprobs) {
  return json{{"id", m.id},
              {"object", "chat.completion.chunk"},
              {"created", m.created},
              {"model", m.model},
              {"system_fingerprint", "modu"},
              {"choices", json::array({json{{"index", 0}, {"delta", delta}, {"logprobs", logprobs}, {"finish_reason", finish}}})}};
}

json completion_chunk(const ResponseMeta& m, const std::string& text, const json& finish, const json& logprobs) {
  return json{{"id", m.id},
              {"object", "text_completion"},
              {"created", m.created},
              {"model", m.model},
              {"system_fingerprint", "modu"},
              {"choices", json::array({json{{"index", 0}, {"text", text}, {"logprobs", logprobs}, {"finish_reason", finish}}})}};
}

std::string base64_floats(const std::vector<float>& v) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes(v.size() * 4, '\0');
  for (size_t i = 0; i < v.size(); ++i) {
    uint32_t u;
    std::memcpy(&u, &v[i], 4);
    for (int k = 0; k < 4; ++k) bytes[i * 4 + k] = (char)((u >> (8 * k)) & 0xFF);
  }
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t n = ((uint8_t)bytes[i] << 16) | ((uint8_t)bytes[i + 1] << 8) | (uint8_t)bytes[i + 2];
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i < bytes.size()) {
    uint32_t n = (uint8_t)bytes[i] << 16;
    if (i + 1 < bytes.size()) n |= (uint8_t)bytes[i + 1] << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string sse(const json& j) { return "data: " + dump_json(j) + "\n\n"; }

}  // namespace modu::server
