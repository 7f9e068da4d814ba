// The pre-tokenizer table: every supported `tokenizer.ggml.pre` name, the upstream pre-type it maps
// to, and that type's regex list, copied from llama.cpp src/llama-vocab.cpp (llm_tokenizer_bpe and
// llama_vocab::impl::load). Non-ASCII literals are written as \x{...} escapes.
#pragma once

#include <string_view>
#include <vector>

#include "pretokenizer.h"

namespace modu::tok {

struct PreTypeRegexes {
  std::string_view type;
  std::vector<std::string_view> regexes;
};
struct PreNameEntry {
  std::string_view name;
  PreTokenizerInfo info;  // info.type names a PreTypeRegexes entry
};

// The two regexes llama.cpp runs with hand-written splitters (unicode_regex_split_custom).
inline constexpr std::string_view kRegexGpt2 =
    R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))re";
inline constexpr std::string_view kRegexLlama3 =
    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
inline constexpr std::string_view kRegexLlama3Original =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

const std::vector<PreTypeRegexes>& pre_type_table();
const std::vector<PreNameEntry>& pre_name_table();

}  // namespace modu::tok
