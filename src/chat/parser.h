// Parser: turns the token stream into an AST, following jinja2/parser.py's grammar.
#pragma once

#include <string_view>

#include "ast.h"

namespace modu::jinja {

// Parses a whole template. Throws JinjaError (TemplateSyntaxError) with line/column.
Body parse_template(std::string_view source);

}  // namespace modu::jinja
