#pragma once

// The links, addresses and routes the plugin makes, through rtnetlink (libmnl). A socket works in the network
// namespace it was opened in, so the plugin holds one for the node and one for the pod.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nftpol/ip.h"
#include "nftpol/netlink.h"
#include "nftpol/result.h"

namespace nftpol {

struct InterfaceAddress {
  IpAddress address;
  int prefixLength;
};

struct LinkInfo {
  std::string kind;  // "bridge", "veth"; empty for a device without one
  int master = 0;    // the bridge it is attached to, 0 for none
  int mtu = 0;
  bool up = false;
  bool operUp = false;  // RFC 2863 "up": carrier too, as the kernel's link watch last saw it
  std::string mac;      // "aa:bb:cc:dd:ee:ff", as CNI results give it; empty for a device without one
};

struct Link {
  int index = 0;
  std::string name;
  LinkInfo info;
};

struct RouteInfo {
  Cidr destination;  // 0.0.0.0/0 or ::/0 for a default route
  std::optional<IpAddress> gateway;
};

// A route to a network via a gateway, tagged with a routing protocol number (rtm_protocol) so that a program
// can tell its own routes from everyone else's and remove only those.
struct GatewayRoute {
  Cidr destination;
  IpAddress gateway;
  bool operator==(const GatewayRoute&) const = default;
  auto operator<=>(const GatewayRoute&) const = default;
};

// One route of the main table, as a dump gives it.
struct DumpedRoute {
  Cidr destination;
  std::optional<IpAddress> gateway;
  int oif = 0;
  uint8_t protocol = 0;
};

class Rtnl {
 public:
  // A socket in the calling thread's network namespace.
  static Result<Rtnl> open();
  // A socket in the network namespace at `netnsPath` (e.g. /var/run/netns/pod); the calling thread returns to
  // its own namespace before this returns.
  static Result<Rtnl> openIn(const std::string& netnsPath);

  // The index of the link named `name`, or nullopt when there is none.
  Result<std::optional<int>> linkIndex(const std::string& name);
  Result<LinkInfo> link(int index);
  Result<std::vector<Link>> links();
  Result<std::vector<InterfaceAddress>> addresses(int index);
  // The main table's routes out of `index`.
  Result<std::vector<RouteInfo>> routes(int index);
  Result<int> addBridge(const std::string& name, int mtu);
  // A veth pair: `hostName` here, `peerName` created directly in the namespace `peerNetnsFd` refers to.
  // Creating the peer in place avoids moving it afterwards (slow under bursts of ADDs).
  Result<int> addVeth(const std::string& hostName, const std::string& peerName, int peerNetnsFd, int mtu);
  Result<bool> deleteLink(int index);
  Result<bool> setUp(int index);
  Result<bool> setMaster(int index, int masterIndex);
  Result<bool> setHairpin(int index, bool on);
  // Idempotent: an address already there is not an error.
  Result<bool> addAddress(int index, const InterfaceAddress& address);
  // A route to `destination` (nullopt: the default route) via `gateway` (nullopt: on-link) out of `index`.
  Result<bool> addRoute(int index, std::optional<Cidr> destination, std::optional<IpAddress> gateway);
  // The main table's routes tagged `protocol`; adds or replaces one; deletes one (absent is not an error).
  Result<std::vector<GatewayRoute>> routesOf(uint8_t protocol);
  Result<bool> replaceRoute(const GatewayRoute& route, uint8_t protocol);
  Result<bool> deleteRoute(const GatewayRoute& route, uint8_t protocol);

 private:
  explicit Rtnl(Netlink netlink) : nl_(std::move(netlink)) {}
  Result<bool> request(void* message, bool okIfExists = false);
  // A dump whose results `restart` drops when the kernel interrupted it and it is read again.
  Result<bool> dump(void* message, Netlink::Callback callback, void* data,
                    const std::function<void()>& restart);
  Result<bool> setLink(int index, unsigned flags, unsigned change, int master);
  Result<std::vector<DumpedRoute>> mainRoutes();
  Result<int> createdIndex(const std::string& name);
  Netlink nl_;
};

}  // namespace nftpol
