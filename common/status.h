// Status and Result<T>: the project's one error type.
//
// A Status is either OK or an error code with a message meant for a person.
// Third-party libraries that throw are wrapped where they are used; their
// exceptions are caught there and turned into a Status. Values are immutable
// and cheap to copy; safe to share between threads.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace reprise {

enum class Code {
  kOk = 0,
  kInvalidArgument,     // bad input from outside (400)
  kUnauthenticated,     // no or wrong credentials (401)
  kPermissionDenied,    // authenticated but not allowed (403)
  kNotFound,            // (404)
  kAlreadyExists,       // a unique name is taken (409)
  kConflict,            // state forbids it, e.g. immutable artifact differs (409)
  kTooLarge,            // a size limit was exceeded (413)
  kUnsafe,              // content refused for safety, e.g. archive traversal (422)
  kFailedPrecondition,  // gates, ordering (412/409 by caller)
  kCancelled,
  kTimeout,
  kUnavailable,  // a peer is gone (503)
  kIo,           // the local filesystem or OS failed
  kInternal,     // a bug or a broken invariant
};

std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "not_found: message"
  std::string ToString() const;

  // Returns a copy whose message is "prefix: message".
  Status WithContext(std::string_view prefix) const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
inline Status AlreadyExists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
inline Status Conflict(std::string m) { return {Code::kConflict, std::move(m)}; }
inline Status PermissionDenied(std::string m) { return {Code::kPermissionDenied, std::move(m)}; }
inline Status Unauthenticated(std::string m) { return {Code::kUnauthenticated, std::move(m)}; }
inline Status TooLarge(std::string m) { return {Code::kTooLarge, std::move(m)}; }
inline Status Unsafe(std::string m) { return {Code::kUnsafe, std::move(m)}; }
inline Status FailedPrecondition(std::string m) {
  return {Code::kFailedPrecondition, std::move(m)};
}
inline Status Cancelled(std::string m) { return {Code::kCancelled, std::move(m)}; }
inline Status Timeout(std::string m) { return {Code::kTimeout, std::move(m)}; }
inline Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
inline Status IoError(std::string m) { return {Code::kIo, std::move(m)}; }
inline Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok() && "Result needs a value or an error");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace reprise

// Returns early from the enclosing function when `expr` (a Status) is not OK.
#define REPRISE_RETURN_IF_ERROR(expr) \
  do {                                \
    ::reprise::Status _st = (expr);   \
    if (!_st.ok()) return _st;        \
  } while (0)

#define REPRISE_CONCAT_INNER(a, b) a##b
#define REPRISE_CONCAT(a, b) REPRISE_CONCAT_INNER(a, b)
// `REPRISE_ASSIGN_OR_RETURN(auto x, Foo());` assigns the value or returns the error.
#define REPRISE_ASSIGN_OR_RETURN(lhs, expr) \
  REPRISE_ASSIGN_OR_RETURN_IMPL(REPRISE_CONCAT(_result_, __LINE__), lhs, expr)
#define REPRISE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()
