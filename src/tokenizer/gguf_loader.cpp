// Tokenizer::from_gguf: decodes the tokenizer.ggml.* metadata of a GGUF file into a
// TokenizerConfig. Errors name the offending key.
#include <cstdio>

#include "modu/gguf/gguf.h"
#include "tokenizer_impl.h"

namespace modu {

namespace {

constexpr std::string_view kPrefix = "tokenizer.ggml.";

Status wrong_type(const std::string& key, const GgufValue& v, const char* want) {
  std::string got = gguf_type_name(v.type());
  if (v.is_array()) got += std::string(" of ") + gguf_type_name(v.array_type());
  return invalid_argument("GGUF key '" + key + "' has type " + got + ", expected " + want);
}

Result<std::vector<std::string>> string_array(const GgufFile& f, const std::string& key) {
  std::vector<std::string> out;
  const GgufValue* v = f.find(key);
  if (!v) return out;
  if (!v->is_array() || v->array_type() != GgufType::STRING) return wrong_type(key, *v, "array of string");
  out.reserve(v->size());
  for (const GgufValue& e : v->elems()) out.push_back(*e.as_string());
  return out;
}

template <typename T>
Result<std::vector<T>> number_array(const GgufFile& f, const std::string& key) {
  std::vector<T> out;
  const GgufValue* v = f.find(key);
  if (!v) return out;
  if (!v->is_array()) return wrong_type(key, *v, "array of numbers");
  out.reserve(v->size());
  for (const GgufValue& e : v->elems()) {
    const auto x = std::is_floating_point_v<T> ? e.as_float() : (e.is_integer() ? std::optional<double>(*e.as_int()) : std::nullopt);
    if (!x) return wrong_type(key, *v, "array of numbers");
    out.push_back(static_cast<T>(*x));
  }
  return out;
}

Status read_id(const GgufFile& f, const std::string& key, std::optional<int32_t>& out) {
  if (!f.find(key)) return Status::Ok();
  MODU_ASSIGN_OR_RETURN(int64_t v, f.get_int(key));
  out = (v >= 0 && v <= INT32_MAX) ? static_cast<int32_t>(v) : -1;  // -1: invalid, model default kept
  return Status::Ok();
}

Status read_flag(const GgufFile& f, const std::string& key, std::optional<bool>& out) {
  if (!f.find(key)) return Status::Ok();
  MODU_ASSIGN_OR_RETURN(bool v, f.get_bool(key));
  out = v;
  return Status::Ok();
}

Result<TokenizerConfig> read_config(const GgufFile& f) {
  const auto k = [](std::string_view name) { return std::string(kPrefix) + std::string(name); };
  TokenizerConfig c;
  if (!f.find(k("model"))) return not_found("GGUF key '" + k("model") + "' is missing: the file has no tokenizer");
  MODU_ASSIGN_OR_RETURN(c.model, f.get_string(k("model")));
  MODU_ASSIGN_OR_RETURN(c.pre, f.get_string(k("pre"), std::string()));
  MODU_ASSIGN_OR_RETURN(c.tokens, string_array(f, k("tokens")));
  if (c.tokens.empty()) return not_found("GGUF key '" + k("tokens") + "' is missing or empty");
  MODU_ASSIGN_OR_RETURN(c.scores, number_array<float>(f, k("scores")));
  MODU_ASSIGN_OR_RETURN(c.token_types, number_array<int32_t>(f, k("token_type")));
  if (c.model == "gpt2" && !f.find(k("merges"))) {
    return not_found("GGUF key '" + k("merges") + "' is missing (required for model 'gpt2')");
  }
  MODU_ASSIGN_OR_RETURN(c.merges, string_array(f, k("merges")));
  const std::pair<const char*, std::optional<int32_t>*> ids[] = {
      {"bos_token_id", &c.bos_id}, {"eos_token_id", &c.eos_id}, {"eot_token_id", &c.eot_id},
      {"eom_token_id", &c.eom_id}, {"unknown_token_id", &c.unk_id}, {"seperator_token_id", &c.sep_id},
      {"padding_token_id", &c.pad_id}, {"mask_token_id", &c.mask_id}, {"fim_pad_token_id", &c.fim_pad_id},
      {"fim_rep_token_id", &c.fim_rep_id}, {"fim_sep_token_id", &c.fim_sep_id}};
  for (const auto& [name, dst] : ids) MODU_RETURN_IF_ERROR(read_id(f, k(name), *dst));
  if (!c.bos_id) MODU_RETURN_IF_ERROR(read_id(f, k("cls_token_id"), c.bos_id));  // older BERT conversions
  const std::pair<const char*, std::optional<bool>*> flags[] = {
      {"add_bos_token", &c.add_bos}, {"add_eos_token", &c.add_eos}, {"add_sep_token", &c.add_sep},
      {"add_space_prefix", &c.add_space_prefix}, {"normalizer.lowercase", &c.lowercase},
      {"normalizer.strip_accents", &c.strip_accents}};
  for (const auto& [name, dst] : flags) MODU_RETURN_IF_ERROR(read_flag(f, k(name), *dst));
  MODU_ASSIGN_OR_RETURN(c.general_name, f.get_string("general.name", std::string()));
  MODU_ASSIGN_OR_RETURN(c.general_architecture, f.get_string("general.architecture", std::string()));
  return c;
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_gguf(const GgufFile& file) {
  auto cfg = read_config(file);
  if (!cfg.ok()) return cfg.status().with_context(file.name());
  auto tok = create(std::move(cfg).value());
  if (!tok.ok()) return tok.status().with_context(file.name());
  return tok;
}

std::vector<int32_t> encode_documents(const Tokenizer& tok, std::string_view text, size_t* n_bytes) {
  std::vector<int32_t> ids;
  size_t bytes = 0, pos = 0;
  while (pos < text.size()) {
    size_t end = text.find("\n\n", pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view doc = text.substr(pos, end - pos);
    while (!doc.empty() && doc.back() == '\n') doc.remove_suffix(1);
    if (!doc.empty()) {
      if (tok.bos_id() >= 0) ids.push_back(tok.bos_id());
      const auto d = tok.encode(doc, false, false);
      ids.insert(ids.end(), d.begin(), d.end());
      bytes += doc.size();
    }
    pos = end + 2;
  }
  if (n_bytes) *n_bytes = bytes;
  return ids;
}

void write_byte_vocab(GgufWriter& w) {
  std::vector<std::string> toks = {"<unk>", "<s>", "</s>"};
  std::vector<float> scores = {0, 0, 0};
  std::vector<int32_t> types = {(int32_t)TokenType::kUnknown, (int32_t)TokenType::kControl, (int32_t)TokenType::kControl};
  char buf[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    toks.push_back(buf);
    scores.push_back(0);
    types.push_back((int32_t)TokenType::kByte);
  }
  w.set("tokenizer.ggml.model", GgufValue::string("llama"));
  w.set("tokenizer.ggml.tokens", GgufValue::string_array(toks));
  w.set("tokenizer.ggml.scores", GgufValue::f32_array(scores));
  w.set("tokenizer.ggml.token_type", GgufValue::i32_array(types));
  w.set("tokenizer.ggml.unknown_token_id", GgufValue::u32(0));
  w.set("tokenizer.ggml.bos_token_id", GgufValue::u32(1));
  w.set("tokenizer.ggml.eos_token_id", GgufValue::u32(2));
  w.set("tokenizer.ggml.add_bos_token", GgufValue::boolean(true));
  w.set("tokenizer.ggml.add_space_prefix", GgufValue::boolean(false));
}

}  // namespace modu
