// Text -> token ids: special-token partition (llama.cpp tokenizer_st_partition), then SPM bigram
// merging by score, byte-level BPE merging by rank, or WordPiece greedy longest match.
#include <algorithm>
#include <array>
#include <queue>

#include "tokenizer_impl.h"
#include "unicode.h"

namespace modu::tok {

namespace {

bool is_c_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

constexpr std::string_view kSpaceMarker = "\xe2\x96\x81";  // U+2581 "▁"

struct Symbol {
  int prev, next;
  size_t off, n;  // bytes of the word / text
};

}  // namespace

std::vector<VocabTokenizer::Fragment> VocabTokenizer::partition(std::string_view text, bool parse_special) const {
  std::vector<Fragment> frags;
  if (text.empty()) return frags;
  frags.push_back({-1, 0, text.size()});
  std::array<bool, 256> present{};
  for (char c : text) present[static_cast<uint8_t>(c)] = true;

  std::vector<Fragment> next;
  for (int32_t id : special_cache_) {
    const Token& tk = tokens_[id];
    if (!parse_special && (tk.attr & (kAttrControl | kAttrUnknown))) continue;
    if (!present[static_cast<uint8_t>(tk.text[0])]) continue;  // cannot occur in the text
    next.clear();
    bool changed = false;
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t off = f.off, len = f.len;
      while (len > 0) {
        const size_t match = text.substr(0, off + len).find(tk.text, off);
        if (match == std::string_view::npos) {
          next.push_back({-1, off, len});
          break;
        }
        changed = true;
        size_t left_len = match - off;
        if (tk.attr & kAttrLstrip) {
          while (left_len > 0 && is_c_space(text[off + left_len - 1])) --left_len;
        }
        if (left_len > 0) next.push_back({-1, off, left_len});
        next.push_back({id, 0, 0});
        size_t right_off = match + tk.text.size();
        size_t right_len = off + len - right_off;
        if (tk.attr & kAttrRstrip) {
          while (right_len > 0 && is_c_space(text[right_off])) ++right_off, --right_len;
        }
        off = right_off, len = right_len;
      }
    }
    if (changed) frags.swap(next);
  }
  return frags;
}

std::vector<int32_t> VocabTokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> out;
  const std::vector<Fragment> frags = partition(text, parse_special);
  switch (type_) {
    case VocabType::kSpm: {
      // The first raw fragment, and any right after a special token, get the space prefix.
      bool prev_special = true;
      if (add_special && add_bos_) out.push_back(bos_);
      for (const Fragment& f : frags) {
        if (f.token >= 0) {
          out.push_back(f.token);
          prev_special = true;
          continue;
        }
        std::string s;
        s.reserve(f.len + 4);
        if (add_space_prefix_ && prev_special) s += kSpaceMarker;
        for (char c : text.substr(f.off, f.len)) {
          if (c == ' ') s += kSpaceMarker;
          else s += c;
        }
        tokenize_spm(s, out);
        prev_special = false;
      }
      if (add_special && add_eos_) out.push_back(eos_);
      break;
    }
    case VocabType::kBpe:
      if (add_special && add_bos_) out.push_back(bos_);
      for (const Fragment& f : frags) {
        if (f.token >= 0) out.push_back(f.token);
        else tokenize_bpe(text.substr(f.off, f.len), out);
      }
      if (add_special && add_eos_) out.push_back(eos_);
      break;
    case VocabType::kWpm:
      // llama.cpp: WordPiece always wraps in [CLS] ... [SEP] when add_special.
      if (add_special && bos_ >= 0) out.push_back(bos_);
      for (const Fragment& f : frags) {
        if (f.token >= 0) out.push_back(f.token);
        else tokenize_wpm(text.substr(f.off, f.len), out);
      }
      if (add_special && sep_ >= 0) out.push_back(sep_);
      break;
  }
  return out;
}

// llm_tokenizer_spm: merge the adjacent pair whose concatenation is the highest-scoring token
// (ties: leftmost), until none is left; leftovers become byte tokens.
void VocabTokenizer::tokenize_spm(const std::string& text, std::vector<int32_t>& out) const {
  std::vector<Symbol> sym;
  for (size_t off = 0; off < text.size();) {
    const size_t n = std::min(utf8_len(text[off]), text.size() - off);
    const int idx = static_cast<int>(sym.size());
    sym.push_back({idx - 1, off + n == text.size() ? -1 : idx + 1, off, n});
    off += n;
  }
  struct Bigram {
    int left, right;
    float score;
    size_t size;
  };
  const auto cmp = [](const Bigram& l, const Bigram& r) {
    return l.score < r.score || (l.score == r.score && l.left > r.left);
  };
  std::priority_queue<Bigram, std::vector<Bigram>, decltype(cmp)> queue(cmp);
  const auto try_add = [&](int left, int right) {
    if (left == -1 || right == -1) return;
    const size_t size = sym[left].n + sym[right].n;
    const int32_t id = find(std::string_view(text).substr(sym[left].off, size));
    if (id < 0) return;
    queue.push({left, right, tokens_[id].score, size});
  };
  for (int i = 1; i < static_cast<int>(sym.size()); ++i) try_add(i - 1, i);
  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = sym[b.left];
    Symbol& r = sym[b.right];
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;  // stale
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
  for (int i = sym.empty() ? -1 : 0; i != -1; i = sym[i].next) {
    const std::string_view piece = std::string_view(text).substr(sym[i].off, sym[i].n);
    const int32_t id = find(piece);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    for (char c : piece) {  // byte fallback
      const int32_t b = byte_to_token(static_cast<uint8_t>(c));
      if (b >= 0) out.push_back(b);
      else if (unk_ >= 0) out.push_back(unk_);
    }
  }
}

// llm_tokenizer_bpe_session: per pre-tokenized word, byte-encode, then repeatedly merge the
// adjacent pair with the lowest merge rank (ties: leftmost). Symbols carry their token id so most
// rank lookups are by id pair; symbols that are not tokens fall back to the string table.
void VocabTokenizer::tokenize_bpe(std::string_view text, std::vector<int32_t>& out) const {
  struct Sym {
    int prev, next;
    size_t off, n;  // bytes of the encoded word
    int32_t id;     // token id of the symbol's text, -1 if it is not a token
  };
  struct Bigram {
    int left, right;
    int rank;
    size_t n_left, n_right;  // symbol sizes when queued: a changed size means the pair is stale
    int32_t result;          // token id of the merged text
  };
  const auto cmp = [](const Bigram& l, const Bigram& r) {
    return l.rank > r.rank || (l.rank == r.rank && l.left > r.left);
  };
  std::vector<Sym> sym;
  std::string word;
  for (const std::string& raw : pre_tokenizer_->split(text)) {
    word.clear();
    for (char c : raw) word += byte_to_bpe_char(static_cast<uint8_t>(c));
    const std::string_view w = word;
    sym.clear();
    const int32_t whole = ignore_merges_ ? find(w) : -1;
    if (whole >= 0) {
      sym.push_back({-1, -1, 0, w.size(), whole});
    } else {
      // Each raw byte became exactly one character of the encoded word.
      size_t off = 0;
      for (size_t i = 0; i < raw.size(); ++i) {
        const size_t n = byte_to_bpe_char(static_cast<uint8_t>(raw[i])).size();
        const int idx = static_cast<int>(sym.size());
        sym.push_back({idx - 1, i + 1 == raw.size() ? -1 : idx + 1, off, n, byte_ids_[static_cast<uint8_t>(raw[i])]});
        off += n;
      }
    }
    std::priority_queue<Bigram, std::vector<Bigram>, decltype(cmp)> queue(cmp);
    const auto add = [&](int left, int right) {
      if (left == -1 || right == -1) return;
      const Sym& l = sym[left];
      const Sym& r = sym[right];
      int rank, result;
      if (l.id >= 0 && r.id >= 0) {
        const PairRankTable::Entry* e = pair_ranks_.find(PairRankTable::key(l.id, r.id));
        if (!e) return;
        rank = e->rank, result = e->result;
      } else {
        rank = bpe_rank(w.substr(l.off, l.n), w.substr(r.off, r.n));
        if (rank < 0) return;
        result = find(w.substr(l.off, l.n + r.n));
      }
      queue.push({left, right, rank, l.n, r.n, result});
    };
    for (int i = 1; i < static_cast<int>(sym.size()); ++i) add(i - 1, i);
    while (!queue.empty()) {
      const Bigram b = queue.top();
      queue.pop();
      Sym& l = sym[b.left];
      Sym& r = sym[b.right];
      // Outdated when either side was merged away or grew since the pair was queued (symbols only
      // grow in place, so equal sizes mean equal texts, as upstream's string comparison).
      if (l.n == 0 || r.n == 0 || l.n != b.n_left || r.n != b.n_right) continue;
      l.n += r.n;
      l.id = b.result;
      r.n = 0;
      l.next = r.next;
      if (r.next >= 0) sym[r.next].prev = b.left;
      add(l.prev, b.left);
      add(b.left, l.next);
    }
    for (const Sym& s : sym) {
      if (s.n == 0) continue;
      if (s.id >= 0) {
        out.push_back(s.id);
        continue;
      }
      for (char c : w.substr(s.off, s.n)) {  // as upstream: single bytes of the encoded text that are tokens
        const int32_t b = find(std::string_view(&c, 1));
        if (b >= 0) out.push_back(b);
      }
    }
  }
}

// llm_tokenizer_wpm_session::preprocess: NFD (first code point only, as upstream), drop controls
// and accents, lowercase, split on whitespace, punctuation, ASCII symbols and CJK ideographs.
std::vector<std::string> VocabTokenizer::wpm_preprocess(std::string_view text) const {
  const auto is_chinese = [](uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
  };
  std::vector<std::string> words(1);
  for (uint32_t cp : cpts_from_utf8(text)) {
    if (strip_accents_) cp = nfd_first(cp);
    const uint8_t f = cpt_flags(cp);
    const uint8_t cat = f & kCategoryMask;
    if (f & kWhitespace) {
      if (!words.back().empty()) words.emplace_back();
      continue;
    }
    if (cp == 0 || cp == kReplacementChar || cat == kControl) continue;
    if (strip_accents_ && cat == kAccentMark) continue;
    const std::string s = cpt_to_utf8(lowercase_ ? to_lower(cp) : cp);
    if (cat == kPunctuation || (cp < 0x7F && cat == kSymbol) || is_chinese(cp)) {
      if (!words.back().empty()) words.emplace_back();
      words.back() = s;
      words.emplace_back();
    } else {
      words.back() += s;
    }
  }
  if (words.back().empty()) words.pop_back();
  return words;
}

// llm_tokenizer_wpm_session::tokenize: greedy longest match over "▁" + word; a word with an
// unmatched position becomes [UNK].
void VocabTokenizer::tokenize_wpm(std::string_view text, std::vector<int32_t>& out) const {
  for (const std::string& word : wpm_preprocess(text)) {
    if (word.empty()) continue;
    const std::string w = std::string(kSpaceMarker) + word;
    const size_t n = w.size();
    const size_t start = out.size();
    for (size_t i = 0; i < n; ++i) {
      bool match = false;
      for (size_t j = std::min(n, i + max_token_len_ + 1); j > i; --j) {
        const int32_t id = find(std::string_view(w).substr(i, j - i));
        if (id >= 0) {
          out.push_back(id);
          match = true;
          i = j - 1;
          break;
        }
      }
      if (!match) {
        out.resize(start);
        break;
      }
    }
    if (out.size() == start && unk_ >= 0) out.push_back(unk_);
  }
}

}  // namespace modu::tok
