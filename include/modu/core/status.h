// Status and Result<T>: how everything in modu that can fail reports it (no exceptions across APIs).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <variant>

namespace modu {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,   // the caller passed something wrong (bad flag, bad request)
  kNotFound,          // a file, key or tensor does not exist
  kIoError,           // the OS failed us (open, read, mmap, write)
  kCorrupt,           // a file's contents are malformed
  kOutOfRange,        // a value is outside what is supported (context too long, ...)
  kUnimplemented,     // valid input that modu does not support (yet)
  kResourceExhausted, // out of memory, queue full
  kFailedPrecondition,// not now: the state does not allow it (an adapter still in use); retry later
  kInternal,          // a bug in modu
};

const char* status_code_name(StatusCode code);

// A Status is either OK or a code plus a message that says what, where, and how to fix.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "corrupt: tensor 'x' ..." ; "ok" when ok.
  std::string to_string() const;
  // Returns a copy with "context: " prepended to the message.
  Status with_context(const std::string& context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status invalid_argument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status not_found(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status io_error(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
inline Status corrupt(std::string m) { return {StatusCode::kCorrupt, std::move(m)}; }
inline Status out_of_range(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
inline Status unimplemented(std::string m) { return {StatusCode::kUnimplemented, std::move(m)}; }
inline Status resource_exhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
inline Status failed_precondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
inline Status internal_error(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

[[noreturn]] void check_failed(const char* file, int line, const char* expr, const std::string& msg);

// Result<T>: a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(implicit)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(implicit)
    if (std::get<Status>(v_).ok()) check_failed(__FILE__, __LINE__, "!status.ok()", "Result built from OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { check_ok(); return std::get<T>(v_); }
  const T& value() const& { check_ok(); return std::get<T>(v_); }
  T&& value() && { check_ok(); return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  void check_ok() const {
    if (!ok()) check_failed(__FILE__, __LINE__, "result.ok()", std::get<Status>(v_).to_string());
  }
  std::variant<T, Status> v_;
};

}  // namespace modu

#define MODU_CONCAT_INNER_(a, b) a##b
#define MODU_CONCAT_(a, b) MODU_CONCAT_INNER_(a, b)

// Returns the Status from the enclosing function if `expr` is not OK.
#define MODU_RETURN_IF_ERROR(expr)                 \
  do {                                             \
    ::modu::Status modu_status_ = (expr);          \
    if (!modu_status_.ok()) return modu_status_;   \
  } while (0)

// MODU_ASSIGN_OR_RETURN(auto x, f()): unwraps a Result or returns its Status.
#define MODU_ASSIGN_OR_RETURN(lhs, expr) \
  MODU_ASSIGN_OR_RETURN_IMPL_(MODU_CONCAT_(modu_result_, __LINE__), lhs, expr)
#define MODU_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()

// Invariant checks: a failure is a bug in modu, never a user error.
#define MODU_CHECK(cond)                                                    \
  do {                                                                      \
    if (!(cond)) ::modu::check_failed(__FILE__, __LINE__, #cond, "");       \
  } while (0)
#define MODU_CHECK_MSG(cond, msg)                                           \
  do {                                                                      \
    if (!(cond)) ::modu::check_failed(__FILE__, __LINE__, #cond, (msg));    \
  } while (0)
