// Service, EndpointSlice and Node as the loader reads them: the fields service NAT and node routes use, with
// the API server's defaults and its validation, errors located at file:line:column.
#include "nftpol/policy/services.h"
#include "helpers.h"

using namespace nftpol;
using namespace nftpol::policy;
using nftpol::testing::ExpectErrors;
using nftpol::testing::TestCluster;

TEST_CASE("a Service with every field service NAT uses", "[services]") {
  TestCluster c(R"(apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10, "fd00:96::10"]
  externalIPs: [192.0.2.10]
  ports:
  - {name: http, port: 80, targetPort: http, nodePort: 30080}
  - {name: dns, port: 53, protocol: UDP, targetPort: 5353}
  - {name: plain, port: 81}
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}
  externalTrafficPolicy: Local
  internalTrafficPolicy: Local
  selector: {app: web}
  ipFamilyPolicy: PreferDualStack
status:
  loadBalancer:
    ingress: [{ip: 198.51.100.7}, {hostname: lb.example.com}]
)");
  INFO(c.errors());
  CHECK(c.errors().empty());
  const Service* s = c.state->findService("shop", "web");
  REQUIRE(s);
  CHECK(s->type == ServiceType::kLoadBalancer);
  REQUIRE(s->clusterIPs.size() == 2);
  CHECK(s->clusterIPs[1].toString() == "fd00:96::10");
  REQUIRE(s->ports.size() == 3);
  CHECK(s->ports[0].targetPort == std::variant<uint16_t, std::string>(std::string("http")));
  CHECK(s->ports[0].nodePort == 30080);
  CHECK(s->ports[1].protocol == Protocol::kUDP);
  CHECK(s->ports[1].targetPort == std::variant<uint16_t, std::string>(uint16_t{5353}));
  CHECK(s->ports[2].targetPort == std::variant<uint16_t, std::string>(uint16_t{81}));  // defaults to port
  CHECK(s->externalIPs.at(0).toString() == "192.0.2.10");
  REQUIRE(s->loadBalancerIPs.size() == 1);  // a hostname-only ingress has no address to translate
  CHECK(s->loadBalancerIPs[0].toString() == "198.51.100.7");
  CHECK(s->affinitySeconds == 60u);
  CHECK(s->externalTrafficPolicy == TrafficPolicy::kLocal);
  CHECK(s->internalTrafficPolicy == TrafficPolicy::kLocal);
}

TEST_CASE("Service defaults: ClusterIP, TCP, three hours of affinity, headless", "[services]") {
  TestCluster c(R"(apiVersion: v1
kind: Service
metadata: {name: a}
spec: {clusterIP: 10.96.0.1, ports: [{port: 80}], sessionAffinity: ClientIP}
---
apiVersion: v1
kind: Service
metadata: {name: headless}
spec: {clusterIP: None, ports: [{port: 80}]}
)");
  CHECK(c.errors().empty());
  const Service* a = c.state->findService("default", "a");
  REQUIRE(a);
  CHECK(a->type == ServiceType::kClusterIP);
  CHECK(a->ports.at(0).protocol == Protocol::kTCP);
  CHECK(a->affinitySeconds == 10800u);
  const Service* h = c.state->findService("default", "headless");
  REQUIRE(h);
  CHECK(h->clusterIPs.empty());
}

TEST_CASE("EndpointSlices: ports, readiness (unset is ready), node and pod of each endpoint", "[services]") {
  TestCluster c(R"(apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-abc, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: dns, protocol: UDP, port: 5353}]
endpoints:
- addresses: [10.244.1.5]
  conditions: {ready: true}
  nodeName: node-1
  targetRef: {kind: Pod, name: web-1, namespace: shop}
- addresses: [10.244.2.5]
  conditions: {ready: false}
- addresses: [10.244.3.5]
)");
  INFO(c.errors());
  CHECK(c.errors().empty());
  REQUIRE(c.state->endpointSlices().size() == 1);
  const EndpointSlice& s = c.state->endpointSlices()[0];
  CHECK(s.serviceName == "web");
  CHECK(s.family == Family::kV4);
  REQUIRE(s.ports.size() == 2);
  CHECK(s.ports[1] == EndpointPort{"dns", Protocol::kUDP, 5353});
  REQUIRE(s.endpoints.size() == 3);
  CHECK(s.endpoints[0].ready);
  CHECK(s.endpoints[0].nodeName == "node-1");
  CHECK(s.endpoints[0].podName == "web-1");
  CHECK_FALSE(s.endpoints[1].ready);
  CHECK(s.endpoints[2].ready);
}

TEST_CASE("Nodes: pod CIDRs and InternalIP addresses", "[services]") {
  TestCluster c(R"(apiVersion: v1
kind: Node
metadata: {name: node-1}
spec: {podCIDR: 10.244.1.0/24, podCIDRs: [10.244.1.0/24, "fd00:244:1::/64"]}
status:
  addresses:
  - {type: Hostname, address: node-1}
  - {type: InternalIP, address: 172.18.0.2}
  - {type: InternalIP, address: "fd00:18::2"}
)");
  CHECK(c.errors().empty());
  REQUIRE(c.state->nodes().size() == 1);
  const Node& n = c.state->nodes()[0];
  REQUIRE(n.podCIDRs.size() == 2);
  CHECK(n.podCIDRs[1].toString() == "fd00:244:1::/64");
  REQUIRE(n.internalIPs.size() == 2);
  CHECK(n.internalIPs[0].toString() == "172.18.0.2");
}

TEST_CASE("bad Services, EndpointSlices and Nodes are refused where they are wrong", "[services]") {
  struct Case {
    std::string yaml;
    std::string error;
  };
  const Case cases[] = {
      {"apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {type: Internal}\n",
       "test.yaml:4:14: Service default/s: spec.type: unsupported value \"Internal\" (must be ClusterIP, "
       "NodePort, "
       "LoadBalancer or ExternalName)"},
      {"apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}, {port: 81}]}\n",
       "test.yaml:4:16: Service default/s: spec.ports[0].name: required when a service has more than one "
       "port"},
      {"apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80, nodePort: 30080}]}\n",
       "test.yaml:4:37: Service default/s: spec.ports[0].nodePort: may not be used when `type` is "
       "'ClusterIP'"},
      {"apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80, targetPort: web_1}]}\n",
       "test.yaml:4:39: Service default/s: spec.ports[0].targetPort: "},
      {"apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 0}]}\n",
       "test.yaml:4:23: Service default/s: spec.ports[0].port: 0 is not a valid port number"},
      {"apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {clusterIP: 10.96.0.300}\n",
       "test.yaml:4:19: Service default/s: spec.clusterIP: invalid IP address"},
      {"apiVersion: v1\nkind: Service\nmetadata: {name: s}\n"
       "spec: {sessionAffinity: ClientIP, sessionAffinityConfig: {clientIP: {timeoutSeconds: 90000}}}\n",
       "test.yaml:4:86: Service default/s: spec.sessionAffinityConfig.clientIP.timeoutSeconds: 90000 must be "
       "between 1 and 86400 seconds"},
      {"apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {externalTrafficPolicy: Local}\n",
       "test.yaml:4:31: Service default/s: spec.externalTrafficPolicy: may only be set when `type` is "
       "'NodePort' "
       "or 'LoadBalancer'"},
      {"apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: e}\nendpoints: []\n",
       "test.yaml:1:1: EndpointSlice default/e: addressType: required"},
      {"apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: e}\naddressType: IPv6\n"
       "endpoints: [{addresses: [10.244.0.1]}]\n",
       "test.yaml:5:25: EndpointSlice default/e: endpoints[0].addresses: 10.244.0.1 is not an address of the "
       "slice's addressType"},
      {"apiVersion: discovery.k8s.io/v1beta1\nkind: EndpointSlice\nmetadata: {name: e}\n",
       "test.yaml:1:13: EndpointSlice: apiVersion: unsupported apiVersion \"discovery.k8s.io/v1beta1\" for "
       "EndpointSlice (must be discovery.k8s.io/v1)"},
      {"apiVersion: v1\nkind: Node\nmetadata: {name: n}\nspec: {podCIDR: 10.244.1.0/33}\n",
       "test.yaml:4:17: Node n: spec.podCIDR: "},
  };
  for (const auto& k : cases) {
    INFO(k.yaml);
    TestCluster c(k.yaml, ExpectErrors{});
    INFO(c.errors());
    CHECK(c.errors().rfind(k.error, 0) == 0);
    CHECK(c.state->services().empty());
    CHECK(c.state->endpointSlices().empty());
    CHECK(c.state->nodes().empty());
  }
}

TEST_CASE("service ports resolve to ready backends: target ports from the slice, the number or the pod",
          "[services]") {
  TestCluster c(R"(apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: s}}
- apiVersion: v1
  kind: Pod
  metadata: {name: p1, namespace: s}
  spec: {nodeName: n1, containers: [{name: c, ports: [{name: web, containerPort: 9000}]}]}
  status: {podIP: 10.244.1.1}
- apiVersion: v1
  kind: Service
  metadata: {name: svc, namespace: s}
  spec:
    type: NodePort
    clusterIP: 10.96.0.5
    externalIPs: [192.0.2.5]
    externalTrafficPolicy: Local
    ports:
    - {name: a, port: 80, targetPort: web, nodePort: 30080}
    - {name: b, port: 81, targetPort: 7000}
    - {name: c, port: 53, protocol: UDP, targetPort: web}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {name: svc-1, namespace: s, labels: {kubernetes.io/service-name: svc}}
  addressType: IPv4
  ports: [{name: a, port: 8080}]
  endpoints:
  - {addresses: [10.244.1.1], nodeName: n1, targetRef: {kind: Pod, name: p1}}
  - {addresses: [10.244.2.1], nodeName: n2}
  - {addresses: [10.244.3.1], nodeName: n3, conditions: {ready: false}}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {name: svc-2, namespace: s, labels: {kubernetes.io/service-name: svc}}
  addressType: IPv4
  ports: [{name: a, port: 8080}]
  endpoints: [{addresses: [10.244.2.1], nodeName: n2}]
- {apiVersion: v1, kind: Service, metadata: {name: alias, namespace: s}, spec: {type: ExternalName, externalName: example.com}}
)");
  INFO(c.errors());
  REQUIRE(c.errors().empty());
  Services services = Services::build(*c.state);
  REQUIRE(services.ports().size() == 3);  // an ExternalName service has nothing to translate
  const auto& a = services.ports()[0];
  CHECK(a.name() == "s/svc:a");
  // The slice's entry decides; the unready endpoint is left out; the one listed in two slices counts once.
  CHECK(a.backends == std::vector<Backend>{{*IpAddress::parse("10.244.1.1"), 8080, "n1", "s/p1"},
                                           {*IpAddress::parse("10.244.2.1"), 8080, "n2", ""}});
  // No entry in the slice for b: the numeric target port.
  CHECK(services.ports()[1].backends.size() == 2);
  CHECK(services.ports()[1].backends[0].port == 7000);
  // No entry for c and a named target: only the endpoint whose pod has that port (UDP "web": none).
  CHECK(services.ports()[2].backends.empty());

  CHECK(services.byVirtualAddress(*IpAddress::parse("10.96.0.5"), Protocol::kTCP, 81) ==
        &services.ports()[1]);
  CHECK(services.byVirtualAddress(*IpAddress::parse("192.0.2.5"), Protocol::kTCP, 80) ==
        &services.ports()[0]);
  CHECK(services.byVirtualAddress(*IpAddress::parse("10.96.0.5"), Protocol::kUDP, 81) == nullptr);
  CHECK(services.byNodePort(Protocol::kTCP, 30080) == &services.ports()[0]);
  CHECK(services.byNodePort(Protocol::kUDP, 30080) == nullptr);
  const Service* svc = c.state->findService("s", "svc");
  for (const char* name : {"svc.s.svc.cluster.local", "svc.s.svc.cluster.local.", "svc.s.svc", "svc.s"})
    CHECK(services.byDnsName(name) == svc);
  CHECK(services.byDnsName("svc") == nullptr);
  CHECK(services.byDnsName("svc.t.svc.cluster.local") == nullptr);
  CHECK(services.byAddress(*IpAddress::parse("192.0.2.5")) == svc);

  // externalTrafficPolicy Local: from outside, only the node's own backends; inside, every backend.
  CHECK(a.backendsFor(true, "n2").size() == 1);
  CHECK(a.backendsFor(true, "n9").empty());
  CHECK(a.backendsFor(false, "n9").size() == 2);
}
