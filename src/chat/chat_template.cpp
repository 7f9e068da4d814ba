// Chat templates: builds the apply_chat_template context and renders it with the Jinja engine.
#include "modu/chat/chat_template.h"

namespace modu::chat {

Result<std::string> render_chat_template(const jinja::Template& tmpl, const ChatTemplateInputs& inputs,
                                         const jinja::RenderOptions& options) {
  if (!inputs.messages.is_array()) return invalid_argument("chat template: messages must be a JSON array");
  if (!inputs.tools.is_null() && !inputs.tools.is_array())
    return invalid_argument("chat template: tools must be a JSON array or null");
  nlohmann::ordered_json ctx = nlohmann::ordered_json::object();
  if (inputs.extra_context.is_object())
    for (auto it = inputs.extra_context.begin(); it != inputs.extra_context.end(); ++it) ctx[it.key()] = it.value();
  ctx["messages"] = inputs.messages;
  if (!inputs.tools.is_null()) ctx["tools"] = inputs.tools;
  ctx["add_generation_prompt"] = inputs.add_generation_prompt;
  ctx["bos_token"] = inputs.bos_token;
  ctx["eos_token"] = inputs.eos_token;
  return tmpl.render(ctx, options);
}

Result<std::string> render_chat_template(std::string_view template_src, const nlohmann::ordered_json& messages,
                                         const nlohmann::ordered_json& tools, bool add_generation_prompt,
                                         const std::string& bos_token, const std::string& eos_token,
                                         const jinja::RenderOptions& options) {
  auto tmpl = jinja::Template::parse(template_src);
  if (!tmpl.ok()) return tmpl.status().with_context("chat template");
  ChatTemplateInputs inputs;
  inputs.messages = messages;
  inputs.tools = tools;
  inputs.add_generation_prompt = add_generation_prompt;
  inputs.bos_token = bos_token;
  inputs.eos_token = eos_token;
  return render_chat_template(*tmpl, inputs, options);
}

}  // namespace modu::chat
