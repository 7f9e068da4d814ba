// A tool-call format that is data: JSON call objects (or arrays of them) between an opening and an
// optional closing marker, e.g. Hermes' <tool_call>{...}</tool_call>. Families whose syntax has
// this shape register an instance with their markers and key names (fmt_*.cpp).
#pragma once

#include <string>
#include <vector>

#include "modu/toolcall/toolcall.h"

namespace modu::toolcall {

struct JsonTagSpec {
  const char* name = "";
  std::vector<std::string> open;       // markers that start a call region
  std::string close;                   // marker that ends it ("" : the region ends after its JSON)
  std::vector<std::string_view> name_keys = {"name"};
  std::vector<std::string_view> args_keys = {"arguments", "parameters"};
  std::string id_key;                  // a call id inside the object ("" : none)
  bool whole_reply = false;            // no marker: the reply itself is the JSON (Llama 3)
  Format::Forcing forcing;
};

class JsonTagFormat : public Format {
 public:
  explicit JsonTagFormat(JsonTagSpec spec) : s_(std::move(spec)) {}
  const char* name() const override { return s_.name; }
  PartialReply parse(std::string_view text, const ParseOptions& opts, bool partial) const override;
  Forcing forcing() const override { return s_.forcing; }

 protected:
  // Parses the JSON body at text[pos] (a call object or an array of them) into r. Returns the
  // position after it, or npos if it is malformed; *cut when the text ends inside it.
  size_t body(std::string_view text, size_t pos, bool partial, PartialReply* r, bool* cut) const;
  JsonTagSpec s_;
};

}  // namespace modu::toolcall
