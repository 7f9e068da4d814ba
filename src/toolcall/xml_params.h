// A tool-call format that is data: XML-style calls with one element per parameter, e.g.
// Qwen3-Coder's <tool_call><function=NAME><parameter=KEY>value</parameter></function></tool_call>,
// with values typed by the tool's schema. GLM, MiniMax-M2, DeepSeek V3.2 (DSML), Seed-OSS and
// MiniCPM register instances with their markers (fmt_*.cpp).
#pragma once

#include <string>

#include "modu/toolcall/toolcall.h"

namespace modu::toolcall {

struct XmlSpec {
  const char* name = "";
  std::string region_open, region_close;  // around one or more calls ("" : none)
  std::string fn_open, fn_name_end, fn_close;  // fn_open "": the name follows region_open up to a newline or a parameter
  std::string param_open, key_end;        // <parameter=KEY>  or  <arg_key>KEY</arg_key>
  std::string value_open;                 // "" or <arg_value> (after key_end)
  std::string param_close;                // </parameter>
  bool strip_newlines = false;            // values are written as "\nvalue\n" (Qwen3-Coder)
  bool string_attr = false;               // key_end is '"' and attributes up to '>' say string="true|false" (DSML)
  bool cdata = false;                     // values may be wrapped in <![CDATA[...]]> (MiniCPM)
};

class XmlFormat : public Format {
 public:
  explicit XmlFormat(XmlSpec spec) : s_(std::move(spec)) {}
  const char* name() const override { return s_.name; }
  PartialReply parse(std::string_view text, const ParseOptions& opts, bool partial) const override;
  // A forced call is the format's own call header followed by the arguments as one JSON object
  // (instead of parameter elements), which parse() accepts as well.
  Forcing forcing() const override {
    return {.prefix = s_.region_open + (s_.region_open.empty() || s_.fn_open.empty() ? "" : "\n") + s_.fn_open + "{name}" +
                      s_.fn_name_end + "\n",
            .shape = Forcing::kArguments};
  }

 private:
  XmlSpec s_;
};

}  // namespace modu::toolcall
