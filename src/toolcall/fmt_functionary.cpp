// Functionary v3.1 (Llama 3.1 based): <function=NAME>{...}</function>, one element per call.
#include "named_calls.h"

namespace modu::toolcall {
namespace {
int detect(std::string_view src) {
  auto has = [&](std::string_view m) { return src.find(m) != std::string_view::npos; };
  return has("<function=") && has("</function>") && !has("<tool_call>") ? 16 : 0;
}
const bool kRegistered = register_format(
    {"functionary", "<function=NAME>{...}</function> (Functionary v3.1)", detect,
     std::make_shared<NamedCallFormat>(NamedSpec{.name = "functionary", .call_open = "<function=", .name_end = ">",
                                                 .call_close = "</function>"})});
}  // namespace
}  // namespace modu::toolcall
