// JSON call objects between markers (see json_tags.h): the parser shared by Hermes, Granite,
// Command R7B, Apriel, Nemotron, Mistral's array form, Llama 3 and their relatives.
#include "json_tags.h"

#include "scan.h"

namespace modu::toolcall {

using namespace scan;

size_t JsonTagFormat::body(std::string_view text, size_t pos, bool partial, PartialReply* r, bool* cut) const {
  auto ws = [&](size_t i) { return skip_ws(text, i); };
  auto one = [&](size_t i) -> size_t {
    const CallObject co = call_object(text.substr(i), s_.name_keys, s_.args_keys, s_.id_key);
    if (!co.ok) return std::string_view::npos;
    if (!co.complete) {
      if (!partial) return std::string_view::npos;
      add_call(r, co.name_done ? co.name : "", co.args, false, co.id);
      *cut = true;
      return text.size();
    }
    add_call(r, co.name, co.args, true, co.id);
    return i + co.end;
  };
  if (pos >= text.size()) return std::string_view::npos;
  if (text[pos] == '{') return one(pos);
  if (text[pos] != '[') return std::string_view::npos;
  size_t i = ws(pos + 1);
  size_t n = 0;
  while (true) {
    if (i >= text.size()) {
      if (!partial) return std::string_view::npos;
      *cut = true;
      return text.size();
    }
    if (text[i] == ']') return n ? i + 1 : std::string_view::npos;
    if (n) {
      if (text[i] != ',') return std::string_view::npos;
      i = ws(i + 1);
      if (i >= text.size()) {
        if (!partial) return std::string_view::npos;
        *cut = true;
        return text.size();
      }
    }
    i = one(i);
    if (i == std::string_view::npos || *cut) return i;
    ++n;
    i = ws(i);
  }
}

PartialReply JsonTagFormat::parse(std::string_view text, const ParseOptions&, bool partial) const {
  PartialReply r;
  Content content(partial);
  std::vector<std::string_view> opens(s_.open.begin(), s_.open.end());
  const PartialReply as_content{{std::string(text), "", {}}, false};
  if (s_.whole_reply) {
    // The reply is a call when it starts with '{' or '[' (after an optional marker).
    std::string_view lead = ltrim(text);
    size_t which = 0;
    const size_t m = find_any(lead, 0, opens, &which);
    if (m == 0) lead = ltrim(lead.substr(opens[which].size()));
    else if (partial && marker_tail(lead, opens) == lead.size()) return r;  // may be the marker
    if (lead.empty()) return partial ? r : as_content;
    if (lead[0] != '{' && lead[0] != '[') {
      if (m == 0) return partial ? r : as_content;
      r.reply.content = std::string(partial ? rtrim(text) : text);
      return r;
    }
    size_t i = (size_t)(lead.data() - text.data());
    while (i < text.size()) {  // one or more calls, separated by ';' or whitespace
      bool cut = false;
      const size_t e = body(text, i, partial, &r, &cut);
      if (cut) return r;
      if (e == std::string_view::npos) return partial ? PartialReply{} : as_content;
      i = e;
      while (i < text.size() && (is_space(text[i]) || text[i] == ';')) ++i;
    }
    return r;
  }
  size_t pos = 0;
  while (true) {
    size_t which = 0;
    const size_t p = find_any(text, pos, opens, &which);
    if (p == std::string_view::npos) {
      std::string_view seg = text.substr(pos);
      if (partial) seg.remove_suffix(marker_tail(seg, opens));
      content.text(seg);
      break;
    }
    content.text(text.substr(pos, p - pos));
    content.call_boundary();
    size_t q = p + opens[which].size();
    while (q < text.size() && is_space(text[q])) ++q;
    if (q >= text.size()) {
      if (!partial) return as_content;
      break;
    }
    bool cut = false;
    const size_t e = body(text, q, partial, &r, &cut);
    if (cut) break;
    if (e == std::string_view::npos) {
      if (!partial) return as_content;
      r.reply.calls.clear();  // hold everything from here; finish() keeps it as content
      break;
    }
    q = e;
    while (q < text.size() && is_space(text[q])) ++q;
    if (!s_.close.empty()) {
      const std::string_view rest = text.substr(q);
      if (starts_with(rest, s_.close)) {
        pos = q + s_.close.size();
        continue;
      }
      if (rest.empty() || (partial && std::string_view(s_.close).substr(0, rest.size()) == rest)) {
        pos = text.size();  // generation stopped after the JSON, or the closing marker is arriving
        break;
      }
      if (find_any(rest, 0, opens) != 0) {
        if (!partial) return as_content;
        break;
      }
    }
    pos = q;
  }
  r.reply.content = content.take();
  return r;
}

}  // namespace modu::toolcall
