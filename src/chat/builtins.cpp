// Builtins: Python methods of str/list/dict values (with the immutable sandbox's refusal of
// mutating methods), str.format and %-formatting, and the template globals.
#include "builtins.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "pystr.h"

namespace modu::jinja {
namespace {

using Fn = std::function<Value(Evaluator&, CallArgs&)>;

Value make_fn(std::string name, Fn fn) {
  auto c = std::make_shared<Callable>();
  c->name = std::move(name);
  c->fn = std::move(fn);
  return Value(std::shared_ptr<const Callable>(std::move(c)));
}

std::optional<std::string> opt_str(const CallArgs& a, size_t i, std::string_view name) {
  const Value* v = a.get(i, name);
  if (!v || v->is_none()) return std::nullopt;
  if (!v->is_string()) type_error("must be str or None, not " + v->type_name());
  return v->str();
}
int64_t opt_int(const CallArgs& a, size_t i, std::string_view name, int64_t dflt) {
  const Value* v = a.get(i, name);
  if (!v || v->is_none()) return dflt;
  if (!v->is_int() && !v->is_bool()) type_error("'" + v->type_name() + "' object cannot be interpreted as an integer");
  return v->as_int();
}
const std::string& need_str(const CallArgs& a, size_t i, const char* method) {
  if (i >= a.pos.size()) type_error(std::string(method) + "() missing required argument");
  if (!a.pos[i].is_string())
    type_error(std::string(method) + "() argument must be str, not " + a.pos[i].type_name());
  return a.pos[i].str();
}

List to_values(const std::vector<std::string>& parts) {
  List l;
  l.reserve(parts.size());
  for (const auto& p : parts) l.emplace_back(p);
  return l;
}

// Python's format-spec mini language for str.format: [[fill]align][sign][#][0][width][,][.prec][type].
std::string apply_spec(const Value& v, const std::string& spec) {
  if (spec.empty()) return v.to_str();
  std::u32string s = utf8_decode(spec);
  size_t i = 0;
  char32_t fill = ' ';
  char align = 0;
  if (s.size() >= 2 && (s[1] == '<' || s[1] == '>' || s[1] == '^' || s[1] == '=')) {
    fill = s[0];
    align = static_cast<char>(s[1]);
    i = 2;
  } else if (!s.empty() && (s[0] == '<' || s[0] == '>' || s[0] == '^' || s[0] == '=')) {
    align = static_cast<char>(s[0]);
    i = 1;
  }
  char sign = '-';
  if (i < s.size() && (s[i] == '+' || s[i] == '-' || s[i] == ' ')) sign = static_cast<char>(s[i++]);
  if (i < s.size() && s[i] == '#') ++i;
  if (i < s.size() && s[i] == '0') {
    if (!align) { fill = '0'; align = '='; }
    ++i;
  }
  int64_t width = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') width = width * 10 + (s[i++] - '0');
  bool comma = false;
  if (i < s.size() && (s[i] == ',' || s[i] == '_')) { comma = true; ++i; }
  int precision = -1;
  if (i < s.size() && s[i] == '.') {
    ++i;
    precision = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') precision = precision * 10 + static_cast<int>(s[i++] - '0');
  }
  char type = i < s.size() ? static_cast<char>(s[i]) : 0;
  std::string body;
  bool numeric = v.is_number() && type != 's';
  if (!numeric) {
    body = v.to_str();
    if (precision >= 0) body = utf8_encode(utf8_decode(body).substr(0, static_cast<size_t>(precision)));
  } else {
    char buf[512];
    double d = v.as_float();
    if (type == 'f' || type == 'F' || type == 'e' || type == 'E' || type == 'g' || type == 'G' || type == '%' ||
        (v.is_float() && type == 0 && precision >= 0)) {
      if (type == '%') d *= 100;
      char t = type == '%' ? 'f' : type == 0 ? 'g' : type;
      std::snprintf(buf, sizeof buf, (std::string("%.*") + t).c_str(), precision < 0 ? 6 : precision, d);
      body = buf;
      if (type == '%') body += '%';
    } else if (type == 'x' || type == 'X' || type == 'o' || type == 'b' || type == 'd' || type == 'n' || type == 0) {
      if (v.is_float()) {
        body = format_float(d);
      } else {
        int64_t n = v.as_int();
        uint64_t m = n < 0 ? static_cast<uint64_t>(-n) : static_cast<uint64_t>(n);
        if (type == 'b') {
          do { body.insert(body.begin(), static_cast<char>('0' + (m & 1))); m >>= 1; } while (m);
        } else {
          std::snprintf(buf, sizeof buf, type == 'x' ? "%llx" : type == 'X' ? "%llX" : type == 'o' ? "%llo" : "%llu",
                        static_cast<unsigned long long>(m));
          body = buf;
        }
        if (comma && (type == 0 || type == 'd'))
          for (int k = static_cast<int>(body.size()) - 3; k > 0; k -= 3) body.insert(static_cast<size_t>(k), ",");
        if (n < 0) body.insert(body.begin(), '-');
      }
    }
    if (sign != '-' && !body.empty() && body[0] != '-') body.insert(body.begin(), sign);
  }
  if (!align) align = numeric ? '>' : '<';
  if (align == '=') {
    std::string prefix;
    if (!body.empty() && (body[0] == '-' || body[0] == '+' || body[0] == ' ')) {
      prefix = body.substr(0, 1);
      body.erase(0, 1);
    }
    return prefix + pystr::pad(body, width - static_cast<int64_t>(prefix.size()), fill, '>');
  }
  return pystr::pad(body, width, fill, align);
}

std::string str_format(Evaluator& ev, const std::string& fmt, const CallArgs& a) {
  std::string out;
  size_t auto_idx = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') ++i;
      else fail("ValueError", "Single '}' encountered in format string");
      out += '}';
      continue;
    }
    if (c != '{') { out += c; continue; }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') { out += '{'; ++i; continue; }
    size_t close = fmt.find('}', i);
    if (close == std::string::npos) fail("ValueError", "Single '{' encountered in format string");
    std::string field = fmt.substr(i + 1, close - i - 1);
    i = close;
    std::string spec, conv;
    if (size_t colon = field.find(':'); colon != std::string::npos) { spec = field.substr(colon + 1); field.resize(colon); }
    if (size_t bang = field.find('!'); bang != std::string::npos) { conv = field.substr(bang + 1); field.resize(bang); }
    size_t end = field.find_first_of(".[");
    std::string head = field.substr(0, end);
    Value v;
    if (head.empty()) {
      if (auto_idx >= a.pos.size()) fail("IndexError", "Replacement index " + std::to_string(auto_idx) + " out of range");
      v = a.pos[auto_idx++];
    } else if (std::all_of(head.begin(), head.end(), [](char d) { return d >= '0' && d <= '9'; })) {
      size_t k = std::stoul(head);
      if (k >= a.pos.size()) fail("IndexError", "Replacement index " + head + " out of range");
      v = a.pos[k];
    } else {
      const Value* kv = a.get(SIZE_MAX, head);
      if (!kv) fail("KeyError", "'" + head + "'");
      v = *kv;
    }
    while (end != std::string::npos && end < field.size()) {
      if (field[end] == '.') {
        size_t nx = field.find_first_of(".[", end + 1);
        v = ev.getattr(v, field.substr(end + 1, nx == std::string::npos ? std::string::npos : nx - end - 1));
        end = nx;
      } else {
        size_t rb = field.find(']', end);
        std::string key = field.substr(end + 1, rb - end - 1);
        bool digits = !key.empty() && std::all_of(key.begin(), key.end(), [](char d) { return d >= '0' && d <= '9'; });
        v = ev.getitem(v, digits ? Value(static_cast<int64_t>(std::stoll(key))) : Value(key));
        end = rb == std::string::npos ? rb : rb + 1;
      }
    }
    if (conv == "r") v = Value(v.repr());
    else if (conv == "s") v = Value(v.to_str());
    out += apply_spec(v, spec);
  }
  return out;
}

Value string_method(const Value& self, const std::string& name) {
  const std::string s = self.str();
  auto bind = [&](Fn fn) { return make_fn(name, std::move(fn)); };
  if (name == "startswith" || name == "endswith") {
    bool starts = name == "startswith";
    return bind([s, starts](Evaluator&, CallArgs& a) {
      if (a.pos.empty()) type_error("startswith() takes at least 1 argument (0 given)");
      std::u32string u = utf8_decode(s);
      int64_t n = static_cast<int64_t>(u.size());
      int64_t b = opt_int(a, 1, "start", 0), e = opt_int(a, 2, "end", n);
      if (b < 0) b = std::max<int64_t>(0, b + n);
      if (e < 0) e = std::max<int64_t>(0, e + n);
      e = std::min(e, n);
      std::string sub = b <= e ? utf8_encode(u.substr(static_cast<size_t>(b), static_cast<size_t>(e - b))) : "";
      List cands = a.pos[0].is_list() ? a.pos[0].list() : List{a.pos[0]};
      for (const auto& c : cands) {
        if (!c.is_string()) type_error("startswith first arg must be str or a tuple of str, not " + c.type_name());
        const std::string& p = c.str();
        if (b > e) continue;
        if (p.size() <= sub.size() &&
            (starts ? sub.compare(0, p.size(), p) == 0 : sub.compare(sub.size() - p.size(), p.size(), p) == 0))
          return Value(true);
      }
      return Value(false);
    });
  }
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    bool l = name != "rstrip", r = name != "lstrip";
    return bind([s, l, r, m = self.is_markup()](Evaluator&, CallArgs& a) {
      std::string out = pystr::strip(s, opt_str(a, 0, "chars"), l, r);
      return m ? Value::markup(std::move(out)) : Value(std::move(out));
    });
  }
  if (name == "split" || name == "rsplit") {
    bool rev = name == "rsplit";
    return bind([s, rev](Evaluator&, CallArgs& a) {
      auto sep = opt_str(a, 0, "sep");
      int64_t maxsplit = opt_int(a, 1, "maxsplit", -1);
      return Value(to_values(rev ? pystr::rsplit(s, sep, maxsplit) : pystr::split(s, sep, maxsplit)));
    });
  }
  if (name == "splitlines")
    return bind([s](Evaluator&, CallArgs& a) {
      const Value* k = a.get(0, "keepends");
      return Value(to_values(pystr::splitlines(s, k && k->truthy())));
    });
  if (name == "replace")
    return bind([s](Evaluator&, CallArgs& a) {
      return Value(pystr::replace(s, need_str(a, 0, "replace"), need_str(a, 1, "replace"), opt_int(a, 2, "count", -1)));
    });
  using Unary = std::string (*)(std::string_view);
  Unary unary = name == "upper" ? Unary(pystr::upper) : name == "lower" || name == "casefold" ? Unary(pystr::lower)
              : name == "title" ? Unary(pystr::title) : name == "capitalize" ? Unary(pystr::capitalize)
              : name == "swapcase" ? Unary(pystr::swapcase) : nullptr;
  const bool markup = self.is_markup();
  auto keep = [markup](std::string out) { return markup ? Value::markup(std::move(out)) : Value(std::move(out)); };
  if (unary) return bind([s, unary, keep](Evaluator&, CallArgs&) { return keep(unary(s)); });
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex") {
    bool rev = name[0] == 'r', strict = name.find("index") != std::string::npos;
    return bind([s, rev, strict](Evaluator&, CallArgs& a) {
      int64_t r = pystr::find(s, need_str(a, 0, "find"), rev);
      if (r < 0 && strict) fail("ValueError", "substring not found");
      return Value(r);
    });
  }
  if (name == "count") return bind([s](Evaluator&, CallArgs& a) { return Value(pystr::count(s, need_str(a, 0, "count"))); });
  if (name == "join")
    return bind([s](Evaluator&, CallArgs& a) {
      if (a.pos.empty()) type_error("join() takes exactly one argument (0 given)");
      std::string out;
      bool first = true;
      for (const auto& item : iterate(a.pos[0])) {
        if (!item.is_string()) type_error("sequence item: expected str instance, " + item.type_name() + " found");
        if (!first) out += s;
        first = false;
        out += item.str();
      }
      return Value(std::move(out));
    });
  if (name == "format") return bind([s](Evaluator& ev, CallArgs& a) { return Value(str_format(ev, s, a)); });
  if (name == "center" || name == "ljust" || name == "rjust") {
    char align = name == "center" ? '^' : name == "ljust" ? '<' : '>';
    return bind([s, align](Evaluator&, CallArgs& a) {
      auto fill = opt_str(a, 1, "fillchar");
      return Value(pystr::pad(s, opt_int(a, 0, "width", 0), fill && !fill->empty() ? utf8_decode(*fill)[0] : U' ', align));
    });
  }
  if (name == "zfill")
    return bind([s](Evaluator&, CallArgs& a) {
      int64_t w = opt_int(a, 0, "width", 0);
      bool neg = !s.empty() && (s[0] == '-' || s[0] == '+');
      std::string body = neg ? s.substr(1) : s;
      return Value((neg ? s.substr(0, 1) : "") + pystr::pad(body, w - (neg ? 1 : 0), '0', '>'));
    });
  if (name == "partition" || name == "rpartition") {
    bool rev = name[0] == 'r';
    return bind([s, rev](Evaluator&, CallArgs& a) {
      const std::string& sep = need_str(a, 0, "partition");
      size_t i = rev ? s.rfind(sep) : s.find(sep);
      if (i == std::string::npos)
        return rev ? Value::tuple({Value(""), Value(""), Value(s)}) : Value::tuple({Value(s), Value(""), Value("")});
      return Value::tuple({Value(s.substr(0, i)), Value(sep), Value(s.substr(i + sep.size()))});
    });
  }
  if (name == "removeprefix" || name == "removesuffix") {
    bool prefix = name == "removeprefix";
    return bind([s, prefix](Evaluator&, CallArgs& a) {
      const std::string& p = need_str(a, 0, "removeprefix");
      if (prefix && s.compare(0, p.size(), p) == 0) return Value(s.substr(p.size()));
      if (!prefix && s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0)
        return Value(s.substr(0, s.size() - p.size()));
      return Value(s);
    });
  }
  using Pred = bool (*)(char32_t);
  Pred pred = name == "isdigit" || name == "isnumeric" || name == "isdecimal" ? Pred(pystr::is_digit)
            : name == "isalpha" ? Pred(pystr::is_alpha)
            : name == "isalnum" ? Pred([](char32_t c) { return pystr::is_alpha(c) || pystr::is_digit(c); })
            : name == "isspace" ? Pred(is_py_space) : nullptr;
  if (pred)
    return bind([s, pred](Evaluator&, CallArgs&) {
      std::u32string u = utf8_decode(s);
      return Value(!u.empty() && std::all_of(u.begin(), u.end(), pred));
    });
  if (name == "isupper" || name == "islower") {
    bool up = name == "isupper";
    return bind([s, up](Evaluator&, CallArgs&) {
      bool cased = false;
      for (char32_t c : utf8_decode(s)) {
        if (up ? pystr::is_lower(c) : pystr::is_upper(c)) return Value(false);
        cased = cased || pystr::is_upper(c) || pystr::is_lower(c);
      }
      return Value(cased);
    });
  }
  return Value();
}

}  // namespace

Value get_method(const Value& obj, const std::string& name) {
  if (obj.is_string()) return string_method(obj, name);
  if (obj.is_list() && obj.seq() != Seq::Iterator) {
    static const char* kUnsafe[] = {"append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear"};
    for (const char* u : kUnsafe)
      if (name == u && obj.seq() == Seq::List)
        return Value::unsafe("access to attribute '" + name + "' of 'list' object is unsafe.");
    if (name == "index")
      return make_fn(name, [obj](Evaluator&, CallArgs& a) {
        const List& l = obj.list();
        for (size_t i = 0; i < l.size(); ++i)
          if (!a.pos.empty() && l[i] == a.pos[0]) return Value(i);
        fail("ValueError", (a.pos.empty() ? std::string("value") : a.pos[0].repr()) + " is not in list");
      });
    if (name == "count")
      return make_fn(name, [obj](Evaluator&, CallArgs& a) {
        int64_t n = 0;
        for (const auto& x : obj.list()) n += !a.pos.empty() && x == a.pos[0];
        return Value(n);
      });
    if (name == "copy" && obj.seq() == Seq::List) return make_fn(name, [obj](Evaluator&, CallArgs&) { return obj; });
    return Value();
  }
  if (obj.is_dict()) {
    static const char* kUnsafe[] = {"pop", "popitem", "setdefault", "update", "clear"};
    for (const char* u : kUnsafe)
      if (name == u) return Value::unsafe("access to attribute '" + name + "' of 'dict' object is unsafe.");
    if (name == "items" || name == "keys" || name == "values") {
      int which = name == "items" ? 0 : name == "keys" ? 1 : 2;
      return make_fn(name, [obj, which](Evaluator&, CallArgs&) {
        List out;
        for (const auto& [k, v] : obj.dict().items)
          out.push_back(which == 0 ? Value::tuple({k, v}) : which == 1 ? k : v);
        return Value(std::move(out));
      });
    }
    if (name == "get")
      return make_fn(name, [obj](Evaluator&, CallArgs& a) {
        if (a.pos.empty()) type_error("get expected at least 1 argument, got 0");
        if (const Value* v = obj.dict().find(a.pos[0])) return *v;
        return a.pos.size() > 1 ? a.pos[1] : Value::none();
      });
    if (name == "copy") return make_fn(name, [obj](Evaluator&, CallArgs&) { return obj; });
  }
  return Value();
}

std::string percent_format(const std::string& fmt, const Value& args) {
  List pos;
  const Dict* mapping = nullptr;
  if (args.is_list() && args.seq() == Seq::Tuple) pos = args.list();
  else if (args.is_dict() || args.is_list() || args.is_undefined())
    mapping = &args.dict();  // other subscriptable values act as mappings
  else pos = {args};
  size_t next = 0;
  bool used_mapping = false;
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') { out += fmt[i]; continue; }
    if (++i >= fmt.size()) fail("ValueError", "incomplete format");
    Value v;
    bool have = false;
    if (fmt[i] == '(') {
      size_t close = fmt.find(')', i);
      if (close == std::string::npos || !mapping) type_error("format requires a mapping");
      const Value* mv = mapping->find(std::string_view(fmt).substr(i + 1, close - i - 1));
      if (!mv) fail("KeyError", "'" + fmt.substr(i + 1, close - i - 1) + "'");
      v = *mv;
      have = used_mapping = true;
      i = close + 1;
    }
    std::string flags;
    while (i < fmt.size() && std::string_view("-+ 0#").find(fmt[i]) != std::string_view::npos) flags += fmt[i++];
    std::string width, prec;
    while (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9') width += fmt[i++];
    if (i < fmt.size() && fmt[i] == '.') {
      prec = ".";
      ++i;
      while (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9') prec += fmt[i++];
    }
    while (i < fmt.size() && (fmt[i] == 'l' || fmt[i] == 'h' || fmt[i] == 'L')) ++i;
    if (i >= fmt.size()) fail("ValueError", "incomplete format");
    char conv = fmt[i];
    if (conv == '%') { out += '%'; continue; }
    if (!have) {
      if (mapping && pos.empty()) { v = args; used_mapping = true; }
      else if (next >= pos.size()) type_error("not enough arguments for format string");
      else v = pos[next++];
    }
    std::string spec = "%" + flags + width + prec;
    char buf[512];
    std::string body;
    switch (conv) {
      case 's': case 'r': case 'a': {
        body = conv == 's' ? v.to_str() : v.repr();
        if (prec.size() > 1) body = utf8_encode(utf8_decode(body).substr(0, std::stoul(prec.substr(1))));
        int64_t w = width.empty() ? 0 : std::stoll(width);
        body = pystr::pad(body, w, ' ', flags.find('-') != std::string::npos ? '<' : '>');
        break;
      }
      case 'd': case 'i': case 'u': case 'x': case 'X': case 'o': case 'c': {
        if (!v.is_number()) type_error(std::string("%") + conv + " format: a real number is required, not " + v.type_name());
        long long n = v.is_float() ? static_cast<long long>(v.as_float()) : v.as_int();
        if (conv == 'c') { utf8_append(body, static_cast<char32_t>(n)); break; }
        std::snprintf(buf, sizeof buf, (spec + "ll" + (conv == 'i' || conv == 'u' ? 'd' : conv)).c_str(), n);
        body = buf;
        break;
      }
      case 'f': case 'F': case 'e': case 'E': case 'g': case 'G': {
        if (!v.is_number()) type_error("must be real number, not " + v.type_name());
        std::snprintf(buf, sizeof buf, (spec + conv).c_str(), v.as_float());
        body = buf;
        break;
      }
      default: fail("ValueError", std::string("unsupported format character '") + conv + "'");
    }
    out += body;
  }
  if (!used_mapping && next < pos.size()) type_error("not all arguments converted during string formatting");
  return out;
}

FramePtr make_globals() {
  auto g = std::make_shared<Frame>();
  g->vars["range"] = make_fn("range", [](Evaluator&, CallArgs& a) {
    auto num = [&](size_t i) {
      if (!a.pos[i].is_int() && !a.pos[i].is_bool())
        type_error("'" + a.pos[i].type_name() + "' object cannot be interpreted as an integer");
      return a.pos[i].as_int();
    };
    if (a.pos.empty()) type_error("range expected at least 1 argument, got 0");
    int64_t start = 0, stop, step = 1;
    if (a.pos.size() == 1) stop = num(0);
    else { start = num(0); stop = num(1); if (a.pos.size() > 2) step = num(2); }
    if (step == 0) fail("ValueError", "range() arg 3 must not be zero");
    List out;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      if (out.size() >= 100000) fail("OverflowError", "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
      out.emplace_back(i);
    }
    return Value(std::move(out));
  });
  auto kwargs_dict = [](CallArgs& a) {
    Dict d;
    for (const auto& p : a.pos) {
      if (p.is_dict()) for (const auto& kv : p.dict().items) d.set(kv.first, kv.second);
      else for (const auto& item : iterate(p)) {
        List kv = iterate(item);
        if (kv.size() != 2) fail("ValueError", "dictionary update sequence element has wrong length");
        d.set(kv[0], kv[1]);
      }
    }
    for (const auto& [k, v] : a.kw) d.set(Value(k), v);
    return d;
  };
  g->vars["dict"] = make_fn("dict", [kwargs_dict](Evaluator&, CallArgs& a) { return Value(kwargs_dict(a)); });
  g->vars["namespace"] = make_fn("namespace", [kwargs_dict](Evaluator& ev, CallArgs& a) {
    auto ns = std::make_shared<Object>();
    ns->type = "Namespace";
    ns->attrs = kwargs_dict(a);
    ev.track(ns);
    return Value(ns);
  });
  g->vars["joiner"] = make_fn("joiner", [](Evaluator&, CallArgs& a) {
    std::string sep = a.get(0, "sep") ? a.get(0, "sep")->to_str() : ", ";
    auto used = std::make_shared<bool>(false);
    return make_fn("joiner", [sep, used](Evaluator&, CallArgs&) {
      if (!*used) { *used = true; return Value(""); }
      return Value(sep);
    });
  });
  g->vars["cycler"] = make_fn("cycler", [](Evaluator&, CallArgs& a) {
    if (a.pos.empty()) fail("RuntimeError", "at least one item has to be provided");
    auto obj = std::make_shared<Object>();
    obj->type = "Cycler";
    auto items = std::make_shared<List>(a.pos);
    auto pos = std::make_shared<size_t>(0);
    std::weak_ptr<Object> weak = obj;
    obj->set("current", (*items)[0]);
    obj->set("next", make_fn("next", [items, pos, weak](Evaluator&, CallArgs&) {
      Value v = (*items)[*pos];
      *pos = (*pos + 1) % items->size();
      if (auto o = weak.lock()) o->set("current", (*items)[*pos]);
      return v;
    }));
    obj->set("reset", make_fn("reset", [items, pos, weak](Evaluator&, CallArgs&) {
      *pos = 0;
      if (auto o = weak.lock()) o->set("current", (*items)[0]);
      return Value::none();
    }));
    return Value(obj);
  });
  g->vars["raise_exception"] = make_fn("raise_exception", [](Evaluator&, CallArgs& a) -> Value {
    JinjaError e("TemplateError", a.pos.empty() ? std::string() : a.pos[0].to_str());
    e.raised = true;
    throw e;
  });
  g->vars["strftime_now"] = make_fn("strftime_now", [](Evaluator& ev, CallArgs& a) {
    std::string fmt = a.get(0, "format") ? a.get(0, "format")->to_str() : "";
    std::time_t t = std::chrono::system_clock::to_time_t(ev.now());
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::string out;
    // strftime with an empty result is ambiguous; format piecewise around literal text.
    char buf[512];
    size_t n = std::strftime(buf, sizeof buf, (fmt + "\x01").c_str(), &tm);
    if (n > 0) out.assign(buf, n - 1);
    return Value(out);
  });
  return g;
}

}  // namespace modu::jinja
