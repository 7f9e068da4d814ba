// Workspace: the folder the built-in tools may touch, and the path resolution that keeps them in it.
#include "modu/agent/workspace.h"

namespace modu::agent {

namespace fs = std::filesystem;

namespace {

bool inside(const fs::path& p, const fs::path& dir) {
  auto pi = p.begin();
  for (auto di = dir.begin(); di != dir.end(); ++di, ++pi) {
    if (di->empty()) continue;
    if (pi == p.end() || *pi != *di) return false;
  }
  return true;
}

}  // namespace

Result<Workspace> Workspace::open(const std::string& dir) {
  std::error_code ec;
  fs::path p = fs::canonical(dir.empty() ? "." : dir, ec);
  if (ec) return not_found("workspace folder " + dir + " does not exist (" + ec.message() + ")");
  if (!fs::is_directory(p, ec)) return invalid_argument("workspace " + dir + " is not a folder");
  Workspace ws;
  ws.root_ = p;
  return ws;
}

Result<fs::path> Workspace::resolve(const std::string& rel, bool for_write) const {
  const std::string where = " (workspace " + root_.string() + ")";
  if (rel.find('\0') != std::string::npos) return invalid_argument("path contains a NUL byte" + where);
  fs::path p(rel.empty() ? "." : rel);
  for (const auto& c : p)
    if (c == "..") return invalid_argument("path '" + rel + "' uses '..': give a path inside the workspace" + where);
  fs::path full = (p.is_absolute() ? p : root_ / p).lexically_normal();
  if (full.has_parent_path() && full.filename().empty()) full = full.parent_path();  // "dir/"
  if (!inside(full, root_)) return invalid_argument("path '" + rel + "' is outside the workspace" + where);
  std::error_code ec;
  if (!for_write) {
    fs::path real = fs::canonical(full, ec);
    if (ec) return not_found("path '" + rel + "' does not exist in the workspace" + where);
    if (!inside(real, root_))
      return invalid_argument("path '" + rel + "' leads outside the workspace through a symlink (to " +
                              real.string() + ")" + where);
    return real;
  }
  if (full == root_) return invalid_argument("path '" + rel + "' is the workspace folder itself, not a file" + where);
  fs::path parent = fs::weakly_canonical(full.parent_path(), ec);
  if (ec) return invalid_argument("path '" + rel + "': cannot resolve its folder (" + ec.message() + ")" + where);
  if (!inside(parent, root_))
    return invalid_argument("path '" + rel + "' leads outside the workspace through a symlink (to " +
                            parent.string() + ")" + where);
  fs::path real = parent / full.filename();
  if (fs::is_symlink(fs::symlink_status(real, ec))) {
    fs::path target = fs::canonical(real, ec);
    if (ec)
      return invalid_argument("path '" + rel + "' is a symlink to a missing file (" +
                              fs::read_symlink(real, ec).string() + "); not following it" + where);
    if (!inside(target, root_))
      return invalid_argument("path '" + rel + "' is a symlink that leads outside the workspace (to " +
                              target.string() + ")" + where);
    real = target;
  }
  return real;
}

}  // namespace modu::agent
