#pragma once

// A JSON document as a value (RFC 8259), for the CNI plugin's stdin and its delegates' stdout. The plugin is
// exec'd once per pod: loading libcpprest and the TLS libraries it pulls in cost 4.6 ms of every call on our
// reference machine, more than the whole of the reference plugin's start, so the plugin reads JSON with this.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "nftpol/result.h"

namespace nftpol::json {

class Value {
 public:
  using Array = std::vector<Value>;
  using Object = std::vector<std::pair<std::string, Value>>;  // in document order; keys are unique

  Value() = default;  // null
  Value(bool b) : v_(b) {}
  Value(int64_t i) : v_(i) {}
  Value(int i) : v_(static_cast<int64_t>(i)) {}
  Value(double d) : v_(d) {}
  Value(std::string s) : v_(std::move(s)) {}  // NOLINT(performance-unnecessary-value-param): it is moved
  Value(const char* s) : v_(std::string(s)) {}
  Value(Array a) : v_(std::move(a)) {}
  Value(Object o) : v_(std::move(o)) {}

  bool isNull() const { return std::holds_alternative<std::monostate>(v_); }
  bool isBool() const { return std::holds_alternative<bool>(v_); }
  bool isInteger() const {
    return std::holds_alternative<int64_t>(v_);
  }  // a number without fraction or exponent
  bool isNumber() const { return isInteger() || std::holds_alternative<double>(v_); }
  bool isString() const { return std::holds_alternative<std::string>(v_); }
  bool isArray() const { return std::holds_alternative<Array>(v_); }
  bool isObject() const { return std::holds_alternative<Object>(v_); }

  // Each of these requires the matching is*().
  bool asBool() const { return std::get<bool>(v_); }
  int64_t asInteger() const { return std::get<int64_t>(v_); }
  double asNumber() const { return isInteger() ? static_cast<double>(asInteger()) : std::get<double>(v_); }
  const std::string& asString() const { return std::get<std::string>(v_); }
  const Array& asArray() const { return std::get<Array>(v_); }
  Array& asArray() { return std::get<Array>(v_); }
  const Object& asObject() const { return std::get<Object>(v_); }

  // The member `key` of an object; nullptr when there is none or this is not an object.
  const Value* find(std::string_view key) const;
  // The member `key`, made (null) when missing; turns a null into an empty object first.
  Value& operator[](std::string_view key);

  // Compact JSON text, members in their order.
  std::string serialize() const;

  bool operator==(const Value&) const = default;

 private:
  std::variant<std::monostate, bool, int64_t, double, std::string, Array, Object> v_;
};

// Parses exactly one JSON value (surrounded by optional whitespace). Errors say where: "at byte N: what".
// Nesting deeper than 64 levels is refused rather than recursed into.
Result<Value> parse(std::string_view text);

}  // namespace nftpol::json
