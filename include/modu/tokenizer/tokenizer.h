// Tokenizer: text <-> token ids for SPM, byte-level BPE and WordPiece vocabularies read from GGUF.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "modu/core/status.h"

namespace modu {

class GgufFile;

// Token attributes (GGUF tokenizer.ggml.token_type values).
enum class TokenType : int32_t {
  kUndefined = 0, kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6,
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Reads tokenizer.ggml.* metadata. Errors name the missing/invalid key.
  static Result<std::unique_ptr<Tokenizer>> from_gguf(const GgufFile& file);

  // add_special: add BOS/EOS as the metadata says. parse_special: recognize control and
  // user-defined token texts inside `text` (otherwise they are tokenized as plain text).
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const = 0;
  // The bytes a token stands for (byte-level BPE mapped back to raw bytes, SPM "▁" -> " ",
  // <0xXX> -> the byte). Control tokens give "" unless render_special.
  virtual std::string token_to_piece(int32_t id, bool render_special = false) const = 0;
  // Whole-sequence decode, applying the vocabulary's space rules (e.g. SPM leading space).
  virtual std::string decode(std::span<const int32_t> ids, bool render_special = false) const = 0;

  virtual int32_t n_vocab() const = 0;
  virtual const std::string& token_text(int32_t id) const = 0;  // as stored in the vocabulary
  virtual TokenType token_type(int32_t id) const = 0;
  virtual std::string model_name() const = 0;  // "llama", "gpt2", "bert", ...
  virtual std::string pre_name() const = 0;    // tokenizer.ggml.pre, or "default"

  virtual int32_t bos_id() const = 0;  // -1 if none
  virtual int32_t eos_id() const = 0;
  virtual int32_t eot_id() const = 0;
  virtual int32_t unk_id() const = 0;
  virtual int32_t pad_id() const = 0;
  virtual bool add_bos() const = 0;
  virtual bool add_eos() const = 0;
  // End of generation: EOS, EOT, or any token the vocabulary marks as ending a turn.
  virtual bool is_eog(int32_t id) const = 0;
};

// Streaming detokenizer: feeds token ids, returns only complete UTF-8 (a Hangul syllable split
// across byte tokens is held back until whole). flush() returns what is left.
class StreamingDetokenizer {
 public:
  explicit StreamingDetokenizer(const Tokenizer& tok, bool render_special = false);
  std::string push(int32_t id);
  std::string flush();

 private:
  const Tokenizer& tok_;
  bool render_special_;
  std::vector<int32_t> ids_;
  size_t emitted_bytes_ = 0;
};

}  // namespace modu
