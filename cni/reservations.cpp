#include "nftpol/cni/reservations.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "nftpol/json_value.h"

namespace nftpol::cni {

namespace {

using Wide = unsigned __int128;

Wide toWide(const IpAddress& ip) {
  Wide v = 0;
  int bytes = ip.bitLength() / 8;
  for (int i = 0; i < bytes; ++i)
    v = (v << 8) | ip.bytes()[static_cast<size_t>(i)];
  return v;
}

IpAddress fromWide(Family f, Wide v) {
  std::array<uint8_t, 16> bytes{};
  int n = f == Family::kV4 ? 4 : 16;
  for (int i = n - 1; i >= 0; --i, v >>= 8)
    bytes[static_cast<size_t>(i)] = static_cast<uint8_t>(v & 0xff);
  return IpAddress::fromBytes(f, bytes);
}

Result<IpAddress> addressMember(const json::Value& range, const char* key, const Cidr& subnet,
                                std::optional<IpAddress> fallback) {
  const json::Value* v = range.find(key);
  if (!v || v->isNull()) {
    if (fallback) return *fallback;
    return Error{std::string("\"") + key + "\" is missing"};
  }
  if (!v->isString()) return Error{std::string("\"") + key + "\" must be a string"};
  auto ip = IpAddress::parse(v->asString());
  if (!ip) return Error{std::string("\"") + key + "\": " + ip.error().message};
  if (!subnet.contains(*ip)) return Error{std::string("\"") + key + "\" is outside " + subnet.toString()};
  return *ip;
}

// One range as host-local canonicalises it: the start defaults to the subnet's first address after the
// network's, the end to its last (before the broadcast address in IPv4), the gateway to the start.
Result<AddressPoolRange> readRange(const json::Value& range) {
  const json::Value* subnetText = range.find("subnet");
  if (!subnetText || !subnetText->isString()) return Error{"a range needs \"subnet\""};
  auto subnet = Cidr::parse(subnetText->asString());
  if (!subnet) return Error{"\"subnet\": " + subnet.error().message};
  Family f = subnet->family();
  Wide base = toWide(subnet->base());
  int hostBits = subnet->base().bitLength() - subnet->prefixLength();
  Wide size = hostBits >= 128 ? ~Wide{0} : (Wide{1} << hostBits) - 1;  // the last offset
  IpAddress firstUsable = fromWide(f, base + (size >= 1 ? 1 : 0));
  IpAddress lastUsable = fromWide(f, base + (f == Family::kV4 && size >= 2 ? size - 1 : size));
  auto first = addressMember(range, "rangeStart", *subnet, firstUsable);
  if (!first) return first.error();
  auto last = addressMember(range, "rangeEnd", *subnet, lastUsable);
  if (!last) return last.error();
  auto gateway = addressMember(range, "gateway", *subnet, firstUsable);
  if (!gateway) return gateway.error();
  return AddressPoolRange{*subnet, *first, *last, *gateway};
}

}  // namespace

std::vector<Reservation> hostLocalReservations(const NetConf& conf) {
  std::vector<Reservation> held;
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::filesystem::path(conf.hostLocalDataDir) / conf.name, ec)) {
    if (!entry.is_regular_file()) continue;
    auto address = IpAddress::parse(entry.path().filename().string());
    if (!address) continue;
    std::ifstream in(entry.path());
    std::string id, ifname;
    std::getline(in, id);
    std::getline(in, ifname);
    auto trim = [](std::string& s) {
      while (!s.empty() && (s.back() == '\r' || s.back() == ' '))
        s.pop_back();
    };
    trim(id);
    trim(ifname);
    // Files from before host-local recorded the interface hold the container ID alone; host-local releases
    // those by ID whatever the interface.
    if (!id.empty()) held.push_back({*address, {id, ifname.empty() ? "eth0" : ifname}});
  }
  return held;
}

Result<std::vector<RangeSet>> hostLocalRanges(const std::string& configJson) {
  auto root = json::parse(configJson);
  if (!root) return Error{root.error().message};
  const json::Value* ipam = root->find("ipam");
  if (!ipam || !ipam->isObject()) return std::vector<RangeSet>{};
  std::vector<RangeSet> sets;
  if (const json::Value* ranges = ipam->find("ranges"); ranges && ranges->isArray()) {
    for (const auto& set : ranges->asArray()) {
      if (!set.isArray()) return Error{"every entry of \"ipam.ranges\" must be an array of ranges"};
      RangeSet out;
      for (const auto& r : set.asArray()) {
        auto range = readRange(r);
        if (!range) return Error{"\"ipam.ranges\": " + range.error().message};
        out.push_back(*range);
      }
      sets.push_back(std::move(out));
    }
  } else if (ipam->find("subnet")) {
    auto range = readRange(*ipam);
    if (!range) return Error{"\"ipam\": " + range.error().message};
    sets.push_back({*range});
  }
  return sets;
}

std::optional<std::string> exhaustedRangeSet(const std::vector<RangeSet>& sets,
                                             const std::vector<Reservation>& reserved) {
  std::set<IpAddress> taken;
  for (const auto& r : reserved)
    taken.insert(r.address);
  for (const auto& set : sets) {
    bool free = false;
    for (const auto& range : set) {
      Wide first = toWide(range.first), last = toWide(range.last);
      if (first > last) continue;
      // Only the reservations inside the range can fill it; one left over means it has room.
      Wide inside = 0;
      for (const auto& t : taken)
        if (t.family() == range.first.family() && toWide(t) >= first && toWide(t) <= last) ++inside;
      if (range.gateway && toWide(*range.gateway) >= first && toWide(*range.gateway) <= last &&
          !taken.count(*range.gateway))
        ++inside;
      if (inside <= last - first) {
        free = true;
        break;
      }
    }
    if (!free && !set.empty()) {
      std::string names;
      for (const auto& range : set)
        names += (names.empty() ? "" : ", ") + range.first.toString() + "-" + range.last.toString();
      return "no free address in " + names;
    }
  }
  return std::nullopt;
}

}  // namespace nftpol::cni
