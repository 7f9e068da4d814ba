// Trust in the HTTP server (Korea's AI Basic Act): provenance labels on every generated output,
// per-tenant watermark keys, the audit log of every request, the notice on /v1/models and the
// start page, and the high-impact mode's requirements.
#include "http_impl.h"

#include "modu/trust/digest.h"

namespace modu::server {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace {

bool api_endpoint(const std::string& path) {
  for (const char* p : {"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses", "/v1/messages"})
    if (path == p) return true;
  return false;
}

}  // namespace

Status HttpServer::Impl::init_trust() {
  provenance_base.model = opts.model_id;
  provenance_base.operator_name = opts.operator_name;
  provenance_base.notice = opts.ai_notice;
  if (!opts.model_path.empty()) {
    MODU_ASSIGN_OR_RETURN(provenance_base.model_sha256, trust::model_sha256(opts.model_path));
  }
  if (opts.high_impact) {
    if (opts.api_keys_file.empty())
      return invalid_argument("--high-impact needs --api-keys: every request must come from a known tenant");
    if (opts.audit_log.empty())
      return invalid_argument("--high-impact needs --audit-log: every request is recorded with its full content");
    opts.audit_content = true;
  }
  if (!opts.watermark_key.empty()) {
    SamplingParams p;
    p.watermark = true;
    p.temperature = 1;
    p.watermark_gamma = opts.watermark_gamma;
    p.watermark_delta = opts.watermark_delta;
    MODU_RETURN_IF_ERROR(p.validate(tok.n_vocab()));
  }
  if (!opts.audit_log.empty()) {
    trust::AuditOptions ao;
    ao.path = opts.audit_log;
    ao.key_path = opts.audit_key;
    ao.max_bytes = (uint64_t)(std::max(0.0, opts.audit_max_mb) * 1048576.0);
    MODU_ASSIGN_OR_RETURN(auto log, trust::AuditLog::open(ao));
    audit = std::move(log);
    MODU_RETURN_IF_ERROR(audit->append("server", ojson{{"model", opts.model_id},
                                                      {"model_sha256", provenance_base.model_sha256},
                                                      {"operator", opts.operator_name},
                                                      {"high_impact", opts.high_impact},
                                                      {"audit_content", opts.audit_content}}));
  }
  return Status::Ok();
}

std::optional<WatermarkKey> HttpServer::Impl::watermark_for(const Tenant& t, float temperature) const {
  if (temperature <= 0) return std::nullopt;  // greedy decoding is never watermarked
  const std::string& secret = t.watermark.empty() ? opts.watermark_key : t.watermark;
  if (secret.empty() || secret == "off") return std::nullopt;
  return WatermarkKey::from_secret(secret);
}

json HttpServer::Impl::label(httplib::Response& res, const std::string& watermark_key_id) {
  trust::Provenance p = provenance_base;
  p.watermark_key_id = watermark_key_id;
  res.set_header("X-AI-Generated", "true");
  res.set_header("X-AI-Provenance", trust::provenance_header(p));
  return trust::provenance_json(p, trust::utc_now_iso8601());
}

void HttpServer::Impl::audit_request(const AuditEntry& e) {
  if (!audit) return;
  ojson r = ojson::object();
  r["tenant"] = e.tenant;
  r["endpoint"] = e.endpoint;
  r["status"] = e.status;
  r["model"] = opts.model_id;
  r["model_sha256"] = provenance_base.model_sha256;
  r["stream"] = e.stream;
  r["request_sha256"] = trust::sha256_hex(e.body);
  r["output_sha256"] = trust::sha256_hex(e.output);
  if (e.st) {
    r["prompt_tokens"] = e.st->n_prompt();
    r["cached_tokens"] = e.st->n_cached();
    r["completion_tokens"] = e.st->n_completion();
  }
  if (e.input_tokens >= 0) r["prompt_tokens"] = e.input_tokens;
  r["finish"] = e.finish;
  ojson calls = ojson::array();
  for (const auto& c : e.calls) calls.push_back({{"name", c.name}, {"arguments_sha256", trust::sha256_hex(c.arguments)}});
  r["tool_calls"] = std::move(calls);
  r["watermark_key_id"] = e.watermark_key_id.empty() ? ojson(nullptr) : ojson(e.watermark_key_id);
  if (opts.audit_content) {
    r["request"] = e.body;
    r["output"] = e.output;
  }
  if (Status st = audit->append("request", r); !st.ok())
    std::fprintf(stderr, "modu serve: AUDIT LOG WRITE FAILED: %s\n", st.message().c_str());
}

std::string HttpServer::Impl::tenant_name_of(const httplib::Request& req) const {
  if (!tenants) return "default";
  const std::string h = req.get_header_value("Authorization");
  const std::string key = h.rfind("Bearer ", 0) == 0 ? h.substr(7) : req.get_header_value("x-api-key");
  const Tenant* t = key.empty() ? nullptr : tenants->find_key(key);
  return t ? t->name : "";
}

void HttpServer::Impl::audit_error(const httplib::Request& req, const httplib::Response& res) {
  if (!audit || res.status < 400 || !api_endpoint(req.path)) return;
  ojson r = ojson::object();
  r["tenant"] = tenant_name_of(req);
  r["endpoint"] = req.path;
  r["status"] = res.status;
  r["model"] = opts.model_id;
  r["model_sha256"] = provenance_base.model_sha256;
  r["request_sha256"] = trust::sha256_hex(req.body);
  r["error"] = res.body.size() > 2000 ? res.body.substr(0, 2000) : res.body;
  r["remote_addr"] = req.remote_addr;
  if (opts.audit_content) r["request"] = req.body;
  if (Status st = audit->append("request", r); !st.ok())
    std::fprintf(stderr, "modu serve: AUDIT LOG WRITE FAILED: %s\n", st.message().c_str());
}

std::string HttpServer::Impl::notice_html() const {
  const std::string model = jinja::pystr::html_escape(opts.model_id);
  const std::string op = opts.operator_name.empty() ? "" : jinja::pystr::html_escape(opts.operator_name);
  const std::string notice = jinja::pystr::html_escape(opts.ai_notice.empty() ? trust::bilingual_notice(opts.model_id) : opts.ai_notice);
  std::string h =
      "<p lang=\"ko\"><strong>이 서비스는 인공지능(AI) 모델 <code>" + model + "</code>을(를) 사용합니다. 응답은 AI가 생성한 것입니다.</strong></p>\n"
      "<p lang=\"en\"><strong>This service uses an artificial intelligence (AI) model, <code>" + model +
      "</code>. Its replies are generated by AI.</strong></p>\n";
  if (!opts.ai_notice.empty()) h += "<p>" + notice + "</p>\n";
  if (!op.empty()) h += "<p>운영자 / Operator: " + op + "</p>\n";
  if (opts.high_impact)
    h += "<p>고영향 AI 모드: 모든 요청이 기록됩니다. / High-impact mode: every request is recorded.</p>\n";
  return h;
}

}  // namespace modu::server
