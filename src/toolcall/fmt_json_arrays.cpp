// Families that write a JSON array of call objects after one marker: Granite 3 (<|tool_call|>[...]),
// Apriel (<tool_calls>[...]</tool_calls>), Nemotron Nano v2 (<TOOLCALL>[...]</TOOLCALL>) and
// FireFunction v2 ( functools[...]). Each is data: markers and key names.
#include "json_tags.h"

namespace modu::toolcall {
namespace {

bool has(std::string_view src, std::string_view m) { return src.find(m) != std::string_view::npos; }

std::shared_ptr<const Format> array_format(const char* name, std::string open, std::string close) {
  JsonTagSpec s{.name = name, .open = {open}, .close = std::move(close)};
  s.forcing = {.prefix = open, .shape = Format::Forcing::kCallArray};
  return std::make_shared<JsonTagFormat>(std::move(s));
}

const bool kGranite = register_format(
    {"granite", "<|tool_call|>[{\"name\": ..., \"arguments\": {...}}, ...] (Granite 3.x)",
     [](std::string_view src) { return has(src, "<|tool_call|>") ? 15 : 0; }, array_format("granite", "<|tool_call|>", "")});
const bool kApriel = register_format(
    {"apriel", "<tool_calls>[{\"name\": ..., \"arguments\": {...}}, ...]</tool_calls> (Apriel)",
     [](std::string_view src) { return has(src, "<tool_calls>") ? 15 : 0; },
     array_format("apriel", "<tool_calls>", "</tool_calls>")});
const bool kNemotron = register_format(
    {"nemotron", "<TOOLCALL>[{\"name\": ..., \"arguments\": {...}}, ...]</TOOLCALL> (Nemotron Nano v2)",
     [](std::string_view src) { return has(src, "<TOOLCALL>") ? 15 : 0; },
     array_format("nemotron", "<TOOLCALL>", "</TOOLCALL>")});
const bool kFirefunction = register_format(
    {"firefunction", " functools[{\"name\": ..., \"arguments\": {...}}, ...] (FireFunction v2)",
     [](std::string_view src) { return has(src, "functools[") ? 15 : 0; }, array_format("firefunction", " functools", "")});

}  // namespace
}  // namespace modu::toolcall
