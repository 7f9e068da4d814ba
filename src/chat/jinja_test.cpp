// Unit tests for the Jinja engine: whitespace control, loops, scoping, filters, tests, Python value
// formatting, slicing, macros, errors with positions. Expected strings come from Python Jinja2.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "modu/chat/chat_template.h"
#include "modu/chat/jinja.h"

namespace {

using nlohmann::ordered_json;

// Renders `src` with `ctx`; returns the output, or "ERR: <message>" on failure.
std::string R(std::string_view src, const ordered_json& ctx = ordered_json::object()) {
  auto t = modu::jinja::Template::parse(src);
  if (!t.ok()) return "ERR: " + t.status().message();
  modu::jinja::RenderOptions opts;
  opts.now = std::chrono::system_clock::from_time_t(1768469400);  // 2026-01-15T09:30:00Z
  auto r = t->render(ctx, opts);
  if (!r.ok()) return "ERR: " + r.status().message();
  return *r;
}

TEST(Jinja, PlainText) { EXPECT_EQ(R("hello"), "hello"); }

}  // namespace
