// Chat templates: renders a model's tokenizer.chat_template for a conversation, as Hugging Face
// transformers' apply_chat_template does.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "modu/chat/jinja.h"
#include "modu/core/status.h"

namespace modu::chat {

struct ChatTemplateInputs {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // [{"role", "content", ...}]
  nlohmann::ordered_json tools;          // array of tool schemas, or null for none
  bool add_generation_prompt = true;
  std::string bos_token;
  std::string eos_token;
  nlohmann::ordered_json extra_context;  // more variables (e.g. enable_thinking), or null
};

// Parses and renders `template_src` with messages, tools (omitted when null), add_generation_prompt,
// bos_token and eos_token as the template's variables.
Result<std::string> render_chat_template(std::string_view template_src, const nlohmann::ordered_json& messages,
                                         const nlohmann::ordered_json& tools, bool add_generation_prompt,
                                         const std::string& bos_token, const std::string& eos_token,
                                         const jinja::RenderOptions& options = {});

// Same, with an already parsed template and optional extra variables.
Result<std::string> render_chat_template(const jinja::Template& tmpl, const ChatTemplateInputs& inputs,
                                         const jinja::RenderOptions& options = {});

}  // namespace modu::chat
