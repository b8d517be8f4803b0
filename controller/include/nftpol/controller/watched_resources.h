#pragma once

#include <array>
#include <string>
#include <string_view>

namespace nftpol::controller {

// What the Kubernetes source lists and watches, and all it may read: deploy/rbac.yaml grants get, list and
// watch on exactly these (tests/deploy/manifests_test.cpp holds the two equal).
struct WatchedResource {
  std::string_view group;  // "" for the core group
  std::string_view version;
  std::string_view resource;  // the plural in the URL
  std::string_view kind;
  // Where the objects go in ClusterState, when that differs: the three cluster policy kinds share the kind
  // "ClusterNetworkPolicy" there, each under a key prefix ("cnp/" + name).
  std::string_view stateKind = "";
  std::string_view keyPrefix = "";
  // A custom resource that a cluster may not have installed: a 404 means it holds none (checked again now and
  // then), not that the API is broken.
  bool optional = false;

  std::string_view storeKind() const { return stateKind.empty() ? kind : stateKind; }

  // The collection's path: /api/v1/pods, /apis/networking.k8s.io/v1/networkpolicies.
  std::string path() const {
    return group.empty()
               ? "/api/" + std::string(version) + "/" + std::string(resource)
               : "/apis/" + std::string(group) + "/" + std::string(version) + "/" + std::string(resource);
  }
};

inline constexpr std::array<WatchedResource, 9> kWatchedResources{{
    {"", "v1", "namespaces", "Namespace"},
    {"", "v1", "pods", "Pod"},
    {"networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy"},
    {"", "v1", "services", "Service"},
    {"discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"},
    {"", "v1", "nodes", "Node"},
    {"policy.networking.k8s.io", "v1alpha2", "clusternetworkpolicies", "ClusterNetworkPolicy",
     "ClusterNetworkPolicy", "cnp/", true},
    {"policy.networking.k8s.io", "v1alpha1", "adminnetworkpolicies", "AdminNetworkPolicy",
     "ClusterNetworkPolicy", "anp/", true},
    {"policy.networking.k8s.io", "v1alpha1", "baselineadminnetworkpolicies", "BaselineAdminNetworkPolicy",
     "ClusterNetworkPolicy", "banp/", true},
}};

}  // namespace nftpol::controller
