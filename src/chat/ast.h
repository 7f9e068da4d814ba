// AST: expression and statement nodes produced by the parser and walked by the evaluator.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "value.h"

namespace modu::jinja {

struct Expr;
struct Node;
using ExprPtr = std::unique_ptr<Expr>;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

enum class EK {
  Literal,   // literal
  Name,      // name
  NsRef,     // name.attr as an assignment target (set ns.attr = ...)
  List,      // items
  Tuple,     // items
  Dict,      // items as key, value pairs (even/odd)
  Getattr,   // a.name
  Getitem,   // a[b]
  Slice,     // a[b:c:d] (b/c/d may be null)
  Call,      // a(items, kwargs)
  Filter,    // a | name(items, kwargs); a null for filter blocks
  Test,      // a is name(items, kwargs)
  Neg,       // -a
  Pos,       // +a
  Not,       // not a
  Binary,    // a op b  (+ - * / // % ** ~)
  And,       // a and b
  Or,        // a or b
  Compare,   // a op0 items[0] op1 items[1] ... (ops in names)
  CondExpr,  // a if b else c (c may be null)
};

struct Expr {
  EK kind;
  int line = 0, col = 0;
  Value literal;
  std::string name;  // name, attribute, filter/test name, operator
  ExprPtr a, b, c;
  std::vector<ExprPtr> items;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;  // Compare operators
  ExprPtr dyn_args, dyn_kwargs;  // *args, **kwargs in calls
};

enum class NK {
  Text,         // text
  Output,       // expr
  If,           // branches (cond, body), else_body
  For,          // target, expr (iterable), cond, body, else_body, recursive
  Set,          // target = expr
  SetBlock,     // target, filter (may be null), body
  Macro,        // name, params, defaults, body
  CallBlock,    // expr (the call), params, defaults, body
  FilterBlock,  // filter, body
  With,         // targets/values, body
  Scope,        // body (generation, block)
  Break,
  Continue,
};

struct Node {
  NK kind;
  int line = 0, col = 0;
  std::string text;  // Text data, Macro name
  ExprPtr expr, target, cond, filter;
  Body body, else_body;
  std::vector<std::pair<ExprPtr, Body>> branches;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // aligned to the last params
  std::vector<ExprPtr> targets, values;
  bool recursive = false;
  // Macro/CallBlock: whether the body reads varargs, kwargs or caller (as jinja2 decides whether a
  // macro accepts extra positional/keyword arguments and a caller).
  bool catch_varargs = false, catch_kwargs = false, uses_caller = false;
};

// True if `name` is read anywhere in `body` (an over-approximation of jinja2's analysis).
bool body_reads(const Body& body, const std::string& name);
// Throws TemplateAssertionError for an unknown filter/test used outside if-statements and inline
// if-expressions, where jinja2 resolves them at compile time.
void check_filter_and_test_names(const Body& body);

}  // namespace modu::jinja
