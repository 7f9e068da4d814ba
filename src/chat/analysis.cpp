// AST analysis: which special names (varargs, kwargs, caller) a macro body reads, and jinja2's
// compile-time check that filters and tests outside conditionals exist.
#include "ast.h"
#include "builtins.h"

namespace modu::jinja {
namespace {

bool expr_reads(const Expr* e, const std::string& name) {
  if (!e) return false;
  if (e->kind == EK::Name && e->name == name) return true;
  if (expr_reads(e->a.get(), name) || expr_reads(e->b.get(), name) || expr_reads(e->c.get(), name) ||
      expr_reads(e->dyn_args.get(), name) || expr_reads(e->dyn_kwargs.get(), name))
    return true;
  for (const auto& i : e->items)
    if (expr_reads(i.get(), name)) return true;
  for (const auto& kv : e->kwargs)
    if (expr_reads(kv.second.get(), name)) return true;
  return false;
}

// jinja2 resolves filters and tests at compile time, except inside if-statements and inline
// if-expressions ("soft" frames), where an unknown name fails only when evaluated.
void check_names(const Expr* e, bool soft);
void check_names(const Body& body, bool soft);

void check_names(const Expr* e, bool soft) {
  if (!e) return;
  if (e->kind == EK::CondExpr) soft = true;
  if (!soft && ((e->kind == EK::Filter && !is_filter_name(e->name)) || (e->kind == EK::Test && !is_test_name(e->name)))) {
    JinjaError err("TemplateAssertionError",
                   std::string("No ") + (e->kind == EK::Filter ? "filter" : "test") + " named '" + e->name + "'.");
    err.line = e->line;
    err.col = e->col;
    throw err;
  }
  for (const Expr* c : {e->a.get(), e->b.get(), e->c.get(), e->dyn_args.get(), e->dyn_kwargs.get()}) check_names(c, soft);
  for (const auto& i : e->items) check_names(i.get(), soft);
  for (const auto& kv : e->kwargs) check_names(kv.second.get(), soft);
}

void check_names(const Body& body, bool soft) {
  for (const auto& n : body) {
    switch (n->kind) {
      case NK::If:
        for (const auto& [c, b] : n->branches) {
          check_names(c.get(), true);
          check_names(b, true);
        }
        check_names(n->else_body, true);
        break;
      case NK::For:
        check_names(n->expr.get(), soft);
        check_names(n->cond.get(), false);
        check_names(n->body, false);
        check_names(n->else_body, false);
        break;
      case NK::CallBlock:
        check_names(n->expr.get(), soft);
        for (const auto& d : n->defaults) check_names(d.get(), false);
        check_names(n->body, false);
        break;
      case NK::With:
        for (const auto& v : n->values) check_names(v.get(), soft);
        check_names(n->body, false);
        break;
      default:
        check_names(n->expr.get(), soft);
        check_names(n->filter.get(), n->kind == NK::Output || n->kind == NK::Set ? soft : false);
        for (const auto& d : n->defaults) check_names(d.get(), false);
        check_names(n->body, false);
    }
  }
}

}  // namespace

void check_filter_and_test_names(const Body& body) { check_names(body, false); }

bool body_reads(const Body& body, const std::string& name) {
  for (const auto& n : body) {
    if (expr_reads(n->expr.get(), name) || expr_reads(n->cond.get(), name) || expr_reads(n->filter.get(), name) ||
        body_reads(n->body, name) || body_reads(n->else_body, name))
      return true;
    for (const auto& [c, b] : n->branches)
      if (expr_reads(c.get(), name) || body_reads(b, name)) return true;
    for (const auto& d : n->defaults)
      if (expr_reads(d.get(), name)) return true;
    for (const auto& v : n->values)
      if (expr_reads(v.get(), name)) return true;
  }
  return false;
}

}  // namespace modu::jinja
