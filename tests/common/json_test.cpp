#include <catch2/catch.hpp>

#include "nftpol/json_value.h"

using nftpol::json::parse;
using nftpol::json::Value;

TEST_CASE("JSON values of every kind parse, keep member order and print back compactly", "[json]") {
  auto v =
      parse(R"( {"b": [1, -2, 3.5, 1e3, true, false, null], "a": {"s": "x\"y\\z\/\n\u00e9\ud83d\ude00"}} )");
  REQUIRE(v.ok());
  REQUIRE(v->isObject());
  CHECK(v->asObject().front().first == "b");  // document order, not sorted
  const auto& list = v->find("b")->asArray();
  CHECK(list[0].isInteger());
  CHECK(list[0].asInteger() == 1);
  CHECK(list[1].asInteger() == -2);
  CHECK_FALSE(list[2].isInteger());
  CHECK(list[2].asNumber() == 3.5);
  CHECK(list[3].asNumber() == 1000.0);  // an exponent makes a double, as Go reads it too
  CHECK(list[4].asBool());
  CHECK(list[6].isNull());
  CHECK(v->find("a")->find("s")->asString() == "x\"y\\z/\n\xc3\xa9\xf0\x9f\x98\x80");
  CHECK(v->find("missing") == nullptr);
  CHECK(
      v->serialize() ==
      "{\"b\":[1,-2,3.5,1000.0,true,false,null],\"a\":{\"s\":\"x\\\"y\\\\z/\\n\xc3\xa9\xf0\x9f\x98\x80\"}}");
  auto again = parse(v->serialize());
  REQUIRE(again.ok());
  CHECK(*again == *v);
}

TEST_CASE("a repeated member keeps its last value, as Go's encoding/json reads it", "[json]") {
  auto v = parse(R"({"mtu": 1400, "mtu": 9000})");
  REQUIRE(v.ok());
  CHECK(v->asObject().size() == 1);
  CHECK(v->find("mtu")->asInteger() == 9000);
}

TEST_CASE("members are added and replaced in place", "[json]") {
  Value v;
  v["cniVersion"] = Value("1.0.0");
  v["ips"] = Value(Value::Array{Value(1)});
  v["cniVersion"] = Value("1.1.0");
  CHECK(v.serialize() == R"({"cniVersion":"1.1.0","ips":[1]})");
}

TEST_CASE("integers beyond 64 bits stay numbers", "[json]") {
  auto v = parse("123456789012345678901234567890");
  REQUIRE(v.ok());
  CHECK_FALSE(v->isInteger());
  CHECK(v->asNumber() > 1e29);
}

TEST_CASE("bad JSON is refused, and the error says at which byte and what", "[json]") {
  const std::pair<const char*, const char*> cases[] = {
      {"", "at byte 0: a value is missing"},
      {"not json", "at byte 0: expected a JSON value"},
      {"{\"a\": 1,}", "at byte 8: expected a member name in quotes"},
      {"[1, 2", "at byte 5: the array is not closed"},
      {"{\"a\" 1}", "at byte 5: expected ':' after a member name"},
      {"{\"a\": 1 \"b\": 2}", "at byte 8: expected ',' or '}' in an object"},
      {"\"abc", "at byte 4: the string is not closed"},
      {"\"a\tb\"", "at byte 2: a control character inside a string"},
      {"\"\\x\"", "at byte 1: unknown escape \\x"},
      {"\"\\ud83d\"", "at byte 7: an unpaired surrogate"},
      {"\"\\u12g4\"", "at byte 6: \\u needs four hex digits"},
      {"01", "at byte 1: unexpected text after the value"},
      {"-", "at byte 1: a number needs digits"},
      {"1.", "at byte 2: a fraction needs digits"},
      {"1e+", "at byte 3: an exponent needs digits"},
      {"1e999", "at byte 5: the number 1e999 is out of range"},
      {"{} {}", "at byte 3: unexpected text after the value"},
      {"tru", "at byte 0: expected a JSON value"},
  };
  for (const auto& [text, message] : cases) {
    INFO(text);
    auto v = parse(text);
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().message == message);
  }
}

TEST_CASE("nesting is bounded, so hostile input cannot exhaust the stack", "[json]") {
  CHECK(parse(std::string(64, '[') + std::string(64, ']')).ok());
  auto deep = parse(std::string(100000, '['));
  REQUIRE_FALSE(deep.ok());
  CHECK(deep.error().message == "at byte 64: nested deeper than 64 levels");
}
