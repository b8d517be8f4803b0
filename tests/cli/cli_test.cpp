// The CLI's contracts: exit statuses, the JSON forms other tools read, what-if output, usage errors.
#include <catch2/catch.hpp>
#include <sstream>

#include "commands.h"

using namespace nftpol::cli;

namespace {

struct Run {
  int status;
  std::string out, err;
};

Run run(int (*command)(const std::vector<std::string>&, std::ostream&, std::ostream&),
        const std::vector<std::string>& args) {
  std::ostringstream out, err;
  int status = command(args, out, err);
  return {status, out.str(), err.str()};
}

const std::string kCluster = NFTPOL_SOURCE_DIR "/samples/cluster";

}  // namespace

TEST_CASE("can-reach: exit 0 allowed, 1 denied, 2 bad input", "[cli]") {
  auto allowed =
      run(canReachCommand, {"--cluster", kCluster, "shop/frontend-0", "shop/api-0", "--port", "8080"});
  CHECK(allowed.status == 0);
  CHECK(allowed.out.rfind("ALLOWED: shop/frontend-0 -> shop/api-0 on TCP/8080\n", 0) == 0);
  CHECK(allowed.out.find("shop/frontend-to-api ingress[0] (from[0], ports[0] TCP/http) at ") !=
        std::string::npos);

  auto denied =
      run(canReachCommand, {"--cluster", kCluster, "shop/frontend-0", "shop/db-0", "--port", "5432"});
  CHECK(denied.status == 1);
  CHECK(
      denied.out ==
      "DENIED: shop/frontend-0 -> shop/db-0 on TCP/5432\n"
      "  egress of shop/frontend-0: isolated by shop/default-deny, shop/frontend-egress; no rule allows it, "
      "denied\n"
      "  ingress of shop/db-0: isolated by shop/db-from-api, shop/default-deny; no rule allows it, denied\n");

  CHECK(run(canReachCommand, {"--cluster", kCluster, "shop/nope", "shop/db-0", "--port", "1"}).err ==
        "nftpol can-reach: no pod shop/nope in the cluster\n");
  CHECK(run(canReachCommand, {"--cluster", kCluster, "shop/api-0", "shop/db-0", "--port", "0"}).status == 2);
  CHECK(run(canReachCommand,
            {"--cluster", kCluster, "shop/api-0", "shop/db-0", "--port", "1", "--protocol", "icmp"})
            .err == "nftpol can-reach: invalid --protocol \"icmp\" (must be TCP, UDP or SCTP)\n");
  CHECK(run(canReachCommand, {"--cluster", kCluster, "shop/api-0", "--port", "1"}).status == 2);
  CHECK(run(canReachCommand, {"shop/api-0", "shop/db-0", "--port", "1"}).status == 2);
}

TEST_CASE("can-reach to a service answers for each backend, after the translation", "[cli]") {
  const std::string data = NFTPOL_SOURCE_DIR "/tests/cli/data/services.yaml";
  // By DNS name, by namespace/name and by cluster IP: the same service, the same answer.
  for (std::string to : {"web.a.svc.cluster.local", "a/web", "10.96.1.1", "web.a", "web.a.svc"}) {
    INFO(to);
    auto r = run(canReachCommand, {"--cluster", data, "a/client", to, "--port", "80"});
    CHECK(r.status == 1);
    CHECK(
        r.out.rfind("PARTLY ALLOWED: a/client -> service a/web on TCP/80 (a/web:http): 1 of 2 backends admit "
                    "it; each connection goes to a backend chosen at random, so some fail\n"
                    "  backend a/web-1 port 8080: allowed\n",
                    0) == 0);
    CHECK(r.out.find("a/web-one-from-client ingress[0] (from[0], ports[0] TCP/http)") != std::string::npos);
    CHECK(r.out.find("  backend a/web-2 port 8080: denied\n") != std::string::npos);
    CHECK(r.out.find("10.244.3.3") == std::string::npos);  // not ready: never a backend
  }
  auto json =
      run(canReachCommand, {"--cluster", data, "a/client", "a/web", "--port", "80", "--output", "json"});
  CHECK(json.status == 1);
  CHECK(json.out.rfind(
            "{\"allowed\":false,\"from\":\"a/client\",\"to\":\"service a/web\",\"service\":\"a/web\","
            "\"servicePort\":\"a/web:http\",\"protocol\":\"TCP\",\"port\":80,\"backendsAllowed\":1,"
            "\"backends\":[{\"backend\":\"a/web-1\",\"address\":\"10.244.1.3\",\"port\":8080,"
            "\"node\":\"node-1\",\"allowed\":true,",
            0) == 0);

  // internalTrafficPolicy Local: from node-2 the one backend there (web-2 reaching itself: always allowed),
  // from node-1 none at all.
  auto local = run(canReachCommand, {"--cluster", data, "a/web-2", "a/local", "--port", "80"});
  CHECK(local.status == 0);
  CHECK(local.out ==
        "ALLOWED: a/web-2 -> service a/local on TCP/80 (a/local:80/TCP): 1 of 1 backends admit it\n"
        "  backend a/web-2 port 8080: allowed\n"
        "    traffic a pod sends to itself is always allowed\n");
  auto none = run(canReachCommand, {"--cluster", data, "a/client", "a/local", "--port", "80"});
  CHECK(none.status == 1);
  CHECK(none.out ==
        "DENIED: a/client -> service a/local on TCP/80 (a/local:80/TCP): no ready backend on node-1 "
        "(traffic policy Local); the connection is rejected at once\n");

  auto noPort = run(canReachCommand, {"--cluster", data, "a/client", "a/web", "--port", "81"});
  CHECK(noPort.status == 2);
  CHECK(noPort.err == "nftpol can-reach: service a/web has no port TCP/81 (it has 80/TCP http)\n");
  auto both = run(canReachCommand, {"--cluster", data, "a/client", "a/dup", "--port", "80"});
  CHECK(both.status == 2);
  CHECK(both.err ==
        "nftpol can-reach: both a pod and a service are named a/dup; name the service by its DNS name "
        "dup.a.svc.cluster.local or by its cluster IP\n");
  auto unknown =
      run(canReachCommand, {"--cluster", data, "a/client", "nope.a.svc.cluster.local", "--port", "80"});
  CHECK(unknown.status == 2);
  CHECK(unknown.err ==
        "nftpol can-reach: no service nope.a.svc.cluster.local in the cluster (a service's DNS "
        "name is name.namespace.svc.cluster.local)\n");
}

TEST_CASE("can-reach --output json", "[cli]") {
  auto r = run(canReachCommand,
               {"--cluster", kCluster, "shop/api-0", "93.184.216.34", "--port", "443", "--output", "json"});
  CHECK(r.status == 0);
  CHECK(
      r.out ==
      "{\"allowed\":true,\"from\":\"shop/api-0\",\"to\":\"93.184.216.34\",\"protocol\":\"TCP\",\"port\":443,"
      "\"verdicts\":[{\"allowed\":true,\"reason\":\"policies\",\"family\":\"IPv4\",\"source\":\"10.244.1."
      "11\","
      "\"destination\":\"93.184.216.34\",\"egress\":{\"applies\":true,\"decidedBy\":\"networkpolicy\","
      "\"isolated\":true,\"allowed\":true,"
      "\"policies\":[\"shop/api-to-db\",\"shop/default-deny\"],\"allowedBy\":[{\"policy\":\"shop/api-to-db\","
      "\"rule\":\"egress[2]\",\"peer\":0,\"port\":0,\"location\":\"" +
          kCluster +
          "/policies.yaml:78:5\"}]},\"ingress\":{\"applies\":false,\"isolated\":false,\"allowed\":true,"
          "\"policies\":[],\"allowedBy\":[]}}]}\n");
}

TEST_CASE("matrix --output json is the documented contract", "[cli]") {
  auto r = run(matrixCommand, {"--cluster", kCluster, "--port", "5432", "--output", "json"});
  CHECK(r.status == 0);
  CHECK(r.out ==
        "{\"pods\":[\"monitoring/prometheus-0\",\"payments/gateway-0\",\"shop/api-0\",\"shop/api-1\",\"shop/"
        "db-0\","
        "\"shop/frontend-0\",\"shop/frontend-1\"],\"matrix\":["
        "[true,false,false,false,false,false,false],"  // gateway only takes shop/api on https
        "[true,true,false,false,false,false,false],"
        "[false,false,true,false,true,false,false],"
        "[false,false,false,true,true,false,false],"
        "[false,false,false,false,true,false,false],"
        "[false,false,false,false,false,true,false],"
        "[false,false,false,false,false,false,true]]}\n");
}

TEST_CASE("matrix table and dot", "[cli]") {
  auto table = run(matrixCommand, {"--cluster", kCluster, "--port", "5432"});
  CHECK(table.status == 0);
  CHECK(table.out.rfind("reachability on TCP/5432 (rows: from, columns: to; . allowed, X denied)\n", 0) == 0);
  CHECK(table.out.find("\nshop/api-0                         X                    X              .          "
                       "X          .  ") != std::string::npos);
  auto dot = run(matrixCommand, {"--cluster", kCluster, "--port", "5432", "--output", "dot"});
  CHECK(dot.out.rfind("digraph reachability {\n", 0) == 0);
  CHECK(dot.out.find("  \"shop/api-0\" -> \"shop/db-0\";\n") != std::string::npos);
  CHECK(dot.out.find("  \"shop/frontend-0\" -> \"shop/db-0\";\n") == std::string::npos);
}

TEST_CASE("matrix --what-if prints only the cells that change", "[cli]") {
  auto r = run(matrixCommand,
               {"--cluster", kCluster, "--port", "5432", "--what-if", NFTPOL_SOURCE_DIR "/samples/what-if"});
  CHECK(r.status == 0);
  CHECK(r.out ==
        "what-if on TCP/5432: 2 cell(s) change\n"
        "  + shop/frontend-0 -> shop/db-0  newly allowed\n"
        "  + shop/frontend-1 -> shop/db-0  newly allowed\n");
  auto json = run(matrixCommand, {"--cluster", kCluster, "--port", "5432", "--what-if",
                                  NFTPOL_SOURCE_DIR "/samples/what-if", "--output", "json"});
  CHECK(
      json.out ==
      "{\"protocol\":\"TCP\",\"port\":5432,\"changes\":[{\"from\":\"shop/frontend-0\",\"to\":\"shop/db-0\","
      "\"before\":false,\"after\":true},{\"from\":\"shop/frontend-1\",\"to\":\"shop/db-0\",\"before\":false,"
      "\"after\":true}],\"addedPods\":[],\"removedPods\":[]}\n");
}

TEST_CASE("matrix --what-if reports newly denied cells too", "[cli]") {
  auto r = run(matrixCommand, {"--cluster", kCluster, "--port", "9090", "--what-if",
                               NFTPOL_SOURCE_DIR "/tests/cli/data/what-if-deny-monitoring.yaml"});
  CHECK(r.status == 0);
  CHECK(r.out ==
        "what-if on TCP/9090: 2 cell(s) change\n"
        "  - monitoring/prometheus-0 -> shop/api-0  newly denied\n"
        "  - monitoring/prometheus-0 -> shop/api-1  newly denied\n");
}

TEST_CASE("lint exit status: 0 clean, 1 warnings, 2 errors", "[cli]") {
  CHECK(run(lintCommand, {"--cluster", kCluster}).status == 0);
  auto warn = run(lintCommand,
                  {"--cluster", kCluster, "--cluster", NFTPOL_SOURCE_DIR "/tests/cli/data/lint-warn.yaml"});
  CHECK(warn.status == 1);
  CHECK(warn.out.find("warning: NetworkPolicy shop/typo: spec.podSelector: selects no pod {app=fronted}") !=
        std::string::npos);
  auto err = run(lintCommand,
                 {"--cluster", kCluster, "--cluster", NFTPOL_SOURCE_DIR "/tests/cli/data/lint-error.yaml"});
  CHECK(err.status == 2);
  CHECK(err.out.find(
            "lint-error.yaml:9:20: NetworkPolicy shop/bad: spec.ingress[0].ports[0].port: 0 is not a valid "
            "port number (must be between 1 and 65535)") != std::string::npos);
  // The simulator refuses to answer from manifests with errors.
  auto refused = run(canReachCommand,
                     {"--cluster", kCluster, "--cluster", NFTPOL_SOURCE_DIR "/tests/cli/data/lint-error.yaml",
                      "shop/api-0", "shop/db-0", "--port", "5432"});
  CHECK(refused.status == 2);
  CHECK(refused.err.find("nftpol: the manifests have errors; nothing was evaluated\n") != std::string::npos);
}

TEST_CASE("explain one policy or all", "[cli]") {
  auto one = run(explainCommand, {"--cluster", kCluster, "shop/api-to-db"});
  CHECK(one.status == 0);
  CHECK(one.out.find("    ports[0] TCP/postgres (shop/db-0=5432)\n") != std::string::npos);
  auto missing = run(explainCommand, {"--cluster", kCluster, "shop/nope"});
  CHECK(missing.status == 2);
  auto all = run(explainCommand, {"--cluster", kCluster});
  CHECK(all.out.find("NetworkPolicy payments/gateway-from-shop") != std::string::npos);
}

TEST_CASE(
    "an audited policy: can-reach and matrix answer without it, and with --audit-as-enforced as enforced",
    "[cli]") {
  const std::string audit = NFTPOL_SOURCE_DIR "/tests/cli/data/audit-mode.yaml";
  std::vector<std::string> ask = {"--cluster",  kCluster, "--cluster", audit, "monitoring/prometheus-0",
                                  "shop/api-0", "--port", "9090"};
  auto enforced = run(canReachCommand, ask);
  CHECK(enforced.status == 0);
  ask.push_back("--audit-as-enforced");
  auto asEnforced = run(canReachCommand, ask);
  CHECK(asEnforced.status == 1);
  CHECK_THAT(asEnforced.out,
             Catch::Contains("egress of monitoring/prometheus-0: isolated by monitoring/deny-monitoring"));
  // What-if an audited policy were added: nothing changes, unless it is counted as enforced.
  auto unchanged = run(matrixCommand, {"--cluster", kCluster, "--port", "9090", "--what-if", audit});
  CHECK_THAT(unchanged.out, Catch::Contains("0 cell(s) change"));
  auto changed = run(matrixCommand,
                     {"--cluster", kCluster, "--port", "9090", "--what-if", audit, "--audit-as-enforced"});
  CHECK_THAT(changed.out, Catch::Contains("monitoring/prometheus-0 -> shop/api-0  newly denied"));
  auto lint = run(lintCommand, {"--cluster", kCluster, "--cluster", audit});
  CHECK(lint.status == 1);
  CHECK_THAT(lint.out + lint.err, Catch::Contains("audit mode: not enforced"));
  auto explain =
      run(explainCommand, {"--cluster", kCluster, "--cluster", audit, "monitoring/deny-monitoring"});
  CHECK_THAT(explain.out, Catch::Contains("mode: audit (nftpol.io/mode): not enforced"));
}
