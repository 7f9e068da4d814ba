// POST /v1/chat/completions, and the chat run that the Responses and Messages endpoints share:
// the conversation rendered by the model's chat template, structured output and forced tool
// calls as a JSON constraint, and the reply split into content, reasoning_content and tool_calls
// by the template's tool-call convention, whole or as OpenAI stream deltas.
#include "http_impl.h"
#include "modu/runtime/multimodal.h"
#include "modu/chat/chat_template.h"

namespace modu::server {

using json = nlohmann::json;

namespace {

ApiError bad_param(std::string message, const char* param, const char* code = "invalid_value") {
  ApiError e = api_error(400, std::move(message), "invalid_request_error", code);
  e.param = param;
  return e;
}

// Ids for calls whose format has none: derived from the response id, unique per reply.
std::string call_id(const std::string& response_id, int index) {
  return "call_" + response_id.substr(response_id.find_first_of("-_") + 1) + "_" + std::to_string(index);
}

json tool_calls_json(const std::vector<toolcall::ToolCall>& calls, const std::string& response_id) {
  json arr = json::array();
  for (size_t i = 0; i < calls.size(); ++i)
    arr.push_back({{"id", calls[i].id.empty() ? call_id(response_id, (int)i) : calls[i].id},
                   {"type", "function"},
                   {"function", {{"name", calls[i].name}, {"arguments", calls[i].arguments}}}});
  return arr;
}

// OpenAI chunk deltas for one step of the reply: reasoning, content, then call fragments
// (a call's first fragment carries its index, id, type and name).
std::vector<json> delta_json(const toolcall::Delta& d, const std::string& response_id) {
  std::vector<json> out;
  if (!d.reasoning.empty()) out.push_back({{"reasoning_content", d.reasoning}});
  if (!d.content.empty()) out.push_back({{"content", d.content}});
  if (!d.calls.empty()) {
    json arr = json::array();
    for (const auto& c : d.calls) {
      json f = {{"index", c.index}};
      json fn = {{"arguments", c.arguments}};
      if (!c.name.empty()) {
        f["id"] = c.id.empty() ? call_id(response_id, c.index) : c.id;
        f["type"] = "function";
        fn["name"] = c.name;
      }
      f["function"] = std::move(fn);
      arr.push_back(std::move(f));
    }
    out.push_back({{"tool_calls", std::move(arr)}});
  }
  return out;
}

}  // namespace

std::optional<ApiError> HttpServer::Impl::start_chat(const httplib::Request& req, httplib::Response& res,
                                                     const ChatRequest& cr, const Tenant& tenant, ChatRun* run) {
  // Tools reach the template and calls are parsed from the reply unless tool_choice is "none";
  // "required" or a named function constrains the reply to be such a call.
  const bool use_tools = cr.tools.is_array() && !cr.tools.empty() && cr.tool_choice != "none";
  Result<std::string> text = [&]() -> Result<std::string> {
    chat::ChatTemplateInputs in;
    in.messages = cr.messages;
    if (use_tools) in.tools = cr.tools;
    in.bos_token = bos_text;
    in.eos_token = eos_text;
    std::lock_guard<std::mutex> lock(tmpl_mu);
    return chat::render_chat_template(*tmpl, in);
  }();
  if (!text.ok())
    return api_error(400, "The chat template rejected the messages: " + text.status().message(), "invalid_request_error",
                     "invalid_messages");
  run->conv = conv;
  run->tools = std::make_shared<const nlohmann::ordered_json>(use_tools ? cr.tools : nlohmann::ordered_json());
  run->opts.tools = use_tools ? run->tools.get() : nullptr;
  run->opts.calls = use_tools;
  // A generation prompt that opens a reasoning block ("<think>\n") makes the reply start inside it.
  if (!conv.reasoning.open.empty()) {
    const size_t e = text->find_last_not_of(" \t\r\n");
    run->opts.reasoning_open = e != std::string::npos && std::string_view(*text).substr(0, e + 1).ends_with(conv.reasoning.open);
  }
  GenJob job;
  std::vector<int32_t> prompt;
  std::shared_ptr<std::vector<vision::ImageEmbedding>> images;
  std::vector<EmbdSpan> spans;
  if (!cr.image_urls.empty()) {  // each image's embeddings at its marker, wrapped in the family's tokens
    images = std::make_shared<std::vector<vision::ImageEmbedding>>();
    if (auto e = embed_images(cr.image_urls, images.get())) return e;
    auto mm = build_multimodal_prompt(tok, *text, *images, opts.vision->markers(), true, true);
    if (!mm.ok()) return bad_param(mm.status().message(), "messages");
    prompt = std::move(mm->ids);
    spans = std::move(mm->spans);
  } else {
    prompt = tokenize(*text, true);
  }
  if (auto e = make_job(cr.sampling, std::move(prompt), tenant, &job)) return e;
  job.embd = std::move(spans);
  job.images = images;
  if (auto e = lora_mask(cr.model, req.body, &job.lora, &job.lora_epoch)) return e;
  job.top_logprobs = cr.logprobs ? cr.top_logprobs : -1;
  // Call and reasoning markers are often control tokens (Mistral's [TOOL_CALLS], Llama's
  // <|python_tag|>, harmony's channels): they must reach the parser. The end-of-turn texts then
  // stop generation like the end-of-generation token does.
  const toolcall::Format& fmt = *conv.format;
  job.render_special = use_tools || !conv.reasoning.open.empty() || fmt.own_reasoning();
  if (job.render_special) {
    if (fmt.template_ends_reply()) job.stop.insert(job.stop.end(), conv.end_markers.begin(), conv.end_markers.end());
    for (const auto& m : fmt.stop_markers()) job.stop.push_back(m);
  } else if (chatml_fallback) {
    job.stop.push_back("<|im_end|>");
  }
  if (cr.response_format == "json_object") {
    job.json = std::make_shared<const JsonConstraint>(JsonConstraint::any_object());
  } else if (cr.response_format == "json_schema") {
    auto c = JsonConstraint::from_schema(cr.json_schema);
    if (!c.ok())
      return bad_param("Invalid or unsupported response_format schema: " + c.status().message(),
                       "response_format.json_schema.schema", "invalid_json_schema");
    job.json = std::make_shared<const JsonConstraint>(std::move(c).value());
  }
  if (use_tools && (cr.tool_choice == "required" || cr.tool_choice == "function")) {
    // Forced call: the reply is the format's own call prefix and a value the schema allows.
    if (job.json) return bad_param("response_format cannot be combined with tool_choice 'required' or a named function.", "tool_choice");
    if (std::string(fmt.name()) == "content")
      return bad_param("This model's chat template has no tool-call syntax modu recognizes, so a call cannot be forced; "
                       "start the server with --tool-format NAME (see `modu toolcalls formats`).", "tool_choice");
    toolcall::ForcedCall fc;
    if (std::string err = toolcall::forced_call(fmt, cr.tools, cr.tool_choice_name, cr.parallel_tool_calls, &fc); !err.empty())
      return bad_param(err, "tool_choice");
    std::vector<JsonConstraint> alts;
    for (const auto& [prefix, schema] : fc.alternatives) {
      auto c = JsonConstraint::from_schema(schema);
      if (!c.ok()) return bad_param("The tool's parameters schema cannot be enforced: " + c.status().message(), "tools");
      alts.push_back(c->with_prefix(prefix));
    }
    job.json = std::make_shared<const JsonConstraint>(JsonConstraint::one_of(std::move(alts)));
  }
  run->n_prompt = (int64_t)job.prompt.size();
  run->one_call = !cr.parallel_tool_calls;
  ApiError err;
  run->st = submit(std::move(job), req, res, &err);
  if (!run->st) return err;
  return std::nullopt;
}

void HttpServer::Impl::chat(const httplib::Request& req, httplib::Response& res) {
  Tenant tenant;
  if (auto e = authorize(req, res, &tenant)) return send_error(res, *e);
  ChatRequest cr;
  if (auto e = parse_chat_request(req.body, limits, &cr)) return send_error(res, *e);
  ChatRun run;
  if (auto e = start_chat(req, res, cr, tenant, &run)) return send_error(res, *e);
  std::shared_ptr<Stream> st = run.st;
  const ResponseMeta m = meta("chatcmpl");
  const bool want_lp = cr.logprobs;
  const auto wm = watermark_for(tenant, cr.sampling.temperature);
  const std::string wm_id = wm ? wm->id : "";
  if (!cr.stream) {
    std::string text;
    std::vector<TokenInfo> toks;
    for (auto& d : collect(*st)) {
      text += d.text;
      toks.insert(toks.end(), d.tokens.begin(), d.tokens.end());
    }
    charge(tenant, *st);
    if (auto e = incomplete(*st)) return send_error(res, *e);
    const toolcall::Reply r = run.limit(toolcall::parse_reply(run.conv, text, run.opts));
    json msg = {{"role", "assistant"}, {"content", r.content}, {"refusal", nullptr}};
    if (!r.reasoning.empty()) msg["reasoning_content"] = r.reasoning;
    json finish = finish_json(st->finish());
    if (!r.calls.empty()) {
      if (r.content.empty()) msg["content"] = nullptr;
      msg["tool_calls"] = tool_calls_json(r.calls, m.id);
      if (st->finish() == Finish::kStop) finish = "tool_calls";
    }
    json choice = {{"index", 0}, {"message", msg}, {"logprobs", want_lp ? chat_logprobs(tok, toks) : json(nullptr)},
                   {"finish_reason", finish}};
    json out = {{"id", m.id}, {"object", "chat.completion"}, {"created", m.created}, {"model", m.model},
                {"system_fingerprint", "modu"}, {"choices", json::array({choice})}, {"usage", usage_json(*st)}};
    out["provenance"] = label(res, wm_id);
    audit_request({"/v1/chat/completions", tenant.name, req.body, text, finish_name(st->finish()), wm_id, st.get(), r.calls, false});
    res.set_content(dump_json(out), "application/json");
    return;
  }
  const json prov = label(res, wm_id);
  const bool usage = cr.include_usage;
  auto with_usage = [usage](json c) {
    if (usage) c["usage"] = nullptr;
    return c;
  };
  std::string first = sse(with_usage(chat_chunk(m, {{"role", "assistant"}, {"content", ""}, {"refusal", nullptr}},
                                                nullptr, want_lp ? json{{"content", json::array()}, {"refusal", nullptr}} : json(nullptr))));
  // Content and reasoning stream as they become final; a call goes out as its header (index,
  // id, name), then its argument fragments as the model writes them.
  auto reply = std::make_shared<toolcall::ReplyStream>(run.conv, run.opts);
  auto chunks = [m, with_usage](const toolcall::Delta& d, json logprobs) {
    std::string out;
    for (json& delta : delta_json(d, m.id)) {
      out += sse(with_usage(chat_chunk(m, delta, nullptr, logprobs)));
      logprobs = nullptr;
    }
    if (!logprobs.is_null()) out += sse(with_usage(chat_chunk(m, {{"content", ""}}, nullptr, logprobs)));
    return out;
  };
  stream_response(
      res, st, first,
      [this, want_lp, reply, chunks, run](const Delta& d) {  // (run keeps what reply's options point to)
        const toolcall::Delta td = run.limit(reply->push(d.text));
        return chunks(td, want_lp && !d.tokens.empty() ? chat_logprobs(tok, d.tokens) : json(nullptr));
      },
      [this, m, st, usage, with_usage, tenant, reply, chunks, run, prov]() {
        charge(tenant, *st);
        if (st->finish() != Finish::kStop && st->finish() != Finish::kLength) return stream_error(*st);
        std::string out = chunks(run.limit(reply->finish()), nullptr);
        json finish = finish_json(st->finish());
        if (!reply->sent().calls.empty() && st->finish() == Finish::kStop) finish = "tool_calls";
        json last = with_usage(chat_chunk(m, json::object(), finish, nullptr));
        last["provenance"] = prov;
        out += sse(last);
        if (usage) {
          json u = chat_chunk(m, json::object(), nullptr, nullptr);
          u["provenance"] = prov;
          out += usage_event(u, *st);
        }
        return out;
      },
      "data: [DONE]\n\n",
      [this, st, tenant, run, body = req.body, wm_id](const std::string& text) {
        audit_request({"/v1/chat/completions", tenant.name, body, text, finish_name(st->finish()), wm_id, st.get(),
                       run.limit(toolcall::parse_reply(run.conv, text, run.opts)).calls, true});
      });
}

}  // namespace modu::server
