// The handoff's messages and host-local's pools, rootless.
#include <catch2/catch.hpp>

#include "nftpol/cni/handoff.h"
#include "nftpol/cni/reservations.h"

using namespace nftpol;
using namespace nftpol::cni;

TEST_CASE("handoff requests and replies encode and parse back, and bad ones say what is wrong", "[handoff]") {
  handoff::Request r{.op = handoff::Op::kAdd,
                     .podNamespace = "shop",
                     .podName = "api-0",
                     .podUid = "u-1",
                     .containerId = "c0ffee",
                     .ifname = "eth0",
                     .addresses = {{*IpAddress::parse("10.244.1.7"), 24}, {*IpAddress::parse("fd00::7"), 64}},
                     .wait = std::chrono::milliseconds{4000}};
  auto back = handoff::parseRequest(handoff::encode(r));
  REQUIRE(back);
  CHECK(*back == r);
  handoff::Reply reply{handoff::Reply::Status::kPending, "not yet"};
  CHECK(*handoff::parseReply(handoff::encode(reply)) == reply);
  auto error = [](std::string_view m) { return handoff::parseRequest(m).error().message; };
  CHECK(error("{").find("not JSON") == 0);
  CHECK(error(R"({"op": "PUT"})") == "\"op\" must be ADD, DEL or STATUS");
  CHECK(error(R"({"op": "ADD", "containerID": "c", "addresses": ["10.0.0.1/24"]})")
            .find("ADD needs the pod's") == 0);
  CHECK(
      error(
          R"({"op": "ADD", "namespace": "a", "name": "b", "containerID": "c", "addresses": ["10.0.0.1/33"]})")
          .find("prefix length over 32") != std::string::npos);
  CHECK(error(std::string(handoff::kMaxMessage + 1, ' ')).find("over the limit") != std::string::npos);
  CHECK(handoff::parseRequest(R"({"op": "STATUS"})"));
}

TEST_CASE("host-local's ranges as it canonicalises them, and when one is full", "[handoff][status]") {
  auto sets =
      hostLocalRanges(R"({"ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.9.0/30"}]]}})");
  REQUIRE(sets);
  REQUIRE(sets->size() == 1);
  const auto& range = sets->front().front();
  CHECK(range.first == *IpAddress::parse("10.244.9.1"));
  CHECK(range.last == *IpAddress::parse("10.244.9.2"));
  CHECK(range.gateway == IpAddress::parse("10.244.9.1").value());
  // .1 is the gateway, .2 the one address to give.
  CHECK_FALSE(exhaustedRangeSet(*sets, {}));
  std::vector<Reservation> taken = {{*IpAddress::parse("10.244.9.2"), {"c", "eth0"}}};
  CHECK(exhaustedRangeSet(*sets, taken) == "no free address in 10.244.9.1-10.244.9.2");
  auto legacy = hostLocalRanges(
      R"({"ipam": {"subnet": "fd00::/64", "rangeStart": "fd00::10", "rangeEnd": "fd00::11"}})");
  REQUIRE(legacy);
  CHECK_FALSE(exhaustedRangeSet(*legacy, {{*IpAddress::parse("fd00::10"), {"c", "eth0"}}}));
  CHECK(exhaustedRangeSet(*legacy, {{*IpAddress::parse("fd00::10"), {"c", "eth0"}},
                                    {*IpAddress::parse("fd00::11"), {"d", "eth0"}}}));
  CHECK_FALSE(
      hostLocalRanges(R"({"ipam": {"ranges": [[{"subnet": "10.0.0.0/24", "rangeStart": "10.1.0.1"}]]}})"));
}
