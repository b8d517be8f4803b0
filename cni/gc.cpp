#include "nftpol/cni/gc.h"

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <set>

#include "nftpol/cni/ipam.h"
#include "nftpol/cni/plugin.h"
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

// The attachments host-local holds addresses for in this network.
std::set<std::pair<std::string, std::string>> hostLocalReservations(const NetConf& conf) {
  std::set<std::pair<std::string, std::string>> held;
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::filesystem::path(conf.hostLocalDataDir) / conf.name, ec)) {
    if (!entry.is_regular_file() || !IpAddress::parse(entry.path().filename().string())) continue;
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
    if (!id.empty()) held.emplace(id, ifname.empty() ? "eth0" : ifname);
  }
  return held;
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
  for (const auto& [id, ifname] : hostLocalReservations(conf)) {
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
