// Hermes / Qwen 2.5 / Qwen 3 / EXAONE 4 / Granite 4 / Bielik / MiMo: <tool_call>{"name": ..., "arguments": {...}}</tool_call>,
// one call per tag, several tags for parallel calls.
#include "json_tags.h"

namespace modu::toolcall {
namespace {
int detect(std::string_view src) { return src.find("<tool_call>") != std::string_view::npos ? 10 : 0; }
const bool kRegistered = register_format(
    {"hermes", "<tool_call>{\"name\": ..., \"arguments\": {...}}</tool_call> (Hermes, Qwen 2.5/3, EXAONE 4, Granite 4)", detect,
     std::make_shared<JsonTagFormat>(JsonTagSpec{.name = "hermes", .open = {"<tool_call>"}, .close = "</tool_call>",
                                                 .forcing = {.prefix = "<tool_call>\n"}})});
}  // namespace
}  // namespace modu::toolcall
