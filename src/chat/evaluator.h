// Evaluator: executes the AST against a chain of variable frames, implementing Jinja2's scoping,
// operators, attribute/item lookup, macros, call blocks and loop control.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "ast.h"
#include "value.h"

namespace modu::jinja {

struct Frame {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Frame> parent;
  explicit Frame(std::shared_ptr<Frame> p = nullptr) : parent(std::move(p)) {}
  const Value* lookup(const std::string& name) const {
    for (const Frame* f = this; f; f = f->parent.get()) {
      auto it = f->vars.find(name);
      if (it != f->vars.end()) return &it->second;
    }
    return nullptr;
  }
};
using FramePtr = std::shared_ptr<Frame>;

enum class Flow { Normal, Break, Continue };

class Evaluator {
 public:
  explicit Evaluator(std::chrono::system_clock::time_point now) : now_(now) {}
  // Breaks the reference cycles a render can create (a macro's closure frame holding the macro,
  // a namespace holding itself) by clearing the frames and objects that could be part of one.
  ~Evaluator();
  Evaluator(const Evaluator&) = delete;
  Evaluator& operator=(const Evaluator&) = delete;
  void track(std::shared_ptr<Object> obj) { objects_.push_back(std::move(obj)); }

  // Renders `body` into `out` with `frame` as the innermost scope.
  Flow exec(const Body& body, const FramePtr& frame, std::string& out);
  Value eval(const Expr& e, const FramePtr& frame);

  // Python/Jinja semantics shared with filters and builtins.
  Value call(const Value& fn, CallArgs& args);
  Value getattr(const Value& obj, const std::string& name);
  Value getitem(const Value& obj, const Value& key);
  std::chrono::system_clock::time_point now() const { return now_; }

 private:
  std::chrono::system_clock::time_point now_;
  int depth_ = 0;  // macro recursion depth
  std::vector<FramePtr> closures_;
  std::vector<std::shared_ptr<Object>> objects_;

  Flow exec_node(const Node& n, const FramePtr& frame, std::string& out);
  Flow exec_for(const Node& n, const FramePtr& frame, std::string& out);
  void assign(const Expr& target, const Value& value, const FramePtr& frame);
  Value eval_inner(const Expr& e, const FramePtr& frame);
  void eval_args(const Expr& e, const FramePtr& frame, CallArgs& args);
  Value apply_filter_expr(const Expr& e, const FramePtr& frame, Value input);
  Value make_macro(const Node& n, const FramePtr& frame, bool is_caller);
  Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step);
};

// Python binary operators and comparisons (used by the evaluator and filters like sum).
Value binary_op(const std::string& op, const Value& a, const Value& b);
bool contains(const Value& container, const Value& item);
// Python iteration: list items, dict keys, string characters; TypeError otherwise.
List iterate(const Value& v);
// Raises the error an Undefined carries (UndefinedError or SecurityError).
[[noreturn]] void raise_undefined(const Value& u);

}  // namespace modu::jinja
