// DeepSeek: R1 (and V3-0324) write <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\n{...}\n```<｜tool▁call▁end｜>...<｜tool▁calls▁end｜>;
// V3.1 drops the type and the fence: <｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{...}<｜tool▁call▁end｜>;
// V3.2 writes DSML elements: <｜DSML｜invoke name="NAME"><｜DSML｜parameter name="K" string="true">v</｜DSML｜parameter>.
#include "named_calls.h"
#include "xml_params.h"

namespace modu::toolcall {
namespace {

bool has(std::string_view src, std::string_view m) { return src.find(m) != std::string_view::npos; }

const bool kR1 = register_format(
    {"deepseek-r1", "<｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\\n```json\\n{...}\\n```<｜tool▁call▁end｜> (DeepSeek R1, V3)",
     [](std::string_view src) { return has(src, "<｜tool▁calls▁begin｜>") && has(src, "```json") ? 21 : 0; },
     std::make_shared<NamedCallFormat>(NamedSpec{.name = "deepseek-r1", .section_open = "<｜tool▁calls▁begin｜>",
                                                 .section_close = "<｜tool▁calls▁end｜>", .call_open = "<｜tool▁call▁begin｜>",
                                                 .name_prefix = "function<｜tool▁sep｜>", .name_end = "\n",
                                                 .args_open = "```json", .args_close = "```",
                                                 .call_close = "<｜tool▁call▁end｜>"})});
const bool kV31 = register_format(
    {"deepseek-v3.1", "<｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{...}<｜tool▁call▁end｜> (DeepSeek V3.1)",
     [](std::string_view src) { return has(src, "<｜tool▁calls▁begin｜>") ? 20 : 0; },
     std::make_shared<NamedCallFormat>(NamedSpec{.name = "deepseek-v3.1", .section_open = "<｜tool▁calls▁begin｜>",
                                                 .section_close = "<｜tool▁calls▁end｜>", .call_open = "<｜tool▁call▁begin｜>",
                                                 .name_end = "<｜tool▁sep｜>", .call_close = "<｜tool▁call▁end｜>"})});
const bool kV32 = register_format(
    {"deepseek-v3.2", "<｜DSML｜function_calls><｜DSML｜invoke name=\"NAME\"><｜DSML｜parameter name=\"K\" string=\"true\">v</｜DSML｜parameter>... (DeepSeek V3.2)",
     [](std::string_view src) { return has(src, "｜DSML｜") ? 25 : 0; },
     std::make_shared<XmlFormat>(XmlSpec{.name = "deepseek-v3.2", .region_open = "<｜DSML｜function_calls>",
                                         .region_close = "</｜DSML｜function_calls>", .fn_open = "<｜DSML｜invoke name=\"",
                                         .fn_name_end = "\">", .fn_close = "</｜DSML｜invoke>",
                                         .param_open = "<｜DSML｜parameter name=\"", .key_end = "\"",
                                         .param_close = "</｜DSML｜parameter>", .string_attr = true})});

}  // namespace
}  // namespace modu::toolcall
