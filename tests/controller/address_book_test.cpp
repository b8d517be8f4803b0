// The address book: what the CNI plugin says overlays what the source says, so that a released or reused
// address never carries a stale pod's allowances.
#include <catch2/catch.hpp>

#include "nftpol/controller/address_book.h"

using namespace nftpol;
using namespace nftpol::controller;

namespace {
IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}
policy::Pod pod(const char* ns, const char* name, std::vector<IpAddress> ips, const char* uid = "") {
  policy::Pod p;
  p.ns = ns;
  p.name = name;
  p.uid = uid;
  p.ips = std::move(ips);
  return p;
}
}  // namespace

TEST_CASE("a bound pod gets the plugin's addresses and this node, before the API knows them", "[book]") {
  AddressBook book;
  auto change = book.bind({"app/web", "u1", "c1", "eth0", {ip("10.244.1.7")}});
  CHECK(std::find(change.pods.begin(), change.pods.end(), "app/web") != change.pods.end());
  auto o = book.overlay(pod("app", "web", {}, "u1"), "node-1");
  REQUIRE(o);
  CHECK(o->ips == std::vector<IpAddress>{ip("10.244.1.7")});
  CHECK(o->nodeName == "node-1");
  // Another pod object of that name (another UID) is not the bound one, and loses the bound address.
  auto earlier = book.overlay(pod("app", "web", {ip("10.244.1.7")}, "u0"), "node-1");
  REQUIRE(earlier);
  CHECK(earlier->ips.empty());
}

TEST_CASE("released and rebound addresses leave every stale pod", "[book]") {
  AddressBook book;
  auto t0 = AddressBook::Clock::now();
  book.bind({"app/old", "", "c1", "eth0", {ip("10.244.1.7")}});
  book.release("c1", "eth0", {ip("10.244.1.7")}, t0);
  // The API still lists the old pod with its address: not here.
  auto stale = book.overlay(pod("app", "old", {ip("10.244.1.7"), ip("fd00::7")}), "node-1");
  REQUIRE(stale);
  CHECK(stale->ips == std::vector<IpAddress>{ip("fd00::7")});
  CHECK(book.touches(pod("elsewhere", "x", {ip("10.244.1.7")})));
  // The next pod takes the address: it is that pod's, and still nobody else's.
  book.bind({"app/new", "", "c2", "eth0", {ip("10.244.1.7")}});
  CHECK(book.overlay(pod("app", "new", {}), "node-1")->ips == std::vector<IpAddress>{ip("10.244.1.7")});
  CHECK(book.overlay(pod("app", "old", {ip("10.244.1.7")}), "node-1")->ips.empty());
  // A DEL of the old attachment, late, does not take it from the new one.
  book.release("c1", "eth0", {ip("10.244.1.7")}, t0);
  CHECK(book.overlay(pod("app", "new", {}), "node-1")->ips == std::vector<IpAddress>{ip("10.244.1.7")});
  // Once the new pod is gone from the source, the address is released again; after a while, forgotten.
  book.podGone("app/new", t0);
  CHECK(book.bindings() == 0);
  CHECK(book.touches(pod("app", "old", {ip("10.244.1.7")})));
  auto expired = book.expire(t0 + std::chrono::seconds{601}, std::chrono::seconds{600});
  CHECK(expired.addresses == std::vector<IpAddress>{ip("10.244.1.7")});
  CHECK_FALSE(book.touches(pod("app", "old", {ip("10.244.1.7")})));
  CHECK_FALSE(book.overlay(pod("app", "old", {ip("10.244.1.7")}), "node-1"));
}
