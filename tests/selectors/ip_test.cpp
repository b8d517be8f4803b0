#include <catch2/catch.hpp>

#include "nftpol/ip.h"

using namespace nftpol;

TEST_CASE("addresses and prefixes, IPv4 and IPv6", "[ip]") {
  auto net = Cidr::parse("10.1.2.3/16");  // host bits are masked, as Kubernetes accepts them
  REQUIRE(net.ok());
  CHECK(net->toString() == "10.1.0.0/16");
  CHECK(net->contains(*IpAddress::parse("10.1.255.255")));
  CHECK_FALSE(net->contains(*IpAddress::parse("10.2.0.0")));
  CHECK_FALSE(net->contains(*IpAddress::parse("::ffff:10.1.0.1")));
  CHECK(net->covers(*Cidr::parse("10.1.128.0/17")));
  CHECK_FALSE(net->covers(*Cidr::parse("10.0.0.0/8")));
  auto v6 = Cidr::parse("fd00:1::/33");
  REQUIRE(v6.ok());
  CHECK(v6->contains(*IpAddress::parse("fd00:1:7fff::1")));
  CHECK_FALSE(v6->contains(*IpAddress::parse("fd00:1:8000::1")));
  CHECK(Cidr::parse("0.0.0.0/0")->contains(*IpAddress::parse("255.255.255.255")));
  for (const char* bad :
       {"10.0.0.0", "10.0.0.0/", "10.0.0.0/33", "10.0.0/8", "::/129", "10.0.0.0/08", "x/1"}) {
    INFO(bad);
    CHECK_FALSE(Cidr::parse(bad).ok());
  }
  CHECK(IpAddress::parse("fd00::1")->toString() == "fd00::1");
}

TEST_CASE("addresses print as inet_ntop prints them, IPv4 by hand included", "[ip]") {
  for (const char* text : {"0.0.0.0", "9.10.99.100", "10.244.1.5", "100.64.0.255", "255.255.255.255",
                           "192.168.0.1", "fd00::1", "::ffff:10.1.0.1", "2001:db8::ff00:42:8329"}) {
    auto ip = IpAddress::parse(text);
    REQUIRE(ip);
    CHECK(ip->toString() == text);
  }
  // Every value of an octet, in each position.
  for (int v = 0; v < 256; ++v) {
    std::string octet = std::to_string(v);
    std::string text = octet + "." + octet + ".0." + octet;
    CHECK(IpAddress::parse(text)->toString() == text);
  }
}
