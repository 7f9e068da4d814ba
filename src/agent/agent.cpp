// The agent (see agent.h): the shared tool loop (loop.h) with a turn function that renders the
// conversation with the model's chat template, reuses the KV cache of the previous turn's prefix,
// generates (constrained to a call when the step's tool choice forces one) and parses the reply
// by the template's tool-call convention. Images a tool returns reach the model when it has a
// vision projector.
#include "modu/agent/agent.h"

#include <optional>

#include "modu/agent/loop.h"
#include "modu/chat/chat_template.h"
#include "modu/chat/jinja.h"
#include "modu/runtime/generate.h"
#include "modu/runtime/multimodal.h"
#include "modu/runtime/json_constraint.h"
#include "modu/toolcall/toolcall.h"
#include "modu/vision/image.h"

namespace modu::agent {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

struct Agent::Impl {
  const Model& model;
  const Tokenizer& tok;
  ThreadPool& pool;
  AgentOptions opts;
  std::optional<jinja::Template> tmpl;
  toolcall::Convention conv;
  std::string bos, eos;
  KvCache kv;
  std::vector<int32_t> cached;  // the tokens whose KV is in `kv`
  Toolbox box;
  Policy policy = Policy::ask_all();
  Approver* approver = nullptr;
  ActionLog* log = nullptr;
  ojson messages = ojson::array();
  json steps = json::array();
  int64_t generated = 0;
  int call_counter = 0;
  const vision::VisionModel* vision = nullptr;
  std::vector<vision::ImageEmbedding> images;  // every image of the conversation, in marker order

  Impl(const Model& m, const Tokenizer& t, ThreadPool& p, AgentOptions o)
      : model(m), tok(t), pool(p), opts(std::move(o)), kv(m.config(), 1, opts.n_ctx, KvType::kF16) {
    if (tok.bos_id() >= 0) bos = tok.token_text(tok.bos_id());
    if (tok.eos_id() >= 0) eos = tok.token_text(tok.eos_id());
    if (!opts.system.empty()) messages.push_back({{"role", "system"}, {"content", opts.system}});
  }

  Result<TurnOutput> turn(const Turn& t, const AgentEvents& events, const std::atomic<bool>* stop);
  std::string take_images(const std::vector<ToolImage>& imgs, const LoopEvents& events);
};

Agent::Agent(const Model& model, const Tokenizer& tok, ThreadPool& pool, AgentOptions opts)
    : impl_(std::make_unique<Impl>(model, tok, pool, std::move(opts))) {}
Agent::~Agent() = default;

Status Agent::set_template(const std::string& source) {
  MODU_ASSIGN_OR_RETURN(auto t, jinja::Template::parse(source));
  impl_->tmpl = std::move(t);
  impl_->conv = toolcall::detect_convention(source);
  if (!impl_->opts.tool_format.empty()) {
    impl_->conv.format = toolcall::find_format(impl_->opts.tool_format);
    if (!impl_->conv.format) return invalid_argument("unknown tool format '" + impl_->opts.tool_format + "' (see `modu toolcalls formats`)");
  }
  if (!impl_->eos.empty()) impl_->conv.end_markers.push_back(impl_->eos);
  return Status::Ok();
}

Status Agent::add_mcp(McpClient* client) { return impl_->box.add_mcp(client); }

void Agent::add_builtins(const Workspace* ws, const std::vector<std::string>& enabled, SandboxOptions sandbox) {
  impl_->box.add_builtins(ws, enabled, sandbox);
}

void Agent::set_policy(Policy p, Approver* approver) {
  impl_->policy = std::move(p);
  impl_->approver = approver;
}

void Agent::set_action_log(ActionLog* log) { impl_->log = log; }
const std::vector<ToolSpec>& Agent::tools() const { return impl_->box.specs(); }

void Agent::set_vision(const vision::VisionModel* vm) { impl_->vision = vm; }

// One model turn on the conversation so far.
Result<TurnOutput> Agent::Impl::turn(const Turn& t, const AgentEvents& events, const std::atomic<bool>* stop) {
  const bool use_tools = !t.tools.empty() && t.tool_choice != "none";
  chat::ChatTemplateInputs in;
  in.messages = t.messages;
  if (!t.tools.empty()) in.tools = t.tools;
  in.bos_token = bos;
  in.eos_token = eos;
  MODU_ASSIGN_OR_RETURN(std::string prompt, chat::render_chat_template(*tmpl, in));
  const bool has_bos = !bos.empty() && prompt.rfind(bos, 0) == 0;
  std::vector<int32_t> ids;
  std::vector<EmbdSpan> spans;  // the conversation's images at their markers
  if (images.empty()) {
    ids = tok.encode(prompt, tok.add_bos() && !has_bos, /*parse_special=*/true);
  } else {
    auto mm = build_multimodal_prompt(tok, prompt, images, vision->markers(), tok.add_bos() && !has_bos, true);
    if (!mm.ok()) return mm.status().with_context("the conversation's images");
    ids = std::move(mm->ids);
    spans = std::move(mm->spans);
  }
  TurnOutput out;
  int n_predict = opts.n_predict;
  if (opts.token_budget > 0) n_predict = (int)std::min<int64_t>(n_predict, opts.token_budget - generated);
  if ((int64_t)ids.size() + n_predict >= opts.n_ctx) {
    if (events) events("note", {{"text", "the conversation (" + std::to_string(ids.size()) + " tokens) fills the context"}});
    out.stop_reason = "context full";
    return out;
  }
  size_t common = 0;
  while (common < cached.size() && common < ids.size() && cached[common] == ids[common]) ++common;
  if (common == ids.size()) --common;
  kv.truncate(0, (int64_t)common);
  GenerateOptions g;
  g.n_predict = n_predict;
  g.n_cached = (int64_t)common;
  g.embd = spans;
  g.sampling = opts.sampling;
  g.render_special = true;  // call and reasoning markers are often control tokens; the parser must see them
  if (conv.format->template_ends_reply()) g.stop = conv.end_markers;
  for (const auto& m : conv.format->stop_markers()) g.stop.push_back(m);
  if (use_tools && t.tool_choice != "auto") {  // a forced call, in the format's own syntax
    toolcall::ForcedCall fc;
    const std::string only = t.tool_choice == "required" ? "" : t.tool_choice;
    if (std::string err = toolcall::forced_call(*conv.format, t.tools, only, true, &fc); !err.empty())
      return invalid_argument("tool choice '" + t.tool_choice + "' for step " + std::to_string(steps.size() + t.step + 1) + ": " + err);
    std::vector<JsonConstraint> alts;
    for (const auto& [prefix, schema] : fc.alternatives) {
      auto c = JsonConstraint::from_schema(schema);
      if (!c.ok()) return c.status().with_context("the schema of a forced tool call");
      alts.push_back(c->with_prefix(prefix));
    }
    if (alts.empty()) return invalid_argument("tool choice '" + t.tool_choice + "': this template's format cannot force a call");
    g.json = std::make_shared<const JsonConstraint>(JsonConstraint::one_of(std::move(alts)));
  }
  auto res = generate(model, tok, kv, pool, ids, g, [&](std::string_view) { return !(stop && stop->load()); });
  if (!res.ok()) return res.status();
  generated += (int64_t)res->tokens.size();
  cached = ids;
  cached.insert(cached.end(), res->tokens.begin(), res->tokens.end());
  cached.resize(std::min<size_t>(cached.size(), (size_t)kv.seq_len(0)));
  toolcall::ParseOptions po;
  po.tools = &t.tools;
  po.calls = use_tools;
  if (!conv.reasoning.open.empty()) {
    const size_t e = prompt.find_last_not_of(" \t\r\n");
    po.reasoning_open = e != std::string::npos && std::string_view(prompt).substr(0, e + 1).ends_with(conv.reasoning.open);
  }
  out.reply = toolcall::parse_reply(conv, res->text, po);
  out.generated = (int64_t)res->tokens.size();
  out.cut = res->reason == StopReason::kLength;
  out.cancelled = res->reason == StopReason::kCancelled;
  out.record = {{"prompt_tokens", ids.size()}, {"generated_tokens", res->tokens.size()}, {"reply", res->text}};
  if (!spans.empty()) {
    int64_t n_img = 0;
    for (const EmbdSpan& sp : spans) n_img += sp.n;
    out.record["image_tokens"] = n_img;
  }
  if (opts.keep_prompts) out.record["prompt"] = prompt;
  return out;
}

// Images in a tool's result: each decoded and embedded becomes a marker in the tool message (the
// model sees it where the template puts the result); one that fails stays described in words.
std::string Agent::Impl::take_images(const std::vector<ToolImage>& imgs, const LoopEvents& events) {
  std::string markers;
  if (!vision) return markers;
  for (const ToolImage& im : imgs) {
    auto decoded = vision::decode_image((const uint8_t*)im.bytes.data(), im.bytes.size());
    Result<vision::ImageEmbedding> e = decoded.ok() ? vision::embed_image(*vision, *decoded, pool)
                                                     : Result<vision::ImageEmbedding>(decoded.status());
    if (!e.ok()) {
      if (events) events("note", {{"text", "an image in a tool result (" + im.mime + ") was left out: " + e.status().message()}});
      continue;
    }
    images.push_back(std::move(e).value());
    markers += kImageMarker;
  }
  return markers;
}

Result<AgentResult> Agent::run(const std::string& task, const AgentEvents& events, const std::atomic<bool>* stop,
                               std::vector<vision::ImageEmbedding> images) {
  Impl& s = *impl_;
  if (!s.tmpl) return invalid_argument("the agent has no chat template (set_template)");
  if (!images.empty() && s.vision == nullptr)
    return invalid_argument("images need the model's vision projector (--mmproj): this model reads text only");
  std::string content;
  for (size_t i = 0; i < images.size(); ++i) content += kImageMarker;
  content += task;
  s.messages.push_back({{"role", "user"}, {"content", content}});
  for (auto& im : images) s.images.push_back(std::move(im));

  // The options hold over the whole conversation: tool choices and the budget go on from earlier runs.
  LoopOptions lo;
  lo.max_steps = s.opts.max_steps;
  lo.max_result_chars = s.opts.max_result_chars;
  lo.tool_timeout_s = s.opts.tool_timeout_s;
  for (size_t i = s.steps.size(); i < s.opts.tool_choice.size(); ++i) lo.tool_choice.push_back(s.opts.tool_choice[i]);
  lo.new_id = [&s](const char*, size_t) { return "call_" + std::to_string(++s.call_counter); };
  lo.take_images = [&s](const std::vector<ToolImage>& imgs, const LoopEvents& ev) { return s.take_images(imgs, ev); };
  AgentResult out;
  if (s.opts.token_budget > 0) {
    lo.token_budget = s.opts.token_budget - s.generated;
    if (lo.token_budget <= 0) lo.max_steps = 0, out.stop_reason = "token budget";
  }
  if (lo.max_steps > 0) {
    auto turn = [&](const Turn& t) { return s.turn(t, events, stop); };
    MODU_ASSIGN_OR_RETURN(LoopResult r, run_loop(s.messages, s.box, turn, policy_decider(s.policy, s.approver, s.opts.approve_all),
                                                 s.log, lo, events, stop));
    for (auto& st : r.steps) {
      st["step"] = s.steps.size() + 1;
      s.steps.push_back(st);
    }
    out.stop_reason = r.stop_reason;
    if (r.stop_reason == "answer") out.answer = r.last.content;
  }
  out.transcript = {{"messages", json::parse(s.messages.dump(-1, ' ', false, ojson::error_handler_t::replace))}, {"steps", s.steps},
                    {"stop_reason", out.stop_reason}, {"generated_tokens", s.generated}};
  return out;
}

}  // namespace modu::agent
