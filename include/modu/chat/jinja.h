// A Jinja2 template engine for chat templates (tokenizer.chat_template), written for exactness
// against Python Jinja2 as Hugging Face transformers configures it.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "modu/core/status.h"

namespace modu::jinja {

struct RenderOptions {
  // Clock used by strftime_now(); nullopt means the real clock (UTC).
  std::optional<std::chrono::system_clock::time_point> now;
};

class Template {
 public:
  ~Template();
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;

  // Parses with trim_blocks and lstrip_blocks on (as transformers does). Errors carry line:column.
  static Result<Template> parse(std::string_view source);
  // Renders with `context` (a JSON object) as the global variables; key order is kept, as templates
  // iterate over tool schemas. raise_exception(msg) in the template gives an error whose message is
  // exactly msg; other errors read "LINE:COL: Kind: message".
  Result<std::string> render(const nlohmann::ordered_json& context, const RenderOptions& options = {}) const;

 private:
  struct Impl;
  explicit Template(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Jinja2's HTML escaping (& < > " ' as entities), as the `escape` filter applies it; also what
// the server's own pages use for text they show.
namespace pystr {
std::string html_escape(std::string_view s);
}  // namespace pystr

}  // namespace modu::jinja
