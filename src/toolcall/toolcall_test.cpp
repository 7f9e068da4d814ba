// Unit tests of the tool-call layer: each family's syntax on hand-written replies, malformed
// calls kept as content, streaming deltas (header first, arguments growing), forcing schemas.
#include "modu/toolcall/toolcall.h"

#include <gtest/gtest.h>

#include <random>

namespace modu::toolcall {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

const ojson& tools() {
  static const ojson t = ojson::parse(R"([
   {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
     "properties": {"city": {"type": "string"}, "days": {"type": "integer"}, "hot": {"type": "boolean"}},
     "required": ["city"]}}},
   {"type": "function", "function": {"name": "search", "parameters": {"type": "object",
     "properties": {"q": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}}}}}])");
  return t;
}

Convention conv(const char* name) {
  Convention c;
  c.format = find_format(name);
  EXPECT_NE(c.format, nullptr) << name;
  if (!c.format) c.format = find_format("content");
  return c;
}

Reply parse(const char* format, std::string_view text, bool reasoning_open = false) {
  ParseOptions o;
  o.tools = &tools();
  o.reasoning_open = reasoning_open;
  return parse_reply(conv(format), text, o);
}

struct Want {
  std::string name;
  std::string args;  // JSON
};

void expect_calls(const Reply& r, const std::vector<Want>& want, const std::string& ctx) {
  ASSERT_EQ(r.calls.size(), want.size()) << ctx << " content=" << r.content;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(r.calls[i].name, want[i].name) << ctx;
    EXPECT_EQ(json::parse(r.calls[i].arguments, nullptr, false), json::parse(want[i].args)) << ctx << ": " << r.calls[i].arguments;
  }
}

struct Case {
  const char* format;
  std::string text;
  std::string content;
  std::vector<Want> calls;
};

// One hand-written reply per family, in the syntax its chat template teaches.
std::vector<Case> family_cases() {
  return {
      {"hermes", "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"서울\"}}\n</tool_call>",
       "Let me check.", {{"get_weather", R"({"city": "서울"})"}}},
      {"hermes",
       "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"a\"}}\n</tool_call>\n<tool_call>\n{\"name\": "
       "\"search\", \"arguments\": {\"q\": \"b\"}}\n</tool_call>",
       "", {{"get_weather", R"({"city": "a"})"}, {"search", R"({"q": "b"})"}}},
      {"qwen3-coder",
       "<tool_call>\n<function=get_weather>\n<parameter=city>\n부산 \"역\"\n</parameter>\n<parameter=days>\n3\n</parameter>\n"
       "<parameter=hot>\ntrue\n</parameter>\n</function>\n</tool_call>",
       "", {{"get_weather", R"({"city": "부산 \"역\"", "days": 3, "hot": true})"}}},
      {"qwen3-coder",  // an array parameter is JSON; an unknown parameter keeps its text
       "<tool_call>\n<function=search>\n<parameter=tags>\n[\"a\", \"b\"]\n</parameter>\n<parameter=extra>\n12\n</parameter>\n"
       "</function>\n</tool_call>",
       "", {{"search", R"({"tags": ["a", "b"], "extra": 12})"}}},
      {"glm", "Sure.<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Jeju</arg_value>\n<arg_key>days</arg_key>\n"
              "<arg_value>2</arg_value>\n</tool_call>",
       "Sure.", {{"get_weather", R"({"city": "Jeju", "days": 2})"}}},
      {"minimax-m2",
       "<minimax:tool_call>\n<invoke name=\"get_weather\">\n<parameter name=\"city\">Daegu</parameter>\n</invoke>\n"
       "<invoke name=\"search\">\n<parameter name=\"q\">x y</parameter>\n</invoke>\n</minimax:tool_call>",
       "", {{"get_weather", R"({"city": "Daegu"})"}, {"search", R"({"q": "x y"})"}}},
      {"deepseek-r1",
       "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Seoul\"}\n```"
       "<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
       "", {{"get_weather", R"({"city": "Seoul"})"}}},
      {"deepseek-v3.1",
       "ok<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": \"Seoul\"}<｜tool▁call▁end｜>"
       "<｜tool▁call▁begin｜>search<｜tool▁sep｜>{\"q\": \"z\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
       "ok", {{"get_weather", R"({"city": "Seoul"})"}, {"search", R"({"q": "z"})"}}},
      {"kimi-k2",
       "<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>{\"city\": \"Ulsan\"}"
       "<|tool_call_end|><|tool_calls_section_end|>",
       "", {{"get_weather", R"({"city": "Ulsan"})"}}},
      {"harmony",
       "<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\": \"Seoul\"}<|call|>",
       "", {{"get_weather", R"({"city": "Seoul"})"}}},
      {"mistral", "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}, \"id\": \"abc123def\"}]", "",
       {{"get_weather", R"({"city": "Paris"})"}}},
      {"mistral", "[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Lyon\"}[TOOL_CALLS]search[ARGS]{\"q\": \"w\"}", "",
       {{"get_weather", R"({"city": "Lyon"})"}, {"search", R"({"q": "w"})"}}},
      {"llama3", "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Rome\"}}", "", {{"get_weather", R"({"city": "Rome"})"}}},
      {"llama3", "<|python_tag|>brave_search.call(query=\"서울 날씨\")", "", {{"brave_search", R"({"query": "서울 날씨"})"}}},
      {"granite", "<|tool_call|>[{\"name\": \"search\", \"arguments\": {\"q\": \"g\"}}]", "", {{"search", R"({"q": "g"})"}}},
      {"command-r7b",
       "<|START_ACTION|>[\n    {\"tool_call_id\": \"0\", \"tool_name\": \"search\", \"parameters\": {\"q\": \"c\"}}\n]<|END_ACTION|>", "",
       {{"search", R"({"q": "c"})"}}},
      {"pythonic", "[get_weather(city='Seoul', days=2), search(q=\"a\\\"b\", tags=['x'])]", "",
       {{"get_weather", R"({"city": "Seoul", "days": 2})"}, {"search", R"({"q": "a\"b", "tags": ["x"]})"}}},
      {"lfm2", "<|tool_call_start|>[get_weather(city=\"Seoul\", hot=True)]<|tool_call_end|>Checking.", "Checking.",
       {{"get_weather", R"({"city": "Seoul", "hot": true})"}}},
      {"solar",
       "<|tool_calls|><|tool_call:begin|>abc<|tool_call:name|>get_weather<|tool_call:args|>{\"city\": \"Seoul\"}"
       "<|tool_call:end|><|calls|>",
       "", {{"get_weather", R"({"city": "Seoul"})"}}},
      {"functionary", "<function=search>{\"q\": \"f\"}</function>", "", {{"search", R"({"q": "f"})"}}},
      {"seed-oss",
       "<seed:tool_call>\n<function=get_weather>\n<parameter=city>Seoul</parameter>\n</function>\n</seed:tool_call>", "",
       {{"get_weather", R"({"city": "Seoul"})"}}},
      {"minicpm", "<function name=\"get_weather\"><param name=\"city\"><![CDATA[<b>&</b>]]></param></function>", "",
       {{"get_weather", R"({"city": "<b>&</b>"})"}}},
  };
}

TEST(ToolCallFormats, AllRegistered) {
  EXPECT_GE(formats().size(), 20u);
  for (const auto& f : formats()) {
    EXPECT_FALSE(f.description.empty()) << f.name;
    EXPECT_EQ(find_format(f.name), f.format.get()) << f.name;
  }
  EXPECT_EQ(find_format("no-such-format"), nullptr);
}

TEST(ToolCallFormats, EveryFamilyParsesItsSyntax) {
  for (const Case& c : family_cases()) {
    const Reply r = parse(c.format, c.text);
    expect_calls(r, c.calls, std::string(c.format) + ": " + c.text);
    EXPECT_EQ(r.content, c.content) << c.format << ": " << c.text;
  }
}

// The deltas of a stream, reassembled; checks the OpenAI ordering rules on the way.
Reply reassemble(const Convention& cv, std::string_view text, size_t max_piece, std::mt19937* rng) {
  ParseOptions o;
  o.tools = &tools();
  ReplyStream s(cv, o);
  Reply got;
  auto apply = [&](const Delta& d) {
    got.content += d.content;
    got.reasoning += d.reasoning;
    for (const CallDelta& cd : d.calls) {
      if (cd.index == (int)got.calls.size()) {
        EXPECT_FALSE(cd.name.empty()) << "the first delta of a call names it";
        got.calls.push_back({cd.id, cd.name, ""});
      } else {
        EXPECT_TRUE(cd.name.empty()) << "only the first delta of a call names it";
      }
      if (cd.index >= (int)got.calls.size()) {
        ADD_FAILURE() << "delta for call " << cd.index << " before its header";
        continue;
      }
      got.calls[cd.index].arguments += cd.arguments;
    }
  };
  for (size_t i = 0; i < text.size();) {
    const size_t n = max_piece == 1 ? 1 : 1 + (*rng)() % max_piece;
    apply(s.push(text.substr(i, n)));
    i += n;
  }
  apply(s.finish());
  return got;
}

TEST(ToolCallStreaming, EveryFamilyStreamsToTheWholeParse) {
  std::mt19937 rng(3);
  for (const Case& c : family_cases()) {
    const Reply whole = parse(c.format, c.text);
    for (size_t piece : {1, 3, 9}) {
      const Reply s = reassemble(conv(c.format), c.text, piece, &rng);
      EXPECT_EQ(s.content, whole.content) << c.format << " piece " << piece;
      ASSERT_EQ(s.calls.size(), whole.calls.size()) << c.format << " piece " << piece;
      for (size_t i = 0; i < s.calls.size(); ++i) {
        EXPECT_EQ(s.calls[i].name, whole.calls[i].name);
        EXPECT_EQ(json::parse(s.calls[i].arguments, nullptr, false), json::parse(whole.calls[i].arguments))
            << c.format << " piece " << piece << ": " << s.calls[i].arguments;
      }
    }
  }
}

TEST(ToolCallStreaming, HeaderFirstThenArgumentsGrow) {
  ParseOptions o;
  o.tools = &tools();
  ReplyStream s(conv("hermes"), o);
  Delta d = s.push("Checking now. ");
  EXPECT_EQ(d.content, "Checking now.");  // trailing space held: it may precede a call
  d = s.push("<tool_");
  EXPECT_TRUE(d.empty()) << "a marker split across tokens is held back";
  d = s.push("call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Se");
  ASSERT_EQ(d.calls.size(), 1u);
  EXPECT_EQ(d.calls[0].index, 0);
  EXPECT_EQ(d.calls[0].name, "get_weather");
  EXPECT_TRUE(d.content.empty());
  const std::string first = d.calls[0].arguments;
  d = s.push("oul\", \"days\": 2");
  ASSERT_EQ(d.calls.size(), 1u) << "arguments stream before the call ends";
  EXPECT_TRUE(d.calls[0].name.empty());
  EXPECT_FALSE(d.calls[0].arguments.empty());
  const std::string second = first + d.calls[0].arguments;
  d = s.push("}}\n</tool_call>");
  std::string all = second;
  for (const auto& cd : d.calls) all += cd.arguments;
  d = s.finish();
  for (const auto& cd : d.calls) all += cd.arguments;
  EXPECT_EQ(json::parse(all), json::parse(R"({"city": "Seoul", "days": 2})")) << all;
}

TEST(ToolCallStreaming, XmlStringParametersStreamAsWritten) {
  ParseOptions o;
  o.tools = &tools();
  ReplyStream s(conv("qwen3-coder"), o);
  std::string args;
  auto take = [&](const Delta& d) {
    for (const auto& cd : d.calls) args += cd.arguments;
  };
  take(s.push("<tool_call>\n<function=get_weather>\n<parameter=city>\nSe"));
  EXPECT_NE(args.find("Se"), std::string::npos) << args;
  take(s.push("oul"));
  EXPECT_NE(args.find("Seoul"), std::string::npos) << "string values grow token by token: " << args;
  take(s.push("\n</parameter>\n</function>\n</tool_call>"));
  take(s.finish());
  EXPECT_EQ(json::parse(args), json::parse(R"({"city": "Seoul"})"));
}

TEST(ToolCallParse, MalformedCallsStayContent) {
  const std::vector<std::pair<const char*, std::string>> bad = {
      {"hermes", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": }\n</tool_call>"},
      {"hermes", "<tool_call>\n{\"name\": \"get_weather\""},
      {"qwen3-coder", "<tool_call>\n<function=get_weather>\n<parameter=city>\nSeoul"},
      {"mistral", "[TOOL_CALLS][{\"name\": 3}]"},
      {"kimi-k2", "<|tool_calls_section_begin|><|tool_call_begin|>functions.x:0<|tool_call_argument_begin|>{oops"},
      {"pythonic", "[get_weather(city=]"},
  };
  for (const auto& [f, text] : bad) {
    const Reply r = parse(f, text);
    EXPECT_TRUE(r.calls.empty()) << f << ": " << text;
    EXPECT_EQ(r.content, text) << f << ": nothing of a malformed call may be lost";
  }
  // Text that merely mentions a marker's first characters is content.
  EXPECT_EQ(parse("hermes", "a < b and <tool").content, "a < b and <tool");
}

TEST(ToolCallParse, ReasoningIsSplitOff) {
  Convention c = conv("hermes");
  c.reasoning = {"<think>", "</think>"};
  ParseOptions o;
  o.tools = &tools();
  Reply r = parse_reply(c, "<think>\n먼저 생각.\n</think>\n\n답입니다.", o);
  EXPECT_EQ(r.reasoning, "먼저 생각.");
  EXPECT_EQ(r.content, "답입니다.");
  o.reasoning_open = true;  // the prompt opened the block
  r = parse_reply(c, "thinking...</think>\n<tool_call>\n{\"name\": \"search\", \"arguments\": {}}\n</tool_call>", o);
  EXPECT_EQ(r.reasoning, "thinking...");
  EXPECT_EQ(r.content, "");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].name, "search");
  // gpt-oss: the analysis channel is reasoning, final is content.
  const Reply h = parse("harmony", "<|channel|>analysis<|message|>Think.<|end|><|start|>assistant<|channel|>final<|message|>Done.");
  EXPECT_EQ(h.reasoning, "Think.");
  EXPECT_EQ(h.content, "Done.");
}

TEST(ToolCallParse, EndMarkersCutTheReply) {
  Convention c = conv("hermes");
  c.end_markers = {"<|im_end|>"};
  ParseOptions o;
  const Reply r = parse_reply(c, "Hi.<|im_end|>\n<|im_start|>user\n<tool_call>", o);
  EXPECT_EQ(r.content, "Hi.");
  EXPECT_TRUE(r.calls.empty());
}

TEST(ToolCallParse, CallsOffKeepsMarkupAsContent) {
  ParseOptions o;
  o.calls = false;
  const std::string t = "<tool_call>\n{\"name\": \"search\", \"arguments\": {}}\n</tool_call>";
  const Reply r = parse_reply(conv("hermes"), t, o);
  EXPECT_TRUE(r.calls.empty());
  EXPECT_EQ(r.content, t);
}

TEST(ToolCallDetect, TemplatesPickTheirFamily) {
  EXPECT_STREQ(detect_convention("{{ '<tool_call>\\n' }}{{ tool_call | tojson }}{{ '</tool_call>' }}").format->name(), "hermes");
  // EXAONE 4.0 writes Hermes-style calls inside its own turn markers.
  const Convention ex = detect_convention(
      "[|system|]{% for m in messages %}[|{{ m.role }}|]{% if m.tool_calls %}<tool_call>{{ m.tool_calls[0] | tojson }}"
      "</tool_call>{% endif %}<think>\n</think>{{ m.content }}[|endofturn|]{% endfor %}");
  EXPECT_STREQ(ex.format->name(), "hermes");
  EXPECT_EQ(ex.reasoning.open, "<think>");
  EXPECT_NE(std::find(ex.end_markers.begin(), ex.end_markers.end(), "[|endofturn|]"), ex.end_markers.end());
  EXPECT_STREQ(detect_convention("{{ messages[0].content }}").format->name(), "content");
}

// A forced call, written the way the constraint lets the model write it, parses as that call.
TEST(ToolCallForcing, EveryFormatsForcedCallParses) {
  for (const auto& f : formats()) {
    if (f.name == "content") continue;
    ForcedCall fc;
    ASSERT_EQ(forced_call(*f.format, tools(), "get_weather", false, &fc), "") << f.name;
    ASSERT_EQ(fc.alternatives.size(), 1u) << f.name;
    const auto& [prefix, schema] = fc.alternatives[0];
    const Format::Forcing fr = f.format->forcing();
    std::string body;
    const json args = {{"city", "서울 \"x\"\n"}, {"days", 2}};
    if (fr.shape == Format::Forcing::kArguments) body = args.dump();
    else {
      const json call = {{fr.name_key, "get_weather"}, {fr.args_key, args}};
      body = fr.shape == Format::Forcing::kCallArray ? json::array({call}).dump() : call.dump();
    }
    EXPECT_FALSE(schema.is_null()) << f.name;
    ParseOptions o;
    o.tools = &tools();
    const Reply r = parse_reply(Convention{f.format.get(), {}, {}}, prefix + body, o);
    expect_calls(r, {{"get_weather", args.dump()}}, f.name + ": " + prefix + body);
    EXPECT_EQ(r.content, "") << f.name;
  }
}

TEST(ToolCallForcing, RequiredOffersEveryToolAndNamesAreChecked) {
  ForcedCall fc;
  ASSERT_EQ(forced_call(*find_format("hermes"), tools(), "", true, &fc), "");
  ASSERT_EQ(fc.alternatives.size(), 1u);
  EXPECT_NE(fc.alternatives[0].second.dump().find("search"), std::string::npos);
  ASSERT_EQ(forced_call(*find_format("qwen3-coder"), tools(), "", false, &fc), "");
  EXPECT_EQ(fc.alternatives.size(), 2u) << "one prefix per function when the name is outside the JSON";
  EXPECT_NE(forced_call(*find_format("hermes"), tools(), "nope", false, &fc), "");
  ASSERT_EQ(forced_call(*find_format("granite"), tools(), "", true, &fc), "");
  EXPECT_NE(fc.alternatives[0].second.dump().find("maxItems"), std::string::npos);
}

}  // namespace
}  // namespace modu::toolcall
