// Shared pieces of the tool-call parsers: finding markers, holding back a marker's possible start
// at the end of partial text, JSON spans that may be cut, call objects, typed XML parameters and
// the content builder that trims whitespace next to calls.
#pragma once

#include <algorithm>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "modu/toolcall/toolcall.h"

namespace modu::toolcall::scan {

using ojson = nlohmann::ordered_json;

inline bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }
std::string_view ltrim(std::string_view s);
std::string_view rtrim(std::string_view s);
std::string_view trim(std::string_view s);
inline bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
// The first non-whitespace position at or after i.
inline size_t skip_ws(std::string_view s, size_t i) {
  while (i < s.size() && is_space(s[i])) ++i;
  return i;
}
// True when the text from i is a proper prefix of one of `ms`: in a partial parse, a marker that
// may still be arriving.
inline bool arriving(std::string_view text, size_t i, std::initializer_list<std::string_view> ms) {
  const std::string_view rest = text.substr(std::min(i, text.size()));
  for (std::string_view m : ms)
    if (!m.empty() && rest.size() < m.size() && m.substr(0, rest.size()) == rest) return true;
  return false;
}

// The first occurrence of any of `markers` at or after `from`: its position (npos if none) and
// index in *which.
size_t find_any(std::string_view text, size_t from, const std::vector<std::string_view>& markers, size_t* which = nullptr);
// Length of the longest suffix of `text` that is a proper prefix of one of `markers` (what a
// partial parse must hold back because the next token may complete a marker).
size_t marker_tail(std::string_view text, const std::vector<std::string_view>& markers);
// Bytes at the end of `s` that form an incomplete UTF-8 sequence (0-3).
size_t utf8_tail(std::string_view s);

// A JSON value at the start of s (after no whitespace): its length if complete, or how far it
// got when s ends inside it. `complete` is false then; `ok` false when it cannot be JSON.
struct Span {
  size_t end = 0;
  bool complete = false;
  bool ok = false;
};
Span json_span(std::string_view s);

// Parses JSON text; discarded on error (never throws).
ojson parse_json(std::string_view s);

// A call object {"name": ..., "arguments": {...}} (keys configurable) at the start of s, which
// may be cut when partial. name is set once its string is complete; args is the raw text of the
// arguments object (a prefix while incomplete); a string value holding JSON (double encoding) is
// decoded once complete. `end` is the object's length when complete.
struct CallObject {
  std::string name, id, args;
  bool name_done = false, args_done = false, complete = false, ok = false;
  size_t end = 0;
};
CallObject call_object(std::string_view s, const std::vector<std::string_view>& name_keys,
                       const std::vector<std::string_view>& args_keys, std::string_view id_key = "");
// The normalized arguments text for a complete value: objects as written (trimmed), a string
// that holds an object decoded, null as {}. False when it is not an object.
bool final_arguments(std::string_view raw, std::string* out);

// Builds the arguments JSON of XML-style calls parameter by parameter, typing each raw value
// by the tool's schema (string parameters stay text; others parse as JSON, with Python's
// True/False/None accepted), in the "key": value layout of Python's json.dumps. Partial values
// of string parameters stream; other values appear once complete.
class ArgsBuilder {
 public:
  ArgsBuilder(const ParseOptions& opts, std::string_view function);
  // A complete parameter; is_string: -1 from the schema, 0/1 as the syntax says (DSML).
  void add(std::string_view key, std::string_view raw, int is_string = -1);
  void add_partial(std::string_view key, std::string_view raw, int is_string = -1);  // the open one (last)
  std::string finish() const { return text_ + "}"; }             // the whole object
  const std::string& partial() const { return text_; }           // a prefix of finish()
  bool is_string_param(std::string_view key) const;

 private:
  void key(std::string_view k);
  const ojson* props_ = nullptr;
  std::string text_ = "{";
  bool first_ = true;
};
// A Python literal at s[*i] (strings with either quote, numbers, True/False/None, lists, tuples,
// dicts) as JSON; kCut when s ends inside it.
enum class Py { kOk, kCut, kBad };
Py python_value(std::string_view s, size_t* i, ojson* out);

// A raw XML value typed as JSON text (see ArgsBuilder).
std::string typed_value(std::string_view raw, bool is_string);

// Assembles content from the text between calls: the piece before a call loses its trailing
// whitespace and the piece after a call its leading whitespace. In partial mode trailing
// whitespace is held (a call may follow) and so is a suffix that may start a marker.
class Content {
 public:
  explicit Content(bool partial) : partial_(partial) {}
  void text(std::string_view s);   // plain text
  void call_boundary();            // a call (or reasoning block) sits here
  // Partial: the end of what arrived, with `hold` bytes at the end held back.
  std::string take(size_t hold = 0);

 private:
  bool partial_;
  bool after_call_ = false;
  std::string out_;
};

// The driver of the marker-based call parsers (named_calls.cpp, xml_params.cpp): content up to
// each `start` marker, then the calls that follow through `call` — inside a region (`open` ..
// `close`, where `open` is the start marker) as many as there are, without one a single call at
// the start marker. `call(q, &cut)` returns the end of the call at q, npos when it is malformed,
// or sets *cut when the text ends inside it. `arriving_in_region`: markers whose first bytes at
// the end of partial text mean more of the region is coming. Fills r->reply.content; returns
// false when a whole parse meets a malformed region (the caller then keeps the text as content).
bool parse_call_regions(std::string_view text, bool partial, std::string_view start, std::string_view open,
                        std::string_view close, std::initializer_list<std::string_view> arriving_in_region,
                        PartialReply* r, const std::function<size_t(size_t, bool*)>& call);

// Common partial-parse result for call formats: content, the calls so far, whether the last is open.
void add_call(PartialReply* r, std::string name, std::string args, bool complete, std::string id = "");

// The JSON arguments of a call whose name is already known, at text[pos] (whitespace skipped):
// adds the call (open with the arguments so far when the text ends inside them and partial) and
// returns the position after the arguments; npos when they are not a JSON object. *cut is set
// when the text ended inside them.
size_t named_args(std::string_view text, size_t pos, bool partial, PartialReply* r, std::string name, std::string id,
                  bool* cut);

// Text before `end` starting at pos when `end` occurs; when it does not, npos, and *cut says
// whether the rest could still become it (partial text ending before or inside `end`).
size_t until(std::string_view text, size_t pos, std::string_view end, bool partial, bool* cut);

}  // namespace modu::toolcall::scan
