// Shared scanning helpers of the tool-call parsers (see scan.h).
#include "scan.h"

#include <algorithm>

namespace modu::toolcall::scan {

std::string_view ltrim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  return s;
}
std::string_view rtrim(std::string_view s) {
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}
std::string_view trim(std::string_view s) { return rtrim(ltrim(s)); }

size_t find_any(std::string_view text, size_t from, const std::vector<std::string_view>& markers, size_t* which) {
  size_t best = std::string_view::npos;
  for (size_t i = 0; i < markers.size(); ++i) {
    if (markers[i].empty()) continue;
    const size_t p = text.find(markers[i], from);
    if (p < best || (p == best && p != std::string_view::npos && which && markers[i].size() > markers[*which].size())) {
      best = p;
      if (which) *which = i;
    }
  }
  return best;
}

size_t marker_tail(std::string_view text, const std::vector<std::string_view>& markers) {
  size_t best = 0;
  for (std::string_view m : markers)
    for (size_t k = std::min(m.size() - (m.empty() ? 0 : 1), text.size()); k > best; --k)
      if (text.substr(text.size() - k) == m.substr(0, k)) {
        best = k;
        break;
      }
  return best;
}

size_t utf8_tail(std::string_view s) {
  // Walk back over continuation bytes to the lead byte; incomplete if the sequence is short.
  size_t n = 0;
  while (n < s.size() && n < 3 && ((unsigned char)s[s.size() - 1 - n] & 0xC0) == 0x80) ++n;
  if (n == s.size()) return 0;
  const unsigned char lead = (unsigned char)s[s.size() - 1 - n];
  const size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  return need > n + 1 ? n + 1 : 0;
}

Span json_span(std::string_view s) {
  Span r;
  if (s.empty()) return r;
  const char c0 = s[0];
  if (c0 == '{' || c0 == '[' || c0 == '"') {
    int depth = 0;
    bool in_str = false, esc = false;
    for (size_t i = 0; i < s.size(); ++i) {
      const char c = s[i];
      if (in_str) {
        if (esc) esc = false;
        else if (c == '\\') esc = true;
        else if (c == '"') {
          in_str = false;
          if (depth == 0) return {i + 1, true, true};
        }
        continue;
      }
      if (c == '"') in_str = true;
      else if (c == '{' || c == '[') ++depth;
      else if (c == '}' || c == ']') {
        if (--depth == 0) return {i + 1, true, true};
        if (depth < 0) return {i, false, false};
      }
    }
    return {s.size(), false, true};
  }
  // Numbers and literals: up to the first delimiter; complete only when one follows.
  size_t i = 0;
  while (i < s.size() && (std::isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '+' || s[i] == '.')) ++i;
  if (i == 0) return r;
  return {i, i < s.size(), true};
}

ojson parse_json(std::string_view s) { return ojson::parse(s.begin(), s.end(), nullptr, false); }

bool final_arguments(std::string_view raw, std::string* out) {
  raw = trim(raw);
  if (raw == "null" || raw.empty()) {
    *out = "{}";
    return true;
  }
  const ojson j = parse_json(raw);
  if (j.is_discarded()) return false;
  if (j.is_object()) {
    *out = std::string(raw);
    return true;
  }
  if (j.is_string()) {  // some models double-encode the arguments
    const std::string inner = j.get<std::string>();
    const ojson k = parse_json(inner);
    if (k.is_discarded() || !k.is_object()) return false;
    *out = std::string(trim(inner));
    return true;
  }
  return false;
}

namespace {
bool is_key(std::string_view k, const std::vector<std::string_view>& keys) {
  return std::find(keys.begin(), keys.end(), k) != keys.end();
}
}  // namespace

CallObject call_object(std::string_view s, const std::vector<std::string_view>& name_keys,
                       const std::vector<std::string_view>& args_keys, std::string_view id_key) {
  CallObject r;
  if (s.empty() || s[0] != '{') return r;
  r.ok = true;
  size_t i = 1;
  auto ws = [&] {
    while (i < s.size() && is_space(s[i])) ++i;
  };
  bool any_args = false;
  while (true) {
    ws();
    if (i >= s.size()) return r;  // cut
    if (s[i] == '}') {
      r.end = i + 1;
      r.complete = true;
      if (!any_args) {
        r.args = "{}";
        r.args_done = true;
      }
      r.ok = r.name_done && r.args_done;
      return r;
    }
    if (s[i] == ',') {
      ++i;
      ws();
      if (i >= s.size()) return r;
    }
    if (s[i] != '"') return r.ok = false, r;
    const Span ks = json_span(s.substr(i));
    if (!ks.complete) return r;
    const ojson key = parse_json(s.substr(i, ks.end));
    if (!key.is_string()) return r.ok = false, r;
    i += ks.end;
    ws();
    if (i >= s.size()) return r;
    if (s[i] != ':') return r.ok = false, r;
    ++i;
    ws();
    if (i >= s.size()) return r;
    const std::string k = key.get<std::string>();
    const Span vs = json_span(s.substr(i));
    if (!vs.ok) return r.ok = false, r;
    const std::string_view v = s.substr(i, vs.end);
    if (is_key(k, name_keys)) {
      if (!vs.complete) return r;
      const ojson n = parse_json(v);
      if (!n.is_string()) return r.ok = false, r;
      r.name = n.get<std::string>();
      r.name_done = true;
    } else if (!id_key.empty() && k == id_key) {
      if (!vs.complete) return r;
      const ojson n = parse_json(v);
      if (n.is_string()) r.id = n.get<std::string>();
      else if (n.is_number()) r.id = n.dump();
    } else if (is_key(k, args_keys)) {
      any_args = true;
      if (!vs.complete) {
        if (v[0] == '{') r.args = std::string(v);  // a string value is decoded only when whole
        return r;
      }
      if (!final_arguments(v, &r.args)) return r.ok = false, r;
      r.args_done = true;
    } else if (!vs.complete) {
      return r;
    }
    i += vs.end;
  }
}

ArgsBuilder::ArgsBuilder(const ParseOptions& opts, std::string_view function) {
  if (!opts.tools || !opts.tools->is_array()) return;
  for (const auto& t : *opts.tools) {
    const auto fn = t.find("function");
    if (fn == t.end() || !fn->is_object()) continue;
    const auto nm = fn->find("name");
    if (nm == fn->end() || !nm->is_string() || nm->get<std::string>() != function) continue;
    const auto params = fn->find("parameters");
    if (params == fn->end() || !params->is_object()) return;
    const auto props = params->find("properties");
    if (props != params->end() && props->is_object()) props_ = &*props;
    return;
  }
}

bool ArgsBuilder::is_string_param(std::string_view key) const {
  if (!props_) return false;
  const auto p = props_->find(std::string(key));
  if (p == props_->end() || !p->is_object()) return false;
  const auto t = p->find("type");
  if (t == p->end()) return false;
  if (t->is_string()) return t->get<std::string>() == "string";
  if (t->is_array()) {  // ["string", "null"]: a string unless the text is null
    bool str = false;
    for (const auto& x : *t) str |= x.is_string() && x.get<std::string>() == "string";
    return str && t->size() <= 2;
  }
  return false;
}

namespace {


void ws(std::string_view s, size_t* i) {
  while (*i < s.size() && is_space(s[*i])) ++*i;
}

Py py_string(std::string_view s, size_t* i, std::string* out) {
  const char q = s[*i];
  ++*i;
  while (*i < s.size()) {
    const char c = s[*i];
    if (c == q) {
      ++*i;
      return Py::kOk;
    }
    if (c == '\\') {
      if (*i + 1 >= s.size()) return Py::kCut;
      const char e = s[*i + 1];
      *i += 2;
      switch (e) {
        case 'n': *out += '\n'; break;
        case 't': *out += '\t'; break;
        case 'r': *out += '\r'; break;
        case '0': *out += '\0'; break;
        case 'u': {
          if (*i + 4 > s.size()) return Py::kCut;
          const ojson j = parse_json("\"\\u" + std::string(s.substr(*i, 4)) + "\"");
          if (!j.is_string()) return Py::kBad;
          *out += j.get<std::string>();
          *i += 4;
          break;
        }
        case '\\': case '\'': case '"': *out += e; break;
        case 'a': *out += '\a'; break;
        case 'b': *out += '\b'; break;
        case 'f': *out += '\f'; break;
        case 'v': *out += '\v'; break;
        default: *out += '\\'; *out += e;  // Python keeps unknown escapes as written
      }
      continue;
    }
    *out += c;
    ++*i;
  }
  return Py::kCut;
}

Py py_value(std::string_view s, size_t* i, ojson* out, int depth = 0) {
  ws(s, i);
  if (*i >= s.size()) return Py::kCut;
  if (depth > 32) return Py::kBad;
  const char c = s[*i];
  if (c == '"' || c == '\'') {
    std::string str;
    const Py p = py_string(s, i, &str);
    *out = str;
    return p;
  }
  if (c == '[' || c == '(' || c == '{') {
    const char close = c == '[' ? ']' : c == '(' ? ')' : '}';
    const bool dict = c == '{';
    *out = dict ? ojson::object() : ojson::array();
    ++*i;
    while (true) {
      ws(s, i);
      if (*i >= s.size()) return Py::kCut;
      if (s[*i] == close) {
        ++*i;
        return Py::kOk;
      }
      ojson k, v;
      Py p = py_value(s, i, dict ? &k : &v, depth + 1);
      if (p != Py::kOk) return p;
      if (dict) {
        ws(s, i);
        if (*i >= s.size()) return Py::kCut;
        if (s[*i] != ':' || !k.is_string()) return Py::kBad;
        ++*i;
        if ((p = py_value(s, i, &v, depth + 1)) != Py::kOk) return p;
        (*out)[k.get<std::string>()] = v;
      } else {
        out->push_back(v);
      }
      ws(s, i);
      if (*i >= s.size()) return Py::kCut;
      if (s[*i] == ',') ++*i;
      else if (s[*i] != close) return Py::kBad;
    }
  }
  size_t j = *i;
  while (j < s.size() && (std::isalnum((unsigned char)s[j]) || s[j] == '-' || s[j] == '+' || s[j] == '.' || s[j] == '_')) ++j;
  if (j == *i) return Py::kBad;
  if (j == s.size()) return Py::kCut;  // a number or name may go on
  const std::string_view w = s.substr(*i, j - *i);
  *i = j;
  if (w == "True" || w == "true") *out = true;
  else if (w == "False" || w == "false") *out = false;
  else if (w == "None" || w == "null") *out = nullptr;
  else {
    const ojson n = parse_json(w);
    if (!n.is_number()) return Py::kBad;
    *out = n;
  }
  return Py::kOk;
}

}  // namespace

Py python_value(std::string_view s, size_t* i, ojson* out) { return py_value(s, i, out); }

std::string typed_value(std::string_view raw, bool is_string) {
  if (is_string) return ojson(std::string(raw)).dump(-1, ' ', false, ojson::error_handler_t::replace);
  const std::string_view t = trim(raw);
  const ojson j = parse_json(t);
  if (!j.is_discarded() && !t.empty()) return std::string(t);
  if (t == "True") return "true";
  if (t == "False") return "false";
  if (t == "None") return "null";
  // Python literals ({'a': [1, 'b']}), as templates that print values with str() write them.
  if (!t.empty() && (t[0] == '{' || t[0] == '[')) {
    size_t i = 0;
    ojson v;
    if (py_value(t, &i, &v) == Py::kOk && i == t.size()) return v.dump(-1, ' ', false, ojson::error_handler_t::replace);
  }
  return ojson(std::string(raw)).dump(-1, ' ', false, ojson::error_handler_t::replace);
}

void ArgsBuilder::key(std::string_view k) {
  if (!first_) text_ += ", ";
  first_ = false;
  text_ += ojson(std::string(k)).dump(-1, ' ', false, ojson::error_handler_t::replace);
  text_ += ": ";
}

void ArgsBuilder::add(std::string_view k, std::string_view raw, int is_string) {
  key(k);
  text_ += typed_value(raw, is_string < 0 ? is_string_param(k) : is_string == 1);
}

void ArgsBuilder::add_partial(std::string_view k, std::string_view raw, int is_string) {
  if (!(is_string < 0 ? is_string_param(k) : is_string == 1)) return;  // typed values appear once complete
  key(k);
  raw.remove_suffix(utf8_tail(raw));
  std::string q = ojson(std::string(raw)).dump(-1, ' ', false, ojson::error_handler_t::replace);
  q.pop_back();  // the closing quote comes with the rest of the value
  text_ += q;
}

void Content::text(std::string_view s) {
  if (after_call_) {
    s = ltrim(s);
    if (s.empty()) return;
    after_call_ = false;
  }
  out_.append(s);
}

void Content::call_boundary() {
  out_.resize(rtrim(out_).size());
  after_call_ = true;
}

std::string Content::take(size_t hold) {
  std::string r = out_.substr(0, out_.size() - std::min(hold, out_.size()));
  if (partial_) {
    r.resize(rtrim(r).size());
    r.resize(r.size() - utf8_tail(r));
  }
  return r;
}

void add_call(PartialReply* r, std::string name, std::string args, bool complete, std::string id) {
  r->reply.calls.push_back({std::move(id), std::move(name), std::move(args)});
  r->open_call = !complete;
}

size_t named_args(std::string_view text, size_t pos, bool partial, PartialReply* r, std::string name, std::string id,
                  bool* cut) {
  while (pos < text.size() && is_space(text[pos])) ++pos;
  if (pos >= text.size()) {
    if (!partial) return std::string_view::npos;
    add_call(r, std::move(name), "", false, std::move(id));
    *cut = true;
    return text.size();
  }
  const Span sp = json_span(text.substr(pos));
  if (!sp.ok || (text[pos] != '{' && text[pos] != '"' && text[pos] != 'n')) return std::string_view::npos;
  if (!sp.complete) {
    if (!partial) return std::string_view::npos;
    add_call(r, std::move(name), text[pos] == '{' ? std::string(text.substr(pos)) : "", false, std::move(id));
    *cut = true;
    return text.size();
  }
  std::string args;
  if (!final_arguments(text.substr(pos, sp.end), &args)) return std::string_view::npos;
  add_call(r, std::move(name), std::move(args), true, std::move(id));
  return pos + sp.end;
}

size_t until(std::string_view text, size_t pos, std::string_view end, bool partial, bool* cut) {
  const size_t p = text.find(end, pos);
  if (p != std::string_view::npos) return p;
  *cut = partial;
  return std::string_view::npos;
}

bool parse_call_regions(std::string_view text, bool partial, std::string_view start, std::string_view open,
                        std::string_view close, std::initializer_list<std::string_view> arriving_in_region,
                        PartialReply* r, const std::function<size_t(size_t, bool*)>& call) {
  constexpr size_t npos = std::string_view::npos;
  const bool region = !open.empty();
  Content content(partial);
  size_t pos = 0;
  while (true) {
    const size_t p = text.find(start, pos);
    if (p == npos) {
      std::string_view seg = text.substr(pos);
      if (partial) seg.remove_suffix(marker_tail(seg, {start}));
      content.text(seg);
      break;
    }
    content.text(text.substr(pos, p - pos));
    content.call_boundary();
    size_t q = region ? p + open.size() : p;
    bool cut = false;
    const size_t before = r->reply.calls.size();
    while (true) {  // the calls of one region (one call without regions)
      q = skip_ws(text, q);
      if (region && starts_with(text.substr(q), close)) {
        q += close.size();
        break;
      }
      if (q >= text.size() || (region && partial && arriving(text, q, arriving_in_region))) {
        if (!partial && r->reply.calls.size() == before) return false;
        cut = partial;
        break;
      }
      const size_t e = call(q, &cut);
      if (cut) break;
      if (e == npos) {
        if (!partial) return false;
        cut = true;
        break;
      }
      q = e;
      if (!region) break;
    }
    if (cut) break;
    pos = q;
  }
  r->reply.content = content.take();
  return true;
}

}  // namespace modu::toolcall::scan
