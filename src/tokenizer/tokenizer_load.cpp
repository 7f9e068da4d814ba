// Builds a tokenizer from decoded tokenizer.ggml.* metadata: model defaults, token attributes,
// BPE merge ranks, special/EOG token detection (llama_vocab::impl::load).
#include <algorithm>
#include <array>
#include <cctype>

#include "tokenizer_impl.h"
#include "unicode.h"

namespace modu {

Result<std::unique_ptr<Tokenizer>> Tokenizer::create(TokenizerConfig config) {
  return tok::VocabTokenizer::build(std::move(config));
}

}  // namespace modu

namespace modu::tok {

namespace {

uint32_t attr_from_type(int32_t type) {
  switch (static_cast<TokenType>(type)) {
    case TokenType::kUnknown: return kAttrUnknown;
    case TokenType::kUnused: return kAttrUnused;
    case TokenType::kNormal: return kAttrNormal;
    case TokenType::kControl: return kAttrControl;
    case TokenType::kUserDefined: return kAttrUserDefined;
    case TokenType::kByte: return kAttrByte;
    default: return kAttrUndefined;
  }
}

bool contains_any(const std::string& s, std::initializer_list<std::string_view> subs) {
  return std::any_of(subs.begin(), subs.end(), [&](std::string_view sub) { return s.find(sub) != std::string::npos; });
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> VocabTokenizer::build(TokenizerConfig cfg) {
  std::unique_ptr<VocabTokenizer> t(new VocabTokenizer());
  MODU_RETURN_IF_ERROR(t->load(cfg));
  return std::unique_ptr<Tokenizer>(std::move(t));
}

Status VocabTokenizer::load(TokenizerConfig& cfg) {
  model_ = cfg.model;
  pre_ = cfg.pre.empty() ? "default" : cfg.pre;
  if (model_ == "llama") {
    type_ = VocabType::kSpm;
    bos_ = 1, eos_ = 2, unk_ = 0;
    add_space_prefix_ = true, add_bos_ = true, add_eos_ = false, clean_spaces_ = false;
  } else if (model_ == "bert") {
    type_ = VocabType::kWpm;
    bos_ = 101, unk_ = 100, sep_ = 102, pad_ = 0, mask_ = 103;
    add_space_prefix_ = false, clean_spaces_ = true, add_bos_ = true, add_eos_ = false, add_sep_ = true;
  } else if (model_ == "gpt2") {
    type_ = VocabType::kBpe;
    bos_ = 11, eos_ = 11;
    MODU_ASSIGN_OR_RETURN(PreTokenizer pre, PreTokenizer::create(cfg.pre));
    const PreTokenizerInfo& info = pre.info();
    clean_spaces_ = info.clean_spaces, ignore_merges_ = info.ignore_merges;
    add_bos_ = info.add_bos, add_sep_ = info.add_sep;
    if (info.no_bos) bos_ = -1;
    pre_tokenizer_.emplace(std::move(pre));
  } else {
    return unimplemented("tokenizer.ggml.model = '" + model_ +
                         "' is not supported (supported: llama (SPM), gpt2 (byte-level BPE), bert (WordPiece))");
  }
  if (cfg.add_space_prefix) add_space_prefix_ = *cfg.add_space_prefix;

  const size_t n = cfg.tokens.size();
  if (n == 0) return not_found("tokenizer.ggml.tokens is missing or empty");
  if (!cfg.scores.empty() && cfg.scores.size() < n) {
    return corrupt("tokenizer.ggml.scores has " + std::to_string(cfg.scores.size()) + " entries for " +
                   std::to_string(n) + " tokens");
  }
  if (!cfg.token_types.empty() && cfg.token_types.size() < n) {
    return corrupt("tokenizer.ggml.token_type has " + std::to_string(cfg.token_types.size()) + " entries for " +
                   std::to_string(n) + " tokens");
  }
  tokens_.resize(n);
  token_to_id_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    Token& tk = tokens_[i];
    tk.text = cfg.tokens[i].empty() ? "[EMPTY_" + std::to_string(i) + "]" : std::move(cfg.tokens[i]);
    if (!token_to_id_.emplace(tk.text, static_cast<int32_t>(i)).second) {
      return corrupt("duplicate token in tokenizer.ggml.tokens: '" + tk.text + "' has ids " +
                     std::to_string(token_to_id_[tk.text]) + " and " + std::to_string(i));
    }
    max_token_len_ = std::max(max_token_len_, tk.text.size());
    tk.score = cfg.scores.empty() ? 0.0f : cfg.scores[i];
    tk.attr = cfg.token_types.empty() ? kAttrNormal : attr_from_type(cfg.token_types[i]);
  }
  finish_special_tokens(cfg);
  if (type_ == VocabType::kBpe) load_merges(cfg.merges);

  // Only after the special tokens are final: the piece cache depends on attributes.
  pieces_.resize(n);
  for (size_t i = 0; i < n; ++i) pieces_[i] = compute_piece(static_cast<int32_t>(i));
  return Status::Ok();
}

void VocabTokenizer::finish_special_tokens(const TokenizerConfig& cfg) {
  const int32_t n = n_vocab();
  const auto set_id = [n](int32_t& id, const std::optional<int32_t>& value) {
    if (id >= n) id = -1;                              // default out of range: disabled
    if (value && *value >= 0 && *value < n) id = *value;  // invalid metadata keeps the default
  };
  set_id(bos_, cfg.bos_id), set_id(eos_, cfg.eos_id), set_id(eot_, cfg.eot_id), set_id(eom_, cfg.eom_id);
  set_id(unk_, cfg.unk_id), set_id(sep_, cfg.sep_id), set_id(pad_, cfg.pad_id), set_id(mask_, cfg.mask_id);
  set_id(fim_pad_, cfg.fim_pad_id), set_id(fim_rep_, cfg.fim_rep_id), set_id(fim_sep_, cfg.fim_sep_id);
  if (cfg.add_bos) add_bos_ = *cfg.add_bos;
  if (cfg.add_eos) add_eos_ = *cfg.add_eos;
  if (cfg.add_sep) add_sep_ = *cfg.add_sep;
  // llama.cpp refuses add_* without the token; adding nothing is the safe equivalent here.
  if (bos_ < 0) add_bos_ = false;
  if (eos_ < 0) add_eos_ = false;
  if (sep_ < 0) add_sep_ = false;
  if (cfg.lowercase) lowercase_ = *cfg.lowercase;
  strip_accents_ = cfg.strip_accents.value_or(lowercase_);

  // Auto-detect EOT/EOM by text (in id order, so the choice is deterministic) and force such
  // control-looking tokens to be control tokens.
  static constexpr std::array<std::string_view, 11> kEotTexts = {
      "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>",
      "_<EOT>", "[EOT]", "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", "<end_of_utterance>"};
  const auto in = [](std::string_view s, auto& list) { return std::find(list.begin(), list.end(), s) != list.end(); };
  for (int32_t id = 0; id < n; ++id) {
    Token& tk = tokens_[id];
    if (eot_ < 0 && in(tk.text, kEotTexts)) eot_ = id, tk.attr |= kAttrControl;
    if (eom_ < 0 && tk.text == "<|eom_id|>") eom_ = id, tk.attr |= kAttrControl;
  }
  // Control tokens named "unused" are unused.
  for (Token& tk : tokens_) {
    if ((tk.attr & kAttrControl) && tk.text.find("unused") != std::string::npos) tk.attr |= kAttrUnused;
  }
  // End-of-generation tokens.
  static constexpr std::array<std::string_view, 22> kEogTexts = {
      "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
      "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
      "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
      "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", "[e~["};
  for (int32_t id : {fim_pad_, fim_rep_, fim_sep_, eos_, eot_, eom_}) {
    if (id >= 0) eog_.insert(id);
  }
  for (int32_t id = 0; id < n; ++id) {
    if (in(tokens_[id].text, kEogTexts)) eog_.insert(id), tokens_[id].attr |= kAttrControl;
  }
  // gpt-oss: these are always rendered.
  for (Token& tk : tokens_) {
    if (tk.text == "<|channel|>" || tk.text == "<|message|>" || tk.text == "<|start|>" || tk.text == "<|constrain|>") {
      tk.attr = kAttrUserDefined;
    }
  }
  // o200k_harmony / solar-open: "<|end|>" is not EOG when "<|return|>"/"<|call|>" (or "<|calls|>"/"<|flush|>") are.
  const auto eog_has = [&](std::string_view text) {
    const int32_t id = find(text);
    return id >= 0 && eog_.count(id) > 0;
  };
  if (eog_has("<|end|>") && ((eog_has("<|return|>") && eog_has("<|call|>")) ||
                             (eog_has("<|calls|>") && eog_has("<|flush|>")))) {
    const int32_t end = find("<|end|>");
    eog_.erase(end);
    tokens_[end].attr = kAttrUserDefined;
  }
  // gemma4 / paddleocr: "</s>" is not EOG when "<|tool_response>" is.
  if (eog_has("<|tool_response>") && eog_has("</s>")) {
    const int32_t s = find("</s>");
    eog_.erase(s);
    tokens_[s].attr = kAttrNormal;
  }

  for (int32_t id = 0; id < n; ++id) {
    if (tokens_[id].attr & (kAttrControl | kAttrUserDefined | kAttrUnknown)) special_cache_.push_back(id);
  }
  std::stable_sort(special_cache_.begin(), special_cache_.end(),
                   [&](int32_t a, int32_t b) { return tokens_[a].text.size() > tokens_[b].text.size(); });

  // Per-model attribute fixes (llama.cpp: "Handle per token attributes").
  std::string name = cfg.general_name;
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  const auto set_attr = [&](std::string_view text, uint32_t attr, bool on) {
    const int32_t id = find(text);
    if (id < 0) return;
    tokens_[id].attr = on ? (tokens_[id].attr | attr) : (tokens_[id].attr & ~attr);
  };
  if (contains_any(cfg.pre, {"jina-v2-de", "jina-v2-es", "jina-v2-code"}) ||
      contains_any(cfg.general_architecture, {"nomic-bert-moe", "jina-bert-v3"})) {
    set_attr("<mask>", kAttrLstrip, true);
  } else if (contains_any(name, {"phi-3", "phi3"})) {
    for (int32_t id : special_cache_) tokens_[id].attr |= kAttrRstrip;
    set_attr("</s>", kAttrRstrip, true);
    for (std::string_view t : {"<unk>", "<s>", "<|endoftext|>"}) set_attr(t, kAttrRstrip, false);
  } else if (contains_any(name, {"modern-bert"})) {
    set_attr("[MASK]", kAttrLstrip, true);
  }
}

int32_t VocabTokenizer::find(std::string_view text) const {
  const auto it = token_to_id_.find(text);
  return it == token_to_id_.end() ? -1 : it->second;
}

int32_t VocabTokenizer::token_id(std::string_view text) const { return find(text); }

const std::string& VocabTokenizer::token_text(int32_t id) const {
  static const std::string kEmpty;
  return (id >= 0 && id < n_vocab()) ? tokens_[id].text : kEmpty;
}

TokenType VocabTokenizer::token_type(int32_t id) const {
  if (id < 0 || id >= n_vocab()) return TokenType::kUndefined;
  const uint32_t a = tokens_[id].attr;
  if (a & kAttrByte) return TokenType::kByte;
  if (a & kAttrControl) return TokenType::kControl;
  if (a & kAttrUserDefined) return TokenType::kUserDefined;
  if (a & kAttrUnknown) return TokenType::kUnknown;
  if (a & kAttrUnused) return TokenType::kUnused;
  if (a & kAttrNormal) return TokenType::kNormal;
  return TokenType::kUndefined;
}

void PairRankTable::reserve(size_t n) {
  size_t cap = 16;
  shift_ = 60;
  while (cap < 2 * n) cap <<= 1, --shift_;
  entries_.assign(cap, Entry{});
}

bool PairRankTable::insert(uint64_t key, int32_t rank, int32_t result) {
  for (size_t i = slot(key);; i = (i + 1) & (entries_.size() - 1)) {
    Entry& e = entries_[i];
    if (e.key == key) return false;
    if (e.key == kEmpty) {
      e = {key, rank, result};
      ++size_;
      return true;
    }
  }
}

const PairRankTable::Entry* PairRankTable::find(uint64_t key) const {
  if (entries_.empty()) return nullptr;
  for (size_t i = slot(key);; i = (i + 1) & (entries_.size() - 1)) {
    const Entry& e = entries_[i];
    if (e.key == key) return &e;
    if (e.key == kEmpty) return nullptr;
  }
}

// "first second" lines, split at the first space after position 0 (as upstream); rank = index.
// A pair seen twice keeps its first rank.
void VocabTokenizer::load_merges(const std::vector<std::string>& merges) {
  pair_ranks_.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const std::string& m = merges[i];
    const size_t pos = m.find(' ', 1);
    const std::string first = pos == std::string::npos ? "" : m.substr(0, pos);
    const std::string second = pos == std::string::npos ? "" : m.substr(pos + 1);
    const int32_t l = find(first), r = find(second);
    if (l >= 0 && r >= 0) {
      pair_ranks_.insert(PairRankTable::key(l, r), static_cast<int32_t>(i), find(first + second));
    } else {
      bpe_ranks_.emplace(first + '\0' + second, static_cast<int>(i));
    }
  }
  for (int b = 0; b < 256; ++b) byte_ids_[b] = find(byte_to_bpe_char(static_cast<uint8_t>(b)));
}

int VocabTokenizer::bpe_rank(std::string_view left, std::string_view right) const {
  thread_local std::string key;  // reused: no allocation per lookup
  key.assign(left).push_back('\0');
  key.append(right);
  const auto it = bpe_ranks_.find(std::string_view(key));
  return it == bpe_ranks_.end() ? -1 : it->second;
}

int32_t VocabTokenizer::byte_to_token(uint8_t byte) const {
  if (type_ == VocabType::kSpm) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    const char buf[7] = {'<', '0', 'x', kHex[byte >> 4], kHex[byte & 15], '>', 0};
    const int32_t id = find(buf);
    if (id >= 0) return id;
    return find(std::string(1, static_cast<char>(byte)));
  }
  return find(byte_to_bpe_char(byte));
}

}  // namespace modu::tok
