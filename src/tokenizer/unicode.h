// Code point helpers for the tokenizer: UTF-8 <-> code points (with llama.cpp's error handling),
// general-category classes, simple lowercase, NFD first code point, GPT-2 byte <-> unicode map.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace modu::tok {

// Category class bits (one per code point), plus kWhitespace (Unicode White_Space property).
enum CpFlags : uint8_t {
  kUndefined = 0, kNumber = 1, kLetter = 2, kSeparator = 4, kAccentMark = 8,
  kPunctuation = 16, kSymbol = 32, kControl = 64, kWhitespace = 128,
};
constexpr uint8_t kCategoryMask = 0x7F;

// Generated tables (unicode_tables.cpp).
struct CpRange { uint32_t first; uint8_t flags; };      // flags hold from `first` to the next entry
struct CpPair { uint32_t from; uint32_t to; };
struct CpNfd { uint32_t first; uint32_t last; uint32_t nfd; };
extern const CpRange kCategoryRanges[];
extern const size_t kCategoryRanges_size;
extern const CpPair kLowercase[];
extern const size_t kLowercase_size;
extern const CpNfd kNfdRanges[];
extern const size_t kNfdRanges_size;

constexpr uint32_t kMaxCodepoint = 0x110000;
constexpr uint32_t kReplacementChar = 0xFFFD;

// Byte length of a UTF-8 sequence from its lead byte (1 for continuation/invalid bytes).
inline size_t utf8_len(char lead) {
  static constexpr uint8_t kLookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLookup[static_cast<uint8_t>(lead) >> 4];
}

// Decodes one code point at `offset` and advances it. Malformed input yields U+FFFD and advances
// by one byte (llama.cpp's unicode_cpts_from_utf8 behaviour).
uint32_t decode_utf8(std::string_view s, size_t& offset);
std::vector<uint32_t> cpts_from_utf8(std::string_view s);
void append_utf8(std::string& out, uint32_t cp);  // cp > 0x10FFFF is written as U+FFFD
std::string cpt_to_utf8(uint32_t cp);

uint8_t cpt_flags(uint32_t cp);  // category class | kWhitespace
inline bool is_whitespace(uint32_t cp) { return cpt_flags(cp) & kWhitespace; }
uint32_t to_lower(uint32_t cp);
uint32_t nfd_first(uint32_t cp);  // first code point of the canonical decomposition

// GPT-2 byte-level BPE alphabet: every byte has a printable code point.
const std::string& byte_to_bpe_char(uint8_t byte);
int bpe_cpt_to_byte(uint32_t cp);  // -1 when cp is not in the alphabet

// Length of the longest prefix of `s` that does not end inside an incomplete (but so far valid)
// UTF-8 sequence. Bytes that can never become valid are not held back.
size_t utf8_complete_prefix(std::string_view s);

}  // namespace modu::tok
