// GLM 4.5 / 4.6 / 4.7: <tool_call>NAME\n<arg_key>KEY</arg_key>\n<arg_value>value</arg_value>...</tool_call>.
#include "xml_params.h"

namespace modu::toolcall {
namespace {
const bool kRegistered = register_format(
    {"glm", "<tool_call>NAME<arg_key>KEY</arg_key><arg_value>value</arg_value></tool_call> (GLM 4.5+)",
     [](std::string_view src) { return src.find("<arg_key>") != std::string_view::npos ? 20 : 0; },
     std::make_shared<XmlFormat>(XmlSpec{.name = "glm", .region_open = "<tool_call>", .region_close = "</tool_call>",
                                         .param_open = "<arg_key>", .key_end = "</arg_key>", .value_open = "<arg_value>",
                                         .param_close = "</arg_value>"})});
}  // namespace
}  // namespace modu::toolcall
