#pragma once

#include <string>
#include <utility>
#include <variant>

namespace nftpol {

// An error travelling across a module edge: a human-readable message that already says where and what.
struct Error {
  std::string message;
  int errnum = 0;  // the errno a system call or the kernel gave, when that is what failed: callers test it,
                   // never the message's text
};

// std::expected is C++23; this is the small subset we need. A Result holds either a value or an error (an
// Error unless a module's edge needs more, such as the CNI plugin's error codes).
template <typename T, typename E = Error>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit on purpose, like std::expected
  Result(E error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const E& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, E> v_;
};

}  // namespace nftpol
