// Built-in tools: read_file, write_file, list_dir (confined to the workspace), run_command (in the
// sandbox) and fetch_url (HTTP GET from this process). Failures are error results, never throws.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>

#include <httplib.h>

#include "modu/agent/workspace.h"

namespace modu::agent {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr size_t kDefaultReadBytes = 256 * 1024;
constexpr size_t kMaxReadBytes = 16 << 20;
constexpr size_t kMaxFetchBytes = 1 << 20;
constexpr size_t kMaxListEntries = 1000;
const char* const kAll[] = {"read_file", "write_file", "list_dir", "run_command", "fetch_url"};

ToolResult error(std::string text) { return ToolResult{true, std::move(text), nullptr, {}}; }

// Tool output goes into JSON messages: replace invalid UTF-8 with U+FFFD.
std::string valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) >> 6) == 2;
    if (ok && len == 2 && c < 0xC2) ok = false;  // overlong
    if (ok && len == 3) {
      unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0)) ok = false;  // overlong, surrogate
    }
    if (ok && len == 4) {
      unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      if ((c == 0xF0 && c1 < 0x90) || c > 0xF4 || (c == 0xF4 && c1 >= 0x90)) ok = false;
    }
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

// Reads args[key] as a string; `required` missing or a wrong type gives an error text.
bool get_string(const json& args, const char* key, bool required, std::string* out, std::string* err) {
  if (!args.contains(key) || args[key].is_null()) {
    if (required) *err = std::string("missing required argument \"") + key + "\"";
    return !required;
  }
  if (!args[key].is_string()) {
    *err = std::string("argument \"") + key + "\" must be a string, got " + args[key].dump();
    return false;
  }
  *out = args[key].get<std::string>();
  return true;
}

bool get_number(const json& args, const char* key, double* out, std::string* err) {
  if (!args.contains(key) || args[key].is_null()) return true;
  if (!args[key].is_number() || args[key].get<double>() <= 0) {
    *err = std::string("argument \"") + key + "\" must be a positive number, got " + args[key].dump();
    return false;
  }
  *out = args[key].get<double>();
  return true;
}

ToolResult read_file(const json& args, const Workspace& ws) {
  std::string path, err;
  double max_bytes = kDefaultReadBytes;
  if (!get_string(args, "path", true, &path, &err) || !get_number(args, "max_bytes", &max_bytes, &err))
    return error("read_file: " + err);
  auto real = ws.resolve(path, false);
  if (!real.ok()) return error("read_file: " + real.status().message());
  std::error_code ec;
  if (fs::is_directory(*real, ec)) return error("read_file: '" + path + "' is a folder; use list_dir");
  int fd = ::open(real->c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return error("read_file: cannot open '" + path + "': " + std::strerror(errno));
  size_t cap = std::min(static_cast<size_t>(max_bytes), kMaxReadBytes);
  std::string data(cap + 1, '\0');
  size_t got = 0;
  while (got < data.size()) {
    ssize_t r = ::read(fd, data.data() + got, data.size() - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      ::close(fd);
      return error("read_file: cannot read '" + path + "': " + std::strerror(e));
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  ::close(fd);
  bool truncated = got > cap;
  data.resize(std::min(got, cap));
  uintmax_t size = fs::file_size(*real, ec);
  if (ec) size = data.size();
  if (data.find('\0') != std::string::npos)
    return ToolResult{false, "'" + path + "' is a binary file (" + std::to_string(size) + " bytes); not shown",
                      json{{"path", path}, {"bytes", size}, {"binary", true}}, {}};
  std::string text = valid_utf8(data);
  if (truncated)
    text += "\n[truncated: showed the first " + std::to_string(cap) + " of " + std::to_string(size) +
            " bytes; pass a larger max_bytes to see more]";
  return ToolResult{false, std::move(text), json{{"path", path}, {"bytes", size}, {"truncated", truncated}}, {}};
}

ToolResult write_file(const json& args, const Workspace& ws) {
  std::string path, content, err;
  if (!get_string(args, "path", true, &path, &err) || !get_string(args, "content", true, &content, &err))
    return error("write_file: " + err);
  auto real = ws.resolve(path, true);
  if (!real.ok()) return error("write_file: " + real.status().message());
  std::error_code ec;
  fs::create_directories(real->parent_path(), ec);
  if (ec) return error("write_file: cannot create the folder for '" + path + "': " + ec.message());
  // The parent was created inside the workspace; re-check in case of a race with a symlink.
  auto again = ws.resolve(path, true);
  if (!again.ok() || *again != *real) return error("write_file: '" + path + "' changed while writing; not written");
  int fd = ::open(real->c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return error("write_file: cannot open '" + path + "' for writing: " + std::strerror(errno));
  std::string_view rest = content;
  while (!rest.empty()) {
    ssize_t w = ::write(fd, rest.data(), rest.size());
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      int e = errno;
      ::close(fd);
      return error("write_file: writing '" + path + "' failed: " + std::strerror(e));
    }
    rest.remove_prefix(static_cast<size_t>(w));
  }
  ::close(fd);
  return ToolResult{false, "wrote " + std::to_string(content.size()) + " bytes to " + path,
                    json{{"path", path}, {"bytes", content.size()}}, {}};
}

ToolResult list_dir(const json& args, const Workspace& ws) {
  std::string path = ".", err;
  if (!get_string(args, "path", false, &path, &err)) return error("list_dir: " + err);
  auto real = ws.resolve(path, false);
  if (!real.ok()) return error("list_dir: " + real.status().message());
  std::error_code ec;
  if (!fs::is_directory(*real, ec)) return error("list_dir: '" + path + "' is not a folder");
  std::vector<json> entries;
  for (fs::directory_iterator it(*real, ec), end; !ec && it != end; it.increment(ec)) {
    const auto& e = *it;
    std::error_code e2;
    json j{{"name", valid_utf8(e.path().filename().string())}};
    if (e.is_symlink(e2)) {
      j["type"] = "symlink";
      j["target"] = valid_utf8(fs::read_symlink(e.path(), e2).string());
    } else if (e.is_directory(e2)) {
      j["type"] = "dir";
    } else {
      j["type"] = "file";
      j["size"] = e.file_size(e2);
    }
    entries.push_back(std::move(j));
  }
  if (ec) return error("list_dir: cannot list '" + path + "': " + ec.message());
  std::sort(entries.begin(), entries.end(), [](const json& a, const json& b) { return a["name"] < b["name"]; });
  bool truncated = entries.size() > kMaxListEntries;
  const size_t total = entries.size();
  if (truncated) entries.resize(kMaxListEntries);
  std::string text;
  for (const auto& e : entries) {
    std::string name = e["name"];
    if (e["type"] == "dir") text += name + "/\n";
    else if (e["type"] == "symlink") text += name + " -> " + e["target"].get<std::string>() + "\n";
    else text += name + " (" + std::to_string(e["size"].get<uintmax_t>()) + " bytes)\n";
  }
  if (entries.empty()) text = "(empty folder)\n";
  if (truncated) text += "[showing " + std::to_string(kMaxListEntries) + " of " + std::to_string(total) + " entries]\n";
  return ToolResult{false, std::move(text), json{{"path", path}, {"entries", entries}, {"truncated", truncated}}, {}};
}

ToolResult run_command(const json& args, const Workspace& ws, const SandboxOptions& sb) {
  std::string command, err;
  double timeout = sb.wall_seconds;
  if (!get_string(args, "command", true, &command, &err) || !get_number(args, "timeout_s", &timeout, &err))
    return error("run_command: " + err);
  SandboxOptions o = sb;
  o.wall_seconds = std::min(timeout, sb.wall_seconds);  // the model may ask for less, never more
  auto r = run_sandboxed({"bash", "-c", command}, ws.root(), o);
  if (!r.ok()) return error("run_command: " + r.status().message());
  std::string text = valid_utf8(r->output);
  if (!text.empty() && text.back() != '\n') text += '\n';
  text += r->exit_code >= 0 ? "[exit code " + std::to_string(r->exit_code) + "]" : "[killed]";
  if (!r->note.empty()) text += " [" + r->note + "]";
  json s{{"exit_code", r->exit_code}, {"signal", r->signal},   {"timed_out", r->timed_out},
         {"output_truncated", r->output_truncated},           {"seconds", r->seconds},
         {"sandboxed", sb.enabled},                            {"note", r->note}};
  return ToolResult{r->exit_code != 0, std::move(text), std::move(s), {}};
}

ToolResult fetch_url(const json& args) {
  std::string url, err;
  if (!get_string(args, "url", true, &url, &err)) return error("fetch_url: " + err);
  const bool https = url.rfind("https://", 0) == 0;
  if (!https && url.rfind("http://", 0) != 0) return error("fetch_url: only http:// and https:// URLs are supported, got " + url);
#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
  if (https) return error("fetch_url: https is not supported by this build (cpp-httplib without OpenSSL)");
#endif
  size_t host_start = url.find("://") + 3;
  size_t path_start = url.find_first_of("/?#", host_start);
  std::string origin = url.substr(0, path_start);
  std::string path = path_start == std::string::npos ? "/" : url.substr(path_start);
  if (path[0] != '/') path = "/" + path;
  if (size_t h = path.find('#'); h != std::string::npos) path.resize(h);
  if (origin.size() <= host_start) return error("fetch_url: no host in " + url);

  httplib::Client cli(origin);
  if (!cli.is_valid()) return error("fetch_url: cannot use URL " + url);
  cli.set_connection_timeout(10, 0);
  cli.set_read_timeout(10, 0);
  cli.set_write_timeout(10, 0);
  cli.set_follow_location(false);
  int status = 0;
  std::string content_type, location, body;
  bool truncated = false, too_slow = false;
  const auto start = std::chrono::steady_clock::now();
  auto res = cli.Get(
      path,
      [&](const httplib::Response& r) {
        status = r.status;
        content_type = r.get_header_value("Content-Type");
        location = r.get_header_value("Location");
        return true;
      },
      [&](const char* data, size_t len) {
        if (std::chrono::steady_clock::now() - start > std::chrono::seconds(30)) {
          too_slow = true;
          return false;
        }
        size_t room = kMaxFetchBytes - body.size();
        body.append(data, std::min(room, len));
        if (len > room) {
          truncated = true;
          return false;
        }
        return true;
      });
  if (!res && !truncated) {
    if (too_slow) return error("fetch_url: " + url + " took longer than 30 s; stopped");
    return error("fetch_url: " + url + ": " + httplib::to_string(res.error()));
  }
  json s{{"url", url}, {"status", status}, {"content_type", content_type}, {"bytes", body.size()}, {"truncated", truncated}};
  if (status >= 300 && status < 400 && !location.empty()) {
    s["location"] = location;
    return ToolResult{false, "HTTP " + std::to_string(status) + ": redirect to " + location +
                                 " (not followed; fetch that URL if it is what you want)", s, {}};
  }
  std::string text = "HTTP " + std::to_string(status) + (content_type.empty() ? "" : " (" + content_type + ")") + "\n\n";
  if (body.find('\0') != std::string::npos) text += "[binary body of " + std::to_string(body.size()) + " bytes; not shown]";
  else text += valid_utf8(body);
  if (truncated) text += "\n[truncated at " + std::to_string(kMaxFetchBytes) + " bytes]";
  return ToolResult{status >= 400, std::move(text), std::move(s), {}};
}

json schema(json props, std::vector<std::string> required) {
  return json{{"type", "object"}, {"properties", std::move(props)}, {"required", std::move(required)},
              {"additionalProperties", false}};
}

}  // namespace

bool is_builtin_tool(const std::string& name) {
  return std::find(std::begin(kAll), std::end(kAll), name) != std::end(kAll);
}

std::vector<ToolSpec> builtin_tools(const std::vector<std::string>& enabled) {
  std::vector<ToolSpec> all = {
      {"read_file", "Read a text file in the workspace.",
       schema({{"path", {{"type", "string"}, {"description", "path relative to the workspace"}}},
               {"max_bytes", {{"type", "integer"}, {"minimum", 1}, {"description", "at most this many bytes (default 262144)"}}}},
              {"path"}),
       "builtin"},
      {"write_file", "Create or replace a file in the workspace (creates missing folders).",
       schema({{"path", {{"type", "string"}, {"description", "path relative to the workspace"}}},
               {"content", {{"type", "string"}, {"description", "the complete new contents"}}}},
              {"path", "content"}),
       "builtin"},
      {"list_dir", "List a folder in the workspace.",
       schema({{"path", {{"type", "string"}, {"description", "folder relative to the workspace (default: its root)"}}}}, {}),
       "builtin"},
      {"run_command",
       "Run a shell command (bash -c) in the workspace, in a sandbox: no network, only the workspace is writable.",
       schema({{"command", {{"type", "string"}, {"description", "the bash command line"}}},
               {"timeout_s", {{"type", "number"}, {"exclusiveMinimum", 0}, {"description", "stop it after this many seconds"}}}},
              {"command"}),
       "builtin"},
      {"fetch_url", "HTTP GET a URL and return the body (text, at most 1 MB; redirects are not followed).",
       schema({{"url", {{"type", "string"}, {"description", "http:// or https:// URL"}}}}, {"url"}), "builtin"},
  };
  if (enabled.empty()) return all;
  std::vector<ToolSpec> out;
  for (auto& t : all)
    if (std::find(enabled.begin(), enabled.end(), t.name) != enabled.end()) out.push_back(std::move(t));
  return out;
}

ToolResult run_builtin(const std::string& name, const json& args, const Workspace& ws, const SandboxOptions& sb) {
  if (!args.is_object()) return error(name + ": arguments must be a JSON object, got " + args.dump());
  try {
    if (name == "read_file") return read_file(args, ws);
    if (name == "write_file") return write_file(args, ws);
    if (name == "list_dir") return list_dir(args, ws);
    if (name == "run_command") return run_command(args, ws, sb);
    if (name == "fetch_url") return fetch_url(args);
  } catch (const std::exception& e) {  // std::filesystem / json / httplib surprises
    return error(name + ": failed: " + e.what());
  }
  return error("unknown built-in tool \"" + name + "\" (built-ins: read_file, write_file, list_dir, run_command, fetch_url)");
}

}  // namespace modu::agent
