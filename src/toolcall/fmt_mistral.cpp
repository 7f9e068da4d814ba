// Mistral: [TOOL_CALLS][{"name": ..., "arguments": {...}}, ...] (v1-v3 tokenizers, Nemo), and
// [TOOL_CALLS]name[ARGS]{...} or [TOOL_CALLS]name[CALL_ID]id[ARGS]{...}, repeated for parallel
// calls (v11+ tokenizers: Small 3.2, Devstral, Ministral 3). Reasoning is [THINK]...[/THINK].
#include "json_tags.h"
#include "scan.h"

namespace modu::toolcall {
namespace {

using namespace scan;
constexpr std::string_view kOpen = "[TOOL_CALLS]", kArgs = "[ARGS]", kId = "[CALL_ID]";

class Mistral final : public JsonTagFormat {
 public:
  Mistral() : JsonTagFormat({.name = "mistral", .open = {std::string(kOpen)}}) {}
  Forcing forcing() const override { return {.prefix = "[TOOL_CALLS]{name}[ARGS]", .shape = Forcing::kArguments}; }

  PartialReply parse(std::string_view text, const ParseOptions&, bool partial) const override {
    PartialReply r;
    const PartialReply as_content{{std::string(text), "", {}}, false};
    size_t p = text.find(kOpen);
    if (p == std::string_view::npos) {
      r.reply.content = std::string(partial ? rtrim(text.substr(0, text.size() - marker_tail(text, {kOpen}))) : text);
      return r;
    }
    r.reply.content = std::string(rtrim(text.substr(0, p)));
    size_t pos = p + kOpen.size();
    while (true) {
      while (pos < text.size() && is_space(text[pos])) ++pos;
      if (pos >= text.size()) return partial || !r.reply.calls.empty() ? r : as_content;
      bool cut = false;
      size_t e;
      if (text[pos] == '[') {
        e = body(text, pos, partial, &r, &cut);
      } else {
        const size_t a = until(text, pos, kArgs, partial, &cut);
        if (a == std::string_view::npos) {
          if (cut) return r;
          return as_content;
        }
        std::string name(trim(text.substr(pos, a - pos))), id;
        if (const size_t i = name.find(kId); i != std::string::npos) {
          id = std::string(trim(std::string_view(name).substr(i + kId.size())));
          name = std::string(trim(std::string_view(name).substr(0, i)));
        }
        if (name.empty() || name.find_first_of("[]{}\"\n") != std::string::npos) return partial ? r : as_content;
        e = named_args(text, a + kArgs.size(), partial, &r, name, id, &cut);
      }
      if (cut) return r;
      if (e == std::string_view::npos) return partial ? r : as_content;
      pos = e;
      while (pos < text.size() && is_space(text[pos])) ++pos;
      const std::string_view rest = text.substr(pos);
      if (rest.empty()) return r;
      if (starts_with(rest, kOpen)) {
        pos += kOpen.size();
        continue;
      }
      if (partial && kOpen.substr(0, rest.size()) == rest) return r;
      return partial ? r : as_content;
    }
  }
};

const bool kRegistered = register_format(
    {"mistral", "[TOOL_CALLS][{...}] or [TOOL_CALLS]name[CALL_ID]id[ARGS]{...} (Mistral, Nemo, Small 3.2, Devstral)",
     [](std::string_view src) { return src.find(kOpen) != std::string_view::npos ? 15 : 0; }, std::make_shared<Mistral>()});

}  // namespace
}  // namespace modu::toolcall
