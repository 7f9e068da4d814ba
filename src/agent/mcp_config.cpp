// MCP server configuration: the common `mcpServers` JSON file and the --mcp flag.
#include <fstream>
#include <sstream>

#include "modu/agent/mcp.h"

namespace modu::agent {

using json = nlohmann::json;

Result<std::vector<McpServerConfig>> parse_mcp_config(const json& j) {
  if (!j.is_object() || !j.contains("mcpServers") || !j["mcpServers"].is_object())
    return invalid_argument("the MCP configuration must be an object with an \"mcpServers\" object");
  std::vector<McpServerConfig> out;
  for (const auto& [name, s] : j["mcpServers"].items()) {
    const std::string where = "mcpServers." + name;
    if (!s.is_object()) return invalid_argument(where + " must be an object");
    McpServerConfig c;
    c.name = name;
    auto str = [&](const char* k, std::string* v) -> Status {
      if (!s.contains(k)) return Status::Ok();
      if (!s[k].is_string()) return invalid_argument(where + "." + k + " must be a string");
      *v = s[k].get<std::string>();
      return Status::Ok();
    };
    auto map = [&](const char* k, std::map<std::string, std::string>* m) -> Status {
      if (!s.contains(k)) return Status::Ok();
      if (!s[k].is_object()) return invalid_argument(where + "." + k + " must be an object of strings");
      for (const auto& [key, v] : s[k].items()) {
        if (!v.is_string()) return invalid_argument(where + "." + k + "." + key + " must be a string");
        (*m)[key] = v.get<std::string>();
      }
      return Status::Ok();
    };
    MODU_RETURN_IF_ERROR(str("command", &c.command));
    MODU_RETURN_IF_ERROR(str("url", &c.url));
    MODU_RETURN_IF_ERROR(str("cwd", &c.cwd));
    MODU_RETURN_IF_ERROR(map("env", &c.env));
    MODU_RETURN_IF_ERROR(map("headers", &c.headers));
    if (s.contains("args")) {
      if (!s["args"].is_array()) return invalid_argument(where + ".args must be an array of strings");
      for (const auto& a : s["args"]) {
        if (!a.is_string()) return invalid_argument(where + ".args must be an array of strings");
        c.args.push_back(a.get<std::string>());
      }
    }
    if (s.contains("timeout")) {  // seconds (some clients write milliseconds as "timeout_ms")
      if (!s["timeout"].is_number() || s["timeout"].get<double>() <= 0) return invalid_argument(where + ".timeout must be a positive number of seconds");
      c.timeout_s = s["timeout"].get<double>();
    }
    if (s.contains("sandbox")) {
      if (!s["sandbox"].is_boolean()) return invalid_argument(where + ".sandbox must be true or false");
      c.sandbox = s["sandbox"].get<bool>();
    }
    if (c.command.empty() == c.url.empty())
      return invalid_argument(where + " needs exactly one of \"command\" (stdio) or \"url\" (Streamable HTTP)");
    out.push_back(std::move(c));
  }
  return out;
}

Result<std::vector<McpServerConfig>> load_mcp_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error("cannot read the MCP configuration '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, false);
  if (j.is_discarded()) return invalid_argument(path + ": not valid JSON");
  auto r = parse_mcp_config(j);
  if (!r.ok()) return r.status().with_context(path);
  return r;
}

Result<McpServerConfig> parse_mcp_flag(const std::string& spec, const std::string& name) {
  McpServerConfig c;
  c.name = name;
  if (spec.rfind("http://", 0) == 0 || spec.rfind("https://", 0) == 0) {
    c.url = spec;
    return c;
  }
  // Shell-like words: whitespace separates, quotes group, backslash escapes.
  std::vector<std::string> words;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < spec.size(); ++i) {
    const char ch = spec[i];
    if (quote) {
      if (ch == quote) quote = 0;
      else if (ch == '\\' && quote == '"' && i + 1 < spec.size()) cur += spec[++i];
      else cur += ch;
    } else if (ch == '"' || ch == '\'') {
      quote = ch;
      in_word = true;
    } else if (ch == '\\' && i + 1 < spec.size()) {
      cur += spec[++i];
      in_word = true;
    } else if (ch == ' ' || ch == '\t' || ch == '\n') {
      if (in_word) words.push_back(cur);
      cur.clear();
      in_word = false;
    } else {
      cur += ch;
      in_word = true;
    }
  }
  if (quote) return invalid_argument("--mcp \"" + spec + "\": unbalanced quote");
  if (in_word) words.push_back(cur);
  if (words.empty()) return invalid_argument("--mcp needs a command line or an http(s):// URL");
  c.command = words[0];
  c.args.assign(words.begin() + 1, words.end());
  return c;
}

}  // namespace modu::agent
