// Tool calls in generated text: which convention a chat template teaches its model (Hermes/Qwen
// <tool_call> tags, Mistral [TOOL_CALLS], Llama 3 JSON), splitting output into content and OpenAI
// tool_calls, and the streaming variant that holds text back once a call has started.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace modu::server {

enum class ToolFormat {
  kNone,     // no tools in the request: output is content
  kHermes,   // <tool_call>{"name": ..., "arguments": {...}}</tool_call> (Qwen 2.5/3, Hermes, EXAONE 4, ...)
  kMistral,  // [TOOL_CALLS][{"name": ..., "arguments": {...}}, ...] or [TOOL_CALLS]name[ARGS]{...}
  kLlama3,   // {"name": ..., "parameters": {...}} as the whole reply, optionally after <|python_tag|>
};

// The convention a chat template uses, from the markers it contains (kHermes when none is found:
// the most common one among templates that render tools without naming a marker).
ToolFormat detect_tool_format(std::string_view template_source);
const char* tool_format_name(ToolFormat f);

struct ToolCall {
  std::string name;
  std::string arguments;  // a JSON object as text, as OpenAI sends it
};

struct ToolParse {
  std::string content;          // text outside the calls (trimmed when there are calls)
  std::vector<ToolCall> calls;  // empty: no (well-formed) call; then content is the whole text
};

// Splits a finished reply. A reply whose call markers are present but whose call does not parse
// stays content as a whole, so nothing the model wrote is lost.
ToolParse parse_tool_calls(ToolFormat f, std::string_view text);

// What forces a reply to be a tool call (tool_choice "required" or a named function): a JSON
// schema for the call object in convention f ({"name", "arguments"} / Llama 3 {"name",
// "parameters"}; Mistral's is an array of one) and the literal text the reply starts with.
// Each candidate's parameters schema is enforced (several candidates form a union told apart by
// the name, which comes first). Returns an error message (and leaves *out) on a
// tool_choice naming an unknown function or tools without function names.
struct ForcedCall {
  nlohmann::json schema;
  std::string prefix;
};
std::string forced_call(ToolFormat f, const nlohmann::ordered_json& tools, const std::string& only_name, ForcedCall* out);

// Streaming: push() returns the content that can be sent now; text from a call marker on (or a
// prefix of one at the end of what arrived) is held back. finish() parses everything held.
class ToolCallStream {
 public:
  explicit ToolCallStream(ToolFormat f) : f_(f) {}
  std::string push(std::string_view text);
  ToolParse finish();
  // The held text as content, unparsed (a reply cut by max_tokens or an error).
  std::string flush_raw();

 private:
  ToolFormat f_;
  std::string sent_;    // content already returned by push()
  std::string held_;    // text not yet returned
  bool in_call_ = false;
};

}  // namespace modu::server
