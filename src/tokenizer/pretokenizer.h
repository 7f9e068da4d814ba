// Byte-level BPE pre-tokenizers: splits text into words with the regex lists llama.cpp uses for
// each `tokenizer.ggml.pre` name, reproducing llama.cpp's unicode_regex_split semantics.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "modu/core/status.h"

namespace modu::tok {

// What a `tokenizer.ggml.pre` name implies beyond its regexes (llama_vocab::impl::load).
struct PreTokenizerInfo {
  std::string_view type;       // upstream LLAMA_VOCAB_PRE_TYPE_* name, lowercased (e.g. "llama3")
  bool clean_spaces = true;    // detokenizer clean_up_tokenization_spaces default
  bool ignore_merges = false;  // a word that is itself a token is not merged from characters
  bool add_bos = false;        // default for add_bos before tokenizer.ggml.add_bos_token
  bool add_sep = false;
  bool no_bos = false;         // the model has no BOS token by default (chatglm)
};

class CompiledRegex;

class PreTokenizer {
 public:
  ~PreTokenizer();
  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;

  // `name` is tokenizer.ggml.pre; "" means "default". Unknown names: kUnimplemented listing the
  // known names.
  static Result<PreTokenizer> create(std::string_view name);
  // Builds from an explicit regex list (for tests and custom vocabularies).
  static Result<PreTokenizer> from_regexes(const std::vector<std::string>& regexes);
  static std::vector<std::string> known_names();

  const PreTokenizerInfo& info() const { return info_; }
  const std::vector<std::string>& regexes() const { return regexes_; }

  // Splits `text` into words (UTF-8, not yet byte-encoded; empty pieces are dropped). Malformed
  // UTF-8 bytes become U+FFFD, as in llama.cpp.
  std::vector<std::string> split(std::string_view text) const;

 private:
  PreTokenizer() = default;
  PreTokenizerInfo info_;
  std::vector<std::string> regexes_;
  std::vector<std::unique_ptr<CompiledRegex>> compiled_;
};

}  // namespace modu::tok
