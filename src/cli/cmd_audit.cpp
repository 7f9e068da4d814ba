// `modu audit verify LOG` (is the hash chain whole and are the checkpoints signed by the key?)
// and `modu audit show LOG` (records filtered by tenant, kind, endpoint and time).
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "common.h"
#include "modu/trust/audit_log.h"
#include "modu/trust/digest.h"

namespace modu::cli {

namespace {

struct AuditArgs {
  std::string log, pubkey, tenant, kind, endpoint, since, until;
  bool json = false;
};

int verify(const AuditArgs& a) {
  auto r = trust::verify_audit_log(a.log, a.pubkey);
  if (!r.ok()) return fail(r.status());
  if (a.json) {
    nlohmann::json issues = nlohmann::json::array();
    for (const auto& i : r->issues)
      issues.push_back({{"file", i.file}, {"line", i.line}, {"seq", i.seq}, {"error", i.error}, {"kind", i.kind}, {"message", i.message}});
    nlohmann::json out = {{"ok", r->ok()}, {"files", r->files}, {"records", r->records}, {"checkpoints", r->checkpoints},
                          {"first_seq", r->first_seq}, {"last_seq", r->last_seq}, {"last_signed_seq", r->last_signed_seq},
                          {"key_source", r->key_source}, {"issues", issues}};
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    for (const auto& i : r->issues) {
      std::printf("%s %s", i.error ? "TAMPERED" : "note", i.kind.c_str());
      if (i.line > 0) std::printf(" at %s:%lld", i.file.c_str(), (long long)i.line);
      std::printf(": %s\n", i.message.c_str());
    }
    std::printf("%s: %lld records in %lld file(s), seq %lld..%lld, %lld checkpoints, signed through seq %lld; key: %s\n",
                r->ok() ? "OK" : "FAILED", (long long)r->records, (long long)r->files, (long long)r->first_seq,
                (long long)r->last_seq, (long long)r->checkpoints, (long long)r->last_signed_seq,
                r->key_source.empty() ? "(none found)" : r->key_source.c_str());
  }
  return r->ok() ? 0 : 1;
}

int show(const AuditArgs& a) {
  trust::AuditFilter f;
  f.tenant = a.tenant;
  f.kind = a.kind;
  f.endpoint = a.endpoint;
  if (!a.since.empty()) {
    f.since = trust::parse_utc_iso8601(a.since);
    if (!f.since) return fail(invalid_argument("--since '" + a.since + "' is not a UTC time like 2026-12-06 or 2026-12-06T09:00:00Z"));
  }
  if (!a.until.empty()) {
    f.until = trust::parse_utc_iso8601(a.until);
    if (!f.until) return fail(invalid_argument("--until '" + a.until + "' is not a UTC time like 2026-12-06 or 2026-12-06T09:00:00Z"));
  }
  auto recs = trust::read_audit_log(a.log, f);
  if (!recs.ok()) return fail(recs.status());
  for (const auto& r : *recs) {
    if (a.json) {
      std::printf("%s\n", r.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      continue;
    }
    auto str = [&](const char* k) { return r.contains(k) && r[k].is_string() ? r[k].get<std::string>() : std::string("-"); };
    std::string what;
    if (r.contains("endpoint")) what = str("endpoint") + " " + (r.contains("status") ? r["status"].dump() : "");
    if (r.contains("tool")) what = str("tool") + (r.value("approved", false) ? " approved by " : " refused by ") + str("decided_by");
    if (r.contains("completion_tokens")) what += " tokens " + r["prompt_tokens"].dump() + "+" + r["completion_tokens"].dump();
    std::printf("%6lld %s %-10s %-12s %s\n", (long long)r.value("seq", (int64_t)-1), str("time").c_str(), str("kind").c_str(),
                str("tenant").c_str(), what.c_str());
  }
  if (!a.json) std::fprintf(stderr, "modu audit: %zu record(s)\n", recs->size());
  return 0;
}

}  // namespace

void add_audit_command(CLI::App& app, int& rc) {
  auto a = std::make_shared<AuditArgs>();
  CLI::App* c = app.add_subcommand("audit", "Check and read the tamper-evident audit log (modu serve / agent --audit-log)");
  c->require_subcommand(1);
  CLI::App* v = c->add_subcommand("verify", "Check the hash chain and signed checkpoints; names each edited, deleted, inserted or moved record");
  v->add_option("log", a->log, "The audit log (rotated files LOG.NNNNNN are read too)")->required();
  v->add_option("--pubkey", a->pubkey, "Trusted public key (PEM); default LOG.key.pub beside the log")->check(CLI::ExistingFile);
  v->add_flag("--json", a->json, "Report as JSON");
  v->callback([a, &rc] { rc = verify(*a); });
  CLI::App* s = c->add_subcommand("show", "Print records, filtered");
  s->add_option("log", a->log, "The audit log")->required();
  s->add_option("--tenant", a->tenant, "Only this tenant");
  s->add_option("--kind", a->kind, "Only this kind (request, action, agent_run, checkpoint, open, close, server, recovery)");
  s->add_option("--endpoint", a->endpoint, "Only this endpoint (e.g. /v1/chat/completions)");
  s->add_option("--since", a->since, "From this UTC time (2026-12-06 or 2026-12-06T09:00:00Z)");
  s->add_option("--until", a->until, "Up to this UTC time");
  s->add_flag("--json", a->json, "One JSON record per line");
  s->callback([a, &rc] { rc = show(*a); });
}

}  // namespace modu::cli
