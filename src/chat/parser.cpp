// Parser: recursive descent over tokens, a port of jinja2/parser.py (statements, expressions,
// operator precedence, filters/tests, tuples, slices, call arguments, macro signatures).
#include "parser.h"

#include <initializer_list>

#include "lexer.h"

namespace modu::jinja {
namespace {

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  Body parse() {
    Body body = subparse({});
    if (cur().type != Tok::Eof) fail_at(cur(), "unexpected " + describe(cur()));
    return body;
  }

 private:
  std::vector<Token> toks_;
  size_t pos_ = 0;
  std::vector<std::string> tag_stack_;

  const Token& cur() const { return toks_[pos_]; }
  const Token& look() const { return toks_[pos_ + 1 < toks_.size() ? pos_ + 1 : pos_]; }
  const Token& next() {
    const Token& t = toks_[pos_];
    if (pos_ + 1 < toks_.size()) ++pos_;
    return t;
  }
  bool is_op(const char* op) const { return cur().type == Tok::Op && cur().value == op; }
  bool is_name(const char* name) const { return cur().type == Tok::Name && cur().value == name; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(const char* name) {
    if (!is_name(name)) return false;
    next();
    return true;
  }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case Tok::Eof: return "end of template";
      case Tok::VarEnd: return "end of print statement";
      case Tok::BlockEnd: return "end of statement block";
      case Tok::VarBegin: return "begin of print statement";
      case Tok::BlockBegin: return "begin of statement block";
      case Tok::Data: return "template data";
      case Tok::String: return "string";
      case Tok::Int: return "integer";
      case Tok::Float: return "float";
      default: return "'" + t.value + "'";
    }
  }

  [[noreturn]] void fail_at(const Token& t, const std::string& msg) const {
    JinjaError e("TemplateSyntaxError", msg);
    e.line = t.line;
    e.col = t.col;
    throw e;
  }

  void expect_op(const char* op) {
    if (!is_op(op)) fail_at(cur(), std::string("expected token '") + op + "', got " + describe(cur()));
    next();
  }
  void expect(Tok type, const char* what) {
    if (cur().type != type) fail_at(cur(), std::string("expected token '") + what + "', got " + describe(cur()));
    next();
  }
  const Token& expect_name() {
    if (cur().type != Tok::Name) fail_at(cur(), "expected token 'name', got " + describe(cur()));
    return next();
  }
  void expect_name(const char* name) {
    if (!is_name(name)) fail_at(cur(), std::string("expected token '") + name + "', got " + describe(cur()));
    next();
  }

  ExprPtr make(EK kind, const Token& at) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = at.line;
    e->col = at.col;
    return e;
  }
  NodePtr make_node(NK kind, const Token& at) {
    auto n = std::make_unique<Node>();
    n->kind = kind;
    n->line = at.line;
    n->col = at.col;
    return n;
  }

  // ------------------------------------------------------------ statements

  Body subparse(std::initializer_list<const char*> end_tokens) {
    Body body;
    while (cur().type != Tok::Eof) {
      const Token& t = cur();
      if (t.type == Tok::Data) {
        auto n = make_node(NK::Text, t);
        n->text = t.value;
        body.push_back(std::move(n));
        next();
      } else if (t.type == Tok::VarBegin) {
        next();
        auto n = make_node(NK::Output, cur());
        n->expr = parse_tuple(false, true, {});
        expect(Tok::VarEnd, "end of print statement");
        body.push_back(std::move(n));
      } else if (t.type == Tok::BlockBegin) {
        next();
        for (const char* e : end_tokens)
          if (is_name(e)) return body;
        body.push_back(parse_statement());
        expect(Tok::BlockEnd, "end of statement block");
      } else {
        fail_at(t, "unexpected " + describe(t));
      }
    }
    if (end_tokens.size() != 0) {
      std::string looking;
      for (const char* e : end_tokens) looking += std::string(looking.empty() ? "" : " or ") + "'" + e + "'";
      std::string msg = "Unexpected end of template. Jinja was looking for the following tags: " + looking + ".";
      if (!tag_stack_.empty()) msg += " The innermost block that needs to be closed is '" + tag_stack_.back() + "'.";
      fail_at(cur(), msg);
    }
    return body;
  }

  Body parse_statements(std::initializer_list<const char*> end_tokens, bool drop_needle) {
    skip_op(":");
    expect(Tok::BlockEnd, "end of statement block");
    Body body = subparse(end_tokens);
    if (drop_needle) next();
    return body;
  }

  NodePtr parse_statement() {
    const Token& t = cur();
    if (t.type != Tok::Name) fail_at(t, "tag name expected");
    const std::string name = t.value;
    tag_stack_.push_back(name);
    NodePtr n;
    if (name == "if") n = parse_if();
    else if (name == "for") n = parse_for();
    else if (name == "set") n = parse_set();
    else if (name == "macro") n = parse_macro();
    else if (name == "call") n = parse_call_block();
    else if (name == "filter") n = parse_filter_block();
    else if (name == "with") n = parse_with();
    else if (name == "print") {
      n = make_node(NK::Output, t);
      next();
      n->expr = parse_tuple(false, true, {});
    } else if (name == "break" || name == "continue") {
      n = make_node(name == "break" ? NK::Break : NK::Continue, t);
      next();
    } else if (name == "generation") {
      n = make_node(NK::Scope, t);
      next();
      n->body = parse_statements({"endgeneration"}, true);
    } else if (name == "block") {
      n = make_node(NK::Scope, t);
      next();
      std::string block_name = expect_name().value;
      n->body = parse_statements({"endblock"}, true);
      skip_name(block_name.c_str());
    } else if (name == "autoescape") {
      n = make_node(NK::Scope, t);
      next();
      parse_expression(true);
      n->body = parse_statements({"endautoescape"}, true);
    } else {
      tag_stack_.pop_back();
      fail_at(t, "Encountered unknown tag '" + name + "'.");
    }
    tag_stack_.pop_back();
    return n;
  }

  NodePtr parse_if() {
    auto n = make_node(NK::If, cur());
    next();
    while (true) {
      ExprPtr cond = parse_tuple(false, false, {});
      Body body = parse_statements({"elif", "else", "endif"}, false);
      n->branches.emplace_back(std::move(cond), std::move(body));
      const Token& t = next();
      if (t.value == "elif") continue;
      if (t.value == "else") n->else_body = parse_statements({"endif"}, true);
      break;
    }
    return n;
  }

  NodePtr parse_for() {
    auto n = make_node(NK::For, cur());
    next();
    n->target = parse_assign_target(true, false, {"in"});
    expect_name("in");
    n->expr = parse_tuple(false, false, {"recursive"});
    if (skip_name("if")) n->cond = parse_expression(true);
    n->recursive = skip_name("recursive");
    n->body = parse_statements({"endfor", "else"}, false);
    if (next().value != "endfor") n->else_body = parse_statements({"endfor"}, true);
    return n;
  }

  NodePtr parse_set() {
    const Token& at = cur();
    next();
    ExprPtr target = parse_assign_target(true, true, {});
    if (skip_op("=")) {
      auto n = make_node(NK::Set, at);
      n->target = std::move(target);
      n->expr = parse_tuple(false, true, {});
      return n;
    }
    auto n = make_node(NK::SetBlock, at);
    n->target = std::move(target);
    if (is_op("|")) n->filter = parse_filter(nullptr, false);
    n->body = parse_statements({"endset"}, true);
    return n;
  }

  void parse_signature(Node& n) {
    expect_op("(");
    while (!is_op(")")) {
      if (!n.params.empty()) expect_op(",");
      n.params.push_back(expect_name().value);
      if (skip_op("=")) n.defaults.push_back(parse_expression(true));
      else if (!n.defaults.empty()) fail_at(cur(), "non-default argument follows default argument");
    }
    expect_op(")");
  }

  static void mark_special_names(Node& n) {
    n.catch_varargs = body_reads(n.body, "varargs");
    n.catch_kwargs = body_reads(n.body, "kwargs");
    n.uses_caller = body_reads(n.body, "caller");
  }

  NodePtr parse_macro() {
    auto n = make_node(NK::Macro, cur());
    next();
    n->text = expect_name().value;
    parse_signature(*n);
    n->body = parse_statements({"endmacro"}, true);
    mark_special_names(*n);
    return n;
  }

  NodePtr parse_call_block() {
    auto n = make_node(NK::CallBlock, cur());
    next();
    if (is_op("(")) parse_signature(*n);
    const Token& at = cur();
    n->expr = parse_expression(true);
    if (n->expr->kind != EK::Call) fail_at(at, "expected call");
    n->body = parse_statements({"endcall"}, true);
    mark_special_names(*n);
    return n;
  }

  NodePtr parse_filter_block() {
    auto n = make_node(NK::FilterBlock, cur());
    next();
    n->filter = parse_filter(nullptr, true);
    n->body = parse_statements({"endfilter"}, true);
    return n;
  }

  NodePtr parse_with() {
    auto n = make_node(NK::With, cur());
    next();
    while (cur().type != Tok::BlockEnd) {
      if (!n->targets.empty()) expect_op(",");
      n->targets.push_back(parse_assign_target(true, false, {}));
      expect_op("=");
      n->values.push_back(parse_expression(true));
    }
    n->body = parse_statements({"endwith"}, true);
    return n;
  }

  ExprPtr parse_assign_target(bool with_tuple, bool with_namespace, std::initializer_list<const char*> extra_end) {
    const Token& at = cur();
    ExprPtr target = with_tuple ? parse_tuple(true, true, extra_end, false, with_namespace)
                                : parse_primary(with_namespace);
    bool ok = target->kind == EK::Name || target->kind == EK::NsRef;
    if (target->kind == EK::Tuple) {
      ok = true;
      for (const auto& item : target->items) ok = ok && (item->kind == EK::Name || item->kind == EK::Tuple);
    }
    if (target->kind == EK::Name &&
        (target->name == "true" || target->name == "false" || target->name == "none"))
      ok = false;
    if (target->kind == EK::Literal) ok = false;
    if (!ok) fail_at(at, "can't assign to this expression");
    return target;
  }

  // ------------------------------------------------------------ expressions

  bool is_tuple_end(std::initializer_list<const char*> extra_end) const {
    if (cur().type == Tok::VarEnd || cur().type == Tok::BlockEnd || is_op(")")) return true;
    for (const char* e : extra_end)
      if (is_name(e)) return true;
    return false;
  }

  ExprPtr parse_tuple(bool simplified, bool with_condexpr, std::initializer_list<const char*> extra_end,
                      bool explicit_parens = false, bool with_namespace = false) {
    const Token& at = cur();
    std::vector<ExprPtr> args;
    bool is_tuple = false;
    while (true) {
      if (!args.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      args.push_back(simplified ? parse_primary(with_namespace) : parse_expression(with_condexpr));
      if (is_op(",")) is_tuple = true;
      else break;
    }
    if (!is_tuple) {
      if (!args.empty()) return std::move(args[0]);
      if (!explicit_parens) fail_at(cur(), "Expected an expression, got " + describe(cur()));
    }
    auto t = make(EK::Tuple, at);
    t->items = std::move(args);
    return t;
  }

  ExprPtr parse_expression(bool with_condexpr) { return with_condexpr ? parse_condexpr() : parse_or(); }

  ExprPtr parse_condexpr() {
    ExprPtr expr1 = parse_or();
    while (is_name("if")) {
      auto n = make(EK::CondExpr, cur());
      next();
      n->b = parse_or();
      if (skip_name("else")) n->c = parse_condexpr();
      n->a = std::move(expr1);
      expr1 = std::move(n);
    }
    return expr1;
  }

  ExprPtr binary(EK kind, const Token& at, ExprPtr l, ExprPtr r, std::string op = {}) {
    auto n = make(kind, at);
    n->a = std::move(l);
    n->b = std::move(r);
    n->name = std::move(op);
    return n;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) {
      const Token& at = next();
      left = binary(EK::Or, at, std::move(left), parse_and());
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) {
      const Token& at = next();
      left = binary(EK::And, at, std::move(left), parse_not());
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      auto n = make(EK::Not, next());
      n->a = parse_not();
      return n;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const Token& at = cur();
    ExprPtr expr = parse_math1();
    ExprPtr cmp;
    while (true) {
      std::string op;
      if (cur().type == Tok::Op &&
          (cur().value == "==" || cur().value == "!=" || cur().value == "<" || cur().value == "<=" ||
           cur().value == ">" || cur().value == ">=")) {
        op = next().value;
      } else if (skip_name("in")) {
        op = "in";
      } else if (is_name("not") && look().type == Tok::Name && look().value == "in") {
        next();
        next();
        op = "notin";
      } else {
        break;
      }
      if (!cmp) {
        cmp = make(EK::Compare, at);
        cmp->a = std::move(expr);
      }
      cmp->ops.push_back(op);
      cmp->items.push_back(parse_math1());
    }
    return cmp ? std::move(cmp) : std::move(expr);
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token& at = next();
      left = binary(EK::Binary, at, std::move(left), parse_concat(), at.value);
    }
    return left;
  }

  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    while (is_op("~")) {
      const Token& at = next();
      left = binary(EK::Binary, at, std::move(left), parse_math2(), "~");
    }
    return left;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& at = next();
      left = binary(EK::Binary, at, std::move(left), parse_pow(), at.value);
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (is_op("**")) {
      const Token& at = next();
      left = binary(EK::Binary, at, std::move(left), parse_unary(true), "**");
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      const Token& at = next();
      node = make(at.value == "-" ? EK::Neg : EK::Pos, at);
      node->a = parse_unary(false);
    } else {
      node = parse_primary(false);
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary(bool with_namespace) {
    const Token& t = cur();
    if (t.type == Tok::Name) {
      next();
      if (t.value == "true" || t.value == "True" || t.value == "false" || t.value == "False") {
        auto n = make(EK::Literal, t);
        n->literal = Value(t.value == "true" || t.value == "True");
        return n;
      }
      if (t.value == "none" || t.value == "None") {
        auto n = make(EK::Literal, t);
        n->literal = Value::none();
        return n;
      }
      if (with_namespace && is_op(".")) {
        next();
        auto n = make(EK::NsRef, t);
        n->name = t.value;
        n->literal = Value(expect_name().value);
        return n;
      }
      auto n = make(EK::Name, t);
      n->name = t.value;
      return n;
    }
    if (t.type == Tok::String) {
      auto n = make(EK::Literal, t);
      std::string s;
      while (cur().type == Tok::String) s += next().value;
      n->literal = Value(std::move(s));
      return n;
    }
    if (t.type == Tok::Int || t.type == Tok::Float) {
      auto n = make(EK::Literal, t);
      n->literal = t.type == Tok::Int ? Value(t.ival) : Value(t.fval);
      next();
      return n;
    }
    if (is_op("(")) {
      next();
      ExprPtr n = parse_tuple(false, true, {}, true);
      expect_op(")");
      return n;
    }
    if (is_op("[")) {
      auto n = make(EK::List, next());
      while (!is_op("]")) {
        if (!n->items.empty()) expect_op(",");
        if (is_op("]")) break;
        n->items.push_back(parse_expression(true));
      }
      expect_op("]");
      return n;
    }
    if (is_op("{")) {
      auto n = make(EK::Dict, next());
      while (!is_op("}")) {
        if (!n->items.empty()) expect_op(",");
        if (is_op("}")) break;
        n->items.push_back(parse_expression(true));
        expect_op(":");
        n->items.push_back(parse_expression(true));
      }
      expect_op("}");
      return n;
    }
    fail_at(t, "unexpected " + describe(t));
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".") || is_op("[")) node = parse_subscript(std::move(node));
      else if (is_op("(")) node = parse_call(std::move(node));
      else break;
    }
    return node;
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op("|")) node = parse_filter(std::move(node), false);
      else if (is_name("is")) node = parse_test(std::move(node));
      else if (is_op("(")) node = parse_call(std::move(node));
      else break;
    }
    return node;
  }

  ExprPtr parse_subscript(ExprPtr node) {
    const Token& t = next();
    if (t.value == ".") {
      const Token& attr = next();
      if (attr.type == Tok::Name) {
        auto n = make(EK::Getattr, t);
        n->a = std::move(node);
        n->name = attr.value;
        return n;
      }
      if (attr.type != Tok::Int) fail_at(attr, "expected name or number");
      auto n = make(EK::Getitem, t);
      n->a = std::move(node);
      n->b = make(EK::Literal, attr);
      n->b->literal = Value(attr.ival);
      return n;
    }
    std::vector<ExprPtr> args;
    while (!is_op("]")) {
      if (!args.empty()) expect_op(",");
      args.push_back(parse_subscribed());
    }
    expect_op("]");
    if (args.size() == 1 && args[0]->kind == EK::Slice) {
      args[0]->a = std::move(node);
      return std::move(args[0]);
    }
    auto n = make(EK::Getitem, t);
    n->a = std::move(node);
    if (args.size() == 1) {
      n->b = std::move(args[0]);
    } else {
      n->b = make(EK::Tuple, t);
      n->b->items = std::move(args);
    }
    return n;
  }

  // Returns an expression, or a Slice node whose `a` the caller fills with the sliced object.
  ExprPtr parse_subscribed() {
    const Token& at = cur();
    ExprPtr start;
    if (is_op(":")) {
      next();
    } else {
      ExprPtr e = parse_expression(true);
      if (!is_op(":")) return e;
      next();
      start = std::move(e);
    }
    auto s = make(EK::Slice, at);
    s->items.resize(3);
    s->items[0] = std::move(start);
    if (!is_op(":") && !is_op("]") && !is_op(",")) s->items[1] = parse_expression(true);
    if (is_op(":")) {
      next();
      if (!is_op("]") && !is_op(",")) s->items[2] = parse_expression(true);
    }
    return s;
  }

  void parse_call_args(Expr& n) {
    const Token& at = cur();
    expect_op("(");
    bool require_comma = false;
    while (!is_op(")")) {
      if (require_comma) {
        expect_op(",");
        if (is_op(")")) break;
      }
      if (is_op("*")) {
        if (n.dyn_args || n.dyn_kwargs) fail_at(at, "invalid syntax for function call expression");
        next();
        n.dyn_args = parse_expression(true);
      } else if (is_op("**")) {
        if (n.dyn_kwargs) fail_at(at, "invalid syntax for function call expression");
        next();
        n.dyn_kwargs = parse_expression(true);
      } else if (cur().type == Tok::Name && look().type == Tok::Op && look().value == "=") {
        if (n.dyn_kwargs) fail_at(at, "invalid syntax for function call expression");
        std::string key = next().value;
        next();
        n.kwargs.emplace_back(std::move(key), parse_expression(true));
      } else {
        if (n.dyn_args || n.dyn_kwargs || !n.kwargs.empty())
          fail_at(at, "invalid syntax for function call expression");
        n.items.push_back(parse_expression(true));
      }
      require_comma = true;
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr node) {
    auto n = make(EK::Call, cur());
    n->a = std::move(node);
    parse_call_args(*n);
    return n;
  }

  ExprPtr parse_filter(ExprPtr node, bool start_inline) {
    while (is_op("|") || start_inline) {
      if (!start_inline) next();
      const Token& name = expect_name();
      auto n = make(EK::Filter, name);
      n->name = name.value;
      while (is_op(".")) {
        next();
        n->name += "." + expect_name().value;
      }
      if (is_op("(")) parse_call_args(*n);
      n->a = std::move(node);
      node = std::move(n);
      start_inline = false;
    }
    return node;
  }

  ExprPtr parse_test(ExprPtr node) {
    const Token& at = next();
    bool negated = skip_name("not");
    auto n = make(EK::Test, at);
    n->name = expect_name().value;
    while (is_op(".")) {
      next();
      n->name += "." + expect_name().value;
    }
    const Token& c = cur();
    if (is_op("(")) {
      parse_call_args(*n);
    } else if ((c.type == Tok::Name || c.type == Tok::String || c.type == Tok::Int || c.type == Tok::Float ||
                is_op("[") || is_op("{")) &&
               !(is_name("else") || is_name("or") || is_name("and"))) {
      if (is_name("is")) fail_at(c, "You cannot chain multiple tests with is");
      n->items.push_back(parse_postfix(parse_primary(false)));
    }
    n->a = std::move(node);
    if (!negated) return n;
    auto neg = make(EK::Not, at);
    neg->a = std::move(n);
    return neg;
  }
};

}  // namespace

Body parse_template(std::string_view source) {
  Body body = Parser(tokenize(source)).parse();
  check_filter_and_test_names(body);
  return body;
}

}  // namespace modu::jinja
