// Llama 3.1 / 3.2 / 3.3: a JSON call as the whole reply, {"name": ..., "parameters": {...}}
// (several separated by ';'), optionally after <|python_tag|>; and built-in tools as
// <|python_tag|>brave_search.call(query="...") (Python keyword arguments).
#include "json_tags.h"
#include "pythonic.h"
#include "scan.h"

namespace modu::toolcall {
namespace {

using namespace scan;
constexpr std::string_view kTag = "<|python_tag|>";

class Llama3 final : public JsonTagFormat {
 public:
  Llama3()
      : JsonTagFormat({.name = "llama3", .open = {std::string(kTag)}, .whole_reply = true,
                       .forcing = {.prefix = "", .shape = Forcing::kCallObject, .args_key = "parameters"}}) {}

  PartialReply parse(std::string_view text, const ParseOptions& opts, bool partial) const override {
    const std::string_view lead = ltrim(text);
    if (starts_with(lead, kTag)) {
      const std::string_view rest = ltrim(lead.substr(kTag.size()));
      if (!rest.empty() && rest[0] != '{' && rest[0] != '[') {
        // A built-in tool: name.call(key=value, ...).
        PartialReply r;
        bool cut = false;
        const size_t e = python_call(text, (size_t)(rest.data() - text.data()), partial, &r, &cut);
        if (cut) return r;
        if (e == std::string_view::npos || !trim(text.substr(e)).empty())
          return partial ? PartialReply{} : PartialReply{{std::string(text), "", {}}, false};
        return r;
      }
    }
    return JsonTagFormat::parse(text, opts, partial);
  }
};

int detect(std::string_view src) {
  if (src.find(kTag) != std::string_view::npos) return 8;
  return src.find("ipython") != std::string_view::npos && src.find("parameters") != std::string_view::npos ? 8 : 0;
}

const bool kRegistered = register_format(
    {"llama3", "{\"name\": ..., \"parameters\": {...}} as the reply, <|python_tag|> built-ins (Llama 3.x)", detect,
     std::make_shared<Llama3>()});

}  // namespace
}  // namespace modu::toolcall
