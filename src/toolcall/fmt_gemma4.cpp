// Gemma 4: <|tool_call>call:NAME{key:value,...}<tool_call|>, values in Gemma's own notation —
// strings between <|"|> quotes, bare keys, true/false, numbers, {...} and [...] — converted to
// JSON. A turn that calls tools ends with <|tool_response>.
#include "scan.h"

namespace modu::toolcall {
namespace {

using namespace scan;
constexpr std::string_view kOpen = "<|tool_call>call:", kClose = "<tool_call|>", kQuote = "<|\"|>";
constexpr size_t npos = std::string_view::npos;
enum class G { kOk, kCut, kBad };

G value(std::string_view s, size_t* i, ojson* out, int depth) {
  if (*i >= s.size()) return G::kCut;
  if (depth > 32) return G::kBad;
  if (starts_with(s.substr(*i), kQuote)) {
    const size_t e = s.find(kQuote, *i + kQuote.size());
    if (e == npos) return G::kCut;
    *out = std::string(s.substr(*i + kQuote.size(), e - *i - kQuote.size()));
    *i = e + kQuote.size();
    return G::kOk;
  }
  if (kQuote.substr(0, s.size() - *i) == s.substr(*i)) return G::kCut;
  const char c = s[*i];
  if (c == '{' || c == '[') {
    const bool obj = c == '{';
    *out = obj ? ojson::object() : ojson::array();
    ++*i;
    bool first = true;
    while (true) {
      if (*i >= s.size()) return G::kCut;
      if (s[*i] == (obj ? '}' : ']')) {
        ++*i;
        return G::kOk;
      }
      if (!first) {
        if (s[*i] != ',') return G::kBad;
        ++*i;
      }
      first = false;
      ojson v;
      if (obj) {
        std::string key;
        if (starts_with(s.substr(*i), kQuote)) {
          ojson k;
          if (G g = value(s, i, &k, depth + 1); g != G::kOk) return g;
          key = k.get<std::string>();
        } else {
          const size_t colon = s.find(':', *i);
          if (colon == npos) return G::kCut;
          key = std::string(s.substr(*i, colon - *i));
          *i = colon;
        }
        if (*i >= s.size()) return G::kCut;
        if (s[*i] != ':') return G::kBad;
        ++*i;
        if (G g = value(s, i, &v, depth + 1); g != G::kOk) return g;
        (*out)[key] = v;
      } else {
        if (G g = value(s, i, &v, depth + 1); g != G::kOk) return g;
        out->push_back(v);
      }
    }
  }
  size_t j = *i;
  while (j < s.size() && s[j] != ',' && s[j] != '}' && s[j] != ']') ++j;
  if (j == s.size()) return G::kCut;
  const std::string_view w = trim(s.substr(*i, j - *i));
  const ojson n = parse_json(w);
  if (n.is_discarded() || n.is_object() || n.is_array() || n.is_string()) return G::kBad;
  *out = n;
  *i = j;
  return G::kOk;
}

class Gemma4 final : public Format {
 public:
  const char* name() const override { return "gemma4"; }
  std::vector<std::string> stop_markers() const override { return {"<|tool_response>"}; }
  Forcing forcing() const override { return {.prefix = "<|tool_call>call:{name}", .shape = Forcing::kArguments}; }

  PartialReply parse(std::string_view text, const ParseOptions&, bool partial) const override {
    PartialReply r;
    Content content(partial);
    const PartialReply as_content{{std::string(text), "", {}}, false};
    size_t pos = 0;
    while (true) {
      const size_t p = text.find(kOpen, pos);
      if (p == npos) {
        std::string_view seg = text.substr(pos);
        if (partial) seg.remove_suffix(marker_tail(seg, {kOpen}));
        content.text(seg);
        break;
      }
      content.text(text.substr(pos, p - pos));
      content.call_boundary();
      size_t i = p + kOpen.size();
      const size_t b = text.find('{', i);
      if (b == npos) {
        if (!partial) return as_content;
        break;
      }
      const std::string name(trim(text.substr(i, b - i)));
      if (name.empty() || name.find_first_of("<>\"\n,:") != std::string::npos) {
        if (!partial) return as_content;
        break;
      }
      if (b + 1 < text.size() && text[b + 1] == '"') {  // JSON arguments (a forced call)
        bool cut = false;
        const size_t e = named_args(text, b, partial, &r, name, "", &cut);
        if (cut) break;
        if (e == npos) {
          if (!partial) return as_content;
          break;
        }
        i = e;
      } else {
        // Arguments key by key, so that completed keys stream.
        std::string args = "{";
        i = b + 1;
        bool first = true, cut = false, bad = false;
        while (true) {
          if (i >= text.size()) { cut = true; break; }
          if (text[i] == '}') { ++i; break; }
          if (!first) {
            if (text[i] != ',') { bad = true; break; }
            ++i;
          }
          first = false;
          const size_t colon = text.find(':', i);
          if (colon == npos) { cut = true; break; }
          const std::string key(trim(text.substr(i, colon - i)));
          size_t j = colon + 1;
          ojson v;
          const G g = value(text, &j, &v, 0);
          if (g == G::kCut) { cut = true; break; }
          if (g == G::kBad || key.empty() || key.find_first_of("{}<>") != std::string::npos) { bad = true; break; }
          args += (args.size() > 1 ? ", " : "") + ojson(key).dump(-1, ' ', false, ojson::error_handler_t::replace) + ": " +
                  v.dump(-1, ' ', false, ojson::error_handler_t::replace);
          i = j;
        }
        if (bad) {
          if (!partial) return as_content;
          break;
        }
        if (cut) {
          if (!partial) return as_content;
          add_call(&r, name, args, false);
          break;
        }
        add_call(&r, name, args + "}", true);
      }
      if (starts_with(text.substr(i), kClose)) i += kClose.size();
      else if (partial && kClose.substr(0, text.size() - i) == text.substr(i)) break;
      else if (i < text.size() && !partial) return as_content;
      pos = i;
    }
    r.reply.content = content.take();
    return r;
  }
};

const bool kRegistered = register_format(
    {"gemma4", "<|tool_call>call:NAME{key:<|\"|>text<|\"|>,n:1}<tool_call|> (Gemma 4)",
     [](std::string_view src) { return src.find("<|tool_call>") != std::string_view::npos ? 20 : 0; },
     std::make_shared<Gemma4>()});

}  // namespace
}  // namespace modu::toolcall
