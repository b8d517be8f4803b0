// Service sync benchmark (run inside a network namespace of its own: scripts/bench.sh uses `unshare --net`).
//   full sync: 1k Services with 10k endpoints (10 each; every 10th a NodePort, every 20th with ClientIP
//              affinity), from no table to committed: load + render + commit
//   one endpoint change: an endpoint of one service turns unready and back, from the manifest file's write to
//              the commit, in process and through the controller process
// Every figure is a median (and p99) over repeated runs.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "bench_util.h"
#include "nftpol/controller/manifests.h"
#include "nftpol/controller/reconcile.h"
#include "nftpol/nft/backend.h"

using namespace nftpol;
using bench::Clock;
using bench::ms;
using bench::percentile;

namespace {

constexpr int kServices = 1000, kEndpointsEach = 10;
const std::string kNode = "node-3";

std::string address(int k) {  // endpoint k's address, in 10.240.0.0/14
  return "10.24" + std::to_string(k >> 16) + "." + std::to_string((k >> 8) & 255) + "." +
         std::to_string(k & 255);
}

// Service i and its EndpointSlice, one file each service, as a watch source would keep them; `unready` is the
// index of an endpoint to mark not ready (-1: none).
std::string serviceFile(int i, int unready) {
  std::string out = "apiVersion: v1\nkind: Service\nmetadata: {name: svc-" + std::to_string(i) +
                    ", namespace: bench}\nspec:\n  type: " + (i % 10 == 0 ? "NodePort" : "ClusterIP") +
                    "\n  clusterIP: 10.96." + std::to_string(i / 256) + "." + std::to_string(i % 256) +
                    "\n  ports: [{name: http, port: 80, targetPort: http" +
                    (i % 10 == 0 ? ", nodePort: " + std::to_string(30000 + i) : std::string()) + "}]\n" +
                    (i % 20 == 0 ? "  sessionAffinity: ClientIP\n" : "") +
                    "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: svc-" +
                    std::to_string(i) + "-a, namespace: bench, labels: {kubernetes.io/service-name: svc-" +
                    std::to_string(i) +
                    "}}\naddressType: IPv4\nports: [{name: http, port: 8080}]\nendpoints:\n";
  for (int e = 0; e < kEndpointsEach; ++e) {
    int k = i * kEndpointsEach + e;
    out += "- {addresses: [" + address(k) + "], nodeName: node-" + std::to_string(k % 7) +
           (e == unready ? ", conditions: {ready: false}" : "") + "}\n";
  }
  return out;
}

std::string throughController(const std::filesystem::path& dir) {
  mnl_socket* monitor = bench::openCommitMonitor();
  if (!monitor) return "cannot open the nftables monitor";
  pid_t pid = bench::startController(dir, kNode);
  std::string failure;
  std::vector<double> samples;
  if (!bench::nextCommit(monitor, 20000)) failure = "no initial sync within 20 s";
  for (int i = 0; failure.empty() && i < 100; ++i) {
    usleep(30000);  // a quiet spell, as between real changes
    auto t0 = Clock::now();
    bench::write((dir / "svc-7.yaml").string(), serviceFile(7, i % 2 == 0 ? 3 : -1));
    if (!bench::nextCommit(monitor, 2000)) failure = "no commit after an endpoint change";
    samples.push_back(ms(Clock::now() - t0));
  }
  bench::stopController(pid);
  mnl_socket_close(monitor);
  if (!failure.empty()) return failure;
  std::printf(
      "one endpoint change through the controller process (inotify, reread, render, commit), file write "
      "to commit: median %.2f ms, p99 %.2f ms [100 runs]\n",
      percentile(samples, 0.5), percentile(samples, 0.99));
  return "";
}

}  // namespace

int main() {
  auto backend = nft::NetlinkBackend::open();
  if (!backend) {
    std::fprintf(stderr, "%s\n", backend.error().message.c_str());
    return 1;
  }
  nft::Backend& kernel = **backend;
  auto dir = std::filesystem::temp_directory_path() / ("nftpol-bench-svc-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  bench::write((dir / "namespace.yaml").string(),
               "apiVersion: v1\nkind: Namespace\nmetadata: {name: bench}\n");
  for (int i = 0; i < kServices; ++i)
    bench::write((dir / ("svc-" + std::to_string(i) + ".yaml")).string(), serviceFile(i, -1));

  std::vector<double> total, load, render, commit;
  size_t messages = 0, sets = 0, chains = 0;
  for (int r = 0; r < 5; ++r) {
    (void)kernel.remove("nftpol");
    auto t0 = Clock::now();
    controller::ManifestSet manifests(dir.string());
    (void)manifests.refresh();
    auto t1 = Clock::now();
    controller::Reconciler reconciler(kNode, kernel);
    reconciler.load(manifests.state());
    const nft::Table& table = reconciler.table();
    auto t2 = Clock::now();
    auto applied = reconciler.apply();
    auto t3 = Clock::now();
    if (!applied) {
      std::fprintf(stderr, "%s\n", applied.error().message.c_str());
      return 1;
    }
    messages = applied->messages;
    sets = table.sets.size();
    chains = table.chains.size();
    total.push_back(ms(t3 - t0));
    load.push_back(ms(t1 - t0));
    render.push_back(ms(t2 - t1));
    commit.push_back(ms(t3 - t2));
  }
  std::printf("full sync, %d services / %d endpoints: %zu sets and maps, %zu chains, %zu messages:\n",
              kServices, kServices * kEndpointsEach, sets, chains, messages);
  std::printf("  total %.1f ms (load %.1f, render %.1f, read+diff+commit %.1f) [medians of 5]\n",
              percentile(total, 0.5), percentile(load, 0.5), percentile(render, 0.5),
              percentile(commit, 0.5));

  // One endpoint of one service turns unready, then ready again: each change alone, file write to commit.
  controller::ManifestSet manifests(dir.string());
  (void)manifests.refresh();
  controller::Reconciler reconciler(kNode, kernel);
  reconciler.load(manifests.state());
  (void)reconciler.apply();
  std::vector<double> samples, reread, rendered, committed;
  size_t lastMessages = 0;
  for (int i = 0; i < 200; ++i) {
    auto t0 = Clock::now();
    bench::write((dir / "svc-7.yaml").string(), serviceFile(7, i % 2 == 0 ? 3 : -1));
    auto changed = manifests.refresh();
    auto t1 = Clock::now();
    reconciler.update(manifests.state(), changed.objects);
    (void)reconciler.table();
    auto t2 = Clock::now();
    auto result = reconciler.apply();
    auto t3 = Clock::now();
    if (!result) {
      std::fprintf(stderr, "%s\n", result.error().message.c_str());
      return 1;
    }
    lastMessages = std::max(lastMessages, result->messages);
    samples.push_back(ms(t3 - t0));
    reread.push_back(ms(t1 - t0));
    rendered.push_back(ms(t2 - t1));
    committed.push_back(ms(t3 - t2));
  }
  std::printf(
      "one endpoint change in process: median %.2f ms, p99 %.2f ms, at most %zu messages [200 runs]\n"
      "  (medians: write+reread %.2f ms, render %.2f ms, diff+commit %.2f ms)\n",
      percentile(samples, 0.5), percentile(samples, 0.99), lastMessages, percentile(reread, 0.5),
      percentile(rendered, 0.5), percentile(committed, 0.5));
  (void)kernel.remove("nftpol");

  if (auto e2e = throughController(dir); !e2e.empty()) {
    std::fprintf(stderr, "controller: %s\n", e2e.c_str());
    return 1;
  }
  (void)kernel.remove("nftpol");
  if (!getenv("NFTPOL_BENCH_KEEP")) std::filesystem::remove_all(dir);
  return 0;
}
