// Test support for the round-trip test and the fuzzer: the model's part of an assistant turn a
// chat template rendered, and whether the model wrote it inside a reasoning block the prompt
// opened.
#pragma once

#include <string>

#include "modu/toolcall/toolcall.h"

namespace modu::toolcall::testing {

struct ModelTurn {
  std::string output;  // what the model would have generated
  bool reasoning_open = false;
};

// `prompt`: the conversation before the turn with the generation prompt; `full`: the conversation
// including the turn. The turn is what follows the part both share, or, when they part inside a
// marker ("<think>" against "</think>": the generation prompt opens a block the history form
// leaves out), what follows that marker's start.
inline ModelTurn model_turn(const std::string& prompt, const std::string& full, const ReasoningStyle& rs) {
  size_t k = 0;
  while (k < prompt.size() && k < full.size() && prompt[k] == full[k]) ++k;
  if (k < prompt.size())
    for (size_t b = k; b + 24 > k && b > 0; --b) {
      const char c = full[b - 1];
      if (c == '>' || c == ']' || c == '\n') break;
      if (c == '<' || c == '[') {
        k = b - 1;
        break;
      }
    }
  ModelTurn t;
  t.output = full.substr(k);
  // Open when the turn closes a block it did not open (the generation prompt opened it), or the
  // shared prompt ends with an open marker and the turn closes it. (A turn that never closes the
  // block is the template's history form, not thinking: Nemotron renders "<think>\n" + content.)
  const std::string p = prompt.substr(0, k);
  const size_t e = p.find_last_not_of(" \n");
  const bool closes = !rs.close.empty() && t.output.find(rs.close) != std::string::npos &&
                      t.output.find(rs.open) > t.output.find(rs.close);
  t.reasoning_open = closes || (!rs.open.empty() && e != std::string::npos && p.substr(0, e + 1).ends_with(rs.open) &&
                                t.output.find(rs.close) != std::string::npos);
  return t;
}

}  // namespace modu::toolcall::testing
