// Tokenizer: text <-> token ids for SPM, byte-level BPE and WordPiece vocabularies read from GGUF.
// Behaviour follows llama.cpp's llama-vocab (ids are identical for the same vocabulary and flags).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "modu/core/status.h"

namespace modu {

class GgufFile;
class GgufWriter;

// Token attributes (GGUF tokenizer.ggml.token_type values).
enum class TokenType : int32_t {
  kUndefined = 0, kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6,
};

// Everything a tokenizer is built from: the tokenizer.ggml.* metadata, already decoded. Unset
// optionals take the model's defaults (as llama.cpp: e.g. SPM bos=1 eos=2 unk=0, add_bos=true).
struct TokenizerConfig {
  std::string model;                 // tokenizer.ggml.model: "llama" (SPM), "gpt2" (BPE), "bert" (WPM)
  std::string pre;                   // tokenizer.ggml.pre ("" = "default"; only BPE uses it)
  std::vector<std::string> tokens;   // tokenizer.ggml.tokens
  std::vector<float> scores;         // tokenizer.ggml.scores (may be empty)
  std::vector<int32_t> token_types;  // tokenizer.ggml.token_type (may be empty: all normal)
  std::vector<std::string> merges;   // tokenizer.ggml.merges ("left right", rank = index)
  std::optional<int32_t> bos_id, eos_id, eot_id, eom_id, unk_id, sep_id, pad_id, mask_id;
  std::optional<int32_t> fim_pad_id, fim_rep_id, fim_sep_id;  // end-of-generation in FIM models
  std::optional<bool> add_bos, add_eos, add_sep, add_space_prefix;
  std::optional<bool> lowercase, strip_accents;  // WordPiece normalizer (default: both true)
  // general.name / general.architecture: llama.cpp adjusts a few token attributes by model
  // (e.g. phi-3 special tokens swallow following whitespace).
  std::string general_name, general_architecture;
};

// Whole-sequence detokenization options.
struct DecodeOptions {
  bool render_special = false;  // emit control/unknown token texts instead of ""
  bool remove_special = false;  // drop a leading BOS / trailing EOS the vocabulary adds itself
  // Apply the vocabulary's clean_up_tokenization_spaces rules (" ." -> "." etc.) when it has them,
  // as llama.cpp's detokenizer does. Off by default so byte-level BPE round-trips exactly.
  bool clean_spaces = false;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Reads tokenizer.ggml.* metadata. Errors name the missing/invalid key.
  static Result<std::unique_ptr<Tokenizer>> from_gguf(const GgufFile& file);
  // Builds from decoded metadata (tests, other vocabulary sources).
  static Result<std::unique_ptr<Tokenizer>> create(TokenizerConfig config);

  // add_special: add BOS/EOS as the metadata says. parse_special: recognize control and
  // user-defined token texts inside `text` (otherwise they are tokenized as plain text).
  // User-defined tokens are always matched as whole tokens, as in llama.cpp / HF tokenizers.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const = 0;
  // The bytes a token stands for (byte-level BPE mapped back to raw bytes, SPM "▁" -> " ",
  // <0xXX> -> the byte). Control tokens give "" unless render_special.
  virtual std::string token_to_piece(int32_t id, bool render_special = false) const = 0;
  // Whole-sequence decode, applying the vocabulary's space rules (e.g. SPM leading space).
  virtual std::string decode(std::span<const int32_t> ids, bool render_special = false) const = 0;
  virtual std::string detokenize(std::span<const int32_t> ids, const DecodeOptions& options) const = 0;

  virtual int32_t n_vocab() const = 0;
  virtual const std::string& token_text(int32_t id) const = 0;  // as stored in the vocabulary
  virtual TokenType token_type(int32_t id) const = 0;
  virtual int32_t token_id(std::string_view text) const = 0;   // exact vocabulary entry, -1 if none
  virtual std::string model_name() const = 0;  // "llama", "gpt2", "bert", ...
  virtual std::string pre_name() const = 0;    // tokenizer.ggml.pre, or "default"

  virtual int32_t bos_id() const = 0;  // -1 if none
  virtual int32_t eos_id() const = 0;
  virtual int32_t eot_id() const = 0;
  virtual int32_t unk_id() const = 0;
  virtual int32_t pad_id() const = 0;
  virtual int32_t sep_id() const = 0;
  virtual bool add_bos() const = 0;
  virtual bool add_eos() const = 0;
  virtual bool add_space_prefix() const = 0;  // SPM: a space is prepended to the text
  // End of generation: EOS, EOT, or any token the vocabulary marks as ending a turn.
  virtual bool is_eog(int32_t id) const = 0;
};

// Streaming detokenizer: feeds token ids, returns only complete UTF-8 (a Hangul syllable split
// across byte tokens is held back until whole). flush() returns what is left. The concatenation
// of all push() results and flush() equals tok.decode(all ids, render_special).
class StreamingDetokenizer {
 public:
  // continuation: the ids continue text that came before (a prompt), so the SPM rule that drops
  // the leading space of the first token does not apply (as llama.cpp prints generated tokens).
  explicit StreamingDetokenizer(const Tokenizer& tok, bool render_special = false, bool continuation = false);
  std::string push(int32_t id);
  std::string flush();

 private:
  const Tokenizer& tok_;
  bool render_special_;
  bool first_ = true;    // the SPM leading-space rule applies to the first token only
  std::string pending_;  // bytes of an incomplete UTF-8 sequence
};

// Tokenizes a corpus the way modu trains and evaluates on it: documents are separated by blank
// lines ("\n\n"), trailing newlines are dropped, each document starts with BOS (if the vocabulary
// has one) and is encoded without other special tokens. *n_bytes (optional) gets the bytes of
// text encoded, for bits-per-byte.
std::vector<int32_t> encode_documents(const Tokenizer& tok, std::string_view text, size_t* n_bytes = nullptr);

// Writes tokenizer.ggml.* metadata for a byte-fallback SPM vocabulary: <unk>, <s>, </s> and the
// 256 byte tokens <0x00>..<0xFF> (any text encodes). For models that tests and tools create.
void write_byte_vocab(GgufWriter& w);

}  // namespace modu
