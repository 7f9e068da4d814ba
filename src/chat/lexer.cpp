// Lexer: a hand-written port of jinja2/lexer.py's tokeniter for the default delimiters with
// trim_blocks and lstrip_blocks on and keep_trailing_newline off.
#include "lexer.h"

#include <algorithm>
#include <cctype>

#include "value.h"

namespace modu::jinja {
namespace {

class Lexer {
 public:
  explicit Lexer(std::string_view source) {
    // Normalize newlines (\r\n, \r, \n -> \n) and drop one trailing newline.
    src_.reserve(source.size());
    for (size_t i = 0; i < source.size(); ++i) {
      if (source[i] == '\r') {
        if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
        src_ += '\n';
      } else {
        src_ += source[i];
      }
    }
    if (!src_.empty() && src_.back() == '\n') src_.pop_back();
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
  }

  std::vector<Token> run() {
    size_t pos = 0;
    const size_t n = src_.size();
    while (pos < n) {
      size_t tag = find_tag(pos);
      if (tag == std::string::npos) {
        push(Tok::Data, src_.substr(pos), pos);
        break;
      }
      bool line_starting = pos == 0 || src_[pos - 1] == '\n';
      char kind = src_[tag + 1];  // '{', '%', '#'
      size_t after = tag + 2;
      char sign = 0;
      if (after < n && (src_[after] == '-' || src_[after] == '+')) sign = src_[after++];
      std::string text = src_.substr(pos, tag - pos);
      // A raw block is recognized before a plain block tag.
      size_t raw_end = kind == '%' ? match_raw_begin(after) : std::string::npos;
      apply_lstrip(text, sign, kind, line_starting);
      if (!text.empty()) push(Tok::Data, std::move(text), pos);
      if (raw_end != std::string::npos) {
        pos = lex_raw(raw_end);
      } else if (kind == '#') {
        pos = lex_comment(after, tag);
      } else {
        pos = lex_tag(kind == '%', after, tag);
      }
    }
    Token eof{Tok::Eof, "", 0, 0, 0, 0};
    position(n, eof);
    tokens_.push_back(std::move(eof));
    return std::move(tokens_);
  }

 private:
  std::string src_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;

  void position(size_t off, Token& t) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), off);
    size_t line = static_cast<size_t>(it - line_starts_.begin());
    size_t start = line_starts_[line - 1];
    t.line = static_cast<int>(line);
    t.col = static_cast<int>(utf8_length(std::string_view(src_).substr(start, off - start))) + 1;
  }

  [[noreturn]] void error(size_t off, const std::string& msg) const {
    Token t;
    position(std::min(off, src_.size()), t);
    JinjaError e("TemplateSyntaxError", msg);
    e.line = t.line;
    e.col = t.col;
    throw e;
  }

  Token& push(Tok type, std::string value, size_t off) {
    Token t{type, std::move(value), 0, 0, 0, 0};
    position(off, t);
    tokens_.push_back(std::move(t));
    return tokens_.back();
  }

  size_t find_tag(size_t pos) const {
    for (size_t i = src_.find('{', pos); i != std::string::npos; i = src_.find('{', i + 1)) {
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return std::string::npos;
  }

  static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

  static std::string rstrip(const std::string& s) {
    std::u32string u = utf8_decode(s);
    while (!u.empty() && is_py_space(u.back())) u.pop_back();
    return utf8_encode(u);
  }

  static bool all_space(std::string_view s) {
    if (s.empty()) return false;
    for (char32_t c : utf8_decode(s))
      if (!is_py_space(c)) return false;
    return true;
  }

  void apply_lstrip(std::string& text, char sign, char kind, bool line_starting) const {
    if (sign == '-') {
      text = rstrip(text);
    } else if (sign != '+' && kind != '{') {
      size_t nl = text.rfind('\n');
      size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
      if ((l_pos > 0 || line_starting) && all_space(std::string_view(text).substr(l_pos))) text.resize(l_pos);
    }
  }

  // After "{%" and an optional sign: `\s*raw\s*(-%}\s*|%})`. Returns the end offset or npos.
  size_t match_raw_begin(size_t p) const {
    while (p < src_.size() && is_ws(src_[p])) ++p;
    if (src_.compare(p, 3, "raw") != 0) return std::string::npos;
    p += 3;
    while (p < src_.size() && is_ws(src_[p])) ++p;
    if (src_.compare(p, 3, "-%}") == 0) {
      p += 3;
      while (p < src_.size() && is_ws(src_[p])) ++p;
      return p;
    }
    if (src_.compare(p, 2, "%}") == 0) return p + 2;
    return std::string::npos;
  }

  // Skips the end of a block tag at p ("+%}", "-%}\s*", "%}\n?"); returns the new offset.
  size_t block_end(size_t p) const {
    if (src_[p] == '+') return p + 3;
    if (src_[p] == '-') {
      p += 3;
      while (p < src_.size() && is_ws(src_[p])) ++p;
      return p;
    }
    p += 2;
    if (p < src_.size() && src_[p] == '\n') ++p;
    return p;
  }

  size_t lex_raw(size_t pos) {
    // Find "{%" sign? \s* endraw \s* (+%}|-%}|%})
    for (size_t i = src_.find("{%", pos); i != std::string::npos; i = src_.find("{%", i + 1)) {
      size_t p = i + 2;
      char sign = 0;
      if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
      while (p < src_.size() && is_ws(src_[p])) ++p;
      if (src_.compare(p, 6, "endraw") != 0) continue;
      p += 6;
      while (p < src_.size() && is_ws(src_[p])) ++p;
      if (!(src_.compare(p, 3, "+%}") == 0 || src_.compare(p, 3, "-%}") == 0 || src_.compare(p, 2, "%}") == 0))
        continue;
      std::string text = src_.substr(pos, i - pos);
      apply_lstrip(text, sign, '%', pos == 0 || src_[pos - 1] == '\n');
      if (!text.empty()) push(Tok::Data, std::move(text), pos);
      return block_end(p);
    }
    error(pos, "Missing end of raw directive");
  }

  size_t lex_comment(size_t pos, size_t tag) {
    size_t q = src_.find("#}", pos);
    if (q == std::string::npos) error(tag, "Missing end of comment tag");
    if (q > pos && src_[q - 1] == '-') {
      size_t p = q + 2;
      while (p < src_.size() && is_ws(src_[p])) ++p;
      return p;
    }
    if (q > pos && src_[q - 1] == '+') return q + 2;
    size_t p = q + 2;
    if (p < src_.size() && src_[p] == '\n') ++p;
    return p;
  }

  size_t lex_tag(bool block, size_t p, size_t tag) {
    push(block ? Tok::BlockBegin : Tok::VarBegin, "", tag);
    std::vector<char> balance;
    const size_t n = src_.size();
    while (true) {
      if (p >= n) error(tag, block ? "unexpected end of template, expected end of block tag"
                                   : "unexpected end of template, expected end of print statement");
      if (balance.empty()) {
        if (block) {
          if (src_.compare(p, 3, "+%}") == 0 || src_.compare(p, 3, "-%}") == 0 || src_.compare(p, 2, "%}") == 0) {
            push(Tok::BlockEnd, "", p);
            return block_end(p);
          }
        } else if (src_.compare(p, 3, "-}}") == 0) {
          push(Tok::VarEnd, "", p);
          p += 3;
          while (p < n && is_ws(src_[p])) ++p;
          return p;
        } else if (src_.compare(p, 2, "}}") == 0) {
          push(Tok::VarEnd, "", p);
          return p + 2;
        }
      }
      char c = src_[p];
      if (is_ws(c)) {
        ++p;
        continue;
      }
      if (std::isdigit(static_cast<unsigned char>(c)) && (p == 0 || src_[p - 1] != '.')) {
        p = lex_number(p);
        continue;
      }
      if (std::isdigit(static_cast<unsigned char>(c))) {
        p = lex_number(p, /*int_only=*/true);
        continue;
      }
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t s = p;
        while (p < n && (std::isalnum(static_cast<unsigned char>(src_[p])) || src_[p] == '_')) ++p;
        push(Tok::Name, src_.substr(s, p - s), s);
        continue;
      }
      if (c == '\'' || c == '"') {
        p = lex_string(p);
        continue;
      }
      static const char* kOps2[] = {"//", "**", "==", "!=", ">=", "<="};
      bool matched = false;
      for (const char* op : kOps2) {
        if (src_.compare(p, 2, op) == 0) {
          push(Tok::Op, op, p);
          p += 2;
          matched = true;
          break;
        }
      }
      if (matched) continue;
      if (std::string_view("+-/*%~[](){}><=.:|,;").find(c) == std::string_view::npos)
        error(p, std::string("unexpected char '") + c + "'");
      if (c == '(' || c == '[' || c == '{') {
        balance.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
      } else if (c == ')' || c == ']' || c == '}') {
        if (balance.empty()) error(p, std::string("unexpected '") + c + "'");
        if (balance.back() != c) error(p, std::string("unexpected '") + c + "', expected '" + balance.back() + "'");
        balance.pop_back();
      }
      push(Tok::Op, std::string(1, c), p);
      ++p;
    }
  }

  size_t digits(size_t p) const {  // (\d+_)*\d+
    size_t q = p;
    while (q < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[q])) ||
                               (src_[q] == '_' && q + 1 < src_.size() &&
                                std::isdigit(static_cast<unsigned char>(src_[q + 1])) && q > p)))
      ++q;
    return q;
  }

  size_t lex_number(size_t p, bool int_only = false) {
    const size_t n = src_.size();
    auto strip = [](std::string s) {
      s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
      return s;
    };
    if (!int_only) {
      size_t q = digits(p);
      size_t frac = q;
      bool has_frac = false, has_exp = false;
      if (q < n && src_[q] == '.' && q + 1 < n && std::isdigit(static_cast<unsigned char>(src_[q + 1]))) {
        frac = digits(q + 1);
        has_frac = true;
      }
      size_t e = frac;
      if (e < n && (src_[e] == 'e' || src_[e] == 'E')) {
        size_t f = e + 1;
        if (f < n && (src_[f] == '+' || src_[f] == '-')) ++f;
        if (f < n && std::isdigit(static_cast<unsigned char>(src_[f]))) {
          e = digits(f);
          has_exp = true;
        }
      }
      if (has_frac || has_exp) {
        Token& t = push(Tok::Float, src_.substr(p, e - p), p);
        t.fval = std::stod(strip(t.value));
        return e;
      }
    }
    // Integers: 0b/0o/0x prefixes, decimal, or zeros.
    size_t q = p;
    int base = 10;
    if (src_[p] == '0' && p + 1 < n && std::string_view("bBoOxX").find(src_[p + 1]) != std::string_view::npos) {
      char b = static_cast<char>(std::tolower(static_cast<unsigned char>(src_[p + 1])));
      base = b == 'b' ? 2 : b == 'o' ? 8 : 16;
      q = p + 2;
      while (q < n && (std::isxdigit(static_cast<unsigned char>(src_[q])) || src_[q] == '_')) ++q;
    } else if (src_[p] == '0') {
      q = p + 1;
      while (q < n && (src_[q] == '0' || (src_[q] == '_' && q + 1 < n && src_[q + 1] == '0'))) ++q;
    } else {
      q = digits(p);
    }
    Token& t = push(Tok::Int, src_.substr(p, q - p), p);
    std::string body = strip(base == 10 ? t.value : t.value.substr(2));
    try {
      t.ival = std::stoll(body, nullptr, base);
    } catch (...) {
      error(p, "integer literal out of range: " + t.value);
    }
    return q;
  }

  static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  }

  size_t lex_string(size_t p) {
    const char quote = src_[p];
    size_t q = p + 1;
    std::string out;
    while (true) {
      if (q >= src_.size()) error(p, "unexpected char '" + std::string(1, quote) + "'");
      char c = src_[q];
      if (c == quote) break;
      if (c != '\\') {
        out += c;
        ++q;
        continue;
      }
      if (q + 1 >= src_.size()) error(p, "unterminated string");
      char e = src_[q + 1];
      q += 2;
      switch (e) {
        case '\n': break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'v': out += '\v'; break;
        case 'x':
        case 'u':
        case 'U': {
          size_t len = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          char32_t cp = 0;
          for (size_t k = 0; k < len; ++k) {
            int h = q + k < src_.size() ? hex_value(src_[q + k]) : -1;
            if (h < 0) error(p, "truncated \\" + std::string(1, e) + " escape");
            cp = cp * 16 + static_cast<char32_t>(h);
          }
          q += len;
          utf8_append(out, cp);
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            char32_t cp = static_cast<char32_t>(e - '0');
            for (int k = 0; k < 2 && q < src_.size() && src_[q] >= '0' && src_[q] <= '7'; ++k, ++q)
              cp = cp * 8 + static_cast<char32_t>(src_[q] - '0');
            utf8_append(out, cp);
          } else {
            out += '\\';
            out += e;
          }
      }
    }
    push(Tok::String, std::move(out), p);
    return q + 1;
  }
};

}  // namespace

std::vector<Token> tokenize(std::string_view source) { return Lexer(source).run(); }

}  // namespace modu::jinja
