#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "nftpol/nft/ruleset.h"

namespace nftpol::nft {

// The desired table for one node, kept up to date from object changes instead of recomputed from the whole
// cluster: a pod change tests that pod against every interned peer and recomputes at most its own chains; a
// policy change re-resolves only its new peers and recomputes the chains of the local pods it selects; a
// namespace relabel re-tests only that namespace's pods. Its table is always equal to
// `render(Compiled::build(state), node)` for the same objects (tests check this on random change sequences).
class IncrementalRenderer {
 public:
  explicit IncrementalRenderer(std::string node);
  ~IncrementalRenderer();
  IncrementalRenderer(IncrementalRenderer&&) noexcept;
  IncrementalRenderer& operator=(IncrementalRenderer&&) noexcept;

  // The object's new version, or nullptr when it is gone. A pod that takes no part (no address, host
  // network, finished) counts as gone. Namespaces that are not given are implied, as the loader implies them.
  void setNamespace(const std::string& name, const policy::Namespace* ns);
  void setPod(const std::string& key, const policy::Pod* pod);  // key "ns/name"
  void setPolicy(const std::string& key, const policy::NetworkPolicy* policy);
  // Services and their EndpointSlices make the service NAT part, recomputed whole when one of them (or a pod
  // whose named port it read) changes: a small part, and the batch is still only the difference.
  void setService(const std::string& key, const policy::Service* service);
  void setEndpointSlice(const std::string& key, const policy::EndpointSlice* slice);

  // The table for the objects given so far.
  const Table& table();

  const std::string& node() const;
  size_t localPods() const;  // pods on this node that take part
  size_t policies() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace nftpol::nft
