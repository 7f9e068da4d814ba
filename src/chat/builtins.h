// Builtins: the filter and test tables, Python methods of str/list/dict, and the global functions
// (range, namespace, dict, cycler, joiner, raise_exception, strftime_now).
#pragma once

#include <string>

#include "evaluator.h"
#include "value.h"

namespace modu::jinja {

// Applies filter `name` to `input`. Throws on unknown filters or bad arguments.
Value apply_filter(Evaluator& ev, const std::string& name, const Value& input, CallArgs& args);
// Applies test `name` (as in `value is name(args)`).
bool apply_test(Evaluator& ev, const std::string& name, const Value& value, CallArgs& args);
// Python attribute `name` of a str/list/tuple/dict as a bound method; the sandbox's unsafe
// undefined for mutating methods; a plain Undefined (empty hint) when there is no such method.
Value get_method(const Value& obj, const std::string& name);
// A frame holding jinja's and transformers' global functions.
FramePtr make_globals();
// Whether jinja2 (plus transformers) defines a filter / test of this name; templates naming
// another one outside a conditional fail to compile, as in jinja2.
bool is_filter_name(const std::string& name);
bool is_test_name(const std::string& name);
// Python str % args formatting.
std::string percent_format(const std::string& fmt, const Value& args);

}  // namespace modu::jinja
