// Tokenizer unit tests on tiny in-test vocabularies: SPM score-ordered merging and byte fallback,
// BPE rank-ordered merging, WordPiece normalization, special tokens, detokenization, streaming,
// and reading the metadata back from an in-memory GGUF file.
#include <gtest/gtest.h>

#include "modu/gguf/gguf.h"
#include "modu/tokenizer/tokenizer.h"
#include "unicode.h"

namespace modu {
namespace {

using Ids = std::vector<int32_t>;
constexpr int32_t kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kByte = 6;

std::unique_ptr<Tokenizer> make(TokenizerConfig cfg) {
  auto t = Tokenizer::create(std::move(cfg));
  EXPECT_TRUE(t.ok()) << t.status().to_string();
  return t.ok() ? std::move(t).value() : nullptr;
}

// --- SPM ---------------------------------------------------------------------------------------

struct Spm {
  TokenizerConfig cfg;
  int32_t add(const std::string& text, float score, int32_t type = kNormal) {
    cfg.tokens.push_back(text);
    cfg.scores.push_back(score);
    cfg.token_types.push_back(type);
    return static_cast<int32_t>(cfg.tokens.size()) - 1;
  }
  Spm() {
    cfg.model = "llama";
    add("<unk>", 0, kUnknown), add("<s>", 0, kControl), add("</s>", 0, kControl);
    for (int b = 0; b < 256; ++b) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
      add(buf, 0, kByte);
    }
  }
};
constexpr int32_t kSpmByte0 = 3;

TEST(SpmTokenizer, MergesHighestScoreFirstAndFallsBackToBytes) {
  Spm v;
  const int32_t sp = v.add("\xe2\x96\x81", -1), h = v.add("h", -10), e = v.add("e", -10);
  const int32_t l = v.add("l", -10), o = v.add("o", -10);
  v.add("\xe2\x96\x81h", -2), v.add("he", -4);
  const int32_t ll = v.add("ll", -3), sp_he = v.add("\xe2\x96\x81he", -1.5f);
  v.add("llo", -2.5f);
  const int32_t hello = v.add("\xe2\x96\x81hello", -0.5f);
  const auto tok = make(v.cfg);
  ASSERT_NE(tok, nullptr);
  // "▁h" (-2) beats "he" (-4), so "▁he" forms and "he" is never used.
  EXPECT_EQ(tok->encode("hell", false, false), (Ids{sp_he, ll}));
  EXPECT_EQ(tok->encode("hello", false, false), (Ids{hello}));
  EXPECT_EQ(tok->encode("hello", true, false), (Ids{1, hello}));  // add_bos defaults on for SPM
  EXPECT_EQ(tok->encode("oh", false, false), (Ids{sp, o, h}));
  (void)e, (void)l;
  // Hangul not in the vocabulary: UTF-8 bytes as <0xXX> tokens.
  const Ids han = tok->encode("\xed\x95\x9c", false, false);  // 한
  EXPECT_EQ(han, (Ids{sp, kSpmByte0 + 0xED, kSpmByte0 + 0x95, kSpmByte0 + 0x9C}));
  EXPECT_EQ(tok->decode(han), "\xed\x95\x9c");
  // The space prefix comes back off only at the start.
  EXPECT_EQ(tok->decode(Ids{hello, hello}), "hello hello");
  EXPECT_EQ(tok->decode(Ids{1, hello}), " hello");  // BOS renders "", then the space stays
  // As llama.cpp: removing the BOS also keeps the following space.
  EXPECT_EQ(tok->detokenize(Ids{1, hello}, {.remove_special = true}), " hello");
  EXPECT_EQ(tok->decode(Ids{1, hello}, /*render_special=*/true), "<s> hello");
}

TEST(SpmTokenizer, SpacePrefixFollowsSpecialTokensAndCanBeDisabled) {
  Spm v;
  const int32_t sp = v.add("\xe2\x96\x81", -1), a = v.add("a", -1), sp_a = v.add("\xe2\x96\x81" "a", -0.5f);
  auto tok = make(v.cfg);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->encode("a</s>a", false, true), (Ids{sp_a, 2, sp_a}));
  v.cfg.add_space_prefix = false;
  tok = make(v.cfg);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->encode("a a", false, false), (Ids{a, sp_a}));
  EXPECT_EQ(tok->decode(Ids{sp_a}), " a");
  (void)sp;
}

// --- byte-level BPE ----------------------------------------------------------------------------

struct Bpe {
  TokenizerConfig cfg;
  int32_t add(const std::string& text, int32_t type = kNormal) {
    cfg.tokens.push_back(text);
    cfg.token_types.push_back(type);
    return static_cast<int32_t>(cfg.tokens.size()) - 1;
  }
  Bpe() {
    cfg.model = "gpt2";
    cfg.pre = "gpt-2";
    for (int b = 0; b < 256; ++b) add(tok::byte_to_bpe_char(static_cast<uint8_t>(b)));
  }
  int32_t merge(const std::string& left, const std::string& right) {
    cfg.merges.push_back(left + " " + right);
    return add(left + right);
  }
};

TEST(BpeTokenizer, MergesLowestRankFirstLeftmostOnTies) {
  Bpe v;
  v.merge("h", "e");
  const int32_t ll = v.merge("l", "l");
  const int32_t hell = v.merge("he", "ll");
  const int32_t sp_w = v.merge("\xc4\xa0", "w");  // "Ġ" is the byte-level space
  const auto tok = make(v.cfg);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->encode("hello", false, false), (Ids{hell, 'o'}));
  EXPECT_EQ(tok->encode("lll", false, false), (Ids{ll, 'l'}));
  EXPECT_EQ(tok->encode("a w", false, false), (Ids{'a', sp_w}));
  EXPECT_EQ(tok->decode(tok->encode("hello w", false, false)), "hello w");
  // Every byte has a token: arbitrary UTF-8 round-trips.
  const std::string text = "\xed\x95\x9c\xea\xb5\xad\xec\x96\xb4 \xf0\x9f\x98\x80\t\n";
  EXPECT_EQ(tok->decode(tok->encode(text, false, false)), text);
  EXPECT_EQ(tok->encode("", true, false), Ids{});  // gpt-2: no BOS by default
}

TEST(BpeTokenizer, SpecialTokensOnlyWithParseSpecialUserDefinedAlways) {
  Bpe v;
  const int32_t eot = v.add("<|endoftext|>", kControl);
  const int32_t tag = v.add("<tag>", kUserDefined);
  const int32_t tag_long = v.add("<tag><tag>", kUserDefined);
  const auto tok = make(v.cfg);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->encode("a<|endoftext|>b", false, true), (Ids{'a', eot, 'b'}));
  const Ids plain = tok->encode("a<|endoftext|>b", false, false);
  EXPECT_EQ(plain.size(), 15u);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), eot), 0);
  EXPECT_EQ(tok->encode("x<tag>y", false, false), (Ids{'x', tag, 'y'}));
  EXPECT_EQ(tok->encode("<tag><tag><tag>", false, false), (Ids{tag_long, tag}));  // longest first
  EXPECT_TRUE(tok->is_eog(eot));  // "<|endoftext|>" ends generation
  EXPECT_EQ(tok->eot_id(), eot);
  EXPECT_EQ(tok->token_type(eot), TokenType::kControl);
  EXPECT_EQ(tok->token_to_piece(eot), "");
  EXPECT_EQ(tok->token_to_piece(eot, true), "<|endoftext|>");
  EXPECT_EQ(tok->token_to_piece(tag), "<tag>");
  EXPECT_EQ(tok->token_id("<tag>"), tag);
  EXPECT_EQ(tok->token_id("nope"), -1);
}

TEST(BpeTokenizer, AddSpecialUsesMetadataAndPreDefaults) {
  Bpe v;
  const int32_t bos = v.add("<|begin|>", kControl), eos = v.add("<|end_of_text|>", kControl);
  v.cfg.bos_id = bos, v.cfg.eos_id = eos;
  v.cfg.pre = "llama-bpe";  // llama3 pre-tokenizers add BOS by default
  auto tok = make(v.cfg);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->encode("a", true, false), (Ids{bos, 'a'}));
  EXPECT_EQ(tok->encode("a", false, false), (Ids{'a'}));
  v.cfg.add_bos = false, v.cfg.add_eos = true;
  tok = make(v.cfg);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->encode("a", true, false), (Ids{'a', eos}));
  EXPECT_EQ(tok->detokenize(Ids{'a', eos}, {.remove_special = true}), "a");
}

TEST(BpeTokenizer, IgnoreMergesTakesWholeWordTokens) {
  Bpe v;
  const int32_t ab = v.merge("a", "b");
  const int32_t abc = v.add("abc");  // no merge produces it
  v.cfg.pre = "llama-bpe";            // llama3 pre-tokenizers set ignore_merges
  auto tok = make(v.cfg);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->encode("abc", false, false), (Ids{abc}));
  v.cfg.pre = "qwen2";
  tok = make(v.cfg);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->encode("abc", false, false), (Ids{ab, 'c'}));
}

TEST(BpeTokenizer, ArbitraryBytesNeverCrashAndRoundTripAfterSanitizing) {
  Bpe v;
  v.merge("\xc4\xa0", "a");
  v.add("<|endoftext|>", kControl);
  const auto tok = make(v.cfg);
  ASSERT_NE(tok, nullptr);
  uint32_t seed = 12345;
  for (int iter = 0; iter < 300; ++iter) {
    std::string text;
    const int len = iter % 40;
    for (int i = 0; i < len; ++i) {
      seed = seed * 1664525u + 1013904223u;
      const uint8_t pool[] = {'a', ' ', '\n', '1', '<', '|', 0xED, 0x95, 0x9C, 0xFF, 0xC3, 0x80, 0xF0, 0x9F};
      text += static_cast<char>(pool[(seed >> 16) % sizeof(pool)]);
    }
    std::string sanitized;  // malformed UTF-8 bytes become U+FFFD, as upstream
    for (uint32_t cp : tok::cpts_from_utf8(text)) tok::append_utf8(sanitized, cp);
    for (bool parse_special : {false, true}) {
      const Ids ids = tok->encode(text, true, parse_special);
      EXPECT_EQ(tok->decode(ids), sanitized);
    }
  }
}

TEST(BpeTokenizer, PhiThreeSpecialTokensSwallowFollowingSpaces) {
  Bpe v;
  const int32_t end = v.add("<|end|>", kControl);
  v.cfg.general_name = "Phi-3-mini";
  const auto tok = make(v.cfg);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->encode("<|end|>  a", false, true), (Ids{end, 'a'}));
}

TEST(BpeTokenizer, CleanSpacesOnlyWhenAsked) {
  Bpe v;
  const auto tok = make(v.cfg);
  ASSERT_NE(tok, nullptr);
  const Ids ids = tok->encode("Hello , world ! it 's", false, false);
  EXPECT_EQ(tok->decode(ids), "Hello , world ! it 's");
  EXPECT_EQ(tok->detokenize(ids, {.clean_spaces = true}), "Hello, world! it's");
}

// --- WordPiece ---------------------------------------------------------------------------------

TEST(WpmTokenizer, NormalizesAndMatchesLongestPieces) {
  TokenizerConfig cfg;
  cfg.model = "bert";
  cfg.tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "\xe2\x96\x81hello", "\xe2\x96\x81world", "\xe2\x96\x81,",
                "\xe2\x96\x81!", "\xe2\x96\x81un", "able", "\xe2\x96\x81unab"};
  cfg.token_types = {kControl, kControl, kControl, kControl, 1, 1, 1, 1, 1, 1, 1};
  cfg.unk_id = 1, cfg.bos_id = 2, cfg.sep_id = 3, cfg.pad_id = 0;
  const auto tok = make(cfg);
  ASSERT_NE(tok, nullptr);
  // é -> e (NFD, accent dropped), lowercase, punctuation split off.
  EXPECT_EQ(tok->encode("H\xc3\xa9llo, World!", false, false), (Ids{4, 6, 5, 7}));
  EXPECT_EQ(tok->encode("un able", false, false), (Ids{8, 1}));  // "able" is only a continuation piece
  // Greedy longest match without backtracking: "▁unab" then "le" is missing -> the word is [UNK].
  EXPECT_EQ(tok->encode("unable", false, false), (Ids{1}));
  EXPECT_EQ(tok->encode("hello xyz", false, false), (Ids{4, 1}));
  EXPECT_EQ(tok->encode("hello", true, false), (Ids{2, 4, 3}));
  EXPECT_EQ(tok->decode(Ids{4, 6, 5}), " hello , world");
  EXPECT_EQ(tok->detokenize(Ids{4, 6, 5}, {.clean_spaces = true}), " hello, world");
}

// --- streaming ---------------------------------------------------------------------------------

TEST(StreamingDetokenizer, HoldsBackIncompleteUtf8) {
  Spm v;
  const int32_t sp = v.add("\xe2\x96\x81", -1);
  const auto tok = make(v.cfg);
  ASSERT_NE(tok, nullptr);
  const Ids ids = tok->encode("\xed\x95\x9c \xea\xb8\x80", false, false);  // 한 글
  ASSERT_EQ(ids.front(), sp);
  StreamingDetokenizer s(*tok);
  std::vector<std::string> outs;
  for (int32_t id : ids) outs.push_back(s.push(id));
  EXPECT_EQ(outs, (std::vector<std::string>{"", "", "", "\xed\x95\x9c", " ", "", "", "\xea\xb8\x80"}));
  EXPECT_EQ(s.flush(), "");
}

TEST(StreamingDetokenizer, FlushReturnsTrailingBytesAndInvalidBytesPassThrough) {
  Bpe v;
  const auto tok = make(v.cfg);
  ASSERT_NE(tok, nullptr);
  StreamingDetokenizer s(*tok);
  EXPECT_EQ(s.push(0xFF), "\xff");  // can never become valid: not held back
  EXPECT_EQ(s.push(0xED), "");
  EXPECT_EQ(s.push(0x95), "");
  EXPECT_EQ(s.flush(), "\xed\x95");
}

// --- GGUF metadata -----------------------------------------------------------------------------

TEST(TokenizerGguf, ReadsMetadataAndNamesBadKeys) {
  GgufWriter w;
  w.set("general.name", GgufValue::string("tiny"));
  w.set("tokenizer.ggml.model", GgufValue::string("gpt2"));
  w.set("tokenizer.ggml.pre", GgufValue::string("qwen2"));
  Bpe v;
  const int32_t eot = v.add("<|im_end|>", kNormal);
  v.merge("a", "b");
  w.set("tokenizer.ggml.tokens", GgufValue::string_array(v.cfg.tokens));
  w.set("tokenizer.ggml.token_type", GgufValue::i32_array(v.cfg.token_types));
  w.set("tokenizer.ggml.merges", GgufValue::string_array(v.cfg.merges));
  w.set("tokenizer.ggml.bos_token_id", GgufValue::u32(eot));
  w.set("tokenizer.ggml.add_bos_token", GgufValue::boolean(true));
  std::vector<uint8_t> bytes = w.serialize();
  auto file = GgufFile::parse(bytes.data(), bytes.size(), "tiny.gguf");
  ASSERT_TRUE(file.ok()) << file.status().to_string();
  auto tok = Tokenizer::from_gguf(*file);
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  EXPECT_EQ((*tok)->pre_name(), "qwen2");
  EXPECT_EQ((*tok)->bos_id(), eot);
  EXPECT_TRUE((*tok)->add_bos());
  EXPECT_TRUE((*tok)->is_eog(eot));                             // detected by text
  EXPECT_EQ((*tok)->token_type(eot), TokenType::kControl);      // and made a control token
  EXPECT_EQ((*tok)->encode("ab1", true, false), (Ids{eot, static_cast<int32_t>(v.cfg.tokens.size()) - 1, '1'}));

  GgufWriter no_merges;
  no_merges.set("tokenizer.ggml.model", GgufValue::string("gpt2"));
  no_merges.set("tokenizer.ggml.tokens", GgufValue::string_array(v.cfg.tokens));
  bytes = no_merges.serialize();
  file = GgufFile::parse(bytes.data(), bytes.size(), "no-merges.gguf");
  ASSERT_TRUE(file.ok());
  tok = Tokenizer::from_gguf(*file);
  ASSERT_FALSE(tok.ok());
  EXPECT_NE(tok.status().message().find("tokenizer.ggml.merges"), std::string::npos) << tok.status().to_string();

  w.set("tokenizer.ggml.tokens", GgufValue::i32_array({1, 2, 3}));
  bytes = w.serialize();
  file = GgufFile::parse(bytes.data(), bytes.size(), "bad.gguf");
  ASSERT_TRUE(file.ok());
  tok = Tokenizer::from_gguf(*file);
  ASSERT_FALSE(tok.ok());
  EXPECT_NE(tok.status().message().find("tokenizer.ggml.tokens"), std::string::npos) << tok.status().to_string();
}

TEST(TokenizerConfigErrors, ClearMessages) {
  Bpe v;
  v.cfg.pre = "unheard-of";
  auto t = Tokenizer::create(v.cfg);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("unheard-of"), std::string::npos);
  EXPECT_NE(t.status().message().find("qwen2"), std::string::npos);  // lists known names

  Bpe dup;
  dup.add("a");
  t = Tokenizer::create(dup.cfg);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("duplicate"), std::string::npos);

  TokenizerConfig unknown_model;
  unknown_model.model = "rwkv";
  unknown_model.tokens = {"a"};
  t = Tokenizer::create(unknown_model);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace modu
