// Tests for JsonConstraint: hand-written valid / invalid documents per schema feature, every prefix
// of valid documents accepted, mutated documents accepted only if nlohmann::json parses them, and
// constrained generation over a real vocabulary with random logits always ending in a value that
// nlohmann parses and that satisfies the schema (checked field by field here).
#include "modu/runtime/json_constraint.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "modu/gguf/gguf.h"

namespace modu {
namespace {

using nlohmann::json;

JsonConstraint compile(const std::string& schema) {
  auto c = JsonConstraint::from_schema(json::parse(schema));
  EXPECT_TRUE(c.ok()) << schema << ": " << c.status().to_string();
  return c.ok() ? std::move(c).value() : JsonConstraint::any_object();
}

// Feeds `text` one byte at a time; returns how many bytes were accepted.
size_t feed(JsonConstraint& c, const std::string& text) {
  for (size_t i = 0; i < text.size(); ++i)
    if (!c.accept(text.substr(i, 1))) return i;
  return text.size();
}

void expect_valid(const std::string& schema, const std::string& text) {
  JsonConstraint c = compile(schema);
  EXPECT_EQ(feed(c, text), text.size()) << schema << " rejected " << text;
  EXPECT_TRUE(c.can_end()) << schema << " cannot end after " << text;
  JsonConstraint whole = compile(schema);
  EXPECT_TRUE(whole.accept(text)) << "as one piece: " << text;
}

void expect_invalid(const std::string& schema, const std::string& text) {
  JsonConstraint c = compile(schema);
  const size_t n = feed(c, text);
  EXPECT_TRUE(n < text.size() || !c.can_end()) << schema << " accepted " << text;
}

TEST(JsonConstraint, AnyObject) {
  const std::string any = R"({"type":"object"})";
  for (const char* ok : {R"({})", R"({"a":1})", R"( {"a" : [1, 2.5e-3, -0, true, false, null, "x\"\u00e9y"], "b":{}} )",
                         "{\"k\":\"한국어\"}", R"({"a":{"b":{"c":[[],[{}]]}}})"})
    expect_valid(any, ok);
  for (const char* bad : {"{\"a\":\"\xC3\"}", "{\"a\":\"\xE0\x80\x80\"}", "{\"a\":\"\xED\xA0\x80\"}", "{\"a\":\"\xFF\"}",
                          R"([])", R"("x")", R"({"a"})", R"({"a":})", R"({"a":1,})", R"({"a":01})", R"({"a":1.})",
                          R"({"a":tru})", R"({a:1})", "{\"a\":\"\x01\"}", R"({"a":"\x"})", R"({"a":1}})", R"({"a":-})"})
    expect_invalid(any, bad);
  JsonConstraint c = JsonConstraint::any_object();
  EXPECT_TRUE(c.accept("{\"x\": [1, {\"y\": null}]}"));
  EXPECT_TRUE(c.done());
}

TEST(JsonConstraint, ObjectProperties) {
  const std::string s = R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},
    "tags":{"type":"array","items":{"type":"string"},"maxItems":2}},"required":["name","age"]})";
  expect_valid(s, R"({"name":"Kim","age":30})");
  expect_valid(s, R"({"age":30,"name":"Kim","tags":["a","b"]})");
  expect_invalid(s, R"({"name":"Kim"})");               // missing required
  expect_invalid(s, R"({"name":"Kim","age":30.5})");    // integer
  expect_invalid(s, R"({"name":"Kim","age":30,"x":1})");  // no additional properties
  expect_invalid(s, R"({"name":"Kim","name":"Lee","age":1})");  // duplicate key
  expect_invalid(s, R"({"name":"Kim","age":1,"tags":["a","b","c"]})");  // maxItems
  expect_invalid(s, R"({"name":1,"age":1})");
  // additionalProperties with a schema.
  const std::string add = R"({"type":"object","properties":{"a":{"type":"boolean"}},"additionalProperties":{"type":"null"}})";
  expect_valid(add, R"({"a":true,"zz":null})");
  expect_invalid(add, R"({"zz":1})");
}

TEST(JsonConstraint, EnumsConstAndAnyOf) {
  expect_valid(R"({"enum":["red","green",1,12,null]})", R"("green")");
  expect_valid(R"({"enum":["red","green",1,12,null]})", "12");
  expect_valid(R"({"enum":["red","green",1,12,null]})", "1");
  expect_invalid(R"({"enum":["red","green",1,12,null]})", R"("blue")");
  expect_invalid(R"({"enum":["red","green",1,12,null]})", "13");
  expect_valid(R"({"const":{"a":[1]}})", R"({"a":[1]})");
  const std::string opt = R"({"anyOf":[{"type":"string","maxLength":3},{"type":"null"}]})";
  expect_valid(opt, "null");
  expect_valid(opt, R"("abc")");
  expect_invalid(opt, R"("abcd")");
  expect_invalid(opt, "1");
  expect_valid(R"({"type":["integer","boolean"]})", "-7");
  expect_valid(R"({"type":"number"})", "-0.5E+10");
  expect_valid(R"({"type":"number"})", "9.5e-99");
  expect_invalid(R"({"type":"number"})", "1e999");  // would overflow a double
  expect_invalid(R"({"type":"string","minLength":2})", R"("a")");
  expect_valid(R"({"type":"string","maxLength":2})", R"("a\n")");
  expect_valid(R"({"type":"string","maxLength":2})", "\"\xED\x95\x9C\\u00e9\"");
  expect_invalid(R"({"type":"string","maxLength":2})", R"("ab\n")");
  expect_invalid(R"({"type":"string"})", R"("\ud800")");
  expect_invalid(R"({"type":"string"})", R"("\uDFFF")");
  expect_valid(R"({"type":"string"})", R"("\ud7ff\u0041")");
}

TEST(JsonConstraint, DiscriminatedUnionOfObjects) {
  const std::string s = R"({"anyOf":[
    {"type":"object","properties":{"name":{"const":"get_weather"},"arguments":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}},"required":["name","arguments"],"additionalProperties":false},
    {"type":"object","properties":{"name":{"const":"now"},"arguments":{"type":"object","properties":{"tz":{"enum":["KST","UTC"]}},"additionalProperties":false}},"required":["name","arguments"],"additionalProperties":false}]})";
  expect_valid(s, R"({"name":"get_weather","arguments":{"city":"Seoul"}})");
  expect_valid(s, R"({"name":"now","arguments":{"tz":"KST"}})");
  expect_valid(s, R"({"name":"now","arguments":{}})");
  expect_invalid(s, R"({"name":"now","arguments":{"city":"Seoul"}})");   // the other alternative's field
  expect_invalid(s, R"({"name":"get_weather","arguments":{}})");         // its required field
  expect_invalid(s, R"({"arguments":{},"name":"now"})");                 // the discriminator comes first
  expect_invalid(s, R"({"name":"later","arguments":{}})");
  expect_invalid(s, R"({"name":"now"})");
  // Alternatives without a distinguishing const are still refused.
  auto c = JsonConstraint::from_schema(nlohmann::json::parse(R"({"anyOf":[{"type":"object"},{"type":"object"}]})"));
  EXPECT_FALSE(c.ok());
}

TEST(JsonConstraint, RefsIncludingRecursion) {
  const std::string tree = R"({"$ref":"#/$defs/node","$defs":{"node":{"type":"object",
    "properties":{"v":{"type":"integer"},"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["v"]}}})";
  expect_valid(tree, R"({"v":1,"kids":[{"v":2},{"v":3,"kids":[{"v":4,"kids":[]}]}]})");
  expect_invalid(tree, R"({"v":1,"kids":[{"w":2}]})");
}

TEST(JsonConstraint, UnsupportedSchemasAreClearErrors) {
  for (const char* s : {R"({"type":"string","pattern":"^a"})", R"({"allOf":[{"type":"string"}]})",
                        R"({"$ref":"http://x/y"})", R"({"$ref":"#/$defs/missing"})", R"({"type":"bogus"})",
                        R"({"anyOf":[{"type":"string"},{"type":"string","maxLength":2}]})", R"(false)", R"(3)",
                        R"({"type":"object","required":["x"]})", R"({"items":[{"type":"string"}]})"}) {
    auto c = JsonConstraint::from_schema(json::parse(s));
    ASSERT_FALSE(c.ok()) << s;
    EXPECT_NE(c.status().message().find("json_schema"), std::string::npos) << c.status().message();
  }
  json deep = {{"type", "string"}};
  for (int i = 0; i < 500; ++i) deep = {{"type", "array"}, {"items", deep}};
  auto d = JsonConstraint::from_schema(deep);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("nested"), std::string::npos) << d.status().message();
  auto c = JsonConstraint::from_schema(json::parse(R"({"type":"object","properties":{"a":{"pattern":"x"}}})"));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("/properties/a"), std::string::npos) << c.status().message();
}

TEST(JsonConstraint, PrefixesAcceptedMutationsSound) {
  std::mt19937 rng(5);
  const char* docs[] = {R"({"a":[1,2,{"b":"c\\n\"d"}],"e":-1.5e3,"f":true,"g":null,"h":"밥"})", R"({})",
                        R"({ "x" : { "y" : [ ] , "z" : "w" } })"};
  for (const char* d : docs) {
    const std::string doc = d;
    JsonConstraint c = JsonConstraint::any_object();
    ASSERT_EQ(feed(c, doc), doc.size()) << doc;
    EXPECT_TRUE(c.done());
    for (int m = 0; m < 3000; ++m) {
      std::string t = doc;
      const size_t at = rng() % t.size();
      switch (rng() % 3) {
        case 0: t[at] = (char)(rng() % 128); break;
        case 1: t.erase(at, 1); break;
        default: t.insert(at, 1, "{}[]\",:0-.e\\ atn"[rng() % 17]); break;
      }
      JsonConstraint k = JsonConstraint::any_object();
      if (feed(k, t) == t.size() && k.done()) {
        EXPECT_TRUE(json::accept(t)) << "accepted invalid JSON: " << t;
      }
    }
  }
}

TEST(JsonConstraint, LiteralPrefixComesFirst) {
  const JsonConstraint base = compile(R"({"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]})");
  JsonConstraint c = base.with_prefix("<tool_call>\n");
  EXPECT_FALSE(c.allows("{"));
  EXPECT_FALSE(c.allows("<tool_cal>"));
  EXPECT_FALSE(c.can_end());
  EXPECT_TRUE(c.accept("<tool_"));
  EXPECT_FALSE(c.in_free_string());
  EXPECT_TRUE(c.accept("call>\n{\"a\": 7}"));
  EXPECT_TRUE(c.done());
  JsonConstraint whole = base.with_prefix("[TOOL_CALLS]");
  EXPECT_TRUE(whole.accept("[TOOL_CALLS]{\"a\":1}"));
  EXPECT_TRUE(whole.done());
}

TEST(JsonConstraint, OneOfPrefixedAlternatives) {
  // A forced XML-style call: the function name is literal text, each name with its own schema.
  const JsonConstraint a = compile(R"({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]})");
  const JsonConstraint b = compile(R"({"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]})");
  const JsonConstraint both = JsonConstraint::one_of({a.with_prefix("<function=get>\n"), b.with_prefix("<function=get_all>\n")});
  JsonConstraint c = both;
  EXPECT_TRUE(c.accept("<function=get"));
  EXPECT_TRUE(c.allows(">"));
  EXPECT_TRUE(c.allows("_"));
  EXPECT_FALSE(c.allows("x"));
  EXPECT_FALSE(c.can_end());
  EXPECT_FALSE(c.in_free_string());
  JsonConstraint first = c, second = c;
  EXPECT_TRUE(first.accept(">\n{\"city\": \"Seoul\"}"));
  EXPECT_TRUE(first.done());
  EXPECT_TRUE(second.accept("_all>\n{"));
  EXPECT_FALSE(second.allows("\"city"));  // the other alternative's schema is gone
  EXPECT_TRUE(second.accept("\"n\": 3}"));
  EXPECT_TRUE(second.done());
  // Byte by byte over every prefix of both documents.
  for (const std::string doc : {"<function=get>\n{\"city\":\"x\"}", "<function=get_all>\n{\"n\":12}"}) {
    JsonConstraint d = both;
    EXPECT_EQ(feed(d, doc), doc.size()) << doc;
    EXPECT_TRUE(d.done()) << doc;
  }
  JsonConstraint wrong = both;
  EXPECT_FALSE(wrong.accept("<function=get>\n{\"n\""));
  EXPECT_TRUE(wrong.accept("<function=get>"));  // a failed accept left the state unchanged
}

TEST(JsonConstraint, DeepNestingAndWhitespaceAreBounded) {
  JsonConstraint c = JsonConstraint::any_object();
  EXPECT_FALSE(c.accept(std::string(40, '[')));  // the root must be an object anyway
  EXPECT_TRUE(c.accept("{\"a\":" + std::string(JsonConstraint::kMaxDepth - 1, '[')));
  EXPECT_FALSE(c.accept("["));
  JsonConstraint w = JsonConstraint::any_object();
  EXPECT_TRUE(w.accept(" "));
  EXPECT_FALSE(w.allows(" "));   // one space, or a newline and indentation
  EXPECT_FALSE(w.allows("\n"));
  EXPECT_TRUE(w.accept("{"));
  EXPECT_TRUE(w.accept("\n" + std::string(JsonConstraint::kMaxIndent, ' ')));
  EXPECT_FALSE(w.allows(" "));
  EXPECT_FALSE(w.allows("\n"));
  EXPECT_FALSE(w.allows("\r"));
  EXPECT_TRUE(w.accept("\"a\":\n\t1 }"));
  JsonConstraint d = compile(R"({"type":"number"})");
  EXPECT_TRUE(d.accept(std::string(JsonConstraint::kMaxDigits, '9')));
  EXPECT_FALSE(d.accept("9"));
  EXPECT_FALSE(d.accept("."));  // no digit could follow
  EXPECT_TRUE(d.can_end());
  JsonConstraint i = compile(R"({"type":"integer"})");
  EXPECT_TRUE(i.accept(std::string(18, '9')));
  EXPECT_FALSE(i.accept("9"));
}

// Constrained generation with random logits over a real byte-level BPE vocabulary: whatever the
// "model" prefers, the text parses and satisfies the schema.
TEST(JsonConstraint, RandomLogitGenerationMatchesSchema) {
  auto f = GgufFile::open(std::string(MODU_SHARED_DIR) + "/testdata/vocab/ggml-vocab-gpt-2.gguf");
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  auto tok = Tokenizer::from_gguf(*f);
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  const TokenPieces pieces(**tok);
  const std::string schema = R"({"type":"object","properties":{
    "city":{"type":"string","maxLength":6},"ok":{"type":"boolean"},"n":{"type":"integer"},
    "color":{"enum":["red","green","blue"]},"xs":{"type":"array","items":{"type":"number"},"maxItems":3}},
    "required":["city","ok","color"]})";
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0, 3);
  std::vector<float> logits((size_t)pieces.n_vocab());
  for (int run = 0; run < 20; ++run) {
    JsonConstraint c = compile(schema);
    std::string text;
    for (int step = 0; step < 2000 && !c.done(); ++step) {
      for (auto& l : logits) l = nd(rng);
      ASSERT_GT(json_mask_logits(c, pieces, logits.data()), 0) << "no token allowed after: " << json(text).dump();
      const int32_t id = (int32_t)(std::max_element(logits.begin(), logits.end()) - logits.begin());
      ASSERT_TRUE(json_token_allowed(c, pieces, id));
      if (pieces.is_eog(id)) break;
      ASSERT_TRUE(c.accept(pieces.piece(id))) << text << " + " << pieces.piece(id);
      text += pieces.piece(id);
    }
    ASSERT_TRUE(c.done()) << "run " << run << " did not finish: " << text;
    json v;
    ASSERT_NO_THROW(v = json::parse(text)) << text;
    ASSERT_TRUE(v.is_object()) << text;
    ASSERT_TRUE(v.contains("city") && v["city"].is_string()) << text;
    EXPECT_LE(v["city"].get<std::string>().size(), 6u * 4) << text;  // <= 6 code points
    ASSERT_TRUE(v.contains("ok") && v["ok"].is_boolean()) << text;
    ASSERT_TRUE(v.contains("color")) << text;
    EXPECT_TRUE(v["color"] == "red" || v["color"] == "green" || v["color"] == "blue") << text;
    if (v.contains("n")) {
      EXPECT_TRUE(v["n"].is_number_integer()) << text;
    }
    if (v.contains("xs")) {
      ASSERT_TRUE(v["xs"].is_array()) << text;
      EXPECT_LE(v["xs"].size(), 3u) << text;
    }
    for (const auto& [k, _] : v.items())
      EXPECT_TRUE(k == "city" || k == "ok" || k == "n" || k == "color" || k == "xs") << text;
  }
}

}  // namespace
}  // namespace modu
