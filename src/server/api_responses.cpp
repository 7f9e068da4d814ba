// OpenAI Responses API (POST /v1/responses): request validation into a ChatRequest (previous_response_id
// through ResponseStore), the Response object and its SSE event stream.
#include <map>

#include "modu/server/api_compat.h"

namespace modu::server {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;
using Err = std::optional<ApiError>;
using namespace compat_detail;

// ---------------------------------------------------------------------------------------------------------
// ResponseStore

void ResponseStore::put(const std::string& id, ojson conversation) {
  std::lock_guard<std::mutex> lock(mu_);
  if (max_ == 0) return;
  if (auto it = index_.find(id); it != index_.end()) {
    lru_.erase(it->second);
    index_.erase(it);
  }
  lru_.emplace_front(id, std::move(conversation));
  index_[id] = lru_.begin();
  while (lru_.size() > max_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
}

std::optional<ojson> ResponseStore::get(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(id);
  if (it == index_.end()) return std::nullopt;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->second;
}

size_t ResponseStore::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lru_.size();
}

void store_response(ResponseStore* store, const std::string& id, const ResponsesInfo& info,
                    const toolcall::Reply& reply) {
  if (!store || !info.store) return;
  ojson conv = info.conversation;
  conv.push_back(reply_to_chat_message(reply));
  store->put(id, std::move(conv));
}

// ---------------------------------------------------------------------------------------------------------
// Requests

namespace {

// Where a stored conversation message keeps the URLs of its images (in the order of the image
// markers in its text), so that a later turn (previous_response_id) sends them again.
constexpr const char* kImagesKey = "_modu_images";

// A string, or an array of content parts (input_text / output_text / refusal) joined without
// separator; input_image parts (when `images` is given: a user message) become image markers and
// their URLs go to `images`.
Err content_text(const json& c, const std::string& p, std::string* out, std::vector<std::string>* images = nullptr) {
  if (c.is_string()) {
    *out = c.get<std::string>();
    return std::nullopt;
  }
  if (!c.is_array()) return wrong_type(p, "a string or an array of content parts", c);
  out->clear();
  for (size_t k = 0; k < c.size(); ++k) {
    const json& part = c[k];
    const std::string pp = p + "[" + std::to_string(k) + "]";
    if (!part.is_object()) return wrong_type(pp, "an object", part);
    std::string type, text;
    if (auto e = get_string(part, "type", true, &type, pp + ".")) return e;
    if (type == "input_text" || type == "output_text") {
      if (auto e = get_string(part, "text", true, &text, pp + ".")) return e;
    } else if (type == "refusal") {
      if (auto e = get_string(part, "refusal", true, &text, pp + ".")) return e;
    } else if (type == "input_image" && images != nullptr) {
      const json* url = field(part, "image_url");
      if (field(part, "file_id") && !url)
        return unsupported("Images by 'file_id' are not supported; send 'image_url' (a data: URL).", pp + ".file_id");
      if (!url || !url->is_string())
        return bad("Missing or invalid '" + pp + ".image_url': expected a string (a data: URL).", pp + ".image_url");
      images->push_back(url->get<std::string>());
      text = "<__media__>";
    } else if (type == "input_image") {
      return unsupported("Images are only accepted in user messages.", pp + ".type");
    } else if (type == "input_file" || type == "input_audio") {
      return unsupported("Content parts of type '" + type + "' are not supported by this model; only text and images.",
                         pp + ".type");
    } else {
      return bad("Invalid value for '" + pp + ".type': '" + type + "'. Supported values are: 'input_text', "
                 "'output_text' and 'refusal'.", pp + ".type");
    }
    *out += text;
  }
  return std::nullopt;
}

// Texts of a reasoning item's "content" (reasoning_text) or "summary" (summary_text) array.
Err reasoning_texts(const json& item, const char* key, const char* part_type, const std::string& p,
                    std::string* out) {
  const json* arr = field(item, key);
  if (!arr) return std::nullopt;
  const std::string ap = p + "." + key;
  if (!arr->is_array()) return wrong_type(ap, "an array", *arr);
  for (size_t k = 0; k < arr->size(); ++k) {
    const json& part = (*arr)[k];
    const std::string pp = ap + "[" + std::to_string(k) + "]";
    if (!part.is_object()) return wrong_type(pp, "an object", part);
    std::string type, text;
    if (auto e = get_string(part, "type", true, &type, pp + ".")) return e;
    if (type != part_type)
      return bad("Invalid value for '" + pp + ".type': '" + type + "'; expected '" + part_type + "'.", pp + ".type");
    if (auto e = get_string(part, "text", true, &text, pp + ".")) return e;
    if (!out->empty() && !text.empty()) *out += "\n\n";
    *out += text;
  }
  return std::nullopt;
}

struct InputState {
  ojson* conv;
  json* approvals;                            // mcp_approval_response items: {id, approve, reason}
  std::map<std::string, std::string> names;  // call_id -> function name
  std::optional<std::string> reasoning;       // waits for the next assistant message
  int open_assistant = -1;                    // conv index a following function_call joins
};

Err convert_item(const json& item, const std::string& p, InputState* st) {
  if (!item.is_object()) return wrong_type(p, "an object", item);
  std::string type;
  if (auto e = get_string(item, "type", false, &type, p + ".")) return e;
  if (type.empty()) {
    if (!field(item, "role")) return missing(p + ".type");
    type = "message";
  }
  ojson& conv = *st->conv;
  if (type == "message") {
    std::string role, text;
    if (auto e = get_string(item, "role", true, &role, p + ".")) return e;
    if (role != "user" && role != "assistant" && role != "system" && role != "developer")
      return bad("Invalid value for '" + p + ".role': '" + role + "'. Supported values are: 'user', 'assistant', "
                 "'system' and 'developer'.", p + ".role");
    const json* content = field(item, "content");
    if (!content) return missing(p + ".content");
    std::vector<std::string> images;
    if (auto e = content_text(*content, p + ".content", &text, role == "user" ? &images : nullptr)) return e;
    ojson m = {{"role", role == "developer" ? "system" : role}, {"content", text}};
    if (!images.empty()) m[kImagesKey] = images;
    st->open_assistant = -1;
    if (role == "assistant") {
      if (st->reasoning) m["reasoning_content"] = *st->reasoning;
      st->reasoning.reset();
      st->open_assistant = (int)conv.size();
    }
    conv.push_back(std::move(m));
  } else if (type == "function_call") {
    std::string call_id, name, args;
    if (auto e = get_string(item, "call_id", true, &call_id, p + ".")) return e;
    if (auto e = get_string(item, "name", true, &name, p + ".")) return e;
    if (auto e = get_string(item, "arguments", true, &args, p + ".")) return e;
    st->names[call_id] = name;
    ojson call = {{"id", call_id}, {"type", "function"}, {"function", {{"name", name}, {"arguments", parse_arguments(args)}}}};
    if (st->open_assistant < 0 || st->reasoning) {
      ojson m = {{"role", "assistant"}, {"content", ""}};
      if (st->reasoning) m["reasoning_content"] = *st->reasoning;
      st->reasoning.reset();
      st->open_assistant = (int)conv.size();
      conv.push_back(std::move(m));
    }
    ojson& m = conv[(size_t)st->open_assistant];
    if (!m.contains("tool_calls")) m["tool_calls"] = ojson::array();
    m["tool_calls"].push_back(std::move(call));
  } else if (type == "function_call_output") {
    std::string call_id, text;
    if (auto e = get_string(item, "call_id", true, &call_id, p + ".")) return e;
    const json* output = field(item, "output");
    if (!output) return missing(p + ".output");
    if (auto e = content_text(*output, p + ".output", &text)) return e;
    ojson m = {{"role", "tool"}, {"tool_call_id", call_id}, {"content", text}};
    if (auto it = st->names.find(call_id); it != st->names.end()) m["name"] = it->second;
    st->open_assistant = -1;
    conv.push_back(std::move(m));
  } else if (type == "reasoning") {
    std::string text, summary;
    if (auto e = reasoning_texts(item, "content", "reasoning_text", p, &text)) return e;
    if (auto e = reasoning_texts(item, "summary", "summary_text", p, &summary)) return e;
    if (auto e = check_type(item, "encrypted_content", json::value_t::string, p + ".")) return e;
    if (text.empty()) text = summary;
    if (!st->reasoning) st->reasoning = text;
    else if (!text.empty()) *st->reasoning += (st->reasoning->empty() ? "" : "\n\n") + text;
  } else if (type == "mcp_approval_response") {  // a person's answer to an mcp_approval_request
    std::string id, reason;
    if (auto e = get_string(item, "approval_request_id", true, &id, p + ".")) return e;
    const json* approve = field(item, "approve");
    if (!approve) return missing(p + ".approve");
    if (!approve->is_boolean()) return wrong_type(p + ".approve", "a boolean", *approve);
    if (auto e = get_string(item, "reason", false, &reason, p + ".")) return e;
    st->approvals->push_back({{"id", id}, {"approve", approve->get<bool>()}, {"reason", reason}});
  } else if (type == "mcp_list_tools" || type == "mcp_call" || type == "mcp_approval_request") {
    // Output items sent back as input: the server's own record of them is in the stored
    // conversation (previous_response_id); nothing to add.
  } else if (type == "item_reference") {
    return unsupported("Input items of type 'item_reference' are not supported; send the items themselves or use "
                       "'previous_response_id'.", p + ".type");
  } else {
    return unsupported("Input items of type '" + type + "' are not supported; supported types are 'message', "
                       "'function_call', 'function_call_output', 'reasoning' and 'mcp_approval_response'.", p + ".type");
  }
  return std::nullopt;
}

Err convert_tools(const json& tools, ChatRequest* out, ResponsesInfo* info) {
  if (!tools.is_array()) return wrong_type("tools", "an array", tools);
  ojson conv = ojson::array();
  info->tools = json::array();
  for (size_t i = 0; i < tools.size(); ++i) {
    const json& t = tools[i];
    const std::string p = "tools[" + std::to_string(i) + "]";
    if (!t.is_object()) return wrong_type(p, "an object", t);
    std::string type, name, description;
    if (auto e = get_string(t, "type", true, &type, p + ".")) return e;
    if (type == "mcp") {  // run by the server (see ResponsesInfo::mcp)
      std::string label;
      if (auto e = get_string(t, "server_label", true, &label, p + ".")) return e;
      json allowed = nullptr;
      if (const json* a = field(t, "allowed_tools")) {
        const json* names = a->is_object() ? field(*a, "tool_names") : a;
        if (!names || !names->is_array()) return wrong_type(p + ".allowed_tools", "an array of tool names", *a);
        for (const auto& n : *names)
          if (!n.is_string()) return wrong_type(p + ".allowed_tools", "an array of tool names", *a);
        allowed = *names;
      }
      // "always" (the default) | "never" | {"always": {"tool_names": [...]}, "never": {"tool_names": [...]}}:
      // tools in neither list of the object form need approval.
      std::string mode = "always";
      json lists = {{"always", json::array()}, {"never", json::array()}};
      if (const json* r = field(t, "require_approval")) {
        const std::string rp = p + ".require_approval";
        if (r->is_string()) {
          mode = r->get<std::string>();
          if (mode != "always" && mode != "never")
            return bad("Invalid value for '" + rp + "': '" + mode + "'. Supported values are: 'always' and 'never'.", rp);
        } else if (r->is_object()) {
          for (const auto& [k, v] : r->items()) {
            if (k != "always" && k != "never") return bad("Unknown key '" + k + "' in '" + rp + "'; expected 'always' or 'never'.", rp);
            const json* names = v.is_object() ? field(v, "tool_names") : &v;
            if (!names || !names->is_array()) return wrong_type(rp + "." + k, "{\"tool_names\": [...]}", v);
            for (const auto& n : *names)
              if (!n.is_string()) return wrong_type(rp + "." + k + ".tool_names", "an array of tool names", *names);
            lists[k] = *names;
          }
        } else {
          return wrong_type(rp, "'always', 'never' or an object", *r);
        }
      }
      info->mcp.push_back({{"server_label", label}, {"allowed_tools", allowed}, {"require_approval", mode},
                           {"always_tools", lists["always"]}, {"never_tools", lists["never"]}});
      info->tools.push_back(t);
      continue;
    }
    if (type != "function")
      return unsupported("Tools of type '" + type + "' are not supported; only 'function' and 'mcp' tools.", p + ".type");
    if (auto e = get_string(t, "name", true, &name, p + ".")) return e;
    if (name.empty()) return bad("'" + p + ".name' must not be empty.", p + ".name");
    if (auto e = get_string(t, "description", false, &description, p + ".")) return e;
    const json* params = field(t, "parameters");
    if (params && !params->is_object()) return wrong_type(p + ".parameters", "an object", *params);
    bool strict = false;
    if (auto e = get_bool(t, "strict", &strict, p + ".")) return e;
    ojson fn = {{"name", name}};
    if (field(t, "description")) fn["description"] = description;
    fn["parameters"] = params ? to_ordered(*params) : ojson{{"type", "object"}, {"properties", ojson::object()}};
    conv.push_back({{"type", "function"}, {"function", std::move(fn)}});
    info->tools.push_back({{"type", "function"},
                           {"name", name},
                           {"description", field(t, "description") ? json(description) : json(nullptr)},
                           {"parameters", params ? *params : json(nullptr)},
                           {"strict", field(t, "strict") ? json(strict) : json(nullptr)}});
  }
  if (!conv.empty()) out->tools = std::move(conv);
  return std::nullopt;
}

Err convert_tool_choice(const json& tc, ChatRequest* out, ResponsesInfo* info) {
  if (tc.is_string()) {
    const std::string v = tc.get<std::string>();
    if (v != "none" && v != "auto" && v != "required")
      return bad("Invalid value for 'tool_choice': '" + v + "'. Supported values are: 'none', 'auto', 'required' or "
                 "{\"type\": \"function\", \"name\": ...}.", "tool_choice");
    out->tool_choice = v;
  } else if (tc.is_object()) {
    std::string type, name;
    if (auto e = get_string(tc, "type", true, &type, "tool_choice.")) return e;
    if (type == "mcp") {  // {"type": "mcp", "server_label": ..., "name": ...}
      if (auto e = get_string(tc, "name", true, &name, "tool_choice.")) return e;
      out->tool_choice = "function";
      out->tool_choice_name = name;
      info->tool_choice = tc;
      return std::nullopt;
    }
    if (type != "function")
      return unsupported("'tool_choice' of type '" + type + "' is not supported; use 'none', 'auto', 'required' or "
                         "{\"type\": \"function\", \"name\": ...}.", "tool_choice.type");
    if (auto e = get_string(tc, "name", true, &name, "tool_choice.")) return e;
    out->tool_choice = "function";
    out->tool_choice_name = name;
  } else {
    return wrong_type("tool_choice", "a string or an object", tc);
  }
  info->tool_choice = tc;
  return std::nullopt;
}

Err convert_text(const json& t, ChatRequest* out, ResponsesInfo* info) {
  if (!t.is_object()) return wrong_type("text", "an object", t);
  if (auto e = check_type(t, "verbosity", json::value_t::string, "text.")) return e;
  info->text = t;
  const json* f = field(t, "format");
  if (!f) {
    info->text["format"] = {{"type", "text"}};
    return std::nullopt;
  }
  if (!f->is_object()) return wrong_type("text.format", "an object", *f);
  std::string type;
  if (auto e = get_string(*f, "type", true, &type, "text.format.")) return e;
  if (type == "json_schema") {
    std::string name;
    if (auto e = get_string(*f, "name", true, &name, "text.format.")) return e;
    if (auto e = check_type(*f, "description", json::value_t::string, "text.format.")) return e;
    bool strict = false;
    if (auto e = get_bool(*f, "strict", &strict, "text.format.")) return e;
    const json* schema = field(*f, "schema");
    if (!schema) return missing("text.format.schema");
    if (!schema->is_object()) return wrong_type("text.format.schema", "an object", *schema);
    out->json_schema = *schema;
  } else if (type != "text" && type != "json_object") {
    return unsupported("Invalid value for 'text.format.type': '" + type + "'. Supported values are: 'text', "
                       "'json_object' and 'json_schema'.", "text.format.type");
  }
  out->response_format = type;
  return std::nullopt;
}

}  // namespace

std::optional<ApiError> parse_responses_request(std::string_view body, const ApiLimits& lim, const ResponseStore* store,
                                                ChatRequest* out, ResponsesInfo* info) {
  json j;
  if (auto e = parse_json_object(body, lim, &j)) return e;
  try {
    if (auto e = get_string(j, "model", false, &out->model)) return e;
    std::string s;
    if (field(j, "instructions")) {
      if (auto e = get_string(j, "instructions", false, &s)) return e;
      info->instructions = s;
    }
    for (const char* key : {"conversation", "prompt"})
      if (field(j, key))
        return unsupported("'" + std::string(key) + "' is not supported by this server; send 'input' (and "
                           "'previous_response_id').", key);
    bool background = false;
    if (auto e = get_bool(j, "background", &background)) return e;
    if (background) return unsupported("Background responses are not supported.", "background");

    ojson conv = ojson::array();
    if (field(j, "previous_response_id")) {
      if (auto e = get_string(j, "previous_response_id", false, &s)) return e;
      std::optional<ojson> prev = store ? store->get(s) : std::nullopt;
      if (!prev)
        return bad("Previous response with id '" + s + "' not found.", "previous_response_id",
                   "previous_response_not_found");
      info->previous_response_id = s;
      conv = std::move(*prev);
    }
    const json* input = field(j, "input");
    if (input && input->is_string()) {
      conv.push_back({{"role", "user"}, {"content", input->get<std::string>()}});
    } else if (input && input->is_array()) {
      InputState st{&conv, &info->approvals, {}, std::nullopt, -1};
      for (const auto& m : conv)  // names of calls made earlier in the stored conversation
        if (m.contains("tool_calls"))
          for (const auto& c : m["tool_calls"]) st.names[c.value("id", "")] = c["function"].value("name", "");
      for (size_t i = 0; i < input->size(); ++i)
        if (auto e = convert_item((*input)[i], "input[" + std::to_string(i) + "]", &st)) return e;
    } else if (input) {
      return wrong_type("input", "a string or an array of input items", *input);
    }
    if (conv.empty())
      return input ? bad("'input' must contain at least one item.", "input", "empty_array") : missing("input");
    out->messages = ojson::array();
    if (info->instructions) out->messages.push_back({{"role", "system"}, {"content", *info->instructions}});
    for (const auto& m : conv) {
      if (m.contains(kImagesKey)) {  // the images, in marker order, for the chat handler to decode
        for (const auto& u : m[kImagesKey]) out->image_urls.push_back(u.get<std::string>());
        ojson plain = m;
        plain.erase(kImagesKey);
        out->messages.push_back(std::move(plain));
      } else {
        out->messages.push_back(m);
      }
    }
    info->conversation = std::move(conv);

    if (const json* tools = field(j, "tools"))
      if (auto e = convert_tools(*tools, out, info)) return e;
    if (const json* tc = field(j, "tool_choice"))
      if (auto e = convert_tool_choice(*tc, out, info)) return e;
    if (auto e = get_bool(j, "parallel_tool_calls", &out->parallel_tool_calls)) return e;
    info->parallel_tool_calls = out->parallel_tool_calls;
    if (const json* t = field(j, "text"))
      if (auto e = convert_text(*t, out, info)) return e;
    if (field(j, "max_output_tokens")) {
      if (auto e = get_int(j, "max_output_tokens", 1, lim.n_ctx, &out->sampling.max_tokens)) {
        if (e->message.find(" is not in ") != std::string::npos)
          e->message = "Invalid 'max_output_tokens': " + j["max_output_tokens"].dump() + " must be at least 1 and at "
                       "most this model's context of " + std::to_string(lim.n_ctx) + " tokens.";
        return e;
      }
      info->max_output_tokens = *out->sampling.max_tokens;
    }
    std::optional<double> d;
    if (auto e = get_number(j, "temperature", 0, 2, &d)) return e;
    if (d) {
      out->sampling.temperature = (float)*d;
      info->temperature = *d;
    }
    d.reset();
    if (auto e = get_number(j, "top_p", 0, 1, &d)) return e;
    if (d) {
      out->sampling.top_p = *d <= 0 ? 1e-6f : (float)*d;
      info->top_p = *d;
    }
    if (auto e = get_bool(j, "stream", &out->stream)) return e;
    if (auto e = check_type(j, "stream_options", json::value_t::object)) return e;
    if (auto e = get_bool(j, "store", &info->store)) return e;
    if (const json* md = field(j, "metadata")) {
      if (!md->is_object()) return wrong_type("metadata", "an object", *md);
      for (const auto& [k, v] : md->items())
        if (!v.is_string()) return wrong_type("metadata." + k, "a string", v);
      info->metadata = *md;
    }
    if (field(j, "user")) {
      if (auto e = get_string(j, "user", false, &s)) return e;
      info->user = s;
    }
    if (const json* r = field(j, "reasoning")) {
      if (!r->is_object()) return wrong_type("reasoning", "an object", *r);
      info->reasoning = *r;
    }
    if (auto e = check_type(j, "truncation", json::value_t::string)) return e;
    if (auto e = check_type(j, "include", json::value_t::array)) return e;
    if (auto e = check_type(j, "service_tier", json::value_t::string)) return e;
    if (auto e = check_type(j, "top_logprobs", json::value_t::number_float)) return e;
  } catch (const std::exception& ex) {  // defensive: a json accessor we did not guard
    return bad(std::string("Invalid request: ") + ex.what(), "", "");
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------------------
// Response objects

namespace {

std::string item_id_at(const CompatMeta& m, const char* prefix, size_t index) {
  return prefix + id_suffix(m.id) + "_" + std::to_string(index);
}

json reasoning_part(const std::string& text) { return {{"type", "reasoning_text"}, {"text", text}}; }
json text_part(const std::string& text) {
  return {{"type", "output_text"}, {"text", text}, {"annotations", json::array()}};
}

json reasoning_item(const std::string& id, json content) {
  return {{"type", "reasoning"}, {"id", id}, {"summary", json::array()}, {"content", std::move(content)}};
}
json message_item(const std::string& id, const char* status, json content) {
  return {{"type", "message"}, {"id", id}, {"status", status}, {"role", "assistant"}, {"content", std::move(content)}};
}
json call_item(const std::string& id, const toolcall::ToolCall& c, const std::string& args, const char* status) {
  return {{"type", "function_call"}, {"id", id},          {"call_id", c.id},
          {"name", c.name},          {"arguments", args}, {"status", status}};
}

json usage_json(const CompatUsage& u) {
  return {{"input_tokens", u.input_tokens},
          {"input_tokens_details", {{"cached_tokens", u.cached_tokens}}},
          {"output_tokens", u.output_tokens},
          {"output_tokens_details", {{"reasoning_tokens", 0}}},
          {"total_tokens", u.input_tokens + u.output_tokens}};
}

json opt_string(const std::optional<std::string>& s) { return s ? json(*s) : json(nullptr); }

json response_object(const CompatMeta& m, const ResponsesInfo& info, json output, const char* status, json incomplete,
                     json usage, json error) {
  return {{"id", m.id},
          {"object", "response"},
          {"created_at", m.created},
          {"status", status},
          {"error", std::move(error)},
          {"incomplete_details", std::move(incomplete)},
          {"instructions", opt_string(info.instructions)},
          {"max_output_tokens", info.max_output_tokens},
          {"model", m.model},
          {"output", std::move(output)},
          {"parallel_tool_calls", info.parallel_tool_calls},
          {"previous_response_id", opt_string(info.previous_response_id)},
          {"reasoning", info.reasoning},
          {"store", info.store},
          {"temperature", info.temperature},
          {"text", info.text},
          {"tool_choice", info.tool_choice},
          {"tools", info.tools},
          {"top_p", info.top_p},
          {"truncation", "disabled"},
          {"usage", std::move(usage)},
          {"user", info.user},
          {"metadata", info.metadata}};
}

bool incomplete(const toolcall::Reply& r, const CompatFinish& f) { return f.length && r.calls.empty(); }

json incomplete_details(bool inc) { return inc ? json{{"reason", "max_output_tokens"}} : json(nullptr); }

}  // namespace

json responses_response_json(const CompatMeta& meta, const ResponsesInfo& info, const toolcall::Reply& reply,
                             const CompatFinish& finish, const CompatUsage& usage) {
  json output = json::array();
  if (!reply.reasoning.empty())
    output.push_back(reasoning_item(item_id_at(meta, "rs_", output.size()), json::array({reasoning_part(reply.reasoning)})));
  if (!reply.content.empty())
    output.push_back(message_item(item_id_at(meta, "msg_", output.size()), "completed",
                                  json::array({text_part(reply.content)})));
  for (const auto& c : reply.calls)
    output.push_back(call_item(item_id_at(meta, "fc_", output.size()), c, c.arguments, "completed"));
  const bool inc = incomplete(reply, finish);
  return response_object(meta, info, std::move(output), inc ? "incomplete" : "completed", incomplete_details(inc),
                         usage_json(usage), nullptr);
}

// ---------------------------------------------------------------------------------------------------------
// Streaming

std::string ResponsesStream::event(const char* type, json body) {
  body["type"] = type;
  body["sequence_number"] = seq_++;
  return sse_event(type, body);
}

std::string ResponsesStream::start() {
  if (started_) return "";
  started_ = true;
  last_ = response_object(meta_, info_, json::array(), "in_progress", nullptr, nullptr, nullptr);
  std::string out = event("response.created", {{"response", last_}});  // (two statements: the sequence numbers are ordered)
  return out + event("response.in_progress", {{"response", last_}});
}

std::string ResponsesStream::item_id() const {
  const char* prefix = item_ == Item::kReasoning ? "rs_" : item_ == Item::kMessage ? "msg_" : "fc_";
  return item_id_at(meta_, prefix, output_.size());
}

json ResponsesStream::added_item() const {
  if (item_ == Item::kReasoning) return reasoning_item(item_id(), json::array());
  if (item_ == Item::kMessage) return message_item(item_id(), "in_progress", json::array());
  return call_item(item_id(), reply_.calls[item_call_], "", "in_progress");
}

json ResponsesStream::item_json(const char* status) const {
  if (item_ == Item::kReasoning) return reasoning_item(item_id(), json::array({reasoning_part(item_text_)}));
  if (item_ == Item::kMessage) return message_item(item_id(), status, json::array({text_part(item_text_)}));
  return call_item(item_id(), reply_.calls[item_call_], item_text_, status);
}

std::string ResponsesStream::open(Item kind, int call) {
  std::string out = close();
  item_ = kind;
  item_call_ = call;
  item_text_.clear();
  const size_t idx = output_.size();
  out += event("response.output_item.added", {{"output_index", idx}, {"item", added_item()}});
  if (kind == Item::kReasoning || kind == Item::kMessage)
    out += event("response.content_part.added", {{"item_id", item_id()},
                                                 {"output_index", idx},
                                                 {"content_index", 0},
                                                 {"part", kind == Item::kReasoning ? reasoning_part("") : text_part("")}});
  return out;
}

std::string ResponsesStream::close() {
  if (item_ == Item::kNone) return "";
  const size_t idx = output_.size();
  const std::string id = item_id();
  std::string out;
  if (item_ == Item::kReasoning || item_ == Item::kMessage) {
    const bool r = item_ == Item::kReasoning;
    json done = {{"item_id", id}, {"output_index", idx}, {"content_index", 0}, {"text", item_text_}};
    if (!r) done["logprobs"] = json::array();
    out += event(r ? "response.reasoning_text.done" : "response.output_text.done", std::move(done));
    out += event("response.content_part.done", {{"item_id", id},
                                                {"output_index", idx},
                                                {"content_index", 0},
                                                {"part", r ? reasoning_part(item_text_) : text_part(item_text_)}});
  } else {
    out += event("response.function_call_arguments.done", {{"item_id", id},
                                                           {"output_index", idx},
                                                           {"name", reply_.calls[item_call_].name},
                                                           {"arguments", item_text_}});
  }
  json item = item_json("completed");
  out += event("response.output_item.done", {{"output_index", idx}, {"item", item}});
  output_.push_back(std::move(item));
  item_ = Item::kNone;
  item_call_ = -1;
  item_text_.clear();
  return out;
}

std::string ResponsesStream::push(const toolcall::Delta& d) {
  if (done_) return "";
  std::string out = start();
  auto text_delta = [&](const char* type, const std::string& delta) {
    json body = {{"item_id", item_id()}, {"output_index", output_.size()}, {"content_index", 0}, {"delta", delta}};
    if (item_ == Item::kMessage) body["logprobs"] = json::array();
    item_text_ += delta;
    return event(type, std::move(body));
  };
  if (!d.reasoning.empty()) {
    if (item_ != Item::kReasoning) out += open(Item::kReasoning, -1);
    reply_.reasoning += d.reasoning;
    out += text_delta("response.reasoning_text.delta", d.reasoning);
  }
  if (!d.content.empty()) {
    if (item_ != Item::kMessage) out += open(Item::kMessage, -1);
    reply_.content += d.content;
    out += text_delta("response.output_text.delta", d.content);
  }
  for (const auto& c : d.calls) {
    bool is_new = false;
    const int pos = note_call(c, "call_", meta_.id, &call_pos_, &reply_, &is_new);
    if (pos < 0) continue;
    if (is_new) out += open(Item::kCall, pos);
    // A fragment for a call whose item already ended cannot be sent (ReplyStream never produces one).
    if (c.arguments.empty() || item_ != Item::kCall || item_call_ != pos) continue;
    item_text_ += c.arguments;
    out += event("response.function_call_arguments.delta",
                 {{"item_id", item_id()}, {"output_index", output_.size()}, {"delta", c.arguments}});
  }
  return out;
}

std::string ResponsesStream::item(const json& item) {
  if (done_) return "";
  std::string out = start();
  out += close();
  const size_t idx = output_.size();
  const std::string type = item.value("type", "");
  const std::string id = item.value("id", "");
  json added = item;
  if (type == "mcp_list_tools") added["tools"] = json::array();
  if (type == "mcp_call") added["arguments"] = "", added["output"] = nullptr, added["error"] = nullptr;
  out += event("response.output_item.added", {{"output_index", idx}, {"item", added}});
  const json where = {{"item_id", id}, {"output_index", idx}};
  auto with = [&](json extra) {
    json b = where;
    for (auto& [k, v] : extra.items()) b[k] = v;
    return b;
  };
  if (type == "mcp_list_tools") {
    out += event("response.mcp_list_tools.in_progress", where);
    out += event("response.mcp_list_tools.completed", where);
  } else if (type == "mcp_call") {
    const std::string args = item.value("arguments", "");
    out += event("response.mcp_call.in_progress", where);
    out += event("response.mcp_call_arguments.delta", with({{"delta", args}}));
    out += event("response.mcp_call_arguments.done", with({{"arguments", args}}));
    out += event(item.value("error", json()).is_null() ? "response.mcp_call.completed" : "response.mcp_call.failed", where);
  }
  out += event("response.output_item.done", {{"output_index", idx}, {"item", item}});
  output_.push_back(item);
  return out;
}

std::string ResponsesStream::finish(const CompatFinish& f, const CompatUsage& u, const json& provenance) {
  if (done_) return "";
  std::string out = start();
  out += close();
  done_ = true;
  const bool inc = incomplete(reply_, f);
  last_ = response_object(meta_, info_, output_, inc ? "incomplete" : "completed", incomplete_details(inc),
                          usage_json(u), nullptr);
  if (!provenance.is_null()) last_["provenance"] = provenance;
  return out + event(inc ? "response.incomplete" : "response.completed", {{"response", last_}});
}

std::string ResponsesStream::error(const ApiError& e) {
  if (done_) return "";
  std::string out = start();
  done_ = true;
  out += event("error", {{"code", e.code.empty() ? json(nullptr) : json(e.code)},
                         {"message", e.message},
                         {"param", e.param.empty() ? json(nullptr) : json(e.param)}});
  json output = output_;
  if (item_ != Item::kNone) output.push_back(item_json("incomplete"));
  json err = {{"code", e.status == 429 ? "rate_limit_exceeded" : "server_error"}, {"message", e.message}};
  last_ = response_object(meta_, info_, std::move(output), "failed", nullptr, nullptr, std::move(err));
  return out + event("response.failed", {{"response", last_}});
}

}  // namespace modu::server
