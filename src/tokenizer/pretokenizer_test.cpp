// Pre-tokenizer tests: every known tokenizer.ggml.pre name builds, every regex compiles, and each
// upstream pre-type splits sample text the way its regexes say (digit grouping, CJK, contractions).
#include <gtest/gtest.h>

#include "pretokenizer.h"
#include "pretokenizer_regexes.h"

namespace modu::tok {
namespace {

std::vector<std::string> split(std::string_view pre, std::string_view text) {
  auto p = PreTokenizer::create(pre);
  EXPECT_TRUE(p.ok()) << pre << ": " << p.status().to_string();
  if (!p.ok()) return {};
  return p->split(text);
}

using Words = std::vector<std::string>;

TEST(PreTokenizer, EveryKnownNameBuildsAndSplitsLosslessly) {
  const std::string sample = "Hello, y'all! 안녕하세요 123456789 naïve 東京タワー\n\n  end 3.14 ";
  const auto names = PreTokenizer::known_names();
  EXPECT_GE(names.size(), 28u);
  for (const std::string& name : names) {
    const Words words = split(name, sample);
    std::string joined;
    for (const auto& w : words) {
      EXPECT_FALSE(w.empty()) << name;
      joined += w;
    }
    EXPECT_EQ(joined, sample) << name;
    EXPECT_GT(words.size(), 5u) << name;
  }
}

TEST(PreTokenizer, RequiredNamesAreKnown) {
  const auto names = PreTokenizer::known_names();
  for (const char* n : {"default", "llama3", "llama-bpe", "qwen2", "qwen35", "deepseek-llm", "deepseek-coder",
                        "deepseek-v3", "gpt-2", "gpt-4o", "falcon", "starcoder", "refact", "mpt", "command-r",
                        "stablelm2", "olmo", "smollm", "tekken", "superbpe", "trillion", "exaone", "exaone4",
                        "exaone-moe", "a.x-4.0", "kanana2", "midm-2.0", "kormo", "solar-open"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  }
}

TEST(PreTokenizer, EveryTypeRegexCompiles) {
  for (const auto& type : pre_type_table()) {
    std::vector<std::string> regexes(type.regexes.begin(), type.regexes.end());
    auto p = PreTokenizer::from_regexes(regexes);
    EXPECT_TRUE(p.ok()) << type.type << ": " << p.status().to_string();
  }
}

TEST(PreTokenizer, UnknownNameListsKnownOnes) {
  auto p = PreTokenizer::create("no-such-pre");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("no-such-pre"), std::string::npos);
  EXPECT_NE(p.status().message().find("llama-bpe"), std::string::npos);
  EXPECT_TRUE(PreTokenizer::create("").ok());  // absent pre = default
}

TEST(PreTokenizer, Gpt2) {
  EXPECT_EQ(split("gpt-2", "Hello world's  end 12345!!"),
            (Words{"Hello", " world", "'s", " ", " end", " 12345", "!!"}));
  EXPECT_EQ(split("gpt-2", "a  \n"), (Words{"a", "  \n"}));
}

TEST(PreTokenizer, Llama3GroupsDigitsByThree) {
  EXPECT_EQ(split("llama-bpe", "1234567 I'M ok\n\n x"),
            (Words{"123", "456", "7", " I", "'M", " ok", "\n\n", " x"}));
  EXPECT_EQ(split("midm-2.0", "안녕 2030년"), (Words{"안녕", " ", "203", "0", "년"}));
}

TEST(PreTokenizer, Qwen2SingleDigits) {
  EXPECT_EQ(split("qwen2", "x 2030년!"), (Words{"x", " ", "2", "0", "3", "0", "년", "!"}));
  EXPECT_EQ(split("kormo", "12"), (Words{"1", "2"}));
  EXPECT_EQ(split("solar-open", "'S 3"), (Words{"'S", " ", "3"}));
}

TEST(PreTokenizer, Qwen35KeepsCombiningMarks) {
  // "e" + U+0301 stays one word in qwen35, splits in qwen2.
  EXPECT_EQ(split("qwen35", "cafe\xcc\x81 x"), (Words{"cafe\xcc\x81", " x"}));
  EXPECT_EQ(split("qwen2", "cafe\xcc\x81 x"), (Words{"cafe", "\xcc\x81", " x"}));
}

TEST(PreTokenizer, DeepseekCoderSplitsHangulAndDigits) {
  EXPECT_EQ(split("deepseek-coder", "GPU 20만\n"), (Words{"GPU", " ", "2", "0", "만", "\n"}));
  EXPECT_EQ(split("deepseek-coder", " 안녕!"), (Words{" ", "안녕", "!"}));
}

TEST(PreTokenizer, DeepseekLlm) {
  EXPECT_EQ(split("deepseek-llm", "Hello 世界 123\n"), (Words{"Hello", " ", "世界", " ", "123", "\n"}));
}

TEST(PreTokenizer, DeepseekV3) {
  EXPECT_EQ(split("deepseek-v3", "1234 東京 .net ok"), (Words{"123", "4", " ", "東京", " .", "net", " ok"}));
}

TEST(PreTokenizer, FalconAndDefault) {
  EXPECT_EQ(split("falcon", "a+b=12345"), (Words{"a", "+", "b", "=", "123", "45"}));
  // default: the \p{N}+ pass splits the space off, then digits are cut in threes.
  EXPECT_EQ(split("default", "x<=y 1234"), (Words{"x", "<=", "y", " ", "123", "4"}));
}

TEST(PreTokenizer, StarcoderFamilySingleDigits) {
  for (const char* name : {"starcoder", "refact", "command-r", "smollm", "exaone"}) {
    EXPECT_EQ(split(name, "v 42"), (Words{"v", " ", "4", "2"})) << name;
  }
}

TEST(PreTokenizer, Gpt2FamilyNumberRuns) {
  for (const char* name : {"mpt", "olmo", "trillion", "exaone4", "a.x-4.0", "stablelm2"}) {
    const Words w = split(name, "v 42");
    EXPECT_EQ(w.back(), std::string(name) == std::string("stablelm2") ? "2" : " 42") << name;
  }
}

TEST(PreTokenizer, Gpt4oFamily) {
  for (const char* name : {"gpt-4o", "kanana2"}) {
    EXPECT_EQ(split(name, "HelloWorld's 12345"), (Words{"Hello", "World's", " ", "123", "45"})) << name;
    EXPECT_EQ(split(name, "한국어 텍스트"), (Words{"한국어", " 텍스트"})) << name;
  }
}

TEST(PreTokenizer, Tekken) {
  EXPECT_EQ(split("tekken", "HelloWorld 42"), (Words{"Hello", "World", " ", "4", "2"}));
}

TEST(PreTokenizer, SuperbpeGroupsDigitsFromTheRight) {
  EXPECT_EQ(split("superbpe", "1234567"), (Words{"1", "234", "567"}));
}

TEST(PreTokenizer, ExaoneMoeJoinsWordsAcrossSingleSpaces) {
  EXPECT_EQ(split("exaone-moe", "대한 민국 2"), (Words{"대한 민국", " ", "2"}));
}

TEST(PreTokenizer, MalformedUtf8BecomesReplacementChar) {
  const Words w = split("gpt-2", std::string("a\xff") + "b");
  std::string joined;
  for (const auto& x : w) joined += x;
  EXPECT_EQ(joined, "a\xef\xbf\xbd" "b");
}

}  // namespace
}  // namespace modu::tok
