// Byte-level BPE training: learns merges over words split by one of modu's pre-tokenizers and
// emits a GGUF-ready vocabulary (gpt2 model, control tokens for <|endoftext|>/<|im_start|>/<|im_end|>,
// ChatML chat template). Deterministic: ties are broken by token ids.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "modu/core/status.h"
#include "modu/tokenizer/tokenizer.h"

namespace modu {
class GgufWriter;
}

namespace modu::train {

struct BpeTrainOptions {
  int32_t vocab_size = 4096;       // including the 256 byte tokens and the special tokens
  std::string pre = "llama-bpe";  // tokenizer.ggml.pre: the llama3 split (Hangul runs stay whole words)
  int64_t min_frequency = 2;       // stop when the best pair occurs fewer times
};

// Special tokens, ids 0..2.
inline constexpr const char* kEndOfText = "<|endoftext|>";
inline constexpr const char* kImStart = "<|im_start|>";
inline constexpr const char* kImEnd = "<|im_end|>";

// Trains on `text` (documents separated by blank lines are split independently).
Result<TokenizerConfig> train_bpe(std::string_view text, const BpeTrainOptions& opt);

// ChatML template used by modu's own models.
std::string chatml_template();

// Writes tokenizer.ggml.* (and tokenizer.chat_template) keys.
void add_tokenizer_to_gguf(GgufWriter& w, const TokenizerConfig& c, const std::string& chat_template);

}  // namespace modu::train
