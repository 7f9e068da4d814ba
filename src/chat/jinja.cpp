// Template: the public parse/render API; converts engine exceptions into Status values.
#include "modu/chat/jinja.h"

#include "evaluator.h"
#include "builtins.h"
#include "parser.h"

namespace modu::jinja {

struct Template::Impl {
  Body body;
  FramePtr globals = make_globals();
};

Template::Template(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

static Status to_status(const JinjaError& e) {
  if (e.raised) return invalid_argument(e.message);
  std::string where = e.line > 0 ? std::to_string(e.line) + ":" + std::to_string(e.col) + ": " : "";
  return invalid_argument(where + e.kind + ": " + e.message);
}

Result<Template> Template::parse(std::string_view source) {
  try {
    auto impl = std::make_unique<Impl>();
    impl->body = parse_template(source);
    return Template(std::move(impl));
  } catch (const JinjaError& e) {
    return to_status(e);
  } catch (const std::exception& e) {
    return internal_error(std::string("jinja parse: ") + e.what());
  }
}

Result<std::string> Template::render(const nlohmann::ordered_json& context, const RenderOptions& options) const {
  if (!context.is_object() && !context.is_null()) return invalid_argument("jinja render: context must be a JSON object");
  try {
    Evaluator ev(options.now.value_or(std::chrono::system_clock::now()));
    auto frame = std::make_shared<Frame>(impl_->globals);
    if (context.is_object())
      for (auto it = context.begin(); it != context.end(); ++it) frame->vars[it.key()] = Value::from_json(it.value());
    std::string out;
    ev.exec(impl_->body, frame, out);
    return out;
  } catch (const JinjaError& e) {
    return to_status(e);
  } catch (const std::exception& e) {
    return internal_error(std::string("jinja render: ") + e.what());
  }
}

}  // namespace modu::jinja
