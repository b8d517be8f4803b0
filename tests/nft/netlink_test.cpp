// The netlink backend against the real kernel. Run only inside a network namespace of the test's own
// (`unshare -n`, see tests/CMakeLists.txt): it programs that namespace's nftables and nothing else.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "generator.h"
#include "nftpol/nft/backend.h"
#include "nftpol/nft/conntrack.h"
#include "nftpol/nft/nflog.h"
#include "nftpol/policy/loader.h"
#include "nftpol/render/render.h"

using namespace nftpol;
using namespace nftpol::nft;
using namespace nftpol::policy;

namespace {

std::string run(const std::string& command) {
  std::string out;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  char buf[4096];
  while (p && fgets(buf, sizeof buf, p))
    out += buf;
  if (p) pclose(p);
  return out;
}

std::string normalised(const std::string& text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    bool ws = c == ' ' || c == '\t' || c == '\n';
    if (ws) {
      space = true;
      continue;
    }
    if (space && !out.empty() && c != ',') out += ' ';
    space = false;
    out += c;
  }
  return out;
}

ClusterState samples() {
  ClusterState state;
  std::vector<Diagnostic> diagnostics;
  loadPaths({NFTPOL_SOURCE_DIR "/samples/cluster"}, state, diagnostics);
  REQUIRE(!hasErrors(diagnostics));
  return state;
}

std::unique_ptr<NetlinkBackend> backend() {
  auto b = NetlinkBackend::open();
  REQUIRE(b.ok());
  auto removed = (*b)->remove("nftpol");
  REQUIRE(removed.ok());
  return std::move(*b);
}

// Equal views; when they differ, says which set or chain differs first.
bool sameView(const KernelView& a, const KernelView& b) {
  for (const auto& [name, set] : b.sets) {
    auto it = a.sets.find(name);
    if (it == a.sets.end() || !(it->second == set)) {
      UNSCOPED_INFO("set " << name << (it == a.sets.end() ? " is missing" : " differs"));
      return false;
    }
  }
  for (const auto& [name, chain] : b.chains) {
    auto it = a.chains.find(name);
    if (it == a.chains.end() || !(it->second == chain)) {
      UNSCOPED_INFO("chain " << name << (it == a.chains.end() ? " is missing" : " differs"));
      if (it != a.chains.end())
        for (size_t i = 0; i < std::max(chain.rules.size(), it->second.rules.size()); ++i)
          UNSCOPED_INFO("  " << (i < it->second.rules.size() ? it->second.rules[i] : "-") << "\n  want "
                             << (i < chain.rules.size() ? chain.rules[i] : "-"));
      return false;
    }
  }
  return a.exists == b.exists && a.sets.size() == b.sets.size() && a.chains.size() == b.chains.size();
}

}  // namespace

TEST_CASE("apply programs the rendered table, and reading it back gives the same table", "[netlink]") {
  auto b = backend();
  ClusterState state = samples();
  // With and without the flow log's rules (the log, its limit, the service mark).
  bool logged = GENERATE(false, true);
  auto flowLog = logged ? std::optional(render::FlowLogOptions{.group = 9, .allowed = true}) : std::nullopt;
  Table desired = render::render(policy::Model::of(state), "node-a", {}, flowLog);
  auto applied = b->apply(desired);
  INFO((applied ? "" : applied.error().message));
  REQUIRE(applied.ok());
  CHECK(applied->messages > 20);
  auto view = b->read("nftpol");
  REQUIRE(view.ok());
  CHECK(sameView(*view, viewOf(desired)));
  // And nft itself lists what `nftpol render` prints.
  CHECK(normalised(run("nft list table inet nftpol")) == normalised(toText(desired)));
}

// A conntrack socket released per pass made every commit wait (see Conntrack): one socket must serve them
// all.
TEST_CASE("one conntrack socket serves every pass: it revokes and forgets real entries and stays open",
          "[netlink][conntrack]") {
  auto b = backend();
  Table desired = render::render(policy::Model::of(samples()), "node-a", {});
  REQUIRE(b->apply(desired).ok());  // its ct rules make the kernel track this namespace's connections
  run("ip link set lo up");
  // One UDP flow on loopback: a tracked entry with 127.0.0.1 at both ends.
  int receiver = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0),
      sender = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(receiver, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0);
  socklen_t length = sizeof to;
  REQUIRE(getsockname(receiver, reinterpret_cast<sockaddr*>(&to), &length) == 0);
  REQUIRE(sendto(sender, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) == 1);
  close(sender);
  close(receiver);

  Conntrack conntrack;
  CHECK(conntrack.portid() == 0);  // opened at the first pass, not before
  auto revoked = conntrack.revokeDenied(desired);
  INFO((revoked ? "" : revoked.error().message));
  REQUIRE(revoked.ok());
  CHECK(revoked->checked >= 1);
  uint32_t port = conntrack.portid();
  CHECK(port != 0);
  auto forgotten = conntrack.forgetConnections({*IpAddress::parse("127.0.0.1")});
  REQUIRE(forgotten.ok());
  CHECK(*forgotten >= 1);
  auto again = conntrack.revokeDenied(desired);
  REQUIRE(again.ok());
  CHECK(again->checked == 0);  // the flow is forgotten
  CHECK(conntrack.portid() == port);
}

TEST_CASE("the node's pod subnets, nested and adjacent, are programmed, read back and grown", "[netlink]") {
  auto b = backend();
  auto model = policy::Model::of(samples());
  auto cidr = [](const char* text) { return *Cidr::parse(text); };
  // A Node's podCIDR, a --pod-cidr nested in it and a subnet the plugin brought beside it.
  std::vector<Cidr> subnets = {cidr("10.244.1.0/24"), cidr("10.244.1.128/25"), cidr("10.244.2.0/24"),
                               cidr("fd00:10:244:1::/64")};
  Table desired = render::render(model, "node-a", subnets);
  auto applied = b->apply(desired);
  INFO((applied ? "" : applied.error().message));
  REQUIRE(applied.ok());
  auto view = b->read("nftpol");
  REQUIRE(view.ok());
  CHECK(sameView(*view, viewOf(desired)));
  CHECK(normalised(run("nft list table inet nftpol")) == normalised(toText(desired)));
  subnets.push_back(cidr("10.244.3.0/24"));  // another one touching the merged range
  Table grown = render::render(model, "node-a", subnets);
  auto again = b->apply(grown);
  INFO((again ? "" : again.error().message));
  REQUIRE(again.ok());
  CHECK(run("nft list set inet nftpol node-pod-subnets-v4").find("10.244.1.0-10.244.3.255") !=
        std::string::npos);
}

// A table an older nftpol made, whose set and chain comments named other things (the first policy using a
// set, a backend count), is adopted as it is: the kernel keeps those comments from creation, and replacing
// them would mean emptying or recreating sets that are in use.
TEST_CASE("a table whose comments differ is adopted without emptying or recreating anything", "[netlink]") {
  auto b = backend();
  Table desired = render::render(policy::Model::of(samples()), "node-a");
  Table older = desired;
  for (auto& set : older.sets)
    set.comment = "older: " + set.comment;
  for (auto& chain : older.chains)
    chain.comment = "older: " + chain.comment;
  REQUIRE(b->apply(older).ok());
  auto adopted = b->apply(desired);
  REQUIRE(adopted.ok());
  CHECK(adopted->messages == 0);
  CHECK(sameView(*b->read("nftpol"), viewOf(desired)));

  // A rule whose comment differs is replaced where it stands (deleted by its handle, its successor inserted
  // in its place), or its chain refilled: rules and nothing of any set.
  for (auto& chain : older.chains)
    for (auto& rule : chain.rules)
      if (!rule.comment.empty()) rule.comment = "older: " + rule.comment;
  REQUIRE(b->apply(older).ok());
  Plan steps = plan(*b->read("nftpol"), desired);
  CHECK_FALSE(steps.empty());
  for (const Step& step : steps.steps) {
    INFO("step " << static_cast<int>(step.kind) << " " << step.name);
    CHECK((step.kind == Step::Kind::kFlushChain || step.kind == Step::Kind::kAddRules ||
           step.kind == Step::Kind::kDeleteRule || step.kind == Step::Kind::kInsertRules));
  }
  REQUIRE(b->apply(desired).ok());
  CHECK(sameView(*b->read("nftpol"), viewOf(desired)));
}

TEST_CASE("an unchanged state sends no message, and a one-pod change sends only its delta", "[netlink]") {
  auto b = backend();
  ClusterState state = samples();
  REQUIRE(b->apply(render::render(policy::Model::of(state), "node-a")).ok());
  auto again = b->apply(render::render(policy::Model::of(state), "node-a"));
  REQUIRE(again.ok());
  CHECK(again->messages == 0);

  FakeBackend fake;
  REQUIRE(fake.apply(render::render(policy::Model::of(state), "node-a")).ok());
  // A new frontend pod on another node: the peer sets that name frontends gain one element, nothing else.
  Pod pod = *state.findPod("shop", "frontend-1");
  pod.name = "frontend-2";
  pod.ips = {*IpAddress::parse("10.244.2.40")};
  state.upsert(pod);
  Table changed = render::render(policy::Model::of(state), "node-a");
  auto delta = b->apply(changed);
  REQUIRE(delta.ok());
  auto expected = fake.apply(changed);
  CHECK(delta->messages == 1);
  CHECK(delta->messages == expected->messages);
  // Relabelling a local pod moves its address between chains: map elements, and at most the chains it needs.
  Pod db = *state.findPod("shop", "db-0");
  db.labels.set("app", "api");
  state.upsert(db);
  Table relabelled = render::render(policy::Model::of(state), "node-a");
  auto relabel = b->apply(relabelled);
  REQUIRE(relabel.ok());
  CHECK(relabel->messages == fake.apply(relabelled)->messages);
  CHECK(relabel->messages > 0);
  CHECK(relabel->messages < FakeBackend().apply(relabelled)->messages / 2);  // far from a reload
  CHECK(sameView(*b->read("nftpol"), viewOf(render::render(policy::Model::of(state), "node-a"))));
}

TEST_CASE("an endpoint change is a small batch that rewrites the service's balancing in place", "[netlink]") {
  auto b = backend();
  ClusterState state = samples();
  REQUIRE(b->apply(render::render(policy::Model::of(state), "node-a")).ok());
  // The api service loses a backend: a new map of one, the service chain's rule rewritten, the old map and
  // the gone endpoint's chain removed after what refers to them (or the kernel answers EBUSY).
  EndpointSlice slice = *state.findEndpointSlice("shop", "api-x7k2p");
  slice.endpoints.pop_back();
  state.upsert(slice);
  Table fewer = render::render(policy::Model::of(state), "node-a");
  auto applied = b->apply(fewer);
  REQUIRE(applied.ok());
  CHECK(applied->messages > 0);
  CHECK(applied->messages < 12);
  CHECK(sameView(*b->read("nftpol"), viewOf(fewer)));
  // nft reads the new map's key back as what it is (the listing order after a change is nft's own).
  auto map = std::find_if(fewer.maps.begin(), fewer.maps.end(),
                          [](const Map& m) { return m.key.kind == KeyType::Kind::kRandom; });
  REQUIRE(map != fewer.maps.end());
  CHECK(map->key.modulus == 1);
  CHECK(run("nft list map inet nftpol " + map->name).find("typeof numgen random mod 1 : verdict") !=
        std::string::npos);
  // And back: the endpoint returns.
  state.upsert(*samples().findEndpointSlice("shop", "api-x7k2p"));
  Table again = render::render(policy::Model::of(state), "node-a");
  REQUIRE(b->apply(again).ok());
  CHECK(sameView(*b->read("nftpol"), viewOf(again)));
  // Without backends the cluster IP moves to the reject set.
  slice.endpoints.clear();
  state.upsert(slice);
  Table none = render::render(policy::Model::of(state), "node-a");
  REQUIRE(b->apply(none).ok());
  CHECK(sameView(*b->read("nftpol"), viewOf(none)));
  CHECK(run("nft list set inet nftpol no-endpoints-v4").find("10.96.0.20 . tcp . 80") != std::string::npos);
}

TEST_CASE("a table deleted, a set flushed or a rule added behind our back is repaired", "[netlink]") {
  auto b = backend();
  Table desired = render::render(policy::Model::of(samples()), "node-a");
  REQUIRE(b->apply(desired).ok());
  SECTION("deleted") {
    run("nft delete table inet nftpol");
    CHECK(!b->read("nftpol")->exists);
  }
  SECTION("set flushed and foreign rule added") {
    auto peers = std::find_if(desired.sets.begin(), desired.sets.end(), [](const Set& s) {
      return s.name.starts_with("peer-") && !s.elements.empty();
    });
    REQUIRE(peers != desired.sets.end());
    run("nft flush set inet nftpol " + peers->name);
    run("nft add rule inet nftpol filter-forward accept");
  }
  CHECK_FALSE(sameView(*b->read("nftpol"), viewOf(desired)));
  auto repaired = b->apply(desired);
  REQUIRE(repaired.ok());
  CHECK(repaired->messages > 0);
  CHECK(sameView(*b->read("nftpol"), viewOf(desired)));
  CHECK(b->apply(desired)->messages == 0);
}

TEST_CASE("a refused transaction changes nothing, and says which rule the kernel refused", "[netlink]") {
  auto b = backend();
  Table good = render::render(policy::Model::of(samples()), "node-a");
  REQUIRE(b->apply(good).ok());
  Table bad = good;
  Chain broken{.name = "ingress-00000000/x/broken"};
  broken.rules.push_back({{AddressInSet{Family::kV4, Field::kSource, "no-such-set"}},
                          Verdict{Verdict::Kind::kAccept, ""},
                          "x/broken ingress[0]"});
  bad.chains.push_back(broken);
  bad.sets.erase(bad.sets.begin());  // and a removal that would have happened in the same transaction
  auto result = b->apply(bad);
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().message.find(
            "add rule 0 of chain ingress-00000000/x/broken (x/broken ingress[0]): No such "
            "file or directory") != std::string::npos);
  CHECK(sameView(*b->read("nftpol"), viewOf(good)));
}

TEST_CASE("other tables are never touched", "[netlink]") {
  auto b = backend();
  run("nft add table inet other; nft add chain inet other c; nft add rule inet other c accept");
  REQUIRE(b->apply(render::render(policy::Model::of(samples()), "node-a")).ok());
  REQUIRE(b->remove("nftpol").ok());
  CHECK(run("nft list table inet other").find("accept") != std::string::npos);
  run("nft delete table inet other");
}

TEST_CASE("a large node: 10k pods, 2k policies, applied and re-applied", "[netlink]") {
  auto b = backend();
  ClusterState state =
      bench::generateCluster({.namespaces = 1000, .pods = 10000, .policies = 2000, .seed = 42});
  Table desired = render::render(policy::Model::of(state), "node-7");
  auto applied = b->apply(desired);
  INFO((applied ? "" : applied.error().message));
  REQUIRE(applied.ok());
  CHECK(sameView(*b->read("nftpol"), viewOf(desired)));
  CHECK(b->apply(desired)->messages == 0);
}

namespace {
// Sends one UDP datagram from this namespace's loopback to `to`:9 (nothing listens; the log sees it first).
void sendUdp(const std::string& to, uint16_t sourcePort) {
  bool v6 = to.find(':') != std::string::npos;
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_storage from{}, dst{};
  socklen_t len = 0;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&dst);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(9);
    inet_pton(AF_INET6, to.c_str(), &a->sin6_addr);
    auto* f = reinterpret_cast<sockaddr_in6*>(&from);
    f->sin6_family = AF_INET6;
    f->sin6_port = htons(sourcePort);
    len = sizeof(sockaddr_in6);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&dst);
    a->sin_family = AF_INET;
    a->sin_port = htons(9);
    inet_pton(AF_INET, to.c_str(), &a->sin_addr);
    auto* f = reinterpret_cast<sockaddr_in*>(&from);
    f->sin_family = AF_INET;
    f->sin_port = htons(sourcePort);
    len = sizeof(sockaddr_in);
  }
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&from), len) == 0);
  REQUIRE(sendto(fd, "x", 1, 0, reinterpret_cast<sockaddr*>(&dst), len) == 1);
  close(fd);
}

// Reads packets until `want` arrived or 3 s passed.
std::vector<LoggedPacket> readLogged(NflogReader& reader, size_t want) {
  std::vector<LoggedPacket> got;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (got.size() < want && std::chrono::steady_clock::now() < deadline) {
    pollfd p{reader.fd(), POLLIN, 0};
    poll(&p, 1, 100);
    auto n = reader.read([&](const LoggedPacket& packet) { got.push_back(packet); });
    REQUIRE(n.ok());
  }
  return got;
}

Table loggingTable(uint32_t rate, uint32_t burst) {
  Table t;
  Chain out{.name = "out", .base = BaseChain{ChainType::kFilter, Hook::kOutput, Priority::kFilter}};
  out.rules.push_back(nft::Rule{.matches = {PortIs{{Protocol::kUDP, 9, 9}}},
                                .action = Continue{},
                                .comment = "logged",
                                .statements = {LogToGroup{.counter = "offered",
                                                          .group = 5,
                                                          .snaplen = 96,
                                                          .prefix = "nftpol ingress denied abc",
                                                          .ratePerSecond = rate,
                                                          .burst = burst}}});
  t.chains.push_back(out);
  t.counters.push_back({"offered", "what reached the log rule"});
  return t;
}
}  // namespace

TEST_CASE("logged packets reach the nfnetlink_log reader with prefix, addresses, ports and sequence",
          "[netlink]") {
  auto b = backend();
  REQUIRE(run("ip link set lo up").empty());
  Table t = loggingTable(1000, 200);
  REQUIRE(b->apply(t).ok());
  auto view = b->read("nftpol");
  REQUIRE(view.ok());
  CHECK(sameView(*view, viewOf(t)));  // a log rule reads back as it was sent: no rewrite on the next commit
  CHECK(b->apply(t)->messages == 0);
  CHECK(normalised(run("nft list table inet nftpol")) == normalised(toText(t)));

  auto reader = NflogReader::open(5, 96, std::chrono::milliseconds(10));
  REQUIRE(reader.ok());
  sendUdp("127.0.0.1", 40001);
  sendUdp("::1", 40002);
  auto got = readLogged(**reader, 2);
  REQUIRE(got.size() == 2);
  CHECK(got[0].prefix == "nftpol ingress denied abc");
  CHECK(got[0].source.toString() == "127.0.0.1");
  CHECK(got[0].destination.toString() == "127.0.0.1");
  CHECK(got[0].protocol == 17);
  CHECK(got[0].sourcePort == 40001);
  CHECK(got[0].destinationPort == 9);
  CHECK(got[1].source.toString() == "::1");
  CHECK(got[1].sourcePort == 40002);
  CHECK(got[1].sequence == got[0].sequence + 1);
  CHECK((*reader)->losses().sequenceGaps == 0);
  // A second reader of the same group in this namespace is refused, and says so.
  auto again = NflogReader::open(5, 96, std::chrono::milliseconds(10));
  REQUIRE(!again.ok());
  CHECK(again.error().message.find("group 5") != std::string::npos);
}

TEST_CASE("over its rate a log rule skips the log and never the rest: losses are never silent", "[netlink]") {
  auto b = backend();
  REQUIRE(run("ip link set lo up").empty());
  REQUIRE(b->apply(loggingTable(1, 6)).ok());  // 6 at once, then one a second
  auto reader = NflogReader::open(5, 96, std::chrono::milliseconds(10));
  REQUIRE(reader.ok());
  for (int i = 0; i < 50; ++i)
    sendUdp("127.0.0.1", static_cast<uint16_t>(41000 + i));
  auto got = readLogged(**reader, 50);
  CHECK(got.size() >= 6);
  CHECK(got.size() < 10);
  CHECK((*reader)->losses().sequenceGaps == 0);  // what the limit skipped was never given a number...
  // ... but the counter before the limit saw every packet: the difference is what the limit held back.
  auto offered = b->counterPackets("nftpol", "offered");
  REQUIRE(offered.ok());
  CHECK(*offered == 50);
  CHECK_FALSE(b->counterPackets("nftpol", "absent").ok());
  // A table without the log rule removes the counter in the same transaction as the rule naming it.
  Table plain = loggingTable(1, 6);
  plain.counters.clear();
  std::get<LogToGroup>(plain.chains[0].rules[0].statements[0]).counter.clear();
  auto applied = b->apply(plain);
  INFO((applied ? "" : applied.error().message));
  REQUIRE(applied.ok());
  CHECK(b->read("nftpol")->counters.empty());
  CHECK_FALSE(b->counterPackets("nftpol", "offered").ok());
}

// A chain of jumps edited in place in the kernel: a jump inserted between two others, one removed, each in
// one message by the handles the kernel echoed when it made the rules; after another program's commit, by the
// handles a dump reads back. The kernel's order is checked by listing the chain.
TEST_CASE("a chain of jumps is edited where it stands, by the kernel's handles", "[netlink]") {
  auto b = backend();
  auto rule = [](Verdict::Kind kind, const std::string& target) {
    nft::Rule r;
    r.action = Verdict{kind, target};
    return r;
  };
  auto jumps = [&](std::vector<std::string> targets) {
    Table t;
    t.name = "nftpol";
    Chain c{.name = "class"};
    for (const auto& target : targets) {
      t.chains.push_back(Chain{.name = target});
      c.rules.push_back(rule(Verdict::Kind::kJump, target));
    }
    c.rules.push_back(rule(Verdict::Kind::kAccept, ""));
    t.chains.push_back(c);
    return t;
  };
  auto order = [] {
    std::string listed = run("nft list chain inet nftpol class"), out;
    for (size_t at = listed.find("jump "); at != std::string::npos; at = listed.find("jump ", at + 1))
      out += listed.substr(at + 5, listed.find_first_of(" \n", at + 5) - at - 5) + " ";
    return out;
  };
  REQUIRE(b->apply(jumps({"a", "b", "c"})).ok());
  auto inserted = b->apply(jumps({"a", "x", "b", "c"}));
  REQUIRE(inserted.ok());
  CHECK(inserted->messages == 2);  // chain x, and the jump to it
  CHECK(order() == "a x b c ");
  auto removed = b->apply(jumps({"a", "x", "c"}));
  REQUIRE(removed.ok());
  CHECK(removed->messages == 2);  // the jump to b, and chain b
  CHECK(order() == "a x c ");
  auto moved = b->apply(jumps({"x", "c", "a"}));  // a priority changed: one jump moves
  REQUIRE(moved.ok());
  CHECK(moved->messages == 2);
  CHECK(order() == "x c a ");
  REQUIRE(b->apply(jumps({"a", "x", "c"})).ok());

  // Another program's commit: the next change reads the table again, handles and all.
  run("nft add table inet someone-else");
  auto afterForeign = b->apply(jumps({"y", "a", "x", "c"}));
  REQUIRE(afterForeign.ok());
  CHECK(afterForeign->messages == 2);
  CHECK(order() == "y a x c ");
  CHECK(sameView(*b->read("nftpol"), viewOf(jumps({"y", "a", "x", "c"}))));
  run("nft delete table inet someone-else");
}
