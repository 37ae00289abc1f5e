// Errors as values for the kernel-facing code: an errno (positive, 0 when the
// failure is not a syscall's) and one human line that already names the errno.
// C++20 has no std::expected; this is the small part of it we need.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace xdpguard::kernel {

struct Error {
  int code = 0;         // positive errno, 0 if none
  std::string message;  // complete, ready to print
};

// "what: strerror(err)". `err` may be negative (libbpf style) or positive.
Error errno_error(int err, const std::string& what);
// A failure without an errno behind it.
inline Error plain_error(std::string what) { return Error{0, std::move(what)}; }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : e_(std::move(error)) {}  // NOLINT

  bool ok() const { return !e_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return *e_; }

 private:
  std::optional<Error> e_;
};

using Status = Result<void>;

}  // namespace xdpguard::kernel
