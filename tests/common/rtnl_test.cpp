// Kernel test, run inside a network namespace of its own (tests/nft/in_netns.sh) standing for the node; the
// pod is a named namespace this test creates and deletes.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>
#include <thread>

#include "nftpol/rtnl.h"

using namespace nftpol;
using namespace nftpol;

namespace {

int sh(const std::string& command) {
  return std::system(command.c_str());
}

// A pod namespace, removed however the test ends.
struct PodNetns {
  std::string name = "nftpol-cnit-" + std::to_string(::getpid());
  std::string path = "/var/run/netns/" + name;
  PodNetns() { REQUIRE(sh("ip netns add " + name) == 0); }
  ~PodNetns() { sh("ip netns del " + name + " 2>/dev/null"); }
};

InterfaceAddress address(const char* ip, int prefix) {
  return InterfaceAddress{*IpAddress::parse(ip), prefix};
}

}  // namespace

TEST_CASE("a bridge, a veth into a pod namespace, addresses and routes, through rtnetlink", "[cni][kernel]") {
  PodNetns pod;
  auto node = Rtnl::open();
  REQUIRE(node.ok());

  auto bridge = node->addBridge("nftpol-br0", 1400);
  REQUIRE(bridge.ok());
  auto again = node->addBridge("nftpol-br0", 1400);  // an existing bridge is taken as it is
  REQUIRE(again.ok());
  CHECK(*again == *bridge);
  CHECK(node->link(*bridge)->kind == "bridge");
  REQUIRE(node->addAddress(*bridge, address("10.244.7.1", 24)).ok());
  REQUIRE(node->addAddress(*bridge, address("10.244.7.1", 24)).ok());  // idempotent
  REQUIRE(node->setUp(*bridge).ok());

  int podFd = ::open(pod.path.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(podFd >= 0);
  auto veth = node->addVeth("nftpol-vh0", "eth0", podFd, 1400);
  ::close(podFd);
  REQUIRE(veth.ok());
  CHECK(node->link(*veth)->kind == "veth");
  CHECK(node->link(*veth)->mtu == 1400);
  REQUIRE(node->setMaster(*veth, *bridge).ok());
  REQUIRE(node->setHairpin(*veth, true).ok());
  REQUIRE(node->setUp(*veth).ok());
  CHECK(sh("ip -d link show nftpol-vh0 | grep -q 'master nftpol-br0'") == 0);
  CHECK(node->link(*veth)->master == *bridge);
  CHECK(node->link(*veth)->up);
  CHECK(sh("ip -d link show nftpol-vh0 | grep -q 'hairpin on'") == 0);
  // The same name again is refused, with the kernel's reason.
  podFd = ::open(pod.path.c_str(), O_RDONLY | O_CLOEXEC);
  auto duplicate = node->addVeth("nftpol-vh0", "eth1", podFd, 0);
  ::close(podFd);
  REQUIRE_FALSE(duplicate.ok());
  CHECK(duplicate.error().message == "cannot create veth nftpol-vh0: rtnetlink: File exists");

  auto inPod = Rtnl::openIn(pod.path);
  REQUIRE(inPod.ok());
  auto eth0 = inPod->linkIndex("eth0");
  REQUIRE(eth0.ok());
  REQUIRE(eth0->has_value());
  CHECK(sh("ip -n " + pod.name + " link show eth0 | grep -q 'mtu 1400'") == 0);
  REQUIRE(inPod->addAddress(**eth0, address("10.244.7.5", 24)).ok());
  REQUIRE(inPod->addAddress(**eth0, address("fd00:7::5", 64)).ok());
  REQUIRE(inPod->setUp(**eth0).ok());
  REQUIRE(inPod->addRoute(**eth0, std::nullopt, *IpAddress::parse("10.244.7.1")).ok());
  REQUIRE(inPod->addRoute(**eth0, *Cidr::parse("10.96.0.0/12"), *IpAddress::parse("10.244.7.1")).ok());
  CHECK(sh("ip -n " + pod.name + " route show default | grep -q 'via 10.244.7.1 dev eth0'") == 0);
  CHECK(sh("ip -n " + pod.name + " route show 10.96.0.0/12 | grep -q 'via 10.244.7.1'") == 0);
  CHECK(sh("ip -n " + pod.name + " -6 addr show dev eth0 | grep -q 'fd00:7::5/64'") == 0);
  // The pod reaches a server on the node's bridge address: the links are really wired.
  std::string probe = NFTPOL_PROBE;
  struct Server {  // stopped however the test ends
    std::string pidFile = "/tmp/nftpol-cnit-" + std::to_string(::getpid()) + ".pid";
    ~Server() { sh("kill $(cat " + pidFile + ") 2>/dev/null; rm -f " + pidFile); }
  } server;
  REQUIRE(sh(probe + " serve 7777 & echo $! > " + server.pidFile) == 0);
  // Started in the background: connect only once it listens (bounded, 2 s), or the test races its bind.
  std::string listening = "ss -Hltn 'sport = :7777' | grep -q .";
  REQUIRE(sh("for i in $(seq 100); do " + listening + " && exit 0; sleep 0.02; done; exit 1") == 0);
  CHECK(sh("ip netns exec " + pod.name + " " + probe + " connect tcp 10.244.7.1 7777 3000") == 0);

  auto addresses = inPod->addresses(**eth0);
  REQUIRE(addresses.ok());
  std::vector<std::string> seen;
  for (const auto& a : *addresses)
    seen.push_back(a.address.toString() + "/" + std::to_string(a.prefixLength));
  CHECK(std::find(seen.begin(), seen.end(), "10.244.7.5/24") != seen.end());
  CHECK(std::find(seen.begin(), seen.end(), "fd00:7::5/64") != seen.end());
  auto routes = inPod->routes(**eth0);
  REQUIRE(routes.ok());
  std::vector<std::string> routeText;
  for (const auto& r : *routes)
    routeText.push_back(r.destination.toString() + (r.gateway ? " via " + r.gateway->toString() : ""));
  CHECK(std::find(routeText.begin(), routeText.end(), "0.0.0.0/0 via 10.244.7.1") != routeText.end());
  CHECK(std::find(routeText.begin(), routeText.end(), "10.96.0.0/12 via 10.244.7.1") != routeText.end());
  CHECK(std::find(routeText.begin(), routeText.end(), "10.244.7.0/24") !=
        routeText.end());  // the subnet's own

  auto missing = inPod->linkIndex("nope0");
  REQUIRE(missing.ok());
  CHECK_FALSE(missing->has_value());
  REQUIRE(node->deleteLink(*veth).ok());  // takes its peer with it
  CHECK_FALSE(inPod->linkIndex("eth0")->has_value());

  auto nowhere = Rtnl::openIn("/var/run/netns/nftpol-no-such-netns");
  REQUIRE_FALSE(nowhere.ok());
  CHECK(nowhere.error().message ==
        "cannot open network namespace /var/run/netns/nftpol-no-such-netns: No such file or directory");
}

TEST_CASE("a dump the kernel interrupts is drained and read again, and the socket stays usable",
          "[kernel][netlink]") {
  // Enough links that a dump takes many reads, and a thread that adds and removes one meanwhile: the kernel
  // marks the parts of a dump after such a change NLM_F_DUMP_INTR.
  constexpr int kStable = 200;
  std::string batch;
  for (int i = 0; i < kStable; ++i)
    batch += "link add nftpol-d" + std::to_string(i) + " type bridge\n";
  REQUIRE(sh("printf '" + batch + "' | ip -batch -") == 0);
  auto reader = Rtnl::open();
  REQUIRE(reader.ok());
  std::atomic<bool> done{false};
  std::thread churn([&] {
    auto writer = Rtnl::open();
    for (int i = 0; writer && i < 150; ++i) {
      auto index = writer->addBridge("nftpol-churn", 1500);
      if (index) (void)writer->deleteLink(*index);
    }
    done = true;
  });
  int whole = 0, interrupted = 0;
  do {
    auto links = reader->links();
    if (!links) {
      // Only ever because the table kept changing, never a torn or foreign reply.
      INFO(links.error().message);
      REQUIRE(links.error().errnum == EINTR);
      ++interrupted;
      continue;
    }
    int stable = static_cast<int>(std::count_if(
        links->begin(), links->end(), [](const Link& l) { return l.name.rfind("nftpol-d", 0) == 0; }));
    CHECK(stable == kStable);
    ++whole;
  } while (!done);
  churn.join();
  // The same socket answers the next requests with their own replies.
  auto after = reader->links();
  REQUIRE(after.ok());
  CHECK(std::count_if(after->begin(), after->end(),
                      [](const Link& l) { return l.name.rfind("nftpol-d", 0) == 0; }) == kStable);
  auto lo = reader->linkIndex("lo");
  REQUIRE(lo.ok());
  CHECK(lo->has_value());
  WARN("dumps read whole: " << whole << ", given up after retries: " << interrupted);
  CHECK(whole + interrupted > 0);
}
