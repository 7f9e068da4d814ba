// The HTTP server's shared state and helpers (internal): http_server.cpp holds routing, auth,
// submission and streaming; http_chat.cpp the chat endpoint and the chat run the other APIs share;
// http_compat.cpp the Responses and Messages endpoints.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>

#include "format.h"
#include "modu/chat/jinja.h"
#include "modu/agent/action_log.h"
#include "modu/agent/mcp.h"
#include "modu/agent/policy.h"
#include "modu/server/api.h"
#include "modu/server/api_compat.h"
#include "modu/server/engine.h"
#include "modu/server/http_server.h"
#include "modu/server/tenants.h"
#include "modu/runtime/watermark.h"
#include "modu/toolcall/toolcall.h"
#include "modu/trust/audit_log.h"
#include "modu/trust/provenance.h"

namespace modu::server {

using Clock = std::chrono::steady_clock;

ApiError api_error(int status, std::string message, std::string type, std::string code = "");
void send_error(httplib::Response& res, const ApiError& e);  // OpenAI error shape
// The last event of a stream with stream_options.include_usage: no choices, the usage.
std::string usage_event(nlohmann::json chunk, const Stream& st);
// The error event of an OpenAI stream the engine did not finish.
std::string stream_error(const Stream& st);

// A chat generation under way (chat completions, Responses and Messages all run one): the
// engine's stream and how its text becomes content, reasoning and tool calls.
struct ChatRun {
  std::shared_ptr<Stream> st;
  toolcall::Convention conv;
  // What opts.tools points to: whatever keeps a parser (a ReplyStream) past the handler keeps this too.
  std::shared_ptr<const nlohmann::ordered_json> tools;
  toolcall::ParseOptions opts;
  int64_t n_prompt = 0;  // prompt tokens
  bool one_call = false;  // parallel_tool_calls false: a reply's calls after the first are dropped
  toolcall::Reply limit(toolcall::Reply r) const {
    if (one_call && r.calls.size() > 1) r.calls.resize(1);
    return r;
  }
  toolcall::Delta limit(toolcall::Delta d) const {
    if (one_call) std::erase_if(d.calls, [](const toolcall::CallDelta& c) { return c.index > 0; });
    return d;
  }
};

struct HttpServer::Impl {
  const Model& model;
  Model& model_rw;  // only for adapter load/unload, on the engine thread (run_between_steps)
  // Guards the model's named-adapter table against the engine thread changing it (admin).
  mutable std::mutex lora_mu;
  const Tokenizer& tok;
  ServerOptions opts;
  Metrics metrics;
  std::unique_ptr<Engine> engine;
  std::optional<TenantRegistry> tenants;
  RateLimiter limiter;
  ApiLimits limits;
  httplib::Server svr;
  std::mutex tmpl_mu;
  std::optional<jinja::Template> tmpl;
  bool chatml_fallback = false;
  toolcall::Convention conv;  // how the chat template's model writes reasoning and tool calls
  ResponseStore responses{1024};  // previous_response_id
  // MCP servers for {"type": "mcp"} tools, their tools as listed at start, the policy and log.
  struct McpServer {
    std::unique_ptr<agent::McpClient> client;  // thread-safe: requests call it concurrently
    std::vector<agent::McpTool> tools;
  };
  struct McpRequest;  // one Responses request with MCP tools (http_mcp.cpp)
  std::map<std::string, std::unique_ptr<McpServer>> mcp;
  std::optional<agent::Policy> mcp_policy;
  std::optional<agent::ActionLog> action_log;
  // Trust (http_trust.cpp): the provenance every output carries, the audit log.
  trust::Provenance provenance_base;
  std::shared_ptr<trust::AuditLog> audit;
  std::string bos_text, eos_text;
  // Vision (http_vision.cpp): image encoding runs on its own pool, one image at a time.
  std::mutex vision_mu;
  std::unique_ptr<ThreadPool> vision_pool;
  // image_url parts (data: URLs) -> embeddings, or the 400 that says what is wrong with which one.
  std::optional<ApiError> embed_images(const std::vector<std::string>& urls,
                                       std::vector<vision::ImageEmbedding>* out);
  Pooling pooling = Pooling::kMean;
  std::atomic<bool> draining{false};
  std::atomic<int> in_flight{0};
  std::atomic<uint64_t> next_id{1};
  std::once_flag shutdown_once;
  std::mutex shutdown_mu;
  std::condition_variable shutdown_cv;
  bool shutdown_done = false;
  int port = -1;
  uint64_t id_salt = std::random_device{}();

  Impl(Model& m, const Tokenizer& t, ServerOptions o) : model(m), model_rw(m), tok(t), opts(std::move(o)) {}

  ResponseMeta meta(const char* prefix, char sep = '-');
  // Authentication (Authorization: Bearer KEY, or x-api-key as Anthropic clients send it), rate
  // limits and draining. Sets Retry-After on `res` where it applies; the caller sends the error
  // in its API's shape.
  std::optional<ApiError> authorize(const httplib::Request& req, httplib::Response& res, Tenant* out);
  std::vector<int32_t> tokenize(const std::string& text, bool parse_special);
  std::optional<ApiError> make_job(const SamplingFields& s, std::vector<int32_t> prompt, const Tenant& t, GenJob* job);
  // The named LoRA adapters a request selects: `model` "BASE:NAME" and/or the body's "lora"
  // field (a name or an array of names). Unknown names are a 400 that lists the known ones.
  std::optional<ApiError> lora_mask(const std::string& model, const std::string& body, uint32_t* mask,
                                    uint64_t* epoch) const;
  // /v1/admin/lora: list, load and unload named adapters at run time (http_admin.cpp).
  void admin_routes();
  // Queues a job (nullptr and *err on a full queue or during shutdown).
  std::shared_ptr<Stream> submit(GenJob job, const httplib::Request& req, httplib::Response& res, ApiError* err);
  void charge(const Tenant& t, const Stream& st);
  static std::vector<Delta> collect(Stream& st);
  static std::string collect_text(Stream& st);  // collect(), the text only
  // The error for a request the engine did not finish (cancelled by shutdown or failed).
  static std::optional<ApiError> incomplete(const Stream& st);
  // A streaming response: `emit` turns deltas into SSE text; `finish` writes the final events;
  // `done` ("data: [DONE]\n\n" for OpenAI chat) follows them.
  // `on_end` (when set) gets the whole generated text once the stream is over, however it ended.
  void stream_response(httplib::Response& res, std::shared_ptr<Stream> st, std::string first,
                       std::function<std::string(const Delta&)> emit, std::function<std::string()> finish,
                       std::string done = "data: [DONE]\n\n", std::function<void(const std::string&)> on_end = nullptr);

  // Renders the conversation, builds the job (structured output, forced calls) and submits it.
  std::optional<ApiError> start_chat(const httplib::Request& req, httplib::Response& res, const ChatRequest& cr,
                                     const Tenant& t, ChatRun* run);

  void chat(const httplib::Request& req, httplib::Response& res);
  void completions(const httplib::Request& req, httplib::Response& res);
  void embeddings(const httplib::Request& req, httplib::Response& res);
  void responses_api(const httplib::Request& req, httplib::Response& res);
  // A Responses request with MCP tools: the agent's tool loop with the engine generating each
  // turn, streamed or whole (http_mcp.cpp).
  void responses_mcp(const httplib::Request& req, httplib::Response& res, const Tenant& tenant, ChatRequest cr,
                     const ResponsesInfo& info);
  Status connect_mcp();
  void messages_api(const httplib::Request& req, httplib::Response& res);
  void routes();

  // Trust (http_trust.cpp).
  Status init_trust();  // model digest, audit log, high-impact checks
  // The watermark applied to a tenant's request at this temperature: its key (nullopt: none).
  std::optional<WatermarkKey> watermark_for(const Tenant& t, float temperature) const;
  // Sets the X-AI-Generated / X-AI-Provenance headers and returns the provenance object.
  nlohmann::json label(httplib::Response& res, const std::string& watermark_key_id);
  // One audit record of a finished generation (no-op without an audit log). `body` is the request
  // body as received; `output` the generated text; `calls` the tool calls read from it.
  struct AuditEntry {
    AuditEntry(std::string endpoint_, std::string tenant_, std::string body_, std::string output_, std::string finish_,
               std::string watermark_key_id_, const Stream* st_, std::vector<toolcall::ToolCall> calls_, bool stream_)
        : endpoint(std::move(endpoint_)), tenant(std::move(tenant_)), body(std::move(body_)), output(std::move(output_)),
          finish(std::move(finish_)), watermark_key_id(std::move(watermark_key_id_)), st(st_), calls(std::move(calls_)),
          stream(stream_) {}
    std::string endpoint, tenant, body, output, finish, watermark_key_id;
    const Stream* st = nullptr;
    std::vector<toolcall::ToolCall> calls;
    bool stream = false;
    int status = 200;
    int64_t input_tokens = -1;  // when there is no stream (embeddings)
  };
  void audit_request(const AuditEntry& e);
  // Requests answered with an error (from the HTTP logger): endpoint, status, tenant if known.
  void audit_error(const httplib::Request& req, const httplib::Response& res);
  std::string tenant_name_of(const httplib::Request& req) const;
  // The notice block of the chat page (AI use, operator, model digest, high-impact mode) as HTML.
  std::string notice_html() const;
  // The web chat page: `/` and its embedded assets under /ui/, and /ui/info (http_web.cpp).
  void web_routes();
};

}  // namespace modu::server
