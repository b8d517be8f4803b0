#include "nftpol/json_value.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "nftpol/json.h"

namespace nftpol::json {

namespace {

constexpr int kMaxDepth = 64;

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Result<Value> document() {
    skipSpace();
    auto v = value(0);
    if (!v) return v;
    skipSpace();
    if (pos_ != text_.size()) return fail("unexpected text after the value");
    return v;
  }

 private:
  Error fail(const std::string& what) const { return Error{"at byte " + std::to_string(pos_) + ": " + what}; }
  bool atEnd() const { return pos_ >= text_.size(); }
  char peek() const { return text_[pos_]; }
  void skipSpace() {
    while (!atEnd() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r'))
      ++pos_;
  }
  bool literal(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  Result<Value> value(int depth) {
    if (atEnd()) return fail("a value is missing");
    switch (peek()) {
      case '{':
        return object(depth + 1);
      case '[':
        return array(depth + 1);
      case '"': {
        auto s = string();
        if (!s) return s.error();
        return Value(std::move(*s));
      }
      case 't':
        if (literal("true")) return Value(true);
        break;
      case 'f':
        if (literal("false")) return Value(false);
        break;
      case 'n':
        if (literal("null")) return Value();
        break;
      default:
        if (peek() == '-' || (peek() >= '0' && peek() <= '9')) return number();
    }
    return fail("expected a JSON value");
  }

  Result<Value> object(int depth) {
    if (depth > kMaxDepth) return fail("nested deeper than " + std::to_string(kMaxDepth) + " levels");
    ++pos_;
    Value::Object members;
    skipSpace();
    if (!atEnd() && peek() == '}') {
      ++pos_;
      return Value(std::move(members));
    }
    for (;;) {
      skipSpace();
      if (atEnd() || peek() != '"') return fail("expected a member name in quotes");
      auto key = string();
      if (!key) return key.error();
      skipSpace();
      if (atEnd() || peek() != ':') return fail("expected ':' after a member name");
      ++pos_;
      skipSpace();
      auto v = value(depth);
      if (!v) return v;
      // A repeated name keeps its last value, as Go's encoding/json (every CNI runtime) reads it.
      bool replaced = false;
      for (auto& [k, old] : members)
        if (k == *key) {
          old = std::move(*v);
          replaced = true;
        }
      if (!replaced) members.emplace_back(std::move(*key), std::move(*v));
      skipSpace();
      if (atEnd()) return fail("the object is not closed");
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == '}') {
        ++pos_;
        return Value(std::move(members));
      }
      return fail("expected ',' or '}' in an object");
    }
  }

  Result<Value> array(int depth) {
    if (depth > kMaxDepth) return fail("nested deeper than " + std::to_string(kMaxDepth) + " levels");
    ++pos_;
    Value::Array items;
    skipSpace();
    if (!atEnd() && peek() == ']') {
      ++pos_;
      return Value(std::move(items));
    }
    for (;;) {
      skipSpace();
      auto v = value(depth);
      if (!v) return v;
      items.push_back(std::move(*v));
      skipSpace();
      if (atEnd()) return fail("the array is not closed");
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == ']') {
        ++pos_;
        return Value(std::move(items));
      }
      return fail("expected ',' or ']' in an array");
    }
  }

  Result<Value> number() {
    size_t start = pos_;
    bool integral = true;
    if (peek() == '-') ++pos_;
    auto digits = [&] {
      size_t from = pos_;
      while (!atEnd() && peek() >= '0' && peek() <= '9')
        ++pos_;
      return pos_ - from;
    };
    if (atEnd()) return fail("a number needs digits");
    if (peek() == '0') {
      ++pos_;
    } else if (digits() == 0) {
      return fail("a number needs digits");
    }
    if (!atEnd() && peek() == '.') {
      ++pos_;
      integral = false;
      if (digits() == 0) return fail("a fraction needs digits");
    }
    if (!atEnd() && (peek() == 'e' || peek() == 'E')) {
      ++pos_;
      integral = false;
      if (!atEnd() && (peek() == '+' || peek() == '-')) ++pos_;
      if (digits() == 0) return fail("an exponent needs digits");
    }
    std::string text(text_.substr(start, pos_ - start));
    errno = 0;
    if (integral) {
      long long i = std::strtoll(text.c_str(), nullptr, 10);
      if (errno == 0) return Value(static_cast<int64_t>(i));
      errno = 0;  // too large for an integer: keep it as a double, as JSON allows
    }
    double d = std::strtod(text.c_str(), nullptr);
    if (errno == ERANGE && std::isinf(d)) return fail("the number " + text + " is out of range");
    return Value(d);
  }

  static void appendUtf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  Result<uint32_t> hex4() {
    if (text_.size() - pos_ < 4) return fail("\\u needs four hex digits");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = text_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= static_cast<uint32_t>(c - 'A' + 10);
      else
        return fail("\\u needs four hex digits");
    }
    return v;
  }

  Result<std::string> string() {
    ++pos_;  // the opening quote
    std::string out;
    for (;;) {
      if (atEnd()) return fail("the string is not closed");
      char c = text_[pos_];
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (static_cast<unsigned char>(c) < 0x20) return fail("a control character inside a string");
      if (c != '\\') {
        out += c;
        ++pos_;
        continue;
      }
      ++pos_;
      if (atEnd()) return fail("the string is not closed");
      char e = text_[pos_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          auto cp = hex4();
          if (!cp) return cp.error();
          uint32_t code = *cp;
          if (code >= 0xD800 && code < 0xDC00) {  // a high surrogate needs its low half
            if (!literal("\\u")) return fail("an unpaired surrogate");
            auto low = hex4();
            if (!low) return low.error();
            if (*low < 0xDC00 || *low > 0xDFFF) return fail("an unpaired surrogate");
            code = 0x10000 + ((code - 0xD800) << 10) + (*low - 0xDC00);
          } else if (code >= 0xDC00 && code <= 0xDFFF) {
            return fail("an unpaired surrogate");
          }
          appendUtf8(out, code);
          break;
        }
        default:
          pos_ -= 2;  // point at the backslash
          return fail(std::string("unknown escape \\") + e);
      }
    }
  }

  std::string_view text_;
  size_t pos_ = 0;
};

void write(const Value& v, std::string& out) {
  if (v.isNull()) {
    out += "null";
  } else if (v.isBool()) {
    out += v.asBool() ? "true" : "false";
  } else if (v.isInteger()) {
    out += std::to_string(v.asInteger());
  } else if (v.isNumber()) {
    // The shortest form that reads back as the same double, and never one that reads back as an integer.
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.15g", v.asNumber());
    if (std::strtod(buf, nullptr) != v.asNumber()) std::snprintf(buf, sizeof buf, "%.17g", v.asNumber());
    out += buf;
    if (std::string_view(buf).find_first_of(".e") == std::string_view::npos) out += ".0";
  } else if (v.isString()) {
    out += jsonString(v.asString());
  } else if (v.isArray()) {
    out += '[';
    for (size_t i = 0; i < v.asArray().size(); ++i) {
      if (i) out += ',';
      write(v.asArray()[i], out);
    }
    out += ']';
  } else {
    out += '{';
    bool first = true;
    for (const auto& [k, member] : v.asObject()) {
      if (!first) out += ',';
      first = false;
      out += jsonString(k);
      out += ':';
      write(member, out);
    }
    out += '}';
  }
}

}  // namespace

const Value* Value::find(std::string_view key) const {
  if (!isObject()) return nullptr;
  for (const auto& [k, v] : asObject())
    if (k == key) return &v;
  return nullptr;
}

Value& Value::operator[](std::string_view key) {
  if (isNull()) v_ = Object();
  auto& members = std::get<Object>(v_);
  for (auto& [k, v] : members)
    if (k == key) return v;
  members.emplace_back(std::string(key), Value());
  return members.back().second;
}

std::string Value::serialize() const {
  std::string out;
  write(*this, out);
  return out;
}

Result<Value> parse(std::string_view text) {
  return Parser(text).document();
}

}  // namespace nftpol::json
