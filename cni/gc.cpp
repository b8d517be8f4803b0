#include "nftpol/cni/gc.h"

#include <algorithm>
#include <cerrno>
#include <set>

#include "nftpol/cni/ipam.h"
#include "nftpol/cni/plugin.h"
#include "nftpol/cni/reservations.h"
#include "nftpol/rtnl.h"

namespace nftpol::cni {

namespace {

bool isValid(const NetConf& conf, const Attachment& a) {
  const auto& valid = *conf.validAttachments;
  return std::find(valid.begin(), valid.end(), a) != valid.end();
}

// Host veths on our bridge that belong to no valid attachment. Their names are a hash of the attachment, so
// the valid ones are known without any state of our own.
Outcome<int> removeStaleVeths(const NetConf& conf) {
  auto node = Rtnl::open();
  if (!node) return Failure{Code::kInternal, "cannot open rtnetlink", node.error().message};
  auto bridge = node->linkIndex(conf.bridge);
  if (!bridge) return Failure{Code::kInternal, "cannot look up " + conf.bridge, bridge.error().message};
  if (!*bridge) return 0;
  std::set<std::string> keep;
  for (const auto& a : *conf.validAttachments)
    keep.insert(hostVethName(a.containerId, a.ifname));
  auto links = node->links();
  if (!links) return Failure{Code::kInternal, "cannot list links", links.error().message};
  int removed = 0;
  for (const auto& link : *links) {
    if (link.info.master != **bridge || link.info.kind != "veth" || link.name.rfind("nftp", 0) != 0 ||
        keep.count(link.name))
      continue;
    // A veth a concurrent DEL already took is no error.
    if (auto r = node->deleteLink(link.index); !r && r.error().errnum != ENODEV)
      return Failure{Code::kInternal, "cannot delete stale veth " + link.name, r.error().message};
    ++removed;
  }
  return removed;
}

bool speaks110(const NetConf& conf, const Environment& env) {
  auto answer = runIpam(conf, env, "VERSION");
  return answer && answer->find("\"1.1.0\"") != std::string::npos;
}

}  // namespace

Outcome<std::string> collectGarbage(const NetConf& conf, const Environment& env) {
  if (!conf.validAttachments)
    return Failure{Code::kInvalidConfig, "GC needs \"cni.dev/valid-attachments\"",
                   "without it every attachment of the network would be released"};
  auto veths = removeStaleVeths(conf);
  if (!veths) return veths.error();

  if (speaks110(conf, env)) {
    auto delegated = runIpam(conf, env, "GC");
    if (!delegated) return delegated.error();
    return std::string();
  }
  if (conf.ipamType != "host-local") return std::string();  // nothing we know how to ask it to release
  std::set<std::pair<std::string, std::string>> held;
  for (const auto& r : hostLocalReservations(conf))
    held.emplace(r.attachment.containerId, r.attachment.ifname);
  for (const auto& [id, ifname] : held) {
    if (isValid(conf, {id, ifname})) continue;
    Environment stale = env;
    stale.containerId = id;
    stale.ifname = ifname;
    stale.netns.clear();
    if (auto released = runIpam(conf, stale, "DEL"); !released) return released.error();
  }
  return std::string();
}

}  // namespace nftpol::cni
