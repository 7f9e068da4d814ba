// Token ids -> text: per-token pieces (llama.cpp token_to_piece), whole-sequence detokenization
// with the SPM leading-space rule and optional clean-up of spaces, and the streaming detokenizer.
#include <cstdio>
#include <cstdlib>

#include "tokenizer_impl.h"
#include "unicode.h"

namespace modu::tok {

namespace {

std::string unescape_spaces(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s.compare(i, 3, "\xe2\x96\x81") == 0) {
      out += ' ';
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// llama_decode_text: byte-level BPE alphabet back to raw bytes.
std::string decode_bpe_text(const std::string& text) {
  std::string out;
  size_t off = 0;
  while (off < text.size()) {
    const uint32_t cp = decode_utf8(text, off);
    const int byte = bpe_cpt_to_byte(cp);
    if (byte >= 0) {
      out += static_cast<char>(byte);
      continue;
    }
    out += "[UNK_BYTE_0x";
    for (unsigned char c : cpt_to_utf8(cp)) {
      char hex[3];
      std::snprintf(hex, sizeof(hex), "%02x", c);
      out += hex;
    }
    out += text + "]";
  }
  return out;
}

// llama.cpp's clean_up_tokenization_spaces passes, on a byte buffer in place.
void clean_up_spaces(std::string& t) {
  const auto pass = [&t](auto&& body) {
    const size_t total_in = t.size();
    size_t total = total_in ? 1 : 0;
    for (size_t i = 1; i < total_in; ++i) body(i, total, total_in);
    t.resize(total);
  };
  pass([&t](size_t i, size_t& total, size_t) {  // " ?", " !", " .", " ,"
    const char x = t[i];
    if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) --total;
    t[total++] = x;
  });
  pass([&t](size_t& i, size_t& total, size_t n) {  // " ' " -> "'"
    const char x = t[i];
    if (x == '\'' && i + 1 < n && t[i - 1] == ' ' && t[i + 1] == ' ') {
      --total;
      t[++i] = '\0';
    }
    t[total++] = x;
  });
  pass([&t](size_t i, size_t& total, size_t n) {  // " 's", " 'm", " 're", " 've"
    const char x = t[i];
    if (t[i - 1] == ' ' && x == '\'' && i + 1 < n) {
      const char x1 = t[i + 1];
      if (x1 == 's' || x1 == 'm') {
        --total;
      } else if (i + 2 < n && ((x1 == 'r' && t[i + 2] == 'e') || (x1 == 'v' && t[i + 2] == 'e'))) {
        --total;
      }
    }
    t[total++] = x;
  });
}

}  // namespace

std::string VocabTokenizer::compute_piece(int32_t id) const {
  const Token& tk = tokens_[id];
  if (tk.attr & (kAttrUnknown | kAttrControl | kAttrUserDefined)) return tk.text;
  if (tk.attr & kAttrNormal) return type_ == VocabType::kBpe ? decode_bpe_text(tk.text) : unescape_spaces(tk.text);
  if ((tk.attr & kAttrByte) && type_ != VocabType::kWpm && tk.text.size() >= 5) {
    return std::string(1, static_cast<char>(std::strtol(tk.text.substr(3, 2).c_str(), nullptr, 16)));
  }
  return "";  // unused / undefined
}

std::string VocabTokenizer::token_to_piece(int32_t id, bool render_special) const {
  if (id < 0 || id >= n_vocab()) return "";
  if (!render_special && (tokens_[id].attr & (kAttrUnknown | kAttrControl))) return "";
  return pieces_[id];
}

std::string VocabTokenizer::decode(std::span<const int32_t> ids, bool render_special) const {
  return detokenize(ids, DecodeOptions{render_special, false, false});
}

std::string VocabTokenizer::detokenize(std::span<const int32_t> ids, const DecodeOptions& opts) const {
  bool remove_space = add_space_prefix_;
  if (opts.remove_special && add_bos_ && !ids.empty() && ids.front() == bos_) {
    remove_space = false;
    ids = ids.subspan(1);
  }
  if (opts.remove_special && add_eos_ && !ids.empty() && ids.back() == eos_) ids = ids.first(ids.size() - 1);
  std::string out;
  for (int32_t id : ids) {
    std::string piece = token_to_piece(id, opts.render_special);
    if (remove_space && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
    remove_space = false;
    out += piece;
  }
  if (opts.clean_spaces && clean_spaces_) clean_up_spaces(out);
  return out;
}

}  // namespace modu::tok

namespace modu {

StreamingDetokenizer::StreamingDetokenizer(const Tokenizer& tok, bool render_special, bool continuation)
    : tok_(tok), render_special_(render_special), first_(!continuation) {}

std::string StreamingDetokenizer::push(int32_t id) {
  std::string piece = tok_.token_to_piece(id, render_special_);
  if (first_ && tok_.add_space_prefix() && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
  first_ = false;
  pending_ += piece;
  const size_t n = tok::utf8_complete_prefix(pending_);
  std::string out = pending_.substr(0, n);
  pending_.erase(0, n);
  return out;
}

std::string StreamingDetokenizer::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace modu
