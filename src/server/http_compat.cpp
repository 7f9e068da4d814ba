// POST /v1/responses (OpenAI Responses) and POST /v1/messages (Anthropic Messages): each request
// becomes a ChatRequest (api_responses.cpp, api_messages.cpp), runs as a chat (http_chat.cpp) and
// its reply is written in that API's objects and typed SSE events, errors in its own shape.
#include "http_impl.h"

namespace modu::server {

using json = nlohmann::json;

namespace {

void send_anthropic_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(dump_json(anthropic_error_json(e)), "application/json");
}

CompatUsage compat_usage(const Stream& st) {
  return {st.n_prompt(), st.n_completion(), st.n_cached()};
}

CompatFinish compat_finish(const Stream& st) {
  CompatFinish f;
  f.length = st.finish() == Finish::kLength;
  return f;
}

// Ids for calls the model wrote without one, as the streams assign them: PREFIX<suffix>_<index>.
toolcall::Reply with_ids(toolcall::Reply r, const std::string& prefix, const std::string& response_id) {
  for (size_t i = 0; i < r.calls.size(); ++i)
    if (r.calls[i].id.empty()) r.calls[i].id = prefix + compat_detail::id_suffix(response_id) + "_" + std::to_string(i);
  return r;
}

}  // namespace

void HttpServer::Impl::responses_api(const httplib::Request& req, httplib::Response& res) {
  Tenant tenant;
  if (auto e = authorize(req, res, &tenant)) return send_error(res, *e);
  ChatRequest cr;
  ResponsesInfo info;
  if (auto e = parse_responses_request(req.body, limits, &responses, &cr, &info)) return send_error(res, *e);
  if (!info.mcp.empty()) return responses_mcp(req, res, tenant, std::move(cr), info);
  if (!info.approvals.empty()) {
    ApiError e = api_error(400, "mcp_approval_response items answer approval requests of MCP tools: send the same "
                                "{\"type\": \"mcp\"} tools again with them.", "invalid_request_error", "invalid_value");
    e.param = "tools";
    return send_error(res, e);
  }
  ChatRun run;
  if (auto e = start_chat(req, res, cr, tenant, &run)) return send_error(res, *e);
  std::shared_ptr<Stream> st = run.st;
  const ResponseMeta rm = meta("resp", '_');
  const CompatMeta m{rm.id, rm.model, rm.created};
  const auto wm = watermark_for(tenant, cr.sampling.temperature);
  const std::string wm_id = wm ? wm->id : "";
  if (!cr.stream) {
    const std::string text = collect_text(*st);
    charge(tenant, *st);
    if (auto e = incomplete(*st)) return send_error(res, *e);
    const toolcall::Reply r = with_ids(run.limit(toolcall::parse_reply(run.conv, text, run.opts)), "call_", m.id);
    store_response(&responses, m.id, info, r);
    json out = responses_response_json(m, info, r, compat_finish(*st), compat_usage(*st));
    out["provenance"] = label(res, wm_id);
    audit_request({"/v1/responses", tenant.name, req.body, text, finish_name(st->finish()), wm_id, st.get(), r.calls, false});
    res.set_content(dump_json(out), "application/json");
    return;
  }
  const json prov = label(res, wm_id);
  auto reply = std::make_shared<toolcall::ReplyStream>(run.conv, run.opts);
  auto events = std::make_shared<ResponsesStream>(m, info);
  stream_response(
      res, st, events->start(), [reply, events, run](const Delta& d) { return events->push(run.limit(reply->push(d.text))); },
      [this, st, tenant, reply, events, info, id = m.id, run, prov]() {
        charge(tenant, *st);
        if (auto e = incomplete(*st)) return events->error(*e);
        std::string out = events->push(run.limit(reply->finish()));
        out += events->finish(compat_finish(*st), compat_usage(*st), prov);
        store_response(&responses, id, info, events->reply());
        return out;
      },
      "",
      [this, st, tenant, run, body = req.body, wm_id](const std::string& text) {
        audit_request({"/v1/responses", tenant.name, body, text, finish_name(st->finish()), wm_id, st.get(),
                       run.limit(toolcall::parse_reply(run.conv, text, run.opts)).calls, true});
      });
}

void HttpServer::Impl::messages_api(const httplib::Request& req, httplib::Response& res) {
  Tenant tenant;
  if (auto e = authorize(req, res, &tenant)) return send_anthropic_error(res, *e);
  ChatRequest cr;
  if (auto e = parse_messages_request(req.body, limits, &cr)) return send_anthropic_error(res, *e);
  ChatRun run;
  if (auto e = start_chat(req, res, cr, tenant, &run)) return send_anthropic_error(res, *e);
  std::shared_ptr<Stream> st = run.st;
  const ResponseMeta rm = meta("msg", '_');
  const CompatMeta m{rm.id, rm.model, rm.created};
  const auto wm = watermark_for(tenant, cr.sampling.temperature);
  const std::string wm_id = wm ? wm->id : "";
  if (!cr.stream) {
    const std::string text = collect_text(*st);
    charge(tenant, *st);
    if (auto e = incomplete(*st)) return send_anthropic_error(res, *e);
    const toolcall::Reply r = with_ids(run.limit(toolcall::parse_reply(run.conv, text, run.opts)), "toolu_", m.id);
    json out = messages_response_json(m, r, compat_finish(*st), compat_usage(*st));
    out["provenance"] = label(res, wm_id);
    audit_request({"/v1/messages", tenant.name, req.body, text, finish_name(st->finish()), wm_id, st.get(), r.calls, false});
    res.set_content(dump_json(out), "application/json");
    return;
  }
  const json prov = label(res, wm_id);
  auto reply = std::make_shared<toolcall::ReplyStream>(run.conv, run.opts);
  auto events = std::make_shared<MessagesStream>(m);
  // Cached prompt tokens are known once the engine admits the request: message_delta reports them.
  std::string first = events->start(run.n_prompt);
  stream_response(
      res, st, first, [reply, events, run](const Delta& d) { return events->push(run.limit(reply->push(d.text))); },
      [this, st, tenant, reply, events, run, prov]() {
        charge(tenant, *st);
        if (auto e = incomplete(*st)) return events->error(*e);
        std::string out = events->push(run.limit(reply->finish()));
        return out + events->finish(compat_finish(*st), compat_usage(*st), prov);
      },
      "",
      [this, st, tenant, run, body = req.body, wm_id](const std::string& text) {
        audit_request({"/v1/messages", tenant.name, body, text, finish_name(st->finish()), wm_id, st.get(),
                       run.limit(toolcall::parse_reply(run.conv, text, run.opts)).calls, true});
      });
}

}  // namespace modu::server
