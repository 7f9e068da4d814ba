// Pre-tokenizer regex lists per upstream pre-type and the name -> type/flags mapping, transcribed
// from llama.cpp src/llama-vocab.cpp (each entry names the LLAMA_VOCAB_PRE_TYPE_* it comes from).
#include "pretokenizer_regexes.h"

namespace modu::tok {

namespace {

// (?:'s|'t|...) written without (?i:), as llama.cpp adapts tokenizer.json's regexes.
#define MODU_CONTRACTIONS R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]))re"

// QWEN2 / STABLELM2 / HUNYUAN / SOLAR_OPEN / GROK_2 (and LAGUNA's second regex).
constexpr std::string_view kRegexQwen2 =
    MODU_CONTRACTIONS R"re(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
// DEEPSEEK3_LLM / HUNYUAN_DENSE / JOYAI_LLM / HY_V4 main regex (SPARK2_5 differs in the newline part).
constexpr std::string_view kRegexDeepseek3Main =
    R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
// CJK ideographs + hiragana + katakana (DEEPSEEK3_LLM, SPARK2_5).
constexpr std::string_view kRegexCjkKana = R"re([\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)re";
// CJK + (U+0800..U+4E00) + Hangul block (DEEPSEEK_LLM, DEEPSEEK_CODER).
constexpr std::string_view kRegexDeepseekCjk = R"re([\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}]+)re";
// PORO / BLOOM / GPT3_FINNISH / VIKING.
constexpr std::string_view kRegexBloom =
    R"re( ?[^(\s|.,!?\x{2026}\x{3002}\x{FF0C}\x{3001}\x{0964}\x{06D4}\x{060C})]+)re";
// GPT4O / MINIMAX_M2 (upper/lower letter classes rewritten with lookaheads upstream).
constexpr std::string_view kRegexGpt4o =
    R"re([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+)re" MODU_CONTRACTIONS
    R"re(?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*)re" MODU_CONTRACTIONS
    R"re(?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

}  // namespace

const std::vector<PreTypeRegexes>& pre_type_table() {
  static const std::vector<PreTypeRegexes> table = {
      // LLAMA_VOCAB_PRE_TYPE_DEFAULT
      {"default", {R"re([\p{P}\$\+<=>\^~\|]+)re", kRegexGpt2, R"re(\p{N}+)re", "[0-9][0-9][0-9]"}},
      // LLAMA_VOCAB_PRE_TYPE_LLAMA3 (also DBRX, SMAUG, CHATGLM4: the same regex)
      {"llama3", {kRegexLlama3}},
      // LLAMA_VOCAB_PRE_TYPE_JAIS2: llama3 with cascading whitespace runs
      {"jais2",
       {MODU_CONTRACTIONS R"re(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s{512}(?!\S)|\s{256}(?!\S)|\s{128}(?!\S)|\s{64}(?!\S)|\s{32}(?!\S)|\s{16}(?!\S)|\s{8}(?!\S)|\s{4}(?!\S)|\s{1,2}(?!\S)|\s{1})re"}},
      // LLAMA_VOCAB_PRE_TYPE_DEEPSEEK_LLM (the letter class is tokenizer.json's cased-letter list)
      {"deepseek-llm",
       {"[\\r\\n]",
        R"re(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+)re",
        R"re(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)re",
        R"re(\s+$)re", kRegexDeepseekCjk, R"re(\p{N}+)re"}},
      // LLAMA_VOCAB_PRE_TYPE_DEEPSEEK3_LLM (also HUNYUAN_DENSE, JOYAI_LLM, HY_V4)
      {"deepseek3-llm", {R"re(\p{N}{1,3})re", kRegexCjkKana, kRegexDeepseek3Main}},
      // LLAMA_VOCAB_PRE_TYPE_SPARK2_5
      {"spark2_5",
       {R"re(\p{N}{1,3})re", kRegexCjkKana,
        R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+|[\r\n]|\s+(?!\S)|\s+)re",
        R"re(\p{N})re"}},
      // LLAMA_VOCAB_PRE_TYPE_YOUTU
      {"youtu",
       {R"re([\x{AC00}-\x{D7A3}\x{3131}-\x{318E}]+|[\x{FF01}\x{2026}\x{201C}\x{201D}\x{2018}\x{2019}\x{2014}\x{FF1A}\x{FF1B}\x{FF0C}\x{3001}-\x{303F}\x{FE30}-\x{FE4F}]+|[\x{3105}-\x{312F}]+|[\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)re",
        R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+)re" MODU_CONTRACTIONS
        R"re(?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*)re" MODU_CONTRACTIONS
        R"re(?|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"}},
      // LLAMA_VOCAB_PRE_TYPE_DEEPSEEK_CODER
      {"deepseek-coder", {"[\\r\\n]", R"re(\s?\p{L}+)re", R"re(\s?\p{P}+)re", kRegexDeepseekCjk, R"re(\p{N})re"}},
      // LLAMA_VOCAB_PRE_TYPE_FALCON
      {"falcon", {R"re([\p{P}\$\+<=>\^~\|`]+)re", kRegexGpt2, "[0-9][0-9][0-9]"}},
      // LLAMA_VOCAB_PRE_TYPE_STARCODER (also REFACT, COMMAND_R, SMOLLM, CODESHELL, EXAONE, MINERVA, MELLUM2)
      {"starcoder", {R"re(\p{N})re", kRegexGpt2}},
      // LLAMA_VOCAB_PRE_TYPE_GPT2 (also MPT, OLMO, JAIS, TRILLION, GRANITE_DOCLING)
      {"gpt2", {kRegexGpt2}},
      // LLAMA_VOCAB_PRE_TYPE_QWEN2 (also STABLELM2, HUNYUAN, SOLAR_OPEN, GROK_2)
      {"qwen2", {kRegexQwen2}},
      // LLAMA_VOCAB_PRE_TYPE_QWEN35: letters absorb combining marks
      {"qwen35",
       {MODU_CONTRACTIONS R"re(|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"}},
      // LLAMA_VOCAB_PRE_TYPE_PORO (also BLOOM, GPT3_FINNISH)
      {"poro", {kRegexBloom}},
      // LLAMA_VOCAB_PRE_TYPE_VIKING
      {"viking", {kRegexBloom, R"re(\p{N})re"}},
      // LLAMA_VOCAB_PRE_TYPE_TEKKEN
      {"tekken",
       {R"re([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"}},
      // LLAMA_VOCAB_PRE_TYPE_CHAMELEON
      {"chameleon",
       {"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )", R"re(\p{N})re",
        R"re([\p{P}!-/:-@\[-`{-~])re", kRegexGpt2}},
      // LLAMA_VOCAB_PRE_TYPE_GPT4O (also MINIMAX_M2)
      {"gpt4o", {kRegexGpt4o}},
      // LLAMA_VOCAB_PRE_TYPE_GRANITE_EMB_MULTI: gpt4o lookaheads with \p{M}
      {"granite-emb-multi",
       {R"re([^\r\n\p{L}\p{N}]?((?=[\p{L}\p{M}])([^a-z]))*((?=[\p{L}\p{M}])([^A-Z]))+)re" MODU_CONTRACTIONS
        R"re(?|[^\r\n\p{L}\p{N}]?((?=[\p{L}\p{M}])([^a-z]))+((?=[\p{L}\p{M}])([^A-Z]))*)re" MODU_CONTRACTIONS
        R"re(?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"}},
      // LLAMA_VOCAB_PRE_TYPE_TINY_AYA
      {"tiny-aya",
       {R"re(\d{1,3}(?=(?:\d{3})*\b))re",
        R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+)re" MODU_CONTRACTIONS
        R"re(?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*)re" MODU_CONTRACTIONS
        R"re(?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"}},
      // LLAMA_VOCAB_PRE_TYPE_SUPERBPE: digit runs, then groups of three from the right
      {"superbpe", {R"re(\p{N}+)re", R"re((?=(\d{3})+(?!\d)))re"}},
      // LLAMA_VOCAB_PRE_TYPE_BAILINGMOE (possessive quantifiers made greedy upstream)
      {"bailingmoe",
       {R"re('(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)re"}},
      // LLAMA_VOCAB_PRE_TYPE_SEED_CODER
      {"seed-coder",
       {MODU_CONTRACTIONS R"re(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+)re"}},
      // LLAMA_VOCAB_PRE_TYPE_UFAKZEKA: qwen2 without the contractions
      {"ufakzeka", {R"re([^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"}},
      // LLAMA_VOCAB_PRE_TYPE_LAGUNA: lines first, then qwen2
      {"laguna", {"[^\\n]+|[\\n]+", kRegexQwen2}},
      // LLAMA_VOCAB_PRE_TYPE_EXAONE_MOE: letter runs may span single spaces
      {"exaone-moe",
       {MODU_CONTRACTIONS R"re(|[^\r\n\p{L}\p{N}]?(?:\p{L}\p{M}*(?: \p{L}\p{M}*)*)+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]?|\s*[\r\n]|\s+(?!\S)|\s+)re"}},
      // LLAMA_VOCAB_PRE_TYPE_MINICPM5
      {"minicpm5",
       {R"re(\p{N}{1,3})re",
        MODU_CONTRACTIONS R"re(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"}},
  };
  return table;
}

const std::vector<PreNameEntry>& pre_name_table() {
  // {type, clean_spaces, ignore_merges, add_bos, add_sep, no_bos}; defaults: clean_spaces = true.
  constexpr PreTokenizerInfo kDefault{"default"}, kLlama3{"llama3", true, true, true};
  constexpr PreTokenizerInfo kGpt2{"gpt2"}, kStarcoder{"starcoder"}, kQwen2{"qwen2", false};
  static const std::vector<PreNameEntry> table = {
      {"default", kDefault},
      {"llama3", kLlama3}, {"llama-v3", kLlama3}, {"llama-bpe", kLlama3}, {"falcon3", kLlama3},
      {"falcon-h1", kLlama3}, {"pixtral", kLlama3}, {"midm-2.0", kLlama3}, {"lfm2", kLlama3},
      {"jina-v5-nano", kLlama3},
      {"deepseek-llm", {"deepseek-llm", false}},
      {"deepseek-coder", {"deepseek-coder", false}},
      {"deepseek-v3", {"deepseek3-llm", false}},
      {"hunyuan-dense", {"deepseek3-llm", false}}, {"hy_v4", {"deepseek3-llm", false}},
      {"joyai-llm", {"deepseek3-llm", false}},
      {"spark2_5", {"spark2_5", false}},
      {"youtu", {"youtu", false, true}},
      {"falcon", {"falcon"}},
      {"mpt", kGpt2}, {"olmo", kGpt2}, {"jais", kGpt2}, {"trillion", {"gpt2", false}},
      {"granite-docling", {"gpt2", false}},
      {"gpt-2", kGpt2}, {"phi-2", kGpt2}, {"jina-es", kGpt2}, {"jina-de", kGpt2}, {"gigachat", kGpt2},
      {"jina-v2-es", kGpt2}, {"jina-v2-de", kGpt2}, {"a.x-4.0", kGpt2}, {"mellum", kGpt2},
      {"modern-bert", kGpt2}, {"exaone4", kGpt2},
      {"jina-v1-en", {"gpt2", true, false, false, true}}, {"jina-v2-code", {"gpt2", true, false, false, true}},
      {"roberta-bpe", {"gpt2", true, false, false, true}},
      {"jais-2", {"jais2"}},
      {"starcoder", kStarcoder}, {"refact", kStarcoder}, {"command-r", {"starcoder", false}},
      {"smollm", {"starcoder", false}}, {"codeshell", kStarcoder}, {"exaone", kStarcoder},
      {"minerva-7b", kStarcoder}, {"mellum2", kStarcoder},
      {"qwen2", kQwen2}, {"deepseek-r1-qwen", kQwen2}, {"kormo", kQwen2}, {"f2llmv2", kQwen2},
      {"megrez", {"qwen2"}}, {"stablelm2", {"qwen2"}}, {"hunyuan", kQwen2}, {"solar-open", kQwen2},
      {"grok-2", kQwen2},
      {"qwen35", {"qwen35", false}},
      {"dbrx", {"llama3"}}, {"smaug-bpe", {"llama3"}},
      {"glm4", {"llama3", true, false, false, false, true}}, {"chatglm-bpe", {"llama3", true, false, false, false, true}},
      {"poro-chat", {"poro", false}}, {"bloom", {"poro"}}, {"gpt3-finnish", {"poro"}},
      {"viking", {"viking", false}},
      {"tekken", {"tekken", false, true, true}},
      {"exaone-moe", {"exaone-moe"}},
      {"chameleon", {"chameleon", false, false, true}},
      {"gpt-4o", {"gpt4o", false}}, {"llama4", {"gpt4o", false}}, {"kanana2", {"gpt4o", false}},
      {"talkie", {"gpt4o", false}}, {"minimax-m2", {"gpt4o", false}},
      {"granite-embed-multi-97m", {"granite-emb-multi", false, true}},
      {"tiny_aya", {"tiny-aya", false}}, {"cohere2moe", {"tiny-aya", false}},
      {"superbpe", {"superbpe", false}},
      {"bailingmoe", {"bailingmoe", false}}, {"bailingmoe2", {"bailingmoe", false}},
      {"llada-moe", {"bailingmoe", false}},
      {"seed-coder", {"seed-coder", false}},
      {"ufakzeka", {"ufakzeka", false}},
      {"laguna", {"laguna", false}},
      {"minicpm5", {"minicpm5", true, true}},
  };
  return table;
}

#undef MODU_CONTRACTIONS

}  // namespace modu::tok
