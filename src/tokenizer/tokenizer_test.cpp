// Tokenizer conformance against llama.cpp: every case of the shared vocabularies (NAME.gguf.inp,
// korean.inp) must give exactly the expected ids; byte-level BPE must round-trip through decode.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "modu/gguf/gguf.h"
#include "modu/tokenizer/tokenizer.h"

namespace modu {
namespace {

const std::string kVocabDir = std::string(MODU_SHARED_DIR) + "/testdata/vocab/";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Inputs are separated by "\n__ggml_vocab_test__\n"; the file ends with a separator.
std::vector<std::string> read_inputs(const std::string& path) {
  const std::string s = read_file(path);
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    const size_t next = s.find(sep, pos);
    if (next == std::string::npos) {
      if (pos < s.size()) out.push_back(s.substr(pos));
      break;
    }
    out.push_back(s.substr(pos, next - pos));
    pos = next + sep.size();
  }
  return out;
}

// One line per input: ids each preceded by a space.
std::vector<std::vector<int32_t>> read_outputs(const std::string& path) {
  std::vector<std::vector<int32_t>> out;
  std::istringstream in(read_file(path));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::vector<int32_t> ids;
    int32_t id;
    while (ls >> id) ids.push_back(id);
    out.push_back(std::move(ids));
  }
  return out;
}

std::string show(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) {
    s += ' ';
    s += std::to_string(id);
  }
  return s;
}

std::unique_ptr<Tokenizer> load(const std::string& name) {
  auto file = GgufFile::open(kVocabDir + "ggml-vocab-" + name + ".gguf");
  EXPECT_TRUE(file.ok()) << file.status().to_string();
  if (!file.ok()) return nullptr;
  auto tok = Tokenizer::from_gguf(*file);
  EXPECT_TRUE(tok.ok()) << tok.status().to_string();
  return tok.ok() ? std::move(tok).value() : nullptr;
}

struct VocabCase {
  std::string name;
  bool byte_level;
};

class SharedVocabTest : public ::testing::TestWithParam<VocabCase> {};

void check_cases(const Tokenizer& tok, const std::string& inp, const std::string& out, bool round_trip) {
  const auto inputs = read_inputs(inp);
  const auto expected = read_outputs(out);
  ASSERT_GT(inputs.size(), 0u) << inp;
  ASSERT_EQ(inputs.size(), expected.size()) << inp << " vs " << out;
  int passed = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto ids = tok.encode(inputs[i], /*add_special=*/false, /*parse_special=*/false);
    EXPECT_EQ(show(ids), show(expected[i])) << "case " << i << " of " << out << ": '" << inputs[i] << "'";
    passed += ids == expected[i];
    if (round_trip) {
      EXPECT_EQ(tok.decode(ids), inputs[i]) << "round trip, case " << i << " of " << out;
    }
  }
  std::printf("[ vocab    ] %s: %d/%zu\n", out.c_str() + out.rfind('/') + 1, passed, inputs.size());
}

TEST_P(SharedVocabTest, MatchesReferenceIds) {
  const auto tok = load(GetParam().name);
  ASSERT_NE(tok, nullptr);
  const std::string base = kVocabDir + "ggml-vocab-" + GetParam().name + ".gguf";
  check_cases(*tok, base + ".inp", base + ".out", GetParam().byte_level);
}

TEST_P(SharedVocabTest, MatchesReferenceIdsKorean) {
  const auto tok = load(GetParam().name);
  ASSERT_NE(tok, nullptr);
  const std::string base = kVocabDir + "ggml-vocab-" + GetParam().name + ".gguf";
  check_cases(*tok, kVocabDir + "korean.inp", base + ".korean.out", GetParam().byte_level);
}

INSTANTIATE_TEST_SUITE_P(Vocabs, SharedVocabTest,
                         ::testing::Values(VocabCase{"llama-spm", false}, VocabCase{"gpt-2", true},
                                           VocabCase{"deepseek-coder", true}, VocabCase{"falcon", true},
                                           VocabCase{"bert-bge", false}),
                         [](const auto& info) {
                           std::string n = info.param.name;
                           for (char& c : n) if (c == '-') c = '_';
                           return n;
                         });

bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

// Streaming detokenization of the Korean cases: every chunk is whole UTF-8 and the chunks add up
// to decode(). Byte-level and byte-fallback vocabularies split Hangul syllables across tokens.
TEST_P(SharedVocabTest, StreamingDetokenizerKorean) {
  const auto tok = load(GetParam().name);
  ASSERT_NE(tok, nullptr);
  int held_back = 0;
  for (const std::string& text : read_inputs(kVocabDir + "korean.inp")) {
    const auto ids = tok->encode(text, false, false);
    StreamingDetokenizer stream(*tok);
    std::string streamed;
    for (int32_t id : ids) {
      const std::string chunk = stream.push(id);
      EXPECT_TRUE(valid_utf8(chunk)) << "token " << id << " in '" << text << "'";
      held_back += chunk.empty() && !tok->token_to_piece(id).empty();
      streamed += chunk;
    }
    streamed += stream.flush();
    EXPECT_EQ(streamed, tok->decode(ids)) << text;
    if (GetParam().byte_level) {
      EXPECT_EQ(streamed, text);
    }
  }
  if (GetParam().name != "bert-bge") {
    EXPECT_GT(held_back, 0) << "no Hangul split across tokens?";
  }
}

TEST(SharedVocab, ParseSpecialAndAddSpecial) {
  const auto gpt2 = load("gpt-2");
  ASSERT_NE(gpt2, nullptr);
  EXPECT_EQ(gpt2->encode("Hello<|endoftext|>", false, true), (std::vector<int32_t>{15496, 50256}));
  const auto plain = gpt2->encode("Hello<|endoftext|>", false, false);
  EXPECT_GT(plain.size(), 2u);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 50256), 0);
  EXPECT_EQ(gpt2->decode(plain), "Hello<|endoftext|>");
  EXPECT_EQ(gpt2->encode("Hello", true, false), (std::vector<int32_t>{15496}));  // gpt-2 adds no BOS
  EXPECT_TRUE(gpt2->is_eog(50256));

  const auto spm = load("llama-spm");
  ASSERT_NE(spm, nullptr);
  const auto with = spm->encode("<s>\xec\x95\x88\xeb\x85\x95</s>", false, true);
  ASSERT_GE(with.size(), 3u);
  EXPECT_EQ(with.front(), 1);
  EXPECT_EQ(with.back(), 2);
  const auto without = spm->encode("<s>\xec\x95\x88\xeb\x85\x95</s>", false, false);
  EXPECT_EQ(std::count(without.begin(), without.end(), 1), 0);
  EXPECT_EQ(std::count(without.begin(), without.end(), 2), 0);
  EXPECT_EQ(spm->encode("hi", true, false).front(), 1);  // add_bos_token = true
  EXPECT_EQ(spm->decode(spm->encode("\xec\x95\x88\xeb\x85\x95 hi", true, false)), " \xec\x95\x88\xeb\x85\x95 hi");

  const auto ds = load("deepseek-coder");
  ASSERT_NE(ds, nullptr);
  EXPECT_EQ(ds->encode("x", true, false).front(), 32013);

  const auto bert = load("bert-bge");
  ASSERT_NE(bert, nullptr);
  const auto cls = bert->encode("hello world", true, false);
  EXPECT_EQ(cls.front(), 101);
  EXPECT_EQ(cls.back(), 102);
  EXPECT_EQ(bert->encode("[MASK] hello", false, true).front(), 103);
}

// Any vocabulary added to the shared directory is checked the same way.
TEST(SharedVocab, StreamingContinuationKeepsSpmLeadingSpace) {
  // Generated text continues a prompt: "▁world" must print " world" (as llama.cpp prints it),
  // while decoding from the start of a text drops the space the SPM prefix rule added.
  auto spm = load("llama-spm");
  ASSERT_NE(spm, nullptr);
  const std::vector<int32_t> ids = spm->encode("Hello world", false, false);
  ASSERT_EQ(ids.size(), 2u);
  StreamingDetokenizer from_start(*spm);
  std::string text = from_start.push(ids[0]);
  text += from_start.push(ids[1]);
  text += from_start.flush();
  EXPECT_EQ(text, "Hello world");
  StreamingDetokenizer cont(*spm, false, /*continuation=*/true);
  EXPECT_EQ(cont.push(ids[1]) + cont.flush(), " world");
}

TEST(SharedVocab, EveryVocabularyFileIsCovered) {
  const std::vector<std::string> known = {"llama-spm", "gpt-2", "deepseek-coder", "falcon", "bert-bge"};
  for (const auto& entry : std::filesystem::directory_iterator(kVocabDir)) {
    const std::string f = entry.path().filename().string();
    if (f.rfind("ggml-vocab-", 0) != 0 || entry.path().extension() != ".gguf") continue;
    const std::string name = f.substr(11, f.size() - 11 - 5);
    if (std::find(known.begin(), known.end(), name) != known.end()) continue;
    const auto tok = load(name);
    ASSERT_NE(tok, nullptr) << name;
    const std::string base = kVocabDir + f;
    if (std::filesystem::exists(base + ".out")) check_cases(*tok, base + ".inp", base + ".out", false);
    if (std::filesystem::exists(base + ".korean.out")) check_cases(*tok, kVocabDir + "korean.inp", base + ".korean.out", false);
  }
}

}  // namespace
}  // namespace modu
