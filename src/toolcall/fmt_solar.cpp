// Solar Open: messages after <|begin|>assistant — <|think|>REASONING<|end|>, <|content|>TEXT<|end|>,
// or <|tool_calls|><|tool_call:begin|>ID<|tool_call:name|>NAME<|tool_call:args|>{...}<|tool_call:end|>...<|calls|>.
#include "named_calls.h"
#include "scan.h"

namespace modu::toolcall {
namespace {

using namespace scan;
constexpr size_t npos = std::string_view::npos;
constexpr std::string_view kBegin = "<|begin|>assistant", kThink = "<|think|>", kContent = "<|content|>",
                           kCalls = "<|tool_calls|>", kEnd = "<|end|>", kCallsEnd = "<|calls|>";

class Solar final : public Format {
 public:
  Solar()
      : calls_({.name = "solar-calls", .section_open = std::string(kCalls), .section_close = std::string(kCallsEnd),
                .call_open = "<|tool_call:begin|>", .id_end = "<|tool_call:name|>", .name_end = "<|tool_call:args|>",
                .call_close = "<|tool_call:end|>"}) {}
  const char* name() const override { return "solar"; }
  bool own_reasoning() const override { return true; }
  bool template_ends_reply() const override { return false; }
  std::vector<std::string> stop_markers() const override { return {std::string(kCallsEnd)}; }
  Forcing forcing() const override { return calls_.forcing(); }

  PartialReply parse(std::string_view text, const ParseOptions& opts, bool partial) const override {
    PartialReply r;
    size_t i = 0;
    while (true) {
      while (i < text.size() && is_space(text[i])) ++i;
      if (starts_with(text.substr(i), kBegin)) i += kBegin.size();
      const std::string_view rest = text.substr(i);
      if (rest.empty() || (partial && marker_tail(rest, {kBegin, kThink, kContent, kCalls}) == rest.size())) break;
      if (starts_with(rest, kCalls)) {
        PartialReply c = calls_.parse(rest, opts, partial);
        if (c.reply.calls.empty() && !partial) return {{std::string(text), "", {}}, false};
        for (auto& call : c.reply.calls) r.reply.calls.push_back(std::move(call));
        r.open_call = c.open_call;
        break;
      }
      const bool think = starts_with(rest, kThink);
      if (!think && !starts_with(rest, kContent)) {  // not Solar syntax: plain content
        r.reply.content += std::string(partial ? rtrim(rest) : rest);
        break;
      }
      const size_t b = i + (think ? kThink.size() : kContent.size());
      const size_t e = text.find(kEnd, b);
      std::string_view body = text.substr(b, e == npos ? npos : e - b);
      if (e == npos && partial) body.remove_suffix(marker_tail(body, {kEnd}));
      std::string& out = think ? r.reply.reasoning : r.reply.content;
      out += std::string(trim(body));
      if (e == npos) break;
      i = e + kEnd.size();
    }
    return r;
  }

 private:
  NamedCallFormat calls_;
};

const bool kRegistered = register_format(
    {"solar", "<|tool_calls|><|tool_call:begin|>ID<|tool_call:name|>NAME<|tool_call:args|>{...}<|tool_call:end|><|calls|> (Solar Open)",
     [](std::string_view src) { return src.find("<|tool_call:begin|>") != std::string_view::npos ? 20 : 0; },
     std::make_shared<Solar>()});

}  // namespace
}  // namespace modu::toolcall
