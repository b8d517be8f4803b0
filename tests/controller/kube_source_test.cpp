// The list/watch protocol of the Kubernetes source against a scripted API server (in memory, through the
// ApiClient interface): initial lists in pages, events, bookmarks, a watch the server ends, 410 Gone as an
// ERROR event and as a status, a line that is not an event. After each, the source's objects equal the
// server's.
#include "nftpol/controller/kube_source.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>

#include "nftpol/policy/loader.h"

using namespace nftpol;
using namespace nftpol::controller;
using namespace std::chrono_literals;

namespace {

// A resource collection as the API server keeps it: objects by key, a resourceVersion counter, and the events
// since the last compaction.
class FakeServer {
 public:
  struct Faults {
    bool goneEvent = false;   // the next watch line is an ERROR 410
    bool goneStatus = false;  // watches are refused with 410 until the next list
    bool garbage = false;     // the next watch line is not JSON
    bool cut = false;         // open watches end now
    bool hold = false;        // watches deliver nothing until released
  };

  void put(const std::string& resource, const std::string& key, const std::string& json) {
    std::lock_guard lock(mu_);
    auto rv = ++version_;
    auto object = withVersion(json, rv);
    bool existed = objects_[resource].contains(key);
    objects_[resource][key] = object;
    log_[resource].push_back({rv, std::string(R"({"type":")") + (existed ? "MODIFIED" : "ADDED") +
                                      R"(","object":)" + object + "}"});
    cv_.notify_all();
  }
  void erase(const std::string& resource, const std::string& key) {
    std::lock_guard lock(mu_);
    auto rv = ++version_;
    auto object = withVersion(objects_[resource].at(key), rv);
    objects_[resource].erase(key);
    log_[resource].push_back({rv, R"({"type":"DELETED","object":)" + object + "}"});
    cv_.notify_all();
  }
  // Changes made while no watch hears of them: the log is compacted past them, as etcd does.
  void compact() {
    std::lock_guard lock(mu_);
    for (auto& [resource, log] : log_)
      log.clear();
    compactedAt_ = version_;
  }
  void bookmark(const std::string& resource) {
    std::lock_guard lock(mu_);
    auto rv = ++version_;
    log_[resource].push_back(
        {rv, R"({"type":"BOOKMARK","object":{"kind":"X","metadata":{"resourceVersion":")" +
                 std::to_string(rv) + R"("}}})"});
    cv_.notify_all();
  }
  void fault(const std::string& resource, const std::function<void(Faults&)>& f) {
    std::lock_guard lock(mu_);
    f(faults_[resource]);
    cv_.notify_all();
  }
  int lists() const {
    std::lock_guard lock(mu_);
    return lists_;
  }
  // The server does not have the resource (a CRD not installed): lists of it are 404.
  void lack(const std::string& resource) {
    std::lock_guard lock(mu_);
    missing_.insert(resource);
  }
  // The CRD installed: lists of it answer from now on.
  void install(const std::string& resource) {
    std::lock_guard lock(mu_);
    missing_.erase(resource);
    cv_.notify_all();
  }

  // GET /api/v1/pods?limit=N[&continue=OFFSET]
  ApiClient::Response list(const std::string& resource, size_t limit, size_t offset) {
    std::lock_guard lock(mu_);
    ++lists_;
    if (missing_.contains(resource)) return {404, R"({"kind":"Status","code":404})"};
    faults_[resource].goneStatus = false;
    const auto& objects = objects_[resource];
    std::string items;
    size_t i = 0;
    for (const auto& [key, json] : objects) {
      if (i >= offset && i < offset + limit) items += (items.empty() ? "" : ",") + withoutKind(json);
      ++i;
    }
    std::string next = offset + limit < objects.size() ? std::to_string(offset + limit) : "";
    std::string kind;
    for (const auto& r : kWatchedResources)
      if (r.resource == resource) kind = std::string(r.kind);
    return {200, R"({"kind":")" + kind + R"(List","apiVersion":"v1","metadata":{"resourceVersion":")" +
                     std::to_string(version_) + R"(","continue":")" + next + R"("},"items":[)" + items +
                     "]}"};
  }

  // GET ...?watch=1&resourceVersion=RV: events after RV, then whatever comes, until a fault or cancel.
  Result<ApiClient::Response> watch(const std::string& resource, long long from,
                                    const std::function<bool(std::string_view)>& onLine,
                                    const std::atomic<bool>& cancelled) {
    std::unique_lock lock(mu_);
    Faults& faults = faults_[resource];
    if (faults.goneStatus || from < compactedAt_)
      return ApiClient::Response{410, R"({"kind":"Status","code":410})"};
    size_t next = 0;
    while (next < log_[resource].size() && log_[resource][next].first <= from)
      ++next;
    for (;;) {
      if (cancelled) return Error{"cancelled"};
      if (faults.hold) {
        cv_.wait_for(lock, 20ms);
        continue;
      }
      if (faults.cut) {
        faults.cut = false;
        return ApiClient::Response{200, ""};
      }
      if (faults.garbage) {
        faults.garbage = false;
        lock.unlock();
        onLine("this is not JSON");
        return ApiClient::Response{200, ""};
      }
      if (faults.goneEvent) {
        faults.goneEvent = false;
        lock.unlock();
        onLine(
            R"({"type":"ERROR","object":{"kind":"Status","code":410,"message":"too old resource version"}})");
        return ApiClient::Response{200, ""};
      }
      if (next < log_[resource].size()) {
        auto line = log_[resource][next++].second;
        lock.unlock();
        bool more = onLine(line);
        lock.lock();
        if (!more) return ApiClient::Response{200, ""};
        continue;
      }
      cv_.wait_for(lock, 20ms);
    }
  }

 private:
  static std::string withVersion(const std::string& json, long long rv) {
    auto at = json.find(R"("metadata":{)");
    return json.substr(0, at + 12) + R"("resourceVersion":")" + std::to_string(rv) + R"(",)" +
           json.substr(at + 12);
  }
  static std::string withoutKind(
      std::string json) {  // list items carry no kind, as the API server sends them
    auto at = json.find(R"("kind":")");
    auto end = json.find('"', at + 8);
    return json.erase(at, end - at + 2);
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  long long version_ = 100;
  long long compactedAt_ = 0;
  int lists_ = 0;
  std::set<std::string> missing_;
  std::map<std::string, Faults> faults_;
  std::map<std::string, std::map<std::string, std::string>> objects_;
  std::map<std::string, std::vector<std::pair<long long, std::string>>> log_;
};

std::string resourceOf(const std::string& target) {
  auto end = target.find('?');
  return target.substr(target.rfind('/', end) + 1, end - target.rfind('/', end) - 1);
}
std::string param(const std::string& target, const std::string& name) {
  auto at = target.find(name + "=");
  if (at == std::string::npos) return "";
  auto end = target.find('&', at);
  return target.substr(at + name.size() + 1,
                       end == std::string::npos ? std::string::npos : end - at - name.size() - 1);
}

class FakeClient : public ApiClient {
 public:
  explicit FakeClient(FakeServer& server) : server_(server) {}
  Result<Response> get(const std::string& target) override {
    if (cancelled_) return Error{"cancelled"};
    auto next = param(target, "continue");
    return server_.list(resourceOf(target), std::stoul(param(target, "limit")),
                        next.empty() ? 0 : std::stoul(next));
  }
  Result<Response> stream(const std::string& target,
                          const std::function<bool(std::string_view)>& onLine) override {
    return server_.watch(resourceOf(target), std::stoll(param(target, "resourceVersion")), onLine,
                         cancelled_);
  }
  void cancel() override { cancelled_ = true; }

 private:
  FakeServer& server_;
  std::atomic<bool> cancelled_ = false;  // read by the watch loop at its 20 ms polls
};

std::string ns(const std::string& name) {
  return R"({"kind":"Namespace","apiVersion":"v1","metadata":{"name":")" + name + R"(","labels":{"ns":")" +
         name + R"("}}})";
}
std::string pod(const std::string& ns, const std::string& name, const std::string& ip,
                const std::string& label) {
  return R"({"kind":"Pod","apiVersion":"v1","metadata":{"name":")" + name + R"(","namespace":")" + ns +
         R"(","labels":{"pod":")" + label +
         R"("}},"spec":{"nodeName":"node-1","containers":[{"name":"c"}]},)" +
         R"("status":{"phase":"Running","podIP":")" + ip + R"("}})";
}
std::string policy(const std::string& ns, const std::string& name) {
  return R"({"kind":"NetworkPolicy","apiVersion":"networking.k8s.io/v1","metadata":{"name":")" + name +
         R"(","namespace":")" + ns + R"("},"spec":{"podSelector":{},"policyTypes":["Ingress"]}})";
}

// The source's objects, as "Kind/key label" lines.
std::set<std::string> summary(const policy::ClusterState& s) {
  std::set<std::string> out;
  for (const auto& n : s.namespaces())
    out.insert("Namespace/" + n.name);
  for (const auto& p : s.pods())
    out.insert("Pod/" + p.key() + " " + (p.labels.find("pod") ? *p.labels.find("pod") : std::string()));
  for (const auto& p : s.policies())
    out.insert("NetworkPolicy/" + p.key());
  for (const auto& p : s.clusterPolicies())
    out.insert("ClusterNetworkPolicy/" + p.key());
  return out;
}

// Takes what arrives until `done` holds (at most 5 s).
bool until(KubeSource& source, const std::function<bool()>& done) {
  auto end = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < end) {
    source.wait(50ms, {});
    source.take();
    if (done()) return true;
  }
  return false;
}

struct Fixture {
  FakeServer server;
  std::unique_ptr<KubeSource> source;
  Fixture() {
    server.put("namespaces", "x", ns("x"));
    server.put("namespaces", "y", ns("y"));
    server.put("pods", "x/a", pod("x", "a", "10.244.1.10", "a"));
    server.put("pods", "x/b", pod("x", "b", "10.244.1.11", "b"));
    server.put("pods", "y/a", pod("y", "a", "10.244.1.12", "a"));
    server.put("networkpolicies", "x/deny", policy("x", "deny"));
    source =
        std::make_unique<KubeSource>([this] { return std::make_unique<FakeClient>(server); },
                                     KubeSourceOptions{.server = "fake", .pageSize = 2, .minBackoff = 10ms});
    REQUIRE_FALSE(source->start());
    REQUIRE(until(*source, [this] { return source->complete(); }));
  }
};

}  // namespace

TEST_CASE("the source lists every kind in pages, then is complete") {
  Fixture f;
  CHECK(summary(f.source->state()) == std::set<std::string>{"Namespace/x", "Namespace/y", "Pod/x/a a",
                                                            "Pod/x/b b", "Pod/y/a a",
                                                            "NetworkPolicy/x/deny"});
  // Three pods in pages of two, and one page for each other kind (the three cluster policy kinds among them).
  CHECK(f.server.lists() == 10);
}

TEST_CASE(
    "cluster policies: each kind under its key prefix, and a kind the server lacks holds none and is "
    "complete") {
  FakeServer server;
  server.put("clusternetworkpolicies", "guard",
             R"({"kind":"ClusterNetworkPolicy","apiVersion":"policy.networking.k8s.io/v1alpha2",)"
             R"("metadata":{"name":"guard"},"spec":{"tier":"Admin","priority":10,)"
             R"("subject":{"namespaces":{}},"ingress":[{"action":"Deny","from":[{"namespaces":{}}]}]}})");
  server.lack("adminnetworkpolicies");
  server.lack("baselineadminnetworkpolicies");
  KubeSource source([&] { return std::make_unique<FakeClient>(server); },
                    KubeSourceOptions{.server = "fake", .minBackoff = 10ms});
  REQUIRE_FALSE(source.start());
  REQUIRE(until(source, [&] { return source.complete(); }));
  CHECK(summary(source.state()) == std::set<std::string>{"ClusterNetworkPolicy/cnp/guard"});
  // Deleted through its watch: the key prefix finds it.
  server.erase("clusternetworkpolicies", "guard");
  CHECK(until(source, [&] { return summary(source.state()).empty(); }));
}

TEST_CASE("a cluster policy kind installed after the start is listed at the next look and then watched") {
  FakeServer server;
  server.lack("adminnetworkpolicies");
  KubeSource source([&] { return std::make_unique<FakeClient>(server); },
                    KubeSourceOptions{.server = "fake", .minBackoff = 10ms, .missingRecheck = 20ms});
  REQUIRE_FALSE(source.start());
  REQUIRE(until(source, [&] { return source.complete(); }));
  CHECK(summary(source.state()).empty());
  // The CRD arrives with an object already written: the next look lists it.
  server.put("adminnetworkpolicies", "late",
             R"({"kind":"AdminNetworkPolicy","apiVersion":"policy.networking.k8s.io/v1alpha1",)"
             R"("metadata":{"name":"late"},"spec":{"priority":5,"subject":{"namespaces":{}},)"
             R"("ingress":[{"action":"Deny","from":[{"namespaces":{}}]}]}})");
  server.install("adminnetworkpolicies");
  REQUIRE(until(source, [&] {
    return summary(source.state()) == std::set<std::string>{"ClusterNetworkPolicy/anp/late"};
  }));
  // And from then on it is watched: its deletion arrives as an event.
  server.erase("adminnetworkpolicies", "late");
  CHECK(until(source, [&] { return summary(source.state()).empty(); }));
}

TEST_CASE("watch events: added, modified, deleted, and bookmarks that move the resourceVersion") {
  Fixture f;
  auto generation = f.source->generation();
  f.server.put("pods", "y/b", pod("y", "b", "10.244.1.13", "b"));
  f.server.put("pods", "x/a", pod("x", "a", "10.244.1.10", "relabelled"));
  f.server.erase("networkpolicies", "x/deny");
  f.server.bookmark("pods");
  auto want = std::set<std::string>{"Namespace/x", "Namespace/y", "Pod/x/a relabelled",
                                    "Pod/x/b b",   "Pod/y/a a",   "Pod/y/b b"};
  REQUIRE(until(*f.source, [&] { return summary(f.source->state()) == want; }));
  CHECK(f.source->generation() > generation);
}

TEST_CASE("a watch the server ends is resumed from the last resourceVersion, without a list") {
  Fixture f;
  int lists = f.server.lists();
  f.server.fault("pods", [](auto& faults) { faults.cut = true; });
  f.server.put("pods", "x/c", pod("x", "c", "10.244.1.14", "c"));
  REQUIRE(until(*f.source, [&] { return summary(f.source->state()).contains("Pod/x/c c"); }));
  CHECK(f.server.lists() == lists);
}

TEST_CASE("410 Gone, as an ERROR event or as a status, lists again and removes what vanished meanwhile") {
  bool asEvent = GENERATE(true, false);
  Fixture f;
  int lists = f.server.lists();
  // x/b goes while the pod watch hears nothing, and the server compacts past it: only a list can tell.
  f.server.fault("pods", [](auto& faults) { faults.hold = true; });
  f.server.erase("pods", "x/b");
  f.server.compact();
  f.server.fault("pods", [&](auto& faults) {
    faults.hold = false;
    if (asEvent) {
      faults.goneEvent = true;
    } else {
      faults.cut = true;  // and the resumed watch is refused with 410: its resourceVersion was compacted
    }
  });
  auto want =
      std::set<std::string>{"Namespace/x", "Namespace/y", "Pod/x/a a", "Pod/y/a a", "NetworkPolicy/x/deny"};
  REQUIRE(until(*f.source, [&] { return summary(f.source->state()) == want; }));
  CHECK(f.server.lists() > lists);
}

TEST_CASE("a line that is not an event lists again") {
  Fixture f;
  int lists = f.server.lists();
  f.server.fault("pods", [](auto& faults) { faults.garbage = true; });
  f.server.put("pods", "x/c", pod("x", "c", "10.244.1.14", "c"));
  REQUIRE(until(*f.source, [&] { return summary(f.source->state()).contains("Pod/x/c c"); }));
  CHECK(f.server.lists() > lists);
}

TEST_CASE("an object our validation refuses keeps its last valid version, through a relist too") {
  Fixture f;
  // The API server took it; nftpol's stricter reading refuses it (not a CIDR). Dropping the policy would
  // lift the isolation of x's pods.
  std::string refused =
      R"({"kind":"NetworkPolicy","apiVersion":"networking.k8s.io/v1","metadata":{"name":"deny",)"
      R"("namespace":"x"},"spec":{"podSelector":{},"ingress":[{"from":[{"ipBlock":)"
      R"({"cidr":"10.0.0.0/99"}}]}]}})";
  f.server.put("networkpolicies", "x/deny", refused);
  f.server.put("pods", "x/c", pod("x", "c", "10.244.1.14", "c"));
  REQUIRE(until(*f.source, [&] { return summary(f.source->state()).contains("Pod/x/c c"); }));
  CHECK(summary(f.source->state()).contains("NetworkPolicy/x/deny"));

  int lists = f.server.lists();
  f.server.fault("networkpolicies", [](auto& faults) { faults.garbage = true; });
  f.server.put("networkpolicies", "x/other",
               R"({"kind":"NetworkPolicy","apiVersion":"networking.k8s.io/v1","metadata":{"name":"other",)"
               R"("namespace":"x"},"spec":{"podSelector":{}}})");
  REQUIRE(until(*f.source, [&] { return summary(f.source->state()).contains("NetworkPolicy/x/other"); }));
  CHECK(f.server.lists() > lists);
  CHECK(summary(f.source->state()).contains("NetworkPolicy/x/deny"));
  // Deleted for real, it goes.
  f.server.erase("networkpolicies", "x/deny");
  REQUIRE(until(*f.source, [&] { return !summary(f.source->state()).contains("NetworkPolicy/x/deny"); }));
}
