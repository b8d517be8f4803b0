#include <catch2/catch.hpp>

#include "nftpol/selectors/labels.h"

using namespace nftpol::selectors;

TEST_CASE("label keys follow the API server's qualified-name rules", "[labels]") {
  for (const char* ok :
       {"app", "app.kubernetes.io/name", "a", "A-b_c.d", "kubernetes.io/metadata.name", "x/y", "123"}) {
    INFO(ok);
    CHECK_FALSE(validateLabelKey(ok));
  }
  for (const char* bad : {"", "-a", "a-", "a b", "/a", "a/", "Upper.Case/x", "a/b/c", "prefix_/x",
                          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}) {
    INFO(bad);
    CHECK(validateLabelKey(bad));
  }
}

TEST_CASE("label values may be empty or qualified-name parts of at most 63 characters", "[labels]") {
  for (const char* ok : {"", "a", "v1.2-3_x", "123"})
    CHECK_FALSE(validateLabelValue(ok));
  for (const char* bad :
       {"-a", "a b", "a/b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}) {
    INFO(bad);
    CHECK(validateLabelValue(bad));
  }
}

TEST_CASE("names: DNS labels and subdomains", "[labels]") {
  CHECK_FALSE(validateDnsLabel("kube-system"));
  CHECK(validateDnsLabel("Kube"));
  CHECK(validateDnsLabel("a.b"));
  CHECK_FALSE(validateDnsSubdomain("a.b-c.d"));
  CHECK(validateDnsSubdomain("a..b"));
  CHECK(validateDnsSubdomain(""));
}

TEST_CASE("Labels keeps keys sorted and unique", "[labels]") {
  Labels l({{"b", "1"}, {"a", "2"}, {"b", "3"}});
  CHECK(l.toString() == "a=2,b=3");
  CHECK(*l.find("b") == "3");
  CHECK(l.find("c") == nullptr);
}

TEST_CASE("Labels finds every key, among few labels and among many", "[labels]") {
  for (int count : {1, 8, 9, 40}) {
    std::vector<std::pair<std::string, std::string>> items;
    items.reserve(static_cast<size_t>(count));
    for (int i = 0; i < count; ++i)
      items.emplace_back("key-" + std::to_string(i), "v" + std::to_string(i));
    Labels l(items);
    for (int i = 0; i < count; ++i) {
      const std::string* v = l.find("key-" + std::to_string(i));
      REQUIRE(v);
      CHECK(*v == "v" + std::to_string(i));
    }
    CHECK(l.find("key-") == nullptr);
    CHECK(l.find("key-" + std::to_string(count)) == nullptr);
    CHECK(l.find("kez-0") == nullptr);  // same length as a key that is there
  }
}
