// Helpers shared by the Messages and Responses tests (api_messages_test.cpp,
// api_responses_test.cpp): limits, SSE parsing and toolcall::Delta builders.
#pragma once

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "modu/server/api_compat.h"

namespace modu::server::compat_test {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

inline ApiLimits limits() {
  ApiLimits l;
  l.n_ctx = 512;
  l.n_vocab = 1000;
  return l;
}

// One parsed SSE event: the "event:" name and the JSON of its "data:" line.
struct Sse {
  std::string name;
  json data;
};

// Splits "event: NAME\ndata: JSON\n\n" records; fails the test on anything else.
inline std::vector<Sse> parse_sse(const std::string& text) {
  std::vector<Sse> out;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t end = text.find("\n\n", pos);
    EXPECT_NE(end, std::string::npos) << "unterminated event at " << pos << ": " << text.substr(pos);
    if (end == std::string::npos) break;
    const std::string rec = text.substr(pos, end - pos);
    pos = end + 2;
    const size_t nl = rec.find('\n');
    EXPECT_NE(nl, std::string::npos) << rec;
    if (nl == std::string::npos) continue;
    const std::string l1 = rec.substr(0, nl), l2 = rec.substr(nl + 1);
    EXPECT_EQ(l1.rfind("event: ", 0), 0u) << rec;
    EXPECT_EQ(l2.rfind("data: ", 0), 0u) << rec;
    Sse e;
    e.name = l1.substr(7);
    e.data = json::parse(l2.substr(6), nullptr, false);
    EXPECT_FALSE(e.data.is_discarded()) << l2;
    out.push_back(std::move(e));
  }
  return out;
}

inline std::vector<std::string> names(const std::vector<Sse>& ev) {
  std::vector<std::string> n;
  for (const auto& e : ev) n.push_back(e.name);
  return n;
}

inline toolcall::Delta content_delta(const std::string& s) {
  toolcall::Delta d;
  d.content = s;
  return d;
}
inline toolcall::Delta reasoning_delta(const std::string& s) {
  toolcall::Delta d;
  d.reasoning = s;
  return d;
}
inline toolcall::Delta call_delta(int index, const std::string& id, const std::string& name, const std::string& args) {
  toolcall::Delta d;
  toolcall::CallDelta c;
  c.index = index;
  c.id = id;
  c.name = name;
  c.arguments = args;
  d.calls.push_back(c);
  return d;
}

// =========================================================================================================
// Anthropic Messages: requests


// A malformed request and the parameter its error must name.
struct BadCase {
  const char* name;
  std::string body;
  const char* param;  // expected ApiError::param ("" for none)
};

}  // namespace modu::server::compat_test
