// HttpServer: the OpenAI-compatible HTTP front end (cpp-httplib) over the Engine: routes, API key
// authentication and tenant limits, SSE streaming, Prometheus metrics and graceful shutdown.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "modu/core/status.h"
#include "modu/models/model.h"
#include "modu/server/engine.h"
#include "modu/vision/vision_model.h"
#include "modu/tokenizer/tokenizer.h"

namespace modu::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                    // 0: any free port (see HttpServer::port())
  std::string model_id = "modu";      // the id /v1/models reports
  // Bearer key of the admin endpoints (/v1/admin/lora: load and unload adapters at run time);
  // empty: they are off.
  std::string admin_key;
  EngineOptions engine;
  size_t max_body_bytes = 8u << 20;   // larger request bodies get 413
  int http_threads = 0;               // 0: enough for every slot and queue entry, plus spare
  std::string api_keys_file;          // empty: no authentication
  double shutdown_grace_s = 10;       // SIGTERM: time in-flight requests get to finish
  bool log_requests = false;
  std::string cors_origin = "*";      // Access-Control-Allow-Origin for browsers; "" sends no CORS headers
  std::string tool_format;            // a registered tool-call format's name; "": detected from the chat template
  // MCP servers the Responses API's {"type": "mcp"} tools may use (by server_label), the policy
  // their calls go through (default: allow, since the client asked for require_approval never)
  // and the action log every call is appended to.
  std::string mcp_config;
  std::vector<std::string> mcp;       // --mcp "CMD ARGS" / URL, labelled mcp1, mcp2, ...
  std::string mcp_policy;
  std::string action_log;
  // Trust (Korea's AI Basic Act): every generated output carries a provenance label (JSON body,
  // final stream event, X-AI-Generated / X-AI-Provenance headers); a keyed text watermark per
  // tenant (the key file's watermark=) or for all (watermark_key); an audit log of every request
  // and MCP action; the high-impact mode (tenant keys required, full-content audit, no
  // unattended agent actions).
  std::string model_path;             // hashed once for provenance ("" : no model_sha256)
  std::string operator_name;          // who operates this deployment
  std::string ai_notice;              // the notice text ("" : Korean + English default)
  std::string watermark_key;          // secret for tenants without their own ("" : none)
  float watermark_gamma = 0.25f, watermark_delta = 2.0f;
  std::string audit_log;              // "" : no audit log
  std::string audit_key;              // Ed25519 key (PEM; created when missing; "" : AUDIT_LOG.key)
  bool audit_content = false;         // full request and output texts, not only digests
  double audit_max_mb = 64;           // rotate the audit log past this size
  bool high_impact = false;
  // Vision (--mmproj): the projector that turns image_url content parts into embeddings; null:
  // images get a 400. Images are data: URLs; remote http(s) URLs are refused.
  const vision::VisionModel* vision = nullptr;
  int64_t max_image_pixels = 50'000'000;  // per image, from the header (decompression bombs)
  // Remote http(s) image URLs are fetched only when allowed (the server then makes requests a
  // client chooses: keep it off where that reaches private networks); each at most this many bytes.
  bool allow_image_urls = false;
  size_t max_image_bytes = 20u << 20;
};

class HttpServer {
 public:
  static Result<std::unique_ptr<HttpServer>> create(Model& model, const Tokenizer& tok, ServerOptions opts);
  ~HttpServer();
  // Binds the listening socket (so port() is known before run()).
  Status bind();
  int port() const;
  // Blocks of KvCache::kBlock positions in the engine's KV pool.
  int64_t kv_blocks() const;
  // Serves until shutdown() has finished.
  Status run();
  // Thread-safe and idempotent: stop accepting work (new requests get 503), let in-flight requests
  // finish for up to the grace period, cut what remains, then stop the listener.
  void shutdown();

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace modu::server
