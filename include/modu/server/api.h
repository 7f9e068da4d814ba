// OpenAI API request parsing and validation (chat/completions, completions, embeddings): turns a
// request body into typed fields or an OpenAI-style error, without touching the model.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace modu::server {

// An error as OpenAI reports it: HTTP status plus {"error":{"message","type","param","code"}}.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // "" -> null
  std::string code;   // "" -> null
  nlohmann::json to_json() const;
};

// What validation needs to know about the served model.
struct ApiLimits {
  int64_t n_ctx = 2048;     // tokens per sequence (prompt + completion)
  int32_t n_vocab = 0;      // for token ids in prompts and logit_bias
  size_t max_stop = 4;      // OpenAI allows up to 4 stop strings
  int max_depth = 64;       // JSON nesting limit (checked before parsing)
};

// Sampling and length fields shared by chat and completions.
struct SamplingFields {
  float temperature = 1.0f;  // OpenAI defaults: temperature 1, top_p 1, no top-k / min-p
  float top_p = 1.0f;
  int top_k = 0;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  std::optional<uint64_t> seed;
  std::vector<std::pair<int32_t, float>> logit_bias;
  std::optional<int64_t> max_tokens;  // max_tokens or max_completion_tokens
  std::vector<std::string> stop;
  bool ignore_eos = false;            // extension (llama.cpp): keep generating past end-of-generation
};

struct ChatRequest {
  std::string model;
  nlohmann::ordered_json messages;  // normalized: every content is a string (text parts joined)
  // image_url parts in message order; each left the marker "<__media__>" in its message's text.
  std::vector<std::string> image_urls;
  nlohmann::ordered_json tools;     // array or null, passed to the chat template
  // response_format: "text", "json_object" or "json_schema" (then json_schema holds the schema).
  std::string response_format = "text";
  std::string tool_choice = "auto";  // "none", "auto", "required" or "function" (a named one)
  std::string tool_choice_name;      // the function's name when tool_choice is "function"
  bool parallel_tool_calls = true;   // false: at most one call per reply
  nlohmann::json json_schema;
  SamplingFields sampling;
  bool stream = false;
  bool include_usage = false;
  bool logprobs = false;
  int top_logprobs = 0;
};

struct CompletionRequest {
  std::string model;
  std::string prompt_text;            // when the prompt is a string
  std::vector<int32_t> prompt_tokens; // when the prompt is a token array
  bool prompt_is_tokens = false;
  bool echo = false;
  int logprobs = -1;                  // -1: none; 0..5: sampled token plus that many alternatives
  SamplingFields sampling;
  bool stream = false;
  bool include_usage = false;
};

struct EmbeddingRequest {
  std::string model;
  std::vector<std::string> texts;                 // string inputs, or
  std::vector<std::vector<int32_t>> token_inputs; // token-array inputs
  bool inputs_are_tokens = false;
  bool base64 = false;                            // encoding_format "base64"
};

// Each returns std::nullopt on success, or the error to send. Never throws.
std::optional<ApiError> parse_chat_request(std::string_view body, const ApiLimits& limits, ChatRequest* out);
std::optional<ApiError> parse_completion_request(std::string_view body, const ApiLimits& limits,
                                                 CompletionRequest* out);
std::optional<ApiError> parse_embedding_request(std::string_view body, const ApiLimits& limits,
                                                EmbeddingRequest* out);

// Parses a JSON object body (UTF-8 checked, nesting bounded). Exposed for tests and the fuzzer.
std::optional<ApiError> parse_json_object(std::string_view body, const ApiLimits& limits, nlohmann::json* out);

// True when `s` is valid UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
bool valid_utf8(std::string_view s);

// Serializes without throwing on invalid UTF-8 (replaced with U+FFFD).
std::string dump_json(const nlohmann::json& j);
std::string dump_json(const nlohmann::ordered_json& j);

}  // namespace modu::server
