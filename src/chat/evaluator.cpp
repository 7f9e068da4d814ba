// Evaluator: statement execution (output, if, for with loop object, set, macros, call/filter
// blocks) and expression evaluation with Python operator semantics.
#include "evaluator.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "builtins.h"
#include "pystr.h"

namespace modu::jinja {

namespace {

// Object kind name as jinja's object_type_repr prints it in undefined messages.
std::string object_type_repr(const Value& v) {
  if (v.is_none()) return "None";
  return v.type_name() + " object";
}

std::shared_ptr<Callable> make_callable(std::string name, std::function<Value(Evaluator&, CallArgs&)> fn) {
  auto c = std::make_shared<Callable>();
  c->name = std::move(name);
  c->fn = std::move(fn);
  return c;
}

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

}  // namespace

void raise_undefined(const Value& u) {
  fail(u.is_unsafe() ? "SecurityError" : "UndefinedError", u.undefined_message());
}

List iterate(const Value& v) {
  switch (v.kind()) {
    case Kind::Undefined: return {};
    case Kind::List: return v.list();
    case Kind::Dict: {
      List keys;
      keys.reserve(v.dict().size());
      for (const auto& kv : v.dict().items) keys.push_back(kv.first);
      return keys;
    }
    case Kind::String: {
      List chars;
      for (char32_t c : utf8_decode(v.str())) {
        std::string s;
        utf8_append(s, c);
        chars.emplace_back(std::move(s));
      }
      return chars;
    }
    default: type_error("'" + v.type_name() + "' object is not iterable");
  }
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Kind::Undefined: return false;
    case Kind::String:
      if (!item.is_string())
        type_error("'in <string>' requires string as left operand, not " + item.type_name());
      return container.str().find(item.str()) != std::string::npos;
    case Kind::List:
      for (const auto& x : container.list())
        if (x == item) return true;
      return false;
    case Kind::Dict:
      if ((item.is_list() && item.seq() != Seq::Tuple) || item.is_dict())
        type_error("unhashable type: '" + item.type_name() + "'");
      return container.dict().find(item) != nullptr;
    default: type_error("argument of type '" + container.type_name() + "' is not iterable");
  }
}

Value binary_op(const std::string& op, const Value& a, const Value& b) {
  if (op == "~") return Value(a.to_str() + b.to_str());
  if (op == "%" && a.is_string()) return Value(percent_format(a.str(), b));
  if (a.is_undefined()) raise_undefined(a);
  if (b.is_undefined()) raise_undefined(b);
  auto unsupported = [&]() -> Value {
    type_error("unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" + b.type_name() + "'");
  };
  const bool nums = a.is_number() && b.is_number();
  const bool ints = nums && !a.is_float() && !b.is_float();
  if (op == "+") {
    if (ints) return Value(a.as_int() + b.as_int());
    if (nums) return Value(a.as_float() + b.as_float());
    if (a.is_string() && b.is_string()) {
      if (a.is_markup() || b.is_markup())
        return Value::markup((a.is_markup() ? a.str() : pystr::html_escape(a.str())) +
                             (b.is_markup() ? b.str() : pystr::html_escape(b.str())));
      return Value(a.str() + b.str());
    }
    if (a.is_list() && b.is_list() && a.seq() == b.seq() && a.seq() != Seq::Iterator) {
      List l = a.list();
      l.insert(l.end(), b.list().begin(), b.list().end());
      return Value(std::move(l), a.seq());
    }
    if (a.is_string()) type_error("can only concatenate str (not \"" + b.type_name() + "\") to str");
    if (a.is_list() && a.seq() != Seq::Iterator)
      type_error("can only concatenate " + a.type_name() + " (not \"" + b.type_name() + "\") to " + a.type_name());
    return unsupported();
  }
  if (op == "-") {
    if (ints) return Value(a.as_int() - b.as_int());
    if (nums) return Value(a.as_float() - b.as_float());
    return unsupported();
  }
  if (op == "*") {
    if (ints) return Value(a.as_int() * b.as_int());
    if (nums) return Value(a.as_float() * b.as_float());
    const Value* seq = a.is_string() || a.is_list() ? &a : &b;
    const Value* n = seq == &a ? &b : &a;
    if ((seq->is_string() || (seq->is_list() && seq->seq() != Seq::Iterator)) && n->is_number() && !n->is_float()) {
      int64_t times = n->as_int();
      if (seq->is_string()) {
        std::string s;
        for (int64_t i = 0; i < times; ++i) s += seq->str();
        return seq->is_markup() ? Value::markup(std::move(s)) : Value(std::move(s));
      }
      List l;
      for (int64_t i = 0; i < times; ++i) l.insert(l.end(), seq->list().begin(), seq->list().end());
      return Value(std::move(l), seq->seq());
    }
    if (seq->is_string() || seq->is_list())
      type_error("can't multiply sequence by non-int of type '" + n->type_name() + "'");
    return unsupported();
  }
  if (op == "/") {
    if (!nums) return unsupported();
    if (b.as_float() == 0) fail("ZeroDivisionError", "division by zero");
    return Value(a.as_float() / b.as_float());
  }
  if (op == "//") {
    if (!nums) return unsupported();
    if (b.as_float() == 0) fail("ZeroDivisionError", "integer division or modulo by zero");
    if (ints) return Value(floor_div(a.as_int(), b.as_int()));
    return Value(std::floor(a.as_float() / b.as_float()));
  }
  if (op == "%") {
    if (a.is_string()) return Value(percent_format(a.str(), b));
    if (!nums) return unsupported();
    if (b.as_float() == 0) fail("ZeroDivisionError", "integer division or modulo by zero");
    if (ints) {
      int64_t r = a.as_int() % b.as_int();
      if (r != 0 && ((r < 0) != (b.as_int() < 0))) r += b.as_int();
      return Value(r);
    }
    double r = std::fmod(a.as_float(), b.as_float());
    if (r != 0 && ((r < 0) != (b.as_float() < 0))) r += b.as_float();
    return Value(r);
  }
  if (op == "**") {
    if (!nums) return unsupported();
    if (ints && b.as_int() >= 0) {
      int64_t r = 1, base = a.as_int();
      for (int64_t e = b.as_int(); e > 0; --e) r *= base;
      return Value(r);
    }
    return Value(std::pow(a.as_float(), b.as_float()));
  }
  fail("TemplateRuntimeError", "unknown operator " + op);
}

static bool compare(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return a == b;
  if (op == "!=") return !(a == b);
  if (op == "in") return contains(b, a);
  if (op == "notin") return !contains(b, a);
  if (a.is_undefined()) raise_undefined(a);
  if (b.is_undefined()) raise_undefined(b);
  auto check = [&](const char* sym) {
    bool ok = (a.is_number() && b.is_number()) || (a.is_string() && b.is_string()) ||
              (a.is_list() && b.is_list() && a.seq() == b.seq() && a.seq() != Seq::Iterator);
    if (!ok)
      type_error(std::string("'") + sym + "' not supported between instances of '" + a.type_name() + "' and '" +
                 b.type_name() + "'");
  };
  if (op == "<") { check("<"); return value_less(a, b); }
  if (op == ">") { check(">"); return value_less(b, a); }
  if (op == "<=") { check("<="); return !value_less(b, a); }
  if (op == ">=") { check(">="); return !value_less(a, b); }
  fail("TemplateRuntimeError", "unknown comparison " + op);
}

// ---------------------------------------------------------------- lookup

Value Evaluator::getattr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) raise_undefined(obj);
  if (obj.is_object()) {
    if (const Value* v = obj.object()->get(name)) return *v;
  } else if (!name.empty() && name[0] == '_') {
    // The sandbox hides private attributes.
  } else {
    Value m = get_method(obj, name);
    if (!m.is_undefined() || m.is_unsafe()) return m;
    if (obj.is_dict()) {
      if (const Value* v = obj.dict().find(std::string_view(name))) return *v;
    }
  }
  return Value::undefined("'" + object_type_repr(obj) + "' has no attribute '" + name + "'");
}

Value Evaluator::getitem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) raise_undefined(obj);
  if (obj.is_dict()) {
    if (const Value* v = obj.dict().find(key)) return *v;
  } else if ((obj.is_list() && obj.seq() != Seq::Iterator) || obj.is_string()) {
    if (key.is_int() || key.is_bool()) {
      int64_t i = key.as_int();
      if (obj.is_list()) {
        int64_t n = static_cast<int64_t>(obj.list().size());
        if (i < 0) i += n;
        if (i >= 0 && i < n) return obj.list()[static_cast<size_t>(i)];
      } else {
        std::u32string s = utf8_decode(obj.str());
        int64_t n = static_cast<int64_t>(s.size());
        if (i < 0) i += n;
        if (i >= 0 && i < n) return Value(utf8_encode(s.substr(static_cast<size_t>(i), 1)));
      }
    }
  } else if (obj.is_object() && key.is_string()) {
    return getattr(obj, key.str());
  }
  if (key.is_string() && !obj.is_object()) {
    Value m = key.str().empty() || key.str()[0] == '_' ? Value() : get_method(obj, key.str());
    if (!m.is_undefined() || m.is_unsafe()) return m;
    return Value::undefined("'" + object_type_repr(obj) + "' has no attribute " + key.repr());
  }
  return Value::undefined(object_type_repr(obj) + " has no element " + key.repr());
}

Value Evaluator::slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (obj.is_undefined()) raise_undefined(obj);
  auto as_index = [](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_none() || v.is_undefined()) return std::nullopt;
    if (!v.is_int() && !v.is_bool()) type_error(std::string("slice ") + what + " must be an integer or None");
    return v.as_int();
  };
  auto st = as_index(step, "step");
  int64_t k = st.value_or(1);
  if (k == 0) fail("ValueError", "slice step cannot be zero");
  bool is_str = obj.is_string();
  // Slices compile to a plain Python subscript in jinja2 (no sandbox fallback to undefined).
  if (obj.is_dict()) type_error("unhashable type: 'slice'");
  if (!is_str && !(obj.is_list() && obj.seq() != Seq::Iterator))
    type_error("'" + obj.type_name() + "' object is not subscriptable");
  std::u32string s;
  if (is_str) s = utf8_decode(obj.str());
  int64_t n = is_str ? static_cast<int64_t>(s.size()) : static_cast<int64_t>(obj.list().size());
  auto clamp = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t i = *v;
    if (i < 0) {
      i += n;
      if (i < 0) i = k < 0 ? -1 : 0;
    } else if (i >= n) {
      i = k < 0 ? n - 1 : n;
    }
    return i;
  };
  int64_t b = clamp(as_index(start, "start"), k < 0 ? n - 1 : 0);
  int64_t e = clamp(as_index(stop, "stop"), k < 0 ? -1 : n);
  std::vector<int64_t> idx;
  for (int64_t i = b; k > 0 ? i < e : i > e; i += k) idx.push_back(i);
  if (is_str) {
    std::u32string out;
    for (int64_t i : idx) out += s[static_cast<size_t>(i)];
    return Value(utf8_encode(out));
  }
  List out;
  for (int64_t i : idx) out.push_back(obj.list()[static_cast<size_t>(i)]);
  return Value(std::move(out), obj.seq());
}

Value Evaluator::call(const Value& fn, CallArgs& args) {
  if (fn.is_undefined()) raise_undefined(fn);
  if (!fn.is_callable()) type_error("'" + fn.type_name() + "' object is not callable");
  return fn.callable().fn(*this, args);
}

// ---------------------------------------------------------------- statements

Flow Evaluator::exec(const Body& body, const FramePtr& frame, std::string& out) {
  for (const auto& n : body) {
    Flow f = exec_node(*n, frame, out);
    if (f != Flow::Normal) return f;
  }
  return Flow::Normal;
}

void Evaluator::assign(const Expr& target, const Value& value, const FramePtr& frame) {
  if (target.kind == EK::Name) {
    frame->vars[target.name] = value;
  } else if (target.kind == EK::NsRef) {
    const Value* ns = frame->lookup(target.name);
    if (!ns || !ns->is_object() || ns->object()->type != "Namespace")
      fail("TemplateRuntimeError", "cannot assign attribute on non-namespace object");
    ns->object()->set(target.literal.str(), value);
  } else if (target.kind == EK::Tuple) {
    List items = iterate(value);
    if (items.size() != target.items.size()) {
      if (items.size() > target.items.size())
        fail("ValueError", "too many values to unpack (expected " + std::to_string(target.items.size()) + ")");
      fail("ValueError", "not enough values to unpack (expected " + std::to_string(target.items.size()) + ", got " +
                             std::to_string(items.size()) + ")");
    }
    for (size_t i = 0; i < items.size(); ++i) assign(*target.items[i], items[i], frame);
  } else {
    fail("TemplateRuntimeError", "can't assign to this expression");
  }
}

Flow Evaluator::exec_node(const Node& n, const FramePtr& frame, std::string& out) {
  try {
    switch (n.kind) {
      case NK::Text: out += n.text; return Flow::Normal;
      case NK::Output: out += eval(*n.expr, frame).to_str(); return Flow::Normal;
      case NK::If:
        for (const auto& [cond, body] : n.branches)
          if (eval(*cond, frame).truthy()) return exec(body, frame, out);
        return exec(n.else_body, frame, out);
      case NK::For: return exec_for(n, frame, out);
      case NK::Set: assign(*n.target, eval(*n.expr, frame), frame); return Flow::Normal;
      case NK::SetBlock: {
        std::string captured;
        exec(n.body, frame, captured);
        Value v(std::move(captured));
        if (n.filter) v = apply_filter_expr(*n.filter, frame, v);
        assign(*n.target, v, frame);
        return Flow::Normal;
      }
      case NK::Macro: frame->vars[n.text] = make_macro(n, frame, false); return Flow::Normal;
      case NK::CallBlock: {
        const Expr& call = *n.expr;
        Value fn = eval(*call.a, frame);
        CallArgs args;
        eval_args(call, frame, args);
        args.kw.emplace_back("caller", make_macro(n, frame, true));
        out += this->call(fn, args).to_str();
        return Flow::Normal;
      }
      case NK::FilterBlock: {
        std::string captured;
        exec(n.body, std::make_shared<Frame>(frame), captured);
        out += apply_filter_expr(*n.filter, frame, Value(std::move(captured))).to_str();
        return Flow::Normal;
      }
      case NK::With: {
        auto inner = std::make_shared<Frame>(frame);
        for (size_t i = 0; i < n.targets.size(); ++i) assign(*n.targets[i], eval(*n.values[i], frame), inner);
        return exec(n.body, inner, out);
      }
      case NK::Scope: return exec(n.body, std::make_shared<Frame>(frame), out);
      case NK::Break: return Flow::Break;
      case NK::Continue: return Flow::Continue;
    }
  } catch (JinjaError& e) {
    if (e.line == 0) {
      e.line = n.line;
      e.col = n.col;
    }
    throw;
  }
  return Flow::Normal;
}

Flow Evaluator::exec_for(const Node& n, const FramePtr& frame, std::string& out) {
  Value seq = eval(*n.expr, frame);
  List items = iterate(seq);
  if (n.cond) {
    List kept;
    for (auto& item : items) {
      auto f = std::make_shared<Frame>(frame);
      assign(*n.target, item, f);
      if (eval(*n.cond, f).truthy()) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    exec(n.else_body, std::make_shared<Frame>(frame), out);
    return Flow::Normal;
  }
  const int64_t len = static_cast<int64_t>(items.size());
  auto loop = std::make_shared<Object>();
  loop->type = "LoopContext";
  std::weak_ptr<Object> weak = loop;
  loop->set("length", Value(len));
  loop->set("depth", Value(1));
  loop->set("depth0", Value(0));
  loop->set("cycle", Value(std::shared_ptr<const Callable>(make_callable("cycle", [weak](Evaluator&, CallArgs& a) {
    if (a.pos.empty()) type_error("no items for cycling given");
    auto l = weak.lock();
    int64_t i = l ? l->get("index0")->as_int() : 0;
    return a.pos[static_cast<size_t>(i % static_cast<int64_t>(a.pos.size()))];
  }))));
  loop->set("changed", Value(std::shared_ptr<const Callable>(make_callable("changed", [weak](Evaluator&, CallArgs& a) {
    auto l = weak.lock();
    Value current(List(a.pos), Seq::Tuple);
    const Value* last = l->get("_last_changed");
    bool changed = !last || !(*last == current);
    l->set("_last_changed", current);
    return Value(changed);
  }))));
  for (int64_t i = 0; i < len; ++i) {
    loop->set("index0", Value(i));
    loop->set("index", Value(i + 1));
    loop->set("revindex", Value(len - i));
    loop->set("revindex0", Value(len - i - 1));
    loop->set("first", Value(i == 0));
    loop->set("last", Value(i == len - 1));
    loop->set("previtem", i > 0 ? items[static_cast<size_t>(i - 1)]
                                : Value::undefined("there is no previous item"));
    loop->set("nextitem", i + 1 < len ? items[static_cast<size_t>(i + 1)]
                                      : Value::undefined("there is no next item"));
    auto f = std::make_shared<Frame>(frame);
    f->vars["loop"] = Value(loop);
    assign(*n.target, items[static_cast<size_t>(i)], f);
    if (exec(n.body, f, out) == Flow::Break) break;
  }
  return Flow::Normal;
}

Evaluator::~Evaluator() {
  for (auto& f : closures_) f->vars.clear();
  for (auto& o : objects_) o->attrs.items.clear();
}

Value Evaluator::make_macro(const Node& n, const FramePtr& frame, bool is_caller) {
  if (closures_.empty() || closures_.back() != frame) closures_.push_back(frame);
  auto c = std::make_shared<Callable>();
  c->name = is_caller ? "caller" : n.text;
  c->is_macro = true;
  const Node* node = &n;
  FramePtr closure = frame;
  c->fn = [node, closure](Evaluator& ev, CallArgs& args) -> Value {
    if (ev.depth_ > 200) fail("RecursionError", "maximum macro recursion depth exceeded");
    auto f = std::make_shared<Frame>(closure);
    const auto& params = node->params;
    const size_t first_default = params.size() - node->defaults.size();
    List varargs;
    for (size_t i = 0; i < args.pos.size(); ++i) {
      if (i < params.size()) f->vars[params[i]] = args.pos[i];
      else varargs.push_back(args.pos[i]);
    }
    if (!varargs.empty() && !node->catch_varargs)
      type_error("macro '" + node->text + "' takes not more than " + std::to_string(params.size()) + " argument(s)");
    Dict kwargs;
    for (const auto& [k, v] : args.kw) {
      bool is_param = std::find(params.begin(), params.end(), k) != params.end();
      if (is_param) {
        f->vars[k] = v;
      } else if (k == "caller" && node->uses_caller) {
        f->vars["caller"] = v;
      } else if (node->catch_kwargs) {
        kwargs.set(Value(k), v);
      } else if (k == "caller") {
        type_error("macro '" + node->text + "' was invoked with two values for the special caller argument. "
                   "This is most likely a bug.");
      } else {
        type_error("macro '" + node->text + "' takes no keyword argument '" + k + "'");
      }
    }
    for (size_t i = 0; i < params.size(); ++i) {
      if (f->vars.count(params[i])) continue;
      if (i >= first_default) f->vars[params[i]] = ev.eval(*node->defaults[i - first_default], f);
      else f->vars[params[i]] = Value::undefined("'" + params[i] + "' is undefined");
    }
    f->vars["varargs"] = Value::tuple(std::move(varargs));
    f->vars["kwargs"] = Value(std::move(kwargs));
    std::string out;
    ++ev.depth_;
    try {
      ev.exec(node->body, f, out);
    } catch (...) {
      --ev.depth_;
      throw;
    }
    --ev.depth_;
    return Value(std::move(out));
  };
  return Value(std::shared_ptr<const Callable>(std::move(c)));
}

// ---------------------------------------------------------------- expressions

Value Evaluator::eval(const Expr& e, const FramePtr& frame) {
  try {
    return eval_inner(e, frame);
  } catch (JinjaError& err) {
    if (err.line == 0) {
      err.line = e.line;
      err.col = e.col;
    }
    throw;
  }
}

void Evaluator::eval_args(const Expr& e, const FramePtr& frame, CallArgs& args) {
  for (const auto& a : e.items) args.pos.push_back(eval(*a, frame));
  if (e.dyn_args)
    for (auto& v : iterate(eval(*e.dyn_args, frame))) args.pos.push_back(std::move(v));
  for (const auto& [k, v] : e.kwargs) args.kw.emplace_back(k, eval(*v, frame));
  if (e.dyn_kwargs) {
    Value d = eval(*e.dyn_kwargs, frame);
    if (!d.is_dict()) type_error("argument after ** must be a mapping, not " + d.type_name());
    for (const auto& [k, v] : d.dict().items) args.kw.emplace_back(k.to_str(), v);
  }
}

Value Evaluator::apply_filter_expr(const Expr& e, const FramePtr& frame, Value input) {
  // A filter chain whose innermost `a` is null takes `input` (filter blocks, set blocks).
  Value in = e.a ? (e.a->kind == EK::Filter ? apply_filter_expr(*e.a, frame, std::move(input)) : eval(*e.a, frame))
                 : std::move(input);
  try {
    CallArgs args;
    eval_args(e, frame, args);
    return apply_filter(*this, e.name, in, args);
  } catch (JinjaError& err) {
    if (err.line == 0) {
      err.line = e.line;
      err.col = e.col;
    }
    throw;
  }
}

Value Evaluator::eval_inner(const Expr& e, const FramePtr& frame) {
  switch (e.kind) {
    case EK::Literal: return e.literal;
    case EK::Name: {
      if (const Value* v = frame->lookup(e.name)) return *v;
      return Value::undefined("'" + e.name + "' is undefined");
    }
    case EK::NsRef: {
      const Value* ns = frame->lookup(e.name);
      if (!ns) return Value::undefined("'" + e.name + "' is undefined");
      return getattr(*ns, e.literal.str());
    }
    case EK::List:
    case EK::Tuple: {
      List l;
      l.reserve(e.items.size());
      for (const auto& i : e.items) l.push_back(eval(*i, frame));
      return Value(std::move(l), e.kind == EK::Tuple ? Seq::Tuple : Seq::List);
    }
    case EK::Dict: {
      Dict d;
      for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
        Value k = eval(*e.items[i], frame);
        if (k.is_list() && k.seq() != Seq::Tuple) type_error("unhashable type: 'list'");
        if (k.is_dict()) type_error("unhashable type: 'dict'");
        d.set(std::move(k), eval(*e.items[i + 1], frame));
      }
      return Value(std::move(d));
    }
    case EK::Getattr: return getattr(eval(*e.a, frame), e.name);
    case EK::Getitem: {
      Value obj = eval(*e.a, frame);
      return getitem(obj, eval(*e.b, frame));
    }
    case EK::Slice: {
      if (!e.a) fail("TemplateRuntimeError", "unsupported subscript");
      Value obj = eval(*e.a, frame);
      Value parts[3];
      for (int i = 0; i < 3; ++i) parts[i] = e.items[i] ? eval(*e.items[i], frame) : Value::none();
      return slice(obj, parts[0], parts[1], parts[2]);
    }
    case EK::Call: {
      Value fn = eval(*e.a, frame);
      CallArgs args;
      eval_args(e, frame, args);
      return call(fn, args);
    }
    case EK::Filter: return apply_filter_expr(e, frame, Value());
    case EK::Test: {
      Value v = eval(*e.a, frame);
      CallArgs args;
      eval_args(e, frame, args);
      return Value(apply_test(*this, e.name, v, args));
    }
    case EK::Neg:
    case EK::Pos: {
      Value v = eval(*e.a, frame);
      if (v.is_undefined()) raise_undefined(v);
      if (!v.is_number())
        type_error(std::string("bad operand type for unary ") + (e.kind == EK::Neg ? "-" : "+") + ": '" +
                   v.type_name() + "'");
      if (e.kind == EK::Pos) return v.is_bool() ? Value(v.as_int()) : v;
      return v.is_float() ? Value(-v.as_float()) : Value(-v.as_int());
    }
    case EK::Not: return Value(!eval(*e.a, frame).truthy());
    case EK::And: {
      Value l = eval(*e.a, frame);
      return l.truthy() ? eval(*e.b, frame) : l;
    }
    case EK::Or: {
      Value l = eval(*e.a, frame);
      return l.truthy() ? l : eval(*e.b, frame);
    }
    case EK::Binary: {
      Value l = eval(*e.a, frame);
      Value r = eval(*e.b, frame);
      return binary_op(e.name, l, r);
    }
    case EK::Compare: {
      Value left = eval(*e.a, frame);
      for (size_t i = 0; i < e.ops.size(); ++i) {
        Value right = eval(*e.items[i], frame);
        if (!compare(e.ops[i], left, right)) return Value(false);
        left = std::move(right);
      }
      return Value(true);
    }
    case EK::CondExpr: {
      if (eval(*e.b, frame).truthy()) return eval(*e.a, frame);
      if (e.c) return eval(*e.c, frame);
      return Value::undefined("the inline if-expression on line " + std::to_string(e.line) +
                              " evaluated to false and no else section was defined.");
    }
  }
  return Value();
}

}  // namespace modu::jinja
