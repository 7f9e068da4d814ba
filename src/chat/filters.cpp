// Filters and tests: jinja2's builtin filters/tests (plus transformers' tojson) with Python
// semantics, including generator-returning filters (map, select, ...) modelled as iterators.
#include <algorithm>
#include <cmath>
#include <optional>

#include "builtins.h"
#include "pystr.h"

namespace modu::jinja {
namespace {

const Value* arg(const CallArgs& a, size_t i, std::string_view name) { return a.get(i, name); }

std::string str_arg(const CallArgs& a, size_t i, std::string_view name, std::string dflt) {
  const Value* v = arg(a, i, name);
  return v ? v->to_str() : dflt;
}
int64_t int_arg(const CallArgs& a, size_t i, std::string_view name, int64_t dflt) {
  const Value* v = arg(a, i, name);
  if (!v || v->is_none()) return dflt;
  if (!v->is_number()) type_error("'" + v->type_name() + "' object cannot be interpreted as an integer");
  return v->is_float() ? static_cast<int64_t>(v->as_float()) : v->as_int();
}
bool bool_arg(const CallArgs& a, size_t i, std::string_view name, bool dflt) {
  const Value* v = arg(a, i, name);
  return v ? v->truthy() : dflt;
}

Value lower_if_str(const Value& v) { return v.is_string() ? Value(pystr::lower(v.str())) : v; }

// jinja2's make_attrgetter: "a.b.0" looks up a, then b, then index 0.
Value get_path(Evaluator& ev, const Value& item, const std::string& path) {
  Value cur = item;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    cur = ev.getitem(cur, digits ? Value(static_cast<int64_t>(std::stoll(part))) : Value(part));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return cur;
}

// Sort key: an attribute path (or comma-separated paths) with optional case folding.
struct SortKey {
  std::vector<std::string> paths;
  bool case_sensitive = false;
  Value key(Evaluator& ev, const Value& item) const {
    if (paths.empty()) return case_sensitive ? item : lower_if_str(item);
    List parts;
    for (const auto& p : paths) {
      Value v = get_path(ev, item, p);
      parts.push_back(case_sensitive ? v : lower_if_str(v));
    }
    return parts.size() == 1 ? parts[0] : Value::tuple(std::move(parts));
  }
};

SortKey make_key(const CallArgs& a, size_t attr_pos, size_t cs_pos, bool split_commas) {
  SortKey k;
  k.case_sensitive = bool_arg(a, cs_pos, "case_sensitive", false);
  if (const Value* attr = arg(a, attr_pos, "attribute"); attr && !attr->is_none()) {
    std::string s = attr->to_str();
    if (split_commas) {
      for (auto& p : pystr::split(s, std::string(","), -1)) k.paths.push_back(pystr::strip(p, std::nullopt, true, true));
    } else {
      k.paths.push_back(s);
    }
  }
  return k;
}

List sorted(Evaluator& ev, List items, const SortKey& key, bool reverse) {
  std::vector<std::pair<Value, Value>> keyed;
  keyed.reserve(items.size());
  for (auto& it : items) keyed.emplace_back(key.key(ev, it), std::move(it));
  std::stable_sort(keyed.begin(), keyed.end(), [reverse](const auto& x, const auto& y) {
    return reverse ? value_less(y.first, x.first) : value_less(x.first, y.first);
  });
  List out;
  out.reserve(keyed.size());
  for (auto& kv : keyed) out.push_back(std::move(kv.second));
  return out;
}

// select/reject/selectattr/rejectattr.
Value select_impl(Evaluator& ev, const Value& input, CallArgs& args, bool with_attr, bool expect) {
  size_t off = 0;
  std::string attr;
  if (with_attr) {
    if (args.pos.empty()) type_error("Missing parameter for attribute name");
    attr = args.pos[0].to_str();
    off = 1;
  }
  std::optional<std::string> test;
  CallArgs test_args;
  if (args.pos.size() > off) {
    test = args.pos[off].to_str();
    test_args.pos.assign(args.pos.begin() + static_cast<long>(off) + 1, args.pos.end());
    test_args.kw = args.kw;
  }
  List out;
  if (!input.truthy()) return Value::iterator({});
  for (const auto& item : iterate(input)) {
    Value v = with_attr ? get_path(ev, item, attr) : item;
    bool ok = test ? apply_test(ev, *test, v, test_args) : v.truthy();
    if (ok == expect) out.push_back(item);
  }
  return Value::iterator(std::move(out));
}

double py_round(double x, int64_t ndigits) {
  // Python rounds half to even on the decimal value.
  double m = std::pow(10.0, static_cast<double>(ndigits));
  double y = x * m;
  double r = std::nearbyint(y);  // default rounding mode: half to even
  return r / m;
}

std::string indent_text(const std::string& s_in, const std::string& ind, bool first, bool blank) {
  std::string s = s_in + "\n";
  std::vector<std::string> lines = pystr::splitlines(s, false);
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + ind : "") + lines[i];
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) rv += "\n" + (lines[i].empty() ? "" : ind) + lines[i];
  }
  if (first) rv = ind + rv;
  return rv;
}

Value tojson(const Value& v, const CallArgs& a) {
  bool ensure_ascii = bool_arg(a, 0, "ensure_ascii", false);
  int indent = -1;
  std::string ind_str;
  if (const Value* i = arg(a, 1, "indent"); i && !i->is_none()) {
    if (i->is_string()) type_error("string indent is not supported");
    indent = static_cast<int>(i->as_int());
  }
  std::string item_sep = indent >= 0 ? "," : ", ", key_sep = ": ";
  if (const Value* s = arg(a, 2, "separators"); s && !s->is_none()) {
    List parts = iterate(*s);
    if (parts.size() != 2) fail("ValueError", "separators must be a pair of strings");
    item_sep = parts[0].to_str();
    key_sep = parts[1].to_str();
  }
  return Value(v.to_json(ensure_ascii, indent, item_sep, key_sep, bool_arg(a, 3, "sort_keys", false)));
}

std::string wordtitle(const std::string& s) {
  // jinja's title: split on runs of [-\s({\[<], capitalize each piece.
  std::u32string u = utf8_decode(s);
  std::string out;
  bool start = true;
  for (char32_t c : u) {
    bool sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || is_py_space(c);
    if (sep) {
      utf8_append(out, c);
      start = true;
    } else {
      utf8_append(out, start ? pystr::to_upper(c) : pystr::to_lower(c));
      start = false;
    }
  }
  return out;
}

}  // namespace

Value apply_filter(Evaluator& ev, const std::string& name, const Value& v, CallArgs& a) {
  auto text = [&]() { return v.to_str(); };
  // Filters built on soft_str() keep a Markup input Markup.
  auto keep = [&](std::string out) { return v.is_markup() ? Value::markup(std::move(out)) : Value(std::move(out)); };
  if (name == "tojson") return tojson(v, a);
  if (name == "trim") {
    const Value* c = arg(a, 0, "chars");
    return keep(pystr::strip(text(), c && !c->is_none() ? std::optional<std::string>(c->to_str()) : std::nullopt,
                             true, true));
  }
  if (name == "length" || name == "count") {
    if (v.is_undefined()) return Value(0);
    if (v.is_string()) return Value(static_cast<int64_t>(utf8_length(v.str())));
    if (v.is_list() && v.seq() != Seq::Iterator) return Value(v.list().size());
    if (v.is_dict()) return Value(v.dict().size());
    if (v.is_object() && v.object()->type == "Namespace") return Value(v.object()->attrs.size());
    type_error("object of type '" + v.type_name() + "' has no len()");
  }
  if (name == "string") return keep(text());
  if (name == "safe") return Value::markup(text());
  if (name == "pprint") return Value(v.repr());
  if (name == "upper") return keep(pystr::upper(text()));
  if (name == "lower") return keep(pystr::lower(text()));
  if (name == "capitalize") return keep(pystr::capitalize(text()));
  if (name == "center") return keep(pystr::pad(text(), int_arg(a, 0, "width", 80), ' ', '^'));
  if (name == "title") return Value(wordtitle(text()));
  if (name == "e" || name == "escape" || name == "forceescape")
    return v.is_markup() && name != "forceescape" ? v : Value::markup(pystr::html_escape(text()));
  if (name == "replace") {
    if (a.pos.size() < 2 && !(arg(a, 0, "old") && arg(a, 1, "new"))) type_error("replace() missing arguments");
    std::string repl = arg(a, 1, "new")->to_str();
    if (v.is_markup() && !arg(a, 1, "new")->is_markup()) repl = pystr::html_escape(repl);
    return keep(pystr::replace(text(), arg(a, 0, "old")->to_str(), repl, int_arg(a, 2, "count", -1)));
  }
  if (name == "default" || name == "d") {
    bool boolean = bool_arg(a, 1, "boolean", false);
    if (v.is_undefined() || (boolean && !v.truthy())) {
      const Value* d = arg(a, 0, "default_value");
      return d ? *d : Value("");
    }
    return v;
  }
  if (name == "items") {
    if (v.is_undefined()) return Value::iterator({});
    if (!v.is_dict()) type_error("Can only get item pairs from a mapping.");
    List out;
    for (const auto& [k, val] : v.dict().items) out.push_back(Value::tuple({k, val}));
    return Value::iterator(std::move(out));
  }
  if (name == "list") return Value(iterate(v));
  if (name == "join") {
    std::string sep = str_arg(a, 0, "d", "");
    const Value* attr = arg(a, 1, "attribute");
    std::string out;
    bool first = true;
    for (const auto& item : iterate(v)) {
      if (!first) out += sep;
      first = false;
      out += (attr && !attr->is_none() ? get_path(ev, item, attr->to_str()) : item).to_str();
    }
    return Value(std::move(out));
  }
  if (name == "first") {
    List l = iterate(v);
    if (l.empty()) return Value::undefined("No first item, sequence was empty.");
    return l.front();
  }
  if (name == "last") {
    if (v.is_list() && v.seq() == Seq::Iterator) type_error("'generator' object is not reversible");
    List l = iterate(v);
    if (l.empty()) return Value::undefined("No last item, sequence was empty.");
    return l.back();
  }
  if (name == "map") {
    List out;
    if (!v.truthy()) return Value::iterator({});
    if (const Value* attr = arg(a, 99, "attribute")) {
      const Value* dflt = arg(a, 99, "default");
      for (const auto& item : iterate(v)) {
        Value r = get_path(ev, item, attr->to_str());
        out.push_back(r.is_undefined() && dflt ? *dflt : r);
      }
    } else {
      if (a.pos.empty()) return Value::iterator(iterate(v));
      std::string filter = a.pos[0].to_str();
      CallArgs rest;
      rest.pos.assign(a.pos.begin() + 1, a.pos.end());
      rest.kw = a.kw;
      for (const auto& item : iterate(v)) {
        CallArgs copy = rest;
        out.push_back(apply_filter(ev, filter, item, copy));
      }
    }
    return Value::iterator(std::move(out));
  }
  if (name == "select") return select_impl(ev, v, a, false, true);
  if (name == "reject") return select_impl(ev, v, a, false, false);
  if (name == "selectattr") return select_impl(ev, v, a, true, true);
  if (name == "rejectattr") return select_impl(ev, v, a, true, false);
  if (name == "unique") {
    SortKey key = make_key(a, 1, 0, false);
    List out, seen;
    for (const auto& item : iterate(v)) {
      Value k = key.key(ev, item);
      if (std::find(seen.begin(), seen.end(), k) != seen.end()) continue;
      seen.push_back(k);
      out.push_back(item);
    }
    return Value::iterator(std::move(out));
  }
  if (name == "sort") {
    return Value(sorted(ev, iterate(v), make_key(a, 2, 1, true), bool_arg(a, 0, "reverse", false)));
  }
  if (name == "dictsort") {
    if (!v.is_dict()) type_error("You can only sort by either \"key\" or \"value\"");
    bool cs = bool_arg(a, 0, "case_sensitive", false);
    std::string by = str_arg(a, 1, "by", "key");
    bool reverse = bool_arg(a, 2, "reverse", false);
    int pos = by == "key" ? 0 : by == "value" ? 1 : -1;
    if (pos < 0) fail("FilterArgumentError", "You can only sort by either \"key\" or \"value\"");
    List items;
    for (const auto& [k, val] : v.dict().items) items.push_back(Value::tuple({k, val}));
    std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
      Value kx = x.list()[static_cast<size_t>(pos)], ky = y.list()[static_cast<size_t>(pos)];
      if (!cs) { kx = lower_if_str(kx); ky = lower_if_str(ky); }
      return reverse ? value_less(ky, kx) : value_less(kx, ky);
    });
    return Value(std::move(items));
  }
  if (name == "min" || name == "max") {
    SortKey key = make_key(a, 1, 0, false);
    List l = iterate(v);
    if (l.empty()) return Value::undefined("No aggregated item, sequence was empty.");
    size_t best = 0;
    Value bk = key.key(ev, l[0]);
    for (size_t i = 1; i < l.size(); ++i) {
      Value k = key.key(ev, l[i]);
      if (name == "min" ? value_less(k, bk) : value_less(bk, k)) { best = i; bk = k; }
    }
    return l[best];
  }
  if (name == "sum") {
    const Value* attr = arg(a, 0, "attribute");
    Value total = arg(a, 1, "start") ? *arg(a, 1, "start") : Value(0);
    for (const auto& item : iterate(v))
      total = binary_op("+", total, attr && !attr->is_none() ? get_path(ev, item, attr->to_str()) : item);
    return total;
  }
  if (name == "abs") {
    if (!v.is_number()) type_error("bad operand type for abs(): '" + v.type_name() + "'");
    return v.is_float() ? Value(std::fabs(v.as_float())) : Value(static_cast<int64_t>(std::llabs(v.as_int())));
  }
  if (name == "round") {
    int64_t precision = int_arg(a, 0, "precision", 0);
    std::string method = str_arg(a, 1, "method", "common");
    if (!v.is_number()) type_error("type " + v.type_name() + " doesn't define __round__ method");
    double x = v.as_float();
    if (method == "common") {
      if (!v.is_float()) return Value(v.as_int());
      return Value(py_round(x, precision));
    }
    double m = std::pow(10.0, static_cast<double>(precision));
    if (method == "ceil") return Value(std::ceil(x * m) / m);
    if (method == "floor") return Value(std::floor(x * m) / m);
    fail("FilterArgumentError", "method must be common, ceil or floor");
  }
  if ((name == "int" || name == "float") && v.is_undefined()) raise_undefined(v);
  if (name == "int") {
    int64_t dflt = int_arg(a, 0, "default", 0);
    int base = static_cast<int>(int_arg(a, 1, "base", 10));
    if (v.is_number()) return v.is_float() ? Value(static_cast<int64_t>(v.as_float())) : Value(v.as_int());
    if (v.is_string()) {
      std::string s = pystr::strip(v.str(), std::nullopt, true, true);
      s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
      try {
        size_t used = 0;
        int64_t r = std::stoll(s, &used, base);
        if (used == s.size()) return Value(r);
      } catch (...) {
      }
      try {
        size_t used = 0;
        double d = std::stod(s, &used);
        if (used == s.size() && std::isfinite(d)) return Value(static_cast<int64_t>(d));
      } catch (...) {
      }
    }
    return Value(dflt);
  }
  if (name == "float") {
    const Value* d = arg(a, 0, "default");
    Value dflt = d ? *d : Value(0.0);
    if (v.is_number()) return Value(v.as_float());
    if (v.is_string()) {
      std::string s = pystr::strip(v.str(), std::nullopt, true, true);
      try {
        size_t used = 0;
        double r = std::stod(s, &used);
        if (used == s.size()) return Value(r);
      } catch (...) {
      }
    }
    return dflt;
  }
  if (name == "reverse") {
    if (v.is_string()) {
      std::u32string u = utf8_decode(v.str());
      std::reverse(u.begin(), u.end());
      return Value(utf8_encode(u));
    }
    List l = iterate(v);
    std::reverse(l.begin(), l.end());
    return Value::iterator(std::move(l));
  }
  if (name == "indent") {
    if (v.is_undefined()) raise_undefined(v);
    if (v.is_list() && v.seq() == Seq::Tuple) type_error("can only concatenate tuple (not \"str\") to tuple");
    if (v.is_list() && v.seq() == Seq::List) fail("AttributeError", "'list' object has no attribute 'splitlines'");
    if (!v.is_string()) type_error("unsupported operand type(s) for +=: '" + v.type_name() + "' and 'str'");
    const Value* w = arg(a, 0, "width");
    std::string ind = w && w->is_string() ? w->str() : std::string(static_cast<size_t>(int_arg(a, 0, "width", 4)), ' ');
    return keep(indent_text(text(), ind, bool_arg(a, 1, "first", false), bool_arg(a, 2, "blank", false)));
  }
  if (name == "wordcount") {
    int64_t n = 0;
    bool in_word = false;
    for (char32_t c : utf8_decode(text())) {
      bool w = pystr::is_alpha(c) || pystr::is_digit(c) || c == '_';
      if (w && !in_word) ++n;
      in_word = w;
    }
    return Value(n);
  }
  if (name == "truncate") {
    if (v.is_list() && v.seq() != Seq::Iterator) {
      if (static_cast<int64_t>(v.list().size()) <= int_arg(a, 0, "length", 255) + int_arg(a, 3, "leeway", 5)) return v;
      fail("AttributeError", "'list' object has no attribute 'rsplit'");
    }
    if (v.is_undefined() || v.is_dict()) return v;  // len() works and is small enough in practice
    if (!v.is_string()) type_error("object of type '" + v.type_name() + "' has no len()");
    std::string s = text();
    int64_t length = int_arg(a, 0, "length", 255);
    bool killwords = bool_arg(a, 1, "killwords", false);
    std::string end = str_arg(a, 2, "end", "...");
    int64_t leeway = int_arg(a, 3, "leeway", 5);
    std::u32string u = utf8_decode(s);
    if (static_cast<int64_t>(u.size()) <= length + leeway) return Value(s);
    int64_t keep = std::max<int64_t>(0, length - static_cast<int64_t>(utf8_length(end)));
    std::string head = utf8_encode(u.substr(0, static_cast<size_t>(keep)));
    if (killwords) return Value(head + end);
    return Value(pystr::rsplit(head, std::string(" "), 1)[0] + end);
  }
  if (name == "attr") {
    // Attributes only, never items: a dict's keys are not reachable through |attr.
    std::string attr = str_arg(a, 0, "name", "");
    if (v.is_object()) return ev.getattr(v, attr);
    if (v.is_undefined()) return Value::undefined("'" + attr + "' is undefined");
    Value m = attr.empty() || attr[0] == '_' ? Value() : get_method(v, attr);
    if (!m.is_undefined() || m.is_unsafe()) return m;
    return Value::undefined("'" + v.type_name() + " object' has no attribute '" + attr + "'");
  }
  if (name == "format") {
    if (!a.kw.empty()) {
      Dict d;
      for (const auto& [k, val] : a.kw) d.set(Value(k), val);
      return Value(percent_format(text(), Value(std::move(d))));
    }
    return Value(percent_format(text(), Value::tuple(a.pos)));
  }
  if (name == "batch" || name == "slice") {
    int64_t n = int_arg(a, 0, name == "batch" ? "linecount" : "slices", 1);
    if (n <= 0) fail("ValueError", "count must be positive");
    const Value* fill = arg(a, 1, "fill_with");
    List items = iterate(v), out;
    if (name == "batch") {
      for (size_t i = 0; i < items.size(); i += static_cast<size_t>(n)) {
        List chunk(items.begin() + static_cast<long>(i),
                   items.begin() + static_cast<long>(std::min(items.size(), i + static_cast<size_t>(n))));
        if (fill && !fill->is_none())
          while (chunk.size() < static_cast<size_t>(n)) chunk.push_back(*fill);
        out.push_back(Value(std::move(chunk)));
      }
    } else {
      size_t len = items.size(), per = len / static_cast<size_t>(n), extra = len % static_cast<size_t>(n), off = 0;
      for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
        size_t start = off + i * per;
        if (i < extra) ++off;
        size_t end = std::min(len, off + (i + 1) * per);
        List chunk(items.begin() + static_cast<long>(start), items.begin() + static_cast<long>(end));
        if (fill && !fill->is_none() && i >= extra) chunk.push_back(*fill);
        out.push_back(Value(std::move(chunk)));
      }
    }
    return Value::iterator(std::move(out));
  }
  if (name == "groupby") {
    SortKey key = make_key(a, 0, 2, false);
    List items = sorted(ev, iterate(v), key, false);
    const Value* dflt = arg(a, 1, "default");
    List out;
    for (const auto& item : items) {
      Value k = get_path(ev, item, key.paths.empty() ? "" : key.paths[0]);
      if (k.is_undefined() && dflt) k = *dflt;
      if (!key.case_sensitive) k = lower_if_str(k);
      if (!out.empty() && out.back().list()[0] == k) {
        List group = out.back().list()[1].list();
        group.push_back(item);
        out.back() = Value::tuple({k, Value(std::move(group))});
      } else {
        out.push_back(Value::tuple({k, Value(List{item})}));
      }
    }
    return Value(std::move(out));
  }
  if (is_filter_name(name)) fail("TemplateRuntimeError", "the '" + name + "' filter is not supported by modu");
  fail("TemplateAssertionError", "No filter named '" + name + "'.");
}

bool apply_test(Evaluator& ev, const std::string& name, const Value& v, CallArgs& a) {
  auto other = [&]() -> const Value& {
    if (a.pos.empty()) type_error("test '" + name + "' requires an argument");
    return a.pos[0];
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "string") return v.is_string();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "boolean") return v.is_bool();
  if (name == "true") return v.is_bool() && v.as_bool();
  if (name == "false") return v.is_bool() && !v.as_bool();
  if (name == "mapping") return v.is_dict();
  if (name == "iterable") return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
  if (name == "sequence")
    return v.is_undefined() || v.is_string() || (v.is_list() && v.seq() != Seq::Iterator) || v.is_dict();
  if (name == "callable") return v.is_callable() || v.is_undefined();
  if (name == "escaped") return false;
  if (name == "lower" || name == "upper") {
    // str(value).islower() / .isupper(): some cased character and none of the other case.
    bool cased = false;
    for (char32_t c : utf8_decode(v.to_str())) {
      if (name == "lower" ? pystr::is_upper(c) : pystr::is_lower(c)) return false;
      cased = cased || pystr::is_upper(c) || pystr::is_lower(c);
    }
    return cased;
  }
  if (name == "odd" || name == "even") return binary_op("%", v, Value(2)) == Value(name == "odd" ? 1 : 0);
  if (name == "divisibleby") {
    Value r = binary_op("%", v, other());
    return !r.truthy();
  }
  if (name == "eq" || name == "equalto" || name == "==") return v == other();
  if (name == "ne" || name == "!=") return v != other();
  if (name == "sameas") {
    const Value& o = other();
    if (v.kind() != o.kind()) return false;
    if (v.is_none() || v.is_undefined()) return true;
    if (v.is_bool()) return v.as_bool() == o.as_bool();
    return v == o && (v.is_int() || v.is_object() || v.is_callable());
  }
  if (name == "lt" || name == "lessthan" || name == "<") return value_less(v, other());
  if (name == "gt" || name == "greaterthan" || name == ">") return value_less(other(), v);
  if (name == "le" || name == "<=") return !value_less(other(), v);
  if (name == "ge" || name == ">=") return !value_less(v, other());
  if (name == "in") return contains(other(), v);
  if (name == "filter") return v.is_string() && is_filter_name(v.str());
  if (name == "test") return v.is_string() && is_test_name(v.str());
  (void)ev;
  fail("TemplateAssertionError", "No test named '" + name + "'.");
}

bool is_filter_name(const std::string& name) {
  static const char* kFilters[] = {
      "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
      "filesizeformat", "first", "float", "forceescape", "format", "groupby", "indent", "int", "items", "join",
      "last", "length", "list", "lower", "map", "max", "min", "pprint", "random", "reject", "rejectattr",
      "replace", "reverse", "round", "safe", "select", "selectattr", "slice", "sort", "string", "striptags",
      "sum", "title", "tojson", "trim", "truncate", "unique", "upper", "urlencode", "urlize", "wordcount",
      "wordwrap", "xmlattr"};
  return std::find(std::begin(kFilters), std::end(kFilters), name) != std::end(kFilters);
}

bool is_test_name(const std::string& name) {
  static const char* kTests[] = {
      "odd", "even", "divisibleby", "defined", "undefined", "filter", "test", "none", "boolean", "false",
      "true", "integer", "float", "lower", "upper", "string", "mapping", "number", "sequence", "iterable",
      "callable", "sameas", "escaped", "in", "==", "eq", "equalto", "!=", "ne", ">", "gt", "greaterthan",
      "ge", ">=", "<", "lt", "lessthan", "<=", "le"};
  return std::find(std::begin(kTests), std::end(kTests), name) != std::end(kTests);
}

}  // namespace modu::jinja
