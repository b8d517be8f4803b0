#pragma once

// The Kubernetes objects the engine reads, reduced to the fields NetworkPolicy semantics need. Every object
// here is valid: the loader only builds one after the API server's validation rules passed.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "nftpol/ip.h"
#include "nftpol/protocol.h"
#include "nftpol/selectors/labels.h"
#include "nftpol/selectors/selector.h"

namespace nftpol::policy {

using selectors::Labels;
using selectors::LabelSelector;

// 1-based line and column, as editors and compilers print them. The file name is shared by all its objects.
struct SourceLocation {
  std::shared_ptr<const std::string> file;
  int line = 0;
  int column = 0;
  std::string toString() const;  // "file:line:column", or "file" for the whole file (line 0)
};

using nftpol::Protocol;
std::string_view toString(Protocol p);
std::optional<Protocol> parseProtocol(std::string_view text);  // exactly "TCP", "UDP" or "SCTP"

struct Namespace {
  static constexpr std::string_view kKind = "Namespace";
  std::string name;
  Labels labels;  // always includes kubernetes.io/metadata.name
  SourceLocation where;
  bool implied = false;  // made up because a pod or policy named it and no Namespace object was loaded

  std::string key() const { return name; }
};

struct ContainerPort {
  std::string name;  // may be empty
  uint16_t port = 0;
  Protocol protocol = Protocol::kTCP;
  bool operator==(const ContainerPort&) const = default;
};

enum class PodPhase : uint8_t { kPending, kRunning, kSucceeded, kFailed, kUnknown };

struct Pod {
  static constexpr std::string_view kKind = "Pod";
  std::string ns;
  std::string name;
  std::string uid;  // metadata.uid: tells a pod from an earlier one of the same name
  Labels labels;
  std::string nodeName;
  bool hostNetwork = false;
  PodPhase phase = PodPhase::kRunning;
  std::vector<ContainerPort> ports;
  std::vector<IpAddress> ips;  // status.podIPs (or status.podIP), in order, IPv4 and IPv6
  SourceLocation where;

  std::string key() const { return ns + "/" + name; }
  // NetworkPolicy ignores pods without an address, finished pods and host-network pods.
  bool takesPart() const {
    return !ips.empty() && !hostNetwork && phase != PodPhase::kSucceeded && phase != PodPhase::kFailed;
  }
  const IpAddress* address(Family f) const;
  // The port number of the container port with this name and protocol, if any.
  std::optional<uint16_t> namedPort(std::string_view name, Protocol protocol) const;
};

// One entry of a rule's `ports`. Exactly one of: every port of the protocol, a numeric range, a named port.
struct PortSpec {
  struct AllPorts {
    bool operator==(const AllPorts&) const = default;
  };
  struct Range {
    uint16_t first = 0;
    uint16_t last = 0;  // == first without endPort
    bool operator==(const Range&) const = default;
  };
  Protocol protocol = Protocol::kTCP;
  std::variant<AllPorts, Range, std::string> port;

  std::string toString() const;  // "TCP/80", "TCP/8000-8080", "TCP/http", "UDP/*"
};

struct IpBlock {
  Cidr cidr;
  std::vector<Cidr> except;
  bool contains(const IpAddress& ip) const;
  std::string toString() const;  // "10.0.0.0/16 except 10.0.1.0/24"
};

// A pod/namespace selector peer: podSelector alone scopes to the policy's namespace; namespaceSelector alone
// means every pod of the matching namespaces; both mean matching pods in matching namespaces.
struct SelectorPeer {
  std::optional<LabelSelector> podSelector;
  std::optional<LabelSelector> namespaceSelector;  // at least one of the two is set
};

using Peer = std::variant<SelectorPeer, IpBlock>;

enum class Direction : uint8_t { kIngress, kEgress };
std::string_view toString(Direction d);  // "ingress" / "egress"

struct Rule {
  std::vector<Peer> peers;      // empty: every peer
  std::vector<PortSpec> ports;  // empty: every port
  SourceLocation where;
};

// The annotation that puts a NetworkPolicy in audit mode ("audit"; "enforce" is the default).
inline constexpr std::string_view kModeAnnotation = "nftpol.io/mode";

struct NetworkPolicy {
  static constexpr std::string_view kKind = "NetworkPolicy";
  std::string ns;
  std::string name;
  LabelSelector podSelector;
  bool ingress = true;  // policyTypes, after the API server's defaulting
  bool egress = false;
  std::vector<Rule> ingressRules;
  std::vector<Rule> egressRules;
  SourceLocation where;

  // Annotated `nftpol.io/mode: audit`: not enforced. It isolates nothing, and what it would deny if it were
  // enforced beside the others is reported as would-deny.
  bool audit = false;

  std::string key() const { return ns + "/" + name; }
  // Whether its policyTypes name d.
  bool declares(Direction d) const { return d == Direction::kIngress ? ingress : egress; }
  // Whether it isolates the pods it selects in d: it declares d and is enforced.
  bool has(Direction d) const { return !audit && declares(d); }
  const std::vector<Rule>& rules(Direction d) const {
    return d == Direction::kIngress ? ingressRules : egressRules;
  }
};

// --- ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2), and the v1alpha1 AdminNetworkPolicy and
// BaselineAdminNetworkPolicy read into the same form.

// Per direction the tiers decide in this order: Admin, NetworkPolicy, Baseline, then the default (allow).
enum class Tier : uint8_t { kAdmin, kBaseline };
std::string_view toString(Tier t);  // "Admin" / "Baseline"

// Accept and Deny are final for the side; Pass skips the rest of its tier.
enum class Action : uint8_t { kAccept, kDeny, kPass };
std::string_view toString(Action a);  // "Accept" / "Deny" / "Pass"

// The API object a cluster policy was read from. Each has a short name, which prefixes its key: "cnp/name".
enum class ClusterPolicyKind : uint8_t {
  kClusterNetworkPolicy,
  kAdminNetworkPolicy,
  kBaselineAdminNetworkPolicy
};
std::string_view shortName(ClusterPolicyKind k);  // "cnp", "anp", "banp"
std::string_view kindName(ClusterPolicyKind k);   // "ClusterNetworkPolicy", ...

// Egress peers: addresses in these CIDRs, pods' addresses included.
struct NetworksPeer {
  std::vector<Cidr> cidrs;
};
// Egress peers: the addresses (status.addresses) of the Nodes the selector matches.
struct NodesPeer {
  LabelSelector selector;
};
// Egress peers by DNS name: read and validated, not enforced (it needs the cluster's DNS answers). A rule
// holding one matches nothing through it.
struct DomainNamesPeer {
  std::vector<std::string> names;
};
// A peer that sets no field this version reads: a newer CRD's. It fails closed, as the API asks: an Accept
// rule holding one matches nothing through it, a Deny or Pass rule holding one denies everything.
struct UnknownPeer {
  std::vector<std::string> fields;
};
// `namespaces` and `pods` peers are SelectorPeers whose namespaceSelector is always set (`pods` sets both),
// so they never depend on a policy's namespace.
using ClusterPeer = std::variant<SelectorPeer, NetworksPeer, NodesPeer, DomainNamesPeer, UnknownPeer>;

struct ClusterRule {
  std::string name;  // may be empty
  Action action = Action::kDeny;
  std::vector<ClusterPeer> peers;  // at least one
  // Empty: every protocol and port. A destinationNamedPort (any protocol) is one entry per protocol; a pod
  // names each container port once, so at most one of them can match.
  std::vector<PortSpec> ports;
  SourceLocation where;

  // The first peer this version cannot read, if any.
  std::optional<size_t> unreadablePeer() const;
  // A Deny or Pass rule with such a peer denies everything, whatever the peer and port (fails closed).
  bool deniesAll() const { return action != Action::kAccept && unreadablePeer(); }
};

// The BaselineAdminNetworkPolicy has no priority: it comes after every Baseline ClusterNetworkPolicy.
inline constexpr int32_t kBaselineAdminPriority = 1001;

struct ClusterNetworkPolicy {
  static constexpr std::string_view kKind = "ClusterNetworkPolicy";
  ClusterPolicyKind kind = ClusterPolicyKind::kClusterNetworkPolicy;
  std::string name;
  Tier tier = Tier::kAdmin;
  int32_t priority = 0;  // 0-1000: lower first within the tier
  SelectorPeer subject;  // namespaceSelector always set; host-network pods are never subjects
  std::vector<ClusterRule> ingressRules;
  std::vector<ClusterRule> egressRules;
  SourceLocation where;

  std::string key() const { return std::string(shortName(kind)) + "/" + name; }  // "cnp/name"
  const std::vector<ClusterRule>& rules(Direction d) const {
    return d == Direction::kIngress ? ingressRules : egressRules;
  }
  // Evaluation order within a tier: priority, then key for equal priorities (which the API leaves to the
  // implementation): "anp/x" before "cnp/a" before "cnp/b".
  bool precedes(const ClusterNetworkPolicy& other) const {
    if (priority != other.priority) return priority < other.priority;
    // The keys compared without making them: no short name is a prefix of another.
    if (kind != other.kind) return shortName(kind) < shortName(other.kind);
    return name < other.name;
  }
};

// One port of a Service: what clients connect to, and what its endpoints serve it on.
struct ServicePort {
  std::string name;  // required when the service has more than one port
  Protocol protocol = Protocol::kTCP;
  uint16_t port = 0;
  // A number, or the name of a container port; resolved through the EndpointSlices' ports, which carry the
  // number each endpoint serves the port named like this service port on.
  std::variant<uint16_t, std::string> targetPort;
  uint16_t nodePort = 0;  // 0: none
  bool operator==(const ServicePort&) const = default;
};

enum class ServiceType : uint8_t { kClusterIP, kNodePort, kLoadBalancer, kExternalName };
// externalTrafficPolicy / internalTrafficPolicy: Local keeps the traffic on endpoints of the receiving node.
enum class TrafficPolicy : uint8_t { kCluster, kLocal };

struct Service {
  static constexpr std::string_view kKind = "Service";
  std::string ns;
  std::string name;
  ServiceType type = ServiceType::kClusterIP;
  std::vector<IpAddress> clusterIPs;  // spec.clusterIPs (or clusterIP); empty for a headless service
  std::vector<ServicePort> ports;
  std::vector<IpAddress> externalIPs;
  std::vector<IpAddress> loadBalancerIPs;   // status.loadBalancer.ingress[].ip
  std::optional<uint32_t> affinitySeconds;  // sessionAffinity: ClientIP, with its timeout (default 10800)
  TrafficPolicy externalTrafficPolicy = TrafficPolicy::kCluster;
  TrafficPolicy internalTrafficPolicy = TrafficPolicy::kCluster;
  SourceLocation where;

  std::string key() const { return ns + "/" + name; }
};

struct EndpointPort {
  std::string name;  // matches the service port's name
  Protocol protocol = Protocol::kTCP;
  uint16_t port = 0;
  bool operator==(const EndpointPort&) const = default;
};

// One endpoint of an EndpointSlice (not to be confused with reach.h's Endpoint, one end of a connection).
struct SliceEndpoint {
  std::vector<IpAddress> addresses;
  bool ready = true;  // conditions.ready; unset means ready
  std::string nodeName;
  std::string podNs, podName;  // targetRef, when it names a Pod
  bool operator==(const SliceEndpoint&) const = default;
};

// discovery.k8s.io/v1 EndpointSlice of one address family (FQDN slices are not used).
struct EndpointSlice {
  static constexpr std::string_view kKind = "EndpointSlice";
  std::string ns;
  std::string name;
  std::string serviceName;  // label kubernetes.io/service-name
  Family family = Family::kV4;
  std::vector<EndpointPort> ports;
  std::vector<SliceEndpoint> endpoints;
  SourceLocation where;

  std::string key() const { return ns + "/" + name; }
};

struct Node {
  static constexpr std::string_view kKind = "Node";
  std::string name;
  Labels labels;
  std::vector<Cidr> podCIDRs;          // spec.podCIDRs (or podCIDR)
  std::vector<IpAddress> internalIPs;  // status.addresses of type InternalIP
  std::vector<IpAddress> addresses;    // every IP of status.addresses, whatever its type (a nodes peer's)
  SourceLocation where;

  std::string key() const { return name; }
};

// Objects of other kinds (Endpoints, ...) are kept by identity.
struct OtherObject {
  std::string apiVersion;
  std::string kind;
  std::string ns;
  std::string name;
  SourceLocation where;

  std::string key() const { return kind + "/" + ns + "/" + name; }
};

}  // namespace nftpol::policy
