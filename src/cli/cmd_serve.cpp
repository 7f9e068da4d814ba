// `modu serve`: the OpenAI-compatible HTTP server (continuous batching, prefix cache, tenants).
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "common.h"
#include "modu/vision/vision_model.h"
#include "modu/server/http_server.h"

namespace modu::cli {

namespace {

struct ServeArgs {
  std::string model;
  std::string host = "127.0.0.1";
  int port = 8080;
  int parallel = 4;
  int64_t ctx = 0;
  int threads = 0;
  int batch = 256;
  int queue = 64;
  int cache_seqs = -1;
  double cache_mb = -1;
  bool no_prefix_cache = false;
  bool lookup = false;
  std::string draft;
  int draft_max = 8;
  std::string api_keys;
  std::string alias;
  std::string cors_origin = "*";
  std::string tool_format, mcp_config, mcp_policy, action_log;
  std::vector<std::string> mcp;
  std::string operator_name, ai_notice, watermark_key, audit_log, audit_key;
  float watermark_gamma = 0.25f, watermark_delta = 2.0f;
  bool audit_content = false, high_impact = false;
  double audit_max_mb = 64;
  double max_body_mb = 8;
  double grace = 10;
  bool kv_f32 = false;
  std::string kv_type = "f16";
  bool verbose = false;
  std::vector<std::string> lora;
  std::string admin_key;
  std::string mmproj;
  int64_t max_image_pixels = 50'000'000;
  bool allow_image_urls = false;
};

int serve(const ServeArgs& a) {
  // Block SIGTERM/SIGINT in every thread; one thread waits for them and starts the shutdown.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client that hangs up must not kill the server

  auto lm = load_model(a.model, true);
  if (!lm.ok()) return fail(lm.status());
  if (Status st = attach_loras(*lm->model, a.lora, /*named_ok=*/true); !st.ok()) return fail(st);
  Model& model = *lm->model;
  server::ServerOptions o;
  o.host = a.host;
  o.port = a.port;
  o.engine.n_parallel = a.parallel;
  o.engine.n_ctx = a.ctx > 0 ? a.ctx : std::min<int64_t>(model.config().n_ctx_train, 4096);
  o.engine.n_threads = a.threads;
  o.engine.n_batch = a.batch;
  o.engine.max_queue = (size_t)std::max(0, a.queue);
  o.engine.n_cache_seqs = a.cache_seqs;
  // The KV pool: blocks of KvCache::kBlock positions shared by running requests and cached
  // prefixes (sliding-window layers keep a ring per sequence beside it).
  if (a.kv_f32 && a.kv_type != "f16") return fail(invalid_argument("--kv-f32 and --kv-type: give one"));
  const KvType kvt = a.kv_f32 || a.kv_type == "f32" ? KvType::kF32 : a.kv_type == "q8_0" ? KvType::kQ8_0 : KvType::kF16;
  if (Status ks = KvCache::check_type(model.config(), kvt); !ks.ok()) return fail(ks.with_context("--kv-type " + a.kv_type));
  const size_t block_bytes = KvCache::block_bytes(model.config(), o.engine.n_ctx, kvt);
  if (a.cache_mb >= 0) {
    if (a.cache_mb * 1048576.0 < (double)block_bytes)
      return fail(invalid_argument("--cache-mb " + std::to_string(a.cache_mb) + " holds no KV block (one block of " +
                                   std::to_string(KvCache::kBlock) + " positions is " +
                                   std::to_string(block_bytes / 1048576.0) + " MiB for this model)"));
    o.engine.cache_bytes = (size_t)(a.cache_mb * 1048576.0);
  }
  o.engine.prefix_cache = !a.no_prefix_cache;
  o.engine.draft_max = a.lookup || !a.draft.empty() ? a.draft_max : 0;
  LoadedModel draft_model;  // outlives the server
  if (!a.draft.empty()) {
    if (a.lookup) return fail(invalid_argument("--draft and --lookup are alternatives: give one"));
    auto dm = load_model(a.draft, true);
    if (!dm.ok()) return fail(dm.status().with_context("--draft " + a.draft));
    draft_model = std::move(dm).value();
    if (Status ds = check_draft_tokenizer(*lm->tokenizer, *draft_model.tokenizer).with_context("--draft " + a.draft); !ds.ok())
      return fail(ds);
    o.engine.draft_model = draft_model.model.get();
  }
  o.engine.kv_type = kvt;
  o.api_keys_file = a.api_keys;
  o.max_body_bytes = (size_t)(a.max_body_mb * 1048576.0);
  o.shutdown_grace_s = a.grace;
  o.log_requests = a.verbose;
  o.cors_origin = a.cors_origin;
  o.tool_format = a.tool_format;
  o.mcp_config = a.mcp_config;
  o.mcp = a.mcp;
  o.mcp_policy = a.mcp_policy;
  o.action_log = a.action_log;
  o.model_path = a.model;
  o.operator_name = a.operator_name;
  o.ai_notice = a.ai_notice;
  o.watermark_key = a.watermark_key;
  o.watermark_gamma = a.watermark_gamma;
  o.watermark_delta = a.watermark_delta;
  o.audit_log = a.audit_log;
  o.audit_key = a.audit_key;
  o.audit_content = a.audit_content;
  o.audit_max_mb = a.audit_max_mb;
  o.high_impact = a.high_impact;
  o.admin_key = a.admin_key;
  if (o.admin_key.empty())
    if (const char* k = std::getenv("MODU_ADMIN_KEY"); k && *k) o.admin_key = k;
  if (!a.alias.empty()) {
    o.model_id = a.alias;
  } else {
    o.model_id = a.model.substr(a.model.find_last_of('/') == std::string::npos ? 0 : a.model.find_last_of('/') + 1);
  }
  if (a.api_keys.empty() && a.host != "127.0.0.1" && a.host != "localhost" && a.host != "::1")
    std::fprintf(stderr, "modu serve: warning: listening on %s without --api-keys: anyone who can reach it may use it\n",
                 a.host.c_str());
  auto v = projector_for(a.mmproj, a.model, /*want_images=*/true);  // an HF multimodal folder brings its own
  if (!v.ok()) return fail(v.status());
  std::unique_ptr<vision::VisionModel> vm = std::move(v).value();
  if (vm) {
    if (Status cs = vision::check_compatible(*vm, model.config(), a.mmproj.empty() ? a.model : a.mmproj); !cs.ok())
      return fail(cs);
    o.vision = vm.get();
    std::fprintf(stderr, "modu serve: images through %s (%s, %lld tokens per image)\n", (a.mmproj.empty() ? a.model : a.mmproj).c_str(),
                 vm->description().c_str(), (long long)vm->n_tokens((int)vm->config().image_size, (int)vm->config().image_size));
  }
  o.max_image_pixels = a.max_image_pixels;
  o.allow_image_urls = a.allow_image_urls;
  auto srv = server::HttpServer::create(model, *lm->tokenizer, o);
  if (!srv.ok()) return fail(srv.status());
  Status st = (*srv)->bind();
  if (!st.ok()) return fail(st);
  server::HttpServer* s = srv->get();
  std::thread signals([set, s]() mutable {
    int sig = 0;
    sigwait(&set, &sig);
    if (sig == SIGTERM || sig == SIGINT) {
      std::fprintf(stderr, "modu serve: %s received, finishing in-flight requests\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      s->shutdown();
    }
  });
  const int64_t n_blocks = s->kv_blocks();
  std::fprintf(stderr, "modu serve: KV cache %.1f MiB: %lld blocks of %lld positions (%lld positions) shared by %d slots and cached prefixes\n",
               (double)n_blocks * (double)block_bytes / 1048576.0, (long long)n_blocks, (long long)KvCache::kBlock,
               (long long)(n_blocks * KvCache::kBlock), a.parallel);
  std::fprintf(stderr, "modu serve: outputs are labelled as AI-generated%s%s%s\n",
               a.watermark_key.empty() ? "" : ", watermarked (temperature > 0)",
               a.audit_log.empty() ? "" : ", audit log ", a.audit_log.c_str());
  if (a.high_impact) std::fprintf(stderr, "modu serve: high-impact mode: tenant keys required, full-content audit, no unattended agent actions\n");
  std::fprintf(stderr, "modu serve: %s on http://%s:%d (slots %d, context %lld, queue %d, %s)\n", o.model_id.c_str(),
               a.host.c_str(), s->port(), a.parallel, (long long)o.engine.n_ctx, a.queue,
               a.api_keys.empty() ? "no API keys" : "API keys required");
  std::fflush(stderr);
  st = s->run();
  if (!st.ok()) {
    // The listener failed by itself: wake the signal thread so it can be joined.
    pthread_kill(signals.native_handle(), SIGTERM);
  }
  signals.join();
  if (!st.ok()) return fail(st);
  std::fprintf(stderr, "modu serve: stopped\n");
  return 0;
}

}  // namespace

void add_serve_command(CLI::App& app, int& rc) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* c = app.add_subcommand("serve", "OpenAI-compatible HTTP server with continuous batching");
  c->add_option("-m,--model", a->model, "GGUF model file or Hugging Face folder")->required()->check(CLI::ExistingPath);
  c->add_option("--mmproj", a->mmproj,
                "Vision projector (llama.cpp mmproj GGUF or a Hugging Face multimodal folder): chat requests may carry "
                "images (default: the model's own folder when it has a vision tower)")
      ->check(CLI::ExistingPath);
  c->add_option("--max-image-pixels", a->max_image_pixels, "Refuse larger images (decompression bombs)")
      ->capture_default_str();
  c->add_flag("--allow-image-urls", a->allow_image_urls,
              "Fetch http(s) image URLs in requests (off: only data: URLs; on, the server makes requests its clients "
              "choose, so keep it off where that reaches private networks)");
  c->add_option("--lora", a->lora, "LoRA adapter for every request (PATH[:SCALE]), or NAME=PATH[:SCALE] that a request picks "
                 "with model \"BASE:NAME\" or \"lora\": \"NAME\" / [...]; GGUF or PEFT folder; repeatable");
  c->add_option("--admin-key", a->admin_key, "Turn on /v1/admin/lora (load and unload named adapters at run time) with this "
                 "Bearer key; or set MODU_ADMIN_KEY (keeps it out of ps)");
  c->add_option("--host", a->host, "Address to listen on")->capture_default_str();
  c->add_option("--port", a->port, "TCP port (0: any free port)")->capture_default_str()->check(CLI::Range(0, 65535));
  c->add_option("--parallel", a->parallel, "Slots: requests generating at once")->capture_default_str()->check(CLI::Range(1, 256));
  c->add_option("-c,--ctx", a->ctx, "Context per slot (0: the model's, at most 4096)");
  c->add_option("-t,--threads", a->threads, "Compute threads (0: all cores)")->capture_default_str();
  c->add_option("-b,--batch", a->batch, "Tokens per batched forward pass")->capture_default_str()->check(CLI::Range(1, 65536));
  c->add_option("--queue", a->queue, "Requests that may wait for a slot; beyond that 503")->capture_default_str()->check(CLI::Range(0, 100000));
  c->add_option("--cache-seqs", a->cache_seqs, "Cached prefixes remembered at most (-1: 4 per slot)")->capture_default_str();
  c->add_option("--cache-mb", a->cache_mb,
                "KV cache memory in MiB, one pool of 128-position blocks for running requests and cached prefixes "
                "(default: two full contexts per slot); requests wait for blocks, or get a 503 if they can never fit");
  c->add_flag("--no-prefix-cache", a->no_prefix_cache, "Never reuse KV of earlier prompts");
  c->add_flag("--lookup", a->lookup,
              "Speculative decoding with prompt-lookup drafts in every slot (greedy output unchanged, sampling's "
              "distribution unchanged; not for JSON-constrained or logprob requests)");
  c->add_option("--draft", a->draft,
                "Speculative decoding with drafts from this small model (same tokenizer, checked) in every slot: greedy "
                "output unchanged, sampling's distribution unchanged; not for JSON-constrained, logprob or image requests")
      ->check(CLI::ExistingPath);
  c->add_option("--draft-max", a->draft_max, "With --lookup or --draft: most drafts per slot and step")->capture_default_str()->check(CLI::Range(1, 64));
  c->add_option("--api-keys", a->api_keys, "File of 'KEY TENANT [rpm=N] [tpm=N] [parallel=N]' lines")->check(CLI::ExistingFile);
  c->add_option("--alias", a->alias, "Model id reported by /v1/models (default: the file name)");
  c->add_option("--cors-origin", a->cors_origin, "Access-Control-Allow-Origin for browser clients (\"\": none)")->capture_default_str();
  c->add_option("--tool-format", a->tool_format, "Tool-call format of the model's replies (default: from its chat template; see `modu toolcalls formats`)");
  c->add_option("--mcp", a->mcp, "MCP server for Responses {\"type\": \"mcp\"} tools: \"CMD ARGS\" or a URL (label mcp1, mcp2, ...)");
  c->add_option("--mcp-config", a->mcp_config, "JSON file with \"mcpServers\" (labels are the names)")->check(CLI::ExistingFile);
  c->add_option("--mcp-policy", a->mcp_policy, "Policy for the MCP calls the server runs (default: allow)")->check(CLI::ExistingFile);
  c->add_option("--action-log", a->action_log, "Append every MCP call the server runs to this JSON Lines file");
  c->add_option("--operator", a->operator_name, "Who operates this deployment (shown in labels, /v1/models and the start page)");
  c->add_option("--ai-notice", a->ai_notice, "Your own AI notice text (default: Korean + English)");
  c->add_option("--watermark-key", a->watermark_key, "Watermark outputs (temperature > 0) with this secret; a tenant's watermark= overrides it");
  c->add_option("--watermark-gamma", a->watermark_gamma, "Green fraction of the vocabulary")->capture_default_str();
  c->add_option("--watermark-delta", a->watermark_delta, "Logit bias of green tokens")->capture_default_str();
  c->add_option("--audit-log", a->audit_log, "Hash-chained, signed audit log of every request and MCP action (see `modu audit`)");
  c->add_option("--audit-key", a->audit_key, "Ed25519 signing key for the audit log's checkpoints (created if missing; default AUDIT_LOG.key)");
  c->add_flag("--audit-content", a->audit_content, "Keep full request and output texts in the audit log (default: digests only)");
  c->add_option("--audit-max-mb", a->audit_max_mb, "Rotate the audit log past this size")->capture_default_str();
  c->add_flag("--high-impact", a->high_impact, "High-impact use: API keys and the audit log required, full-content audit, no unattended MCP actions");
  c->add_option("--max-body-mb", a->max_body_mb, "Largest accepted request body (MiB)")->capture_default_str();
  c->add_option("--shutdown-grace", a->grace, "Seconds in-flight requests get to finish on SIGTERM")->capture_default_str();
  c->add_flag("--kv-f32", a->kv_f32, "Keep the KV cache in F32 instead of F16 (as --kv-type f32)");
  c->add_option("--kv-type", a->kv_type, "KV cache element type: f16, f32, or q8_0 (53% of f16's memory, head size a multiple of 32)")
      ->capture_default_str()
      ->check(CLI::IsMember({"f16", "f32", "q8_0"}));
  c->add_flag("-v,--verbose", a->verbose, "Log every request");
  c->callback([a, &rc] { rc = serve(*a); });
}

}  // namespace modu::cli
