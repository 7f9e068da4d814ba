// The one Tokenizer implementation (SPM / byte-level BPE / WordPiece), shared by the load, encode
// and decode translation units. Mirrors llama.cpp's llama_vocab::impl.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "modu/tokenizer/tokenizer.h"
#include "pretokenizer.h"

namespace modu::tok {

// llama_token_attr bits.
enum TokenAttr : uint32_t {
  kAttrUndefined = 0, kAttrUnknown = 1u << 0, kAttrUnused = 1u << 1, kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3, kAttrUserDefined = 1u << 4, kAttrByte = 1u << 5,
  kAttrLstrip = 1u << 7, kAttrRstrip = 1u << 8,
};

enum class VocabType { kSpm, kBpe, kWpm };

// BPE merges whose two sides are both tokens, keyed by (left id, right id): an open-addressing
// table, since rank lookups dominate BPE encoding. Value: merge rank and the merged token id.
class PairRankTable {
 public:
  struct Entry {
    uint64_t key = kEmpty;
    int32_t rank = -1;
    int32_t result = -1;
  };
  static uint64_t key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  void reserve(size_t n);
  bool insert(uint64_t key, int32_t rank, int32_t result);  // keeps the first (lowest) rank
  const Entry* find(uint64_t key) const;

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  size_t slot(uint64_t key) const { return (key * 0x9E3779B97F4A7C15ull) >> shift_; }
  std::vector<Entry> entries_;
  int shift_ = 64;
  size_t size_ = 0;
};

// Heterogeneous lookup (find by string_view without building a std::string).
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

class VocabTokenizer final : public Tokenizer {
 public:
  static Result<std::unique_ptr<Tokenizer>> build(TokenizerConfig cfg);

  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const override;
  std::string token_to_piece(int32_t id, bool render_special) const override;
  std::string decode(std::span<const int32_t> ids, bool render_special) const override;
  std::string detokenize(std::span<const int32_t> ids, const DecodeOptions& options) const override;

  int32_t n_vocab() const override { return static_cast<int32_t>(tokens_.size()); }
  const std::string& token_text(int32_t id) const override;
  TokenType token_type(int32_t id) const override;
  int32_t token_id(std::string_view text) const override;
  std::string model_name() const override { return model_; }
  std::string pre_name() const override { return pre_; }
  int32_t bos_id() const override { return bos_; }
  int32_t eos_id() const override { return eos_; }
  int32_t eot_id() const override { return eot_; }
  int32_t unk_id() const override { return unk_; }
  int32_t pad_id() const override { return pad_; }
  int32_t sep_id() const override { return sep_; }
  bool add_bos() const override { return add_bos_; }
  bool add_eos() const override { return add_eos_; }
  bool add_space_prefix() const override { return add_space_prefix_; }
  bool is_eog(int32_t id) const override { return eog_.count(id) > 0; }

 private:
  struct Token {
    std::string text;
    float score = 0.0f;
    uint32_t attr = kAttrNormal;
  };
  // A piece of the input: a token found by the special-token partition, or raw text.
  struct Fragment {
    int32_t token;  // -1: raw text [off, off + len)
    size_t off, len;
  };

  VocabTokenizer() = default;
  Status load(TokenizerConfig& cfg);
  void finish_special_tokens(const TokenizerConfig& cfg);
  void load_merges(const std::vector<std::string>& merges);

  int32_t find(std::string_view text) const;  // -1 if absent
  int32_t byte_to_token(uint8_t byte) const;
  int bpe_rank(std::string_view left, std::string_view right) const;
  std::vector<Fragment> partition(std::string_view text, bool parse_special) const;

  void tokenize_spm(const std::string& text, std::vector<int32_t>& out) const;
  void tokenize_bpe(std::string_view text, std::vector<int32_t>& out) const;
  void tokenize_wpm(std::string_view text, std::vector<int32_t>& out) const;
  std::vector<std::string> wpm_preprocess(std::string_view text) const;
  std::string compute_piece(int32_t id) const;

  VocabType type_ = VocabType::kSpm;
  std::string model_, pre_;
  std::vector<Token> tokens_;
  StringMap<int32_t> token_to_id_;
  PairRankTable pair_ranks_;          // merges between two tokens
  StringMap<int> bpe_ranks_;          // other merges: "left\0right" -> rank
  std::array<int32_t, 256> byte_ids_{};  // token of each byte's byte-level character (-1: none)
  std::optional<PreTokenizer> pre_tokenizer_;
  std::vector<int32_t> special_cache_;  // control / user-defined / unknown ids, longest text first
  std::vector<std::string> pieces_;     // token_to_piece(id, render_special = true)
  std::unordered_set<int32_t> eog_;
  size_t max_token_len_ = 0;

  int32_t bos_ = -1, eos_ = -1, eot_ = -1, eom_ = -1, unk_ = -1, sep_ = -1, pad_ = -1, mask_ = -1;
  int32_t fim_pad_ = -1, fim_rep_ = -1, fim_sep_ = -1;
  bool add_bos_ = false, add_eos_ = false, add_sep_ = false, add_space_prefix_ = false;
  bool clean_spaces_ = false, ignore_merges_ = false;
  bool lowercase_ = true, strip_accents_ = true;
};

}  // namespace modu::tok
