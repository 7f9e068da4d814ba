// Pythonic tool calls: [f(a=1, b="x"), g()] as the reply (Gemma 3, Llama 3.2 pythonic), or between
// <|tool_call_start|> and <|tool_call_end|> (LFM2). Values are Python literals (strings with
// either quote, numbers, True/False/None, lists, dicts), converted to JSON arguments.
#include "pythonic.h"

#include "json_tags.h"
#include "scan.h"

namespace modu::toolcall {

using namespace scan;

namespace {

std::string dump(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); }

}  // namespace

namespace {
void ws(std::string_view s, size_t* i) {
  while (*i < s.size() && is_space(s[*i])) ++*i;
}
}  // namespace

size_t python_call(std::string_view text, size_t pos, bool partial, PartialReply* r, bool* cut) {
  size_t i = pos;
  while (i < text.size() && (std::isalnum((unsigned char)text[i]) || text[i] == '_' || text[i] == '.' || text[i] == '-')) ++i;
  if (i == text.size()) {
    *cut = partial;
    return std::string_view::npos;
  }
  std::string name(text.substr(pos, i - pos));
  if (name.size() > 5 && name.compare(name.size() - 5, 5, ".call") == 0) name.resize(name.size() - 5);
  if (name.empty() || text[i] != '(') return std::string_view::npos;
  ++i;
  std::string args = "{";
  bool first = true;
  auto open = [&] {
    if (!partial) return std::string_view::npos;
    add_call(r, name, args, false);
    *cut = true;
    return text.size();
  };
  while (true) {
    ws(text, &i);
    if (i >= text.size()) return open();
    if (text[i] == ')') {
      add_call(r, name, args + "}", true);
      return i + 1;
    }
    if (!first) {
      if (text[i] != ',') return std::string_view::npos;
      ++i;
      ws(text, &i);
      if (i >= text.size()) return open();
      if (text[i] == ')') continue;
    }
    size_t k = i;
    while (k < text.size() && (std::isalnum((unsigned char)text[k]) || text[k] == '_')) ++k;
    if (k == text.size()) return open();
    const std::string key(text.substr(i, k - i));
    i = k;
    ws(text, &i);
    if (i >= text.size()) return open();
    if (key.empty() || text[i] != '=') return std::string_view::npos;
    ++i;
    ojson v;
    const Py p = python_value(text, &i, &v);
    if (p == Py::kCut) return open();
    if (p == Py::kBad) return std::string_view::npos;
    args += (first ? "" : ", ") + dump(ojson(key)) + ": " + dump(v);
    first = false;
  }
}

namespace {

// A list of calls: [f(...), g(...)].
class Pythonic final : public Format {
 public:
  Pythonic(const char* name, std::string open, std::string close) : name_(name), open_(std::move(open)), close_(std::move(close)) {}
  const char* name() const override { return name_; }
  // Forced calls are JSON call objects in the list, which the parser accepts beside Python calls.
  Forcing forcing() const override { return {.prefix = open_, .shape = Forcing::kCallArray}; }

  PartialReply parse(std::string_view text, const ParseOptions&, bool partial) const override {
    PartialReply r;
    const PartialReply as_content{{std::string(text), "", {}}, false};
    size_t start = 0;
    std::string_view lead = ltrim(text);
    if (!open_.empty()) {
      start = text.find(open_);
      if (start == std::string_view::npos) {
        r.reply.content = std::string(partial ? rtrim(text.substr(0, text.size() - marker_tail(text, {open_}))) : text);
        return r;
      }
      r.reply.content = std::string(rtrim(text.substr(0, start)));
      start += open_.size();
      while (start < text.size() && is_space(text[start])) ++start;
    } else {
      if (lead.empty()) return partial ? r : as_content;
      if (lead[0] != '[') {
        r.reply.content = std::string(partial ? rtrim(text) : text);
        return r;
      }
      start = (size_t)(lead.data() - text.data());
    }
    if (start >= text.size()) return partial ? r : as_content;
    if (text[start] != '[') return partial ? r : as_content;
    size_t i = start + 1;
    while (true) {
      ws(text, &i);
      if (i >= text.size()) return partial ? r : as_content;
      if (text[i] == ']') {
        ++i;
        break;
      }
      if (!r.reply.calls.empty()) {
        if (text[i] != ',') return partial ? PartialReply{} : as_content;
        ++i;
        ws(text, &i);
      }
      bool cut = false;
      size_t e;
      if (text[i] == '{') {
        const CallObject co = call_object(text.substr(i), {"name"}, {"arguments", "parameters"});
        if (!co.ok || (!co.complete && !partial)) return partial ? PartialReply{} : as_content;
        add_call(&r, co.name_done ? co.name : "", co.args, co.complete);
        if (!co.complete) return r;
        e = i + co.end;
      } else {
        e = python_call(text, i, partial, &r, &cut);
      }
      if (cut) return r;
      if (e == std::string_view::npos) return partial ? PartialReply{} : as_content;
      i = e;
    }
    if (r.reply.calls.empty()) return partial ? PartialReply{} : as_content;
    ws(text, &i);
    if (!close_.empty() && starts_with(text.substr(i), close_)) i += close_.size();
    const std::string_view rest = text.substr(i);
    if (!close_.empty() && partial && std::string_view(close_).substr(0, rest.size()) == rest) return r;
    if (open_.empty() && !trim(rest).empty()) return partial ? PartialReply{} : as_content;
    r.reply.content += std::string(partial ? trim(rest) : trim(rest));
    return r;
  }

 private:
  const char* name_;
  std::string open_, close_;
};

const bool kPythonic = register_format(
    {"pythonic", "[f(a=1, b=\"x\"), g()] as the whole reply (Gemma 3, Llama 3.2 pythonic)", nullptr,
     std::make_shared<Pythonic>("pythonic", "", "")});
const bool kLfm2 = register_format(
    {"lfm2", "<|tool_call_start|>[f(a=1)]<|tool_call_end|> (LFM2)",
     [](std::string_view src) {
       return src.find("<|tool_list_start|>") != std::string_view::npos || src.find("<|tool_call_start|>") != std::string_view::npos
                  ? 20 : 0;
     },
     std::make_shared<Pythonic>("lfm2", "<|tool_call_start|>", "<|tool_call_end|>")});

}  // namespace
}  // namespace modu::toolcall
