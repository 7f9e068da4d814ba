// Code point helpers for the tokenizer: UTF-8 decoding/encoding, category lookup, case/NFD maps,
// and the GPT-2 byte-to-unicode alphabet used by byte-level BPE.
#include "unicode.h"

#include <algorithm>
#include <array>

namespace modu::tok {

uint32_t decode_utf8(std::string_view s, size_t& offset) {
  const auto b = [&](size_t i) { return static_cast<uint8_t>(s[offset + i]); };
  const auto cont = [&](size_t i) { return offset + i < s.size() && (b(i) & 0xC0) == 0x80; };
  const uint8_t b0 = b(0);
  if (!(b0 & 0x80)) {
    offset += 1;
    return b0;
  }
  if ((b0 & 0x40) && !(b0 & 0x20) && cont(1)) {
    uint32_t cp = ((b0 & 0x1Fu) << 6) | (b(1) & 0x3Fu);
    offset += 2;
    return cp;
  }
  if ((b0 & 0x60) == 0x60 && !(b0 & 0x10) && cont(1) && cont(2)) {
    uint32_t cp = ((b0 & 0x0Fu) << 12) | ((b(1) & 0x3Fu) << 6) | (b(2) & 0x3Fu);
    offset += 3;
    return cp;
  }
  if ((b0 & 0x70) == 0x70 && !(b0 & 0x08) && cont(1) && cont(2) && cont(3)) {
    uint32_t cp = ((b0 & 0x07u) << 18) | ((b(1) & 0x3Fu) << 12) | ((b(2) & 0x3Fu) << 6) | (b(3) & 0x3Fu);
    offset += 4;
    return cp;
  }
  offset += 1;
  return kReplacementChar;
}

std::vector<uint32_t> cpts_from_utf8(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  size_t off = 0;
  while (off < s.size()) out.push_back(decode_utf8(s, off));
  return out;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp <= 0x7F) {
    out.push_back(static_cast<char>(cp));
  } else if (cp <= 0x7FF) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp <= 0xFFFF) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp <= 0x10FFFF) {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    append_utf8(out, kReplacementChar);
  }
}

std::string cpt_to_utf8(uint32_t cp) {
  std::string s;
  append_utf8(s, cp);
  return s;
}

namespace {

std::vector<uint8_t> build_flags() {
  std::vector<uint8_t> flags(kMaxCodepoint, kUndefined);
  for (size_t i = 0; i < kCategoryRanges_size; ++i) {
    const uint32_t end = i + 1 < kCategoryRanges_size ? kCategoryRanges[i + 1].first : kMaxCodepoint;
    std::fill(flags.begin() + kCategoryRanges[i].first, flags.begin() + end, kCategoryRanges[i].flags);
  }
  // Unicode White_Space property (PropList.txt), as llama.cpp's unicode_set_whitespace.
  static constexpr uint32_t kSpaces[] = {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680,
                                         0x2028, 0x2029, 0x202F, 0x205F, 0x3000};
  for (uint32_t cp : kSpaces) flags[cp] |= kWhitespace;
  for (uint32_t cp = 0x2000; cp <= 0x200A; ++cp) flags[cp] |= kWhitespace;
  return flags;
}

struct ByteMaps {
  std::array<std::string, 256> to_char;
  std::vector<int16_t> from_cp;  // indexed by code point (< 324)
};

ByteMaps build_byte_maps() {
  ByteMaps m;
  m.from_cp.assign(512, -1);
  std::array<bool, 256> direct{};
  for (int ch = 0x21; ch <= 0x7E; ++ch) direct[ch] = true;
  for (int ch = 0xA1; ch <= 0xAC; ++ch) direct[ch] = true;
  for (int ch = 0xAE; ch <= 0xFF; ++ch) direct[ch] = true;
  int n = 0;
  for (int ch = 0; ch < 256; ++ch) {
    const uint32_t cp = direct[ch] ? static_cast<uint32_t>(ch) : 256u + n++;
    m.to_char[ch] = cpt_to_utf8(cp);
    m.from_cp[cp] = static_cast<int16_t>(ch);
  }
  return m;
}

const ByteMaps& byte_maps() {
  static const ByteMaps maps = build_byte_maps();
  return maps;
}

}  // namespace

uint8_t cpt_flags(uint32_t cp) {
  static const std::vector<uint8_t> flags = build_flags();
  return cp < kMaxCodepoint ? flags[cp] : uint8_t{kUndefined};
}

uint32_t to_lower(uint32_t cp) {
  const CpPair* end = kLowercase + kLowercase_size;
  const CpPair* it = std::lower_bound(kLowercase, end, cp, [](const CpPair& p, uint32_t v) { return p.from < v; });
  return (it != end && it->from == cp) ? it->to : cp;
}

uint32_t nfd_first(uint32_t cp) {
  const CpNfd* end = kNfdRanges + kNfdRanges_size;
  const CpNfd* it = std::upper_bound(kNfdRanges, end, cp, [](uint32_t v, const CpNfd& r) { return v < r.first; });
  if (it == kNfdRanges) return cp;
  --it;
  return (it->first <= cp && cp <= it->last) ? it->nfd : cp;
}

const std::string& byte_to_bpe_char(uint8_t byte) { return byte_maps().to_char[byte]; }

int bpe_cpt_to_byte(uint32_t cp) {
  const auto& from = byte_maps().from_cp;
  return cp < from.size() ? from[cp] : -1;
}

size_t utf8_complete_prefix(std::string_view s) {
  // Look back at most 3 bytes for the lead byte of a trailing sequence.
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const uint8_t c = static_cast<uint8_t>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    size_t need = 0;
    if ((c & 0xE0) == 0xC0) need = 2;
    else if ((c & 0xF0) == 0xE0) need = 3;
    else if ((c & 0xF8) == 0xF0) need = 4;
    // ASCII or an invalid lead byte: nothing to wait for. A complete sequence: nothing either.
    return (need > back) ? n - back : n;
  }
  return n;
}

}  // namespace modu::tok
