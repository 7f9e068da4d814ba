// Lexer: splits template source into data and tag tokens with Jinja2's exact whitespace rules
// (trim_blocks, lstrip_blocks, -/+ modifiers, raw blocks, comments, trailing newline removal).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace modu::jinja {

enum class Tok : uint8_t { Data, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, Eof };

struct Token {
  Tok type;
  std::string value;  // data text, name, decoded string, operator spelling
  int64_t ival = 0;
  double fval = 0;
  int line = 1, col = 1;
};

// Tokenizes with trim_blocks and lstrip_blocks on. Throws JinjaError (TemplateSyntaxError).
std::vector<Token> tokenize(std::string_view source);

}  // namespace modu::jinja
