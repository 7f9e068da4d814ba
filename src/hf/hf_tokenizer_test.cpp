// Real Hugging Face tokenizer.json files (Llama 3 and Qwen 3 byte-level BPE, Gemma 3 SentencePiece
// style; fetched by the hf_npm_setup CTest fixture) through the tokenizer.json -> GGUF metadata mapping: ids for Korean and English text
// must equal transformers.js's (committed in src/hf/testdata), and decode must round-trip.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "modu/hf/hf_model.h"
#include "modu/tokenizer/tokenizer.h"

namespace modu {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> read_cases(const std::string& path) {
  const std::string s = read_file(path), sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> out;
  size_t pos = 0;
  for (size_t next; (next = s.find(sep, pos)) != std::string::npos; pos = next + sep.size()) out.push_back(s.substr(pos, next - pos));
  if (pos < s.size()) out.push_back(s.substr(pos));
  return out;
}

std::vector<std::vector<int32_t>> read_ids(const std::string& path) {
  std::vector<std::vector<int32_t>> out;
  std::istringstream in(read_file(path));
  for (std::string line; std::getline(in, line);) {
    std::istringstream ls(line);
    std::vector<int32_t> ids;
    for (int32_t id; ls >> id;) ids.push_back(id);
    out.push_back(ids);
  }
  return out;
}

class RealTokenizer : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(RealTokenizer, MatchesTransformersJsOnKoreanAndEnglish) {
  const auto& [pkg, pre] = GetParam();
  const std::string dir = std::string(MODU_HF_NPM_DIR) + "/tokenizer-" + pkg + "/models/";
  auto md = hf_tokenizer_metadata(read_file(dir + "tokenizer.json"), read_file(dir + "tokenizer_config.json"), dir);
  ASSERT_TRUE(md.ok()) << md.status().to_string();
  auto g = GgufFile::from_parts(dir, std::move(md).value(), {}, nullptr);
  ASSERT_TRUE(g.ok());
  auto tok = Tokenizer::from_gguf(*g);
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  EXPECT_EQ((*tok)->pre_name(), pre);
  const auto cases = read_cases(std::string(MODU_SHARED_DIR) + "/testdata/vocab/korean.inp");
  const auto expected = read_ids(std::string(MODU_SOURCE_DIR) + "/src/hf/testdata/" + pkg + "-tokenizer.korean.out");
  ASSERT_EQ(cases.size(), expected.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto ids = (*tok)->encode(cases[i], false, false);
    EXPECT_EQ(ids, expected[i]) << pkg << " case " << i << ": '" << cases[i] << "'";
    EXPECT_EQ((*tok)->decode(ids), cases[i]) << pkg << " round trip, case " << i;
  }
  // Special tokens from added_tokens are matched whole when parse_special is on.
  const std::string special = pkg == "qwen3" ? "<|im_start|>" : pkg == "gemma3" ? "<start_of_turn>" : "<|begin_of_text|>";
  const auto sp = (*tok)->encode(special + "안녕", false, true);
  ASSERT_FALSE(sp.empty());
  EXPECT_EQ((*tok)->token_text(sp[0]), special);
  EXPECT_EQ((*tok)->token_type(sp[0]), TokenType::kControl);
}

INSTANTIATE_TEST_SUITE_P(Npm, RealTokenizer,
                         ::testing::Values(std::pair<std::string, std::string>{"llama3", "llama-bpe"},
                                           std::pair<std::string, std::string>{"qwen3", "qwen2"},
                                           std::pair<std::string, std::string>{"gemma3", "default"}));

}  // namespace
}  // namespace modu
