// Kimi K2: <|tool_calls_section_begin|><|tool_call_begin|>functions.NAME:IDX<|tool_call_argument_begin|>{...}<|tool_call_end|>...<|tool_calls_section_end|>;
// "functions.NAME:IDX" is also the call's id.
#include "named_calls.h"

namespace modu::toolcall {
namespace {
const bool kRegistered = register_format(
    {"kimi-k2", "<|tool_calls_section_begin|><|tool_call_begin|>functions.NAME:IDX<|tool_call_argument_begin|>{...}<|tool_call_end|><|tool_calls_section_end|>",
     [](std::string_view src) { return src.find("<|tool_calls_section_begin|>") != std::string_view::npos ? 20 : 0; },
     std::make_shared<NamedCallFormat>(NamedSpec{.name = "kimi-k2", .section_open = "<|tool_calls_section_begin|>",
                                                 .section_close = "<|tool_calls_section_end|>", .call_open = "<|tool_call_begin|>",
                                                 .name_end = "<|tool_call_argument_begin|>", .call_close = "<|tool_call_end|>",
                                                 .kimi_ids = true})});
}  // namespace
}  // namespace modu::toolcall
