// JSON-constrained generation: a byte-level pushdown recognizer for JSON values that match a subset
// of JSON Schema, and the token mask built on it, so that generated text is always a prefix of a
// matching value (OpenAI `response_format` json_object / json_schema).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "modu/core/status.h"
#include "modu/runtime/sampler.h"
#include "modu/tokenizer/tokenizer.h"

namespace modu {

// A compiled schema node. `types` is a bitmask of JsonType values the node accepts; a node with
// `literals` accepts exactly those serialized JSON values (enum / const).
enum JsonType : uint32_t {
  kJsonObject = 1, kJsonArray = 2, kJsonString = 4, kJsonNumber = 8, kJsonInteger = 16,
  kJsonBoolean = 32, kJsonNull = 64, kJsonAnyType = 127,
};
struct JsonSchemaNode {
  uint32_t types = kJsonAnyType;
  std::vector<std::string> literals;           // compact JSON texts (enum / const)
  std::vector<std::string> prop_names;         // object: JSON-escaped names, without quotes
  std::vector<const JsonSchemaNode*> prop_schemas;
  uint64_t required = 0;                       // bit i: prop_names[i] is required
  const JsonSchemaNode* additional = nullptr;  // schema of other keys; nullptr: none allowed
  const JsonSchemaNode* items = nullptr;       // array element schema (never nullptr for arrays)
  int64_t min_items = 0, max_items = -1;
  int64_t min_length = 0, max_length = -1;     // string length in code points
  // Discriminated union of objects (anyOf whose object alternatives share a property with a
  // distinct const in each): prop_names[0] is that property, which must come first; its value
  // (prop_schemas[0], the consts in order) selects alternatives[i] for the rest of the object.
  std::vector<const JsonSchemaNode*> alternatives;
};

class JsonConstraint {
 public:
  // Any JSON object (response_format {"type": "json_object"}).
  static JsonConstraint any_object();
  // A value matching `schema`. Supported: type (or a list of types), properties, required,
  // additionalProperties (bool or schema; without `properties` keys are free), items, minItems,
  // maxItems, minLength, maxLength, enum, const, local $ref (#/$defs/..., #/definitions/...), and
  // anyOf / oneOf whose alternatives have distinct types (e.g. Optional[X]) or are objects told
  // apart by a const property (a discriminated union; that property is then generated first). Annotations (title,
  // description, default, examples, format, minimum, maximum, ...) are accepted but not enforced.
  // Other keywords that would change what is valid (pattern, allOf, not, if/then/else,
  // patternProperties, ...) are rejected with an error naming the keyword and its path.
  static Result<JsonConstraint> from_schema(const nlohmann::json& schema);
  // The same constraint behind a fixed literal `prefix` (e.g. "<tool_call>\n" to force a tool call
  // in the Hermes convention): the prefix's bytes first, then the value.
  JsonConstraint with_prefix(std::string prefix) const;
  // Any one of `alts` (non-empty), e.g. the same arguments schema behind one prefix per function
  // name when a forced call writes the name outside the JSON. The text must continue at least one
  // alternative; once only one is left the constraint is that one.
  static JsonConstraint one_of(std::vector<JsonConstraint> alts);

  // Feeds bytes; false (and the state unchanged) if they cannot continue a matching value.
  bool accept(std::string_view bytes);
  bool allows(std::string_view bytes) const;
  bool done() const;                   // the value is complete: nothing more may follow
  bool can_end() const;                // done, or a number at the root that may end here
  bool in_free_string() const;         // inside a string with no length limit, not in an escape

  static constexpr int kMaxDepth = 32;      // nesting limit
  // Whitespace between tokens, as llama.cpp's JSON grammar allows it: one space, or a newline and
  // at most kMaxIndent spaces or tabs (compact and pretty-printed JSON, no runs of blank lines).
  static constexpr int kMaxIndent = 20;
  static constexpr int kMaxDigits = 24;     // digits in one number (18 for integer-only schemas)

 private:
  struct Frame {
    uint8_t kind = 0, st = 0, esc = 0;
    uint8_t u8 = 0, u8lo = 0x80, u8hi = 0xBF;  // string: UTF-8 continuation bytes still due, next byte's range
    bool free = false;               // key frame: keys outside prop_names allowed
    int16_t prop = -1;               // object: property whose value is being read (-1: additional)
    uint32_t pos = 0;                // literal / key: bytes matched so far; number: digits
    uint64_t mask = 0;               // literal / key: candidates still matching
    uint64_t seen = 0;               // object: properties already present
    int64_t count = 0;               // array items; string code points
    const JsonSchemaNode* node = nullptr;
    const std::vector<std::string>* lits = nullptr;  // literal candidates
  };
  bool feed(uint8_t c);
  bool feed_top(uint8_t c);
  bool take_ws(uint8_t c);
  bool start_value(const JsonSchemaNode* n, uint8_t c);
  void complete_value();
  void literal_done(const Frame& lit, int parent);
  bool push(const Frame& f);

  std::shared_ptr<const std::vector<std::unique_ptr<JsonSchemaNode>>> arena_;
  std::shared_ptr<const std::string> prefix_;  // literal bytes before the value (may be null)
  uint32_t prefix_pos_ = 0;
  std::array<Frame, kMaxDepth> stack_{};
  int depth_ = 0;
  int ws_run_ = 0;      // whitespace bytes since the last token
  bool ws_nl_ = false;  // ... the first of which was a newline
  bool done_ = false;
  std::vector<JsonConstraint> alts_;  // non-empty: a choice among these still matching (the rest is unused)
};

// The token side: which vocabulary entries may come next under a JsonConstraint.
class TokenPieces {
 public:
  // render_special: control tokens (other than end-of-generation) stand for their text, as in
  // requests whose output shows them (tool-call markers such as [TOOL_CALLS]).
  explicit TokenPieces(const Tokenizer& tok, bool render_special = false);
  const std::string& piece(int32_t id) const { return pieces_[(size_t)id]; }
  bool plain(int32_t id) const { return plain_[(size_t)id] != 0; }  // printable ASCII, no quote or backslash
  bool is_eog(int32_t id) const { return eog_[(size_t)id] != 0; }
  int32_t n_vocab() const { return (int32_t)pieces_.size(); }

 private:
  std::vector<std::string> pieces_;  // bytes a token adds to the text ("" for control tokens)
  std::vector<uint8_t> plain_, eog_;
};

// Whether token `id` may come next; end-of-generation tokens only when the value can end.
bool json_token_allowed(const JsonConstraint& c, const TokenPieces& p, int32_t id);
// Sets the logits of every token that may not come next to -infinity; returns how many remain.
int64_t json_mask_logits(const JsonConstraint& c, const TokenPieces& p, float* logits);
// The next token under c: the sampler's own pick if it can continue the value, otherwise a draw
// with every token that cannot masked (accepting an allowed first draw and otherwise drawing from
// the masked distribution gives each allowed token exactly its masked probability). logits has
// n_vocab entries (ids past the tokenizer's vocabulary are padding and never chosen); `scratch`
// is reused between calls. -1 if no token can continue.
int32_t sample_json(Sampler& sampler, const JsonConstraint& c, const TokenPieces& p, const float* logits,
                    int32_t n_vocab, std::vector<float>& scratch);

}  // namespace modu
