// Anthropic Messages API (POST /v1/messages): request validation into a ChatRequest, the Message object,
// its SSE event stream and error shape; plus the field helpers shared with api_responses.cpp.
#include <cmath>
#include <limits>
#include <map>

#include "modu/server/api_compat.h"

namespace modu::server {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;
using Err = std::optional<ApiError>;

// ---------------------------------------------------------------------------------------------------------
// Shared helpers

namespace compat_detail {

ApiError bad(std::string message, std::string param, std::string code) {
  ApiError e;
  e.status = 400;
  e.message = std::move(message);
  e.param = std::move(param);
  e.code = std::move(code);
  return e;
}

static const char* type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    default: return "a number";
  }
}

ApiError wrong_type(const std::string& param, const char* want, const json& v) {
  return bad("Invalid type for '" + param + "': expected " + want + ", but got " + type_name(v) + ".", param,
             "invalid_type");
}

ApiError missing(const std::string& param) {
  return bad("Missing required parameter: '" + param + "'.", param, "missing_required_parameter");
}

ApiError unsupported(std::string message, std::string param) {
  return bad(std::move(message), std::move(param), "unsupported_value");
}

const json* field(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

Err get_number(const json& obj, const char* key, double lo, double hi, std::optional<double>* out,
               const std::string& prefix) {
  const json* v = field(obj, key);
  if (!v) return std::nullopt;
  const std::string p = prefix + key;
  if (!v->is_number()) return wrong_type(p, "a number", *v);
  const double d = v->get<double>();
  if (!(d >= lo && d <= hi))
    return bad("Invalid '" + p + "': " + v->dump() + " is not in [" + json(lo).dump() + ", " + json(hi).dump() + "].", p);
  *out = d;
  return std::nullopt;
}

Err get_int(const json& obj, const char* key, int64_t lo, int64_t hi, std::optional<int64_t>* out,
            const std::string& prefix) {
  const json* v = field(obj, key);
  if (!v) return std::nullopt;
  const std::string p = prefix + key;
  int64_t x;
  if (v->is_number_unsigned() && v->get<uint64_t>() > (uint64_t)std::numeric_limits<int64_t>::max()) {
    x = std::numeric_limits<int64_t>::max();
  } else if (v->is_number_integer()) {
    x = v->get<int64_t>();
  } else if (v->is_number_float() && std::isfinite(v->get<double>()) && v->get<double>() == std::floor(v->get<double>()) &&
             std::fabs(v->get<double>()) < 9e15) {
    x = (int64_t)v->get<double>();
  } else {
    return wrong_type(p, "an integer", *v);
  }
  if (x < lo || x > hi)
    return bad("Invalid '" + p + "': " + v->dump() + " is not in [" + std::to_string(lo) + ", " + std::to_string(hi) + "].",
               p);
  *out = x;
  return std::nullopt;
}

Err get_bool(const json& obj, const char* key, bool* out, const std::string& prefix) {
  const json* v = field(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) return wrong_type(prefix + key, "a boolean", *v);
  *out = v->get<bool>();
  return std::nullopt;
}

Err get_string(const json& obj, const char* key, bool required, std::string* out, const std::string& prefix) {
  const json* v = field(obj, key);
  if (!v) return required ? Err(missing(prefix + key)) : std::nullopt;
  if (!v->is_string()) return wrong_type(prefix + key, "a string", *v);
  *out = v->get<std::string>();
  return std::nullopt;
}

Err check_type(const json& obj, const char* key, json::value_t want, const std::string& prefix) {
  const json* v = field(obj, key);
  if (!v) return std::nullopt;
  const bool ok = want == json::value_t::number_float ? v->is_number() : v->type() == want;
  if (ok) return std::nullopt;
  const char* name = want == json::value_t::object    ? "an object"
                     : want == json::value_t::array   ? "an array"
                     : want == json::value_t::string  ? "a string"
                     : want == json::value_t::boolean ? "a boolean"
                                                      : "a number";
  return wrong_type(prefix + key, name, *v);
}

ojson to_ordered(const json& j) { return ojson::parse(dump_json(j), nullptr, false); }

ojson parse_arguments(const std::string& text) {
  ojson obj = ojson::parse(text, nullptr, false);
  if (!obj.is_discarded() && obj.is_object()) return obj;
  return text;
}

std::string id_suffix(const std::string& id) {
  const size_t u = id.find('_');
  return u == std::string::npos ? id : id.substr(u + 1);
}

int note_call(const toolcall::CallDelta& c, const char* id_prefix, const std::string& response_id,
              std::vector<int>* call_pos, toolcall::Reply* reply, bool* is_new) {
  *is_new = false;
  if (c.index < 0) return -1;
  if ((size_t)c.index >= call_pos->size()) call_pos->resize(c.index + 1, -1);
  int& pos = (*call_pos)[c.index];
  if (pos < 0) {
    pos = (int)reply->calls.size();
    const std::string id = c.id.empty() ? id_prefix + id_suffix(response_id) + "_" + std::to_string(c.index) : c.id;
    reply->calls.push_back({id, c.name, ""});
    *is_new = true;
  }
  reply->calls[pos].arguments += c.arguments;
  return pos;
}

}  // namespace compat_detail

using namespace compat_detail;

std::string sse_event(std::string_view name, const json& data) {
  return "event: " + std::string(name) + "\ndata: " + dump_json(data) + "\n\n";
}

ojson reply_to_chat_message(const toolcall::Reply& reply) {
  ojson m = {{"role", "assistant"}, {"content", reply.content}};
  if (!reply.reasoning.empty()) m["reasoning_content"] = reply.reasoning;
  if (!reply.calls.empty()) {
    ojson calls = ojson::array();
    for (const auto& c : reply.calls)
      calls.push_back({{"id", c.id},
                       {"type", "function"},
                       {"function", {{"name", c.name}, {"arguments", parse_arguments(c.arguments)}}}});
    m["tool_calls"] = std::move(calls);
  }
  return m;
}

// ---------------------------------------------------------------------------------------------------------
// Requests

namespace {

constexpr const char* kSep = "\n\n";  // between text blocks of one message (Anthropic blocks are paragraphs)

// A string, or an array of {"type":"text","text"} blocks joined (system, tool_result content).
Err text_blocks(const json& v, const std::string& p, std::string* out) {
  if (v.is_string()) {
    *out = v.get<std::string>();
    return std::nullopt;
  }
  if (!v.is_array()) return wrong_type(p, "a string or an array of text blocks", v);
  out->clear();
  for (size_t k = 0; k < v.size(); ++k) {
    const json& b = v[k];
    const std::string bp = p + "[" + std::to_string(k) + "]";
    if (!b.is_object()) return wrong_type(bp, "an object", b);
    std::string type;
    if (auto e = get_string(b, "type", true, &type, bp + ".")) return e;
    if (type != "text")
      return unsupported("Content blocks of type '" + type + "' are not supported in '" + p + "'; only 'text'.",
                         bp + ".type");
    std::string text;
    if (auto e = get_string(b, "text", true, &text, bp + ".")) return e;
    if (k > 0) *out += kSep;
    *out += text;
  }
  return std::nullopt;
}

// An image block's source -> the URL the chat handler decodes: base64 data becomes a data: URL,
// a url source stays itself (fetched only with --allow-image-urls).
Err image_source(const json& b, const std::string& bp, std::string* url) {
  const json* src = field(b, "source");
  if (!src) return missing(bp + ".source");
  if (!src->is_object()) return wrong_type(bp + ".source", "an object", *src);
  std::string type;
  if (auto e = get_string(*src, "type", true, &type, bp + ".source.")) return e;
  if (type == "base64") {
    std::string media, data;
    if (auto e = get_string(*src, "media_type", true, &media, bp + ".source.")) return e;
    if (auto e = get_string(*src, "data", true, &data, bp + ".source.")) return e;
    *url = "data:" + media + ";base64," + data;
  } else if (type == "url") {
    if (auto e = get_string(*src, "url", true, url, bp + ".source.")) return e;
  } else {
    return unsupported("Image sources of type '" + type + "' are not supported; use 'base64' or 'url'.", bp + ".source.type");
  }
  return std::nullopt;
}

// One Messages message -> one or more chat messages. `names` maps tool_use ids seen so far to tool
// names; a user message's image blocks become image markers, their URLs appended to `images`.
Err convert_message(const json& m, const std::string& p, std::map<std::string, std::string>* names, ojson* msgs,
                    std::vector<std::string>* images) {
  if (!m.is_object()) return wrong_type(p, "an object", m);
  std::string role;
  if (auto e = get_string(m, "role", true, &role, p + ".")) return e;
  if (role != "user" && role != "assistant")
    return bad("Invalid value for '" + p + ".role': '" + role + "'. Supported values are: 'user' and 'assistant' "
               "(put system prompts in the top-level 'system').", p + ".role");
  const json* content = field(m, "content");
  if (!content) return missing(p + ".content");
  if (content->is_string()) {
    msgs->push_back({{"role", role}, {"content", content->get<std::string>()}});
    return std::nullopt;
  }
  if (!content->is_array()) return wrong_type(p + ".content", "a string or an array of content blocks", *content);
  std::string text, thinking;
  bool any_text = false;
  ojson calls = ojson::array(), results = ojson::array();
  for (size_t k = 0; k < content->size(); ++k) {
    const json& b = (*content)[k];
    const std::string bp = p + ".content[" + std::to_string(k) + "]";
    if (!b.is_object()) return wrong_type(bp, "an object", b);
    std::string type;
    if (auto e = get_string(b, "type", true, &type, bp + ".")) return e;
    if (type == "text") {
      std::string t;
      if (auto e = get_string(b, "text", true, &t, bp + ".")) return e;
      if (any_text) text += kSep;
      text += t;
      any_text = true;
    } else if (type == "thinking") {
      if (role != "assistant") return bad("'thinking' blocks are only allowed in assistant messages.", bp + ".type");
      std::string t, sig;
      if (auto e = get_string(b, "thinking", true, &t, bp + ".")) return e;
      if (auto e = get_string(b, "signature", false, &sig, bp + ".")) return e;
      if (!thinking.empty() && !t.empty()) thinking += kSep;
      thinking += t;
    } else if (type == "redacted_thinking") {
      if (role != "assistant")
        return bad("'redacted_thinking' blocks are only allowed in assistant messages.", bp + ".type");
      if (auto e = check_type(b, "data", json::value_t::string, bp + ".")) return e;  // opaque: dropped
    } else if (type == "tool_use") {
      if (role != "assistant") return bad("'tool_use' blocks are only allowed in assistant messages.", bp + ".type");
      std::string id, name;
      if (auto e = get_string(b, "id", true, &id, bp + ".")) return e;
      if (auto e = get_string(b, "name", true, &name, bp + ".")) return e;
      const json* input = field(b, "input");
      if (!input) return missing(bp + ".input");
      if (!input->is_object()) return wrong_type(bp + ".input", "an object", *input);
      (*names)[id] = name;
      calls.push_back({{"id", id}, {"type", "function"}, {"function", {{"name", name}, {"arguments", to_ordered(*input)}}}});
    } else if (type == "tool_result") {
      if (role != "user") return bad("'tool_result' blocks are only allowed in user messages.", bp + ".type");
      std::string id, out;
      if (auto e = get_string(b, "tool_use_id", true, &id, bp + ".")) return e;
      if (const json* c = field(b, "content"))
        if (auto e = text_blocks(*c, bp + ".content", &out)) return e;
      bool is_error = false;
      if (auto e = get_bool(b, "is_error", &is_error, bp + ".")) return e;
      ojson tm = {{"role", "tool"}, {"tool_call_id", id}, {"content", out}};
      if (auto it = names->find(id); it != names->end()) tm["name"] = it->second;
      results.push_back(std::move(tm));
    } else if (type == "image") {
      if (role != "user") return bad("'image' blocks are only allowed in user messages.", bp + ".type");
      std::string url;
      if (auto e = image_source(b, bp, &url)) return e;
      images->push_back(std::move(url));
      text += "<__media__>";  // the image goes where the block is (runtime/multimodal.h)
      any_text = true;
    } else if (type == "document" || type == "search_result" || type == "container_upload") {
      return unsupported("Content blocks of type '" + type + "' are not supported by this model; only text and images.",
                         bp + ".type");
    } else {
      return bad("Invalid value for '" + bp + ".type': '" + type + "'. Supported block types are 'text', "
                 "'thinking', 'redacted_thinking', 'tool_use' and 'tool_result'.", bp + ".type");
    }
  }
  if (role == "user") {
    for (auto& r : results) msgs->push_back(std::move(r));
    if (any_text || results.empty()) msgs->push_back({{"role", "user"}, {"content", text}});
    return std::nullopt;
  }
  ojson am = {{"role", "assistant"}, {"content", text}};
  if (!thinking.empty()) am["reasoning_content"] = thinking;
  if (!calls.empty()) am["tool_calls"] = std::move(calls);
  msgs->push_back(std::move(am));
  return std::nullopt;
}

Err convert_tools(const json& tools, ChatRequest* out) {
  if (!tools.is_array()) return wrong_type("tools", "an array", tools);
  ojson conv = ojson::array();
  for (size_t i = 0; i < tools.size(); ++i) {
    const json& t = tools[i];
    const std::string p = "tools[" + std::to_string(i) + "]";
    if (!t.is_object()) return wrong_type(p, "an object", t);
    std::string type = "custom", name, description;
    if (auto e = get_string(t, "type", false, &type, p + ".")) return e;
    if (type != "custom")
      return unsupported("Server tools (type '" + type + "') are not supported; define client tools with 'name', "
                         "'description' and 'input_schema'.", p + ".type");
    if (auto e = get_string(t, "name", true, &name, p + ".")) return e;
    if (name.empty()) return bad("'" + p + ".name' must not be empty.", p + ".name");
    if (auto e = get_string(t, "description", false, &description, p + ".")) return e;
    const json* schema = field(t, "input_schema");
    if (!schema) return missing(p + ".input_schema");
    if (!schema->is_object()) return wrong_type(p + ".input_schema", "an object", *schema);
    ojson fn = {{"name", name}};
    if (field(t, "description")) fn["description"] = description;
    fn["parameters"] = to_ordered(*schema);
    conv.push_back({{"type", "function"}, {"function", std::move(fn)}});
  }
  if (!conv.empty()) out->tools = std::move(conv);
  return std::nullopt;
}

Err convert_tool_choice(const json& tc, ChatRequest* out) {
  if (!tc.is_object()) return wrong_type("tool_choice", "an object", tc);
  std::string type;
  if (auto e = get_string(tc, "type", true, &type, "tool_choice.")) return e;
  if (type == "auto") out->tool_choice = "auto";
  else if (type == "any") out->tool_choice = "required";
  else if (type == "none") out->tool_choice = "none";
  else if (type == "tool") {
    out->tool_choice = "function";
    if (auto e = get_string(tc, "name", true, &out->tool_choice_name, "tool_choice.")) return e;
  } else {
    return bad("Invalid value for 'tool_choice.type': '" + type + "'. Supported values are: 'auto', 'any', 'tool' and "
               "'none'.", "tool_choice.type");
  }
  bool disable = false;
  if (auto e = get_bool(tc, "disable_parallel_tool_use", &disable, "tool_choice.")) return e;
  out->parallel_tool_calls = !disable;
  return std::nullopt;
}

}  // namespace

static Err parse_messages_body(std::string_view body, const ApiLimits& lim, ChatRequest* out) {
  json j;
  if (auto e = parse_json_object(body, lim, &j)) return e;
  try {
    if (auto e = get_string(j, "model", true, &out->model)) return e;
    if (!field(j, "max_tokens")) return missing("max_tokens");
    if (auto e = get_int(j, "max_tokens", 1, lim.n_ctx, &out->sampling.max_tokens)) {
      if (e->message.find(" is not in ") != std::string::npos)
        e->message = "Invalid 'max_tokens': " + j["max_tokens"].dump() + " must be at least 1 and at most this "
                     "model's context of " + std::to_string(lim.n_ctx) + " tokens.";
      return e;
    }
    out->messages = ojson::array();
    if (const json* sys = field(j, "system")) {
      std::string text;
      if (auto e = text_blocks(*sys, "system", &text)) return e;
      out->messages.push_back({{"role", "system"}, {"content", text}});
    }
    const json* msgs = field(j, "messages");
    if (!msgs) return missing("messages");
    if (!msgs->is_array()) return wrong_type("messages", "an array", *msgs);
    if (msgs->empty()) return bad("'messages' must contain at least one message.", "messages", "empty_array");
    std::map<std::string, std::string> names;
    for (size_t i = 0; i < msgs->size(); ++i)
      if (auto e = convert_message((*msgs)[i], "messages[" + std::to_string(i) + "]", &names, &out->messages,
                                   &out->image_urls))
        return e;
    if (const json* tools = field(j, "tools"))
      if (auto e = convert_tools(*tools, out)) return e;
    if (const json* tc = field(j, "tool_choice"))
      if (auto e = convert_tool_choice(*tc, out)) return e;
    if (const json* ss = field(j, "stop_sequences")) {
      const size_t max_stop = std::max<size_t>(lim.max_stop, 16);
      if (!ss->is_array()) return wrong_type("stop_sequences", "an array of strings", *ss);
      if (ss->size() > max_stop)
        return bad("'stop_sequences' has " + std::to_string(ss->size()) + " entries; at most " +
                   std::to_string(max_stop) + " are allowed.", "stop_sequences");
      for (const auto& s : *ss) {
        if (!s.is_string()) return wrong_type("stop_sequences", "an array of strings", s);
        if (!s.get<std::string>().empty()) out->sampling.stop.push_back(s.get<std::string>());
      }
    }
    std::optional<double> d;
    if (auto e = get_number(j, "temperature", 0, 1, &d)) return e;
    if (d) out->sampling.temperature = (float)*d;
    d.reset();
    if (auto e = get_number(j, "top_p", 0, 1, &d)) return e;
    if (d) out->sampling.top_p = *d <= 0 ? 1e-6f : (float)*d;
    std::optional<int64_t> top_k;
    if (auto e = get_int(j, "top_k", 0, 1 << 30, &top_k)) return e;
    if (top_k) out->sampling.top_k = (int)*top_k;
    if (auto e = get_bool(j, "stream", &out->stream)) return e;
    if (auto e = check_type(j, "metadata", json::value_t::object)) return e;
    if (const json* md = field(j, "metadata"))
      if (auto e = check_type(*md, "user_id", json::value_t::string, "metadata.")) return e;
    if (auto e = check_type(j, "thinking", json::value_t::object)) return e;
    if (const json* th = field(j, "thinking")) {
      if (auto e = check_type(*th, "type", json::value_t::string, "thinking.")) return e;
      if (auto e = check_type(*th, "budget_tokens", json::value_t::number_float, "thinking.")) return e;
    }
    if (auto e = check_type(j, "service_tier", json::value_t::string)) return e;
  } catch (const std::exception& ex) {  // defensive: a json accessor we did not guard
    return bad(std::string("Invalid request: ") + ex.what(), "", "");
  }
  return std::nullopt;
}

std::optional<ApiError> parse_messages_request(std::string_view body, const ApiLimits& lim, ChatRequest* out) {
  Err e = parse_messages_body(body, lim, out);
  // Anthropic's error object has no "param": the message must name the parameter (as the header promises).
  if (e && !e->param.empty() && e->message.find(e->param) == std::string::npos)
    e->message += " (parameter '" + e->param + "')";
  return e;
}

// ---------------------------------------------------------------------------------------------------------
// Errors and the Message object

const char* anthropic_error_type(int status) {
  switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 402: return "billing_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 503:
    case 529: return "overloaded_error";
    case 504: return "timeout_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

json anthropic_error_json(const ApiError& e) {
  return json{{"type", "error"}, {"error", {{"type", anthropic_error_type(e.status)}, {"message", e.message}}}};
}

namespace {

json tool_input(const std::string& args) {
  json v = json::parse(args, nullptr, false);
  return !v.is_discarded() && v.is_object() ? v : json::object();
}

json stop_reason(const toolcall::Reply& reply, const CompatFinish& f) {
  if (!reply.calls.empty()) return "tool_use";
  if (f.length) return "max_tokens";
  if (!f.stop_sequence.empty()) return "stop_sequence";
  return "end_turn";
}

json stop_sequence(const toolcall::Reply& reply, const CompatFinish& f) {
  if (reply.calls.empty() && !f.length && !f.stop_sequence.empty()) return f.stop_sequence;
  return nullptr;
}

json anthropic_usage(int64_t input, int64_t output, int64_t cached) {
  return json{{"input_tokens", std::max<int64_t>(0, input - cached)},
              {"output_tokens", output},
              {"cache_creation_input_tokens", 0},
              {"cache_read_input_tokens", cached}};
}

json message_object(const CompatMeta& meta, json content, json stop, json stop_seq, json usage) {
  return json{{"id", meta.id},           {"type", "message"},          {"role", "assistant"},
              {"model", meta.model},     {"content", std::move(content)}, {"stop_reason", std::move(stop)},
              {"stop_sequence", std::move(stop_seq)}, {"usage", std::move(usage)}};
}

}  // namespace

json messages_response_json(const CompatMeta& meta, const toolcall::Reply& reply, const CompatFinish& finish,
                            const CompatUsage& usage) {
  json content = json::array();
  if (!reply.reasoning.empty())
    content.push_back({{"type", "thinking"}, {"thinking", reply.reasoning}, {"signature", ""}});
  if (!reply.content.empty()) content.push_back({{"type", "text"}, {"text", reply.content}});
  for (const auto& c : reply.calls)
    content.push_back({{"type", "tool_use"}, {"id", c.id}, {"name", c.name}, {"input", tool_input(c.arguments)}});
  return message_object(meta, std::move(content), stop_reason(reply, finish), stop_sequence(reply, finish),
                        anthropic_usage(usage.input_tokens, usage.output_tokens, usage.cached_tokens));
}

// ---------------------------------------------------------------------------------------------------------
// Streaming

std::string MessagesStream::start(int64_t input_tokens, int64_t cached_tokens) {
  if (started_) return "";
  started_ = true;
  json msg = message_object(meta_, json::array(), nullptr, nullptr, anthropic_usage(input_tokens, 0, cached_tokens));
  return sse_event("message_start", {{"type", "message_start"}, {"message", std::move(msg)}}) +
         sse_event("ping", {{"type", "ping"}});
}

std::string MessagesStream::close() {
  if (block_ == Block::kNone) return "";
  block_ = Block::kNone;
  block_call_ = -1;
  return sse_event("content_block_stop", {{"type", "content_block_stop"}, {"index", index_}});
}

std::string MessagesStream::open(Block kind, int call) {
  std::string out = close();
  block_ = kind;
  block_call_ = call;
  ++index_;
  json cb;
  if (kind == Block::kThinking) cb = {{"type", "thinking"}, {"thinking", ""}, {"signature", ""}};
  else if (kind == Block::kText) cb = {{"type", "text"}, {"text", ""}};
  else cb = {{"type", "tool_use"}, {"id", reply_.calls[call].id}, {"name", reply_.calls[call].name}, {"input", json::object()}};
  return out + sse_event("content_block_start", {{"type", "content_block_start"}, {"index", index_}, {"content_block", cb}});
}

std::string MessagesStream::push(const toolcall::Delta& d) {
  if (done_) return "";
  std::string out = start(0);
  auto delta = [&](json body) {
    return sse_event("content_block_delta", {{"type", "content_block_delta"}, {"index", index_}, {"delta", std::move(body)}});
  };
  if (!d.reasoning.empty()) {
    if (block_ != Block::kThinking) out += open(Block::kThinking, -1);
    reply_.reasoning += d.reasoning;
    out += delta({{"type", "thinking_delta"}, {"thinking", d.reasoning}});
  }
  if (!d.content.empty()) {
    if (block_ != Block::kText) out += open(Block::kText, -1);
    reply_.content += d.content;
    out += delta({{"type", "text_delta"}, {"text", d.content}});
  }
  for (const auto& c : d.calls) {
    bool is_new = false;
    const int pos = note_call(c, "toolu_", meta_.id, &call_pos_, &reply_, &is_new);
    if (pos < 0) continue;
    if (is_new) out += open(Block::kToolUse, pos);
    // A fragment for a call whose block already closed cannot be sent (ReplyStream never produces one).
    if (c.arguments.empty() || block_ != Block::kToolUse || block_call_ != pos) continue;
    out += delta({{"type", "input_json_delta"}, {"partial_json", c.arguments}});
  }
  return out;
}

std::string MessagesStream::finish(const CompatFinish& f, const CompatUsage& u, const json& provenance) {
  if (done_) return "";
  std::string out = start(u.input_tokens, u.cached_tokens);
  out += close();
  done_ = true;
  json delta = {{"stop_reason", stop_reason(reply_, f)}, {"stop_sequence", stop_sequence(reply_, f)}};
  out += sse_event("message_delta", {{"type", "message_delta"},
                                     {"delta", std::move(delta)},
                                     {"usage", anthropic_usage(u.input_tokens, u.output_tokens, u.cached_tokens)}});
  json stop = {{"type", "message_stop"}};
  if (!provenance.is_null()) stop["provenance"] = provenance;
  return out + sse_event("message_stop", stop);
}

std::string MessagesStream::error(const ApiError& e) {
  if (done_) return "";
  done_ = true;
  return sse_event("error", anthropic_error_json(e));
}

}  // namespace modu::server
