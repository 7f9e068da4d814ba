// `modu tokenize` and `modu detokenize`: a model's tokenizer on exact bytes, for scripts and checks.
#include <cstdio>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common.h"
#include "modu/gguf/gguf.h"
#include "modu/hf/hf_model.h"

namespace modu::cli {

namespace {

Result<std::unique_ptr<Tokenizer>> load_tokenizer(const std::string& path) {
  MODU_ASSIGN_OR_RETURN(GgufFile f, open_model_path(path));  // GGUF or HF folder
  auto tok = Tokenizer::from_gguf(f);
  if (!tok.ok()) return tok.status().with_context(path);
  return std::move(tok).value();
}

struct TokenizeArgs {
  std::string model, file, text;
  bool json = false, add_special = false, parse_special = false;
};

int tokenize(const TokenizeArgs& a) {
  auto tok = load_tokenizer(a.model);
  if (!tok.ok()) return fail(tok.status());
  std::string text = a.text;
  if (!a.file.empty()) {
    std::ifstream in(a.file, std::ios::binary);
    if (!in) return fail(io_error("cannot read '" + a.file + "'"));
    std::ostringstream ss;
    ss << in.rdbuf();
    text = ss.str();  // the file's exact bytes: no newline is stripped
  }
  std::vector<int32_t> ids = (*tok)->encode(text, a.add_special, a.parse_special);
  if (a.json) {
    nlohmann::json j;
    j["ids"] = ids;
    j["pieces"] = nlohmann::json::array();
    for (int32_t id : ids) j["pieces"].push_back((*tok)->token_to_piece(id, true));
    // A piece can be part of a UTF-8 sequence (byte tokens): such bytes print as U+FFFD.
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  for (int32_t id : ids) {
    nlohmann::json piece = (*tok)->token_to_piece(id, true);
    std::printf("%6d %s\n", id, piece.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  }
  return 0;
}

int detokenize(const std::string& model, const std::string& ids_csv, bool render_special) {
  auto tok = load_tokenizer(model);
  if (!tok.ok()) return fail(tok.status());
  std::vector<int32_t> ids;
  std::stringstream ss(ids_csv);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.find_first_not_of(" \t") == std::string::npos) continue;
    try {
      size_t used = 0;
      long long v = std::stoll(item, &used);
      if (item.find_first_not_of(" \t", used) != std::string::npos) throw std::invalid_argument(item);
      if (v < 0 || v >= (*tok)->n_vocab())
        return fail(invalid_argument("token id " + item + " is outside the vocabulary [0, " +
                                     std::to_string((*tok)->n_vocab()) + ")"));
      ids.push_back((int32_t)v);
    } catch (const std::exception&) {
      return fail(invalid_argument("'" + item + "' is not a token id; pass --ids 1,2,3"));
    }
  }
  std::string text = (*tok)->decode(ids, render_special);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

}  // namespace

void add_tokenize_commands(CLI::App& app, int& rc) {
  auto a = std::make_shared<TokenizeArgs>();
  CLI::App* c = app.add_subcommand("tokenize", "Tokenize a file's exact bytes with a model's tokenizer");
  c->add_option("-m,--model", a->model, "GGUF model or vocabulary file, or Hugging Face folder")->required()->check(CLI::ExistingPath);
  auto* f = c->add_option("-f,--file", a->file, "Text file (its exact bytes)")->check(CLI::ExistingFile);
  c->add_option("-p,--text", a->text, "Text given on the command line")->excludes(f);
  c->add_flag("--json", a->json, "Print {\"ids\":[...],\"pieces\":[...]}");
  c->add_flag("--add-special", a->add_special, "Add BOS/EOS as the metadata says");
  c->add_flag("--parse-special", a->parse_special, "Recognize special-token texts in the input");
  c->callback([a, &rc] { rc = tokenize(*a); });

  auto model = std::make_shared<std::string>();
  auto ids = std::make_shared<std::string>();
  auto special = std::make_shared<bool>(false);
  CLI::App* d = app.add_subcommand("detokenize", "Turn token ids back into text (exact bytes to stdout)");
  d->add_option("-m,--model", *model, "GGUF model or vocabulary file, or Hugging Face folder")->required()->check(CLI::ExistingPath);
  d->add_option("--ids", *ids, "Comma-separated token ids")->required();
  d->add_flag("--render-special", *special, "Print the text of control tokens too");
  d->callback([model, ids, special, &rc] { rc = detokenize(*model, *ids, *special); });
}

}  // namespace modu::cli
