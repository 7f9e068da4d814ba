// The web chat page: `/` and /ui/* from assets embedded in the binary at build time
// (cmake/embed_files.cmake over web/chat), with a strict Content-Security-Policy, ETags, and
// /ui/info (what the page shows before any key is entered).
#include <cstring>
#include <string>
#include <string_view>

#include "http_impl.h"
#include "modu/chat/jinja.h"
#include "modu/trust/digest.h"
#include "modu/trust/provenance.h"

namespace modu::embedded {
struct File {
  const char* path;
  const unsigned char* data;
  std::size_t size;
};
extern const File kWebFiles[];
}  // namespace modu::embedded

namespace modu::server {
namespace {

using json = nlohmann::json;

std::string_view embedded(const char* path) {
  for (const auto* f = embedded::kWebFiles; f->path; ++f)
    if (std::strcmp(f->path, path) == 0) return {reinterpret_cast<const char*>(f->data), f->size};
  return {};
}

const char* content_type(std::string_view name) {
  auto ends = [&](std::string_view ext) { return name.size() >= ext.size() && name.substr(name.size() - ext.size()) == ext; };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

// Scripts, styles and requests only from this origin, and no inline script at all: even if a
// model's reply reached the DOM as markup, the browser would not run it.
constexpr const char* kCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
    "font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

void replace_all(std::string& s, std::string_view from, const std::string& to) {
  for (size_t k = 0; (k = s.find(from, k)) != std::string::npos; k += to.size()) s.replace(k, from.size(), to);
}

// Sends body with an ETag; answers 304 when the browser already has it.
void send_cached(const httplib::Request& req, httplib::Response& res, std::string body, const char* type) {
  std::string etag = "\"";  // (built in steps: GCC 12 warns falsely on operator+ chains here)
  etag.append(trust::sha256_hex(body), 0, 16);
  etag += '"';
  res.set_header("ETag", etag);
  res.set_header("Cache-Control", "no-cache");  // revalidate: a new modu build serves new assets
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");
  if (req.get_header_value("If-None-Match") == etag) {
    res.status = 304;
    return;
  }
  res.set_content(std::move(body), type);
}

}  // namespace

void HttpServer::Impl::web_routes() {
  std::string page(embedded("index.html"));
  replace_all(page, "<!--MODU:TITLE-->", "modu — " + jinja::pystr::html_escape(opts.model_id));
  replace_all(page, "<!--MODU:NOTICE-->", notice_html());
  svr.Get("/", [page](const httplib::Request& q, httplib::Response& r) {
    r.set_header("Content-Security-Policy", kCsp);
    r.set_header("X-Frame-Options", "DENY");
    send_cached(q, r, page, "text/html; charset=utf-8");
  });
  svr.Get(R"(/ui/([a-z0-9_-]+\.(?:js|css|svg)))", [](const httplib::Request& q, httplib::Response& r) {
    const std::string name = q.matches[1];
    const std::string_view body = embedded(name.c_str());
    if (body.empty())
      return send_error(r, api_error(404, "No such file: /ui/" + name + ".", "invalid_request_error", "not_found"));
    send_cached(q, r, std::string(body), content_type(name));
  });
  // Public on purpose (no key): the page shows who runs the service and that replies are AI-made
  // before a person has typed anything; the same facts are on `/` itself.
  svr.Get("/ui/info", [this](const httplib::Request&, httplib::Response& r) {
    json j = {{"model", opts.model_id},
              {"ai_generated", true},
              {"notice", opts.ai_notice.empty() ? trust::bilingual_notice(opts.model_id) : opts.ai_notice},
              {"operator", opts.operator_name.empty() ? json(nullptr) : json(opts.operator_name)},
              {"high_impact", opts.high_impact},
              {"auth_required", tenants.has_value()},
              {"images", opts.vision != nullptr},  // the page offers picture attach (--mmproj)
              {"mcp", [this] {  // the MCP servers the page may offer as tools (Responses API)
                 json labels = json::array();
                 for (const auto& [label, server] : mcp) labels.push_back(label);
                 return labels;
               }()},
              {"version", trust::modu_version()}};
    r.set_header("Cache-Control", "no-store");
    r.set_content(j.dump(), "application/json");
  });
}

}  // namespace modu::server
