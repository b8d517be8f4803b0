#include "nftpol/cni/plugin.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>

#include "nftpol/cni/config.h"
#include "nftpol/cni/environment.h"
#include "nftpol/cni/gc.h"
#include "nftpol/cni/handoff.h"
#include "nftpol/cni/ipam.h"
#include "nftpol/cni/masquerade.h"
#include "nftpol/cni/reservations.h"
#include "nftpol/json.h"
#include "nftpol/rtnl.h"

namespace nftpol::cni {

namespace {

Failure internal(const std::string& msg, const Error& e) {
  return Failure{Code::kInternal, msg, e.message};
}

// What the policy layer needs on the node: bridged pod traffic through the inet hooks, and forwarding.
std::optional<Failure> enableNodeSysctls(bool ipv6) {
  std::vector<std::string> paths = {"/proc/sys/net/bridge/bridge-nf-call-iptables",
                                    "/proc/sys/net/ipv4/ip_forward"};
  if (ipv6) {
    paths.push_back("/proc/sys/net/bridge/bridge-nf-call-ip6tables");
    paths.push_back("/proc/sys/net/ipv6/conf/all/forwarding");
  }
  for (const auto& p : paths) {
    std::ofstream out(p);
    if (!(out << "1\n") || !out.flush())
      return Failure{Code::kIoFailure, "cannot set " + p.substr(10),
                     p.find("/bridge/") != std::string::npos ? "is the br_netfilter module loaded?" : ""};
  }
  return std::nullopt;
}

std::string addressText(const InterfaceAddress& a) {
  return a.address.toString() + "/" + std::to_string(a.prefixLength);
}

// The MAC addresses of the three interfaces, as the reference plugin reports them (runtimes and meta-plugins
// such as Multus read the container's).
struct Macs {
  std::string bridge, host, container;
};

std::string interfaceJson(const std::string& name, const std::string& mac, const std::string& sandbox = "") {
  std::string out = "{\"name\": " + jsonString(name);
  if (!mac.empty()) out += ", \"mac\": " + jsonString(mac);
  if (!sandbox.empty()) out += ", \"sandbox\": " + jsonString(sandbox);
  return out + "}";
}

std::string resultJson(const NetConf& conf, const Environment& env, const std::string& host,
                       const IpamResult& ipam, const std::vector<IpamRoute>& routes, const Macs& macs) {
  std::string out = "{\"cniVersion\": " + jsonString(conf.cniVersion) + ", \"interfaces\": [" +
                    interfaceJson(conf.bridge, macs.bridge) + ", " + interfaceJson(host, macs.host) + ", " +
                    interfaceJson(env.ifname, macs.container, env.netns) + "], \"ips\": [";
  for (size_t i = 0; i < ipam.ips.size(); ++i) {
    out += std::string(i ? ", " : "") + "{\"address\": " + jsonString(addressText(ipam.ips[i].address));
    if (ipam.ips[i].gateway) out += ", \"gateway\": " + jsonString(ipam.ips[i].gateway->toString());
    out += ", \"interface\": 2}";
  }
  out += "], \"routes\": [";
  for (size_t i = 0; i < routes.size(); ++i) {
    out += std::string(i ? ", " : "") + "{\"dst\": " + jsonString(routes[i].destination.toString());
    if (routes[i].gateway) out += ", \"gw\": " + jsonString(routes[i].gateway->toString());
    out += "}";
  }
  return out + "], \"dns\": " + ipam.dns + "}";
}

struct PodSide {
  std::vector<IpamRoute> routes;
  std::string mac;
};

// The pod's side: addresses, the link up, routes (the default route via the gateway when asked).
// `linkUp` runs between the pod's link coming up and its addresses: whatever the pod sends goes out from then
// on.
Outcome<PodSide> configurePod(const NetConf& conf, const Environment& env, const IpamResult& ipam,
                              const std::function<void()>& linkUp) {
  auto pod = Rtnl::openIn(env.netns);
  if (!pod) return internal("cannot reach the pod's network namespace", pod.error());
  auto index = pod->linkIndex(env.ifname);
  if (!index || !*index) return Failure{Code::kInternal, env.ifname + " did not appear in the pod", ""};
  PodSide side;
  if (auto link = pod->link(**index); link) side.mac = link->mac;
  if (auto r = pod->setUp(**index); !r) return internal("cannot set " + env.ifname + " up", r.error());
  linkUp();
  for (const auto& ip : ipam.ips)
    if (auto r = pod->addAddress(**index, ip.address); !r)
      return internal("cannot add " + addressText(ip.address) + " to " + env.ifname, r.error());
  std::vector<IpamRoute>& routes = side.routes;
  if (conf.isDefaultGateway)
    for (const auto& ip : ipam.ips)
      if (ip.gateway)
        routes.push_back(
            {*Cidr::parse(ip.address.address.family() == Family::kV4 ? "0.0.0.0/0" : "::/0"), ip.gateway});
  for (const auto& r : ipam.routes) {
    bool duplicate = false;
    for (const auto& have : routes)
      duplicate = duplicate || have.destination == r.destination;
    if (duplicate) continue;
    IpamRoute route = r;
    if (!route
             .gateway)  // a route without a gateway goes via this family's gateway, as the bridge plugin does
      for (const auto& ip : ipam.ips)
        if (ip.gateway && ip.gateway->family() == r.destination.family()) route.gateway = ip.gateway;
    routes.push_back(route);
  }
  for (const auto& r : routes) {
    std::optional<Cidr> dst;
    if (r.destination.prefixLength() > 0) dst = r.destination;
    if (auto added = pod->addRoute(**index, dst, r.gateway); !added)
      return internal("cannot add the route to " + r.destination.toString(), added.error());
  }
  return side;
}

std::string argument(const Environment& env, const char* key) {
  for (const auto& [k, v] : env.args)
    if (k == key) return v;
  return "";
}

handoff::Request handoffRequest(const NetConf& conf, const Environment& env, handoff::Op op,
                                std::vector<InterfaceAddress> addresses) {
  return handoff::Request{.op = op,
                          .podNamespace = argument(env, "K8S_POD_NAMESPACE"),
                          .podName = argument(env, "K8S_POD_NAME"),
                          .podUid = argument(env, "K8S_POD_UID"),
                          .containerId = env.containerId,
                          .ifname = env.ifname,
                          .addresses = std::move(addresses),
                          .wait = conf.controllerTimeout};
}

void note(const std::string& line) {
  std::fprintf(stderr, "nftpol-bridge: %s\n", line.c_str());
}

// ADD's handoff, before any link exists: the controller binds the addresses to the pod and commits its
// policies for them, so the pod's first packet already meets them. Required: anything but that answer fails
// ADD with code 11 (the runtime retries); best-effort: goes on, and says so.
std::optional<Failure> handOffAdd(const NetConf& conf, const Environment& env, const IpamResult& ipam) {
  std::vector<InterfaceAddress> addresses;
  for (const auto& ip : ipam.ips)
    addresses.push_back(ip.address);
  auto request = handoffRequest(conf, env, handoff::Op::kAdd, std::move(addresses));
  bool required = conf.handoff == NetConf::Handoff::kRequired;
  std::string who = request.podKey();
  if (request.podNamespace.empty() || request.podName.empty()) {
    if (required)
      return Failure{Code::kInvalidEnvironment,
                     "CNI_ARGS names no pod (K8S_POD_NAMESPACE, K8S_POD_NAME): the controller cannot enforce "
                     "its policies",
                     "set \"policyHandoff\": \"best-effort\" to attach pods that are not Kubernetes pods"};
    note("CNI_ARGS names no pod; not handed to the controller (policyHandoff best-effort)");
    return std::nullopt;
  }
  auto reply = handoff::call(conf.controllerSocket, request);
  std::string problem;
  if (!reply) {
    problem = reply.error().message;
  } else if (reply->status == handoff::Reply::Status::kProgrammed) {
    return std::nullopt;
  } else if (reply->status == handoff::Reply::Status::kPending) {
    note("pod " + who + ": " + reply->message);  // closed until the controller knows the pod: safe
    return std::nullopt;
  } else {
    problem = "the controller refused pod " + who + ": " + reply->message;
  }
  if (!required) {
    note(problem +
         "; going on without it (policyHandoff best-effort): the pod is closed until the "
         "controller programs it, or open if nothing closes its subnet");
    return std::nullopt;
  }
  return Failure{Code::kTryAgainLater, "the node's controller has not taken pod " + who, problem};
}

// DEL's handoff: the addresses are closed before they can go to another pod. A DEL never fails for it (a
// runtime retries a failed DEL forever): an unreachable controller is noted, and the next ADD of an address
// takes it over in the controller anyway.
void handOffDel(const NetConf& conf, const Environment& env, std::vector<InterfaceAddress> addresses,
                std::chrono::milliseconds wait) {
  auto request = handoffRequest(conf, env, handoff::Op::kDel, std::move(addresses));
  request.wait = wait;
  auto reply = handoff::call(conf.controllerSocket, request);
  if (!reply) {
    note("DEL of " + env.containerId + " not told to the controller: " + reply.error().message);
  } else if (reply->status != handoff::Reply::Status::kReleased) {
    note("the controller did not release " + env.containerId + ": " + reply->message);
  }
}

// The addresses DEL lets go: those of prevResult, or what host-local holds for this attachment.
std::vector<InterfaceAddress> addressesOf(const NetConf& conf, const Environment& env) {
  std::vector<InterfaceAddress> out;
  if (conf.prevResult)
    if (auto prev = parseIpamResult(*conf.prevResult); prev) {
      for (const auto& ip : prev->ips)
        out.push_back(ip.address);
      return out;
    }
  for (const auto& r : hostLocalReservations(conf))
    if (r.attachment == Attachment{env.containerId, env.ifname})
      out.push_back({r.address, r.address.bitLength()});
  return out;
}

Outcome<std::string> add(const NetConf& conf, const Environment& env) {
  auto node = Rtnl::open();
  if (!node) return internal("cannot open rtnetlink", node.error());
  auto bridge = node->addBridge(conf.bridge, conf.mtu);
  if (!bridge) return Failure{Code::kInternal, "cannot set up bridge " + conf.bridge, bridge.error().message};
  if (auto up = node->setUp(*bridge); !up) return internal("cannot set " + conf.bridge + " up", up.error());

  if (conf.prevResult)  // a chain's result we could not extend is found before anything is made
    if (auto usable = appendToPrevResult(*conf.prevResult, "{}"); !usable) return usable.error();
  auto ipamOut = runIpam(conf, env, "ADD");
  if (!ipamOut) return ipamOut.error();
  // From here on a failure gives the address back and removes what was made: nothing half-done remains.
  std::string host = hostVethName(env.containerId, env.ifname);
  bool vethMade = false, handedOff = false;
  std::vector<InterfaceAddress> addresses;
  auto rollback = [&](Failure f) -> Outcome<std::string> {
    if (vethMade)
      if (auto i = node->linkIndex(host); i && *i) (void)node->deleteLink(**i);
    if (handedOff) handOffDel(conf, env, addresses, std::chrono::milliseconds{1000});
    (void)runIpam(conf, env, "DEL");
    return f;
  };
  auto ipam = parseIpamResult(*ipamOut);
  if (!ipam) return rollback(ipam.error());
  for (const auto& ip : ipam->ips)
    addresses.push_back(ip.address);
  if (auto f = handOffAdd(conf, env, *ipam)) return rollback(*f);
  handedOff = true;
  bool ipv6 = false;
  for (const auto& ip : ipam->ips) {
    ipv6 = ipv6 || ip.address.address.family() == Family::kV6;
    if (conf.isGateway && ip.gateway)
      if (auto r = node->addAddress(*bridge, InterfaceAddress{*ip.gateway, ip.address.prefixLength}); !r)
        return rollback(
            internal("cannot put gateway " + ip.gateway->toString() + " on " + conf.bridge, r.error()));
  }
  if (auto f = enableNodeSysctls(ipv6)) return rollback(*f);
  if (conf.ipMasq)
    if (auto masq = ensureMasquerade(conf, *ipam); !masq) return rollback(masq.error());

  int podFd = ::open(env.netns.c_str(), O_RDONLY | O_CLOEXEC);
  if (podFd < 0)
    return rollback(
        Failure{Code::kUnknownContainer, "cannot open the pod's network namespace " + env.netns, ""});
  auto veth = node->addVeth(host, env.ifname, podFd, conf.mtu);
  ::close(podFd);
  if (!veth) return rollback(internal("cannot create the pod's veth pair", veth.error()));
  vethMade = true;
  if (auto r = node->setMaster(*veth, *bridge); !r)
    return rollback(internal("cannot attach " + host + " to " + conf.bridge, r.error()));
  if (conf.hairpinMode)
    if (auto r = node->setHairpin(*veth, true); !r)
      return rollback(internal("cannot set hairpin mode on " + host, r.error()));
  if (auto r = node->setUp(*veth); !r) return rollback(internal("cannot set " + host + " up", r.error()));
  // The bridge forwards from the host end only once the kernel's link watch has seen its carrier come up
  // (both ends up), which can lag. The pod gets its addresses after that, so its first ARP is not lost to a
  // port that does not forward yet and then retried only a second later (the handoff benchmark: 2 in 100 pod
  // starts reached nobody in their first second). Bounded: ADD does not fail for it.
  auto portForwards = [&] {
    for (int i = 0; i < 1000; ++i) {
      auto link = node->link(*veth);
      if (!link || link->operUp) return;
      ::usleep(1000);
    }
  };
  auto pod = configurePod(conf, env, *ipam, portForwards);
  if (!pod) return rollback(pod.error());
  Macs macs{.container = pod->mac};
  if (auto link = node->link(*bridge)) macs.bridge = link->mac;
  if (auto link = node->link(*veth)) macs.host = link->mac;
  std::string result = resultJson(conf, env, host, *ipam, pod->routes, macs);
  if (!conf.prevResult) return result;
  auto chained = appendToPrevResult(*conf.prevResult, result);
  if (!chained) return rollback(chained.error());
  return chained;
}

Outcome<std::string> del(const NetConf& conf, const Environment& env) {
  // Closed in the controller before host-local can give the addresses to another pod.
  handOffDel(conf, env, addressesOf(conf, env), conf.controllerTimeout);
  // The address first: it must come back even when the links are long gone.
  auto released = runIpam(conf, env, "DEL");
  if (!released) return released.error();
  auto node = Rtnl::open();
  if (!node) return internal("cannot open rtnetlink", node.error());
  // Deleting the host end takes the pod's end with it; a missing one was deleted already.
  auto index = node->linkIndex(hostVethName(env.containerId, env.ifname));
  if (!index) return internal("cannot look up the pod's veth", index.error());
  if (*index)
    if (auto r = node->deleteLink(**index); !r) return internal("cannot delete the pod's veth", r.error());
  return std::string();
}

// CHECK: what ADD made is still there, as prevResult describes it.
Outcome<std::string> check(const NetConf& conf, const Environment& env) {
  if (!conf.prevResult)
    return Failure{Code::kInvalidConfig, "CHECK needs the ADD result as \"prevResult\"", ""};
  auto prev = parseIpamResult(*conf.prevResult);
  if (!prev) return Failure{Code::kInvalidConfig, "\"prevResult\" is not a result", prev.error().msg};
  auto drift = [](std::string msg) { return Failure{Code::kInternal, std::move(msg), ""}; };
  auto node = Rtnl::open();
  if (!node) return internal("cannot open rtnetlink", node.error());
  auto bridge = node->linkIndex(conf.bridge);
  if (!bridge || !*bridge) return drift("bridge " + conf.bridge + " is missing");
  std::string host = hostVethName(env.containerId, env.ifname);
  auto hostIndex = node->linkIndex(host);
  if (!hostIndex || !*hostIndex) return drift("the pod's veth " + host + " is missing on the node");
  auto hostLink = node->link(**hostIndex);
  if (!hostLink) return internal("cannot read " + host, hostLink.error());
  if (hostLink->master != **bridge) return drift(host + " is no longer attached to " + conf.bridge);
  if (!hostLink->up) return drift(host + " is down");

  auto pod = Rtnl::openIn(env.netns);
  if (!pod)
    return Failure{Code::kUnknownContainer, "cannot reach the pod's network namespace", pod.error().message};
  auto index = pod->linkIndex(env.ifname);
  if (!index || !*index) return drift(env.ifname + " is missing in the pod");
  auto podLink = pod->link(**index);
  if (!podLink || !podLink->up) return drift(env.ifname + " is down in the pod");
  auto addresses = pod->addresses(**index);
  if (!addresses) return internal("cannot read the pod's addresses", addresses.error());
  for (const auto& ip : prev->ips) {
    bool found = false;
    for (const auto& a : *addresses)
      found = found || (a.address == ip.address.address && a.prefixLength == ip.address.prefixLength);
    if (!found) return drift(addressText(ip.address) + " is missing on " + env.ifname);
  }
  auto routes = pod->routes(**index);
  if (!routes) return internal("cannot read the pod's routes", routes.error());
  for (const auto& want : prev->routes) {
    bool found = false;
    for (const auto& r : *routes)
      found = found || (r.destination == want.destination && (!want.gateway || r.gateway == want.gateway));
    if (!found) return drift("the route to " + want.destination.toString() + " is missing in the pod");
  }
  return std::string();
}

// STATUS (1.1.0): code 50 when an ADD could not be served now: no IPAM plugin, no free address in a pool of
// host-local's, or (handoff required) no controller ready to take the pod.
Outcome<std::string> status(const NetConf& conf, const Environment& env) {
  if (!findPlugin(conf.ipamType, env.path))
    return Failure{Code::kPluginNotAvailable, "IPAM plugin \"" + conf.ipamType + "\" not found in CNI_PATH",
                   ""};
  if (conf.ipamType == "host-local") {
    auto ranges = hostLocalRanges(conf.text);
    if (!ranges) return Failure{Code::kInvalidConfig, "cannot read \"ipam\"", ranges.error().message};
    if (auto full = exhaustedRangeSet(*ranges, hostLocalReservations(conf)))
      return Failure{Code::kPluginNotAvailable, "the address pool is exhausted", *full};
  }
  if (conf.handoff == NetConf::Handoff::kRequired) {
    auto reply = handoff::call(conf.controllerSocket, handoffRequest(conf, env, handoff::Op::kStatus, {}));
    if (!reply)
      return Failure{Code::kPluginNotAvailable, "the node's controller is not reachable",
                     reply.error().message};
    if (reply->status != handoff::Reply::Status::kReady)
      return Failure{Code::kPluginNotAvailable, "the node's controller is not ready", reply->message};
  }
  return std::string();
}

}  // namespace

std::string shortHash(const std::string& text) {
  uint32_t h = 2166136261u;  // FNV-1a
  for (unsigned char c : text) {
    h ^= c;
    h *= 16777619u;
  }
  char out[9];
  std::snprintf(out, sizeof out, "%08x", h);
  return out;
}

std::string hostVethName(const std::string& containerId, const std::string& ifname) {
  return "nftp" + shortHash(containerId + "/" + ifname);
}

Reply runPlugin(const std::function<std::optional<std::string>(const char*)>& getenv,
                const std::string& stdinText) {
  const std::string& newest = kSupportedVersions.back();
  auto env = readEnvironment(getenv);
  if (!env) return {1, toJson(env.error(), newest)};
  if (env->command == Command::kVersion) return {0, versionJson()};
  auto conf = parseConfig(stdinText);
  if (!conf) return {1, toJson(conf.error(), newest)};
  Outcome<std::string> outcome = std::string();
  switch (env->command) {
    case Command::kAdd:
      outcome = add(*conf, *env);
      break;
    case Command::kDel:
      outcome = del(*conf, *env);
      break;
    case Command::kCheck:
      outcome = check(*conf, *env);
      break;
    case Command::kStatus:
      outcome = status(*conf, *env);
      break;
    case Command::kGc:
      outcome = collectGarbage(*conf, *env);
      break;
    case Command::kVersion:
      break;  // answered above, before any config is read
  }
  if (!outcome) return {1, toJson(outcome.error(), conf->cniVersion)};
  return {0, *outcome};
}

}  // namespace nftpol::cni
