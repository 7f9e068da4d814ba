// The workspace folder the agent's built-in tools are confined to, and those tools
// (read_file, write_file, list_dir, run_command, fetch_url).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "modu/agent/sandbox.h"
#include "modu/agent/tool.h"
#include "modu/core/status.h"

namespace modu::agent {

class Workspace {
 public:
  // The folder must exist; root() is its canonical path.
  static Result<Workspace> open(const std::string& dir);
  const std::filesystem::path& root() const { return root_; }

  // Maps a path from the model (relative to the root, or absolute inside it) to a canonical path
  // inside the root. Rejects "..", absolute paths outside, and symlinks that lead outside. For
  // writes the file may not exist yet (its parent is resolved instead).
  Result<std::filesystem::path> resolve(const std::string& rel, bool for_write) const;

 private:
  std::filesystem::path root_;
};

// Specs of the enabled built-ins (all five when `enabled` is empty); unknown names are skipped.
//   read_file{path, max_bytes?}  write_file{path, content}  list_dir{path?}
//   run_command{command, timeout_s?}  fetch_url{url}
std::vector<ToolSpec> builtin_tools(const std::vector<std::string>& enabled);
bool is_builtin_tool(const std::string& name);

// Runs one built-in. Every failure (bad arguments, missing file, escaping path) is a ToolResult
// with is_error and a clear text. run_command runs `bash -c COMMAND` via run_sandboxed in the
// workspace; fetch_url runs in this process (http/https GET, 10 s timeouts, 1 MB body cap, no
// redirects followed) and is not sandboxed.
ToolResult run_builtin(const std::string& name, const nlohmann::json& args, const Workspace& ws,
                       const SandboxOptions& sb);

}  // namespace modu::agent
