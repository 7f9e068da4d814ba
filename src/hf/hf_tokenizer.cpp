// tokenizer.json + tokenizer_config.json -> tokenizer.ggml.* metadata (byte-level BPE), so a
// Hugging Face folder's tokenizer is built by Tokenizer::from_gguf exactly like a GGUF one's.
#include <functional>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>

#include "modu/hf/hf_model.h"

namespace modu {

namespace {

using json = nlohmann::json;

// Pre-tokenizer split regexes as tokenizer.json spells them -> tokenizer.ggml.pre names known to
// src/tokenizer/pretokenizer_regexes.cpp (the names llama.cpp's converter writes for them).
struct KnownRegex { const char* regex; const char* pre; };
constexpr KnownRegex kKnownRegexes[] = {
    // Llama 3 (also Kanana, Midm 2.0, Solar-style llama-bpe vocabularies).
    {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     "llama-bpe"},
    // Qwen 2 / 2.5 / 3 (also A.X 4.0 when it carries this split).
    {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     "qwen2"},
    // GPT-2's regex written out as a Split.
    {R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)", "gpt-2"},
};

std::string special_text(const json& cfg, const char* key) {
  auto it = cfg.find(key);
  if (it == cfg.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) return (*it)["content"].get<std::string>();
  return "";
}

// The tokenizer.ggml.pre name for the pre_tokenizer section, or "" if not recognized.
std::string pre_name(const json& pre) {
  if (!pre.is_object()) return "";
  const std::string type = pre.value("type", "");
  if (type == "ByteLevel") return pre.value("use_regex", true) ? "gpt-2" : "";
  if (type != "Sequence" || !pre.contains("pretokenizers") || !pre["pretokenizers"].is_array()) return "";
  const json& seq = pre["pretokenizers"];
  // [Split(regex, Isolated), ByteLevel(use_regex=false)]
  if (seq.size() == 2 && seq[0].value("type", "") == "Split" && seq[1].value("type", "") == "ByteLevel" &&
      !seq[1].value("use_regex", true) && seq[0].contains("pattern") && seq[0]["pattern"].contains("Regex")) {
    const json& r = seq[0]["pattern"]["Regex"];
    if (!r.is_string()) return "";
    for (const auto& k : kKnownRegexes)
      if (r.get<std::string>() == k.regex) return k.pre;
  }
  // [Digits(individual), ByteLevel(use_regex=true)]: GPT-2 with single digits (StarCoder, EXAONE).
  if (seq.size() == 2 && seq[0].value("type", "") == "Digits" && seq[0].value("individual_digits", false) &&
      seq[1].value("type", "") == "ByteLevel" && seq[1].value("use_regex", true))
    return "starcoder";
  return "";
}

bool has_byte_level(const json& j) {
  if (!j.is_object()) return false;
  if (j.value("type", "") == "ByteLevel") return true;
  for (const char* k : {"pretokenizers", "decoders", "processors"})
    if (j.contains(k) && j[k].is_array())
      for (const auto& e : j[k])
        if (has_byte_level(e)) return true;
  return false;
}

}  // namespace

Result<GgufMetadata> hf_tokenizer_metadata(const std::string& tok_text, const std::string& cfg_text,
                                           const std::string& label, int64_t pad_to) {
  json tj = json::parse(tok_text, nullptr, false);
  if (tj.is_discarded() || !tj.is_object()) return corrupt(label + ": tokenizer.json is not a JSON object");
  json cfg = cfg_text.empty() ? json::object() : json::parse(cfg_text, nullptr, false);
  if (cfg.is_discarded() || !cfg.is_object()) return corrupt(label + ": tokenizer_config.json is not a JSON object");
  const json& model = tj.contains("model") ? tj["model"] : json();
  if (!model.is_object() || model.value("type", "") != "BPE" || !model.contains("vocab") || !model["vocab"].is_object() ||
      !model.contains("merges") || !model["merges"].is_array())
    return unimplemented(label + ": tokenizer.json is not a BPE model with vocab and merges; only byte-level BPE "
                         "tokenizers load from Hugging Face folders (convert others with llama.cpp)");
  // SentencePiece converted to BPE (Gemma, Llama 2, Mistral, Solar): byte fallback, "▁" for spaces.
  const bool spm = !has_byte_level(tj.value("pre_tokenizer", json())) && !has_byte_level(tj.value("decoder", json()));
  if (spm && !model.value("byte_fallback", false))
    return unimplemented(label + ": tokenizer.json BPE is neither byte-level nor SentencePiece-style (byte_fallback)");
  const std::string pre = spm ? "default" : pre_name(tj.value("pre_tokenizer", json()));
  if (pre.empty())
    return unimplemented(label + ": tokenizer.json pre_tokenizer " + tj["pre_tokenizer"].dump().substr(0, 300) +
                         " is not one modu recognizes; add its regex to kKnownRegexes in src/hf/hf_tokenizer.cpp");

  // Tokens by id: vocab, then added tokens (which may extend or override it).
  std::map<int64_t, std::pair<std::string, int32_t>> by_id;  // id -> (text, token type)
  for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
    if (!it.value().is_number_unsigned()) return corrupt(label + ": tokenizer.json vocab id of '" + it.key() + "' is invalid");
    by_id[it.value().get<int64_t>()] = {it.key(), 1};
  }
  if (tj.contains("added_tokens") && tj["added_tokens"].is_array()) {
    for (const auto& a : tj["added_tokens"]) {
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_unsigned() || !a.contains("content") ||
          !a["content"].is_string())
        return corrupt(label + ": tokenizer.json added_tokens entry without id and content");
      const int64_t id = a["id"].get<int64_t>();
      const std::string content = a["content"].get<std::string>();
      // A non-special added token that is also the same vocabulary piece stays NORMAL in a
      // SentencePiece-style vocabulary (e.g. Gemma's "▁▁" runs), so it decodes like a piece.
      const bool spm_piece = spm && by_id.count(id) != 0 && by_id[id].first == content;
      by_id[id] = {content, a.value("special", false) ? 3 : spm_piece ? 1 : 4};
    }
  }
  if (by_id.empty()) return corrupt(label + ": tokenizer.json has an empty vocabulary");
  const int64_t n = std::max<int64_t>(by_id.rbegin()->first + 1, pad_to);
  if (n > (int64_t{1} << 24)) return corrupt(label + ": tokenizer.json token id " + std::to_string(n - 1) + " is too large");
  std::vector<std::string> tokens(n);
  std::vector<GgufValue> types(n, GgufValue::i32(5));  // gaps: unused padding, as llama.cpp's converter
  for (int64_t i = 0; i < n; ++i) tokens[i] = "[PAD" + std::to_string(i) + "]";
  std::map<std::string, int32_t> id_of;
  for (const auto& [id, tt] : by_id) {
    tokens[id] = tt.first;
    types[id] = GgufValue::i32(tt.second);
    id_of[tt.first] = (int32_t)id;
  }
  std::vector<std::string> merges;
  merges.reserve(model["merges"].size());
  for (const auto& m : model["merges"]) {
    if (m.is_string()) {
      merges.push_back(m.get<std::string>());
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
    } else {
      return corrupt(label + ": tokenizer.json merges entry is neither \"a b\" nor [a, b]");
    }
  }

  GgufMetadata md;
  if (spm) {
    // llama.cpp's SPM merges the adjacent pair whose concatenation has the highest score; the HF
    // conversion ranked merges by those scores, so a token's score is minus the rank of the first
    // merge producing it (tokens no merge produces rank after all merges). Byte pieces <0xXX> are
    // BYTE tokens; an "unk_token" is UNKNOWN.
    std::map<std::string, size_t> rank;
    for (size_t r = 0; r < merges.size(); ++r) {
      const size_t sp = merges[r].find(' ');
      if (sp == std::string::npos) return corrupt(label + ": tokenizer.json merge '" + merges[r] + "' has no space");
      rank.emplace(merges[r].substr(0, sp) + merges[r].substr(sp + 1), r);  // keeps the first (lowest) rank
    }
    std::vector<float> scores(n);
    const std::string unk = model.value("unk_token", json()).is_string() ? model["unk_token"].get<std::string>() : "";
    for (int64_t i = 0; i < n; ++i) {
      auto it = rank.find(tokens[i]);
      scores[i] = it != rank.end() ? -(float)it->second : -(float)(merges.size() + (size_t)i);
      const std::string& t = tokens[i];
      if (types[i].as_int() == 1 && t.size() == 6 && t.rfind("<0x", 0) == 0 && t.back() == '>') types[i] = GgufValue::i32(6);
      if (!unk.empty() && t == unk) types[i] = GgufValue::i32(2);
    }
    // A Prepend("▁") normalizer means SentencePiece's dummy prefix (Llama 2), absent in Gemma.
    const std::string norm = tj.value("normalizer", json()).dump();
    md.emplace_back("tokenizer.ggml.model", GgufValue::string("llama"));
    md.emplace_back("tokenizer.ggml.tokens", GgufValue::string_array(std::move(tokens)));
    md.emplace_back("tokenizer.ggml.scores", GgufValue::f32_array(scores));
    md.emplace_back("tokenizer.ggml.token_type", GgufValue::array(GgufType::INT32, std::move(types)));
    md.emplace_back("tokenizer.ggml.add_space_prefix", GgufValue::boolean(norm.find("\"Prepend\"") != std::string::npos));
  } else {
    md.emplace_back("tokenizer.ggml.model", GgufValue::string("gpt2"));
    md.emplace_back("tokenizer.ggml.pre", GgufValue::string(pre));
    md.emplace_back("tokenizer.ggml.tokens", GgufValue::string_array(std::move(tokens)));
    md.emplace_back("tokenizer.ggml.token_type", GgufValue::array(GgufType::INT32, std::move(types)));
    md.emplace_back("tokenizer.ggml.merges", GgufValue::string_array(std::move(merges)));
  }
  for (auto [key, gguf_key] : {std::pair{"bos_token", "bos"}, {"eos_token", "eos"}, {"unk_token", "unknown"},
                               {"pad_token", "padding"}}) {
    const std::string text = special_text(cfg, key);
    if (text.empty()) continue;
    auto it = id_of.find(text);
    if (it == id_of.end())
      return corrupt(label + ": tokenizer_config.json " + key + " '" + text + "' is not in the vocabulary");
    md.emplace_back(std::string("tokenizer.ggml.") + gguf_key + "_token_id", GgufValue::u32((uint32_t)it->second));
  }
  // add_bos / add_eos: tokenizer_config.json flags, else a TemplateProcessing post-processor's
  // leading / trailing special token; otherwise the pre-type's default applies.
  std::optional<bool> add_bos, add_eos;
  if (cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean()) add_bos = cfg["add_bos_token"].get<bool>();
  if (cfg.contains("add_eos_token") && cfg["add_eos_token"].is_boolean()) add_eos = cfg["add_eos_token"].get<bool>();
  std::function<void(const json&)> scan = [&](const json& pp) {
    if (!pp.is_object()) return;
    if (pp.value("type", "") == "TemplateProcessing" && pp.contains("single") && pp["single"].is_array() &&
        !pp["single"].empty()) {
      const json& s = pp["single"];
      if (!add_bos) add_bos = s.front().contains("SpecialToken");
      if (!add_eos) add_eos = s.back().contains("SpecialToken");
    }
    if (pp.contains("processors") && pp["processors"].is_array())
      for (const auto& e : pp["processors"]) scan(e);
  };
  scan(tj.value("post_processor", json()));
  if (add_bos) md.emplace_back("tokenizer.ggml.add_bos_token", GgufValue::boolean(*add_bos));
  if (add_eos) md.emplace_back("tokenizer.ggml.add_eos_token", GgufValue::boolean(*add_eos));
  if (cfg.contains("chat_template")) {
    const json& ct = cfg["chat_template"];
    if (ct.is_string()) {
      md.emplace_back("tokenizer.chat_template", GgufValue::string(ct.get<std::string>()));
    } else if (ct.is_array()) {  // [{name, template}, ...]: the default one
      for (const auto& e : ct)
        if (e.is_object() && e.value("name", "") == "default" && e.contains("template") && e["template"].is_string())
          md.emplace_back("tokenizer.chat_template", GgufValue::string(e["template"].get<std::string>()));
    }
  }
  return md;
}

}  // namespace modu
