// Command R7B: <|START_ACTION|>[{"tool_call_id": "0", "tool_name": ..., "parameters": {...}}, ...]<|END_ACTION|>;
// plain replies are wrapped in <|START_RESPONSE|>...<|END_RESPONSE|>, thinking in
// <|START_THINKING|>...<|END_THINKING|> (split off as reasoning).
#include "json_tags.h"
#include "scan.h"

namespace modu::toolcall {
namespace {

class CommandR7b final : public JsonTagFormat {
 public:
  CommandR7b()
      : JsonTagFormat({.name = "command-r7b", .open = {"<|START_ACTION|>"}, .close = "<|END_ACTION|>",
                       .name_keys = {"tool_name"}, .args_keys = {"parameters"}, .id_key = "tool_call_id",
                       .forcing = {.prefix = "<|START_ACTION|>", .shape = Forcing::kCallArray, .name_key = "tool_name",
                                   .args_key = "parameters"}}) {}
  PartialReply parse(std::string_view text, const ParseOptions& opts, bool partial) const override {
    PartialReply r = JsonTagFormat::parse(text, opts, partial);
    // The response wrapper is syntax, not content.
    std::string& c = r.reply.content;
    for (std::string_view m : {std::string_view("<|START_RESPONSE|>"), std::string_view("<|END_RESPONSE|>")})
      for (size_t p; (p = c.find(m)) != std::string::npos;) c.erase(p, m.size());
    if (partial) c.resize(c.size() - scan::marker_tail(c, {"<|START_RESPONSE|>", "<|END_RESPONSE|>"}));
    c = std::string(partial ? scan::ltrim(c) : scan::trim(c));
    return r;
  }
};

const bool kRegistered = register_format(
    {"command-r7b", "<|START_ACTION|>[{\"tool_call_id\", \"tool_name\", \"parameters\"}, ...]<|END_ACTION|> (Command R7B)",
     [](std::string_view src) { return src.find("<|START_ACTION|>") != std::string_view::npos ? 20 : 0; },
     std::make_shared<CommandR7b>()});

}  // namespace
}  // namespace modu::toolcall
