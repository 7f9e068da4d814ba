// JsonConstraint: JSON Schema (subset) -> node tree, and a byte-at-a-time pushdown recognizer over
// it whose state is a fixed array of frames (cheap to copy for trying a token's bytes).
#include "modu/runtime/json_constraint.h"

#include <cmath>
#include <map>

namespace modu {

namespace {

enum Kind : uint8_t { kValue, kObject, kArray, kString, kNumber, kLiteral, kKey };

const std::vector<std::string> kTrueFalse = {"true", "false"};
const std::vector<std::string> kNullLit = {"null"};

bool is_ws(uint8_t c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }
bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }
bool is_hex(uint8_t c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// The schema compiler: one arena of nodes; local $refs are compiled once (so recursive schemas
// become cyclic node graphs).
struct Compiler {
  const nlohmann::json& root;
  std::vector<std::unique_ptr<JsonSchemaNode>>& arena;
  std::map<std::string, const JsonSchemaNode*> refs;
  int depth = 0;  // compile() recursion, bounded so a hostile schema cannot exhaust the stack

  JsonSchemaNode* make() {
    arena.push_back(std::make_unique<JsonSchemaNode>());
    return arena.back().get();
  }
  static Status err(const std::string& path, const std::string& msg) {
    return invalid_argument("json_schema" + path + ": " + msg);
  }

  Result<const JsonSchemaNode*> any() {
    JsonSchemaNode* n = make();
    n->additional = n;
    n->items = n;
    return (const JsonSchemaNode*)n;
  }

  Result<const JsonSchemaNode*> ref(const std::string& r, const std::string& path) {
    if (auto it = refs.find(r); it != refs.end()) return it->second;
    const char* prefixes[] = {"#/$defs/", "#/definitions/"};
    for (const char* pre : prefixes) {
      const std::string p(pre);
      if (r.rfind(p, 0) != 0) continue;
      const std::string section = p.substr(2, p.size() - 3), name = r.substr(p.size());
      if (!root.contains(section) || !root[section].is_object() || !root[section].contains(name))
        return err(path, "$ref '" + r + "' does not resolve");
      JsonSchemaNode* n = make();  // placeholder first: a recursive reference points back here
      refs[r] = n;
      MODU_ASSIGN_OR_RETURN(const JsonSchemaNode* body, compile(root[section][name], "/" + section + "/" + name));
      *n = *body;
      if (body->additional == body) n->additional = n;  // keep self-references of `any` nodes
      if (body->items == body) n->items = n;
      return (const JsonSchemaNode*)n;
    }
    return err(path, "only local $ref of the form #/$defs/NAME or #/definitions/NAME is supported (got '" + r + "')");
  }

  Result<const JsonSchemaNode*> merge(const nlohmann::json& alts, const std::string& path) {
    if (!alts.is_array() || alts.empty()) return err(path, "must be a non-empty array of schemas");
    JsonSchemaNode* m = make();
    m->types = 0;
    bool all_literals = true;
    std::vector<const JsonSchemaNode*> parts;
    for (size_t i = 0; i < alts.size(); ++i) {
      MODU_ASSIGN_OR_RETURN(const JsonSchemaNode* a, compile(alts[i], path + "/" + std::to_string(i)));
      parts.push_back(a);
      all_literals = all_literals && !a->literals.empty();
    }
    if (all_literals) {
      for (const auto* a : parts) m->literals.insert(m->literals.end(), a->literals.begin(), a->literals.end());
      if (m->literals.size() > 64) return err(path, "more than 64 enum values in all alternatives");
      return (const JsonSchemaNode*)m;
    }
    if (const JsonSchemaNode* u = discriminated(parts)) return u;
    for (const auto* a : parts) {
      uint32_t t = a->types;
      if (!a->literals.empty()) return err(path, "mixing enum/const alternatives with typed ones is not supported");
      // integer and number share their first characters: treat them as one kind here.
      const uint32_t num = kJsonNumber | kJsonInteger;
      const uint32_t mt = (m->types & num ? num : 0) | (m->types & ~num);
      if (mt & ((t & num ? num : 0) | (t & ~num)))
        return err(path, "alternatives whose types overlap are not supported (each alternative needs its own type)");
      m->types |= t;
      if (t & kJsonObject) {
        m->prop_names = a->prop_names;
        m->prop_schemas = a->prop_schemas;
        m->required = a->required;
        m->additional = a->additional;
      }
      if (t & kJsonArray) {
        m->items = a->items;
        m->min_items = a->min_items;
        m->max_items = a->max_items;
      }
      if (t & kJsonString) {
        m->min_length = a->min_length;
        m->max_length = a->max_length;
      }
    }
    return (const JsonSchemaNode*)m;
  }

  // Object alternatives that all have a property whose schema is one const, distinct per
  // alternative: a union node keyed by that property (nullptr if the parts are not like that).
  const JsonSchemaNode* discriminated(const std::vector<const JsonSchemaNode*>& parts) {
    if (parts.size() < 2 || parts.size() > 64) return nullptr;
    for (const auto* a : parts)
      if (a->types != kJsonObject || !a->literals.empty() || !a->alternatives.empty()) return nullptr;
    for (size_t k = 0; k < parts[0]->prop_names.size(); ++k) {
      const std::string& key = parts[0]->prop_names[k];
      std::vector<std::string> consts;
      for (const auto* a : parts) {
        size_t i = 0;
        while (i < a->prop_names.size() && a->prop_names[i] != key) ++i;
        if (i == a->prop_names.size() || a->prop_schemas[i]->literals.size() != 1) break;
        const std::string& v = a->prop_schemas[i]->literals[0];
        for (const auto& seen : consts)
          if (seen == v) return nullptr;
        consts.push_back(v);
      }
      if (consts.size() != parts.size()) continue;
      JsonSchemaNode* lits = make();
      lits->literals = consts;
      JsonSchemaNode* u = make();
      u->types = kJsonObject;
      u->prop_names = {key};
      u->prop_schemas = {lits};
      u->required = 1;
      u->alternatives = parts;
      return u;
    }
    return nullptr;
  }

  static Result<int64_t> count(const nlohmann::json& s, const char* key, const std::string& path) {
    const auto& v = s[key];
    if (!v.is_number_integer() || v.get<int64_t>() < 0) return err(path, std::string("'") + key + "' must be a non-negative integer");
    return v.get<int64_t>();
  }

  Result<const JsonSchemaNode*> compile(const nlohmann::json& s, const std::string& path) {
    struct Guard {
      int& d;
      explicit Guard(int& x) : d(++x) {}
      ~Guard() { --d; }
    } guard(depth);
    if (depth > 128) return err(path, "the schema is nested more than 128 levels deep");
    if (s.is_boolean()) {
      if (s.get<bool>()) return any();
      return err(path, "the schema 'false' matches nothing");
    }
    if (!s.is_object()) return err(path, "a schema must be an object or a boolean");
    for (const char* k : {"pattern", "allOf", "not", "if", "then", "else", "patternProperties", "dependentRequired",
                          "dependentSchemas", "propertyNames", "unevaluatedProperties", "unevaluatedItems", "contains",
                          "prefixItems", "multipleOf", "minProperties", "maxProperties"})
      if (s.contains(k)) return err(path, std::string("keyword '") + k + "' is not supported");
    if (s.contains("uniqueItems") && s["uniqueItems"] == true) return err(path, "keyword 'uniqueItems' is not supported");
    if (s.contains("$ref")) {
      if (!s["$ref"].is_string()) return err(path, "'$ref' must be a string");
      return ref(s["$ref"].get<std::string>(), path);
    }
    for (const char* k : {"anyOf", "oneOf"})
      if (s.contains(k)) return merge(s[k], path + "/" + k);
    JsonSchemaNode* n = make();
    if (s.contains("const")) n->literals.push_back(s["const"].dump());
    if (s.contains("enum")) {
      if (!s["enum"].is_array() || s["enum"].empty()) return err(path, "'enum' must be a non-empty array");
      n->literals.clear();
      for (const auto& v : s["enum"]) n->literals.push_back(v.dump());
      if (n->literals.size() > 64) return err(path, "'enum' has more than 64 values");
    }
    if (!n->literals.empty()) return (const JsonSchemaNode*)n;
    if (s.contains("type")) {
      n->types = 0;
      std::vector<nlohmann::json> ts = s["type"].is_array() ? s["type"].get<std::vector<nlohmann::json>>()
                                                           : std::vector<nlohmann::json>{s["type"]};
      for (const auto& t : ts) {
        const std::string name = t.is_string() ? t.get<std::string>() : "";
        if (name == "object") n->types |= kJsonObject;
        else if (name == "array") n->types |= kJsonArray;
        else if (name == "string") n->types |= kJsonString;
        else if (name == "number") n->types |= kJsonNumber;
        else if (name == "integer") n->types |= kJsonInteger;
        else if (name == "boolean") n->types |= kJsonBoolean;
        else if (name == "null") n->types |= kJsonNull;
        else return err(path, "unknown type " + t.dump());
      }
      if (n->types == 0) return err(path, "'type' lists no types");
    } else if (s.contains("properties") || s.contains("required") || s.contains("additionalProperties")) {
      n->types = kJsonObject;
    } else if (s.contains("items") || s.contains("minItems") || s.contains("maxItems")) {
      n->types = kJsonArray;
    }
    MODU_ASSIGN_OR_RETURN(const JsonSchemaNode* anything, any());
    // Object.
    bool has_props = false;
    if (s.contains("properties")) {
      const auto& ps = s["properties"];
      if (!ps.is_object()) return err(path, "'properties' must be an object");
      if (ps.size() > 64) return err(path, "more than 64 properties");
      has_props = true;
      for (const auto& [k, v] : ps.items()) {
        const std::string q = nlohmann::json(k).dump();
        n->prop_names.push_back(q.substr(1, q.size() - 2));
        MODU_ASSIGN_OR_RETURN(const JsonSchemaNode* ps_node, compile(v, path + "/properties/" + k));
        n->prop_schemas.push_back(ps_node);
      }
    }
    if (s.contains("required")) {
      if (!s["required"].is_array()) return err(path, "'required' must be an array");
      for (const auto& r : s["required"]) {
        if (!r.is_string()) return err(path, "'required' entries must be strings");
        const std::string q = nlohmann::json(r.get<std::string>()).dump();
        size_t i = 0;
        while (i < n->prop_names.size() && n->prop_names[i] != q.substr(1, q.size() - 2)) ++i;
        if (i == n->prop_names.size()) return err(path, "required property '" + r.get<std::string>() + "' is not in 'properties'");
        n->required |= uint64_t(1) << i;
      }
    }
    // Without `properties` any key is allowed; with them, only those unless additionalProperties.
    n->additional = has_props ? nullptr : anything;
    if (s.contains("additionalProperties")) {
      const auto& ap = s["additionalProperties"];
      if (ap.is_boolean()) {
        n->additional = ap.get<bool>() ? anything : nullptr;
      } else {
        MODU_ASSIGN_OR_RETURN(n->additional, compile(ap, path + "/additionalProperties"));
      }
    }
    // Array.
    n->items = anything;
    if (s.contains("items")) {
      if (s["items"].is_array()) return err(path, "tuple-form 'items' is not supported");
      MODU_ASSIGN_OR_RETURN(n->items, compile(s["items"], path + "/items"));
    }
    if (s.contains("minItems")) {
      MODU_ASSIGN_OR_RETURN(n->min_items, count(s, "minItems", path));
    }
    if (s.contains("maxItems")) {
      MODU_ASSIGN_OR_RETURN(n->max_items, count(s, "maxItems", path));
    }
    if (n->max_items >= 0 && n->max_items < n->min_items) return err(path, "maxItems < minItems");
    // String.
    if (s.contains("minLength")) {
      MODU_ASSIGN_OR_RETURN(n->min_length, count(s, "minLength", path));
    }
    if (s.contains("maxLength")) {
      MODU_ASSIGN_OR_RETURN(n->max_length, count(s, "maxLength", path));
    }
    if (n->max_length >= 0 && n->max_length < n->min_length) return err(path, "maxLength < minLength");
    return (const JsonSchemaNode*)n;
  }
};

}  // namespace

JsonConstraint JsonConstraint::any_object() {
  auto arena = std::make_shared<std::vector<std::unique_ptr<JsonSchemaNode>>>();
  auto any = std::make_unique<JsonSchemaNode>();
  any->additional = any.get();
  any->items = any.get();
  auto obj = std::make_unique<JsonSchemaNode>(*any);
  obj->types = kJsonObject;
  JsonConstraint c;
  c.stack_[0] = Frame{};
  c.stack_[0].kind = kValue;
  c.stack_[0].node = obj.get();
  c.depth_ = 1;
  arena->push_back(std::move(any));
  arena->push_back(std::move(obj));
  c.arena_ = std::move(arena);
  return c;
}

Result<JsonConstraint> JsonConstraint::from_schema(const nlohmann::json& schema) {
  auto arena = std::make_shared<std::vector<std::unique_ptr<JsonSchemaNode>>>();
  Compiler comp{schema, *arena, {}};
  MODU_ASSIGN_OR_RETURN(const JsonSchemaNode* root, comp.compile(schema, ""));
  JsonConstraint c;
  c.stack_[0] = Frame{};
  c.stack_[0].kind = kValue;
  c.stack_[0].node = root;
  c.depth_ = 1;
  c.arena_ = std::move(arena);
  return c;
}

bool JsonConstraint::push(const Frame& f) {
  if (depth_ >= kMaxDepth) return false;
  stack_[depth_++] = f;
  return true;
}

// A literal value is complete. If it was the discriminator of a union object (stack_[parent]),
// the object continues as the alternative that literal selects.
void JsonConstraint::literal_done(const Frame& lit, int parent) {
  if (parent < 0) return;
  Frame& obj = stack_[parent];
  if (obj.kind != kObject || obj.node->alternatives.empty()) return;
  const JsonSchemaNode* u = obj.node;
  for (size_t i = 0; i < lit.lits->size(); ++i) {
    if (!(lit.mask >> i & 1) || (*lit.lits)[i].size() != lit.pos) continue;
    const JsonSchemaNode* alt = u->alternatives[i];
    obj.node = alt;
    obj.seen = 0;
    for (size_t k = 0; k < alt->prop_names.size(); ++k)
      if (alt->prop_names[k] == u->prop_names[0]) obj.seen |= uint64_t(1) << k;
    return;
  }
}

// The top frame finished a value (already popped): the root is done when nothing is left.
void JsonConstraint::complete_value() {
  if (depth_ == 0) done_ = true;
}

bool JsonConstraint::start_value(const JsonSchemaNode* n, uint8_t c) {
  Frame f;
  f.node = n;
  auto literal = [&](const std::vector<std::string>* lits) {
    f.kind = kLiteral;
    f.lits = lits;
    for (size_t i = 0; i < lits->size(); ++i)
      if (!(*lits)[i].empty() && (uint8_t)(*lits)[i][0] == c) f.mask |= uint64_t(1) << i;
    if (f.mask == 0) return false;
    f.pos = 1;
    bool all_done = true;
    for (size_t i = 0; i < lits->size(); ++i)
      if ((f.mask >> i & 1) && (*lits)[i].size() > 1) all_done = false;
    if (all_done) return literal_done(f, depth_ - 1), complete_value(), true;
    return push(f);
  };
  if (!n->literals.empty()) return literal(&n->literals);
  if (c == '{' && (n->types & kJsonObject)) return f.kind = kObject, push(f);
  if (c == '[' && (n->types & kJsonArray)) return f.kind = kArray, push(f);
  if (c == '"' && (n->types & kJsonString)) return f.kind = kString, push(f);
  if ((c == '-' || is_digit(c)) && (n->types & (kJsonNumber | kJsonInteger))) {
    f.kind = kNumber;
    return push(f) && feed_top(c);
  }
  if ((c == 't' || c == 'f') && (n->types & kJsonBoolean)) return literal(&kTrueFalse);
  if (c == 'n' && (n->types & kJsonNull)) return literal(&kNullLit);
  return false;
}

bool JsonConstraint::take_ws(uint8_t c) {
  if (c == '\n') {
    if (ws_run_ != 0) return false;
    ws_run_ = 1;
    ws_nl_ = true;
    return true;
  }
  if (c == ' ' || c == '\t') {
    if (ws_nl_) return ws_run_ < 1 + kMaxIndent && (++ws_run_, true);
    return c == ' ' && ws_run_ == 0 && (ws_run_ = 1, true);
  }
  return false;  // '\r', and anything that is not whitespace
}

bool JsonConstraint::feed_top(uint8_t c) {
  for (;;) {
    if (depth_ == 0) return take_ws(c);
    Frame& f = stack_[depth_ - 1];
    const JsonSchemaNode* n = f.node;
    const bool ws = is_ws(c);
    if (ws && (f.kind == kValue || f.kind == kObject || f.kind == kArray)) return take_ws(c);
    if (f.kind != kString && f.kind != kKey) ws_run_ = 0, ws_nl_ = false;
    switch (f.kind) {
      case kValue:
        --depth_;
        return start_value(n, c);
      case kObject: {
        const uint64_t all = n->prop_names.size() >= 64 ? ~uint64_t(0) : (uint64_t(1) << n->prop_names.size()) - 1;
        const bool complete = (n->required & ~f.seen) == 0;
        auto open_key = [&]() {
          Frame k;
          k.kind = kKey;
          k.node = n;
          k.mask = all & ~f.seen;
          k.free = n->additional != nullptr;
          if (k.mask == 0 && !k.free) return false;
          return push(k);
        };
        switch (f.st) {
          case 0:  // after '{'
          case 3:  // after a value
            if (c == '}' && complete) return --depth_, complete_value(), true;
            if (f.st == 0 && c == '"') return open_key();
            if (f.st == 3 && c == ',') {
              if (!n->additional && (all & ~f.seen) == 0) return false;
              return f.st = 4, true;
            }
            return false;
          case 1:  // after a key
            if (c != ':') return false;
            f.st = 2;
            return true;
          case 2: {  // after ':'
            Frame v;
            v.kind = kValue;
            v.node = f.prop >= 0 ? n->prop_schemas[(size_t)f.prop] : n->additional;
            f.st = 3;
            if (!push(v)) return false;
            continue;  // the value frame takes c
          }
          case 4:  // after ','
            return c == '"' && open_key();
        }
        return false;
      }
      case kArray:
        switch (f.st) {
          case 0:  // after '['
          case 2:  // after ','
            if (f.st == 0 && c == ']') {
              if (n->min_items > 0) return false;
              return --depth_, complete_value(), true;
            }
            if (n->max_items >= 0 && f.count >= n->max_items) return false;
            {
              Frame v;
              v.kind = kValue;
              v.node = n->items;
              f.st = 1;
              ++f.count;
              if (!push(v)) return false;
            }
            continue;
          case 1:  // after a value
            if (c == ',') return (n->max_items < 0 || f.count < n->max_items) && (f.st = 2, true);
            if (c == ']' && f.count >= n->min_items) return --depth_, complete_value(), true;
            return false;
        }
        return false;
      case kString:
      case kKey: {
        const bool key = f.kind == kKey;
        // Key frames compare the escaped bytes with the candidate names as well.
        uint64_t next = 0;
        if (key && f.mask) {
          for (size_t i = 0; i < n->prop_names.size(); ++i)
            if ((f.mask >> i & 1) && f.pos < n->prop_names[i].size() && (uint8_t)n->prop_names[i][f.pos] == c)
              next |= uint64_t(1) << i;
        }
        if (f.esc == 0 && f.u8 == 0 && c == '"') {
          if (key) {
            int match = -1;
            for (size_t i = 0; i < n->prop_names.size(); ++i)
              if ((f.mask >> i & 1) && n->prop_names[i].size() == f.pos) match = (int)i;
            if (match < 0 && !f.free) return false;
            --depth_;
            Frame& obj = stack_[depth_ - 1];
            obj.prop = (int16_t)match;
            if (match >= 0) obj.seen |= uint64_t(1) << match;
            obj.st = 1;
            return true;
          }
          if (f.count < n->min_length) return false;
          return --depth_, complete_value(), true;
        }
        if (key && !f.free) {  // must stay on a candidate name
          if (next == 0) return false;
          f.mask = next;
          ++f.pos;
          return true;
        }
        if (f.u8 > 0) {  // inside a multi-byte UTF-8 sequence (RFC 3629 ranges: no overlongs, surrogates)
          if (c < f.u8lo || c > f.u8hi) return false;
          --f.u8;
          f.u8lo = 0x80;
          f.u8hi = 0xBF;
          if (key) f.mask = next;
          ++f.pos;
          return true;
        }
        // A code point counts toward maxLength where it starts (escape, lead byte or ASCII), so a
        // string at its limit can still close. \u escapes of UTF-16 surrogates (D800-DFFF) are
        // refused: a lone one is invalid, and raw UTF-8 covers every code point.
        if (f.esc == 1) {
          if (c == 'u') {
            f.esc = 2;
          } else if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't') {
            f.esc = 0;
          } else {
            return false;
          }
        } else if (f.esc >= 2) {
          if (!is_hex(c)) return false;
          if (f.esc == 2) f.u8lo = (c == 'd' || c == 'D') ? 1 : 0x80;  // (u8lo is free while u8 == 0)
          if (f.esc == 3 && f.u8lo == 1) {  // second digit after 'd': 8-f would be a surrogate
            f.u8lo = 0x80;
            if (!is_digit(c) || c >= '8') return false;
          }
          if (++f.esc == 6) f.esc = 0;
        } else if (c == '\\') {
          f.esc = 1;
          ++f.count;
        } else if (c < 0x20) {
          return false;
        } else if (c >= 0x80) {
          if (c >= 0xC2 && c <= 0xDF) f.u8 = 1;
          else if (c >= 0xE0 && c <= 0xEF) f.u8 = 2;
          else if (c >= 0xF0 && c <= 0xF4) f.u8 = 3;
          else return false;
          if (c == 0xE0) f.u8lo = 0xA0;
          if (c == 0xED) f.u8hi = 0x9F;
          if (c == 0xF0) f.u8lo = 0x90;
          if (c == 0xF4) f.u8hi = 0x8F;
          ++f.count;
        } else {
          ++f.count;
        }
        if (!key && n->max_length >= 0 && f.count > n->max_length) return false;
        if (key) f.mask = next;
        ++f.pos;
        return true;
      }
      case kNumber: {
        // Digits are capped (an integer at 18, so it always fits int64; exponents at 2) and '.', 'e'
        // are only offered while a digit may still follow them, so a number can always be finished.
        const bool integer = !(n->types & kJsonNumber);
        const uint32_t max_digits = integer ? 18 : (uint32_t)kMaxDigits;
        const bool room = f.pos < max_digits;
        auto digit = [&](uint8_t st) { return ++f.pos <= max_digits && (f.st = st, true); };
        switch (f.st) {
          case 0:
            if (c == '-') return f.st = 8, true;
            [[fallthrough]];
          case 8:
            if (c == '0') return digit(2);
            if (is_digit(c)) return digit(1);
            return false;
          case 1:
          case 2:
            if (f.st == 1 && is_digit(c)) return digit(1);
            if (f.st == 2 && is_digit(c)) return false;  // no leading zeros
            if (!integer && room && c == '.') return f.st = 3, true;
            if (!integer && room && (c == 'e' || c == 'E')) return f.st = 5, true;
            break;
          case 3:
            return is_digit(c) && digit(4);
          case 4:
            if (is_digit(c)) return digit(4);
            if (room && (c == 'e' || c == 'E')) return f.st = 5, true;
            break;
          case 5:  // exponents have at most 2 digits, so every value fits a double (no overflow)
            if (c == '+' || c == '-') return f.st = 6, true;
            [[fallthrough]];
          case 6:
            return is_digit(c) && (f.count = 1, f.st = 7, true);
          case 7:
            if (is_digit(c)) return f.count < 2 && (++f.count, true);
            break;
        }
        if (f.st != 1 && f.st != 2 && f.st != 4 && f.st != 7) return false;
        --depth_;  // the number ended before c: c belongs to the enclosing frame
        complete_value();
        if (done_) return take_ws(c);
        continue;
      }
      case kLiteral: {
        const auto& lits = *f.lits;
        uint64_t next = 0;
        bool ended_here = false;
        for (size_t i = 0; i < lits.size(); ++i) {
          if (!(f.mask >> i & 1)) continue;
          if (f.pos < lits[i].size() && (uint8_t)lits[i][f.pos] == c) next |= uint64_t(1) << i;
          if (lits[i].size() == f.pos) ended_here = true;
        }
        if (next) {
          f.mask = next;
          ++f.pos;
          bool all_done = true;
          for (size_t i = 0; i < lits.size(); ++i)
            if ((next >> i & 1) && lits[i].size() > f.pos) all_done = false;
          if (all_done) literal_done(f, depth_ - 2), --depth_, complete_value();
          return true;
        }
        if (!ended_here) return false;
        literal_done(f, depth_ - 2);
        --depth_;  // a shorter candidate (e.g. 1 of enum [1, 12]) ended before c
        complete_value();
        if (done_) return take_ws(c);
        continue;
      }
    }
    return false;
  }
}

bool JsonConstraint::feed(uint8_t c) {
  if (prefix_ && prefix_pos_ < prefix_->size()) {
    if ((uint8_t)(*prefix_)[prefix_pos_] != c) return false;
    ++prefix_pos_;
    return true;
  }
  return feed_top(c);
}

JsonConstraint JsonConstraint::with_prefix(std::string prefix) const {
  JsonConstraint c = *this;
  c.prefix_ = std::make_shared<const std::string>(std::move(prefix));
  c.prefix_pos_ = 0;
  return c;
}

JsonConstraint JsonConstraint::one_of(std::vector<JsonConstraint> alts) {
  MODU_CHECK(!alts.empty());
  if (alts.size() == 1) return std::move(alts[0]);
  JsonConstraint c = alts[0];
  c.alts_ = std::move(alts);
  return c;
}

bool JsonConstraint::accept(std::string_view bytes) {
  if (!alts_.empty()) {
    std::vector<JsonConstraint> left;
    for (const JsonConstraint& a : alts_) {
      JsonConstraint t = a;
      if (t.accept(bytes)) left.push_back(std::move(t));
    }
    if (left.empty()) return false;
    if (left.size() == 1) *this = std::move(left[0]);
    else alts_ = std::move(left);
    return true;
  }
  JsonConstraint trial = *this;
  for (char ch : bytes)
    if (!trial.feed((uint8_t)ch)) return false;
  *this = std::move(trial);
  return true;
}

bool JsonConstraint::allows(std::string_view bytes) const {
  if (!alts_.empty()) {
    for (const JsonConstraint& a : alts_)
      if (a.allows(bytes)) return true;
    return false;
  }
  JsonConstraint trial = *this;
  for (char ch : bytes)
    if (!trial.feed((uint8_t)ch)) return false;
  return true;
}

bool JsonConstraint::in_free_string() const {
  if (!alts_.empty()) return false;  // alternatives differ in their literal prefixes
  if (depth_ == 0 || (prefix_ && prefix_pos_ < prefix_->size())) return false;
  const Frame& f = stack_[depth_ - 1];
  return f.kind == kString && f.esc == 0 && f.u8 == 0 && f.node->max_length < 0;
}

bool JsonConstraint::done() const {
  if (!alts_.empty()) {
    for (const JsonConstraint& a : alts_)
      if (a.done()) return true;
    return false;
  }
  return done_;
}

bool JsonConstraint::can_end() const {
  if (!alts_.empty()) {
    for (const JsonConstraint& a : alts_)
      if (a.can_end()) return true;
    return false;
  }
  if (done_) return true;
  if (prefix_ && prefix_pos_ < prefix_->size()) return false;
  if (depth_ != 1) return false;
  const Frame& f = stack_[0];
  if (f.kind == kNumber) return f.st == 1 || f.st == 2 || f.st == 4 || f.st == 7;
  if (f.kind == kLiteral) {
    for (size_t i = 0; i < f.lits->size(); ++i)
      if ((f.mask >> i & 1) && (*f.lits)[i].size() == f.pos) return true;
  }
  return false;
}

TokenPieces::TokenPieces(const Tokenizer& tok, bool render_special) {
  const int32_t n = tok.n_vocab();
  pieces_.resize((size_t)n);
  plain_.assign((size_t)n, 0);
  eog_.assign((size_t)n, 0);
  for (int32_t id = 0; id < n; ++id) {
    eog_[(size_t)id] = tok.is_eog(id) ? 1 : 0;
    const TokenType t = tok.token_type(id);
    if (t == TokenType::kUnknown || t == TokenType::kUnused || eog_[(size_t)id]) continue;
    if (t == TokenType::kControl && !render_special) continue;
    std::string p = tok.token_to_piece(id, render_special);
    bool plain = !p.empty();
    for (char ch : p)
      if ((uint8_t)ch < 0x20 || (uint8_t)ch >= 0x80 || ch == '"' || ch == '\\') plain = false;
    plain_[(size_t)id] = plain ? 1 : 0;
    pieces_[(size_t)id] = std::move(p);
  }
}

bool json_token_allowed(const JsonConstraint& c, const TokenPieces& p, int32_t id) {
  if (id < 0 || id >= p.n_vocab()) return false;
  if (p.is_eog(id)) return c.can_end();
  const std::string& s = p.piece(id);
  return !s.empty() && c.allows(s);
}

int64_t json_mask_logits(const JsonConstraint& c, const TokenPieces& p, float* logits) {
  // Bytes that may come next: a token whose first byte is not one of them is out without a trial.
  bool first[256];
  for (int b = 0; b < 256; ++b) {
    const char ch = (char)b;
    first[b] = c.allows(std::string_view(&ch, 1));
  }
  const bool end = c.can_end();
  // Inside a free string every printable token without '"' or '\\' continues it: no trial needed.
  const bool free_string = c.in_free_string();
  int64_t left = 0;
  for (int32_t id = 0; id < p.n_vocab(); ++id) {
    if (logits[id] == -INFINITY) continue;
    bool ok;
    if (p.is_eog(id)) {
      ok = end;
    } else {
      const std::string& s = p.piece(id);
      ok = !s.empty() && first[(uint8_t)s[0]] && (s.size() == 1 || (free_string && p.plain(id)) || c.allows(s));
    }
    if (ok) ++left;
    else logits[id] = -INFINITY;
  }
  return left;
}

int32_t sample_json(Sampler& sampler, const JsonConstraint& c, const TokenPieces& p, const float* logits,
                    int32_t n_vocab, std::vector<float>& scratch) {
  const int32_t first = sampler.sample(logits);
  if (json_token_allowed(c, p, first)) return first;
  scratch.assign(logits, logits + n_vocab);
  for (int32_t id = p.n_vocab(); id < n_vocab; ++id) scratch[(size_t)id] = -INFINITY;
  if (json_mask_logits(c, p, scratch.data()) == 0) return -1;
  const int32_t tok = sampler.sample(scratch.data());
  return json_token_allowed(c, p, tok) ? tok : -1;
}

}  // namespace modu
