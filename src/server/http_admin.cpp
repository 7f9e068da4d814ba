// Admin endpoints: named LoRA adapters loaded and unloaded while the server runs
// (GET/POST /v1/admin/lora, DELETE /v1/admin/lora/NAME), behind --admin-key, audited.
#include <filesystem>

#include "http_impl.h"
#include "modu/hf/hf_model.h"
#include "modu/trust/digest.h"

namespace modu::server {
namespace {

using json = nlohmann::json;

// Compares in time independent of where the strings differ.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() != b.size();
  for (size_t i = 0; i < a.size(); ++i) diff |= (unsigned char)(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

bool valid_name(const std::string& n) {
  if (n.empty() || n.size() > 64) return false;
  for (char c : n)
    if (!std::isalnum((unsigned char)c) && c != '_' && c != '-' && c != '.') return false;
  return true;
}

}  // namespace

void HttpServer::Impl::admin_routes() {
  // The admin key is separate from tenant keys: a tenant can use adapters, not change them.
  auto admin = [this](const httplib::Request& req) -> std::optional<ApiError> {
    if (opts.admin_key.empty())
      return api_error(404, "The admin endpoints are off: start modu serve with --admin-key KEY.", "invalid_request_error",
                       "admin_disabled");
    const std::string h = req.get_header_value("Authorization");
    if (h.rfind("Bearer ", 0) != 0 || !same_secret(h.substr(7), opts.admin_key))
      return api_error(401, "This endpoint needs the admin key (Authorization: Bearer ADMIN_KEY).", "invalid_request_error",
                       "invalid_admin_key");
    return std::nullopt;
  };
  auto record = [this](const httplib::Request& req, const std::string& action, const json& detail, int status) {
    if (!audit) return;
    json r = {{"action", action}, {"status", status}, {"remote_addr", req.remote_addr}};
    r.update(detail);
    if (Status st = audit->append("admin", r); !st.ok())
      std::fprintf(stderr, "modu serve: AUDIT LOG WRITE FAILED: %s\n", st.message().c_str());
  };
  auto list = [this]() {
    json data = json::array();
    std::lock_guard<std::mutex> lock(lora_mu);
    const auto& names = model.named_loras();
    for (size_t i = 0; i < model.loras().size(); ++i) {
      const int slot = model.lora_slots()[i];
      if (slot < 0 || names[(size_t)slot].empty()) continue;
      const auto& [ad, scale] = model.loras()[i];
      data.push_back({{"name", names[(size_t)slot]}, {"id", opts.model_id + ":" + names[(size_t)slot]}, {"path", ad->name()},
                      {"scale", scale}, {"alpha", ad->alpha()}, {"matrices", ad->pairs().size()},
                      {"rank", ad->pairs().empty() ? 0 : ad->pairs().begin()->second.rank}});
    }
    return json{{"object", "list"}, {"data", data}};
  };

  svr.Get("/v1/admin/lora", [this, admin, list](const httplib::Request& req, httplib::Response& res) {
    if (auto e = admin(req)) return send_error(res, *e);
    res.set_content(list().dump(), "application/json");
  });

  svr.Post("/v1/admin/lora", [this, admin, list, record](const httplib::Request& req, httplib::Response& res) {
    if (auto e = admin(req)) return send_error(res, *e);
    const json j = json::parse(req.body, nullptr, false);
    if (!j.is_object() || !j.contains("name") || !j["name"].is_string() || !j.contains("path") || !j["path"].is_string())
      return send_error(res, api_error(400, "Send {\"name\": NAME, \"path\": ADAPTER_GGUF_OR_PEFT_FOLDER, \"scale\": 1.0}.",
                                       "invalid_request_error", "invalid_body"));
    const std::string name = j["name"], path = j["path"];
    if (!valid_name(name))
      return send_error(res, api_error(400, "Adapter names are 1-64 letters, digits, '_', '-' or '.'.", "invalid_request_error",
                                       "invalid_name"));
    float scale = 1.0f;
    if (j.contains("scale")) {
      if (!j["scale"].is_number() || !std::isfinite(j["scale"].get<double>()))
        return send_error(res, api_error(400, "'scale' must be a finite number.", "invalid_request_error", "invalid_scale"));
      scale = j["scale"].get<float>();
    }
    // Read and check the file here, on this thread; only attaching waits for the engine.
    std::error_code ec;
    const bool folder = std::filesystem::is_directory(path, ec);
    auto adapter = folder ? load_peft_adapter(path, model.gguf()) : LoraAdapter::load(path);
    if (!adapter.ok()) {
      record(req, "lora_load", {{"name", name}, {"path", path}, {"error", adapter.status().message()}}, 400);
      return send_error(res, api_error(400, "Cannot load the adapter: " + adapter.status().message(), "invalid_request_error",
                                       "invalid_adapter"));
    }
    Result<int> slot = -1;
    Status st = engine->run_between_steps([&]() -> Status {
      std::lock_guard<std::mutex> lock(lora_mu);
      slot = model_rw.add_named_lora(name, *adapter, scale);
      return slot.status();
    });
    if (!st.ok()) {
      const bool shutting_down = st.message().find("shutting down") != std::string::npos;
      const bool taken = st.message().find("used twice") != std::string::npos;
      const bool full = !shutting_down && st.code() == StatusCode::kResourceExhausted;  // all slots in use
      const int code = shutting_down ? 503 : taken || full ? 409 : 400;
      record(req, "lora_load", {{"name", name}, {"path", path}, {"error", st.message()}}, code);
      return send_error(res, api_error(code, "Cannot attach the adapter: " + st.message(),
                                       code == 503 ? "server_error" : "invalid_request_error",
                                       shutting_down ? "unavailable" : taken ? "lora_exists" : full ? "lora_limit" : "invalid_adapter"));
    }
    std::fprintf(stderr, "modu serve: loaded LoRA %s = %s (scale %g, %zu matrices)\n", name.c_str(), path.c_str(), scale,
                 (*adapter)->pairs().size());
    record(req, "lora_load", {{"name", name}, {"path", path}, {"scale", scale}}, 201);
    res.status = 201;
    json out = list();
    for (const auto& a : out["data"])
      if (a["name"] == name) res.set_content(a.dump(), "application/json");
  });

  svr.Delete(R"(/v1/admin/lora/([^/]+))", [this, admin, record](const httplib::Request& req, httplib::Response& res) {
    if (auto e = admin(req)) return send_error(res, *e);
    const std::string name = req.matches[1];
    int in_use = 0;
    Status st = engine->run_between_steps([&]() -> Status {
      std::lock_guard<std::mutex> lock(lora_mu);
      const int slot = model.named_lora_index(name);
      if (slot < 0) return not_found("No LoRA adapter named '" + name + "' is loaded.");
      // Requests already queued or running with it finish first: the caller retries.
      if ((in_use = engine->jobs_using_lora(1u << slot)) > 0)
        return failed_precondition("LoRA adapter '" + name + "' is in use by " + std::to_string(in_use) +
                                   " request(s); retry when they finish.");
      MODU_RETURN_IF_ERROR(model_rw.remove_named_lora(name));
      engine->retire_lora_slot(slot);
      return Status::Ok();
    });
    if (!st.ok()) {
      const int code = st.code() == StatusCode::kNotFound             ? 404
                       : st.code() == StatusCode::kFailedPrecondition ? 409
                       : st.message().find("shutting down") != std::string::npos ? 503
                                                                       : 500;
      record(req, "lora_unload", {{"name", name}, {"error", st.message()}}, code);
      ApiError e = api_error(code, st.message(), code >= 500 ? "server_error" : "invalid_request_error",
                             code == 404 ? "lora_not_found" : code == 409 ? "lora_in_use" : "unavailable");
      if (code == 409) res.set_header("Retry-After", "1");
      return send_error(res, e);
    }
    std::fprintf(stderr, "modu serve: unloaded LoRA %s\n", name.c_str());
    record(req, "lora_unload", {{"name", name}}, 200);
    res.set_content(json{{"name", name}, {"deleted", true}}.dump(), "application/json");
  });
}

}  // namespace modu::server
