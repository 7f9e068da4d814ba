// OpenAI request parsing: every field is type- and range-checked, and each failure becomes an
// OpenAI-style error naming the offending parameter. Unknown fields are ignored (forward compatible).
#include "modu/server/api.h"

#include <cmath>
#include <limits>

namespace modu::server {

using json = nlohmann::json;
using Err = std::optional<ApiError>;

json ApiError::to_json() const {
  json e = {{"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}};
  if (!param.empty()) e["param"] = param;
  if (!code.empty()) e["code"] = code;
  return json{{"error", e}};
}

std::string dump_json(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }
std::string dump_json(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t i = 0, n = s.size();
  while (i < n) {
    unsigned c = p[i];
    if (c < 0x80) { ++i; continue; }
    int len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
    else return false;
    if (i + len > n) return false;
    for (int k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

namespace {

ApiError bad(std::string message, std::string param = "", int status = 400, std::string code = "") {
  ApiError e;
  e.status = status;
  e.message = std::move(message);
  e.param = std::move(param);
  e.code = std::move(code);
  return e;
}

const char* type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    case json::value_t::binary: return "binary";
    case json::value_t::discarded: return "discarded";
    default: return "a number";
  }
}

ApiError wrong_type(const std::string& key, const char* want, const json& v) {
  return bad("Invalid type for '" + key + "': expected " + want + ", but got " + type_name(v) + ".", key, 400,
             "invalid_type");
}

// Field access: absent or null means "not given".
const json* field(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

Err get_number(const json& obj, const char* key, double lo, double hi, float* out) {
  const json* v = field(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) return wrong_type(key, "a number", *v);
  const double d = v->get<double>();
  if (!(d >= lo && d <= hi))
    return bad("Invalid '" + std::string(key) + "': " + std::to_string(d) + " is not in [" + std::to_string(lo) + ", " +
                   std::to_string(hi) + "].", key, 400, "invalid_value");
  *out = (float)d;
  return std::nullopt;
}

Err get_int(const json& obj, const char* key, int64_t lo, int64_t hi, std::optional<int64_t>* out) {
  const json* v = field(obj, key);
  if (!v) return std::nullopt;
  int64_t x;
  if (v->is_number_integer()) {
    if (v->is_number_unsigned() && v->get<uint64_t>() > (uint64_t)std::numeric_limits<int64_t>::max())
      return bad("Invalid '" + std::string(key) + "': integer too large.", key, 400, "invalid_value");
    x = v->get<int64_t>();
  } else if (v->is_number_float() && std::isfinite(v->get<double>()) && v->get<double>() == std::floor(v->get<double>()) &&
             std::fabs(v->get<double>()) < 9e15) {
    x = (int64_t)v->get<double>();
  } else {
    return wrong_type(key, "an integer", *v);
  }
  if (x < lo || x > hi)
    return bad("Invalid '" + std::string(key) + "': " + std::to_string(x) + " is not in [" + std::to_string(lo) + ", " +
                   std::to_string(hi) + "].", key, 400, "invalid_value");
  *out = x;
  return std::nullopt;
}

Err get_bool(const json& obj, const char* key, bool* out) {
  const json* v = field(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) return wrong_type(key, "a boolean", *v);
  *out = v->get<bool>();
  return std::nullopt;
}

Err get_string(const json& obj, const char* key, std::string* out) {
  const json* v = field(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_string()) return wrong_type(key, "a string", *v);
  *out = v->get<std::string>();
  return std::nullopt;
}

// Fields we accept and ignore, checked only for their type so mistakes are still reported.
Err check_ignored(const json& obj) {
  static const std::pair<const char*, json::value_t> kFields[] = {
      {"user", json::value_t::string},          {"tool_choice", json::value_t::discarded},
      {"parallel_tool_calls", json::value_t::boolean}, {"metadata", json::value_t::object},
      {"store", json::value_t::boolean},        {"service_tier", json::value_t::string},
      {"functions", json::value_t::array},      {"modalities", json::value_t::array},
      {"reasoning_effort", json::value_t::string}, {"suffix", json::value_t::string},
  };
  for (const auto& [key, want] : kFields) {
    const json* v = field(obj, key);
    if (!v || want == json::value_t::discarded) continue;
    if (v->type() != want) {
      const char* names[] = {"null", "an object", "an array", "a string", "a boolean"};
      int idx = want == json::value_t::object ? 1 : want == json::value_t::array ? 2 : want == json::value_t::string ? 3 : 4;
      return wrong_type(key, names[idx], *v);
    }
  }
  if (const json* v = field(obj, "tool_choice"); v && !v->is_string() && !v->is_object())
    return wrong_type("tool_choice", "a string or an object", *v);
  return std::nullopt;
}

Err parse_sampling(const json& obj, const ApiLimits& lim, bool allow_zero_tokens, SamplingFields* s) {
  if (auto e = check_ignored(obj)) return e;
  if (auto e = get_number(obj, "temperature", 0, 2, &s->temperature)) return e;
  if (auto e = get_number(obj, "top_p", 0, 1, &s->top_p)) return e;
  if (s->top_p <= 0) s->top_p = 1e-6f;  // OpenAI allows 0: keep only the most likely token
  std::optional<int64_t> top_k;
  if (auto e = get_int(obj, "top_k", 0, 1 << 30, &top_k)) return e;
  if (top_k) s->top_k = (int)*top_k;
  if (auto e = get_number(obj, "min_p", 0, 1, &s->min_p)) return e;
  if (auto e = get_number(obj, "repetition_penalty", 0.01, 10, &s->repetition_penalty)) return e;
  if (auto e = get_number(obj, "presence_penalty", -2, 2, &s->presence_penalty)) return e;
  if (auto e = get_number(obj, "frequency_penalty", -2, 2, &s->frequency_penalty)) return e;
  if (auto e = get_bool(obj, "ignore_eos", &s->ignore_eos)) return e;
  std::optional<int64_t> seed;
  if (auto e = get_int(obj, "seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), &seed))
    return e;
  if (seed) s->seed = (uint64_t)*seed;
  std::optional<int64_t> n;
  if (auto e = get_int(obj, "n", 1, 128, &n)) return e;
  if (n && *n != 1) return bad("Only n=1 is supported (got n=" + std::to_string(*n) + ").", "n", 400, "unsupported_value");
  std::optional<int64_t> best_of;
  if (auto e = get_int(obj, "best_of", 1, 128, &best_of)) return e;
  if (best_of && *best_of != 1) return bad("Only best_of=1 is supported.", "best_of", 400, "unsupported_value");
  const int64_t lo = allow_zero_tokens ? 0 : 1;
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    std::optional<int64_t> m;
    if (const json* v = field(obj, key); v && v->is_number_integer() && !v->is_number_unsigned() && v->get<int64_t>() < lo)
      return bad("Invalid '" + std::string(key) + "': must be at least " + std::to_string(lo) + ".", key, 400,
                 "invalid_value");
    if (auto e = get_int(obj, key, lo, std::numeric_limits<int64_t>::max(), &m)) return e;
    if (m && *m > lim.n_ctx)
      return bad("'" + std::string(key) + "' is " + std::to_string(*m) + " but this model's context is " +
                     std::to_string(lim.n_ctx) + " tokens.", key, 400, "invalid_value");
    if (m) s->max_tokens = m;
  }
  if (const json* v = field(obj, "stop")) {
    if (v->is_string()) {
      if (!v->get<std::string>().empty()) s->stop.push_back(v->get<std::string>());
    } else if (v->is_array()) {
      if (v->size() > lim.max_stop)
        return bad("'stop' has " + std::to_string(v->size()) + " entries; at most " + std::to_string(lim.max_stop) +
                       " are allowed.", "stop", 400, "invalid_value");
      for (const auto& x : *v) {
        if (!x.is_string()) return wrong_type("stop", "a string or an array of strings", x);
        if (!x.get<std::string>().empty()) s->stop.push_back(x.get<std::string>());
      }
    } else {
      return wrong_type("stop", "a string or an array of strings", *v);
    }
  }
  if (const json* v = field(obj, "logit_bias")) {
    if (!v->is_object()) return wrong_type("logit_bias", "an object", *v);
    for (const auto& [k, b] : v->items()) {
      char* end = nullptr;
      errno = 0;
      const long long id = std::strtoll(k.c_str(), &end, 10);
      if (k.empty() || *end != '\0' || errno != 0 || id < 0 || id >= lim.n_vocab)
        return bad("Invalid 'logit_bias' key '" + k + "': expected a token id in [0, " + std::to_string(lim.n_vocab) + ").",
                   "logit_bias", 400, "invalid_value");
      if (!b.is_number()) return wrong_type("logit_bias", "an object of numbers", b);
      const double d = b.get<double>();
      if (!(d >= -100 && d <= 100))
        return bad("Invalid 'logit_bias' value for token " + k + ": must be in [-100, 100].", "logit_bias", 400,
                   "invalid_value");
      s->logit_bias.push_back({(int32_t)id, d <= -100 ? -INFINITY : (float)d});
    }
  }
  return std::nullopt;
}

Err parse_stream(const json& obj, bool* stream, bool* include_usage) {
  if (auto e = get_bool(obj, "stream", stream)) return e;
  if (const json* v = field(obj, "stream_options")) {
    if (!v->is_object()) return wrong_type("stream_options", "an object", *v);
    if (!*stream) return bad("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options");
    if (auto e = get_bool(*v, "include_usage", include_usage)) {
      e->param = "stream_options.include_usage";
      return e;
    }
  }
  return std::nullopt;
}

Err parse_model(const json& obj, std::string* model) { return get_string(obj, "model", model); }

// A token array: integers in [0, n_vocab).
Err parse_tokens(const json& arr, const ApiLimits& lim, const char* param, std::vector<int32_t>* out) {
  for (const auto& t : arr) {
    if (!t.is_number_integer()) return wrong_type(param, "an array of integer token ids", t);
    const int64_t id = t.is_number_unsigned() ? (int64_t)std::min<uint64_t>(t.get<uint64_t>(), 1ull << 40) : t.get<int64_t>();
    if (id < 0 || id >= lim.n_vocab)
      return bad("Invalid token id " + std::to_string(id) + " in '" + param + "': the vocabulary has " +
                     std::to_string(lim.n_vocab) + " tokens.", param, 400, "invalid_value");
    out->push_back((int32_t)id);
  }
  return std::nullopt;
}

}  // namespace

std::optional<ApiError> parse_json_object(std::string_view body, const ApiLimits& limits, json* out) {
  if (body.empty()) return bad("The request body is empty; expected a JSON object.");
  if (!valid_utf8(body)) return bad("The request body is not valid UTF-8.", "", 400, "invalid_encoding");
  // Bound nesting before parsing so hostile inputs cannot exhaust the stack.
  int depth = 0;
  bool in_str = false, esc = false;
  for (char c : body) {
    if (in_str) {
      if (esc) esc = false;
      else if (c == '\\') esc = true;
      else if (c == '"') in_str = false;
    } else if (c == '"') {
      in_str = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limits.max_depth)
        return bad("The request JSON is nested deeper than " + std::to_string(limits.max_depth) + " levels.");
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    // Parse again with exceptions only to get the position for the message.
    std::string where;
    try {
      const json again = json::parse(body.begin(), body.end());
      (void)again;
    } catch (const json::parse_error& e) {
      where = std::string(": ") + e.what();
    } catch (...) {
    }
    return bad("We could not parse the JSON body of your request" + where, "", 400, "invalid_json");
  }
  if (!j.is_object()) return bad(std::string("The request body must be a JSON object, not ") + type_name(j) + ".");
  *out = std::move(j);
  return std::nullopt;
}

std::optional<ApiError> parse_chat_request(std::string_view body, const ApiLimits& lim, ChatRequest* out) {
  json j;
  if (auto e = parse_json_object(body, lim, &j)) return e;
  try {
    if (auto e = parse_model(j, &out->model)) return e;
    const json* msgs = field(j, "messages");
    if (!msgs) return bad("Missing required parameter: 'messages'.", "messages", 400, "missing_required_parameter");
    if (!msgs->is_array()) return wrong_type("messages", "an array", *msgs);
    if (msgs->empty()) return bad("'messages' must contain at least one message.", "messages", 400, "empty_array");
    out->messages = nlohmann::ordered_json::array();
    for (size_t i = 0; i < msgs->size(); ++i) {
      const json& m = (*msgs)[i];
      const std::string p = "messages[" + std::to_string(i) + "]";
      if (!m.is_object()) return wrong_type(p, "an object", m);
      const json* role = field(m, "role");
      if (!role) return bad("Missing required parameter: '" + p + ".role'.", p + ".role", 400, "missing_required_parameter");
      if (!role->is_string()) return wrong_type(p + ".role", "a string", *role);
      std::string r = role->get<std::string>();
      if (r != "system" && r != "developer" && r != "user" && r != "assistant" && r != "tool" && r != "function")
        return bad("Invalid value for '" + p + ".role': '" + r +
                       "'. Supported values are: 'system', 'developer', 'user', 'assistant', 'tool' and 'function'.",
                   p + ".role", 400, "invalid_value");
      if (r == "developer") r = "system";  // chat templates know "system"
      nlohmann::ordered_json nm = nlohmann::ordered_json::object();
      nm["role"] = r;
      const json* content = field(m, "content");
      std::string text;
      if (!content) {
        if (r != "assistant")
          return bad("Missing required parameter: '" + p + ".content'.", p + ".content", 400, "missing_required_parameter");
      } else if (content->is_string()) {
        text = content->get<std::string>();
      } else if (content->is_array()) {
        for (size_t k = 0; k < content->size(); ++k) {
          const json& part = (*content)[k];
          const std::string pp = p + ".content[" + std::to_string(k) + "]";
          if (!part.is_object()) return wrong_type(pp, "an object", part);
          const json* type = field(part, "type");
          if (!type || !type->is_string())
            return bad("Missing or invalid '" + pp + ".type'.", pp + ".type", 400, "invalid_value");
          const std::string t = type->get<std::string>();
          if (t == "image_url") {
            // The image goes where the part is: an image marker in the text (runtime/multimodal.h),
            // its URL kept in order for the handler to decode.
            const json* iu = field(part, "image_url");
            const json* url = iu && iu->is_object() ? field(*iu, "url") : iu;
            if (!url || !url->is_string())
              return bad("Missing or invalid '" + pp + ".image_url.url': expected a string (a data: URL).",
                         pp + ".image_url.url", 400, "invalid_value");
            if (r != "user")
              return bad("Images are only accepted in user messages.", pp + ".type", 400, "unsupported_value");
            out->image_urls.push_back(url->get<std::string>());
            text += "<__media__>";
            continue;
          }
          if (t != "text")
            return bad("Content parts of type '" + t + "' are not supported; only 'text' and 'image_url'.",
                       pp + ".type", 400, "unsupported_value");
          const json* tx = field(part, "text");
          if (!tx) return bad("Missing required parameter: '" + pp + ".text'.", pp + ".text", 400, "missing_required_parameter");
          if (!tx->is_string()) return wrong_type(pp + ".text", "a string", *tx);
          text += tx->get<std::string>();
        }
      } else {
        return wrong_type(p + ".content", "a string or an array of content parts", *content);
      }
      nm["content"] = text;
      if (const json* name = field(m, "name")) {
        if (!name->is_string()) return wrong_type(p + ".name", "a string", *name);
        nm["name"] = name->get<std::string>();
      }
      if (const json* tc = field(m, "tool_calls")) {
        if (!tc->is_array()) return wrong_type(p + ".tool_calls", "an array", *tc);
        nm["tool_calls"] = nlohmann::ordered_json::parse(tc->dump());
        // OpenAI sends arguments as JSON text; chat templates (Hugging Face's convention) expect
        // the object, and iterate or tojson it.
        for (auto& call : nm["tool_calls"]) {
          if (!call.is_object() || !call.contains("function") || !call["function"].is_object()) continue;
          auto& fn = call["function"];
          if (fn.contains("arguments") && fn["arguments"].is_string()) {
            auto obj = nlohmann::ordered_json::parse(fn["arguments"].get<std::string>(), nullptr, false);
            if (!obj.is_discarded() && obj.is_object()) fn["arguments"] = std::move(obj);
          }
        }
      }
      for (const char* rk : {"reasoning_content", "reasoning"}) {  // earlier thinking, for templates that render it
        const json* rc = field(m, rk);
        if (!rc) continue;
        if (!rc->is_string()) return wrong_type(p + "." + rk, "a string", *rc);
        nm["reasoning_content"] = rc->get<std::string>();
      }
      if (const json* id = field(m, "tool_call_id")) {
        if (!id->is_string()) return wrong_type(p + ".tool_call_id", "a string", *id);
        nm["tool_call_id"] = id->get<std::string>();
      }
      out->messages.push_back(std::move(nm));
    }
    if (const json* tools = field(j, "tools")) {
      if (!tools->is_array()) return wrong_type("tools", "an array", *tools);
      for (const auto& t : *tools)
        if (!t.is_object()) return wrong_type("tools", "an array of objects", t);
      if (!tools->empty()) out->tools = nlohmann::ordered_json::parse(tools->dump());
    }
    if (const json* tc = field(j, "tool_choice")) {
      if (tc->is_string()) {
        const std::string v = tc->get<std::string>();
        if (v != "none" && v != "auto" && v != "required")
          return bad("'tool_choice' must be 'none', 'auto', 'required' or a function object (got '" + v + "').", "tool_choice");
        out->tool_choice = v;
      } else {
        const json* fn = field(*tc, "function");
        const json* nm = fn && fn->is_object() ? field(*fn, "name") : nullptr;
        if (!nm || !nm->is_string())
          return bad("'tool_choice' as an object must be {\"type\": \"function\", \"function\": {\"name\": ...}}.", "tool_choice");
        out->tool_choice = "function";
        out->tool_choice_name = nm->get<std::string>();
      }
    }
    if (auto e = get_bool(j, "parallel_tool_calls", &out->parallel_tool_calls)) return e;
    if (const json* rf = field(j, "response_format")) {
      if (!rf->is_object()) return wrong_type("response_format", "an object", *rf);
      const json* t = field(*rf, "type");
      if (!t || !t->is_string()) return bad("Missing or invalid 'response_format.type'.", "response_format.type");
      const std::string type = t->get<std::string>();
      if (type == "json_schema") {
        const json* js = field(*rf, "json_schema");
        if (!js || !js->is_object())
          return bad("'response_format.json_schema' must be an object with the schema.", "response_format.json_schema");
        if (const json* nm = field(*js, "name"); nm && !nm->is_string())
          return wrong_type("response_format.json_schema.name", "a string", *nm);
        if (const json* st = field(*js, "strict"); st && !st->is_boolean() && !st->is_null())
          return wrong_type("response_format.json_schema.strict", "a boolean", *st);
        const json* sc = field(*js, "schema");
        if (sc && !sc->is_object() && !sc->is_boolean())
          return wrong_type("response_format.json_schema.schema", "an object", *sc);
        out->json_schema = sc ? *sc : json{{"type", "object"}};
      } else if (type != "text" && type != "json_object") {
        return bad("response_format type '" + type + "' is not supported; use 'text', 'json_object' or 'json_schema'.",
                   "response_format.type", 400, "unsupported_value");
      }
      out->response_format = type;
    }
    if (auto e = parse_sampling(j, lim, false, &out->sampling)) return e;
    if (auto e = parse_stream(j, &out->stream, &out->include_usage)) return e;
    if (auto e = get_bool(j, "logprobs", &out->logprobs)) return e;
    std::optional<int64_t> top;
    if (auto e = get_int(j, "top_logprobs", 0, 20, &top)) return e;
    if (top) {
      if (!out->logprobs) return bad("'top_logprobs' requires 'logprobs' to be true.", "top_logprobs");
      out->top_logprobs = (int)*top;
    }
  } catch (const std::exception& ex) {  // defensive: a json accessor we did not guard
    return bad(std::string("Invalid request: ") + ex.what());
  }
  return std::nullopt;
}

std::optional<ApiError> parse_completion_request(std::string_view body, const ApiLimits& lim, CompletionRequest* out) {
  json j;
  if (auto e = parse_json_object(body, lim, &j)) return e;
  try {
    if (auto e = parse_model(j, &out->model)) return e;
    const json* p = field(j, "prompt");
    if (!p) return bad("Missing required parameter: 'prompt'.", "prompt", 400, "missing_required_parameter");
    const json* one = p;
    if (p->is_array() && !p->empty() && (p->front().is_string() || p->front().is_array())) {
      if (p->size() != 1)
        return bad("Batched prompts are not supported; send one prompt per request.", "prompt", 400, "unsupported_value");
      one = &p->front();
    }
    if (one->is_string()) {
      out->prompt_text = one->get<std::string>();
    } else if (one->is_array()) {
      if (one->empty()) return bad("'prompt' must not be an empty token array.", "prompt", 400, "invalid_value");
      out->prompt_is_tokens = true;
      if (auto e = parse_tokens(*one, lim, "prompt", &out->prompt_tokens)) return e;
    } else {
      return wrong_type("prompt", "a string, an array of strings or an array of tokens", *one);
    }
    if (auto e = get_bool(j, "echo", &out->echo)) return e;
    std::optional<int64_t> lp;
    if (auto e = get_int(j, "logprobs", 0, 5, &lp)) return e;
    if (lp) out->logprobs = (int)*lp;
    if (auto e = parse_sampling(j, lim, out->echo, &out->sampling)) return e;
    if (auto e = parse_stream(j, &out->stream, &out->include_usage)) return e;
    if (out->echo && out->stream && out->logprobs >= 0)
      return bad("'echo' with 'logprobs' is not supported when streaming.", "echo", 400, "unsupported_value");
  } catch (const std::exception& ex) {
    return bad(std::string("Invalid request: ") + ex.what());
  }
  return std::nullopt;
}

std::optional<ApiError> parse_embedding_request(std::string_view body, const ApiLimits& lim, EmbeddingRequest* out) {
  json j;
  if (auto e = parse_json_object(body, lim, &j)) return e;
  try {
    if (auto e = parse_model(j, &out->model)) return e;
    std::string user;
    if (auto e = get_string(j, "user", &user)) return e;  // accepted, type-checked, unused
    const json* in = field(j, "input");
    if (!in) return bad("Missing required parameter: 'input'.", "input", 400, "missing_required_parameter");
    if (in->is_string()) {
      if (in->get<std::string>().empty()) return bad("'input' must not be an empty string.", "input", 400, "invalid_value");
      out->texts.push_back(in->get<std::string>());
    } else if (in->is_array()) {
      if (in->empty()) return bad("'input' must not be an empty array.", "input", 400, "invalid_value");
      if (in->size() > 2048) return bad("'input' has more than 2048 entries.", "input", 400, "invalid_value");
      if (in->front().is_number()) {
        out->inputs_are_tokens = true;
        out->token_inputs.emplace_back();
        if (auto e = parse_tokens(*in, lim, "input", &out->token_inputs.back())) return e;
      } else if (in->front().is_string()) {
        for (const auto& s : *in) {
          if (!s.is_string()) return wrong_type("input", "an array of strings", s);
          if (s.get<std::string>().empty()) return bad("'input' must not contain empty strings.", "input", 400, "invalid_value");
          out->texts.push_back(s.get<std::string>());
        }
      } else if (in->front().is_array()) {
        out->inputs_are_tokens = true;
        for (const auto& a : *in) {
          if (!a.is_array() || a.empty()) return wrong_type("input", "an array of non-empty token arrays", a);
          out->token_inputs.emplace_back();
          if (auto e = parse_tokens(a, lim, "input", &out->token_inputs.back())) return e;
        }
      } else {
        return wrong_type("input", "a string, an array of strings or token arrays", in->front());
      }
    } else {
      return wrong_type("input", "a string or an array", *in);
    }
    std::string fmt = "float";
    if (auto e = get_string(j, "encoding_format", &fmt)) return e;
    if (fmt != "float" && fmt != "base64")
      return bad("Invalid 'encoding_format': '" + fmt + "'; use 'float' or 'base64'.", "encoding_format", 400,
                 "invalid_value");
    out->base64 = fmt == "base64";
    if (const json* d = field(j, "dimensions")) {
      if (!d->is_number_integer()) return wrong_type("dimensions", "an integer", *d);
      return bad("'dimensions' is not supported: this model's embeddings have a fixed size.", "dimensions", 400,
                 "unsupported_value");
    }
  } catch (const std::exception& ex) {
    return bad(std::string("Invalid request: ") + ex.what());
  }
  return std::nullopt;
}

}  // namespace modu::server
