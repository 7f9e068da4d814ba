// Python-style calls, name(arg=value, ...), with Python literals as values: the syntax of
// Gemma/LFM2/Llama 3.2 "pythonic" tool calls and Llama 3.1's built-in tools.
#pragma once

#include <string_view>

#include "modu/toolcall/toolcall.h"

namespace modu::toolcall {

// Parses one call at text[pos] (dotted names allowed; "x.call(...)" names the call "x"). Adds it
// to r (open, with the arguments of the keyword arguments completed so far, when partial text
// ends inside it) and returns the position after ')'; npos when it is not such a call. *cut is
// set when the text ended inside it.
size_t python_call(std::string_view text, size_t pos, bool partial, PartialReply* r, bool* cut);

}  // namespace modu::toolcall
