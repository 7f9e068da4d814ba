// XML-style parameter calls (see xml_params.h): one parser for Qwen3-Coder, Seed-OSS, GLM,
// MiniMax-M2, DeepSeek V3.2 DSML and MiniCPM, streaming string parameters as they are written.
#include "xml_params.h"

#include "scan.h"

namespace modu::toolcall {

using namespace scan;

namespace {
constexpr size_t npos = std::string_view::npos;
}

PartialReply XmlFormat::parse(std::string_view text, const ParseOptions& opts, bool partial) const {
  PartialReply r;
  const PartialReply as_content{{std::string(text), "", {}}, false};
  const bool region = !s_.region_open.empty();
  const std::string& start_marker = region ? s_.region_open : s_.fn_open;
  auto ws = [&](size_t i) { return skip_ws(text, i); };
  // In a partial parse, whether a marker may be arriving at i.
  auto arriving = [&](size_t i, std::initializer_list<std::string_view> ms) { return partial && scan::arriving(text, i, ms); };
  // Parses one call at q (after the region marker); returns the end, npos if malformed, or
  // text.size() with *cut when the text ends inside it.
  auto call = [&](size_t q, bool* cut) -> size_t {
    std::string name;
    if (!s_.fn_open.empty()) {
      if (!starts_with(text.substr(q), s_.fn_open)) {
        if (arriving(q, {s_.fn_open})) return *cut = true, text.size();
        if (region && q < text.size() && text[q] == '{') {  // a JSON call object inside the region
          const CallObject co = call_object(text.substr(q), {"name"}, {"arguments", "parameters"});
          if (!co.ok || (!co.complete && !partial)) return npos;
          add_call(&r, co.name_done ? co.name : "", co.args, co.complete);
          if (!co.complete) return *cut = true, text.size();
          return q + co.end;
        }
        return npos;
      }
      q += s_.fn_open.size();
      const size_t e = until(text, q, s_.fn_name_end, partial, cut);
      if (e == npos) return *cut ? text.size() : npos;
      name = std::string(trim(text.substr(q, e - q)));
      q = e + s_.fn_name_end.size();
    } else {  // GLM: the name runs to a newline, the first parameter or the region's end
      size_t e = npos;
      for (std::string_view m : {std::string_view("\n"), std::string_view(s_.param_open), std::string_view(s_.region_close)})
        e = std::min(e, text.find(m, q));
      if (e == npos) {
        if (partial) return *cut = true, text.size();
        e = text.size();
      }
      name = std::string(trim(text.substr(q, e - q)));
      q = e;
    }
    if (name.empty() || name.find_first_of("<>\"") != std::string::npos) return npos;
    const std::string_view fn_end = s_.fn_close.empty() ? std::string_view(s_.region_close) : std::string_view(s_.fn_close);
    size_t i = ws(q);
    if (i < text.size() && text[i] == '{') {  // arguments as one JSON object (forced calls)
      const size_t e = named_args(text, i, partial, &r, name, "", cut);
      if (e == npos || *cut) return e;
      i = ws(e);
      if (starts_with(text.substr(i), fn_end)) return s_.fn_close.empty() ? i : i + fn_end.size();
      if (arriving(i, {fn_end})) return *cut = true, text.size();
      if (i >= text.size()) return i;  // generation stopped after the JSON
      return npos;
    }
    ArgsBuilder ab(opts, name);
    while (true) {
      i = ws(i);
      const std::string_view rest = text.substr(i);
      if (starts_with(rest, fn_end)) {
        add_call(&r, name, ab.finish(), true);
        return s_.fn_close.empty() ? i : i + fn_end.size();
      }
      if (!starts_with(rest, s_.param_open)) {
        if (rest.empty() || arriving(i, {fn_end, s_.param_open})) {
          if (!partial) return npos;
          add_call(&r, name, ab.partial(), false);
          return *cut = true, text.size();
        }
        return npos;
      }
      size_t k = i + s_.param_open.size();
      const size_t ke = until(text, k, s_.key_end, partial, cut);
      if (ke == npos) {
        if (!*cut) return npos;
        add_call(&r, name, ab.partial(), false);
        return text.size();
      }
      const std::string key(text.substr(k, ke - k));
      k = ke + s_.key_end.size();
      int is_string = -1;
      if (s_.string_attr) {  // ' string="true">'
        const size_t gt = until(text, k, ">", partial, cut);
        if (gt == npos) {
          if (!*cut) return npos;
          add_call(&r, name, ab.partial(), false);
          return text.size();
        }
        const std::string_view attrs = text.substr(k, gt - k);
        if (attrs.find("string=\"true\"") != npos) is_string = 1;
        else if (attrs.find("string=\"false\"") != npos) is_string = 0;
        k = gt + 1;
      }
      if (!s_.value_open.empty()) {
        k = ws(k);
        if (!starts_with(text.substr(k), s_.value_open)) {
          if (k >= text.size() || arriving(k, {s_.value_open})) {
            if (!partial) return npos;
            add_call(&r, name, ab.partial(), false);
            return *cut = true, text.size();
          }
          return npos;
        }
        k += s_.value_open.size();
      }
      const size_t ve = text.find(s_.param_close, k);
      std::string_view value = text.substr(k, ve == npos ? npos : ve - k);
      if (s_.strip_newlines && !value.empty() && value.front() == '\n') value.remove_prefix(1);
      if (ve == npos) {
        if (!partial) return npos;
        value.remove_suffix(marker_tail(value, {s_.param_close}));
        if (s_.strip_newlines && !value.empty() && value.back() == '\n') value.remove_suffix(1);
        if (s_.cdata) {
          if (starts_with(value, "<![CDATA[")) {
            value.remove_prefix(9);
            // The section may already be closed while </param> has not fully arrived.
            if (value.size() >= 3 && value.substr(value.size() - 3) == "]]>") value.remove_suffix(3);
            else value.remove_suffix(marker_tail(value, {"]]>"}));
          } else if (std::string_view("<![CDATA[").substr(0, value.size()) == value) {
            value = {};
          }
        }
        ab.add_partial(key, value, is_string);
        add_call(&r, name, ab.partial(), false);
        return *cut = true, text.size();
      }
      if (s_.strip_newlines && !value.empty() && value.back() == '\n') value.remove_suffix(1);
      if (s_.cdata && starts_with(value, "<![CDATA[") && value.size() >= 12 && value.substr(value.size() - 3) == "]]>")
        value = value.substr(9, value.size() - 12);
      ab.add(key, value, is_string);
      i = ve + s_.param_close.size();
    }
  };
  if (!parse_call_regions(text, partial, start_marker, s_.region_open, s_.region_close, {s_.region_close, s_.fn_open}, &r,
                          call))
    return as_content;
  return r;
}

}  // namespace modu::toolcall
