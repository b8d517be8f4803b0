// The flow log's user-space half: aggregation, attribution in can-reach's words, filters, the file's
// rotation, the text line, and the packet decoder.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "nftpol/controller/flow_log.h"
#include "nftpol/policy/loader.h"

using namespace nftpol;
using namespace nftpol::controller;

namespace {

nft::LoggedPacket packet(const std::string& prefix, const std::string& from, const std::string& to,
                         uint16_t port, uint32_t mark = 0) {
  nft::LoggedPacket p;
  p.prefix = prefix;
  p.source = *IpAddress::parse(from);
  p.destination = *IpAddress::parse(to);
  p.protocol = 6;
  p.sourcePort = 40000;
  p.destinationPort = port;
  p.mark = mark;
  return p;
}

policy::ClusterState samples() {
  policy::ClusterState state;
  std::vector<policy::Diagnostic> diagnostics;
  policy::loadPaths({NFTPOL_SOURCE_DIR "/samples/cluster"}, state, diagnostics);
  REQUIRE(!policy::hasErrors(diagnostics));
  return state;
}

const json::Value& at(const json::Value& v, std::string_view key) {
  const json::Value* f = v.find(key);
  REQUIRE(f);
  return *f;
}

}  // namespace

TEST_CASE("the collector aggregates one decision between the same ends, and bounds what it holds") {
  FlowCollector collector(2);
  auto t0 = std::chrono::system_clock::now();
  collector.add(packet("nftpol ingress denied abc", "10.244.1.10", "10.244.1.12", 5432), t0);
  collector.add(packet("nftpol ingress denied abc", "10.244.1.10", "10.244.1.12", 5432),
                t0 + std::chrono::seconds(1));
  collector.add(packet("nftpol egress denied def", "10.244.1.12", "10.244.1.11", 8080), t0);
  collector.add(packet("nftpol egress denied def", "10.244.1.12", "10.244.1.30", 8080), t0);  // no room
  collector.add(packet("someone else's", "10.244.1.12", "10.244.1.30", 8080), t0);
  CHECK(collector.overflowed() == 1);
  CHECK(collector.unknownPrefixes() == 1);
  auto taken = collector.take();
  REQUIRE(taken.size() == 2);
  auto& first = taken[0].destination.toString() == "10.244.1.12" ? taken[0] : taken[1];
  CHECK(first.count == 2);
  CHECK(first.firstSeen == t0);
  CHECK(first.lastSeen == t0 + std::chrono::seconds(1));
  CHECK(first.decision.side == render::LoggedDecision::Side::kIngress);
  CHECK(collector.take().empty());  // taken once
}

TEST_CASE("a record names the ends, the deciding side, and each side's policies as can-reach does") {
  policy::ClusterState state = samples();
  policy::Compiled c = policy::Compiled::build(state);
  ServiceIndex services(policy::Services::build(state));
  auto now = std::chrono::system_clock::now();
  FlowCollector collector;
  // frontend-0 -> db-0:5432, denied at its egress (shop/frontend-egress allows only api:8080 and DNS).
  collector.add(packet("nftpol egress denied x", "10.244.1.10", "10.244.1.12", 5432), now);
  // frontend-0 -> api-0:8080 through the service shop/api, allowed at api-0's ingress.
  collector.add(
      packet("nftpol ingress allowed y 2", "10.244.1.10", "10.244.1.11", 8080, render::kTranslatedMark), now);
  // an outside address -> db-0: only the destination's side applies.
  collector.add(packet("nftpol ingress denied z", "192.0.2.1", "10.244.1.12", 5432), now);
  for (const auto& a : collector.take()) {
    FlowRecord r = attribute(c, services, a, "node-a", now);
    const json::Value& j = r.json;
    INFO(r.line());
    CHECK(at(j, "node").asString() == "node-a");
    CHECK(at(j, "protocol").asString() == "TCP");
    if (a.destination.toString() == "10.244.1.11") {
      CHECK(r.verdict == "allowed");
      CHECK(at(at(j, "destination"), "service").asString() == "shop/api");
      CHECK(at(j, "side").asString() == "ingress");
      CHECK(at(at(at(j, "ingress"), "allowedBy"), "policy").asString() == "shop/frontend-to-api");
      CHECK(at(at(at(j, "ingress"), "allowedBy"), "rule").asString() == "ingress[0]");
      CHECK(at(at(at(j, "egress"), "allowedBy"), "policy").asString() == "shop/frontend-egress");
      CHECK(r.sourcePod == "shop/frontend-0");
      CHECK(r.destinationPod == "shop/api-0");
      CHECK_FALSE(j.find("modelDisagrees"));
      CHECK(
          flowText(j).starts_with("ALLOWED: shop/frontend-0 -> shop/api-0 (service shop/api) on TCP/8080: "
                                  "ingress of shop/api-0 isolated by "
                                  "shop/allow-scraping, shop/default-deny, shop/frontend-to-api; allowed by "
                                  "shop/frontend-to-api ingress[0]; "
                                  "egress of shop/frontend-0 isolated by"));
    } else if (a.source.toString() == "10.244.1.10") {
      CHECK(r.verdict == "denied");
      CHECK(at(j, "side").asString() == "egress");
      CHECK(at(at(j, "egress"), "verdict").asString() == "denied");
      auto by = at(at(j, "egress"), "isolatedBy").asArray();
      REQUIRE(by.size() == 2);
      CHECK(by[0].asString() == "shop/default-deny");
      CHECK(by[1].asString() == "shop/frontend-egress");
      CHECK_FALSE(at(j, "egress").find("allowedBy"));
      CHECK_FALSE(at(j, "destination").find("service"));  // not translated
      CHECK(flowText(j).starts_with(
          "DENIED: shop/frontend-0 -> shop/db-0 on TCP/5432: egress of shop/frontend-0 "
          "isolated by shop/default-deny, shop/frontend-egress; no rule allows it (1 "
          "connection, "));
    } else {
      CHECK_FALSE(at(j, "source").find("pod"));
      CHECK(at(at(j, "source"), "ip").asString() == "192.0.2.1");
      CHECK_FALSE(j.find("egress"));  // outside the cluster: no policy of ours governs that end
      CHECK(at(at(j, "ingress"), "verdict").asString() == "denied");
    }
  }
  // The kernel's verdict against a model that says otherwise (a change on its way to the kernel) is flagged.
  collector.add(packet("nftpol ingress denied y", "10.244.1.10", "10.244.1.11", 8080), now);
  FlowRecord odd = attribute(c, services, collector.take().front(), "node-a", now);
  CHECK(odd.json.find("modelDisagrees"));
  CHECK_THAT(flowText(odd.json), Catch::EndsWith("[the model disagrees]"));
}

TEST_CASE("flow filters: verdict, namespace and pod of either end, and bad ones say what is wrong") {
  FlowRecord r{.json = {}, .verdict = "denied", .sourcePod = "shop/frontend-0", .destinationPod = ""};
  CHECK(FlowFilter::parse({{"verdict", "denied"}})->matches(r));
  CHECK_FALSE(FlowFilter::parse({{"verdict", "allowed"}})->matches(r));
  CHECK(FlowFilter::parse({{"namespace", "shop"}})->matches(r));
  CHECK_FALSE(FlowFilter::parse({{"namespace", "sho"}})->matches(r));
  CHECK(FlowFilter::parse({{"pod", "shop/frontend-0"}})->matches(r));
  CHECK_FALSE(FlowFilter::parse({{"pod", "shop/frontend-1"}})->matches(r));
  CHECK(FlowFilter::parse({{"follow", ""}})->follow);
  CHECK_THAT(FlowFilter::parse({{"verdict", "maybe"}}).error().message, Catch::Contains("denied, allowed"));
  CHECK_THAT(FlowFilter::parse({{"pod", "frontend"}}).error().message, Catch::Contains("namespace/name"));
  CHECK_THAT(FlowFilter::parse({{"colour", "red"}}).error().message, Catch::Contains("unknown parameter"));
}

TEST_CASE("the flow log file rotates at its size and keeps a bounded number of old files") {
  auto dir = std::filesystem::temp_directory_path() / ("nftpol-flowfile-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string path = (dir / "flows.jsonl").string();
  auto file = FlowFile::open(path, 1000, 2);
  REQUIRE(file.ok());
  json::Value line;
  line["pad"] = std::string(90, 'x');  // about 100 bytes a line
  std::vector<FlowRecord> records(35, FlowRecord{.json = line});
  REQUIRE(!(*file)->write(records));
  CHECK(std::filesystem::file_size(path) <= 1000);
  CHECK(std::filesystem::file_size(path + ".1") <= 1000);
  CHECK(std::filesystem::file_size(path + ".1") > 900);
  CHECK(std::filesystem::exists(path + ".2"));
  CHECK_FALSE(std::filesystem::exists(path + ".3"));  // keep = 2
  // No line is split across files.
  std::ifstream in(path + ".1");
  for (std::string l; std::getline(in, l);)
    CHECK(json::parse(l).ok());
  std::filesystem::remove_all(dir);
  CHECK_FALSE(FlowFile::open("/nonexistent-dir/flows.jsonl", 1000, 2).ok());
}

TEST_CASE("logged packets decode: IPv4, IPv6 past its extension headers, fragments without ports") {
  nft::LoggedPacket p;
  // IPv4 TCP 10.0.0.1:1234 -> 10.0.0.2:80
  std::vector<uint8_t> v4 = {0x45, 0, 0, 40, 0,  0, 0x40, 0, 64,   6,    0, 0,
                             10,   0, 0, 1,  10, 0, 0,    2, 0x04, 0xd2, 0, 80};
  REQUIRE(nft::decodePacketHeaders(v4.data(), v4.size(), p));
  CHECK(p.source.toString() == "10.0.0.1");
  CHECK(p.destination.toString() == "10.0.0.2");
  CHECK(p.sourcePort == 1234);
  CHECK(p.destinationPort == 80);
  // A later fragment has no ports.
  v4[6] = 0x00;
  v4[7] = 0x10;
  REQUIRE(nft::decodePacketHeaders(v4.data(), v4.size(), p));
  CHECK(p.destinationPort == 0);
  // IPv6 UDP behind a hop-by-hop header (8 bytes): ::1 port 53 -> ::2 port 5353.
  std::vector<uint8_t> v6(40 + 8 + 4, 0);
  v6[0] = 0x60;
  v6[6] = 0;  // hop-by-hop
  v6[23] = 1;
  v6[39] = 2;
  v6[40] = 17;  // next: UDP
  v6[41] = 0;   // 8 bytes
  v6[48] = 0;
  v6[49] = 53;
  v6[50] = 0x14;
  v6[51] = 0xe9;
  REQUIRE(nft::decodePacketHeaders(v6.data(), v6.size(), p));
  CHECK(p.protocol == 17);
  CHECK(p.source.toString() == "::1");
  CHECK(p.sourcePort == 53);
  CHECK(p.destinationPort == 5353);
  // Too short to hold the ports: not decoded.
  CHECK_FALSE(nft::decodePacketHeaders(v6.data(), 50, p));
  CHECK_FALSE(nft::decodePacketHeaders(v4.data(), 10, p));
}
