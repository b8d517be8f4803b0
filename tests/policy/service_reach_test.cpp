// can-reach to a Service: what TO names, and the connection judged at each backend after the translation.
#include <fstream>
#include <sstream>

#include "helpers.h"
#include "nftpol/policy/service_reach.h"

using namespace nftpol;
using namespace nftpol::policy;
using nftpol::testing::TestCluster;

namespace {
std::string servicesYaml() {
  std::ifstream in(NFTPOL_SOURCE_DIR "/tests/cli/data/services.yaml");
  std::stringstream text;
  text << in.rdbuf();
  REQUIRE_FALSE(text.str().empty());
  return text.str();
}
}  // namespace

TEST_CASE("a service is named by namespace/name, a cluster IP or its DNS name, and never guessed",
          "[reach]") {
  TestCluster c(servicesYaml());
  Services services = Services::build(*c.state);
  for (const char* name : {"a/web", "10.96.1.1", "web.a.svc.cluster.local"}) {
    auto t = resolveTarget(*c.compiled, services, name);
    INFO(name);
    REQUIRE(t.ok());
    REQUIRE(t->service);
    CHECK(t->service->key() == "a/web");
    CHECK(t->virtualAddress.has_value() == (std::string(name) == "10.96.1.1"));
  }
  auto pod = resolveTarget(*c.compiled, services, "a/client");
  REQUIRE(pod.ok());
  CHECK_FALSE(pod->service);
  CHECK(pod->endpoint->pod);
  auto both = resolveTarget(*c.compiled, services, "a/dup");
  REQUIRE_FALSE(both.ok());
  CHECK(both.error().message.find("both a pod and a service are named a/dup") == 0);
  auto unknown = resolveTarget(*c.compiled, services, "nothing.a.svc.cluster.local");
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().message.find("no service nothing.a.svc.cluster.local") == 0);
}

TEST_CASE("a connection to a service is judged at each ready backend: allowed, partly allowed, denied",
          "[reach]") {
  TestCluster c(servicesYaml());
  Services services = Services::build(*c.state);
  auto reach = [&](const std::string& from, const std::string& to, uint16_t port) {
    auto target = resolveTarget(*c.compiled, services, to);
    REQUIRE(target.ok());
    return canReachService(*c.compiled, services, c.endpoint(from), *target, Protocol::kTCP, port);
  };
  // web: one backend admits the client (a policy allows it on the named port), one is closed; the third
  // endpoint is not ready and takes no connections.
  auto web = reach("a/client", "a/web", 80);
  REQUIRE(web.ok());
  CHECK(web->outcome == ServiceReach::Outcome::kPartlyAllowed);
  CHECK(web->port->name() == "a/web:http");
  REQUIRE(web->backends.size() == 2);
  CHECK(web->admitted == 1);
  CHECK(web->backends[0].backend->address.toString() == "10.244.1.3");
  CHECK(web->backends[0].allowed);
  CHECK(web->backends[0].backend->port == 8080);  // the policy judges the translated port
  CHECK(c.compiled->pod(*web->backends[0].endpoint.pod).key() == "a/web-1");
  CHECK_FALSE(web->backends[1].allowed);

  // local: internalTrafficPolicy Local, and its one backend is on another node than the client.
  auto local = reach("a/client", "a/local", 80);
  REQUIRE(local.ok());
  CHECK(local->outcome == ServiceReach::Outcome::kDenied);
  CHECK(local->backends.empty());
  CHECK(local->noneOnNode);
  CHECK(local->node == "node-1");
  // From its own node the backend is there, and nothing isolates it.
  auto there = reach("a/web-2", "a/local", 80);
  REQUIRE(there.ok());
  CHECK(there->outcome == ServiceReach::Outcome::kAllowed);
  CHECK(there->admitted == 1);

  auto noPort = reach("a/client", "a/web", 81);
  REQUIRE_FALSE(noPort.ok());
  CHECK(noPort.error().message == "service a/web has no port TCP/81 (it has 80/TCP http)");
}
