#pragma once

// The flow log: what the kernel logged, aggregated and attributed in can-reach's words. The reader thread
// hands packets to a FlowCollector; at each flush the reconcile loop takes the aggregates, attributes them
// against the model it enforces (the deciding side and verdict are the kernel's, read from the log rule's
// prefix; the policies and rules are the model's), and hands the records to the file and to /flows.

#include <chrono>
#include <cstdint>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "nftpol/json_value.h"
#include "nftpol/nft/nflog.h"
#include "nftpol/policy/compiled.h"
#include "nftpol/policy/services.h"
#include "nftpol/render/flow_log.h"

namespace nftpol::controller {

using SystemTime = std::chrono::system_clock::time_point;

// Packets of one decision between the same two ends, to the same port, within one flush interval.
struct FlowAggregate {
  render::LoggedDecision decision;
  IpAddress source, destination;
  uint8_t protocol = 0;
  uint16_t sourcePort = 0;  // the first packet's
  uint16_t destinationPort = 0;
  bool translated = false;  // addressed to a service, translated to `destination`
  uint64_t count = 0;
  SystemTime firstSeen, lastSeen;
};

// Takes logged packets from the reader's thread and gives their aggregates to the flush; bounded, and what
// does not fit is counted, never queued.
class FlowCollector {
 public:
  explicit FlowCollector(size_t maxAggregates = 20000) : max_(maxAggregates) {}
  void add(const nft::LoggedPacket& packet, SystemTime now);
  std::vector<FlowAggregate> take();
  uint64_t overflowed() const;       // packets with no room for a new aggregate
  uint64_t unknownPrefixes() const;  // logged by a rule that is not ours

 private:
  using Key = std::tuple<IpAddress, IpAddress, uint8_t, uint16_t, bool, std::string>;  // + prefix
  mutable std::mutex mu_;
  size_t max_;
  std::map<Key, FlowAggregate> open_;
  uint64_t overflowed_ = 0, unknown_ = 0;
};

// One attributed record: the JSON line, and what /flows and `observe` filter on.
struct FlowRecord {
  json::Value json;
  std::string verdict;                    // "denied", "allowed", "would-deny"
  std::string sourcePod, destinationPod;  // "namespace/name", empty for an address outside the cluster
  std::string line() const { return json.serialize(); }
};

// The service behind each backend (address, protocol, port), for records of translated connections.
class ServiceIndex {
 public:
  ServiceIndex() = default;
  explicit ServiceIndex(const policy::Services& services);
  // "namespace/name" of the services that translate to this backend (usually one), sorted.
  std::vector<std::string> find(const IpAddress& backend, uint8_t protocol, uint16_t port) const;

 private:
  std::map<std::tuple<IpAddress, uint8_t, uint16_t>, std::vector<std::string>> byBackend_;
};

// The record of one aggregate, attributed against `compiled`: who the ends are, the service, and for each
// side the model's verdict, isolating policies and admitting rule; the verdict and the deciding side are the
// kernel's.
// A would-deny (an audit chain's decision) is attributed against `asEnforced`, the model with the policies in
// audit mode counted as enforced; its deciding side names them under "audit".
FlowRecord attribute(const policy::Compiled& compiled, const ServiceIndex& services, const FlowAggregate& a,
                     const std::string& node, SystemTime now, const policy::Compiled* asEnforced = nullptr);

// "2026-12-07T05:30:01.123Z"
std::string isoTime(SystemTime t);

// A record as a person reads it, in one line that starts as can-reach's verdict line:
// "DENIED: y/a -> y/b on TCP/81: ingress of y/b isolated by y/default-deny, y/from-x-a; no rule allows it
// (3 connections, 05:30:01.123-05:30:02.000, node-1)".
std::string flowText(const json::Value& record);

// The filters of /flows and `nftpol observe`: verdict, namespace (either end), pod (namespace/name, either
// end). Parsed from a query string ("verdict=denied&pod=shop/db-0"); unknown keys are errors.
struct FlowFilter {
  std::optional<std::string> verdict, ns, pod;
  bool follow = false;
  bool matches(const FlowRecord& r) const;
  static Result<FlowFilter> parse(const std::map<std::string, std::string>& query);
};

// The most recent records, and the streams of the clients that follow them.
class FlowFeed {
 public:
  explicit FlowFeed(size_t keep = 10000) : keep_(keep) {}
  void publish(const std::vector<FlowRecord>& records);
  std::string recent(const FlowFilter& filter) const;  // JSON lines
  // `write` gets each later matching line; it returns false when the client is gone or too far behind,
  // which ends the follow.
  using Writer = std::function<bool(const std::string&)>;
  uint64_t follow(FlowFilter filter, Writer write);
  void unfollow(uint64_t id);
  size_t followers() const;

 private:
  mutable std::mutex mu_;
  size_t keep_;
  std::deque<FlowRecord> recent_;
  uint64_t nextId_ = 1;
  std::map<uint64_t, std::pair<FlowFilter, Writer>> followers_;
};

// --flow-log PATH: JSON lines, at most `maxBytes` a file; a full file becomes PATH.1 (PATH.1 becomes
// PATH.2, ...), and the oldest of `keep` goes.
class FlowFile {
 public:
  static Result<std::unique_ptr<FlowFile>> open(std::string path, uint64_t maxBytes, int keep);
  std::optional<Error> write(const std::vector<FlowRecord>& records);

 private:
  FlowFile(std::string path, uint64_t maxBytes, int keep)
      : path_(std::move(path)), max_(maxBytes), keep_(keep) {}
  std::optional<Error> rotate();
  std::string path_;
  uint64_t max_;
  int keep_;
  uint64_t size_ = 0;
  std::ofstream out_;
};

}  // namespace nftpol::controller
