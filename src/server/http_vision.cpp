// Images in chat requests: image_url content parts as data: URLs (or http(s) URLs with
// --allow-image-urls), decoded under the pixel limit and encoded by the server's vision projector
// (--mmproj); every problem is a 400 naming the part.
#include <string_view>

#include "http_impl.h"
#include "modu/trust/signing.h"

namespace modu::server {

namespace {
// GET of a remote image: redirects followed, 5 s to connect, 15 s between reads, at most max_bytes.
Result<std::string> fetch(const std::string& url, size_t max_bytes) {
  const size_t scheme_end = url.find("://");
  const size_t path_at = url.find('/', scheme_end + 3);
  const std::string origin = url.substr(0, path_at), path = path_at == std::string::npos ? "/" : url.substr(path_at);
  httplib::Client cli(origin);
  if (!cli.is_valid()) return invalid_argument("the URL '" + origin + "' is not a valid http(s) address");
  cli.set_connection_timeout(5, 0);
  cli.set_read_timeout(15, 0);
  cli.set_follow_location(true);
  std::string body;
  bool too_big = false;
  auto res = cli.Get(path, [&](const char* data, size_t len) {
    if (body.size() + len > max_bytes) {
      too_big = true;
      return false;
    }
    body.append(data, len);
    return true;
  });
  if (too_big) return out_of_range("the image at the URL is larger than " + std::to_string(max_bytes >> 20) + " MiB");
  if (!res) return io_error("fetching the image URL failed (" + httplib::to_string(res.error()) + ")");
  if (res->status != 200) return io_error("fetching the image URL returned HTTP " + std::to_string(res->status));
  return body;
}
}  // namespace

std::optional<ApiError> HttpServer::Impl::embed_images(const std::vector<std::string>& urls,
                                                       std::vector<vision::ImageEmbedding>* out) {
  auto bad = [](const std::string& m, const char* code = "invalid_value") {
    ApiError e = api_error(400, m, "invalid_request_error", code);
    e.param = "messages";
    return e;
  };
  if (opts.vision == nullptr)
    return bad("This model does not take images: the server was started without a vision projector (--mmproj).",
               "unsupported_value");
  vision::DecodeLimits lim;
  lim.max_pixels = opts.max_image_pixels;
  for (size_t i = 0; i < urls.size(); ++i) {
    const std::string_view url = urls[i];
    const std::string which = "Image " + std::to_string(i + 1) + " of " + std::to_string(urls.size());
    Result<std::string> bytes = std::string();
    if (url.starts_with("http://") || url.starts_with("https://")) {
      if (!opts.allow_image_urls)
        return bad(which + ": remote image URLs are not fetched by this server; send the image inline as a data: "
                   "URL (data:image/png;base64,...), or start the server with --allow-image-urls.", "unsupported_value");
      bytes = fetch(std::string(url), opts.max_image_bytes);
      if (!bytes.ok()) return bad(which + ": " + bytes.status().message() + ".", "invalid_image_url");
    } else {
      if (!url.starts_with("data:"))
        return bad(which + ": image_url.url must be a data: URL (data:image/png;base64,...) or an http(s) URL.");
      const size_t comma = url.find(',');
      if (comma == std::string_view::npos || url.substr(0, comma).find(";base64") == std::string_view::npos)
        return bad(which + ": only base64 data: URLs are accepted (data:image/...;base64,...).");
      bytes = trust::base64_decode(url.substr(comma + 1));
      if (!bytes.ok()) return bad(which + ": the base64 data is malformed.");
    }
    auto img = vision::decode_image(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size(), lim);
    if (!img.ok()) return bad(which + ": " + img.status().message() + ".", "invalid_image");
    Result<vision::ImageEmbedding> e = [&] {
      std::lock_guard<std::mutex> lock(vision_mu);
      if (!vision_pool) vision_pool = std::make_unique<ThreadPool>(opts.engine.n_threads);
      return vision::embed_image(*opts.vision, *img, *vision_pool);
    }();
    if (!e.ok()) return bad(which + ": " + e.status().message(), "invalid_image");
    out->push_back(std::move(e).value());
  }
  return std::nullopt;
}

}  // namespace modu::server
