// Tests for tool-call parsing: format detection on real chat templates from ../shared, each
// convention's calls (one, several, arguments as object or string), malformed calls kept as
// content, and the streaming splitter giving the same result for every way of cutting the text.
#include "modu/server/tool_calls.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace modu::server {
namespace {

std::string read_template(const std::string& name) {
  std::ifstream f(std::string(MODU_SHARED_DIR) + "/testdata/templates/" + name + ".jinja");
  EXPECT_TRUE(f.good()) << name;
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(ToolCalls, DetectsTheTemplatesConvention) {
  EXPECT_EQ(detect_tool_format(read_template("Qwen-Qwen2.5-7B-Instruct")), ToolFormat::kHermes);
  EXPECT_EQ(detect_tool_format(read_template("Qwen-Qwen3-0.6B")), ToolFormat::kHermes);
  EXPECT_EQ(detect_tool_format(read_template("NousResearch-Hermes-3-Llama-3.1-8B-tool_use")), ToolFormat::kHermes);
  EXPECT_EQ(detect_tool_format(read_template("Mistral-Small-3.2-24B-Instruct-2506")), ToolFormat::kMistral);
  EXPECT_EQ(detect_tool_format(read_template("meta-llama-Llama-3.1-8B-Instruct")), ToolFormat::kLlama3);
  EXPECT_EQ(detect_tool_format(read_template("meta-llama-Llama-3.2-3B-Instruct")), ToolFormat::kLlama3);
}

TEST(ToolCalls, Hermes) {
  auto p = parse_tool_calls(ToolFormat::kHermes,
                            "Let me look.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"서울\"}}\n</tool_call>\n"
                            "<tool_call>{\"name\":\"now\",\"arguments\":\"{\\\"tz\\\":\\\"KST\\\"}\"}</tool_call>");
  ASSERT_EQ(p.calls.size(), 2u);
  EXPECT_EQ(p.calls[0].name, "get_weather");
  EXPECT_EQ(nlohmann::json::parse(p.calls[0].arguments), nlohmann::json::parse(R"({"city":"서울"})"));
  EXPECT_EQ(p.calls[1].name, "now");
  EXPECT_EQ(nlohmann::json::parse(p.calls[1].arguments), nlohmann::json::parse(R"({"tz":"KST"})"));
  EXPECT_EQ(p.content, "Let me look.\n\n");
  // Generation stopped right after the JSON (no closing tag).
  p = parse_tool_calls(ToolFormat::kHermes, "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}");
  ASSERT_EQ(p.calls.size(), 1u);
  EXPECT_EQ(p.calls[0].arguments, "{}");
  // Plain replies and malformed calls stay content, whole.
  for (const char* t : {"Just text.", "<tool_call>{\"name\": \"f\", \"arguments\": {</tool_call>",
                        "<tool_call>{\"arguments\": {}}</tool_call>", "<tool_call>{\"name\": \"f\"} trailing</tool_call>",
                        "<tool_call>not json</tool_call>"}) {
    p = parse_tool_calls(ToolFormat::kHermes, t);
    EXPECT_TRUE(p.calls.empty()) << t;
    EXPECT_EQ(p.content, t);
  }
}

TEST(ToolCalls, Mistral) {
  auto p = parse_tool_calls(ToolFormat::kMistral,
                            "[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {\"x\": 1}}, {\"name\": \"b\", \"arguments\": {}}]");
  ASSERT_EQ(p.calls.size(), 2u);
  EXPECT_EQ(p.calls[0].name, "a");
  EXPECT_EQ(p.calls[0].arguments, "{\"x\":1}");
  EXPECT_EQ(p.calls[1].name, "b");
  EXPECT_EQ(p.content, "");
  p = parse_tool_calls(ToolFormat::kMistral, "Sure. [TOOL_CALLS]get_weather[ARGS]{\"city\": \"Busan\"}[TOOL_CALLS]now[ARGS]{}");
  ASSERT_EQ(p.calls.size(), 2u);
  EXPECT_EQ(p.calls[0].name, "get_weather");
  EXPECT_EQ(p.calls[0].arguments, "{\"city\":\"Busan\"}");
  EXPECT_EQ(p.calls[1].name, "now");
  EXPECT_EQ(p.content, "Sure. ");
  for (const char* t : {"[TOOL_CALLS][{\"name\": 1}]", "[TOOL_CALLS]f[ARGS]oops", "no calls here"}) {
    p = parse_tool_calls(ToolFormat::kMistral, t);
    EXPECT_TRUE(p.calls.empty()) << t;
    EXPECT_EQ(p.content, t);
  }
}

TEST(ToolCalls, Llama3) {
  auto p = parse_tool_calls(ToolFormat::kLlama3, " {\"name\": \"get_weather\", \"parameters\": {\"city\": \"Seoul\"}}");
  ASSERT_EQ(p.calls.size(), 1u);
  EXPECT_EQ(p.calls[0].name, "get_weather");
  EXPECT_EQ(p.calls[0].arguments, "{\"city\":\"Seoul\"}");
  p = parse_tool_calls(ToolFormat::kLlama3, "<|python_tag|>{\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"parameters\": {\"k\": [1]}}");
  ASSERT_EQ(p.calls.size(), 2u);
  EXPECT_EQ(p.calls[1].arguments, "{\"k\":[1]}");
  for (const char* t : {"The answer is {\"name\": \"x\"}", "{\"name\": \"a\", \"parameters\": {}} and more text", "{}"}) {
    p = parse_tool_calls(ToolFormat::kLlama3, t);
    EXPECT_TRUE(p.calls.empty()) << t;
    EXPECT_EQ(p.content, t);
  }
}

// Forcing a call: the schema accepts exactly calls of the allowed functions with their arguments.
TEST(ToolCalls, ForcedCallSchemas) {
  const auto tools = nlohmann::ordered_json::parse(R"([
    {"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}},
    {"type":"function","function":{"name":"now","parameters":{"type":"object","properties":{}}}}])");
  ForcedCall fc;
  ASSERT_EQ(forced_call(ToolFormat::kHermes, tools, "get_weather", &fc), "");
  EXPECT_EQ(fc.prefix, "<tool_call>\n");
  EXPECT_EQ(fc.schema["properties"]["name"], nlohmann::json::parse(R"({"const":"get_weather"})"));
  EXPECT_EQ(fc.schema["properties"]["arguments"]["required"], nlohmann::json::parse(R"(["city"])"));
  ASSERT_EQ(forced_call(ToolFormat::kLlama3, tools, "", &fc), "");
  EXPECT_EQ(fc.prefix, "");
  ASSERT_EQ(fc.schema["anyOf"].size(), 2u);
  EXPECT_EQ(fc.schema["anyOf"][1]["properties"]["name"], nlohmann::json::parse(R"({"const":"now"})"));
  EXPECT_TRUE(fc.schema["anyOf"][0]["properties"].contains("parameters"));
  ASSERT_EQ(forced_call(ToolFormat::kMistral, tools, "now", &fc), "");
  EXPECT_EQ(fc.prefix, "[TOOL_CALLS]");
  EXPECT_EQ(fc.schema["type"], "array");
  EXPECT_NE(forced_call(ToolFormat::kHermes, tools, "missing", &fc), "");
  EXPECT_NE(forced_call(ToolFormat::kHermes, nlohmann::ordered_json::parse(R"([{"type":"function"}])"), "", &fc), "");
}

// Streaming: every way of cutting the reply into two or three pieces gives the same calls, and the
// content sent while streaming plus finish()'s content equals the non-streaming content.
TEST(ToolCalls, StreamingMatchesWholeText) {
  const std::pair<ToolFormat, std::string> cases[] = {
      {ToolFormat::kHermes, "I will call it.<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": \"<\"}}</tool_call>"},
      {ToolFormat::kHermes, "No call, but a < sign and <tool and <tool_cal."},
      {ToolFormat::kMistral, "Ok [TOOL_CALLS][{\"name\": \"g\", \"arguments\": {}}]"},
      {ToolFormat::kLlama3, "  {\"name\": \"h\", \"parameters\": {\"q\": 1}}"},
      {ToolFormat::kLlama3, "Plain answer {not a call}."},
      {ToolFormat::kLlama3, "<|python_tag|>{\"name\": \"h\", \"parameters\": {}}"},
      {ToolFormat::kNone, "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>"},
  };
  for (const auto& [fmt, text] : cases) {
    const ToolParse whole = parse_tool_calls(fmt, text);
    for (size_t i = 0; i <= text.size(); ++i)
      for (size_t j = i; j <= text.size(); j += 3) {
        ToolCallStream s(fmt);
        std::string content = s.push(text.substr(0, i));
        content += s.push(text.substr(i, j - i));
        content += s.push(text.substr(j));
        const ToolParse fin = s.finish();
        content += fin.content;
        ASSERT_EQ(fin.calls.size(), whole.calls.size()) << text << " cut " << i << "," << j;
        for (size_t k = 0; k < fin.calls.size(); ++k) {
          EXPECT_EQ(fin.calls[k].name, whole.calls[k].name);
          EXPECT_EQ(fin.calls[k].arguments, whole.calls[k].arguments);
        }
        EXPECT_EQ(content, whole.content) << text << " cut " << i << "," << j;
      }
  }
}

}  // namespace
}  // namespace modu::server
