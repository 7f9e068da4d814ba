// Qwen3-Coder and Qwen3.5: <tool_call>\n<function=NAME>\n<parameter=KEY>\nvalue\n</parameter>\n</function>\n</tool_call>;
// Seed-OSS writes the same elements inside <seed:tool_call>, without the newlines around values.
#include "xml_params.h"

namespace modu::toolcall {
namespace {

bool has(std::string_view src, std::string_view m) { return src.find(m) != std::string_view::npos; }

const bool kQwen = register_format(
    {"qwen3-coder", "<tool_call><function=NAME><parameter=KEY>value</parameter></function></tool_call> (Qwen3-Coder, Qwen3.5)",
     [](std::string_view src) { return has(src, "<tool_call>") && has(src, "<function=") ? 20 : 0; },
     std::make_shared<XmlFormat>(XmlSpec{.name = "qwen3-coder", .region_open = "<tool_call>", .region_close = "</tool_call>",
                                         .fn_open = "<function=", .fn_name_end = ">", .fn_close = "</function>",
                                         .param_open = "<parameter=", .key_end = ">", .param_close = "</parameter>",
                                         .strip_newlines = true})});
const bool kSeed = register_format(
    {"seed-oss", "<seed:tool_call><function=NAME><parameter=KEY>value</parameter></function></seed:tool_call> (Seed-OSS)",
     [](std::string_view src) { return has(src, "<seed:tool_call>") ? 25 : 0; },
     std::make_shared<XmlFormat>(XmlSpec{.name = "seed-oss", .region_open = "<seed:tool_call>",
                                         .region_close = "</seed:tool_call>", .fn_open = "<function=", .fn_name_end = ">",
                                         .fn_close = "</function>", .param_open = "<parameter=", .key_end = ">",
                                         .param_close = "</parameter>"})});

}  // namespace
}  // namespace modu::toolcall
