// MiniCPM 5: <function name="NAME"><param name="KEY">value or <![CDATA[value]]></param></function>, no wrapper.
#include "xml_params.h"

namespace modu::toolcall {
namespace {
const bool kRegistered = register_format(
    {"minicpm", "<function name=\"NAME\"><param name=\"KEY\"><![CDATA[value]]></param></function> (MiniCPM 5)",
     [](std::string_view src) { return src.find("<param name=") != std::string_view::npos ? 20 : 0; },
     std::make_shared<XmlFormat>(XmlSpec{.name = "minicpm", .fn_open = "<function name=\"", .fn_name_end = "\">",
                                         .fn_close = "</function>", .param_open = "<param name=\"", .key_end = "\">",
                                         .param_close = "</param>", .cdata = true})});
}  // namespace
}  // namespace modu::toolcall
