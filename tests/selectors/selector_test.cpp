#include <catch2/catch.hpp>

#include "nftpol/selectors/selector.h"

using namespace nftpol::selectors;

namespace {
LabelSelector make(std::vector<Requirement> r) {
  auto s = LabelSelector::create(std::move(r));
  REQUIRE(s.ok());
  return *s;
}
}  // namespace

TEST_CASE("selector operators", "[selector]") {
  Labels web({{"app", "web"}, {"tier", "front"}});
  Labels bare(std::vector<std::pair<std::string, std::string>>{{"app", "db"}});
  struct Row {
    const char* name;
    Requirement req;
    bool web, bare;
  };
  for (const auto& row : {
           Row{"In", {"app", Operator::kIn, {"web", "api"}}, true, false},
           Row{"In one value", {"app", Operator::kIn, {"db"}}, false, true},
           Row{"NotIn", {"tier", Operator::kNotIn, {"front"}}, false, true},  // lacking the key matches
           Row{"Exists", {"tier", Operator::kExists, {}}, true, false},
           Row{"DoesNotExist", {"tier", Operator::kDoesNotExist, {}}, false, true},
       }) {
    SECTION(row.name) {
      auto s = make({row.req});
      CHECK(s.matches(web) == row.web);
      CHECK(s.matches(bare) == row.bare);
    }
  }
}

TEST_CASE("the empty selector matches everything, and requirements are AND-ed", "[selector]") {
  CHECK(LabelSelector().matches(Labels()));
  auto s = make({{"app", Operator::kIn, {"web"}}, {"tier", Operator::kExists, {}}});
  CHECK(s.matches(Labels({{"app", "web"}, {"tier", "x"}})));
  CHECK_FALSE(s.matches(Labels(std::vector<std::pair<std::string, std::string>>{{"app", "web"}})));
}

TEST_CASE("create() enforces the operator/values rules", "[selector]") {
  auto in = LabelSelector::create({{"a", Operator::kIn, {}}});
  REQUIRE_FALSE(in.ok());
  CHECK(in.error().message == "operator In and NotIn need at least one value (key \"a\")");
  auto exists = LabelSelector::create({{"a", Operator::kExists, {"x"}}});
  REQUIRE_FALSE(exists.ok());
  CHECK(exists.error().message == "operator Exists and DoesNotExist take no values (key \"a\")");
}

TEST_CASE("the string form is canonical, so equal selectors intern equally", "[selector]") {
  auto a = make(
      {{"z", Operator::kIn, {"2", "1"}}, {"a", Operator::kDoesNotExist, {}}, {"m", Operator::kIn, {"x"}}});
  auto b = make(
      {{"m", Operator::kIn, {"x"}}, {"a", Operator::kDoesNotExist, {}}, {"z", Operator::kIn, {"1", "2"}}});
  CHECK(a.toString() == "!a,m=x,z in (1,2)");
  CHECK(a.toString() == b.toString());
  CHECK(make({{"k", Operator::kNotIn, {"v"}}, {"e", Operator::kExists, {}}}).toString() == "e,k!=v");
}
