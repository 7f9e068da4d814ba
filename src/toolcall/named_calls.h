// A tool-call format that is data: calls written as marker, function name, separator, JSON
// arguments and closing marker, optionally inside a section, e.g. DeepSeek V3.1's
// <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{...}<｜tool▁call▁end｜><｜tool▁calls▁end｜>.
// DeepSeek R1/V3.1, Kimi K2, Solar Open and Functionary register instances (fmt_*.cpp).
#pragma once

#include <string>

#include "modu/toolcall/toolcall.h"

namespace modu::toolcall {

struct NamedSpec {
  const char* name = "";
  std::string section_open, section_close;  // around the calls ("" : none; then one call per marker)
  std::string call_open;                    // before each call
  std::string id_end;                       // "" or: the call id comes first, up to this marker (Solar)
  std::string name_prefix;                  // optional text before the name ("function<｜tool▁sep｜>")
  std::string name_end;                     // between the name and the arguments
  std::string args_open, args_close;        // optional fences around the arguments ("```json", "```")
  std::string call_close;                   // after the arguments ("" : none)
  bool kimi_ids = false;                    // the name is "functions.NAME:INDEX", which is also the id
  std::vector<std::string> stop;            // markers that end generation (Solar's <|calls|>)
};

class NamedCallFormat : public Format {
 public:
  explicit NamedCallFormat(NamedSpec spec) : s_(std::move(spec)) {}
  const char* name() const override { return s_.name; }
  PartialReply parse(std::string_view text, const ParseOptions& opts, bool partial) const override;
  std::vector<std::string> stop_markers() const override { return s_.stop; }
  Forcing forcing() const override;

 private:
  NamedSpec s_;
};

}  // namespace modu::toolcall
