#include "nftpol/rtnl.h"

#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

namespace nftpol {

namespace {

Error systemError(const std::string& what, int error = errno) {
  return Error{what + ": " + std::strerror(error), error};
}

int addressFamily(Family f) {
  return f == Family::kV4 ? AF_INET : AF_INET6;
}
size_t addressLength(Family f) {
  return f == Family::kV4 ? 4 : 16;
}

// A link request: the netlink header and the ifinfomsg every RTM_*LINK message starts with.
nlmsghdr* linkMessage(std::vector<char>& buf, uint16_t type, uint16_t flags, int index,
                      uint8_t family = AF_UNSPEC) {
  buf.assign(MNL_SOCKET_BUFFER_SIZE, 0);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = flags;
  auto* ifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifm->ifi_family = family;
  ifm->ifi_index = index;
  return nlh;
}

// A request to create the link `name`, exclusively.
nlmsghdr* newLinkMessage(std::vector<char>& buf, const std::string& name, int mtu) {
  nlmsghdr* nlh = linkMessage(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
  mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
  if (mtu > 0) mnl_attr_put_u32(nlh, IFLA_MTU, static_cast<uint32_t>(mtu));
  return nlh;
}

// Opens the socket in `netnsPath` from the calling thread, then returns the thread to where it was.
Result<mnl_socket*> socketIn(const std::string& netnsPath) {
  int self = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) return systemError("cannot open this thread's network namespace");
  int target = ::open(netnsPath.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    auto e = systemError("cannot open network namespace " + netnsPath);
    ::close(self);
    return e;
  }
  if (::setns(target, CLONE_NEWNET) != 0) {
    auto e = systemError("cannot enter network namespace " + netnsPath);
    ::close(target);
    ::close(self);
    return e;
  }
  ::close(target);
  mnl_socket* s = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
  int openError = errno;
  bool back = ::setns(self, CLONE_NEWNET) == 0;
  ::close(self);
  if (!back) {
    if (s) mnl_socket_close(s);
    return systemError("cannot return to the plugin's network namespace");
  }
  if (!s) return systemError("cannot open an rtnetlink socket in " + netnsPath, openError);
  return s;
}

}  // namespace

Result<Rtnl> Rtnl::open() {
  auto nl = Netlink::open(NETLINK_ROUTE);
  if (!nl) return Error{"rtnetlink: " + nl.error().message, nl.error().errnum};
  return Rtnl(std::move(*nl));
}

Result<Rtnl> Rtnl::openIn(const std::string& netnsPath) {
  auto s = socketIn(netnsPath);
  if (!s) return s.error();
  auto nl = Netlink::adopt(*s);
  if (!nl) return Error{"rtnetlink: " + nl.error().message, nl.error().errnum};
  return Rtnl(std::move(*nl));
}

Result<bool> Rtnl::request(void* message, bool okIfExists) {
  if (auto e = nl_.request(static_cast<nlmsghdr*>(message), "rtnetlink")) {
    if (e->errnum == EEXIST && okIfExists) return false;
    return *e;
  }
  return true;
}

Result<std::optional<int>> Rtnl::linkIndex(const std::string& name) {
  std::vector<char> buf;
  nlmsghdr* nlh = linkMessage(buf, RTM_GETLINK, 0, 0);
  mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
  int index = 0;
  auto e = nl_.request(
      nlh, "cannot look up link " + name,
      [](const nlmsghdr* h, void* data) {
        *static_cast<int*>(data) = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(h))->ifi_index;
        return MNL_CB_OK;
      },
      &index);
  if (e && e->errnum == ENODEV) return std::optional<int>();
  if (e) return *e;
  return std::optional<int>(index);
}

// Each attribute of a message after its fixed header of `offset` bytes, or of a nested attribute.
template <typename F>
void eachAttribute(const void* from, const void* to, F&& f) {
  for (auto* attr = static_cast<const nlattr*>(from); mnl_attr_ok(
           attr, static_cast<int>(static_cast<const char*>(to) - reinterpret_cast<const char*>(attr)));
       attr = mnl_attr_next(attr))
    f(attr);
}
template <typename F>
void eachAttribute(const nlmsghdr* h, size_t offset, F&& f) {
  eachAttribute(mnl_nlmsg_get_payload_offset(h, offset), mnl_nlmsg_get_payload_tail(h), f);
}

Result<bool> Rtnl::dump(void* message, Netlink::Callback callback, void* data,
                        const std::function<void()>& restart) {
  if (auto e = nl_.dump(static_cast<nlmsghdr*>(message), "rtnetlink dump", callback, data, restart))
    return *e;
  return true;
}

namespace {

// A link's name and state from an RTM_NEWLINK message (the answer to a get, or one entry of a dump).
Link readLink(const nlmsghdr* h) {
  Link out;
  auto* ifm = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(h));
  out.index = ifm->ifi_index;
  out.info.up = ifm->ifi_flags & IFF_UP;
  eachAttribute(h, sizeof(ifinfomsg), [&](const nlattr* attr) {
    switch (mnl_attr_get_type(attr)) {
      case IFLA_IFNAME:
        out.name = mnl_attr_get_str(attr);
        break;
      case IFLA_MASTER:
        out.info.master = static_cast<int>(mnl_attr_get_u32(attr));
        break;
      case IFLA_MTU:
        out.info.mtu = static_cast<int>(mnl_attr_get_u32(attr));
        break;
      case IFLA_OPERSTATE:
        out.info.operUp = mnl_attr_get_u8(attr) == IF_OPER_UP;
        break;
      case IFLA_ADDRESS: {
        const auto* bytes = static_cast<const unsigned char*>(mnl_attr_get_payload(attr));
        static constexpr char kHex[] = "0123456789abcdef";
        for (uint16_t i = 0; i < mnl_attr_get_payload_len(attr); ++i) {
          if (i) out.info.mac += ':';
          out.info.mac += kHex[bytes[i] >> 4];
          out.info.mac += kHex[bytes[i] & 15];
        }
        break;
      }
      case IFLA_LINKINFO:
        eachAttribute(mnl_attr_get_payload(attr),
                      reinterpret_cast<const char*>(attr) + mnl_attr_get_len(attr), [&](const nlattr* i) {
                        if (mnl_attr_get_type(i) == IFLA_INFO_KIND) out.info.kind = mnl_attr_get_str(i);
                      });
        break;
    }
  });
  return out;
}

}  // namespace

Result<LinkInfo> Rtnl::link(int index) {
  std::vector<char> buf;
  nlmsghdr* nlh = linkMessage(buf, RTM_GETLINK, 0, index);
  Link found;
  auto e = nl_.request(
      nlh, "cannot read link " + std::to_string(index),
      [](const nlmsghdr* h, void* data) {
        *static_cast<Link*>(data) = readLink(h);
        return MNL_CB_OK;
      },
      &found);
  if (e) return *e;
  return found.info;
}

Result<std::vector<Link>> Rtnl::links() {
  std::vector<char> buf;
  nlmsghdr* nlh = linkMessage(buf, RTM_GETLINK, 0, 0);
  std::vector<Link> found;
  auto done = dump(
      nlh,
      [](const nlmsghdr* h, void* data) {
        static_cast<std::vector<Link>*>(data)->push_back(readLink(h));
        return MNL_CB_OK;
      },
      &found, [&] { found.clear(); });
  if (!done) return done.error();
  return found;
}

Result<std::vector<InterfaceAddress>> Rtnl::addresses(int index) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_GETADDR;
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = AF_UNSPEC;
  struct Found {
    int index;
    std::vector<InterfaceAddress> addresses;
  } found{index, {}};
  auto done = dump(
      nlh,
      [](const nlmsghdr* h, void* data) {
        auto& f = *static_cast<Found*>(data);
        auto* a = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(h));
        if (static_cast<int>(a->ifa_index) != f.index) return MNL_CB_OK;
        Family family = a->ifa_family == AF_INET ? Family::kV4 : Family::kV6;
        eachAttribute(h, sizeof(ifaddrmsg), [&](const nlattr* attr) {
          if (mnl_attr_get_type(attr) != IFA_ADDRESS ||
              mnl_attr_get_payload_len(attr) != addressLength(family))
            return;
          std::array<uint8_t, 16> bytes{};
          std::memcpy(bytes.data(), mnl_attr_get_payload(attr), addressLength(family));
          f.addresses.push_back({IpAddress::fromBytes(family, bytes), a->ifa_prefixlen});
        });
        return MNL_CB_OK;
      },
      &found, [&] { found.addresses.clear(); });
  if (!done) return done.error();
  return found.addresses;
}

namespace {

int collectRoute(const nlmsghdr* h, void* data) {
  auto* r = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(h));
  if (r->rtm_table != RT_TABLE_MAIN || (r->rtm_family != AF_INET && r->rtm_family != AF_INET6))
    return MNL_CB_OK;
  Family family = r->rtm_family == AF_INET ? Family::kV4 : Family::kV6;
  int oif = 0;
  std::array<uint8_t, 16> dst{}, gw{};
  bool hasGateway = false;
  eachAttribute(h, sizeof(rtmsg), [&](const nlattr* attr) {
    auto type = mnl_attr_get_type(attr);
    if (type == RTA_OIF) oif = static_cast<int>(mnl_attr_get_u32(attr));
    if ((type == RTA_DST || type == RTA_GATEWAY) && mnl_attr_get_payload_len(attr) == addressLength(family)) {
      std::memcpy(type == RTA_DST ? dst.data() : gw.data(), mnl_attr_get_payload(attr),
                  addressLength(family));
      hasGateway = hasGateway || type == RTA_GATEWAY;
    }
  });
  auto cidr =
      Cidr::parse(IpAddress::fromBytes(family, dst).toString() + "/" + std::to_string(r->rtm_dst_len));
  if (!cidr) return MNL_CB_OK;
  DumpedRoute route{*cidr, std::nullopt, oif, r->rtm_protocol};
  if (hasGateway) route.gateway = IpAddress::fromBytes(family, gw);
  static_cast<std::vector<DumpedRoute>*>(data)->push_back(route);
  return MNL_CB_OK;
}

}  // namespace

// Every route of the main table.
Result<std::vector<DumpedRoute>> Rtnl::mainRoutes() {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_GETROUTE;
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = AF_UNSPEC;
  std::vector<DumpedRoute> found;
  auto done = dump(nlh, collectRoute, &found, [&] { found.clear(); });
  if (!done) return done.error();
  return found;
}

Result<std::vector<RouteInfo>> Rtnl::routes(int index) {
  auto all = mainRoutes();
  if (!all) return all.error();
  std::vector<RouteInfo> out;
  for (const auto& r : *all)
    if (r.oif == index) out.push_back({r.destination, r.gateway});
  return out;
}

Result<int> Rtnl::createdIndex(const std::string& name) {
  auto index = linkIndex(name);
  if (!index) return index.error();
  if (!*index) return Error{name + " vanished after it was created"};
  return **index;
}

Result<int> Rtnl::addBridge(const std::string& name, int mtu) {
  std::vector<char> buf;
  nlmsghdr* nlh = newLinkMessage(buf, name, mtu);
  nlattr* info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
  mnl_attr_nest_end(nlh, info);
  auto sent = request(nlh, true);
  if (!sent) return Error{"cannot create bridge " + name + ": " + sent.error().message};
  auto index = createdIndex(name);
  if (!index) return index.error();
  auto existing = link(*index);
  if (!existing) return existing.error();
  if (existing->kind != "bridge")
    return Error{name + " exists and is not a bridge (it is a " +
                 (existing->kind.empty() ? "device" : existing->kind) + ")"};
  // The bridge's MAC set to itself, as the reference plugin does: a bridge whose MAC nobody set takes the
  // lowest of its ports' and changes as pods come and go, and pods that resolved their gateway before then
  // send to a MAC that is no longer the bridge's (seen: 1 in 5 pods of a 50-pod burst could not reach a
  // server through the gateway until their neighbour entry expired). Set once, the kernel keeps it.
  unsigned char mac[6];
  if (std::sscanf(existing->mac.c_str(), "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3],
                  &mac[4], &mac[5]) != 6)
    return Error{"cannot read the MAC address of bridge " + name};
  nlh = linkMessage(buf, RTM_SETLINK, 0, *index);
  mnl_attr_put(nlh, IFLA_ADDRESS, sizeof mac, mac);
  if (auto pinned = request(nlh); !pinned)
    return Error{"cannot set the MAC address of bridge " + name + ": " + pinned.error().message};
  return *index;
}

Result<int> Rtnl::addVeth(const std::string& hostName, const std::string& peerName, int peerNetnsFd,
                          int mtu) {
  std::vector<char> buf;
  nlmsghdr* nlh = newLinkMessage(buf, hostName, mtu);
  nlattr* info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
  nlattr* data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
  nlattr* peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
  auto* peerIfm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  peerIfm->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, peerName.c_str());
  mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, static_cast<uint32_t>(peerNetnsFd));
  if (mtu > 0) mnl_attr_put_u32(nlh, IFLA_MTU, static_cast<uint32_t>(mtu));
  mnl_attr_nest_end(nlh, peer);
  mnl_attr_nest_end(nlh, data);
  mnl_attr_nest_end(nlh, info);
  auto sent = request(nlh);
  if (!sent) return Error{"cannot create veth " + hostName + ": " + sent.error().message};
  return createdIndex(hostName);
}

Result<bool> Rtnl::deleteLink(int index) {
  std::vector<char> buf;
  nlmsghdr* nlh = linkMessage(buf, RTM_DELLINK, 0, index);
  return request(nlh);
}

Result<bool> Rtnl::setLink(int index, unsigned flags, unsigned change, int master) {
  std::vector<char> buf;
  nlmsghdr* nlh = linkMessage(buf, RTM_NEWLINK, 0, index);
  auto* ifm = static_cast<ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  ifm->ifi_flags = flags;
  ifm->ifi_change = change;
  if (master >= 0) mnl_attr_put_u32(nlh, IFLA_MASTER, static_cast<uint32_t>(master));
  return request(nlh);
}

Result<bool> Rtnl::setUp(int index) {
  return setLink(index, IFF_UP, IFF_UP, -1);
}

Result<bool> Rtnl::setMaster(int index, int masterIndex) {
  return setLink(index, 0, 0, masterIndex);
}

Result<bool> Rtnl::setHairpin(int index, bool on) {
  std::vector<char> buf;
  nlmsghdr* nlh = linkMessage(buf, RTM_SETLINK, 0, index, AF_BRIDGE);
  nlattr* protinfo = mnl_attr_nest_start(nlh, IFLA_PROTINFO | NLA_F_NESTED);
  mnl_attr_put_u8(nlh, IFLA_BRPORT_MODE, on ? 1 : 0);
  mnl_attr_nest_end(nlh, protinfo);
  return request(nlh);
}

Result<bool> Rtnl::addAddress(int index, const InterfaceAddress& a) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_NEWADDR;
  nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = static_cast<uint8_t>(addressFamily(a.address.family()));
  ifa->ifa_prefixlen = static_cast<uint8_t>(a.prefixLength);
  ifa->ifa_index = static_cast<uint32_t>(index);
  // A pod's IPv6 address is assigned, not discovered: skip duplicate address detection's delay.
  if (a.address.family() == Family::kV6) ifa->ifa_flags = IFA_F_NODAD;
  size_t length = addressLength(a.address.family());
  mnl_attr_put(nlh, IFA_LOCAL, length, a.address.bytes().data());
  mnl_attr_put(nlh, IFA_ADDRESS, length, a.address.bytes().data());
  return request(nlh, true);
}

Result<bool> Rtnl::addRoute(int index, std::optional<Cidr> destination, std::optional<IpAddress> gateway) {
  Family f = destination ? destination->family() : gateway ? gateway->family() : Family::kV4;
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_NEWROUTE;
  nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = static_cast<uint8_t>(addressFamily(f));
  rtm->rtm_dst_len = static_cast<uint8_t>(destination ? destination->prefixLength() : 0);
  rtm->rtm_table = RT_TABLE_MAIN;
  rtm->rtm_protocol = RTPROT_BOOT;
  rtm->rtm_scope = gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
  rtm->rtm_type = RTN_UNICAST;
  if (destination && destination->prefixLength() > 0)
    mnl_attr_put(nlh, RTA_DST, addressLength(f), destination->base().bytes().data());
  if (gateway) mnl_attr_put(nlh, RTA_GATEWAY, addressLength(f), gateway->bytes().data());
  mnl_attr_put_u32(nlh, RTA_OIF, static_cast<uint32_t>(index));
  return request(nlh, true);
}

namespace {

nlmsghdr* routeMessage(std::vector<char>& buf, uint16_t type, uint16_t flags, const GatewayRoute& r,
                       uint8_t protocol) {
  Family f = r.destination.family();
  buf.assign(MNL_SOCKET_BUFFER_SIZE, 0);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = flags;
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = static_cast<uint8_t>(addressFamily(f));
  rtm->rtm_dst_len = static_cast<uint8_t>(r.destination.prefixLength());
  rtm->rtm_table = RT_TABLE_MAIN;
  rtm->rtm_protocol = protocol;
  rtm->rtm_scope = RT_SCOPE_UNIVERSE;
  rtm->rtm_type = RTN_UNICAST;
  mnl_attr_put(nlh, RTA_DST, addressLength(f), r.destination.base().bytes().data());
  mnl_attr_put(nlh, RTA_GATEWAY, addressLength(f), r.gateway.bytes().data());
  return nlh;
}

}  // namespace

Result<std::vector<GatewayRoute>> Rtnl::routesOf(uint8_t protocol) {
  auto all = mainRoutes();
  if (!all) return all.error();
  std::vector<GatewayRoute> out;
  for (const auto& r : *all)
    if (r.protocol == protocol && r.gateway) out.push_back({r.destination, *r.gateway});
  std::sort(out.begin(), out.end());
  return out;
}

Result<bool> Rtnl::replaceRoute(const GatewayRoute& route, uint8_t protocol) {
  std::vector<char> buf;
  return request(routeMessage(buf, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, route, protocol));
}

Result<bool> Rtnl::deleteRoute(const GatewayRoute& route, uint8_t protocol) {
  std::vector<char> buf;
  auto r = request(routeMessage(buf, RTM_DELROUTE, 0, route, protocol));
  if (!r && r.error().errnum == ESRCH) return false;  // gone already
  return r;
}

}  // namespace nftpol
