// MiniMax-M2: <minimax:tool_call>\n<invoke name="NAME">\n<parameter name="KEY">value</parameter>\n</invoke>\n</minimax:tool_call>.
#include "xml_params.h"

namespace modu::toolcall {
namespace {
const bool kRegistered = register_format(
    {"minimax-m2", "<minimax:tool_call><invoke name=\"NAME\"><parameter name=\"KEY\">value</parameter></invoke></minimax:tool_call>",
     [](std::string_view src) { return src.find("<minimax:tool_call>") != std::string_view::npos ? 20 : 0; },
     std::make_shared<XmlFormat>(XmlSpec{.name = "minimax-m2", .region_open = "<minimax:tool_call>",
                                         .region_close = "</minimax:tool_call>", .fn_open = "<invoke name=\"",
                                         .fn_name_end = "\">", .fn_close = "</invoke>", .param_open = "<parameter name=\"",
                                         .key_end = "\">", .param_close = "</parameter>"})});
}  // namespace
}  // namespace modu::toolcall
