// The HTTP server: routes, authentication, tenant limits, job submission, streaming over SSE,
// completions and embeddings, metrics and graceful shutdown (chat: http_chat.cpp; Responses and
// Messages: http_compat.cpp).
#include "modu/server/http_server.h"

#include "http_impl.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <thread>


namespace modu::server {

using json = nlohmann::json;

ApiError api_error(int status, std::string message, std::string type, std::string code) {
  ApiError e;
  e.status = status;
  e.message = std::move(message);
  e.type = std::move(type);
  e.code = std::move(code);
  return e;
}

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(dump_json(e.to_json()), "application/json");
}

namespace {

// Used when the model has no tokenizer.chat_template.
const char* kChatMlTemplate =
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

// The socket of the connection a request arrived on. cpp-httplib 0.11 (Debian's) does not hand
// the socket to handlers, but a live TCP connection is the only socket of this process with its
// (local port, peer address, peer port), so we find it among our descriptors: a few dozen
// getsockname/getpeername calls per request, nothing per token. -1 if not found.
int find_connection_socket(const httplib::Request& req) {
  if (req.remote_port <= 0 || req.local_port <= 0) return -1;
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return -1;
  int found = -1;
  const int skip = ::dirfd(d);
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd == skip) continue;
    sockaddr_storage local{}, peer{};
    socklen_t ll = sizeof local, pl = sizeof peer;
    if (::getsockname((int)fd, (sockaddr*)&local, &ll) != 0 || ::getpeername((int)fd, (sockaddr*)&peer, &pl) != 0) continue;
    char lhost[NI_MAXHOST], lport[NI_MAXSERV], phost[NI_MAXHOST], pport[NI_MAXSERV];
    if (::getnameinfo((sockaddr*)&local, ll, lhost, sizeof lhost, lport, sizeof lport, NI_NUMERICHOST | NI_NUMERICSERV) != 0 ||
        ::getnameinfo((sockaddr*)&peer, pl, phost, sizeof phost, pport, sizeof pport, NI_NUMERICHOST | NI_NUMERICSERV) != 0)
      continue;
    if (std::atoi(lport) == req.local_port && std::atoi(pport) == req.remote_port && req.remote_addr == phost) {
      found = (int)fd;
      break;
    }
  }
  ::closedir(d);
  return found;
}

// Whether the peer of `fd` is still there: a closed connection reads as end-of-file (or an error)
// without blocking; pending bytes (a pipelined next request) or nothing yet both mean alive.
bool connection_alive(int fd) {
  char c;
  const ssize_t n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return true;
  if (n == 0) return false;
  return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

std::string endpoint_label(const std::string& path) {
  for (const char* p : {"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses", "/v1/messages",
                        "/v1/models", "/health", "/metrics"})
    if (path == p) return p;
  return "other";
}

}  // namespace

ResponseMeta HttpServer::Impl::meta(const char* prefix, char sep) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s%c%08llx%06llx", prefix, sep, (unsigned long long)(id_salt & 0xFFFFFFFF),
                (unsigned long long)next_id.fetch_add(1));
  return {buf, (int64_t)std::time(nullptr), opts.model_id};
}

std::optional<ApiError> HttpServer::Impl::authorize(const httplib::Request& req, httplib::Response& res, Tenant* out) {
  if (!tenants) {
    *out = Tenant{"default", {}, ""};
  } else {
    const std::string h = req.get_header_value("Authorization");
    const std::string prefix = "Bearer ";
    const std::string x_key = req.get_header_value("x-api-key");  // Anthropic clients
    if (h.empty() && x_key.empty())
      return api_error(401, "You didn't provide an API key. Send it as 'Authorization: Bearer KEY' (or 'x-api-key: KEY').",
                       "invalid_request_error", "missing_api_key");
    const Tenant* t = nullptr;
    if (!h.empty()) {
      if (h.rfind(prefix, 0) == 0) t = tenants->find_key(std::string_view(h).substr(prefix.size()));
    } else {
      t = tenants->find_key(x_key);
    }
    if (!t) return api_error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key");
    *out = *t;
  }
  if (auto retry = limiter.admit(out->name, out->limits, Clock::now())) {
    res.set_header("Retry-After", std::to_string(*retry));
    return api_error(429, "Rate limit reached for tenant '" + out->name + "'; retry in " + std::to_string(*retry) + " s.",
                     "requests", "rate_limit_exceeded");
  }
  if (draining.load()) return api_error(503, "The server is shutting down.", "server_error", "shutting_down");
  return std::nullopt;
}

std::vector<int32_t> HttpServer::Impl::tokenize(const std::string& text, bool parse_special) {
  bool add_special = true;
  if (tok.bos_id() >= 0 && !bos_text.empty() && text.rfind(bos_text, 0) == 0) add_special = false;
  return tok.encode(text, add_special, parse_special);
}

// Turns shared sampling fields into a job; checks the prompt against the context.
std::optional<ApiError> HttpServer::Impl::make_job(const SamplingFields& s, std::vector<int32_t> prompt, const Tenant& t, GenJob* job) {
  const int64_t n_ctx = opts.engine.n_ctx;
  if (prompt.empty()) return api_error(400, "The prompt is empty.", "invalid_request_error", "invalid_value");
  if ((int64_t)prompt.size() >= n_ctx)
    return api_error(400, "This model's maximum context length is " + std::to_string(n_ctx) + " tokens. However, your prompt has " +
                              std::to_string(prompt.size()) + " tokens. Please reduce the length of the prompt.",
                     "invalid_request_error", "context_length_exceeded");
  job->prompt = std::move(prompt);
  const int64_t room = n_ctx - (int64_t)job->prompt.size();
  job->max_tokens = std::min(s.max_tokens.value_or(room), room);
  job->sampling.temperature = s.temperature;
  job->sampling.top_p = s.top_p;
  job->sampling.top_k = s.top_k;
  job->sampling.min_p = s.min_p;
  job->sampling.repeat_penalty = s.repetition_penalty;
  job->sampling.presence_penalty = s.presence_penalty;
  job->sampling.frequency_penalty = s.frequency_penalty;
  job->sampling.logit_bias = s.logit_bias;
  job->sampling.seed = s.seed ? *s.seed : std::random_device{}() * 0x9E3779B97F4A7C15ull + next_id.load();
  if (auto wm = watermark_for(t, s.temperature)) {
    job->sampling.watermark = true;
    job->sampling.watermark_k0 = wm->k0;
    job->sampling.watermark_k1 = wm->k1;
    job->sampling.watermark_gamma = opts.watermark_gamma;
    job->sampling.watermark_delta = opts.watermark_delta;
  }
  Status st = job->sampling.validate(tok.n_vocab());
  if (!st.ok()) return api_error(400, st.message(), "invalid_request_error", "invalid_value");
  job->stop = s.stop;
  job->ignore_eos = s.ignore_eos;
  job->tenant = t.name;
  job->tenant_max_parallel = t.limits.max_parallel;
  return std::nullopt;
}

std::optional<ApiError> HttpServer::Impl::lora_mask(const std::string& model_field, const std::string& body, uint32_t* mask,
                                                    uint64_t* epoch) const {
  *mask = 0;
  // The names and the epoch under one lock: an unload between this lookup and admission makes the
  // engine refuse the job rather than run it with whatever adapter takes the slot next.
  std::lock_guard<std::mutex> lock(lora_mu);
  *epoch = engine->lora_epoch();
  const auto& names = model.named_loras();
  auto unknown = [&](const std::string& n, const char* param) {
    std::string known;
    for (const auto& k : names)
      if (!k.empty()) known += (known.empty() ? "" : ", ") + k;
    ApiError e = api_error(400, "Unknown LoRA adapter '" + n + "'; this server has " + (known.empty() ? "none" : known) +
                                    " (started with --lora NAME=PATH).", "invalid_request_error", "lora_not_found");
    e.param = param;
    return e;
  };
  auto add = [&](const std::string& n, const char* param) -> std::optional<ApiError> {
    const int i = model.named_lora_index(n);
    if (i < 0) return unknown(n, param);
    *mask |= 1u << i;
    return std::nullopt;
  };
  // "BASE:NAME" with BASE the served id (other model names, "llama3:8b" included, select nothing).
  const std::string prefix = opts.model_id + ":";
  if (model_field.rfind(prefix, 0) == 0)
    if (auto e = add(model_field.substr(prefix.size()), "model")) return e;
  if (body.find("\"lora\"") == std::string::npos) return std::nullopt;
  const json j = json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("lora") || j["lora"].is_null()) return std::nullopt;
  const json& l = j["lora"];
  if (l.is_string()) return add(l.get<std::string>(), "lora");
  if (!l.is_array()) return api_error(400, "'lora' must be an adapter name or an array of names.", "invalid_request_error", "invalid_type");
  for (const auto& n : l) {
    if (!n.is_string()) return api_error(400, "'lora' must be an adapter name or an array of names.", "invalid_request_error", "invalid_type");
    if (auto e = add(n.get<std::string>(), "lora")) return e;
  }
  return std::nullopt;
}

// Queues a job; writes 503 on a full queue or during shutdown. The engine watches the client's
// connection from then on; collect() or the stream's end stops that before the socket closes.
std::shared_ptr<Stream> HttpServer::Impl::submit(GenJob job, const httplib::Request& req, httplib::Response& res, ApiError* err) {
  std::shared_ptr<Stream> st;
  const int64_t n_prompt = (int64_t)job.prompt.size(), n_max = job.max_tokens;
  switch (engine->submit(std::move(job), &st)) {
    case Engine::Submit::kOk:
      if (const int fd = find_connection_socket(req); fd >= 0) st->set_client_probe([fd] { return connection_alive(fd); });
      return st;
    case Engine::Submit::kQueueFull:
      res.set_header("Retry-After", "1");
      *err = api_error(503, "The server is at capacity (all slots busy and the queue is full); retry later.", "server_error",
                       "queue_full");
      return nullptr;
    case Engine::Submit::kTooLarge:
      *err = api_error(503, "The prompt (" + std::to_string(n_prompt) + " tokens) plus max_tokens (" + std::to_string(n_max) +
                                ") needs more KV cache than this server holds (" +
                                std::to_string(engine->kv_blocks() * KvCache::kBlock) +
                                " positions for all requests, see --cache-mb); lower max_tokens or shorten the prompt.",
                       "server_error", "kv_cache_too_small");
      return nullptr;
    case Engine::Submit::kStopped: break;
  }
  *err = api_error(503, "The server is shutting down.", "server_error", "shutting_down");
  return nullptr;
}

void HttpServer::Impl::charge(const Tenant& t, const Stream& st) { limiter.charge_tokens(t.name, st.n_prompt() + st.n_completion(), Clock::now()); }

std::vector<Delta> HttpServer::Impl::collect(Stream& st) {
  std::vector<Delta> all;
  while (!st.wait(&all, std::chrono::milliseconds(500))) {
  }
  st.clear_client_probe();
  return all;
}

std::string HttpServer::Impl::collect_text(Stream& st) {
  std::string text;
  for (auto& d : collect(st)) text += d.text;
  return text;
}

std::optional<ApiError> HttpServer::Impl::incomplete(const Stream& st) {
  if (st.finish() == Finish::kStop || st.finish() == Finish::kLength) return std::nullopt;
  const bool err = st.finish() == Finish::kError;
  return api_error(err ? 500 : 503, "The request did not complete: " + st.error(), "server_error",
                   err ? "internal_error" : "cancelled");
}

void HttpServer::Impl::stream_response(httplib::Response& res, std::shared_ptr<Stream> st, std::string first,
                                       std::function<std::string(const Delta&)> emit, std::function<std::string()> finish,
                                       std::string done_text, std::function<void(const std::string&)> on_end) {
  struct Ctx {
    std::shared_ptr<Stream> st;
    std::string first;
    std::function<std::string(const Delta&)> emit;
    std::function<std::string()> finish;
    std::string done_text;
    std::function<void(const std::string&)> on_end;
    std::string text;  // everything generated, for on_end
    Clock::time_point last_write = Clock::now();
  };
  auto ctx = std::make_shared<Ctx>(Ctx{std::move(st), std::move(first), std::move(emit), std::move(finish), std::move(done_text),
                                       std::move(on_end), std::string(), Clock::now()});
  ++in_flight;
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [ctx](size_t, httplib::DataSink& sink) {
        auto write = [&](const std::string& s) {
          if (s.empty()) return true;
          ctx->last_write = Clock::now();
          if (sink.write(s.data(), s.size())) return true;
          ctx->st->cancel();  // the client is gone: free the slot
          return false;
        };
        if (!ctx->first.empty()) {
          std::string f;
          f.swap(ctx->first);
          if (!write(f)) return false;
        }
        std::vector<Delta> ds;
        const bool done = ctx->st->wait(&ds, std::chrono::milliseconds(100));
        std::string out;
        for (const auto& d : ds) {
          if (ctx->on_end) ctx->text += d.text;
          out += ctx->emit(d);
        }
        if (!write(out)) return false;
        if (done) {
          if (!write(ctx->finish() + ctx->done_text)) return false;
          sink.done();
          return true;
        }
        // Waiting in the queue: a comment now and then notices clients that left.
        if (Clock::now() - ctx->last_write > std::chrono::milliseconds(500)) return write(": keep-alive\n\n");
        return true;
      },
      [this, ctx](bool ok) {
        if (!ok) ctx->st->cancel();
        ctx->st->clear_client_probe();  // before cpp-httplib closes the socket
        if (ctx->on_end) ctx->on_end(ctx->text);
        --in_flight;
      });
}

std::string usage_event(json chunk, const Stream& st) {
  chunk["choices"] = json::array();
  chunk["usage"] = usage_json(st);
  return sse(chunk);
}

std::string stream_error(const Stream& st) {
  ApiError e = api_error(st.finish() == Finish::kError ? 500 : 503, "The request did not complete: " + st.error(),
                         "server_error", st.finish() == Finish::kError ? "internal_error" : "cancelled");
  return sse(e.to_json());
}

void HttpServer::Impl::completions(const httplib::Request& req, httplib::Response& res) {
  Tenant tenant;
  if (auto e = authorize(req, res, &tenant)) return send_error(res, *e);
  CompletionRequest cr;
  if (auto e = parse_completion_request(req.body, limits, &cr)) return send_error(res, *e);
  std::vector<int32_t> prompt = cr.prompt_is_tokens ? cr.prompt_tokens : tokenize(cr.prompt_text, true);
  GenJob job;
  if (auto e = make_job(cr.sampling, prompt, tenant, &job)) return send_error(res, *e);
  if (auto e = lora_mask(cr.model, req.body, &job.lora, &job.lora_epoch)) return send_error(res, *e);
  job.top_logprobs = cr.logprobs;
  job.prompt_logprobs = cr.echo && cr.logprobs >= 0;
  const std::string prompt_text = cr.prompt_is_tokens ? tok.decode(prompt, true) : cr.prompt_text;
  ApiError err;
  auto st = submit(std::move(job), req, res, &err);
  if (!st) return send_error(res, err);
  const ResponseMeta m = meta("cmpl");
  const int lp = cr.logprobs;
  const auto wm = watermark_for(tenant, cr.sampling.temperature);
  const std::string wm_id = wm ? wm->id : "";
  if (!cr.stream) {
    std::string text = cr.echo ? prompt_text : std::string();
    std::vector<TokenInfo> toks;
    for (auto& d : collect(*st)) {
      text += d.text;
      toks.insert(toks.end(), d.tokens.begin(), d.tokens.end());
    }
    charge(tenant, *st);
    if (auto e = incomplete(*st)) return send_error(res, *e);
    json logprobs = nullptr;
    if (lp >= 0) {
      logprobs = empty_completion_logprobs();
      size_t offset = 0;
      if (cr.echo) {
        std::vector<TokenInfo> ptoks;
        ptoks.push_back({prompt[0], 0, {}});
        ptoks.insert(ptoks.end(), st->prompt_logprobs().begin(), st->prompt_logprobs().end());
        append_completion_logprobs(tok, ptoks, &offset, true, &logprobs);
        offset = prompt_text.size();
      }
      append_completion_logprobs(tok, toks, &offset, false, &logprobs);
    }
    json choice = {{"index", 0}, {"text", text}, {"logprobs", logprobs}, {"finish_reason", finish_json(st->finish())}};
    json out = {{"id", m.id}, {"object", "text_completion"}, {"created", m.created}, {"model", m.model},
                {"system_fingerprint", "modu"}, {"choices", json::array({choice})}, {"usage", usage_json(*st)}};
    out["provenance"] = label(res, wm_id);
    audit_request({"/v1/completions", tenant.name, req.body, text, finish_name(st->finish()), wm_id, st.get(), {}, false});
    res.set_content(dump_json(out), "application/json");
    return;
  }
  const json prov = label(res, wm_id);
  const bool usage = cr.include_usage;
  auto with_usage = [usage](json c) {
    if (usage) c["usage"] = nullptr;
    return c;
  };
  std::string first = cr.echo ? sse(with_usage(completion_chunk(m, prompt_text, nullptr, nullptr))) : std::string();
  auto offset = std::make_shared<size_t>(cr.echo ? prompt_text.size() : 0);
  stream_response(
      res, st, first,
      [this, m, lp, offset, with_usage](const Delta& d) {
        if (d.text.empty() && (lp < 0 || d.tokens.empty())) return std::string();
        json logprobs = nullptr;
        if (lp >= 0) {
          logprobs = empty_completion_logprobs();
          append_completion_logprobs(tok, d.tokens, offset.get(), false, &logprobs);
        }
        return sse(with_usage(completion_chunk(m, d.text, nullptr, logprobs)));
      },
      [this, m, st, usage, with_usage, tenant, prov]() {
        charge(tenant, *st);
        if (st->finish() != Finish::kStop && st->finish() != Finish::kLength) return stream_error(*st);
        json last = with_usage(completion_chunk(m, "", finish_json(st->finish()), nullptr));
        last["provenance"] = prov;
        std::string out = sse(last);
        if (usage) {
          json u = completion_chunk(m, "", nullptr, nullptr);
          u["provenance"] = prov;
          out += usage_event(u, *st);
        }
        return out;
      },
      "data: [DONE]\n\n",
      [this, st, tenant, body = req.body, wm_id](const std::string& text) {
        audit_request({"/v1/completions", tenant.name, body, text, finish_name(st->finish()), wm_id, st.get(), {}, true});
      });
}

void HttpServer::Impl::embeddings(const httplib::Request& req, httplib::Response& res) {
  Tenant tenant;
  if (auto e = authorize(req, res, &tenant)) return send_error(res, *e);
  EmbeddingRequest er;
  if (auto e = parse_embedding_request(req.body, limits, &er)) return send_error(res, *e);
  std::vector<std::vector<int32_t>> inputs = er.token_inputs;
  for (const auto& t : er.texts) inputs.push_back(tok.encode(t, true, false));
  int64_t n_tokens = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    n_tokens += (int64_t)inputs[i].size();
    if (inputs[i].empty())
      return send_error(res, api_error(400, "Input " + std::to_string(i) + " has no tokens.", "invalid_request_error", "invalid_value"));
    if ((int64_t)inputs[i].size() > opts.engine.n_ctx)
      return send_error(res, api_error(400, "Input " + std::to_string(i) + " has " + std::to_string(inputs[i].size()) +
                                                " tokens; this model's maximum context length is " +
                                                std::to_string(opts.engine.n_ctx) + " tokens.",
                                       "invalid_request_error", "context_length_exceeded"));
  }
  auto r = engine->embed(inputs, pooling);
  if (!r.ok()) return send_error(res, api_error(503, r.status().message(), "server_error"));
  limiter.charge_tokens(tenant.name, n_tokens, Clock::now());
  AuditEntry a{"/v1/embeddings", tenant.name, req.body, "", "stop", "", nullptr, {}, false};
  a.input_tokens = n_tokens;
  audit_request(a);
  json data = json::array();
  for (size_t i = 0; i < r->size(); ++i) {
    json emb = er.base64 ? json(base64_floats((*r)[i])) : json((*r)[i]);
    data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", emb}});
  }
  json out = {{"object", "list"}, {"data", data}, {"model", opts.model_id},
              {"usage", {{"prompt_tokens", n_tokens}, {"total_tokens", n_tokens}}}};
  res.set_content(dump_json(out), "application/json");
}

void HttpServer::Impl::routes() {
  svr.Post("/v1/chat/completions", [this](const auto& q, auto& r) { chat(q, r); });
  svr.Post("/v1/completions", [this](const auto& q, auto& r) { completions(q, r); });
  svr.Post("/v1/embeddings", [this](const auto& q, auto& r) { embeddings(q, r); });
  svr.Post("/v1/responses", [this](const auto& q, auto& r) { responses_api(q, r); });
  svr.Post("/v1/messages", [this](const auto& q, auto& r) { messages_api(q, r); });
  auto model_json = [this]() {
    return json{{"id", opts.model_id}, {"object", "model"}, {"created", (int64_t)std::time(nullptr)}, {"owned_by", "modu"},
                {"meta", {{"n_ctx", opts.engine.n_ctx}, {"n_vocab", tok.n_vocab()}, {"n_params", model.n_params()}}},
                // AI Basic Act: say that this is AI, who operates it, and which model file it is.
                {"ai_generated", true},
                {"operator", opts.operator_name.empty() ? json(nullptr) : json(opts.operator_name)},
                {"notice", opts.ai_notice.empty() ? trust::bilingual_notice(opts.model_id) : opts.ai_notice},
                {"model_sha256", provenance_base.model_sha256.empty() ? json(nullptr) : json(provenance_base.model_sha256)},
                {"high_impact", opts.high_impact},
                // What the model takes: images when a vision projector is loaded (--mmproj).
                {"modalities", opts.vision ? json::array({"text", "image"}) : json::array({"text"})}};
  };
  svr.Get("/v1/models", [this, model_json](const httplib::Request& q, httplib::Response& r) {
    Tenant t;
    if (auto e = authorize(q, r, &t)) return send_error(r, *e);
    json data = json::array({model_json()});
    std::lock_guard<std::mutex> lock(lora_mu);
    for (const auto& name : model.named_loras()) {  // each named adapter as "BASE:NAME"
      if (name.empty()) continue;  // a slot freed by an unload
      json m = model_json();
      m["id"] = opts.model_id + ":" + name;
      m["parent"] = opts.model_id;
      m["lora"] = name;
      data.push_back(std::move(m));
    }
    r.set_content(dump_json(json{{"object", "list"}, {"data", data}}), "application/json");
  });
  svr.Get(R"(/v1/models/(.+))", [this, model_json](const httplib::Request& q, httplib::Response& r) {
    Tenant t;
    if (auto e = authorize(q, r, &t)) return send_error(r, *e);
    const std::string id = q.matches[1];
    const std::string prefix = opts.model_id + ":";
    bool adapter = false;
    {
      std::lock_guard<std::mutex> lock(lora_mu);
      adapter = id.rfind(prefix, 0) == 0 && model.named_lora_index(id.substr(prefix.size())) >= 0;
    }
    if (id != opts.model_id && !adapter) {
      ApiError e = api_error(404, "The model '" + std::string(q.matches[1]) + "' does not exist; this server serves '" +
                                      opts.model_id + "'.", "invalid_request_error", "model_not_found");
      e.param = "model";
      return send_error(r, e);
    }
    json m = model_json();
    if (adapter) {
      m["id"] = id;
      m["parent"] = opts.model_id;
      m["lora"] = id.substr(prefix.size());
    }
    r.set_content(dump_json(m), "application/json");
  });
  // Browsers (web apps) send a CORS preflight before a POST with JSON or an Authorization header.
  if (!opts.cors_origin.empty()) {
    svr.set_default_headers({{"Access-Control-Allow-Origin", opts.cors_origin},
                             {"Access-Control-Expose-Headers", "X-AI-Generated, X-AI-Provenance, Retry-After"}});
    svr.Options(R"(/.*)", [](const httplib::Request&, httplib::Response& r) {
      r.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      r.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type, OpenAI-Organization, OpenAI-Project, x-api-key, anthropic-version, anthropic-beta");
      r.set_header("Access-Control-Max-Age", "86400");
      r.status = 204;
    });
  }
  web_routes();
  admin_routes();
  svr.Get("/health", [this](const httplib::Request&, httplib::Response& r) {
    if (draining.load()) return send_error(r, api_error(503, "The server is shutting down.", "server_error", "shutting_down"));
    r.set_content(R"({"status":"ok"})", "application/json");
  });
  svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& r) {
    r.set_content(metrics.render(engine->gauges()), "text/plain; version=0.0.4");
  });
  auto not_allowed = [](const httplib::Request& q, httplib::Response& r) {
    send_error(r, api_error(405, "Method " + q.method + " is not allowed on " + q.path + ".", "invalid_request_error",
                            "method_not_allowed"));
  };
  for (const char* p : {"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses", "/v1/messages"})
    svr.Get(p, not_allowed);
  for (const char* p : {"/v1/models", "/health", "/metrics"}) svr.Post(p, not_allowed);
  svr.set_error_handler([](const httplib::Request& q, httplib::Response& r) {
    if (!r.body.empty()) return;
    if (r.status == 404)
      send_error(r, api_error(404, "Unknown endpoint " + q.method + " " + q.path + ".", "invalid_request_error", "unknown_url"));
    else if (r.status == 413)
      send_error(r, api_error(413, "The request body is larger than the server's limit.", "invalid_request_error",
                              "request_too_large"));
    else
      send_error(r, api_error(r.status, "The HTTP request was malformed (status " + std::to_string(r.status) + ").",
                              "invalid_request_error"));
  });
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& r, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_error(r, api_error(500, "Internal server error: " + what, "server_error", "internal_error"));
  });
  svr.set_logger([this](const httplib::Request& q, const httplib::Response& r) {
    metrics.count_request(endpoint_label(q.path), r.status);
    audit_error(q, r);
    if (opts.log_requests) std::fprintf(stderr, "modu serve: %s %s -> %d\n", q.method.c_str(), q.path.c_str(), r.status);
  });
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  if (impl_ && impl_->engine) impl_->engine->stop();
}

Result<std::unique_ptr<HttpServer>> HttpServer::create(Model& model, const Tokenizer& tok, ServerOptions opts) {
  auto impl = std::make_unique<Impl>(model, tok, std::move(opts));
  Impl& s = *impl;
  if (s.opts.engine.n_ctx <= 1) return invalid_argument("--ctx must be at least 2");
  if (!s.opts.api_keys_file.empty()) {
    MODU_ASSIGN_OR_RETURN(auto reg, TenantRegistry::load(s.opts.api_keys_file));
    s.tenants = std::move(reg);
  }
  s.limits.n_ctx = s.opts.engine.n_ctx;
  s.limits.n_vocab = tok.n_vocab();
  if (tok.bos_id() >= 0) s.bos_text = tok.token_text(tok.bos_id());
  if (tok.eos_id() >= 0) s.eos_text = tok.token_text(tok.eos_id());
  const GgufFile& g = model.gguf();
  auto tmpl_src = g.get_string("tokenizer.chat_template", std::string());
  std::string src = tmpl_src.ok() ? *tmpl_src : std::string();
  if (!src.empty()) {
    auto t = jinja::Template::parse(src);
    if (t.ok()) {
      s.tmpl = std::move(t).value();
    } else {
      std::fprintf(stderr, "modu serve: the model's chat template does not parse (%s); using a ChatML-like template\n",
                   t.status().message().c_str());
    }
  } else {
    std::fprintf(stderr, "modu serve: the model has no tokenizer.chat_template; using a ChatML-like template\n");
  }
  if (!s.tmpl) {
    auto t = jinja::Template::parse(kChatMlTemplate);
    if (!t.ok()) return t.status().with_context("built-in ChatML template");
    s.tmpl = std::move(t).value();
    s.chatml_fallback = true;
  }
  // The reply convention: from the template, or named with --tool-format.
  s.conv = toolcall::detect_convention(src);
  if (!s.opts.tool_format.empty()) {
    s.conv.format = toolcall::find_format(s.opts.tool_format);
    if (!s.conv.format) {
      std::string names;
      for (const auto& f : toolcall::formats()) names += (names.empty() ? "" : ", ") + f.name;
      return invalid_argument("unknown --tool-format '" + s.opts.tool_format + "'; known formats: " + names);
    }
  }
  if (!s.eos_text.empty() &&
      std::find(s.conv.end_markers.begin(), s.conv.end_markers.end(), s.eos_text) == s.conv.end_markers.end())
    s.conv.end_markers.push_back(s.eos_text);
  if (s.chatml_fallback) s.conv.end_markers.push_back("<|im_end|>");
  auto pt = g.get_int(model.config().arch.name + ".pooling_type", 1);
  const int64_t pooling = pt.ok() ? *pt : 1;
  s.pooling = pooling == 2 ? Pooling::kCls : pooling == 3 ? Pooling::kLast : Pooling::kMean;
  if (Status st = s.init_trust(); !st.ok()) return st;
  if (Status st = s.connect_mcp(); !st.ok()) return st.with_context("MCP servers for the Responses API");
  s.engine = std::make_unique<Engine>(model, tok, s.opts.engine, &s.metrics);
  int threads = s.opts.http_threads;
  if (threads <= 0) threads = std::max(32, 2 * (s.opts.engine.n_parallel + (int)s.opts.engine.max_queue) + 16);
  s.svr.new_task_queue = [threads] { return new httplib::ThreadPool((size_t)threads); };
  s.svr.set_payload_max_length(s.opts.max_body_bytes);
  s.svr.set_keep_alive_max_count(1000);
  s.svr.set_keep_alive_timeout(5);
  s.svr.set_read_timeout(30);
  s.svr.set_write_timeout(30);
  s.routes();
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

Status HttpServer::bind() {
  Impl& s = *impl_;
  if (s.opts.port == 0) {
    s.port = s.svr.bind_to_any_port(s.opts.host);
    if (s.port < 0) return io_error("cannot bind " + s.opts.host + " (any port)");
  } else {
    if (!s.svr.bind_to_port(s.opts.host, s.opts.port))
      return io_error("cannot bind " + s.opts.host + ":" + std::to_string(s.opts.port) +
                      " (in use, or a privileged port?); choose another with --port");
    s.port = s.opts.port;
  }
  return Status::Ok();
}

int HttpServer::port() const { return impl_->port; }
int64_t HttpServer::kv_blocks() const { return impl_->engine->kv_blocks(); }

Status HttpServer::run() {
  Impl& s = *impl_;
  if (s.port < 0) MODU_RETURN_IF_ERROR(bind());
  const bool ok = s.svr.listen_after_bind();
  // listen returns once stop() was called; wait until shutdown() has finished its work.
  std::unique_lock<std::mutex> lock(s.shutdown_mu);
  if (s.draining.load()) s.shutdown_cv.wait(lock, [&] { return s.shutdown_done; });
  if (!ok && !s.draining.load()) return io_error("the HTTP listener failed");
  return Status::Ok();
}

void HttpServer::shutdown() {
  Impl& s = *impl_;
  std::call_once(s.shutdown_once, [&] {
    s.draining.store(true);
    const auto deadline = Clock::now() + std::chrono::milliseconds((int64_t)(s.opts.shutdown_grace_s * 1000));
    while (!s.engine->idle() && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    s.engine->stop();  // cuts what is left: streams end with an error event, then [DONE]
    const auto flush_deadline = Clock::now() + std::chrono::seconds(2);
    while (s.in_flight.load() > 0 && Clock::now() < flush_deadline) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    s.svr.stop();
    {
      std::lock_guard<std::mutex> lock(s.shutdown_mu);
      s.shutdown_done = true;
    }
    s.shutdown_cv.notify_all();
  });
}

}  // namespace modu::server
