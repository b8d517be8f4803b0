#include "nftpol/controller/flow_log.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <filesystem>

#include "nftpol/netlink.h"
#include "nftpol/nft/ruleset.h"
#include "nftpol/policy/reach.h"

namespace nftpol::controller {

using render::LoggedDecision;

void FlowCollector::add(const nft::LoggedPacket& p, SystemTime now) {
  auto decision = render::parseFlowLogPrefix(p.prefix);
  std::lock_guard lock(mu_);
  if (!decision) {
    ++unknown_;
    return;
  }
  bool translated = (p.mark & render::kTranslatedMark) != 0;
  Key key{p.source, p.destination, p.protocol, p.destinationPort, translated, p.prefix};
  auto it = open_.find(key);
  if (it == open_.end()) {
    if (open_.size() >= max_) {
      ++overflowed_;
      return;
    }
    it = open_
             .emplace(key, FlowAggregate{.decision = *decision,
                                         .source = p.source,
                                         .destination = p.destination,
                                         .protocol = p.protocol,
                                         .sourcePort = p.sourcePort,
                                         .destinationPort = p.destinationPort,
                                         .translated = translated,
                                         .firstSeen = now})
             .first;
  }
  ++it->second.count;
  it->second.lastSeen = now;
}

std::vector<FlowAggregate> FlowCollector::take() {
  std::map<Key, FlowAggregate> taken;
  {
    std::lock_guard lock(mu_);
    taken.swap(open_);
  }
  std::vector<FlowAggregate> out;
  out.reserve(taken.size());
  for (auto& [key, a] : taken)
    out.push_back(std::move(a));
  std::sort(out.begin(), out.end(),
            [](const FlowAggregate& a, const FlowAggregate& b) { return a.firstSeen < b.firstSeen; });
  return out;
}

uint64_t FlowCollector::overflowed() const {
  std::lock_guard lock(mu_);
  return overflowed_;
}
uint64_t FlowCollector::unknownPrefixes() const {
  std::lock_guard lock(mu_);
  return unknown_;
}

ServiceIndex::ServiceIndex(const policy::Services& services) {
  for (const auto& port : services.ports()) {
    uint8_t protocol = nft::ipProtocolNumber(port.port().protocol);
    for (const auto& b : port.backends) {
      auto& keys = byBackend_[{b.address, protocol, b.port}];
      std::string key = port.service->key();
      if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
    }
  }
  for (auto& [k, keys] : byBackend_)
    std::sort(keys.begin(), keys.end());
}

std::vector<std::string> ServiceIndex::find(const IpAddress& backend, uint8_t protocol, uint16_t port) const {
  auto it = byBackend_.find({backend, protocol, port});
  return it == byBackend_.end() ? std::vector<std::string>{} : it->second;
}

std::string isoTime(SystemTime t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

namespace {

std::string protocolName(uint8_t number) {
  if (auto p = nft::protocolFromNumber(number)) return std::string(policy::toString(*p));
  if (number == 1) return "ICMP";
  if (number == 58) return "ICMPv6";
  return std::to_string(number);
}

// An end of the connection: the pod that holds the address, if one takes part.
std::optional<policy::PodId> podAt(const policy::Compiled& c, const IpAddress& ip) {
  return c.podByAddress(ip);
}

json::Value endJson(const policy::Compiled& c, const IpAddress& ip, uint16_t port, std::string& podKey) {
  json::Value o;
  if (auto id = podAt(c, ip)) {
    const policy::Pod& pod = c.pod(*id);
    o["namespace"] = pod.ns;
    o["pod"] = pod.name;
    podKey = pod.ns + "/" + pod.name;
  }
  o["ip"] = ip.toString();
  if (port) o["port"] = static_cast<int64_t>(port);
  return o;
}

json::Value::Array policyKeys(const policy::Compiled& c, const std::vector<uint32_t>& ids) {
  json::Value::Array out;
  for (uint32_t id : ids)
    out.emplace_back(c.policies()[id].policy->key());
  return out;
}

// A cluster policy rule that matched, as can-reach names it: {"policy": "cnp/x", "rule": "ingress[0]", ...}.
json::Value tierHitJson(const policy::Compiled& c, policy::Direction d, const policy::TierHit& hit) {
  const policy::ClusterNetworkPolicy& p = *c.clusterPolicies()[hit.policy].policy;
  json::Value o;
  o["policy"] = p.key();
  o["rule"] = std::string(policy::toString(d)) + "[" + std::to_string(hit.rule) + "]";
  if (const std::string& name = p.rules(d)[hit.rule].name; !name.empty()) o["name"] = name;
  o["action"] = std::string(policy::toString(hit.action));
  return o;
}

// One side as the model has it: its verdict, which tier decided (and the cluster policy rules that matched),
// the policies isolating it, the first rule admitting it.
json::Value sideJson(const policy::Compiled& c, policy::Direction d, const policy::SideVerdict& side) {
  json::Value o;
  o["verdict"] = side.allowed ? "allowed" : "denied";
  o["decidedBy"] = std::string(policy::toString(side.decidedBy));
  if (side.admin) o["admin"] = tierHitJson(c, d, *side.admin);
  if (side.baseline) o["baseline"] = tierHitJson(c, d, *side.baseline);
  if (!side.isolating.empty()) o["isolatedBy"] = policyKeys(c, side.isolating);
  if (!side.isolating.empty() && !side.hits.empty()) {
    const policy::CompiledRule& rule = c.rules()[side.hits.front().rule];
    json::Value allowedBy;
    allowedBy["policy"] = c.policies()[rule.policy].policy->key();
    allowedBy["rule"] = rule.name();
    o["allowedBy"] = std::move(allowedBy);
  }
  return o;
}

// A protocol NetworkPolicy has no ports for (ICMP): only a rule without ports admits it, so a side is allowed
// exactly when it is not isolated or some isolating rule lists no ports and its peers match.
policy::SideVerdict isolationOnly(const policy::Compiled& c, std::optional<policy::PodId> pod,
                                  policy::Direction d) {
  policy::SideVerdict side;
  side.applies = pod.has_value();
  if (!pod) return side;
  auto isolating = c.isolating(*pod, d);
  side.isolating.assign(isolating.begin(), isolating.end());
  side.allowed = side.isolating.empty();
  return side;
}

}  // namespace

FlowRecord attribute(const policy::Compiled& enforced, const ServiceIndex& services, const FlowAggregate& a,
                     const std::string& node, SystemTime now, const policy::Compiled* asEnforced) {
  const policy::Compiled& c = a.decision.audit && asEnforced ? *asEnforced : enforced;
  FlowRecord r;
  r.verdict = a.decision.audit ? "would-deny" : a.decision.allowed ? "allowed" : "denied";
  json::Value o;
  o["time"] = isoTime(now);
  o["node"] = node;
  o["verdict"] = r.verdict;
  o["protocol"] = protocolName(a.protocol);
  o["source"] = endJson(c, a.source, a.sourcePort, r.sourcePod);
  json::Value destination = endJson(c, a.destination, a.destinationPort, r.destinationPod);
  if (a.translated) {
    auto keys = services.find(a.destination, a.protocol, a.destinationPort);
    if (!keys.empty()) {
      std::string joined;
      for (const auto& k : keys)
        joined += (joined.empty() ? "" : ",") + k;
      destination["service"] = joined;
    }
  }
  o["destination"] = std::move(destination);
  if (a.decision.side != LoggedDecision::Side::kNone)
    o["side"] = a.decision.side == LoggedDecision::Side::kEgress ? "egress" : "ingress";

  std::optional<policy::PodId> from = podAt(c, a.source), to = podAt(c, a.destination);
  policy::SideVerdict egress, ingress;
  if (auto protocol = nft::protocolFromNumber(a.protocol)) {
    policy::ReachQuery q{
        .from = from ? policy::Endpoint{from, a.source} : policy::Endpoint::ofAddress(a.source),
        .to = to ? policy::Endpoint{to, a.destination} : policy::Endpoint::ofAddress(a.destination),
        .protocol = *protocol,
        .port = a.destinationPort};
    auto verdicts = policy::canReach(c, q);
    if (!verdicts.empty()) {
      egress = verdicts.front().egress;
      ingress = verdicts.front().ingress;
    }
  } else {
    egress = isolationOnly(c, from, policy::Direction::kEgress);
    ingress = isolationOnly(c, to, policy::Direction::kIngress);
  }
  if (egress.applies) o["egress"] = sideJson(c, policy::Direction::kEgress, egress);
  if (ingress.applies) o["ingress"] = sideJson(c, policy::Direction::kIngress, ingress);
  if (a.decision.audit && a.decision.side != LoggedDecision::Side::kNone) {
    // The policies in audit mode among the deciding side's: what would deny it.
    const char* side = a.decision.side == LoggedDecision::Side::kEgress ? "egress" : "ingress";
    const policy::SideVerdict& s = a.decision.side == LoggedDecision::Side::kEgress ? egress : ingress;
    json::Value::Array audited;
    for (uint32_t id : s.isolating) {
      const policy::NetworkPolicy& p = *c.policies()[id].policy;
      auto found = enforced.findPolicy(p.ns, p.name);
      if (found && enforced.policies()[*found].policy->audit) audited.emplace_back(p.key());
    }
    if (s.applies && !audited.empty()) o[side]["audit"] = std::move(audited);
  }
  // The kernel's verdict on the deciding side against the model's: they differ only while a change is on its
  // way to the kernel, or when the table was changed behind the controller's back.
  const policy::SideVerdict* decided = a.decision.side == LoggedDecision::Side::kEgress    ? &egress
                                       : a.decision.side == LoggedDecision::Side::kIngress ? &ingress
                                                                                           : nullptr;
  bool agrees = decided ? decided->allowed == a.decision.allowed
                        : a.decision.allowed == (egress.allowed && ingress.allowed);
  if (!agrees) o["modelDisagrees"] = true;
  o["count"] = static_cast<int64_t>(a.count);
  o["firstSeen"] = isoTime(a.firstSeen);
  o["lastSeen"] = isoTime(a.lastSeen);
  r.json = std::move(o);
  return r;
}

namespace {
std::string text(const json::Value& v, std::string_view key) {
  const json::Value* f = v.find(key);
  if (!f) return "";
  if (f->isString()) return f->asString();
  if (f->isInteger()) return std::to_string(f->asInteger());
  return "";
}

std::string endText(const json::Value* end) {
  if (!end) return "?";
  std::string pod = text(*end, "pod");
  return pod.empty() ? text(*end, "ip") : text(*end, "namespace") + "/" + pod;
}

// "ingress of y/b isolated by y/default-deny; no rule allows it", "egress of x/a allowed by x/p egress[0]",
// "egress of x/a: Admin tier cnp/guard egress[1] Deny".
std::string sideText(const json::Value& record, const char* side, const std::string& who) {
  const json::Value* s = record.find(side);
  if (!s) return "";
  std::string out = std::string(side) + " of " + who;
  std::string decided = text(*s, "decidedBy");
  if (const json::Value* hit = (decided == "admin" || decided == "baseline") ? s->find(decided) : nullptr)
    return out + ": " + (decided == "admin" ? "Admin" : "Baseline") + " tier " + text(*hit, "policy") + " " +
           text(*hit, "rule") + " " + text(*hit, "action");
  const json::Value* by = s->find("isolatedBy");
  if (!by) return out + " not isolated";
  out += " isolated by ";
  for (size_t i = 0; i < by->asArray().size(); ++i)
    out += (i ? ", " : "") + by->asArray()[i].asString();
  if (const json::Value* allowed = s->find("allowedBy"))
    return out + "; allowed by " + text(*allowed, "policy") + " " + text(*allowed, "rule");
  return out + "; no rule allows it";
}
}  // namespace

std::string flowText(const json::Value& r) {
  std::string verdict = text(r, "verdict");
  std::string upper;
  for (char c : verdict)
    upper += c == '-' ? '-' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string from = endText(r.find("source")), to = endText(r.find("destination"));
  std::string out = upper + ": " + from + " -> " + to;
  if (const json::Value* d = r.find("destination"))
    if (std::string service = text(*d, "service"); !service.empty()) out += " (service " + service + ")";
  std::string port = r.find("destination") ? text(*r.find("destination"), "port") : "";
  out += " on " + text(r, "protocol") + (port.empty() ? "" : "/" + port);
  // The deciding side first; an allowed connection names both.
  std::string side = text(r, "side");
  std::vector<std::string> reasons;
  if (!side.empty()) reasons.push_back(sideText(r, side.c_str(), side == "egress" ? from : to));
  if (verdict == "allowed")
    for (const char* other : {"egress", "ingress"})
      if (side != other)
        if (auto t = sideText(r, other, std::string(other) == "egress" ? from : to); !t.empty())
          reasons.push_back(t);
  for (size_t i = 0; i < reasons.size(); ++i)
    out += (i ? "; " : ": ") + reasons[i];
  std::string first = text(r, "firstSeen"), last = text(r, "lastSeen");
  auto clock = [](const std::string& iso) { return iso.size() > 11 ? iso.substr(11, 12) : iso; };
  std::string count = text(r, "count");
  out += " (" + count + (count == "1" ? " connection, " : " connections, ") + clock(first) +
         (first == last ? "" : "-" + clock(last)) + ", " + text(r, "node") + ")";
  if (const json::Value* d = r.find("modelDisagrees"); d && d->isBool() && d->asBool())
    out += " [the model disagrees]";
  return out;
}

bool FlowFilter::matches(const FlowRecord& r) const {
  if (verdict && r.verdict != *verdict) return false;
  auto inNamespace = [&](const std::string& podKey) { return podKey.starts_with(*ns + "/"); };
  if (ns && !inNamespace(r.sourcePod) && !inNamespace(r.destinationPod)) return false;
  if (pod && r.sourcePod != *pod && r.destinationPod != *pod) return false;
  return true;
}

Result<FlowFilter> FlowFilter::parse(const std::map<std::string, std::string>& query) {
  FlowFilter f;
  for (const auto& [key, value] : query) {
    if (key == "verdict") {
      if (value != "denied" && value != "allowed" && value != "would-deny")
        return Error{"verdict: \"" + value + "\" is not one of denied, allowed, would-deny"};
      f.verdict = value;
    } else if (key == "namespace") {
      f.ns = value;
    } else if (key == "pod") {
      if (value.find('/') == std::string::npos) return Error{"pod: \"" + value + "\" is not namespace/name"};
      f.pod = value;
    } else if (key == "follow") {
      if (!value.empty() && value != "1" && value != "true" && value != "0" && value != "false")
        return Error{"follow: \"" + value + "\" is not true or false"};
      f.follow = value.empty() || value == "1" || value == "true";
    } else {
      return Error{"unknown parameter \"" + key + "\" (verdict, namespace, pod, follow)"};
    }
  }
  return f;
}

void FlowFeed::publish(const std::vector<FlowRecord>& records) {
  std::lock_guard lock(mu_);
  for (const auto& r : records) {
    std::string line = r.line() + "\n";
    for (auto it = followers_.begin(); it != followers_.end();) {
      if (it->second.first.matches(r) && !it->second.second(line))
        it = followers_.erase(it);
      else
        ++it;
    }
    recent_.push_back(r);
    if (recent_.size() > keep_) recent_.pop_front();
  }
}

std::string FlowFeed::recent(const FlowFilter& filter) const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& r : recent_)
    if (filter.matches(r)) out += r.line() + "\n";
  return out;
}

uint64_t FlowFeed::follow(FlowFilter filter, Writer write) {
  std::lock_guard lock(mu_);
  uint64_t id = nextId_++;
  followers_.emplace(id, std::make_pair(std::move(filter), std::move(write)));
  return id;
}

void FlowFeed::unfollow(uint64_t id) {
  std::lock_guard lock(mu_);
  followers_.erase(id);
}

size_t FlowFeed::followers() const {
  std::lock_guard lock(mu_);
  return followers_.size();
}

Result<std::unique_ptr<FlowFile>> FlowFile::open(std::string path, uint64_t maxBytes, int keep) {
  std::unique_ptr<FlowFile> f(new FlowFile(std::move(path), maxBytes, keep));
  f->out_.open(f->path_, std::ios::app);
  if (!f->out_) return errnoError("flow log: cannot open " + f->path_, errno);
  std::error_code ec;
  auto size = std::filesystem::file_size(f->path_, ec);
  f->size_ = ec ? 0 : size;
  return f;
}

std::optional<Error> FlowFile::rotate() {
  out_.close();
  std::error_code ec;
  for (int i = keep_ - 1; i >= 1; --i) {
    std::string from = path_ + "." + std::to_string(i), to = path_ + "." + std::to_string(i + 1);
    if (std::filesystem::exists(from, ec)) std::filesystem::rename(from, to, ec);
  }
  if (keep_ >= 1)
    std::filesystem::rename(path_, path_ + ".1", ec);
  else
    std::filesystem::remove(path_, ec);
  out_.open(path_, std::ios::trunc);
  size_ = 0;
  if (!out_) return errnoError("flow log: cannot open " + path_, errno);
  return std::nullopt;
}

std::optional<Error> FlowFile::write(const std::vector<FlowRecord>& records) {
  for (const auto& r : records) {
    std::string line = r.line() + "\n";
    if (size_ > 0 && size_ + line.size() > max_)
      if (auto e = rotate()) return e;
    out_ << line;
    size_ += line.size();
  }
  out_.flush();
  if (!out_) return Error{"flow log: writing " + path_ + " failed"};
  return std::nullopt;
}

}  // namespace nftpol::controller
