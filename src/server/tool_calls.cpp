// Tool-call parsing for the three conventions chat templates teach (see tool_calls.h).
#include "modu/server/tool_calls.h"

#include <nlohmann/json.hpp>

namespace modu::server {

namespace {

using json = nlohmann::json;

constexpr std::string_view kHermesOpen = "<tool_call>", kHermesClose = "</tool_call>";
constexpr std::string_view kMistralOpen = "[TOOL_CALLS]", kMistralArgs = "[ARGS]";
constexpr std::string_view kPythonTag = "<|python_tag|>";

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }
std::string_view ltrim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  return s;
}
std::string trim(std::string_view s) {
  s = ltrim(s);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return std::string(s);
}

// Length of the JSON object or array at the start of s (brackets matched outside strings), or 0.
size_t json_value_end(std::string_view s) {
  if (s.empty() || (s[0] != '{' && s[0] != '[')) return 0;
  int depth = 0;
  bool in_str = false, esc = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_str) {
      if (esc) esc = false;
      else if (c == '\\') esc = true;
      else if (c == '"') in_str = false;
      continue;
    }
    if (c == '"') in_str = true;
    else if (c == '{' || c == '[') ++depth;
    else if ((c == '}' || c == ']') && --depth == 0) return i + 1;
  }
  return 0;
}

// {"name": ..., "arguments"|"parameters": {...} or "<json text>"} -> a call.
bool to_call(const json& j, ToolCall* out) {
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string()) return false;
  out->name = j["name"].get<std::string>();
  const json* args = j.contains("arguments") ? &j["arguments"] : j.contains("parameters") ? &j["parameters"] : nullptr;
  if (!args || args->is_null()) {
    out->arguments = "{}";
  } else if (args->is_string()) {  // already JSON text (some models double-encode)
    const json inner = json::parse(args->get<std::string>(), nullptr, false);
    if (inner.is_discarded() || !inner.is_object()) return false;
    out->arguments = inner.dump();
  } else if (args->is_object()) {
    out->arguments = args->dump();
  } else {
    return false;
  }
  return true;
}

bool parse_object_call(std::string_view text, size_t* used, ToolCall* out) {
  const size_t n = json_value_end(text);
  if (n == 0) return false;
  const json j = json::parse(text.substr(0, n), nullptr, false);
  if (j.is_discarded() || !to_call(j, out)) return false;
  *used = n;
  return true;
}

ToolParse hermes(std::string_view text) {
  ToolParse r;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t open = text.find(kHermesOpen, pos);
    if (open == std::string_view::npos) break;
    r.content.append(text.substr(pos, open - pos));
    const size_t body = open + kHermesOpen.size();
    size_t close = text.find(kHermesClose, body);
    const bool closed = close != std::string_view::npos;
    if (!closed) close = text.size();  // generation stopped right after the JSON
    ToolCall c;
    size_t used = 0;
    const std::string_view inner = ltrim(text.substr(body, close - body));
    if (!parse_object_call(inner, &used, &c) || !ltrim(inner.substr(used)).empty()) return {std::string(text), {}};
    r.calls.push_back(std::move(c));
    pos = closed ? close + kHermesClose.size() : text.size();
  }
  if (pos < text.size()) r.content.append(text.substr(pos));
  return r;
}

ToolParse mistral(std::string_view text) {
  const size_t open = text.find(kMistralOpen);
  if (open == std::string_view::npos) return {std::string(text), {}};
  ToolParse r;
  r.content = std::string(text.substr(0, open));
  std::string_view rest = ltrim(text.substr(open + kMistralOpen.size()));
  if (!rest.empty() && rest[0] == '[') {  // [{"name": ..., "arguments": {...}}, ...]
    const size_t n = json_value_end(rest);
    const json arr = n ? json::parse(rest.substr(0, n), nullptr, false) : json();
    if (n == 0 || arr.is_discarded() || !arr.is_array() || arr.empty() || !ltrim(rest.substr(n)).empty())
      return {std::string(text), {}};
    for (const auto& j : arr) {
      ToolCall c;
      if (!to_call(j, &c)) return {std::string(text), {}};
      r.calls.push_back(std::move(c));
    }
    return r;
  }
  while (!rest.empty()) {  // name[ARGS]{...}, repeated with [TOOL_CALLS] before each
    const size_t args = rest.find(kMistralArgs);
    if (args == std::string_view::npos) return {std::string(text), {}};
    ToolCall c;
    c.name = trim(rest.substr(0, args));
    std::string_view a = ltrim(rest.substr(args + kMistralArgs.size()));
    const size_t n = json_value_end(a);
    const json j = n ? json::parse(a.substr(0, n), nullptr, false) : json();
    if (c.name.empty() || n == 0 || j.is_discarded() || !j.is_object()) return {std::string(text), {}};
    c.arguments = j.dump();
    r.calls.push_back(std::move(c));
    rest = ltrim(a.substr(n));
    if (rest.substr(0, kMistralOpen.size()) == kMistralOpen) rest = ltrim(rest.substr(kMistralOpen.size()));
  }
  return r;
}

ToolParse llama3(std::string_view text) {
  std::string_view rest = ltrim(text);
  if (rest.substr(0, kPythonTag.size()) == kPythonTag) rest = ltrim(rest.substr(kPythonTag.size()));
  if (rest.empty() || rest[0] != '{') return {std::string(text), {}};
  ToolParse r;
  while (!rest.empty()) {  // one or more calls, separated by ';' or whitespace
    ToolCall c;
    size_t used = 0;
    if (!parse_object_call(rest, &used, &c)) return {std::string(text), {}};
    r.calls.push_back(std::move(c));
    rest = ltrim(rest.substr(used));
    if (!rest.empty() && rest[0] == ';') rest = ltrim(rest.substr(1));
  }
  return r;
}

// Markers that start a call in streamed text.
std::vector<std::string_view> openers(ToolFormat f) {
  switch (f) {
    case ToolFormat::kHermes: return {kHermesOpen};
    case ToolFormat::kMistral: return {kMistralOpen};
    case ToolFormat::kLlama3: return {kPythonTag};
    case ToolFormat::kNone: break;
  }
  return {};
}

}  // namespace

std::string forced_call(ToolFormat f, const nlohmann::ordered_json& tools, const std::string& only_name, ForcedCall* out) {
  const char* args_key = f == ToolFormat::kLlama3 ? "parameters" : "arguments";
  json alts = json::array(), defs = json::object();
  for (const auto& t : tools) {
    const auto fn = t.find("function");
    if (fn == t.end() || !fn->is_object() || !fn->contains("name") || !(*fn)["name"].is_string())
      return "every tool needs function.name to force a call";
    const std::string name = (*fn)["name"].get<std::string>();
    if (!only_name.empty() && name != only_name) continue;
    json params = json{{"type", "object"}};
    if (fn->contains("parameters") && ((*fn)["parameters"].is_object() || (*fn)["parameters"].is_boolean()))
      params = json::parse((*fn)["parameters"].dump());
    // Local $refs of the parameters resolve against the root: their $defs move up.
    for (const char* k : {"$defs", "definitions"})
      if (params.is_object() && params.contains(k) && params[k].is_object())
        for (const auto& [dk, dv] : params[k].items()) defs[k][dk] = dv;
    alts.push_back({{"type", "object"},
                    {"properties", {{"name", {{"const", name}}}, {args_key, params}}},
                    {"required", {"name", args_key}},
                    {"additionalProperties", false}});
  }
  if (alts.empty()) return only_name.empty() ? "no tools to call" : "tool_choice names '" + only_name + "', which is not in tools";
  // One call object; with several tools a union told apart by "name" (generated first).
  json call = alts.size() == 1 ? alts[0] : json{{"anyOf", alts}};
  out->prefix.clear();
  if (f == ToolFormat::kMistral) {
    out->prefix = std::string(kMistralOpen);
    out->schema = {{"type", "array"}, {"items", call}, {"minItems", 1}, {"maxItems", 1}};
  } else {
    if (f == ToolFormat::kHermes) out->prefix = std::string(kHermesOpen) + "\n";
    out->schema = std::move(call);
  }
  for (const auto& [k, v] : defs.items()) out->schema[k] = v;
  return "";
}

ToolFormat detect_tool_format(std::string_view src) {
  if (src.find(kMistralOpen) != std::string_view::npos) return ToolFormat::kMistral;
  if (src.find(kHermesOpen) != std::string_view::npos) return ToolFormat::kHermes;
  if (src.find(kPythonTag) != std::string_view::npos ||
      (src.find("ipython") != std::string_view::npos && src.find("parameters") != std::string_view::npos))
    return ToolFormat::kLlama3;
  return ToolFormat::kHermes;
}

const char* tool_format_name(ToolFormat f) {
  switch (f) {
    case ToolFormat::kNone: return "none";
    case ToolFormat::kHermes: return "hermes";
    case ToolFormat::kMistral: return "mistral";
    case ToolFormat::kLlama3: return "llama3";
  }
  return "?";
}

ToolParse parse_tool_calls(ToolFormat f, std::string_view text) {
  switch (f) {
    case ToolFormat::kHermes: return hermes(text);
    case ToolFormat::kMistral: return mistral(text);
    case ToolFormat::kLlama3: return llama3(text);
    case ToolFormat::kNone: break;
  }
  return {std::string(text), {}};
}

std::string ToolCallStream::push(std::string_view text) {
  held_.append(text);
  if (in_call_ || f_ == ToolFormat::kNone) {
    if (f_ == ToolFormat::kNone) {
      std::string out;
      out.swap(held_);
      sent_ += out;
      return out;
    }
    return "";
  }
  // Llama 3 replies that are a call start with '{' (or <|python_tag|>): until the first
  // non-space characters show whether the reply is a call, hold everything.
  if (f_ == ToolFormat::kLlama3 && sent_.empty()) {
    const std::string_view t = ltrim(held_);
    if (t.empty()) return "";
    if (t[0] == '{' || t.substr(0, kPythonTag.size()) == kPythonTag) {
      in_call_ = true;
      return "";
    }
    if (t.size() < kPythonTag.size() && kPythonTag.substr(0, t.size()) == t) return "";
  }
  size_t cut = held_.size();
  for (std::string_view m : openers(f_)) {
    const size_t p = held_.find(m);
    if (p != std::string::npos && p < cut) {
      cut = p;
      in_call_ = true;
    }
  }
  if (!in_call_) {  // keep back a suffix that may be the start of a marker
    for (std::string_view m : openers(f_))
      for (size_t k = std::min(m.size() - 1, held_.size()); k > 0; --k)
        if (held_.compare(held_.size() - k, k, m.substr(0, k)) == 0) {
          cut = std::min(cut, held_.size() - k);
          break;
        }
  }
  std::string out = held_.substr(0, cut);
  held_.erase(0, cut);
  sent_ += out;
  return out;
}

std::string ToolCallStream::flush_raw() {
  std::string out;
  out.swap(held_);
  sent_ += out;
  return out;
}

ToolParse ToolCallStream::finish() {
  const std::string all = sent_ + held_;
  ToolParse p = parse_tool_calls(f_, all);
  ToolParse r;
  r.calls = std::move(p.calls);
  // What is still to be sent: the content past what push() already returned.
  r.content = r.calls.empty() ? held_ : (p.content.size() > sent_.size() ? p.content.substr(sent_.size()) : "");
  held_.clear();
  return r;
}

}  // namespace modu::server
