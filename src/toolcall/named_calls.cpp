// Marker + name + JSON arguments calls (see named_calls.h).
#include "named_calls.h"

#include "scan.h"

namespace modu::toolcall {

using namespace scan;

namespace {
constexpr size_t npos = std::string_view::npos;
}

Format::Forcing NamedCallFormat::forcing() const {
  std::string p = s_.section_open + s_.call_open;
  if (!s_.id_end.empty()) p += "call_0" + s_.id_end;
  p += s_.name_prefix + (s_.kimi_ids ? "functions.{name}:0" : "{name}") + s_.name_end;
  if (!s_.args_open.empty()) p += s_.args_open + "\n";
  return {.prefix = p, .shape = Forcing::kArguments};
}

PartialReply NamedCallFormat::parse(std::string_view text, const ParseOptions&, bool partial) const {
  PartialReply r;
  const PartialReply as_content{{std::string(text), "", {}}, false};
  const bool section = !s_.section_open.empty();
  const std::string& start_marker = section ? s_.section_open : s_.call_open;
  auto ws = [&](size_t i) { return skip_ws(text, i); };
  // In a partial parse, whether a marker may be arriving at i.
  auto arriving = [&](size_t i, std::initializer_list<std::string_view> ms) { return partial && scan::arriving(text, i, ms); };
  // One call at q: its end, npos when malformed, text.size() with *cut when the text ends in it.
  auto call = [&](size_t q, bool* cut) -> size_t {
    if (!starts_with(text.substr(q), s_.call_open)) return arriving(q, {s_.call_open}) ? (*cut = true, text.size()) : npos;
    q += s_.call_open.size();
    std::string id;
    if (!s_.id_end.empty()) {
      const size_t e = until(text, q, s_.id_end, partial, cut);
      if (e == npos) return *cut ? text.size() : npos;
      id = std::string(trim(text.substr(q, e - q)));
      q = e + s_.id_end.size();
    }
    if (!s_.name_prefix.empty()) {
      if (starts_with(text.substr(q), s_.name_prefix)) q += s_.name_prefix.size();
      else if (arriving(q, {s_.name_prefix})) return *cut = true, text.size();
    }
    const size_t e = until(text, q, s_.name_end, partial, cut);
    if (e == npos) return *cut ? text.size() : npos;
    std::string name(trim(text.substr(q, e - q)));
    if (s_.kimi_ids) {  // functions.NAME:IDX
      id = name;
      if (starts_with(name, "functions.")) name.erase(0, 10);
      if (const size_t c = name.rfind(':'); c != std::string::npos) name.resize(c);
    }
    if (name.empty() || name.find_first_of("<>{}\"\n") != std::string::npos) return npos;
    q = ws(e + s_.name_end.size());
    if (!s_.args_open.empty()) {
      if (starts_with(text.substr(q), s_.args_open)) q = ws(q + s_.args_open.size());
      else if (arriving(q, {s_.args_open})) {
        r.reply.calls.push_back({id, name, ""});
        r.open_call = true;
        return *cut = true, text.size();
      }
    }
    const size_t a = named_args(text, q, partial, &r, name, id, cut);
    if (a == npos || *cut) return a;
    q = ws(a);
    if (!s_.args_close.empty()) {
      if (starts_with(text.substr(q), s_.args_close)) q = ws(q + s_.args_close.size());
      else if (arriving(q, {s_.args_close})) return *cut = true, text.size();
    }
    if (s_.call_close.empty()) return q;
    if (starts_with(text.substr(q), s_.call_close)) return q + s_.call_close.size();
    if (arriving(q, {s_.call_close})) return *cut = true, text.size();
    if (q >= text.size()) return q;  // generation stopped after the arguments
    return npos;
  };
  if (!parse_call_regions(text, partial, start_marker, s_.section_open, s_.section_close, {s_.section_close}, &r, call))
    return as_content;
  return r;
}

}  // namespace modu::toolcall
