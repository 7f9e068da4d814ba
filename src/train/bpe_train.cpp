// Byte-level BPE trainer: word counts from the pre-tokenizer, incremental pair counts with a lazy
// max-heap (count desc, then left id, right id asc), merges recorded in GPT-2 byte-to-unicode form.
#include "modu/train/bpe.h"

#include <algorithm>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "modu/gguf/gguf.h"
#include "pretokenizer.h"

namespace modu::train {

namespace {

void append_utf8(std::string& s, uint32_t cp) {
  if (cp < 0x80) {
    s += (char)cp;
  } else if (cp < 0x800) {
    s += (char)(0xC0 | (cp >> 6));
    s += (char)(0x80 | (cp & 0x3F));
  } else {
    s += (char)(0xE0 | (cp >> 12));
    s += (char)(0x80 | ((cp >> 6) & 0x3F));
    s += (char)(0x80 | (cp & 0x3F));
  }
}

// GPT-2's reversible byte -> printable code point table.
std::vector<std::string> byte_symbols() {
  std::vector<std::string> out(256);
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    append_utf8(out[b], printable ? (uint32_t)b : (uint32_t)(256 + n++));
  }
  return out;
}

inline uint64_t key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }

struct HeapEntry {
  int64_t count;
  int32_t a, b;
  bool operator<(const HeapEntry& o) const {  // max-heap: higher count, then smaller ids first
    if (count != o.count) return count < o.count;
    if (a != o.a) return a > o.a;
    return b > o.b;
  }
};

}  // namespace

Result<TokenizerConfig> train_bpe(std::string_view text, const BpeTrainOptions& opt) {
  const std::vector<std::string> specials = {kEndOfText, kImStart, kImEnd};
  if (opt.vocab_size < (int32_t)specials.size() + 256)
    return invalid_argument("vocab size must be at least " + std::to_string(specials.size() + 256));
  MODU_ASSIGN_OR_RETURN(tok::PreTokenizer pre, tok::PreTokenizer::create(opt.pre));

  // Word counts.
  std::unordered_map<std::string, int64_t> counts;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find("\n\n", pos);
    if (end == std::string_view::npos) end = text.size();
    for (std::string& w : pre.split(text.substr(pos, end - pos))) counts[std::move(w)] += 1;
    pos = end + 2;
  }
  // Words in a canonical (sorted) order so everything below is independent of hashing.
  std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
  counts.clear();
  std::sort(sorted.begin(), sorted.end());

  TokenizerConfig c;
  c.model = "gpt2";
  c.pre = opt.pre;
  for (const std::string& s : specials) {
    c.tokens.push_back(s);
    c.token_types.push_back((int32_t)TokenType::kControl);
  }
  const std::vector<std::string> bsym = byte_symbols();
  const int32_t byte0 = (int32_t)c.tokens.size();
  for (int b = 0; b < 256; ++b) {
    c.tokens.push_back(bsym[b]);
    c.token_types.push_back((int32_t)TokenType::kNormal);
  }
  std::vector<std::vector<int32_t>> words(sorted.size());
  std::vector<int64_t> freq(sorted.size());
  for (size_t i = 0; i < sorted.size(); ++i) {
    for (unsigned char ch : sorted[i].first) words[i].push_back(byte0 + ch);
    freq[i] = sorted[i].second;
  }
  sorted.clear();

  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> where;
  for (size_t w = 0; w < words.size(); ++w)
    for (size_t i = 0; i + 1 < words[w].size(); ++i) {
      const uint64_t k = key(words[w][i], words[w][i + 1]);
      pair_count[k] += freq[w];
      auto& v = where[k];
      if (v.empty() || v.back() != (int32_t)w) v.push_back((int32_t)w);
    }
  std::priority_queue<HeapEntry> heap;
  for (const auto& [k, n] : pair_count) heap.push({n, (int32_t)(k >> 32), (int32_t)(k & 0xffffffffu)});

  std::vector<int32_t> seen_in(words.size(), -1);
  std::vector<uint64_t> changed;
  while ((int32_t)c.tokens.size() < opt.vocab_size && !heap.empty()) {
    const HeapEntry top = heap.top();
    heap.pop();
    const uint64_t k = key(top.a, top.b);
    auto it = pair_count.find(k);
    if (it == pair_count.end() || it->second != top.count) continue;  // stale entry
    if (top.count < opt.min_frequency) break;
    const int32_t id = (int32_t)c.tokens.size();
    c.tokens.push_back(c.tokens[top.a] + c.tokens[top.b]);
    c.token_types.push_back((int32_t)TokenType::kNormal);
    c.merges.push_back(c.tokens[top.a] + " " + c.tokens[top.b]);
    changed.clear();
    const std::vector<int32_t> affected = std::move(where[k]);
    where.erase(k);
    for (int32_t w : affected) {
      if (seen_in[w] == id) continue;
      seen_in[w] = id;
      std::vector<int32_t>& s = words[w];
      bool has = false;
      for (size_t i = 0; i + 1 < s.size() && !has; ++i) has = s[i] == top.a && s[i + 1] == top.b;
      if (!has) continue;
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        const uint64_t pk = key(s[i], s[i + 1]);
        pair_count[pk] -= freq[w];
        changed.push_back(pk);
      }
      std::vector<int32_t> ns;
      ns.reserve(s.size());
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == top.a && s[i + 1] == top.b) {
          ns.push_back(id);
          ++i;
        } else {
          ns.push_back(s[i]);
        }
      }
      s = std::move(ns);
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        const uint64_t pk = key(s[i], s[i + 1]);
        pair_count[pk] += freq[w];
        auto& v = where[pk];
        if (v.empty() || v.back() != w) v.push_back(w);
        changed.push_back(pk);
      }
    }
    pair_count.erase(k);
    std::sort(changed.begin(), changed.end());
    changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
    for (uint64_t pk : changed) {
      auto pc = pair_count.find(pk);
      if (pc == pair_count.end()) continue;
      if (pc->second <= 0) {
        pair_count.erase(pc);
        continue;
      }
      heap.push({pc->second, (int32_t)(pk >> 32), (int32_t)(pk & 0xffffffffu)});
    }
  }
  c.bos_id = 0;
  c.eos_id = 0;
  c.eot_id = 2;
  c.pad_id = 0;
  c.add_bos = true;
  c.add_eos = false;
  return c;
}

std::string chatml_template() {
  return "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
         "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
}

void add_tokenizer_to_gguf(GgufWriter& w, const TokenizerConfig& c, const std::string& chat_template) {
  w.set("tokenizer.ggml.model", GgufValue::string(c.model));
  w.set("tokenizer.ggml.pre", GgufValue::string(c.pre));
  w.set("tokenizer.ggml.tokens", GgufValue::string_array(c.tokens));
  w.set("tokenizer.ggml.token_type", GgufValue::i32_array(c.token_types));
  w.set("tokenizer.ggml.merges", GgufValue::string_array(c.merges));
  if (c.bos_id) w.set("tokenizer.ggml.bos_token_id", GgufValue::u32((uint32_t)*c.bos_id));
  if (c.eos_id) w.set("tokenizer.ggml.eos_token_id", GgufValue::u32((uint32_t)*c.eos_id));
  if (c.eot_id) w.set("tokenizer.ggml.eot_token_id", GgufValue::u32((uint32_t)*c.eot_id));
  if (c.pad_id) w.set("tokenizer.ggml.padding_token_id", GgufValue::u32((uint32_t)*c.pad_id));
  if (c.add_bos) w.set("tokenizer.ggml.add_bos_token", GgufValue::boolean(*c.add_bos));
  if (c.add_eos) w.set("tokenizer.ggml.add_eos_token", GgufValue::boolean(*c.add_eos));
  if (!chat_template.empty()) w.set("tokenizer.chat_template", GgufValue::string(chat_template));
}

}  // namespace modu::train
