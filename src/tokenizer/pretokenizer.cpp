// Pre-tokenizer engine. Follows llama.cpp's unicode_regex_split: regexes are applied in turn, each
// splitting every piece left by the previous one (text between matches stays a piece); the GPT-2
// and LLaMA-3 regexes use hand-written splitters; regexes with \p{..} run on a "collapsed" text
// (one byte per code point: ASCII kept, others replaced by a category byte) so their semantics,
// quirks included, match upstream; the rest run on UTF-8 with ASCII-only \s \d \w (std::wregex).
// PCRE2 is the regex engine (JIT when available).
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>

#include "pretokenizer.h"
#include "pretokenizer_regexes.h"
#include "unicode.h"

namespace modu::tok {

namespace {

// A text split into code points plus the two regex subjects, built on first use.
struct SplitText {
  const std::vector<uint32_t>& cpts;
  std::string collapsed;          // one byte per code point
  std::string wide;               // UTF-8, non-ASCII whitespace replaced by \v
  std::vector<size_t> wide_offs;  // code point index -> byte offset in `wide` (size n + 1)

  const std::string& get_collapsed() {
    if (collapsed.size() != cpts.size()) {
      collapsed.resize(cpts.size());
      for (size_t i = 0; i < cpts.size(); ++i) {
        const uint32_t cp = cpts[i];
        if (cp < 128) { collapsed[i] = static_cast<char>(cp); continue; }
        const uint8_t f = cpt_flags(cp);
        char c = static_cast<char>(0xD0);  // separator / control / undefined
        if (f & kWhitespace) c = 0x0B;
        else if ((f & kCategoryMask) == kNumber) c = static_cast<char>(0xD1);
        else if ((f & kCategoryMask) == kLetter) c = static_cast<char>(0xD2);
        else if ((f & kCategoryMask) == kPunctuation) c = static_cast<char>(0xD3);
        else if ((f & kCategoryMask) == kAccentMark) c = static_cast<char>(0xD4);
        else if ((f & kCategoryMask) == kSymbol) c = static_cast<char>(0xD5);
        collapsed[i] = c;
      }
    }
    return collapsed;
  }

  void build_wide() {
    if (!wide_offs.empty()) return;
    wide_offs.reserve(cpts.size() + 1);
    for (uint32_t cp : cpts) {
      wide_offs.push_back(wide.size());
      if (cp > 0x7F && is_whitespace(cp)) cp = 0x0B;
      if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) cp = kReplacementChar;  // keep PCRE2 input valid
      append_utf8(wide, cp);
    }
    wide_offs.push_back(wide.size());
  }
};

// Offsets are piece lengths in code points; each splitter maps old pieces to new pieces.
using Offsets = std::vector<size_t>;

// Hand-written splitters: llama.cpp unicode_regex_split_custom_gpt2 / _llama3.
struct CustomCursor {
  const std::vector<uint32_t>& cpts;
  size_t ini, end;
  static constexpr uint32_t kOut = 0xFFFFFFFF;
  uint32_t cpt(size_t pos) const { return (ini <= pos && pos < end) ? cpts[pos] : kOut; }
  uint8_t flags(size_t pos) const { return (ini <= pos && pos < end) ? cpt_flags(cpts[pos]) : 0; }
  static bool letter(uint8_t f) { return (f & kCategoryMask) == kLetter; }
  static bool number(uint8_t f) { return (f & kCategoryMask) == kNumber; }
  static bool space(uint8_t f) { return f & kWhitespace; }
};

template <bool kLlama3>
Offsets split_custom(const std::vector<uint32_t>& cpts, const Offsets& offsets) {
  Offsets out;
  out.reserve(offsets.size());
  size_t start = 0;
  for (size_t offset : offsets) {
    const CustomCursor c{cpts, start, start + offset};
    start += offset;
    size_t prev_end = c.ini;
    auto add = [&](size_t end) {
      const size_t len = end - prev_end;
      if (len > 0) out.push_back(len);
      prev_end = end;
      return len;
    };
    const auto L = CustomCursor::letter;
    const auto N = CustomCursor::number;
    const auto S = CustomCursor::space;
    for (size_t pos = c.ini; pos < c.end;) {
      const uint32_t cp = c.cpt(pos);
      const uint8_t fl = c.flags(pos);
      // 's|'t|'re|'ve|'m|'ll|'d (case-insensitive for llama3)
      if (cp == '\'' && pos + 1 < c.end) {
        const uint32_t n1 = kLlama3 ? to_lower(c.cpt(pos + 1)) : c.cpt(pos + 1);
        if (n1 == 's' || n1 == 't' || n1 == 'm' || n1 == 'd') {
          pos += add(pos + 2);
          continue;
        }
        if (pos + 2 < c.end) {
          const uint32_t n2 = kLlama3 ? to_lower(c.cpt(pos + 2)) : c.cpt(pos + 2);
          if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l')) {
            pos += add(pos + 3);
            continue;
          }
        }
      }
      if constexpr (kLlama3) {
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if (!(cp == '\r' || cp == '\n' || N(fl)) && (L(fl) || L(c.flags(pos + 1)))) {
          ++pos;
          while (L(c.flags(pos))) ++pos;
          add(pos);
          continue;
        }
        // \p{N}{1,3}
        if (N(fl)) {
          size_t ini = pos;
          while (N(c.flags(pos))) {
            if (++pos - ini >= 3) {
              add(pos);
              ini = pos;
            }
          }
          add(pos);
          continue;
        }
        // <space>?[^\s\p{L}\p{N}]+[\r\n]*
        uint8_t f2 = cp == ' ' ? c.flags(pos + 1) : fl;
        if (!(S(f2) || L(f2) || N(f2)) && fl) {
          pos += (cp == ' ');
          while (!(S(f2) || L(f2) || N(f2)) && f2) f2 = c.flags(++pos);
          while (c.cpt(pos) == '\r' || c.cpt(pos) == '\n') ++pos;
          add(pos);
          continue;
        }
      } else {
        uint8_t f2 = cp == ' ' ? c.flags(pos + 1) : fl;
        // <space>?\p{L}+ | <space>?\p{N}+ | <space>?[^\s\p{L}\p{N}]+
        if (L(f2) || N(f2) || (!(S(f2) || L(f2) || N(f2)) && f2)) {
          const auto same = [&](uint8_t f) {
            if (L(f2)) return L(f);
            if (N(f2)) return N(f);
            return !(S(f) || L(f) || N(f)) && f != 0;
          };
          pos += (cp == ' ');
          while (same(c.flags(pos))) ++pos;
          add(pos);
          continue;
        }
      }
      size_t num_ws = 0, last_rn = 0;
      while (S(c.flags(pos + num_ws))) {
        const uint32_t cp2 = c.cpt(pos + num_ws);
        if (kLlama3 && (cp2 == '\r' || cp2 == '\n')) last_rn = pos + num_ws + 1;
        ++num_ws;
      }
      if (kLlama3 && last_rn > 0) {  // \s*[\r\n]+
        pos = last_rn;
        add(pos);
        continue;
      }
      if (num_ws > 1 && c.cpt(pos + num_ws) != CustomCursor::kOut) {  // \s+(?!\S)
        pos += num_ws - 1;
        add(pos);
        continue;
      }
      if (num_ws > 0) {  // \s+
        pos += num_ws;
        add(pos);
        continue;
      }
      add(++pos);  // no match: a single code point
    }
  }
  return out;
}

// llama.cpp's category classes that trigger the collapsed path and what they expand to there.
struct CollapsedClass { const char* name; char byte; const char* ascii; };
constexpr CollapsedClass kCollapsedClasses[] = {
    {"\\p{N}", '\xD1', "0-9"},
    {"\\p{L}", '\xD2', "A-Za-z"},
    {"\\p{P}", '\xD3', "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}"},
    {"\\p{M}", '\xD4', ""},
    {"\\p{S}", '\xD5', "\\$\\+<=>\\^`\\|"},
    {"\\p{Lu}", '\xD2', "A-Za-z"}, {"\\p{Ll}", '\xD2', "A-Za-z"}, {"\\p{Lt}", '\xD2', "A-Za-z"},
    {"\\p{Lm}", '\xD2', "A-Za-z"}, {"\\p{Lo}", '\xD2', "A-Za-z"},
};

bool uses_categories(std::string_view re) {
  for (const auto& c : kCollapsedClasses) {
    if (re.find(c.name) != std::string_view::npos) return true;
  }
  return false;
}

// Rewrites \p{X} into a byte class over the collapsed text (same rules as upstream).
std::string collapse_regex(std::string_view re) {
  std::string out;
  bool inside = false;
  for (size_t i = 0; i < re.size(); ++i) {
    if (re[i] == '[' && (i == 0 || re[i - 1] != '\\')) {
      out += '[';
      inside = true;
      continue;
    }
    if (inside && re[i] == ']' && re[i - 1] != '\\') {
      out += ']';
      inside = false;
      continue;
    }
    if (re[i] == '\\' && i + 3 < re.size() && re[i + 1] == 'p' && re[i + 2] == '{') {
      const size_t close = re.find('}', i + 3);
      if (close != std::string_view::npos && close <= i + 10) {
        const std::string_view pat = re.substr(i, close - i + 1);
        const CollapsedClass* cls = nullptr;
        for (const auto& c : kCollapsedClasses) {
          if (pat == c.name) cls = &c;
        }
        if (cls) {
          if (!inside) out += '[';
          out += cls->byte;
          out += cls->ascii;
          if (!inside) out += ']';
          i = close;
          continue;
        }
      }
    }
    out += re[i];
  }
  return out;
}

struct MatchResources {
  pcre2_match_context* ctx = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  MatchResources() {
    ctx = pcre2_match_context_create(nullptr);
    jit_stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
    if (ctx && jit_stack) pcre2_jit_stack_assign(ctx, nullptr, jit_stack);
  }
  ~MatchResources() {
    if (jit_stack) pcre2_jit_stack_free(jit_stack);
    if (ctx) pcre2_match_context_free(ctx);
  }
};

MatchResources& match_resources() {
  thread_local MatchResources res;
  return res;
}

}  // namespace

class CompiledRegex {
 public:
  enum class Kind { kGpt2, kLlama3, kCollapsed, kWide };

  static Result<std::unique_ptr<CompiledRegex>> compile(std::string_view re) {
    auto out = std::make_unique<CompiledRegex>();
    if (re == kRegexGpt2) {
      out->kind_ = Kind::kGpt2;
      return out;
    }
    if (re == kRegexLlama3 || re == kRegexLlama3Original) {
      out->kind_ = Kind::kLlama3;
      return out;
    }
    out->kind_ = uses_categories(re) ? Kind::kCollapsed : Kind::kWide;
    const std::string pattern = out->kind_ == Kind::kCollapsed ? collapse_regex(re) : std::string(re);
    const uint32_t opts = PCRE2_DOLLAR_ENDONLY | (out->kind_ == Kind::kWide ? PCRE2_UTF : 0);
    int err = 0;
    PCRE2_SIZE err_off = 0;
    out->code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), opts, &err,
                               &err_off, nullptr);
    if (!out->code_) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof(msg));
      return internal_error("pre-tokenizer regex '" + std::string(re) + "' does not compile at offset " +
                            std::to_string(err_off) + ": " + reinterpret_cast<const char*>(msg));
    }
    pcre2_jit_compile(out->code_, PCRE2_JIT_COMPLETE);  // best effort; the interpreter is the fallback
    return out;
  }

  ~CompiledRegex() {
    if (code_) pcre2_code_free(code_);
  }

  Offsets split(SplitText& t, const Offsets& offsets) const {
    switch (kind_) {
      case Kind::kGpt2: return split_custom<false>(t.cpts, offsets);
      case Kind::kLlama3: return split_custom<true>(t.cpts, offsets);
      default: break;
    }
    const bool wide = kind_ == Kind::kWide;
    if (wide) t.build_wide();
    const std::string& subject = wide ? t.wide : t.get_collapsed();
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_, nullptr);
    pcre2_match_context* ctx = match_resources().ctx;
    Offsets out;
    out.reserve(offsets.size());
    size_t start = 0;  // code point index of the piece
    for (size_t offset : offsets) {
      const size_t b0 = wide ? t.wide_offs[start] : start;
      const size_t b1 = wide ? t.wide_offs[start + offset] : start + offset;
      const auto* subj = reinterpret_cast<PCRE2_SPTR>(subject.data() + b0);
      const size_t len = b1 - b0;
      // Byte offset within the piece -> code point offset. Queries never go backwards, so count
      // UTF-8 lead bytes from the last position.
      size_t cur_byte = 0, cur_cpt = 0;
      const auto to_cpt = [&](size_t byte) {
        if (!wide) return byte;
        for (; cur_byte < byte; ++cur_byte) cur_cpt += (static_cast<uint8_t>(subj[cur_byte]) & 0xC0) != 0x80;
        return cur_cpt;
      };
      size_t prev_end = 0, pos = 0;  // bytes within the piece
      uint32_t opts = 0;
      while (pos <= len) {
        const int rc = pcre2_match(code_, subj, len, pos, opts | (wide ? PCRE2_NO_UTF_CHECK : 0), md, ctx);
        if (rc < 0) {
          if (opts == 0) break;  // no further match (or a matching error: rest stays one piece)
          opts = 0;              // after an empty match, step one character and search again
          pos += pos < len ? (wide ? utf8_len(subject[b0 + pos]) : 1) : 1;
          continue;
        }
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        const size_t ms = ov[0], me = ov[1];
        const size_t c_prev = to_cpt(prev_end), c_ms = to_cpt(ms), c_me = to_cpt(me);
        if (ms > prev_end) out.push_back(c_ms - c_prev);
        out.push_back(c_me - c_ms);
        prev_end = me;
        pos = me;
        opts = (me == ms) ? (PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED) : 0;
      }
      if (prev_end < len) {
        const size_t c_prev = to_cpt(prev_end);
        out.push_back(to_cpt(len) - c_prev);
      }
      start += offset;
    }
    pcre2_match_data_free(md);
    return out;
  }

 private:
  Kind kind_ = Kind::kWide;
  pcre2_code* code_ = nullptr;
};

PreTokenizer::~PreTokenizer() = default;
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;

std::vector<std::string> PreTokenizer::known_names() {
  std::vector<std::string> names;
  for (const auto& e : pre_name_table()) names.emplace_back(e.name);
  return names;
}

Result<PreTokenizer> PreTokenizer::from_regexes(const std::vector<std::string>& regexes) {
  PreTokenizer p;
  p.info_.type = "custom";
  for (const auto& re : regexes) {
    MODU_ASSIGN_OR_RETURN(auto compiled, CompiledRegex::compile(re));
    p.compiled_.push_back(std::move(compiled));
    p.regexes_.push_back(re);
  }
  return p;
}

Result<PreTokenizer> PreTokenizer::create(std::string_view name) {
  if (name.empty()) name = "default";
  const auto& names = pre_name_table();
  const auto it = std::find_if(names.begin(), names.end(), [&](const PreNameEntry& e) { return e.name == name; });
  if (it == names.end()) {
    std::string known;
    for (const auto& e : names) known += (known.empty() ? "" : ", ") + std::string(e.name);
    return unimplemented("unknown BPE pre-tokenizer tokenizer.ggml.pre = '" + std::string(name) +
                         "'; known: " + known);
  }
  const auto& types = pre_type_table();
  const auto type = std::find_if(types.begin(), types.end(), [&](const PreTypeRegexes& t) { return t.type == it->info.type; });
  MODU_CHECK_MSG(type != types.end(), "pre-tokenizer table has no type " + std::string(it->info.type));
  std::vector<std::string> regexes(type->regexes.begin(), type->regexes.end());
  MODU_ASSIGN_OR_RETURN(PreTokenizer p, from_regexes(regexes));
  p.info_ = it->info;
  return p;
}

std::vector<std::string> PreTokenizer::split(std::string_view text) const {
  const std::vector<uint32_t> cpts = cpts_from_utf8(text);
  SplitText t{cpts, {}, {}, {}};
  Offsets offsets{cpts.size()};
  for (const auto& re : compiled_) offsets = re->split(t, offsets);
  std::vector<std::string> words;
  words.reserve(offsets.size());
  size_t start = 0;
  for (size_t len : offsets) {
    if (len == 0) continue;
    std::string w;
    for (size_t i = start; i < start + len; ++i) append_utf8(w, cpts[i]);
    words.push_back(std::move(w));
    start += len;
  }
  return words;
}

}  // namespace modu::tok
