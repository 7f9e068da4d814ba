// Unit tests for the Jinja engine: whitespace control, loops, scoping, macros, filters, tests,
// Python value formatting, slicing, string methods, errors with positions. The JinjaGenerated
// expectations were produced by rendering each template with Python Jinja2 3.1 configured as
// transformers' apply_chat_template configures it.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "modu/chat/chat_template.h"
#include "modu/chat/jinja.h"

namespace {

using nlohmann::ordered_json;

ordered_json J(const char* s) { return ordered_json::parse(s); }

modu::jinja::RenderOptions fixed_clock() {
  modu::jinja::RenderOptions opts;
  opts.now = std::chrono::system_clock::from_time_t(1768469400);  // 2026-01-15T09:30:00Z
  return opts;
}

// Renders `src` with `ctx`; returns the output, or "ERR: <message>" on failure.
std::string R(std::string_view src, const ordered_json& ctx = ordered_json::object()) {
  auto t = modu::jinja::Template::parse(src);
  if (!t.ok()) return "ERR: " + t.status().message();
  auto r = t->render(ctx, fixed_clock());
  if (!r.ok()) return "ERR: " + r.status().message();
  return *r;
}

// The reference raised `kind: message`. raise_exception (TemplateError) messages must match
// exactly; runtime errors must carry "LINE:COL: kind: message"; syntax errors their kind and position.
void expect_error(const char* src, const char* ctx, const std::string& kind, const std::string& message) {
  std::string got = R(src, J(ctx));
  ASSERT_EQ(got.rfind("ERR: ", 0), 0u) << src << " rendered " << got;
  got = got.substr(5);
  if (kind == "TemplateError") {
    EXPECT_EQ(got, message) << src;
    return;
  }
  EXPECT_TRUE(std::isdigit(static_cast<unsigned char>(got[0])) && got.find(':') != std::string::npos)
      << src << ": no line:col in " << got;
  if (kind == "TemplateSyntaxError" || kind == "TemplateAssertionError") {
    EXPECT_NE(got.find("Error"), std::string::npos) << src << ": " << got;
  } else {
    EXPECT_NE(got.find(kind + ": " + message), std::string::npos) << src << ": want " << kind << ": " << message
                                                                   << "\n got " << got;
  }
}

// ---------------------------------------------------------------- hand-written

TEST(Jinja, ErrorsCarryLineAndColumn) {
  auto t = modu::jinja::Template::parse("line one\n{{ 1 }}\n   {{ d.a.b.c }}");
  ASSERT_TRUE(t.ok());
  auto r = t->render(J(R"({"d": {"a": {}}})"));
  ASSERT_FALSE(r.ok());
  // d.a.b is undefined; the ".c" lookup (its dot is at column 12) raises.
  EXPECT_EQ(r.status().message(), "3:12: UndefinedError: 'dict object' has no attribute 'b'");

  auto p = modu::jinja::Template::parse("ok\n{% if x %}\n  {% endfor %}");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message().rfind("3:6: TemplateSyntaxError: ", 0), 0u) << p.status().message();

  auto u = modu::jinja::Template::parse("{{ 'a' }}\n  {{ 1 +* 2 }}");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.status().message(), "2:9: TemplateSyntaxError: unexpected '*'");
}

TEST(Jinja, RaiseExceptionMessageIsVerbatim) {
  auto t = modu::jinja::Template::parse("a{% if x %}{{ raise_exception('Bad role: ' ~ x) }}{% endif %}");
  ASSERT_TRUE(t.ok());
  auto r = t->render(J(R"({"x": "tool"})"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), modu::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "Bad role: tool");
  EXPECT_EQ(*t->render(J("{}")), "a");
}

TEST(Jinja, KeepsContextKeyOrder) {
  // ordered_json keeps insertion order; tojson and dict iteration must follow it.
  auto ctx = J(R"({"tool": {"zeta": 1, "alpha": 2, "mid": {"b": 1, "a": 2}}})");
  EXPECT_EQ(R("{{ tool | tojson }}|{% for k in tool %}{{ k }} {% endfor %}", ctx),
            "{\"zeta\": 1, \"alpha\": 2, \"mid\": {\"b\": 1, \"a\": 2}}|zeta alpha mid ");
}

TEST(Jinja, IntegerAndFloatStayDistinct) {
  EXPECT_EQ(R("{{ a }} {{ b }} {{ a is integer }} {{ b is float }} {{ [a, b] | tojson }}", J(R"({"a": 3, "b": 3.0})")),
            "3 3.0 True True [3, 3.0]");
}

TEST(Jinja, TemplateIsReusableAndMovable) {
  auto t = modu::jinja::Template::parse("{% set n = namespace(c=0) %}{% for x in xs %}{% set n.c = n.c + x %}{% endfor %}{{ n.c }}");
  ASSERT_TRUE(t.ok());
  modu::jinja::Template moved = std::move(t.value());
  EXPECT_EQ(*moved.render(J(R"({"xs": [1, 2]})")), "3");
  EXPECT_EQ(*moved.render(J(R"({"xs": [5]})")), "5");
}

TEST(Jinja, StrftimeNowUsesTheGivenClock) {
  EXPECT_EQ(R("{{ strftime_now('%Y-%m-%d %H:%M:%S') }}"), "2026-01-15 09:30:00");
}

TEST(ChatTemplate, RendersMessagesToolsAndTokens) {
  const char* tmpl =
      "{{ bos_token }}{% if tools %}[{{ tools | map(attribute='function') | map(attribute='name') | join(',') }}]{% endif %}"
      "{% for m in messages %}<{{ m.role }}>{{ m.content }}{{ eos_token }}{% endfor %}"
      "{% if add_generation_prompt %}<assistant>{% endif %}";
  auto messages = J(R"([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}])");
  auto tools = J(R"([{"type": "function", "function": {"name": "get_weather"}}])");
  auto r = modu::chat::render_chat_template(tmpl, messages, tools, true, "<s>", "</s>", fixed_clock());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(*r, "<s>[get_weather]<user>hi</s><assistant>hello</s><assistant>");

  auto no_tools = modu::chat::render_chat_template(tmpl, messages, nullptr, false, "<s>", "</s>", fixed_clock());
  ASSERT_TRUE(no_tools.ok());
  EXPECT_EQ(*no_tools, "<s><user>hi</s><assistant>hello</s>");

  auto bad = modu::chat::render_chat_template("{% if %}", messages, nullptr, true, "", "", fixed_clock());
  EXPECT_FALSE(bad.ok());
}

TEST(ChatTemplate, ExtraContextReachesTheTemplate) {
  auto t = modu::jinja::Template::parse("{% if enable_thinking is defined and not enable_thinking %}no-think{% endif %}");
  ASSERT_TRUE(t.ok());
  modu::chat::ChatTemplateInputs in;
  in.messages = J(R"([{"role": "user", "content": "x"}])");
  in.extra_context = J(R"({"enable_thinking": false})");
  auto r = modu::chat::render_chat_template(*t, in);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "no-think");
}

// Generated by rendering each template with Python Jinja2 3.1 configured as transformers does;
// Errors cases record the reference's error kind and message.
TEST(JinjaGenerated, Whitespace) {
  EXPECT_EQ(R("a\n{% if true %}\nb\n{% endif %}\nc", J("{}")), "a\nb\nc");
  EXPECT_EQ(R("  {% if true %}x{% endif %}  \n", J("{}")), "x  ");
  EXPECT_EQ(R("a  {%- if true -%}  b  {%- endif -%}  c", J("{}")), "abc");
  EXPECT_EQ(R("{% for i in [1,2] %}\n  {{ i }}\n{% endfor %}\n", J("{}")), "  1\n  2\n");
  EXPECT_EQ(R("x {{- ' y ' -}} z", J("{}")), "x y z");
  EXPECT_EQ(R("a\n  {%+ if true %}b{% endif %}", J("{}")), "a\n  b");
  EXPECT_EQ(R("a\n{% if true +%}\nb{% endif %}", J("{}")), "a\n\nb");
  EXPECT_EQ(R("{# comment #}\nx", J("{}")), "x");
  EXPECT_EQ(R("  {# c #}\ny", J("{}")), "y");
  EXPECT_EQ(R("a {#- c -#} b", J("{}")), "ab");
  EXPECT_EQ(R("{% raw %}{{ x }}{% endraw %}", J("{}")), "{{ x }}");
  EXPECT_EQ(R("a\n  {% raw %}\n{% x %}\n  {% endraw %}\nb", J("{}")), "a\n\n{% x %}\nb");
  EXPECT_EQ(R("line\n", J("{}")), "line");
  EXPECT_EQ(R("line\n\n", J("{}")), "line\n");
  EXPECT_EQ(R("a\r\nb\r\n{% if true %}\r\nc{% endif %}", J("{}")), "a\nb\nc");
  EXPECT_EQ(R("\t{% set x = 1 %}\n{{ x }}", J("{}")), "1");
  EXPECT_EQ(R("{{ 'a' }}\n{{ 'b' }}\n", J("{}")), "a\nb");
  EXPECT_EQ(R("{%- set x = 1 -%}\n\n  {{ x }}  ", J("{}")), "1  ");
  EXPECT_EQ(R("a {%- raw -%} b {%- endraw -%} c", J("{}")), "abc");
  EXPECT_EQ(R("  {{ 1 }}  {% if 1 %}\n  x\n  {% endif %}", J("{}")), "  1    x\n");
}

TEST(JinjaGenerated, Loops) {
  EXPECT_EQ(R("{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}", J("{\"xs\": [1, 2, 3], \"d\": {\"b\": 1, \"a\": 2}}")), "1032TrueFalse3;2121FalseFalse3;3210FalseTrue3;");
  EXPECT_EQ(R("{% for x in xs %}{{ loop.previtem }}|{{ loop.nextitem }};{% endfor %}", J("{\"xs\": [1, 2, 3], \"d\": {\"b\": 1, \"a\": 2}}")), "|2;1|3;2|;");
  EXPECT_EQ(R("{% for x in xs %}{{ loop.cycle('a','b') }}{% endfor %}", J("{\"xs\": [1, 2, 3], \"d\": {\"b\": 1, \"a\": 2}}")), "aba");
  EXPECT_EQ(R("{% for x in xs if x != 2 %}{{ x }}{{ loop.length }}{% endfor %}", J("{\"xs\": [1, 2, 3], \"d\": {\"b\": 1, \"a\": 2}}")), "1232");
  EXPECT_EQ(R("{% for x in [] %}a{% else %}empty{% endfor %}", J("{\"xs\": [1, 2, 3], \"d\": {\"b\": 1, \"a\": 2}}")), "empty");
  EXPECT_EQ(R("{% for k, v in d.items() %}{{ k }}={{ v }},{% endfor %}", J("{\"xs\": [1, 2, 3], \"d\": {\"b\": 1, \"a\": 2}}")), "b=1,a=2,");
  EXPECT_EQ(R("{% for k in d %}{{ k }}{% endfor %}", J("{\"xs\": [1, 2, 3], \"d\": {\"b\": 1, \"a\": 2}}")), "ba");
  EXPECT_EQ(R("{% for c in 'héllo' %}[{{ c }}]{% endfor %}", J("{\"xs\": [1, 2, 3], \"d\": {\"b\": 1, \"a\": 2}}")), "[h][é][l][l][o]");
  EXPECT_EQ(R("{% for x in xs %}{% if x == 2 %}{% break %}{% endif %}{{ x }}{% endfor %}", J("{\"xs\": [1, 2, 3], \"d\": {\"b\": 1, \"a\": 2}}")), "1");
  EXPECT_EQ(R("{% for x in xs %}{% if x == 2 %}{% continue %}{% endif %}{{ x }}{% endfor %}", J("{\"xs\": [1, 2, 3], \"d\": {\"b\": 1, \"a\": 2}}")), "13");
  EXPECT_EQ(R("{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}", J("{\"xs\": [1, 2, 3], \"d\": {\"b\": 1, \"a\": 2}}")), "37");
  EXPECT_EQ(R("{% for x in xs %}{% for y in xs %}{{ loop.index }}{% endfor %}/{{ loop.index }} {% endfor %}", J("{\"xs\": [1, 2, 3], \"d\": {\"b\": 1, \"a\": 2}}")), "123/1 123/2 123/3 ");
  EXPECT_EQ(R("{% for x in undefined_thing %}a{% endfor %}ok", J("{\"xs\": [1, 2, 3], \"d\": {\"b\": 1, \"a\": 2}}")), "ok");
  EXPECT_EQ(R("{% set x = 1 %}{% for i in [1,2] %}{{ x }}{% set x = 2 %}{{ x }}{% endfor %}{{ x }}", J("{\"xs\": [1, 2, 3], \"d\": {\"b\": 1, \"a\": 2}}")), "12121");
  EXPECT_EQ(R("{% for x in xs %}{{ loop.changed(x // 2) }}{% endfor %}", J("{\"xs\": [1, 2, 3], \"d\": {\"b\": 1, \"a\": 2}}")), "TrueTrueFalse");
  EXPECT_EQ(R("{% for i in range(3) %}{{ i }}{% endfor %}{% for i in range(1, 7, 2) %}{{ i }}{% endfor %}{{ range(5, 0, -2) | list }}", J("{\"xs\": [1, 2, 3], \"d\": {\"b\": 1, \"a\": 2}}")), "012135[5, 3, 1]");
}

TEST(JinjaGenerated, Scoping) {
  EXPECT_EQ(R("{% set ns = namespace(a=1, b='x') %}{% for i in [1,2,3] %}{% set ns.a = ns.a + i %}{% endfor %}{{ ns.a }}{{ ns.b }}", J("{}")), "7x");
  EXPECT_EQ(R("{% set a, b = 1, 2 %}{{ a }}{{ b }}", J("{}")), "12");
  EXPECT_EQ(R("{% set x %}inner {{ 1 + 1 }}{% endset %}[{{ x }}]", J("{}")), "[inner 2]");
  EXPECT_EQ(R("{% set x | upper %}abc{% endset %}{{ x }}", J("{}")), "ABC");
  EXPECT_EQ(R("{% if true %}{% set y = 5 %}{% endif %}{{ y }}", J("{}")), "5");
  EXPECT_EQ(R("{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}{{ a }}", J("{}")), "3");
  EXPECT_EQ(R("{% set ns = namespace() %}{% set ns.x = [1] %}{{ ns.x }}", J("{}")), "[1]");
  EXPECT_EQ(R("{% set ns = namespace({'k': 3}) %}{{ ns.k }}", J("{}")), "3");
  EXPECT_EQ(R("{% set t = (1, 2) %}{{ t }}{{ t[0] }}", J("{}")), "(1, 2)1");
  EXPECT_EQ(R("{{ namespace(a=1) }}", J("{}")), "<Namespace {'a': 1}>");
}

TEST(JinjaGenerated, Macros) {
  EXPECT_EQ(R("{% macro m(a, b='d', c=none) %}{{ a }}-{{ b }}-{{ c }}{% endmacro %}{{ m(1) }} {{ m(1, 2) }} {{ m(1, c=3) }}", J("{}")), "1-d-None 1-2-None 1-d-3");
  EXPECT_EQ(R("{% macro m(x) %}{{ x }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, k=4) }}", J("{}")), "1(2, 3){'k': 4}");
  EXPECT_EQ(R("{% macro m() %}[{{ caller() }}]{% endmacro %}{% call m() %}body{% endcall %}", J("{}")), "[body]");
  EXPECT_EQ(R("{% macro m(xs) %}{% for x in xs %}{{ caller(x) }}{% endfor %}{% endmacro %}{% call(v) m([1,2]) %}<{{ v }}>{% endcall %}", J("{}")), "<1><2>");
  EXPECT_EQ(R("{% set g = 'G' %}{% macro m() %}{{ g }}{% endmacro %}{{ m() }}", J("{}")), "G");
  EXPECT_EQ(R("{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(3) }}", J("{}")), "321");
  EXPECT_EQ(R("{% macro m(a) %}{{ a }}{% endmacro %}{{ m() }}|{{ m }}", J("{}")), "|<Macro 'm'>");
  EXPECT_EQ(R("{% macro m() %}  x  {% endmacro %}[{{ m() | trim }}]", J("{}")), "[x]");
}

TEST(JinjaGenerated, Blocks) {
  EXPECT_EQ(R("{% filter upper %}abc {{ 'd' }}{% endfilter %}", J("{}")), "ABC D");
  EXPECT_EQ(R("{% filter trim %}\n  x  \n{% endfilter %}|", J("{}")), "x|");
  EXPECT_EQ(R("{% generation %}gen {{ 1 }}{% endgeneration %}", J("{}")), "gen 1");
  EXPECT_EQ(R("{% filter replace('a', 'b') | upper %}aaa{% endfilter %}", J("{}")), "BBB");
}

TEST(JinjaGenerated, Expressions) {
  EXPECT_EQ(R("{{ 1 + 2 }} {{ 7 / 2 }} {{ 4 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 1.5 * 2 }}", J("{}")), "3 3.5 2.0 3 -4 1 2 1024 0.5 3.0");
  EXPECT_EQ(R("{{ 'a' ~ 1 ~ none ~ true }} {{ 'ab' * 3 }} {{ [1] + [2] }} {{ [1, 2] * 2 }}", J("{}")), "a1NoneTrue ababab [1, 2] [1, 2, 1, 2]");
  EXPECT_EQ(R("{{ 1.0 }} {{ 0.1 }} {{ 1e20 }} {{ 1.5e-7 }} {{ 100000000000000000.0 }} {{ 123456789.123 }} {{ 3.0 * 1.1 }} {{ 1/3 }}", J("{}")), "1.0 0.1 1e+20 1.5e-07 1e+17 123456789.123 3.3000000000000003 0.3333333333333333");
  EXPECT_EQ(R("{{ true }} {{ True }} {{ none }} {{ None }} {{ false }}", J("{}")), "True True None None False");
  EXPECT_EQ(R("{{ [1, 'a', none, true, 1.5, {'k': 'v'}, ('t',)] }}", J("{}")), "[1, 'a', None, True, 1.5, {'k': 'v'}, ('t',)]");
  EXPECT_EQ(R("{{ {'a': [1, 2], 'b': {'c': none}} }}", J("{}")), "{'a': [1, 2], 'b': {'c': None}}");
  EXPECT_EQ(R("{{ ['it\\'s', \"q\\\"q\", 'back\\\\slash', 'nl\\nx', 'tab\\t', 'uni 한국'] }}", J("{}")), "[\"it's\", 'q\"q', 'back\\\\slash', 'nl\\nx', 'tab\\t', 'uni 한국']");
  EXPECT_EQ(R("{{ 'x' if 1 > 2 else 'y' }} {{ 'z' if false }}|", J("{}")), "y |");
  EXPECT_EQ(R("{{ 1 < 2 < 3 }} {{ 1 < 3 < 2 }} {{ 2 == 2.0 }} {{ 'a' != 'b' }}", J("{}")), "True False True True");
  EXPECT_EQ(R("{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }}", J("{}")), "True True True True");
  EXPECT_EQ(R("{{ not true }} {{ true and 'x' }} {{ false or 'y' }} {{ 0 or [] or 'z' }} {{ none and 1 }}", J("{}")), "False x y z None");
  EXPECT_EQ(R("{{ -3 }} {{ +3 }} {{ -(2 + 3) }} {{ 2 + 3 * 4 }} {{ (2 + 3) * 4 }} {{ 2 ** 3 ** 2 }}", J("{}")), "-3 3 -5 14 20 64");
  EXPECT_EQ(R("{{ 'abc' 'def' }} {{ \"\\u00e9\\x41\\n\" | length }}", J("{}")), "abcdef 3");
  EXPECT_EQ(R("{{ 1_000 }} {{ 0x1F }} {{ 0b101 }} {{ 0o17 }} {{ 1_0.5 }}", J("{}")), "1000 31 5 15 10.5");
  EXPECT_EQ(R("{{ (1, 2) }} {{ () }} {{ (1,) }} {{ 1, 2 }}", J("{}")), "(1, 2) () (1,) (1, 2)");
  EXPECT_EQ(R("{{ true + 1 }} {{ true == 1 }} {{ 10 / 4 }} {{ 3 * 'ab' }}", J("{}")), "2 True 2.5 ababab");
  EXPECT_EQ(R("{{ 'abc' < 'abd' }} {{ [1, 2] < [1, 3] }} {{ 2.5 >= 2 }}", J("{}")), "True True True");
}

TEST(JinjaGenerated, Subscripts) {
  EXPECT_EQ(R("{{ s[0] }}{{ s[-1] }}{{ s[1:3] }}{{ s[::-1] }}{{ s[:2] }}{{ s[2:] }}{{ s[-3:-1] }}{{ s[::2] }}{{ s[10:] }}|", J("{\"s\": \"hello\", \"xs\": [1, 2, 3], \"d\": {\"a\": 1, \"b\": [2]}, \"u\": \"한국어\"}")), "hoelollehhellollhlo|");
  EXPECT_EQ(R("{{ xs[1:] }} {{ xs[:-1] }} {{ xs[::-1] }} {{ xs[-2] }} {{ xs[5] }}| {{ xs.0 }}", J("{\"s\": \"hello\", \"xs\": [1, 2, 3], \"d\": {\"a\": 1, \"b\": [2]}, \"u\": \"한국어\"}")), "[2, 3] [1, 2] [3, 2, 1] 2 | 1");
  EXPECT_EQ(R("{{ d.a }} {{ d['a'] }} {{ d.missing }}| {{ d.get('a') }} {{ d.get('zz', 'dflt') }} {{ d.get('zz') }}", J("{\"s\": \"hello\", \"xs\": [1, 2, 3], \"d\": {\"a\": 1, \"b\": [2]}, \"u\": \"한국어\"}")), "1 1 | 1 dflt None");
  EXPECT_EQ(R("{{ d.items() | list }} {{ d.keys() | list }} {{ d.values() | list }}", J("{\"s\": \"hello\", \"xs\": [1, 2, 3], \"d\": {\"a\": 1, \"b\": [2]}, \"u\": \"한국어\"}")), "[('a', 1), ('b', [2])] ['a', 'b'] [1, [2]]");
  EXPECT_EQ(R("{{ u[1:] }}{{ u[0] }}{{ u | length }}", J("{\"s\": \"hello\", \"xs\": [1, 2, 3], \"d\": {\"a\": 1, \"b\": [2]}, \"u\": \"한국어\"}")), "국어한3");
  EXPECT_EQ(R("{{ none.attr }}|{{ d.a.b }}|", J("{\"s\": \"hello\", \"xs\": [1, 2, 3], \"d\": {\"a\": 1, \"b\": [2]}, \"u\": \"한국어\"}")), "||");
}

TEST(JinjaGenerated, StringMethods) {
  EXPECT_EQ(R("{{ s.upper() }} {{ s.lower() }} {{ s.title() }} {{ s.capitalize() }} {{ s.swapcase() }}", J("{\"s\": \"hello World\", \"p\": \"  pad  \"}")), "HELLO WORLD hello world Hello World Hello world HELLO wORLD");
  EXPECT_EQ(R("{{ s.split() }} {{ s.split(' ', 1) }} {{ s.rsplit(' ', 1) }} {{ 'a,b,,c'.split(',') }} {{ '  x  y '.split() }}", J("{\"s\": \"hello World\", \"p\": \"  pad  \"}")), "['hello', 'World'] ['hello', 'World'] ['hello', 'World'] ['a', 'b', '', 'c'] ['x', 'y']");
  EXPECT_EQ(R("[{{ p.strip() }}][{{ p.lstrip() }}][{{ p.rstrip() }}][{{ 'xxaxx'.strip('x') }}]", J("{\"s\": \"hello World\", \"p\": \"  pad  \"}")), "[pad][pad  ][  pad][a]");
  EXPECT_EQ(R("{{ s.startswith('hello') }} {{ s.endswith('World') }} {{ s.startswith(('x', 'he')) }} {{ s.find('o') }} {{ s.rfind('o') }} {{ s.count('l') }}", J("{\"s\": \"hello World\", \"p\": \"  pad  \"}")), "True True True 4 7 3");
  EXPECT_EQ(R("{{ s.replace('l', 'L') }} {{ s.replace('l', 'L', 1) }} {{ '-'.join(['a', 'b']) }} {{ 'a{}b{}'.format(1, 'x') }} {{ '{0}{n}'.format('p', n='q') }}", J("{\"s\": \"hello World\", \"p\": \"  pad  \"}")), "heLLo WorLd heLlo World a-b a1bx pq");
  EXPECT_EQ(R("{{ '%s and %d' % ('x', 3) }} {{ '%05.2f' % 3.14159 }} {{ '%(a)s' % {'a': 1} }} {{ '%r' % 'q' }}", J("{\"s\": \"hello World\", \"p\": \"  pad  \"}")), "x and 3 03.14 1 'q'");
  EXPECT_EQ(R("{{ 'a\\nb\\r\\nc'.splitlines() }} {{ 'abc'.isalpha() }} {{ '123'.isdigit() }} {{ 'x'.center(5, '*') }} {{ '5'.zfill(3) }}", J("{\"s\": \"hello World\", \"p\": \"  pad  \"}")), "['a', 'b', 'c'] True True **x** 005");
  EXPECT_EQ(R("{{ 'ab'.ljust(4) }}| {{ 'ab'.rjust(4) }} {{ 'a=b=c'.partition('=') }} {{ 'prefix_x'.removeprefix('prefix_') }}", J("{\"s\": \"hello World\", \"p\": \"  pad  \"}")), "ab  |   ab ('a', '=', 'b=c') x");
  EXPECT_EQ(R("{{ \"they're bill's\".title() }} {{ 'hello world'.title() }}", J("{\"s\": \"hello World\", \"p\": \"  pad  \"}")), "They'Re Bill'S Hello World");
}

TEST(JinjaGenerated, Filters) {
  EXPECT_EQ(R("{{ xs | length }} {{ s | length }} {{ d | length }} {{ xs | count }} {{ undefined_var | length }}", J("{\"xs\": [1, 2, 3], \"s\": \"hello world\", \"d\": {\"b\": 1, \"a\": 2}, \"people\": [{\"name\": \"al\", \"age\": 30, \"admin\": true}, {\"name\": \"bob\", \"age\": 20}]}")), "3 11 2 3 0");
  EXPECT_EQ(R("{{ xs | first }} {{ xs | last }} {{ s | first }} {{ xs | join(', ') }} {{ xs | join }} {{ people | join(', ', attribute='name') }}", J("{\"xs\": [1, 2, 3], \"s\": \"hello world\", \"d\": {\"b\": 1, \"a\": 2}, \"people\": [{\"name\": \"al\", \"age\": 30, \"admin\": true}, {\"name\": \"bob\", \"age\": 20}]}")), "1 3 h 1, 2, 3 123 al, bob");
  EXPECT_EQ(R("{{ s | upper }} {{ s | lower }} {{ s | title }} {{ s | capitalize }} {{ '  x ' | trim }}| {{ 'xxyxx' | trim('x') }}", J("{\"xs\": [1, 2, 3], \"s\": \"hello world\", \"d\": {\"b\": 1, \"a\": 2}, \"people\": [{\"name\": \"al\", \"age\": 30, \"admin\": true}, {\"name\": \"bob\", \"age\": 20}]}")), "HELLO WORLD hello world Hello World Hello world x| y");
  EXPECT_EQ(R("{{ s | replace('o', '0') }} {{ s | replace('o', '0', 1) }} {{ s | reverse }} {{ xs | reverse | list }}", J("{\"xs\": [1, 2, 3], \"s\": \"hello world\", \"d\": {\"b\": 1, \"a\": 2}, \"people\": [{\"name\": \"al\", \"age\": 30, \"admin\": true}, {\"name\": \"bob\", \"age\": 20}]}")), "hell0 w0rld hell0 world dlrow olleh [3, 2, 1]");
  EXPECT_EQ(R("{{ undefined_var | default('dflt') }} {{ '' | default('e') }} {{ '' | default('e', true) }} {{ none | d('n', boolean=true) }} {{ 0 | default(5) }}", J("{\"xs\": [1, 2, 3], \"s\": \"hello world\", \"d\": {\"b\": 1, \"a\": 2}, \"people\": [{\"name\": \"al\", \"age\": 30, \"admin\": true}, {\"name\": \"bob\", \"age\": 20}]}")), "dflt  e n 0");
  EXPECT_EQ(R("{{ people | map(attribute='name') | list }} {{ xs | map('string') | list }} {{ ['a', 'b'] | map('upper') | join }}", J("{\"xs\": [1, 2, 3], \"s\": \"hello world\", \"d\": {\"b\": 1, \"a\": 2}, \"people\": [{\"name\": \"al\", \"age\": 30, \"admin\": true}, {\"name\": \"bob\", \"age\": 20}]}")), "['al', 'bob'] ['1', '2', '3'] AB");
  EXPECT_EQ(R("{{ people | selectattr('age', 'gt', 20) | map(attribute='name') | list }} {{ people | rejectattr('age', 'gt', 20) | list }}", J("{\"xs\": [1, 2, 3], \"s\": \"hello world\", \"d\": {\"b\": 1, \"a\": 2}, \"people\": [{\"name\": \"al\", \"age\": 30, \"admin\": true}, {\"name\": \"bob\", \"age\": 20}]}")), "['al'] [{'name': 'bob', 'age': 20}]");
  EXPECT_EQ(R("{{ xs | select('odd') | list }} {{ xs | reject('odd') | list }} {{ [0, 1, '', 'a'] | select | list }} {{ people | selectattr('admin') | list }}", J("{\"xs\": [1, 2, 3], \"s\": \"hello world\", \"d\": {\"b\": 1, \"a\": 2}, \"people\": [{\"name\": \"al\", \"age\": 30, \"admin\": true}, {\"name\": \"bob\", \"age\": 20}]}")), "[1, 3] [2] [1, 'a'] [{'name': 'al', 'age': 30, 'admin': True}]");
  EXPECT_EQ(R("{{ people | selectattr('name', 'equalto', 'bob') | list }} {{ people | selectattr('name', 'in', ['al']) | list | length }}", J("{\"xs\": [1, 2, 3], \"s\": \"hello world\", \"d\": {\"b\": 1, \"a\": 2}, \"people\": [{\"name\": \"al\", \"age\": 30, \"admin\": true}, {\"name\": \"bob\", \"age\": 20}]}")), "[{'name': 'bob', 'age': 20}] 1");
  EXPECT_EQ(R("{{ [3, 1, 2] | sort }} {{ [3, 1, 2] | sort(reverse=true) }} {{ ['b', 'A', 'c'] | sort }} {{ ['b', 'A', 'c'] | sort(case_sensitive=true) }} {{ people | sort(attribute='age') | map(attribute='name') | list }}", J("{\"xs\": [1, 2, 3], \"s\": \"hello world\", \"d\": {\"b\": 1, \"a\": 2}, \"people\": [{\"name\": \"al\", \"age\": 30, \"admin\": true}, {\"name\": \"bob\", \"age\": 20}]}")), "[1, 2, 3] [3, 2, 1] ['A', 'b', 'c'] ['A', 'b', 'c'] ['bob', 'al']");
  EXPECT_EQ(R("{{ d | dictsort }} {{ d | dictsort(by='value') }} {{ d | dictsort(reverse=true) }} {{ d | items | list }}", J("{\"xs\": [1, 2, 3], \"s\": \"hello world\", \"d\": {\"b\": 1, \"a\": 2}, \"people\": [{\"name\": \"al\", \"age\": 30, \"admin\": true}, {\"name\": \"bob\", \"age\": 20}]}")), "[('a', 2), ('b', 1)] [('b', 1), ('a', 2)] [('b', 1), ('a', 2)] [('b', 1), ('a', 2)]");
  EXPECT_EQ(R("{{ [1, 2, 1, 3] | unique | list }} {{ ['a', 'A', 'b'] | unique | list }} {{ [3, 1, 2] | min }} {{ [3, 1, 2] | max }} {{ people | max(attribute='age') }}", J("{\"xs\": [1, 2, 3], \"s\": \"hello world\", \"d\": {\"b\": 1, \"a\": 2}, \"people\": [{\"name\": \"al\", \"age\": 30, \"admin\": true}, {\"name\": \"bob\", \"age\": 20}]}")), "[1, 2, 3] ['a', 'b'] 1 3 {'name': 'al', 'age': 30, 'admin': True}");
  EXPECT_EQ(R("{{ [1, 2, 3] | sum }} {{ people | sum(attribute='age') }} {{ -3 | abs }} {{ 2.5 | round }} {{ 3.5 | round }} {{ 2.567 | round(2) }} {{ 2.1 | round(method='ceil') }} {{ 7 | round }}", J("{\"xs\": [1, 2, 3], \"s\": \"hello world\", \"d\": {\"b\": 1, \"a\": 2}, \"people\": [{\"name\": \"al\", \"age\": 30, \"admin\": true}, {\"name\": \"bob\", \"age\": 20}]}")), "6 50 3 2.0 4.0 2.57 3.0 7");
  EXPECT_EQ(R("{{ '42' | int }} {{ '4.7' | int }} {{ 'x' | int }} {{ 'x' | int(7) }} {{ 3.9 | int }} {{ '2.5' | float }} {{ 'x' | float }} {{ 3 | float }} {{ '0x1A' | int(base=16) }}", J("{\"xs\": [1, 2, 3], \"s\": \"hello world\", \"d\": {\"b\": 1, \"a\": 2}, \"people\": [{\"name\": \"al\", \"age\": 30, \"admin\": true}, {\"name\": \"bob\", \"age\": 20}]}")), "42 4 0 7 3 2.5 0.0 3.0 26");
  EXPECT_EQ(R("{{ 1 | string }} {{ [1] | string }} {{ none | string }} {{ 'abc' | list }} {{ d | list }} {{ (1, 2) | list }}", J("{\"xs\": [1, 2, 3], \"s\": \"hello world\", \"d\": {\"b\": 1, \"a\": 2}, \"people\": [{\"name\": \"al\", \"age\": 30, \"admin\": true}, {\"name\": \"bob\", \"age\": 20}]}")), "1 [1] None ['a', 'b', 'c'] ['b', 'a'] [1, 2]");
  EXPECT_EQ(R("{{ 'a\\nb\\n\\nc' | indent }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | indent(2, blank=true) }}|{{ 'x\\ny' | indent('> ') }}", J("{\"xs\": [1, 2, 3], \"s\": \"hello world\", \"d\": {\"b\": 1, \"a\": 2}, \"people\": [{\"name\": \"al\", \"age\": 30, \"admin\": true}, {\"name\": \"bob\", \"age\": 20}]}")), "a\n    b\n\n    c|  a\n  b|a\n  \n  b|x\n> y");
  EXPECT_EQ(R("{{ '<a href=\"x\">&\\'' | e }} {{ '<b>' | escape }} {{ '<i>' | safe }} {{ ('<x>' | safe) + '<y>' }} {{ '<y>' + ('<x>' | safe) }}", J("{\"xs\": [1, 2, 3], \"s\": \"hello world\", \"d\": {\"b\": 1, \"a\": 2}, \"people\": [{\"name\": \"al\", \"age\": 30, \"admin\": true}, {\"name\": \"bob\", \"age\": 20}]}")), "&lt;a href=&#34;x&#34;&gt;&amp;&#39; &lt;b&gt; <i> <x>&lt;y&gt; &lt;y&gt;<x>");
  EXPECT_EQ(R("{{ xs | tojson }} {{ d | tojson }} {{ s | tojson }} {{ none | tojson }} {{ 1.0 | tojson }} {{ {'k': [1, {'z': true}]} | tojson(indent=2) }}", J("{\"xs\": [1, 2, 3], \"s\": \"hello world\", \"d\": {\"b\": 1, \"a\": 2}, \"people\": [{\"name\": \"al\", \"age\": 30, \"admin\": true}, {\"name\": \"bob\", \"age\": 20}]}")), "[1, 2, 3] {\"b\": 1, \"a\": 2} \"hello world\" null 1.0 {\n  \"k\": [\n    1,\n    {\n      \"z\": true\n    }\n  ]\n}");
  EXPECT_EQ(R("{{ '한국 \"q\" \\n' | tojson }} {{ '한국' | tojson(ensure_ascii=true) }} {{ d | tojson(sort_keys=true) }} {{ d | tojson(separators=(',', ':')) }}", J("{\"xs\": [1, 2, 3], \"s\": \"hello world\", \"d\": {\"b\": 1, \"a\": 2}, \"people\": [{\"name\": \"al\", \"age\": 30, \"admin\": true}, {\"name\": \"bob\", \"age\": 20}]}")), "\"한국 \\\"q\\\" \\n\" \"\\ud55c\\uad6d\" {\"a\": 2, \"b\": 1} {\"b\":1,\"a\":2}");
  EXPECT_EQ(R("{{ [] | tojson(indent=2) }} {{ {} | tojson(indent=2) }} {{ [[]] | tojson(indent=1) }}", J("{\"xs\": [1, 2, 3], \"s\": \"hello world\", \"d\": {\"b\": 1, \"a\": 2}, \"people\": [{\"name\": \"al\", \"age\": 30, \"admin\": true}, {\"name\": \"bob\", \"age\": 20}]}")), "[] {} [\n []\n]");
  EXPECT_EQ(R("{{ 'hello world foo' | truncate(9) }} {{ 'hello world foo bar baz qux' | truncate(12, true) }} {{ 'a b c' | wordcount }} {{ 'x' | center(5) }}|", J("{\"xs\": [1, 2, 3], \"s\": \"hello world\", \"d\": {\"b\": 1, \"a\": 2}, \"people\": [{\"name\": \"al\", \"age\": 30, \"admin\": true}, {\"name\": \"bob\", \"age\": 20}]}")), "hello... hello wor... 3   x  |");
  EXPECT_EQ(R("{{ xs | batch(2) | list }} {{ xs | batch(2, 0) | list }} {{ [1,2,3,4,5] | slice(2) | list }}", J("{\"xs\": [1, 2, 3], \"s\": \"hello world\", \"d\": {\"b\": 1, \"a\": 2}, \"people\": [{\"name\": \"al\", \"age\": 30, \"admin\": true}, {\"name\": \"bob\", \"age\": 20}]}")), "[[1, 2], [3]] [[1, 2], [3, 0]] [[1, 2, 3], [4, 5]]");
  EXPECT_EQ(R("{{ people | groupby('age') | list }} {% for k, g in people | groupby('name') %}{{ k }}:{{ g | length }};{% endfor %}", J("{\"xs\": [1, 2, 3], \"s\": \"hello world\", \"d\": {\"b\": 1, \"a\": 2}, \"people\": [{\"name\": \"al\", \"age\": 30, \"admin\": true}, {\"name\": \"bob\", \"age\": 20}]}")), "[(20, [{'name': 'bob', 'age': 20}]), (30, [{'name': 'al', 'age': 30, 'admin': True}])] al:1;bob:1;");
  EXPECT_EQ(R("{{ '%s-%s' | format(1, 2) }} {{ d | attr('a') }}|{{ d | attr('items') is callable }}", J("{\"xs\": [1, 2, 3], \"s\": \"hello world\", \"d\": {\"b\": 1, \"a\": 2}, \"people\": [{\"name\": \"al\", \"age\": 30, \"admin\": true}, {\"name\": \"bob\", \"age\": 20}]}")), "1-2 |True");
}

TEST(JinjaGenerated, Tests) {
  EXPECT_EQ(R("{{ x is defined }} {{ y is defined }} {{ y is undefined }} {{ x is not none }} {{ n is none }}", J("{\"x\": 1, \"n\": null, \"d\": {\"a\": 1}, \"xs\": [1]}")), "True False True True True");
  EXPECT_EQ(R("{{ 'a' is string }} {{ 1 is string }} {{ 1 is number }} {{ 1.5 is number }} {{ true is number }} {{ 1 is integer }} {{ true is integer }} {{ 1.0 is float }} {{ 1 is float }}", J("{\"x\": 1, \"n\": null, \"d\": {\"a\": 1}, \"xs\": [1]}")), "True False True True True True False True False");
  EXPECT_EQ(R("{{ d is mapping }} {{ xs is mapping }} {{ xs is iterable }} {{ 'a' is iterable }} {{ 1 is iterable }} {{ d is sequence }} {{ xs is sequence }} {{ 1 is sequence }}", J("{\"x\": 1, \"n\": null, \"d\": {\"a\": 1}, \"xs\": [1]}")), "True False True True False True True False");
  EXPECT_EQ(R("{{ true is boolean }} {{ 1 is boolean }} {{ true is true }} {{ false is false }} {{ 1 is true }} {{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(4) }}", J("{\"x\": 1, \"n\": null, \"d\": {\"a\": 1}, \"xs\": [1]}")), "True False True True False True True True False");
  EXPECT_EQ(R("{{ 1 is eq 1 }} {{ 1 is equalto 2 }} {{ 1 is ne 2 }} {{ 1 is lt 2 }} {{ 1 is gt 2 }} {{ 2 is ge 2 }} {{ 2 is le 1 }} {{ 2 is in [1, 2] }} {{ none is sameas none }}", J("{\"x\": 1, \"n\": null, \"d\": {\"a\": 1}, \"xs\": [1]}")), "True False True True False True False True True");
  EXPECT_EQ(R("{{ 'abc' is lower }} {{ 'ABC' is upper }} {{ range is callable }} {{ 'upper' is filter }} {{ 'odd' is test }} {{ y is not defined and x is defined }}", J("{\"x\": 1, \"n\": null, \"d\": {\"a\": 1}, \"xs\": [1]}")), "True True True True True True");
}

TEST(JinjaGenerated, Errors) {
  expect_error("{{ x.y }}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "UndefinedError", "'x' is undefined");
  expect_error("{{ d.a.b.c }}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "UndefinedError", "'dict object' has no attribute 'b'");
  expect_error("{{ 'a' + 1 }}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "TypeError", "can only concatenate str (not \"int\") to str");
  expect_error("{{ 1 + 'a' }}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "TypeError", "unsupported operand type(s) for +: 'int' and 'str'");
  expect_error("{{ [1] + 'a' }}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "TypeError", "can only concatenate list (not \"str\") to list");
  expect_error("{% set xs = [] %}{{ xs.append(1) }}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "SecurityError", "access to attribute 'append' of 'list' object is unsafe.");
  expect_error("{{ raise_exception('custom message') }}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "TemplateError", "custom message");
  expect_error("{{ 1 / 0 }}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "ZeroDivisionError", "division by zero");
  expect_error("{% for %}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "TemplateSyntaxError", "Expected an expression, got 'end of statement block'");
  expect_error("{% if x %}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "TemplateSyntaxError", "Unexpected end of template. Jinja was looking for the following tags: 'elif' or 'else' or 'endif'. The innermost block that needs to be closed is 'if'.");
  expect_error("{{ x", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "TemplateSyntaxError", "unexpected end of template, expected 'end of print statement'.");
  expect_error("{% foo %}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "TemplateSyntaxError", "Encountered unknown tag 'foo'.");
  expect_error("{{ 1 + }}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "TemplateSyntaxError", "unexpected 'end of print statement'");
  expect_error("{{ none | tojson(indent=2) }}{{ xs | map('upper') | tojson }}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "TypeError", "Object of type generator is not JSON serializable");
  EXPECT_EQ(R("{{ y | selectattr('x') | list | length }}", J("{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}")), "0");
  expect_error("{{ 'a' < 1 }}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "TypeError", "'<' not supported between instances of 'str' and 'int'");
  expect_error("{{ xs | length }}{{ xs | map('upper') | length }}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "TypeError", "object of type 'generator' has no len()");
  expect_error("{% set a, b = [1] %}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "ValueError", "not enough values to unpack (expected 2, got 1)");
  expect_error("{{ nofilter | nosuchfilter }}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "TemplateAssertionError", "No filter named 'nosuchfilter'.");
  expect_error("{{ {}.pop('a') }}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "SecurityError", "access to attribute 'pop' of 'dict' object is unsafe.");
  expect_error("{% macro m(x) %}{{ x }}{% endmacro %}{{ m(1, 2) }}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "TypeError", "macro 'm' takes not more than 1 argument(s)");
  expect_error("{% macro m(x) %}{{ x }}{% endmacro %}{{ m(1, y=2) }}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "TypeError", "macro 'm' takes no keyword argument 'y'");
  expect_error("{% macro m() %}x{% endmacro %}{% call m() %}y{% endcall %}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "TypeError", "macro 'm' was invoked with two values for the special caller argument. This is most likely a bug.");
  expect_error("{{ x() }}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "UndefinedError", "'x' is undefined");
  expect_error("{{ 'abc'() }}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "TypeError", "'str' object is not callable");
  expect_error("{% set ns = 1 %}{% set ns.a = 2 %}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "TemplateRuntimeError", "cannot assign attribute on non-namespace object");
  expect_error("line1\n{{ 1 }}\n  {{ d.a.b.c }}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "UndefinedError", "'dict object' has no attribute 'b'");
  expect_error("{{ x | fromjson }}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "TemplateAssertionError", "No filter named 'fromjson'.");
  expect_error("{{ 1 is nosuchtest }}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "TemplateAssertionError", "No test named 'nosuchtest'.");
  expect_error("{{ d[::-1] }}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "TypeError", "unhashable type: 'slice'");
  expect_error("{{ n[1:] }}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "UndefinedError", "'n' is undefined");
  expect_error("{{ missing | int }}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "UndefinedError", "'missing' is undefined");
  expect_error("{{ (1, 2) | indent }}", "{\"d\": {\"a\": {}}, \"xs\": [\"a\"]}", "TypeError", "can only concatenate tuple (not \"str\") to tuple");
}

TEST(JinjaGenerated, Conformance) {
  EXPECT_EQ(R("{% if false %}{{ x | fromjson }}{% endif %}{{ x | fromjson if false else 'ok' }}", J("{\"xs\": [1, 2], \"n\": 5}")), "ok");
  EXPECT_EQ(R("{{ '' is lower }} {{ 'a1' is lower }} {{ 'A' is lower }} {{ 0.5 is odd }} {{ 2.0 is even }}", J("{\"xs\": [1, 2], \"n\": 5}")), "False True False False True");
  EXPECT_EQ(R("{{ 'abc' % [] }} {{ '%s' % [1, 2] }} {{ '%s!' % missing }}|{{ missing is callable }} {{ xs | truncate(5) }} {{ 'x' ~ missing ~ 'y' }}", J("{\"xs\": [1, 2], \"n\": 5}")), "abc [1, 2] !|True [1, 2] xy");
}

TEST(JinjaGenerated, Chat) {
  EXPECT_EQ(R("{{ strftime_now('%Y-%m-%d %H:%M') }} {{ strftime_now('%d %b %Y') }} {{ strftime_now('%A') }}", J("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}], \"add_generation_prompt\": true}")), "2026-01-15 09:30 15 Jan 2026 Thursday");
  EXPECT_EQ(R("{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% if not loop.last %}\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}", J("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}], \"add_generation_prompt\": true}")), "<|user|>hi<|assistant|>yo<|assistant|>");
}

}  // namespace
