// Tool calls and reasoning in generated text, for every model family: which convention a chat
// template teaches (each a registered Format), a parser that splits a reply into content,
// reasoning and calls, the streaming variant that turns growing text into OpenAI-style deltas
// (call header first, then argument fragments), and the constraint that forces a call.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "modu/core/status.h"

namespace modu::toolcall {

struct ToolCall {
  std::string id;         // from the model's own syntax where it has one ("" otherwise: the server assigns)
  std::string name;
  std::string arguments;  // a JSON object as text, as OpenAI sends it
};

struct Reply {
  std::string content;          // text outside calls and reasoning
  std::string reasoning;        // <think> blocks, harmony analysis, ... ("" when none)
  std::vector<ToolCall> calls;
};

struct ParseOptions {
  // OpenAI tools array (or null): XML-style formats type each parameter's value by its schema.
  const nlohmann::ordered_json* tools = nullptr;
  // The prompt ended inside an open reasoning block (e.g. "...assistant\n<think>\n"): the
  // generated text starts as reasoning.
  bool reasoning_open = false;
  // Recognize calls (false: tools are off for this request; reasoning is still split off).
  bool calls = true;
};

// Marker-based reasoning styles. Formats such as harmony handle reasoning themselves.
struct ReasoningStyle {
  std::string open, close;  // e.g. "<think>", "</think>"; empty open: none
};

// The result of parsing text that may still grow. Everything in it is final except the last
// call's arguments while `open_call` is set: `arguments` is then a prefix of the final text.
struct PartialReply {
  Reply reply;
  bool open_call = false;  // the last call has not ended yet (its arguments may grow)
};

// A family's convention. Implementations live in fmt_*.cpp, one family per file.
class Format {
 public:
  virtual ~Format() = default;
  virtual const char* name() const = 0;
  // Splits `text` (the reply with reasoning already removed) into content and calls. With
  // partial = true the text may be cut anywhere: content must hold back any suffix that could
  // start a call marker, and an unfinished call appears with the arguments known so far.
  // Whole (partial = false): a call that does not parse stays in the content as written.
  virtual PartialReply parse(std::string_view text, const ParseOptions& opts, bool partial) const = 0;
  // Text that ends generation for this family beyond the template's end-of-turn (e.g. harmony's
  // <|call|>); everything from the first such marker on is dropped before parsing.
  virtual std::vector<std::string> stop_markers() const { return {}; }
  // False when the template's end-of-turn text also separates messages within one reply
  // (harmony's <|end|>): then only stop_markers() end the reply.
  virtual bool template_ends_reply() const { return true; }
  // Whether the format splits reasoning itself (parse then fills reply.reasoning).
  virtual bool own_reasoning() const { return false; }
  // How a call is forced with the JSON constraint: the literal text before the JSON value and
  // the value's shape. Formats whose calls are not JSON (XML parameters) force a JSON body
  // inside their own call marker, which their parsers accept as well.
  struct Forcing {
    std::string prefix;  // literal text before the JSON value; "{name}" is replaced (kArguments)
    enum Shape { kCallObject, kCallArray, kArguments } shape = kCallObject;
    std::string name_key = "name", args_key = "arguments";
  };
  virtual Forcing forcing() const = 0;
};

// Registration: each fmt_*.cpp registers its family with a detector that scores a chat template
// (0: not this family; the highest score wins) and optional reasoning style.
struct FormatInfo {
  std::string name;
  std::string description;  // the syntax, for `modu toolcalls formats` and docs
  int (*detect)(std::string_view template_source) = nullptr;
  std::shared_ptr<const Format> format;
};
bool register_format(FormatInfo info);
const std::vector<FormatInfo>& formats();
const Format* find_format(std::string_view name);  // nullptr if unknown

// What a chat template teaches: the tool-call format (the plain "content" format when none is
// recognized: no calls), the reasoning markers, and the markers that end a turn.
struct Convention {
  const Format* format = nullptr;
  ReasoningStyle reasoning;
  std::vector<std::string> end_markers;  // end-of-turn / EOS texts (see parse_reply)
};
Convention detect_convention(std::string_view template_source);
ReasoningStyle detect_reasoning(std::string_view template_source);

// Parses a whole reply: drops everything from the first end marker on (the convention's
// end_markers and the format's stop_markers), splits off reasoning, then calls and content.
Reply parse_reply(const Convention& c, std::string_view text, const ParseOptions& opts);

// One step of a streamed reply, as OpenAI chat chunks carry it.
struct CallDelta {
  int index = 0;
  std::string id, name;  // set in the first delta of a call only
  std::string arguments; // a fragment to append
};
struct Delta {
  std::string content, reasoning;
  std::vector<CallDelta> calls;
  bool empty() const { return content.empty() && reasoning.empty() && calls.empty(); }
};

// Streaming: feed generated text as it arrives; each push returns what can be sent now. A
// marker split across pushes never reaches content; call arguments stream as they are generated.
// finish() parses the whole text and returns the rest, so that the deltas of all pushes plus
// finish() add up to parse_reply() of the whole text (when the final parse agrees with what was
// already sent, which holds for well-formed replies).
class ReplyStream {
 public:
  ReplyStream(Convention c, ParseOptions opts);
  Delta push(std::string_view text);
  Delta finish();
  // The reply so far, as parse_reply sees it.
  const std::string& text() const { return text_; }
  // Calls as sent (ids filled in by the caller through assign_ids, if any).
  const Reply& sent() const { return sent_; }

 private:
  Delta diff(const PartialReply& now, bool final);
  Convention c_;
  ParseOptions opts_;
  std::string text_;
  Reply sent_;
  bool stopped_ = false;  // an end marker was seen: later text is ignored
};

// Forcing a call (tool_choice "required" or a named function): a JSON schema for the value and
// the literal text around it in the format's convention, so that the reply always parses as
// exactly that call and its arguments match the tool's parameters schema. `parallel`: allow
// more than one call where the format puts calls in an array. Returns an error message ("" on
// success) for a tool_choice naming an unknown function or tools without function names.
struct ForcedCall {
  // One (prefix, schema) pair per alternative: the reply is one of the prefixes followed by a
  // value matching its schema. Formats that write the function name outside the JSON (kArguments)
  // have one alternative per allowed function.
  std::vector<std::pair<std::string, nlohmann::json>> alternatives;
};
std::string forced_call(const Format& f, const nlohmann::ordered_json& tools, const std::string& only_name,
                        bool parallel, ForcedCall* out);

}  // namespace modu::toolcall
