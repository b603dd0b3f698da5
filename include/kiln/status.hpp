// kiln::Status and kiln::Expected<T>: how every library function reports failure.
//
// The library never aborts or exits on bad input: it returns a Status whose message names the
// file, node, op, binding or value at fault. Only the CLI turns a Status into an exit code.
//
//   kiln::Expected<int> parse(const std::string& s);
//   auto v = parse("12");
//   if (!v) std::cerr << v.status().message();   // or: KILN_ASSIGN_OR_RETURN(int x, parse("12"));
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace kiln {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // the caller passed something wrong (an input file, an option)
  kInvalidModel,     // the model or plan is malformed (truncated file, dangling input, cycle)
  kUnsupported,      // valid, but kiln cannot do it (op, dtype, attribute value)
  kNotFound,         // a named thing does not exist (file, binding, value)
  kIoError,          // reading or writing a file failed
  kRuntimeError,     // a failure while executing (device error, out of memory)
  kInternal,         // a bug in kiln
};

const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "unsupported: <message>"
  std::string to_string() const;

  // Prefixes the message with where the error happened: "while importing model.onnx: ...".
  Status& add_context(const std::string& context) {
    if (!ok()) message_ = context + ": " + message_;
    return *this;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}  // NOLINT(implicit)
  Expected(Status status) : v_(std::move(status)) {  // NOLINT(implicit)
    assert(!std::get<Status>(v_).ok() && "Expected<T> built from an OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

namespace detail {
inline Status to_status(const Status& s) { return s; }
template <typename T>
Status to_status(const Expected<T>& e) { return e.status(); }
}  // namespace detail

}  // namespace kiln

#define KILN_CONCAT_INNER(a, b) a##b
#define KILN_CONCAT(a, b) KILN_CONCAT_INNER(a, b)

#define KILN_RETURN_IF_ERROR(expr)                                   \
  do {                                                               \
    auto&& kiln_status_ = (expr);                                    \
    if (!kiln_status_.ok()) return ::kiln::detail::to_status(kiln_status_); \
  } while (0)

#define KILN_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()

#define KILN_ASSIGN_OR_RETURN(lhs, expr) \
  KILN_ASSIGN_OR_RETURN_IMPL(KILN_CONCAT(kiln_expected_, __LINE__), lhs, expr)
