#include "nftpol/cni/masquerade.h"

#include "nftpol/cni/plugin.h"
#include "nftpol/nft/backend.h"

namespace nftpol::cni {

Outcome<bool> ensureMasquerade(const NetConf& conf, const IpamResult& ipam) {
  nft::Table shape;
  shape.name = kMasqueradeTable;
  for (const auto& ip : ipam.ips) {
    auto subnet = Cidr::parse(ip.address.address.toString() + "/" + std::to_string(ip.address.prefixLength));
    if (!subnet) continue;
    Family f = subnet->family();
    nft::Chain chain{.name = "masq-" + shortHash(conf.name + "/" + subnet->toString()),
                     .base = nft::BaseChain{nft::ChainType::kNat, nft::Hook::kPostrouting,
                                            nft::Priority::kSrcNat, nft::ChainPolicy::kAccept}};
    chain.comment = "ipMasq of network " + conf.name + ", subnet " + subnet->toString();
    nft::Rule rule{{nft::AddressInPrefix{nft::Field::kSource, *subnet},
                    nft::AddressInPrefix{nft::Field::kDestination, *subnet, true}},
                   nft::Masquerade{},
                   ""};
    rule.matches.push_back(nft::AddressInPrefix{
        nft::Field::kDestination, *Cidr::parse(f == Family::kV4 ? "224.0.0.0/4" : "ff00::/8"), true});
    chain.rules.push_back(std::move(rule));
    shape.chains.push_back(std::move(chain));
  }
  if (shape.chains.empty()) return true;
  auto backend = nft::NetlinkBackend::open();
  if (!backend) return Failure{Code::kInternal, "cannot open nftables netlink", backend.error().message};
  auto merged = (*backend)->merge(shape);
  if (!merged) return Failure{Code::kInternal, "cannot set up ipMasq", merged.error().message};
  return true;
}

}  // namespace nftpol::cni
