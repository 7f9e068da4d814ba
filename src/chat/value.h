// Value: the dynamic, Python-like value model of the Jinja engine (None, bool, int, float, str,
// list/tuple, insertion-ordered dict, namespace objects, callables, undefined) and its semantics.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace modu::jinja {

// Thrown inside the engine; converted to a Status at the API boundary.
struct JinjaError : std::exception {
  std::string kind;     // "UndefinedError", "TypeError", "TemplateSyntaxError", ...
  std::string message;  // without position
  int line = 0, col = 0;
  bool raised = false;  // from raise_exception(): the message is reported verbatim
  JinjaError(std::string k, std::string m) : kind(std::move(k)), message(std::move(m)) {}
  const char* what() const noexcept override { return message.c_str(); }
};
[[noreturn]] void fail(const std::string& kind, const std::string& message);
[[noreturn]] inline void type_error(const std::string& m) { fail("TypeError", m); }

class Value;
class Evaluator;
using List = std::vector<Value>;
struct Dict;
struct Object;
struct Callable;

enum class Kind : uint8_t { Undefined, None, Bool, Int, Float, String, List, Dict, Object, Callable };
// How a list-kind value behaves in Python: a list, a tuple, or a one-shot iterator (generator,
// dict view) that cannot be measured, indexed or serialized.
enum class Seq : uint8_t { List, Tuple, Iterator };

class Value {
 public:
  Value() = default;  // undefined
  static Value undefined(std::string hint = {}) {
    Value v;
    v.str_ = std::move(hint);
    return v;
  }
  // An undefined whose use raises SecurityError (sandbox-blocked attribute).
  static Value unsafe(std::string message) {
    Value v = undefined(std::move(message));
    v.num_.b = true;
    return v;
  }
  bool is_unsafe() const { return kind_ == Kind::Undefined && num_.b; }
  static Value none() { Value v; v.kind_ = Kind::None; return v; }
  Value(bool b) : kind_(Kind::Bool) { num_.b = b; }                     // NOLINT
  Value(int v) : kind_(Kind::Int) { num_.i = v; }                       // NOLINT
  Value(int64_t v) : kind_(Kind::Int) { num_.i = v; }                   // NOLINT
  Value(size_t v) : kind_(Kind::Int) { num_.i = static_cast<int64_t>(v); }  // NOLINT
  Value(double v) : kind_(Kind::Float) { num_.f = v; }                  // NOLINT
  Value(std::string s) : kind_(Kind::String), str_(std::move(s)) {}     // NOLINT
  Value(std::string_view s) : kind_(Kind::String), str_(s) {}           // NOLINT
  Value(const char* s) : kind_(Kind::String), str_(s) {}                // NOLINT
  Value(List l, Seq seq = Seq::List);                                    // NOLINT
  Value(Dict d);                                                         // NOLINT
  Value(std::shared_ptr<Object> o);                                      // NOLINT
  Value(std::shared_ptr<const Callable> c);                              // NOLINT
  // A markupsafe.Markup string (from |safe or |escape): adding a plain str to it HTML-escapes that str.
  static Value markup(std::string s) {
    Value v(std::move(s));
    v.num_.b = true;
    return v;
  }
  bool is_markup() const { return kind_ == Kind::String && num_.b; }
  static Value tuple(List l) { return Value(std::move(l), Seq::Tuple); }
  static Value iterator(List l) { return Value(std::move(l), Seq::Iterator); }
  static Value from_json(const nlohmann::ordered_json& j);

  Kind kind() const { return kind_; }
  Seq seq() const { return seq_; }
  bool is_undefined() const { return kind_ == Kind::Undefined; }
  bool is_none() const { return kind_ == Kind::None; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  bool is_int() const { return kind_ == Kind::Int; }
  bool is_float() const { return kind_ == Kind::Float; }
  bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Float || kind_ == Kind::Bool; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_list() const { return kind_ == Kind::List; }
  bool is_dict() const { return kind_ == Kind::Dict; }
  bool is_object() const { return kind_ == Kind::Object; }
  bool is_callable() const { return kind_ == Kind::Callable; }

  bool as_bool() const { return num_.b; }
  // Int value of an int or bool.
  int64_t as_int() const { return kind_ == Kind::Bool ? (num_.b ? 1 : 0) : num_.i; }
  // Float value of any number.
  double as_float() const { return kind_ == Kind::Float ? num_.f : static_cast<double>(as_int()); }
  const std::string& str() const { return str_; }  // string contents, or undefined's hint
  const List& list() const;
  const Dict& dict() const;
  const std::shared_ptr<Object>& object() const { return obj_; }
  const Callable& callable() const { return *fn_; }

  bool truthy() const;
  // Python str(): what {{ value }} prints.
  std::string to_str() const;
  // Python repr().
  std::string repr() const;
  // Python type name for messages ("str", "int", "dict", ...).
  std::string type_name() const;
  // json.dumps(value, ensure_ascii, indent, separators, sort_keys); indent < 0 means none.
  std::string to_json(bool ensure_ascii, int indent, const std::string& item_sep,
                      const std::string& key_sep, bool sort_keys) const;
  // Undefined's error message ("'x' is undefined").
  std::string undefined_message() const;

  bool operator==(const Value& o) const;
  bool operator!=(const Value& o) const { return !(*this == o); }

 private:
  Kind kind_ = Kind::Undefined;
  Seq seq_ = Seq::List;
  union {
    bool b;
    int64_t i;
    double f;
  } num_{};
  std::string str_;
  std::shared_ptr<const List> list_;
  std::shared_ptr<const Dict> dict_;
  std::shared_ptr<Object> obj_;
  std::shared_ptr<const Callable> fn_;
};

// An insertion-ordered Python dict (keys are hashable values: str, int, bool, None, float).
struct Dict {
  std::vector<std::pair<Value, Value>> items;
  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  void set(Value key, Value value);
  size_t size() const { return items.size(); }
};

// A mutable attribute bag: jinja's namespace() objects and loop objects.
struct Object {
  std::string type;  // "Namespace", "LoopContext", "Cycler", "Joiner"
  Dict attrs;
  const Value* get(std::string_view name) const { return attrs.find(name); }
  void set(const std::string& name, Value v) { attrs.set(Value(name), std::move(v)); }
};

struct CallArgs {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  // Keyword `name`, or positional `index`, or nullptr.
  const Value* get(size_t index, std::string_view name) const;
};

struct Callable {
  std::string name;
  std::function<Value(Evaluator&, CallArgs&)> fn;
  bool is_macro = false;
};

// Python comparison (<) for sort/min/max/dictsort and the < > operators; throws TypeError.
bool value_less(const Value& a, const Value& b);

// UTF-8 helpers: Python str is a sequence of code points.
std::u32string utf8_decode(std::string_view s);
std::string utf8_encode(std::u32string_view s);
void utf8_append(std::string& out, char32_t c);
size_t utf8_length(std::string_view s);
bool is_py_space(char32_t c);

// Python float repr (shortest round-trip, "1.0", "1e-05", "1e+16", "inf", "nan").
std::string format_float(double d);

}  // namespace modu::jinja
