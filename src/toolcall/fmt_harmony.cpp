// gpt-oss harmony: a reply is a sequence of messages, <|channel|>CHANNEL[ to=functions.NAME][ <|constrain|>json]<|message|>BODY
// ended by <|end|> (more messages follow, each after <|start|>assistant), <|call|> (a tool call
// ends generation) or <|return|>. The analysis channel is reasoning, final is content,
// commentary with a functions.NAME recipient is a call (commentary without one is content).
#include "scan.h"

namespace modu::toolcall {
namespace {

using namespace scan;
constexpr size_t npos = std::string_view::npos;
constexpr std::string_view kChannel = "<|channel|>", kMessage = "<|message|>", kEnd = "<|end|>", kCall = "<|call|>",
                           kReturn = "<|return|>", kStart = "<|start|>";

class Harmony final : public Format {
 public:
  const char* name() const override { return "harmony"; }
  bool own_reasoning() const override { return true; }
  bool template_ends_reply() const override { return false; }
  std::vector<std::string> stop_markers() const override { return {std::string(kReturn), std::string(kCall)}; }
  Forcing forcing() const override {
    return {.prefix = "<|channel|>commentary to=functions.{name} <|constrain|>json<|message|>", .shape = Forcing::kArguments};
  }

  PartialReply parse(std::string_view text, const ParseOptions& opts, bool partial) const override {
    PartialReply r;
    const PartialReply as_content{{std::string(text), "", {}}, false};
    if (ltrim(text).empty()) return r;
    // A reply without any harmony syntax (a model that ignores it) is content.
    if (text.find(kChannel) == npos && text.find(kMessage) == npos) {
      const std::string_view lead = ltrim(text);
      if (partial && (marker_tail(lead, {kChannel, kStart, "to="}) == lead.size() || starts_with(lead, "to="))) return r;
      r.reply.content = std::string(partial ? rtrim(text) : text);
      return r;
    }
    size_t i = 0;
    std::string content, reasoning;
    auto join = [](std::string* acc, std::string_view s) {
      s = trim(s);
      if (s.empty()) return;
      if (!acc->empty()) *acc += "\n";
      *acc += s;
    };
    while (i < text.size()) {
      while (i < text.size() && is_space(text[i])) ++i;
      if (i >= text.size()) break;
      // The header runs to <|message|>: [<|start|>assistant][ to=functions.NAME]<|channel|>CHANNEL[ to=...][ <|constrain|>json]
      const size_t m = text.find(kMessage, i);
      if (m == npos) {
        if (!partial) return as_content;
        break;
      }
      const std::string_view header = text.substr(i, m - i);
      std::string recipient;
      if (const size_t to = header.find("to="); to != npos) {
        size_t e = to + 3;
        while (e < header.size() && !is_space(header[e]) && header[e] != '<') ++e;
        recipient = std::string(header.substr(to + 3, e - to - 3));
      }
      std::string channel;
      if (const size_t c = header.find(kChannel); c != npos) {
        size_t e = c + kChannel.size();
        while (e < header.size() && !is_space(header[e]) && header[e] != '<') ++e;
        channel = std::string(header.substr(c + kChannel.size(), e - c - kChannel.size()));
      }
      const size_t b = m + kMessage.size();
      size_t which = 0;
      const size_t e = find_any(text, b, {kEnd, kCall, kReturn}, &which);
      std::string_view body = text.substr(b, e == npos ? npos : e - b);
      const bool open = e == npos;
      if (open && partial) body.remove_suffix(marker_tail(body, {kEnd, kCall, kReturn}));
      if (starts_with(recipient, "functions.")) {
        const std::string name = recipient.substr(10);
        bool cut = false;
        const size_t a = named_args(body, 0, partial && open, &r, name, "", &cut);
        if (a == npos || (!cut && !trim(body.substr(a)).empty())) {
          if (!partial) return as_content;
          break;
        }
        if (cut) break;
      } else if (channel == "analysis") {
        if (open && partial) {
          std::string tmp = reasoning;
          join(&tmp, body);
          r.reply.reasoning = tmp.substr(0, tmp.size() - utf8_tail(tmp));
          r.reply.content = content;
          return r;
        }
        join(&reasoning, body);
      } else {
        if (open && partial) {
          std::string tmp = content;
          join(&tmp, body);
          r.reply.content = tmp.substr(0, tmp.size() - utf8_tail(tmp));
          r.reply.reasoning = reasoning;
          return r;
        }
        join(&content, body);
      }
      if (open) break;
      i = e + (which == 0 ? kEnd.size() : which == 1 ? kCall.size() : kReturn.size());
    }
    (void)opts;
    r.reply.content = content;
    r.reply.reasoning = reasoning;
    return r;
  }
};

const bool kRegistered = register_format(
    {"harmony", "<|channel|>analysis<|message|>...<|end|><|start|>assistant<|channel|>commentary to=functions.NAME <|constrain|>json<|message|>{...}<|call|> (gpt-oss)",
     [](std::string_view src) {
       return src.find("<|channel|>") != std::string_view::npos && src.find("<|call|>") != std::string_view::npos ? 20 : 0;
     },
     std::make_shared<Harmony>()});

}  // namespace
}  // namespace modu::toolcall
