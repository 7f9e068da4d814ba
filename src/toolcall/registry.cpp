// The format registry, convention detection from a chat template, whole-reply parsing with
// reasoning split off, the streaming differ and forced-call schemas (see toolcall.h).
#include <algorithm>
#include <mutex>

#include "modu/toolcall/toolcall.h"
#include "scan.h"

namespace modu::toolcall {

namespace {

std::vector<FormatInfo>& registry() {
  static std::vector<FormatInfo> r;
  return r;
}

// Replies with no call syntax: everything is content.
class ContentOnly final : public Format {
 public:
  const char* name() const override { return "content"; }
  PartialReply parse(std::string_view text, const ParseOptions&, bool) const override {
    PartialReply r;
    r.reply.content = std::string(text);
    return r;
  }
  Forcing forcing() const override { return {}; }
};

const bool kContent = register_format({"content", "no tool-call syntax: the reply is content", nullptr,
                                       std::make_shared<ContentOnly>()});

// End-of-turn and end-of-sequence texts that chat templates write after an assistant turn.
constexpr std::string_view kEndMarkers[] = {
    "<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<｜end▁of▁sentence｜>", "<|END_OF_TURN_TOKEN|>", "<|end_of_text|>",
    "<end_of_turn>", "<turn|>", "<seed:eos>", "<|endoftext|>", "<|end|>", "<|return|>", "<|im_end|>", "</s>",
    "<|end_of_turn|>", "[|endofturn|]", "<|eos|>", "<SPECIAL_12>", "<|message_sep|>",
};

struct Styles {
  std::string_view open, close;
};
constexpr Styles kReasoning[] = {
    {"Here are my reasoning steps:", "[BEGIN FINAL RESPONSE]"},  // Apriel
    {"<seed:think>", "</seed:think>"}, {"<|START_THINKING|>", "<|END_THINKING|>"}, {"[THINK]", "[/THINK]"},
    {"<|channel>thought", "<channel|>"}, {"<think>", "</think>"},
};

}  // namespace

bool register_format(FormatInfo info) {
  registry().push_back(std::move(info));
  return true;
}

const std::vector<FormatInfo>& formats() { return registry(); }

const Format* find_format(std::string_view name) {
  for (const auto& f : registry())
    if (f.name == name) return f.format.get();
  return nullptr;
}

ReasoningStyle detect_reasoning(std::string_view src) {
  for (const auto& s : kReasoning)
    if (src.find(s.open) != std::string_view::npos && src.find(s.close) != std::string_view::npos)
      return {std::string(s.open), std::string(s.close)};
  return {};
}

Convention detect_convention(std::string_view src) {
  Convention c;
  int best = 0;
  for (const auto& f : registry()) {
    const int s = f.detect ? f.detect(src) : 0;
    if (s > best) {
      best = s;
      c.format = f.format.get();
    }
  }
  if (!c.format) c.format = find_format("content");
  if (!c.format->own_reasoning()) c.reasoning = detect_reasoning(src);
  if (c.format->template_ends_reply())
    for (std::string_view m : kEndMarkers)
      if (src.find(m) != std::string_view::npos &&
          std::find(c.end_markers.begin(), c.end_markers.end(), m) == c.end_markers.end())
        c.end_markers.emplace_back(m);
  return c;
}

namespace {

// The reply up to its first end marker; *stopped tells whether one was found.
std::string_view cut_at_end(const Convention& c, std::string_view text, bool* stopped, size_t* hold) {
  std::vector<std::string_view> ms(c.end_markers.begin(), c.end_markers.end());
  const auto extra = c.format->stop_markers();
  for (const auto& m : extra) ms.push_back(m);
  const size_t p = scan::find_any(text, 0, ms);
  *stopped = p != std::string_view::npos;
  if (*stopped) {  // whitespace before the end-of-turn is the template's layout
    *hold = 0;
    return scan::rtrim(text.substr(0, p));
  }
  *hold = scan::marker_tail(text, ms);
  return text;
}

// Splits leading reasoning (or all of it, when the prompt left a block open) from the rest.
// partial: the text may stop inside the block, or inside the closing marker.
PartialReply parse_all(const Convention& c, std::string_view text, const ParseOptions& opts, bool partial) {
  std::string reasoning;
  bool had_reasoning = false;
  const ReasoningStyle& rs = c.reasoning;
  if (!rs.open.empty()) {
    const std::string_view lead = scan::ltrim(text);
    bool open = opts.reasoning_open;
    std::string_view body = text;
    if (scan::starts_with(lead, rs.open)) {  // (also when the prompt opened a block: the model repeats the marker)
      open = true;
      body = lead.substr(rs.open.size());
    } else if (partial && lead.size() < rs.open.size() && std::string_view(rs.open).substr(0, lead.size()) == lead) {
      return {};  // may be the start of the opening marker
    }
    // A whole reply that never closes the block the prompt opened did not use it: it is content
    // (nothing is hidden from the user).
    if (open && !partial && body == text && body.find(rs.close) == std::string_view::npos) open = false;
    if (open) {
      const size_t close = body.find(rs.close);
      if (close == std::string_view::npos) {
        PartialReply r;
        if (partial) body.remove_suffix(scan::marker_tail(body, {rs.close}));
        r.reply.reasoning = std::string(scan::trim(body));
        if (partial) r.reply.reasoning.resize(r.reply.reasoning.size() - scan::utf8_tail(r.reply.reasoning));
        // Partial: leading whitespace trimmed, trailing held; that is a prefix of the final trim.
        return r;
      }
      reasoning = std::string(scan::trim(body.substr(0, close)));
      text = body.substr(close + rs.close.size());
      had_reasoning = true;
    }
  }
  PartialReply r;
  if (opts.calls) {
    r = c.format->parse(text, opts, partial);
  } else {
    r.reply.content = std::string(text);
    if (partial) r.reply.content.resize(scan::rtrim(r.reply.content).size());
  }
  // Trailing whitespace waits: it is dropped if an end marker follows.
  if (partial) r.reply.content.resize(scan::rtrim(r.reply.content).size());
  if (had_reasoning) {
    r.reply.content = std::string(scan::ltrim(r.reply.content));
    r.reply.reasoning = reasoning + r.reply.reasoning;
  }
  return r;
}

// The longest prefix of `s` that extends `sent` (what may be sent after it), or npos when `s`
// does not start with `sent`.
size_t extends(const std::string& s, const std::string& sent) {
  if (s.size() < sent.size() || s.compare(0, sent.size(), sent) != 0) return std::string::npos;
  return sent.size();
}

}  // namespace

Reply parse_reply(const Convention& c, std::string_view text, const ParseOptions& opts) {
  bool stopped = false;
  size_t hold = 0;
  return parse_all(c, cut_at_end(c, text, &stopped, &hold), opts, false).reply;
}

ReplyStream::ReplyStream(Convention c, ParseOptions opts) : c_(std::move(c)), opts_(opts) {}

Delta ReplyStream::push(std::string_view text) {
  if (stopped_) return {};
  text_.append(text);
  bool stopped = false;
  size_t hold = 0;
  std::string_view t = cut_at_end(c_, text_, &stopped, &hold);
  if (stopped) {
    stopped_ = true;
    text_.resize(t.size());
    return {};  // finish() parses the whole reply
  }
  t.remove_suffix(hold);
  return diff(parse_all(c_, t, opts_, true), false);
}

Delta ReplyStream::finish() {
  bool stopped = false;
  size_t hold = 0;
  PartialReply whole;
  whole.reply = parse_all(c_, cut_at_end(c_, text_, &stopped, &hold), opts_, false).reply;
  return diff(whole, true);
}

Delta ReplyStream::diff(const PartialReply& now, bool final) {
  Delta d;
  auto grow = [&](const std::string& cur, std::string* sent, std::string* out) {
    const size_t at = extends(cur, *sent);
    if (at == std::string::npos) {
      if (!final) return;
      // The final parse disagrees with what was streamed (a call that turned out malformed):
      // send what follows the common prefix; nothing sent can be taken back.
      size_t k = 0;
      while (k < cur.size() && k < sent->size() && cur[k] == (*sent)[k]) ++k;
      *out = cur.substr(k);
      *sent += *out;
      return;
    }
    std::string add = cur.substr(at);
    if (!final) add.resize(add.size() - scan::utf8_tail(add));
    *out = add;
    *sent += add;
  };
  grow(now.reply.reasoning, &sent_.reasoning, &d.reasoning);
  grow(now.reply.content, &sent_.content, &d.content);
  const auto& calls = now.reply.calls;
  for (size_t i = 0; i < calls.size(); ++i) {
    const bool last_open = !final && now.open_call && i + 1 == calls.size();
    if (calls[i].name.empty()) break;  // header not known yet
    if (i >= sent_.calls.size()) {
      if (i != sent_.calls.size()) break;
      sent_.calls.push_back({calls[i].id, calls[i].name, ""});
      d.calls.push_back({(int)i, calls[i].id, calls[i].name, ""});
    }
    std::string frag;
    const size_t at = extends(calls[i].arguments, sent_.calls[i].arguments);
    if (at != std::string::npos) {
      frag = calls[i].arguments.substr(at);
      if (last_open) frag.resize(frag.size() - scan::utf8_tail(frag));
    }
    if (frag.empty()) continue;
    sent_.calls[i].arguments += frag;
    if (!d.calls.empty() && d.calls.back().index == (int)i) d.calls.back().arguments += frag;
    else d.calls.push_back({(int)i, "", "", frag});
  }
  return d;
}

std::string forced_call(const Format& f, const nlohmann::ordered_json& tools, const std::string& only_name,
                        bool parallel, ForcedCall* out) {
  using json = nlohmann::json;
  const Format::Forcing fr = f.forcing();
  struct Cand {
    std::string name;
    json params;
  };
  std::vector<Cand> cands;
  json defs = json::object();
  for (const auto& t : tools) {
    const auto fn = t.find("function");
    if (fn == t.end() || !fn->is_object() || !fn->contains("name") || !(*fn)["name"].is_string())
      return "every tool needs function.name to force a call";
    const std::string name = (*fn)["name"].get<std::string>();
    if (!only_name.empty() && name != only_name) continue;
    json params = json{{"type", "object"}};
    if (fn->contains("parameters") && ((*fn)["parameters"].is_object() || (*fn)["parameters"].is_boolean()))
      params = json::parse((*fn)["parameters"].dump());
    // Local $refs of the parameters resolve against the root: their $defs move up.
    for (const char* k : {"$defs", "definitions"})
      if (params.is_object() && params.contains(k) && params[k].is_object())
        for (const auto& [dk, dv] : params[k].items()) defs[k][dk] = dv;
    cands.push_back({name, std::move(params)});
  }
  if (cands.empty())
    return only_name.empty() ? "no tools to call" : "tool_choice names '" + only_name + "', which is not in tools";
  auto with_defs = [&](json s) {
    for (const auto& [k, v] : defs.items()) s[k] = v;
    return s;
  };
  out->alternatives.clear();
  if (fr.shape == Format::Forcing::kArguments) {
    // The name is literal text before the arguments: one alternative per function.
    for (const auto& c : cands) {
      std::string prefix = fr.prefix;
      const size_t at = prefix.find("{name}");
      if (at != std::string::npos) prefix.replace(at, 6, c.name);
      out->alternatives.push_back({prefix, with_defs(c.params)});
    }
    return "";
  }
  json alts = json::array();
  for (const auto& c : cands)
    alts.push_back({{"type", "object"},
                    {"properties", {{fr.name_key, {{"const", c.name}}}, {fr.args_key, c.params}}},
                    {"required", {fr.name_key, fr.args_key}},
                    {"additionalProperties", false}});
  // One call object; with several tools a union told apart by the name (generated first).
  json call = alts.size() == 1 ? alts[0] : json{{"anyOf", alts}};
  json schema = fr.shape == Format::Forcing::kCallArray
                    ? json{{"type", "array"}, {"items", call}, {"minItems", 1}, {"maxItems", parallel ? 8 : 1}}
                    : call;
  out->alternatives.push_back({fr.prefix, with_defs(std::move(schema))});
  return "";
}

}  // namespace modu::toolcall
