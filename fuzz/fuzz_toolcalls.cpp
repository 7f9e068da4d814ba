// fuzz_toolcalls: the tool-call parsers of every registered format on arbitrary bytes, whole and
// streamed at input-chosen cuts (never a crash; calls always carry a name and JSON-object
// arguments; stream deltas are well ordered), and well-formed replies built from the input and
// rendered by the real chat templates in ../shared: parsing the rendered turn must give back
// exactly the content and the calls (no content lost, nothing invented).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "modu/chat/chat_template.h"
#include "modu/chat/jinja.h"
#include "modu/toolcall/toolcall.h"
#include "../src/toolcall/model_turn.h"

using namespace modu::toolcall;
using ojson = nlohmann::ordered_json;
using json = nlohmann::json;

namespace {

const char* kTools = R"([
 {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
   "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]}}},
 {"type": "function", "function": {"name": "search", "parameters": {"type": "object",
   "properties": {"query": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}},
                  "exact": {"type": "boolean"}, "filters": {"type": "object"}}}}}])";

const ojson& tools() {
  static const ojson t = ojson::parse(kTools);
  return t;
}

// A template that renders assistant tool calls and round-trips a probe turn (calls and content).
struct Tmpl {
  std::string name, src;
  std::shared_ptr<const modu::jinja::Template> tmpl;  // parsed once
  std::string prompt;  // the conversation before the assistant turn, with the generation prompt
  Convention conv;
  bool content = false;  // content next to calls survives the template
  bool parallel = false; // it renders more than one call per turn
  // The pieces a string argument / the content may contain: those the template writes in a form
  // that can be read back (LFM2 writes '...' around strings without escaping quotes or
  // backslashes, so neither can be in its arguments).
  std::vector<std::string> arg_pieces, content_pieces;
};

// Pieces that generated strings are made of: quotes, escapes, brackets, Korean, emoji, words
// that other syntaxes treat specially. Markup ('<', '[', '|') is left out: plain text that
// contains a call marker is ambiguous by nature.
const std::vector<std::string>& all_pieces() {
  static const std::vector<std::string> p = {"a", "Z", "7", " ", "\n", "\"", "'", "\\", ",", ":", "=", "(", ")", "서울", "날씨",
                                             "é", "😀", "\t", "}", "{", "/", "_", "-", "?", ".", "true", "None", "\\n", "$", "#", "&", "%"};
  return p;
}

// Reads bytes from the fuzz input.
struct Bytes {
  const uint8_t* p;
  size_t n;
  uint8_t next() {
    if (!n) return 0;
    --n;
    return *p++;
  }
  // Up to `max` pieces, trimmed (templates lay out whitespace around values and content).
  std::string text(size_t max, const std::vector<std::string>& pieces) {
    std::string s;
    const size_t len = next() % (max + 1);
    for (size_t i = 0; i < len && n; ++i) s += pieces[next() % pieces.size()];
    const size_t b = s.find_first_not_of(" \n\t");
    if (b == std::string::npos) return "x";
    return s.substr(b, s.find_last_not_of(" \n\t") - b + 1);
  }
};

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The model's part of a rendered turn (after the prompt), and whether it starts inside reasoning.
bool render_turn(const Tmpl& t, const ojson& assistant, std::string* out, bool* reasoning_open) {
  modu::chat::ChatTemplateInputs in;
  in.messages = ojson::array({{{"role", "user"}, {"content", "hi"}}, assistant});
  in.tools = tools();
  in.add_generation_prompt = false;
  in.bos_token = "<s>";
  in.eos_token = "</s>";
  auto full = modu::chat::render_chat_template(*t.tmpl, in);
  if (!full.ok()) return false;
  const modu::toolcall::testing::ModelTurn m = modu::toolcall::testing::model_turn(t.prompt, *full, t.conv.reasoning);
  *out = m.output;
  *reasoning_open = m.reasoning_open;
  return true;
}

ojson assistant_turn(const std::string& content, const std::vector<std::pair<std::string, ojson>>& calls) {
  ojson a = {{"role", "assistant"}, {"content", content}};
  if (!calls.empty()) {
    a["tool_calls"] = ojson::array();
    int i = 0;
    for (const auto& [name, args] : calls)
      a["tool_calls"].push_back({{"id", "call" + std::to_string(10000 + i++)}, {"type", "function"},
                                 {"function", {{"name", name}, {"arguments", args}}}});
  }
  return a;
}

Reply parse_turn(const Tmpl& t, const std::string& out, bool reasoning_open) {
  ParseOptions o;
  o.tools = &tools();
  o.reasoning_open = reasoning_open;
  return parse_reply(t.conv, out, o);
}

bool same_calls(const Reply& r, const std::vector<std::pair<std::string, ojson>>& calls) {
  if (r.calls.size() != calls.size()) return false;
  for (size_t i = 0; i < calls.size(); ++i)
    if (r.calls[i].name != calls[i].first ||
        json::parse(r.calls[i].arguments, nullptr, false) != json::parse(calls[i].second.dump()))
      return false;
  return true;
}

std::vector<Tmpl>& templates() {
  static std::vector<Tmpl> ts = [] {
    std::vector<Tmpl> v;
    const std::filesystem::path dir = std::filesystem::path(MODU_SHARED_DIR) / "testdata" / "templates";
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      if (e.path().extension() != ".jinja") continue;
      Tmpl t;
      t.name = e.path().stem().string();
      t.src = slurp(e.path());
      const std::string append = "{%- set _ = tool_response_queue.ids.append(formatted_id) -%}";  // (see roundtrip_test.cpp)
      if (const size_t a = t.src.find(append); a != std::string::npos) t.src.erase(a, append.size());
      auto parsed = modu::jinja::Template::parse(t.src);
      if (!parsed.ok()) continue;
      t.tmpl = std::make_shared<const modu::jinja::Template>(std::move(parsed).value());
      modu::chat::ChatTemplateInputs in;
      in.messages = ojson::array({{{"role", "user"}, {"content", "hi"}}});
      in.tools = tools();
      in.bos_token = "<s>";
      in.eos_token = "</s>";
      auto prompt = modu::chat::render_chat_template(*t.tmpl, in);
      if (!prompt.ok()) continue;
      t.prompt = std::move(prompt).value();
      t.conv = detect_convention(t.src);
      if (std::string(t.conv.format->name()) == "content") continue;
      t.conv.end_markers.push_back("</s>");
      const std::vector<std::pair<std::string, ojson>> one = {{"get_weather", {{"city", "Seoul"}}}};
      const std::vector<std::pair<std::string, ojson>> two = {{"get_weather", {{"city", "Seoul"}}}, {"search", {{"query", "q"}}}};
      std::string out;
      bool open = false;
      if (!render_turn(t, assistant_turn("", one), &out, &open) || !same_calls(parse_turn(t, out, open), one)) continue;
      if (render_turn(t, assistant_turn("probe text", one), &out, &open)) {
        const Reply r = parse_turn(t, out, open);
        t.content = same_calls(r, one) && r.content == "probe text";
      }
      if (render_turn(t, assistant_turn("", two), &out, &open)) t.parallel = same_calls(parse_turn(t, out, open), two);
      std::string left_out;
      for (const std::string& piece : all_pieces()) {
        const std::string value = "a" + piece + "b";
        const std::vector<std::pair<std::string, ojson>> c = {{"get_weather", {{"city", value}}}};
        if (render_turn(t, assistant_turn("", c), &out, &open) && same_calls(parse_turn(t, out, open), c)) t.arg_pieces.push_back(piece);
        else left_out += " arg:" + ojson(piece).dump();
        if (t.content && render_turn(t, assistant_turn(value, one), &out, &open) && parse_turn(t, out, open).content == value)
          t.content_pieces.push_back(piece);
        else if (t.content) left_out += " content:" + ojson(piece).dump();
      }
      if (t.content_pieces.empty()) t.content_pieces = {"a"};
      if (t.arg_pieces.empty()) t.arg_pieces = {"a"};
      if (!left_out.empty() && std::getenv("MODU_FUZZ_VERBOSE"))
        std::fprintf(stderr, "fuzz_toolcalls: %s cannot carry%s\n", t.name.c_str(), left_out.c_str());
      v.push_back(std::move(t));
    }
    if (v.empty()) std::abort();  // the shared templates must be there
    return v;
  }();
  return ts;
}

// A broken invariant: says which (with the template, the rendered text and the parse) and aborts.
[[noreturn]] void fail(const char* what, const Tmpl& t, const std::string& out, const Reply& r) {
  ojson calls = ojson::array();
  for (const auto& c : r.calls) calls.push_back({{"name", c.name}, {"arguments", c.arguments}});
  std::fprintf(stderr, "fuzz_toolcalls: %s\n  template: %s\n  output: %s\n  content: %s\n  calls: %s\n", what,
               t.name.c_str(), ojson(out).dump().c_str(), ojson(r.content).dump().c_str(), calls.dump().c_str());
  std::abort();
}

// Arbitrary bytes through one format: whole and streamed.
void arbitrary(Bytes& in) {
  const auto& fs = formats();
  const FormatInfo& f = fs[in.next() % fs.size()];
  const uint8_t flags = in.next();
  Convention c;
  c.format = f.format.get();
  if (flags & 1) c.reasoning = {"<think>", "</think>"};
  if (flags & 2) c.end_markers = {"<|im_end|>"};
  ParseOptions o;
  o.tools = (flags & 4) ? &tools() : nullptr;
  o.reasoning_open = flags & 8;
  o.calls = !(flags & 16);
  const uint8_t step = in.next() % 9 + 1;
  const std::string text(reinterpret_cast<const char*>(in.p), in.n);
  const Reply whole = parse_reply(c, text, o);
  for (const auto& call : whole.calls) {
    if (call.name.empty()) std::abort();
    const json a = json::parse(call.arguments, nullptr, false);
    if (!a.is_object()) std::abort();
  }
  ReplyStream s(c, o);
  size_t n_calls = 0;
  auto check = [&](const Delta& d) {
    for (const auto& cd : d.calls) {
      if (cd.index < 0 || (size_t)cd.index > n_calls) std::abort();
      if ((size_t)cd.index == n_calls) {
        if (cd.name.empty()) std::abort();
        ++n_calls;
      }
    }
  };
  for (size_t i = 0; i < text.size(); i += step) check(s.push(std::string_view(text).substr(i, step)));
  check(s.finish());
}

// A well-formed turn rendered by a real template must parse back exactly.
void well_formed(Bytes& in) {
  auto& ts = templates();
  const Tmpl& t = ts[in.next() % ts.size()];
  const uint8_t shape = in.next();
  std::string content = t.content || !(shape & 3) ? in.text(24, t.content_pieces) : "";
  std::vector<std::pair<std::string, ojson>> calls;
  const size_t n = (shape & 3) == 0 ? 0 : (t.parallel && (shape & 4)) ? 2 : 1;
  for (size_t i = 0; i < n; ++i) {
    if (in.next() & 1) {
      ojson a = {{"city", in.text(16, t.arg_pieces)}};
      if (in.next() & 1) a["days"] = (int)in.next() - 100;
      calls.push_back({"get_weather", a});
    } else {
      ojson a = ojson::object();
      const uint8_t k = in.next();
      if (k & 1) a["query"] = in.text(16, t.arg_pieces);
      if (k & 2) a["tags"] = ojson::array({in.text(6, t.arg_pieces), in.text(6, t.arg_pieces)});
      if (k & 4) a["exact"] = (bool)(k & 8);
      if (k & 16) a["filters"] = {{"year", (int)in.next()}, {"lang", in.text(5, t.arg_pieces)}};
      calls.push_back({"search", a});
    }
  }
  if (calls.empty() && content.empty()) content = "x";
  std::string out;
  bool open = false;
  if (!render_turn(t, assistant_turn(content, calls), &out, &open)) return;  // the template refused (e.g. raise_exception)
  const Reply r = parse_turn(t, out, open);
  if (!same_calls(r, calls)) fail("the calls did not round-trip", t, out, r);
  if (out.find(content) != std::string::npos && r.content != content) fail("the content did not round-trip", t, out, r);
  // Streamed in input-chosen pieces, the deltas add up to the same reply.
  ParseOptions o;
  o.tools = &tools();
  o.reasoning_open = open;
  ReplyStream s(t.conv, o);
  Reply got;
  auto apply = [&](const Delta& d) {
    got.content += d.content;
    for (const auto& cd : d.calls) {
      if ((size_t)cd.index == got.calls.size()) got.calls.push_back({cd.id, cd.name, ""});
      if ((size_t)cd.index >= got.calls.size()) std::abort();
      got.calls[cd.index].arguments += cd.arguments;
    }
  };
  for (size_t i = 0; i < out.size();) {
    const size_t piece = 1 + in.next() % 8;
    apply(s.push(std::string_view(out).substr(i, piece)));
    i += piece;
  }
  apply(s.finish());
  if (got.content != r.content || !same_calls(got, calls)) fail("the stream differs from the whole parse", t, out, got);
}

}  // namespace

// The templates are read and probed once, before the first input (outside the per-input timeout).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)templates();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes in{data, size};
  if (in.next() & 1) well_formed(in);
  else arbitrary(in);
  return 0;
}
