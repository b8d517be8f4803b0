#pragma once

// Which pod holds which address on this node, as the CNI plugin says it: the plugin knows it first (ADD
// returns before the kubelet writes status.podIP) and knows it last (DEL comes before the API lets go of the
// pod). The book overlays the source's pods with it: a bound pod gets the plugin's addresses, and no other
// pod, here or elsewhere, keeps an address that is bound to another pod or that DEL released, whatever a
// stale manifest or watch still says. So a released address never carries its old pod's allowances, and a
// reused one carries only its new pod's.

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "nftpol/ip.h"
#include "nftpol/policy/cluster.h"

namespace nftpol::controller {

struct Binding {
  std::string podKey;  // "namespace/name"
  std::string podUid;  // empty when the runtime did not pass it
  std::string containerId, ifname;
  std::vector<IpAddress> addresses;
};

// What a change of the book may change: these pods, and every pod the source says holds one of these
// addresses.
struct BookChange {
  std::vector<std::string> pods;
  std::vector<IpAddress> addresses;
};

class AddressBook {
 public:
  using Clock = std::chrono::steady_clock;

  // ADD. Replaces the binding of the same attachment; an address bound to another pod moves to this one.
  BookChange bind(Binding binding);
  // DEL of an attachment: its binding goes, and `addresses` (those the plugin let go) are released unless
  // another attachment holds them now.
  BookChange release(const std::string& containerId, const std::string& ifname,
                     const std::vector<IpAddress>& addresses, Clock::time_point now);
  // A pod the source no longer has: its bindings go and their addresses are released (its DEL may never
  // come, say the controller was down).
  BookChange podGone(const std::string& podKey, Clock::time_point now);
  // Released addresses older than `age` are forgotten (by then the source has let go of them too).
  BookChange expire(Clock::time_point now, std::chrono::seconds age);

  // The pod as this node enforces it: the plugin's addresses when it is bound here (and the source's object
  // is the bound one, by UID), else the source's addresses minus those bound to other pods or released.
  // nullopt: nothing to change.
  std::optional<policy::Pod> overlay(const policy::Pod& pod, const std::string& node) const;
  // Whether the book changes the source's `pod` at all; a cheap test before overlay().
  bool touches(const policy::Pod& pod) const;

  // The subnets of the bound addresses (10.244.1.7/24 -> 10.244.1.0/24): this node's pod subnets, as the
  // plugin's IPAM knows them.
  const std::set<Cidr>& subnets() const { return subnets_; }
  void learnSubnet(const Cidr& subnet) { subnets_.insert(subnet); }

  bool holds(const IpAddress& ip) const { return owner_.count(ip) > 0; }
  size_t bindings() const { return bindings_.size(); }
  size_t released() const { return released_.size(); }

 private:
  using Attachment = std::pair<std::string, std::string>;  // (containerId, ifname)
  std::vector<const Binding*> bindingsOf(const std::string& podKey) const;
  void unbind(const Attachment& a, BookChange& change, Clock::time_point now, bool releaseAddresses);
  std::map<Attachment, Binding> bindings_;
  std::multimap<std::string, Attachment> byPod_;
  std::map<IpAddress, Attachment> owner_;  // bound address -> its attachment
  std::map<IpAddress, Clock::time_point> released_;
  std::set<Cidr> subnets_;
};

}  // namespace nftpol::controller
