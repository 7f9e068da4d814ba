// Policy: parsing policy files and matching a tool call against their allow / ask / deny rules.
#include "modu/agent/policy.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <vector>

namespace modu::agent {

const char* decision_name(Decision d) {
  switch (d) {
    case Decision::kAllow: return "allow";
    case Decision::kAsk: return "ask";
    case Decision::kDeny: return "deny";
  }
  return "?";
}

namespace {

bool parse_decision(const std::string& s, Decision* d) {
  if (s == "allow") *d = Decision::kAllow;
  else if (s == "ask") *d = Decision::kAsk;
  else if (s == "deny") *d = Decision::kDeny;
  else return false;
  return true;
}

bool has_dotdot_segment(std::string_view s) {
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = s.find_first_of("/\\", i);
    if (j == std::string_view::npos) j = s.size();
    if (s.substr(i, j - i) == "..") return true;
    i = j + 1;
  }
  return false;
}

bool is_glob(const std::string& s) { return s.find_first_of("*?") != std::string::npos; }

}  // namespace

bool glob_match(std::string_view p, std::string_view t) {
  // Dynamic programming over pattern tokens from the end: cur[j] = tokens k.. match t[j..].
  // O(|tokens| * |t|) time, O(|t|) memory; no exponential backtracking.
  enum Kind { kLit, kOne, kStar, kStarStar };
  std::vector<std::pair<Kind, char>> tok;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '*') {
      size_t j = i;
      while (j < p.size() && p[j] == '*') ++j;
      tok.emplace_back(j - i >= 2 ? kStarStar : kStar, 0);
      i = j - 1;
    } else if (p[i] == '?') {
      tok.emplace_back(kOne, 0);
    } else {
      tok.emplace_back(kLit, p[i]);
    }
  }
  const size_t n = t.size();
  std::vector<char> next(n + 1, 0), cur(n + 1, 0);
  next[n] = 1;  // empty pattern matches only the empty rest
  for (size_t k = tok.size(); k-- > 0;) {
    const auto [kind, c] = tok[k];
    cur[n] = (kind == kStar || kind == kStarStar) ? next[n] : 0;
    for (size_t j = n; j-- > 0;) {
      switch (kind) {
        case kLit: cur[j] = t[j] == c && next[j + 1]; break;
        case kOne: cur[j] = t[j] != '/' && next[j + 1]; break;
        case kStar: cur[j] = next[j] || (t[j] != '/' && cur[j + 1]); break;
        case kStarStar: cur[j] = next[j] || cur[j + 1]; break;
      }
    }
    std::swap(cur, next);
  }
  return next[0] != 0;
}

Result<Policy> Policy::parse(const nlohmann::json& j) {
  if (!j.is_object()) return invalid_argument("policy: the top level must be a JSON object");
  Policy pol;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() != "default" && it.key() != "tools")
      return invalid_argument("policy: unknown key \"" + it.key() +
                              "\" (expected \"default\" and \"tools\")");
  }
  if (j.contains("default")) {
    const auto& d = j["default"];
    if (!d.is_string() || !parse_decision(d.get<std::string>(), &pol.default_))
      return invalid_argument("policy: \"default\" must be \"allow\", \"ask\" or \"deny\", got " +
                              d.dump());
  }
  if (j.contains("tools")) {
    const auto& tools = j["tools"];
    if (!tools.is_object()) return invalid_argument("policy: \"tools\" must be an object of tool name -> rules");
    for (auto it = tools.begin(); it != tools.end(); ++it) {
      const std::string where = "policy: tools[\"" + it.key() + "\"]";
      if (it.key().empty()) return invalid_argument("policy: tools has an empty tool name");
      if (!it.value().is_array())
        return invalid_argument(where + " must be an array of rules like {\"allow\": {\"path\": \"docs/**\"}}");
      Entry e;
      e.key = it.key();
      for (size_t i = 0; i < it.value().size(); ++i) {
        const auto& r = it.value()[i];
        const std::string rw = where + "[" + std::to_string(i) + "]";
        if (!r.is_object() || r.size() != 1)
          return invalid_argument(rw + " must be an object with exactly one of \"allow\", \"ask\", \"deny\"");
        Rule rule;
        if (!parse_decision(r.begin().key(), &rule.decision))
          return invalid_argument(rw + ": unknown decision \"" + r.begin().key() +
                                  "\" (expected \"allow\", \"ask\" or \"deny\")");
        const auto& args = r.begin().value();
        if (!args.is_object())
          return invalid_argument(rw + "." + r.begin().key() + " must be an object of argument -> glob");
        for (auto a = args.begin(); a != args.end(); ++a) {
          if (!a.value().is_string())
            return invalid_argument(rw + "." + r.begin().key() + "[\"" + a.key() +
                                    "\"] must be a glob string, got " + a.value().dump());
          rule.args.emplace_back(a.key(), a.value().get<std::string>());
        }
        e.rules.push_back(std::move(rule));
      }
      (is_glob(e.key) ? pol.globs_ : pol.exact_).push_back(std::move(e));
    }
  }
  // Most specific glob first: more literal characters, then longer, then by name (deterministic).
  auto literal = [](const std::string& s) {
    return std::count_if(s.begin(), s.end(), [](char c) { return c != '*' && c != '?'; });
  };
  std::stable_sort(pol.globs_.begin(), pol.globs_.end(), [&](const Entry& a, const Entry& b) {
    if (literal(a.key) != literal(b.key)) return literal(a.key) > literal(b.key);
    if (a.key.size() != b.key.size()) return a.key.size() > b.key.size();
    return a.key < b.key;
  });
  return pol;
}

Result<Policy> Policy::load(const std::string& path) {
  std::ifstream f(path);
  if (!f) return not_found("policy file " + path + " cannot be opened");
  std::stringstream ss;
  ss << f.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false,
                                           /*ignore_comments=*/true);
  if (j.is_discarded()) return corrupt("policy file " + path + " is not valid JSON");
  auto p = parse(j);
  if (!p.ok()) return p.status().with_context(path);
  return p;
}

Policy Policy::supervised() const {
  Policy p = *this;
  if (p.default_ == Decision::kAllow) p.default_ = Decision::kAsk;
  for (auto* entries : {&p.exact_, &p.globs_})
    for (auto& e : *entries)
      for (auto& r : e.rules)
        if (r.decision == Decision::kAllow) {
          r.decision = Decision::kAsk;
          r.supervised = true;
        }
  return p;
}

Policy Policy::ask_all() { return Policy(); }

Verdict Policy::check(const std::string& tool, const nlohmann::json& args) const {
  auto try_entry = [&](const Entry& e, Verdict* out) {
    for (size_t i = 0; i < e.rules.size(); ++i) {
      const Rule& r = e.rules[i];
      bool all = true;
      for (const auto& [name, glob] : r.args) {
        if (!args.is_object() || !args.contains(name)) { all = false; break; }
        const auto& v = args[name];
        std::string s = v.is_string() ? v.get<std::string>() : v.dump();
        if ((r.decision == Decision::kAllow || r.supervised) && has_dotdot_segment(s) && !has_dotdot_segment(glob)) {
          all = false;
          break;
        }
        if (!glob_match(glob, s)) { all = false; break; }
      }
      if (!all) continue;
      std::string desc = e.key + "[" + std::to_string(i) + "] " + decision_name(r.decision) + (r.supervised ? " (allow, supervised)" : "");
      for (const auto& [name, glob] : r.args) desc += " " + name + "=" + glob;
      *out = Verdict{r.decision, desc};
      return true;
    }
    return false;
  };
  Verdict v;
  for (const Entry& e : exact_)
    if (e.key == tool && try_entry(e, &v)) return v;
  for (const Entry& e : globs_)
    if (glob_match(e.key, tool) && try_entry(e, &v)) return v;
  return Verdict{default_, "default"};
}

}  // namespace modu::agent
