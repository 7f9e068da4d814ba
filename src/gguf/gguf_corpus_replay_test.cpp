// Replays every committed fuzz seed in fuzz/corpus/gguf through GgufFile::parse (no crash, and
// valid_* seeds must parse while invalid_* seeds must fail with kCorrupt).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "modu/gguf/gguf.h"

namespace modu {
namespace {

TEST(GgufCorpusReplay, EverySeedParsesOrFailsCleanly) {
  const std::filesystem::path dir = std::filesystem::path(MODU_SOURCE_DIR) / "fuzz" / "corpus" / "gguf";
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  int n_files = 0, n_valid = 0, n_invalid = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    const std::string name = entry.path().filename().string();
    SCOPED_TRACE(name);
    std::ifstream in(entry.path(), std::ios::binary);
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ++n_files;
    auto r = GgufFile::parse(bytes.data(), bytes.size(), name);
    if (r.ok()) {
      uint64_t sum = 0;  // read every tensor byte so ASan checks the views
      for (const auto& t : r->tensors())
        for (size_t i = 0; i < t.nbytes; ++i) sum += t.data[i];
      (void)sum;
    } else {
      EXPECT_EQ(r.status().code(), StatusCode::kCorrupt) << r.status().to_string();
      EXPECT_NE(r.status().message().find(name), std::string::npos) << r.status().message();
    }
    if (name.rfind("valid_", 0) == 0) {
      ++n_valid;
      EXPECT_TRUE(r.ok()) << r.status().to_string();
    } else if (name.rfind("invalid_", 0) == 0) {
      ++n_invalid;
      EXPECT_FALSE(r.ok());
    }
  }
  EXPECT_GE(n_valid, 3);
  EXPECT_GE(n_invalid, 3);
  EXPECT_EQ(n_files, n_valid + n_invalid) << "seed files must be named valid_* or invalid_*";
}

}  // namespace
}  // namespace modu
