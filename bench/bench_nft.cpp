// Enforcement benchmark (run inside a network namespace of its own: scripts/bench.sh uses `unshare --net`).
//   initial sync: load + compile + render + commit for one node of a 10k-pod, 2k-policy cluster
//   incremental: a pod relabelled or added, a policy added, from the manifest file's write to the commit
//   commit only: the same full table through our netlink batch vs `nft -f` of the rendered text
// Every figure is a median (and p99 where asked) over repeated runs.
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "bench_util.h"
#include "generator.h"
#include "nftpol/controller/manifests.h"
#include "nftpol/controller/reconcile.h"
#include "nftpol/policy/loader.h"
#include "nftpol/render/render.h"

using namespace nftpol;
using bench::Clock;
using bench::ms;
using bench::nextCommit;
using bench::percentile;
using bench::write;

namespace {

// `clusterPolicy`: when set, a cluster policy's YAML at a priority, also added, moved and removed each round.
std::string throughController(const std::filesystem::path& dir, const std::string& node,
                              const std::function<std::string(int)>& clusterPolicy) {
  mnl_socket* monitor = bench::openCommitMonitor();
  if (!monitor) return "cannot open the nftables monitor";
  pid_t pid = bench::startController(dir, node);
  std::string failure;
  std::vector<double> relabel, added, clusterAdded, clusterMoved;
  if (!nextCommit(monitor, 10000)) failure = "no initial sync within 10 s";
  for (int i = 0; failure.empty() && i < 100; ++i) {
    usleep(30000);  // a quiet spell, as between real edits
    auto t0 = Clock::now();
    write((dir / "pod.yaml").string(),
          "apiVersion: v1\nkind: Pod\nmetadata: {name: extra, namespace: ns-7, labels: {app: app-" +
              std::to_string(i % 2) + ", tier: web}}\nspec: {nodeName: " + node +
              "}\nstatus: {phase: Running, podIP: 10.200.0.7}\n");
    if (!nextCommit(monitor, 2000)) failure = "no commit after a relabel";
    relabel.push_back(ms(Clock::now() - t0));
    usleep(30000);
    auto path = dir / ("e2e-policy-" + std::to_string(i) + ".yaml");
    t0 = Clock::now();
    write(path.string(),
          "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: e2e-" + std::to_string(i) +
              ", namespace: ns-7}\nspec:\n  podSelector: {matchLabels: {app: app-1}}\n  ingress:\n  - ports: "
              "[{port: " +
              std::to_string(20000 + i) + "}]\n");
    if (!nextCommit(monitor, 2000)) failure = "no commit after a policy was added";
    added.push_back(ms(Clock::now() - t0));
    std::filesystem::remove(path);
    (void)nextCommit(monitor, 2000);
    if (!clusterPolicy || !failure.empty()) continue;
    usleep(30000);
    t0 = Clock::now();
    write((dir / "e2e-cnp.yaml").string(), clusterPolicy(500));
    if (!nextCommit(monitor, 2000)) failure = "no commit after a cluster policy was added";
    clusterAdded.push_back(ms(Clock::now() - t0));
    // Its priority moved past the others' (from 500 to 1 or 999), which reorders the tier for its subjects.
    usleep(30000);
    t0 = Clock::now();
    write((dir / "e2e-cnp.yaml").string(), clusterPolicy(i % 2 ? 1 : 999));
    if (!nextCommit(monitor, 2000)) failure = "no commit after a cluster policy's priority changed";
    clusterMoved.push_back(ms(Clock::now() - t0));
    std::filesystem::remove(dir / "e2e-cnp.yaml");
    (void)nextCommit(monitor, 2000);
  }
  bench::stopController(pid);
  mnl_socket_close(monitor);
  if (!failure.empty()) return failure;
  std::printf("through the controller process (inotify, reread, render, commit), file write to commit:\n");
  std::printf("  one local pod relabelled: median %.2f ms, p99 %.2f ms [100 runs]\n",
              percentile(relabel, 0.5), percentile(relabel, 0.99));
  std::printf("  one policy added: median %.2f ms, p99 %.2f ms [100 runs]\n", percentile(added, 0.5),
              percentile(added, 0.99));
  if (!clusterAdded.empty()) {
    std::printf(
        "  one cluster policy added (subject: every namespace): median %.2f ms, p99 %.2f ms [100 runs]\n",
        percentile(clusterAdded, 0.5), percentile(clusterAdded, 0.99));
    std::printf("  its priority changed: median %.2f ms, p99 %.2f ms [100 runs]\n",
                percentile(clusterMoved, 0.5), percentile(clusterMoved, 0.99));
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  // --cluster-policies N: the same cluster with N ClusterNetworkPolicies of both tiers (and the Nodes their
  // nodes peers read), and the incremental changes of one of them.
  uint32_t clusterPolicies = 0;
  if (argc == 3 && std::string(argv[1]) == "--cluster-policies") {
    clusterPolicies = static_cast<uint32_t>(std::stoul(argv[2]));
  } else if (argc != 1) {
    std::fprintf(stderr, "usage: nftpol_bench_nft [--cluster-policies N]\n");
    return 2;
  }
  auto backend = nft::NetlinkBackend::open();
  if (!backend) {
    std::fprintf(stderr, "%s\n", backend.error().message.c_str());
    return 1;
  }
  nft::Backend& kernel = **backend;
  const std::string node = "node-7";
  auto dir = std::filesystem::temp_directory_path() / ("nftpol-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  write((dir / "cluster.yaml").string(), bench::generateYaml({.namespaces = 1000,
                                                              .pods = 10000,
                                                              .policies = 2000,
                                                              .seed = 42,
                                                              .clusterPolicies = clusterPolicies}));

  // Initial sync, from nothing in the kernel.
  std::vector<double> initial, load, compileRender, commit;
  size_t localPods = 0, messages = 0;
  for (int r = 0; r < 5; ++r) {
    (void)kernel.remove("nftpol");
    auto t0 = Clock::now();
    controller::ManifestSet manifests(dir.string());
    (void)manifests.refresh();
    auto t1 = Clock::now();
    controller::Reconciler reconciler(node, kernel);
    reconciler.load(manifests.state());
    (void)reconciler.table();
    auto t2 = Clock::now();
    auto applied = reconciler.apply();
    auto t3 = Clock::now();
    if (!applied) {
      std::fprintf(stderr, "%s\n", applied.error().message.c_str());
      return 1;
    }
    messages = applied->messages;
    localPods = applied->pods;
    initial.push_back(ms(t3 - t0));
    load.push_back(ms(t1 - t0));
    compileRender.push_back(ms(t2 - t1));
    commit.push_back(ms(t3 - t2));
  }
  std::printf("initial sync, 10k pods / 2k policies / %u cluster policies, %zu local pods, %zu messages:\n",
              clusterPolicies, localPods, messages);
  std::printf("  total %.1f ms (load %.1f, render %.1f, read+diff+commit %.1f) [medians of 5]\n",
              percentile(initial, 0.5), percentile(load, 0.5), percentile(compileRender, 0.5),
              percentile(commit, 0.5));

  // Incremental: the steady state of the controller: the changed file reread, its objects' changes taken by
  // the reconciler, the delta committed.
  controller::ManifestSet manifests(dir.string());
  (void)manifests.refresh();
  controller::Reconciler reconciler(node, kernel);
  reconciler.load(manifests.state());
  (void)reconciler.apply();
  // `undo`, untimed, puts the cluster back after each sample, so that every sample is the same change.
  auto incremental = [&](const char* what, auto&& change, auto&& undo) {
    std::vector<double> samples, read, render, commit;
    size_t lastMessages = 0;
    for (int i = 0; i < 200; ++i) {
      auto t0 = Clock::now();
      change(i);
      auto changed = manifests.refresh();
      auto t1 = Clock::now();
      reconciler.update(manifests.state(), changed.objects);
      (void)reconciler.table();
      auto t2 = Clock::now();
      auto result = reconciler.apply();
      auto t3 = Clock::now();
      samples.push_back(ms(t3 - t0));
      read.push_back(ms(t1 - t0));
      render.push_back(ms(t2 - t1));
      commit.push_back(ms(t3 - t2));
      if (result) lastMessages = result->messages;
      if (undo(i)) {
        auto undone = manifests.refresh();
        reconciler.update(manifests.state(), undone.objects);
        (void)reconciler.apply();
      }
    }
    std::printf(
        "%s: median %.2f ms, p99 %.2f ms, %zu messages [200 runs]\n"
        "  (medians: write+reread %.2f ms, render %.2f ms, diff+commit %.2f ms)\n",
        what, percentile(samples, 0.5), percentile(samples, 0.99), lastMessages, percentile(read, 0.5),
        percentile(render, 0.5), percentile(commit, 0.5));
  };
  // A local pod's labels flip between two apps, so its chains and peer-set memberships change every time.
  incremental(
      "incremental: one local pod relabelled",
      [&](int i) {
        write((dir / "pod.yaml").string(),
              "apiVersion: v1\nkind: Pod\nmetadata: {name: extra, namespace: ns-7, labels: {app: app-" +
                  std::to_string(i % 2) + ", tier: web}}\nspec: {nodeName: " + node +
                  "}\nstatus: {phase: Running, podIP: 10.200.0.7}\n");
      },
      [](int) { return false; });
  // A new local pod, as the CNI handoff brings one: its address into the verdict maps and the peer sets.
  incremental(
      "incremental: one local pod added",
      [&](int) {
        write(
            (dir / "new-pod.yaml").string(),
            "apiVersion: v1\nkind: Pod\nmetadata: {name: added, namespace: ns-7, labels: {app: app-1, tier: "
            "web}}\nspec: {nodeName: " +
                node + "}\nstatus: {phase: Running, podIP: 10.200.0.8}\n");
      },
      [&](int) { return std::filesystem::remove(dir / "new-pod.yaml"); });
  incremental(
      "incremental: one policy added",
      [&](int i) {
        write((dir / ("policy-" + std::to_string(i) + ".yaml")).string(),
              "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: added-" +
                  std::to_string(i) +
                  ", namespace: ns-7}\nspec:\n  podSelector: {matchLabels: {app: app-1}}\n  ingress:\n  - "
                  "ports: "
                  "[{port: " +
                  std::to_string(10000 + i) + "}]\n");
      },
      [&](int i) { return std::filesystem::remove(dir / ("policy-" + std::to_string(i) + ".yaml")); });

  // An Admin tier policy over every namespace whose subject holds this node's pods.
  auto cnp = [&](int priority) {
    return "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: "
           "bench-guard}\nspec:\n  tier: Admin\n  priority: " +
           std::to_string(priority) +
           "\n  subject: {namespaces: {}}\n  ingress:\n  - {action: Deny, from: [{namespaces: "
           "{matchLabels: "
           "{team: team-3}}}], protocols: [{tcp: {destinationPort: {number: 5432}}}]}\n";
  };
  if (clusterPolicies > 0) {
    // Added and removed; then its priority moved back and forth past the others', which reorders the tier for
    // all its subjects.
    incremental(
        "incremental: one cluster policy added", [&](int) { write((dir / "cnp.yaml").string(), cnp(500)); },
        [&](int) { return std::filesystem::remove(dir / "cnp.yaml"); });
    write((dir / "cnp.yaml").string(), cnp(500));
    reconciler.update(manifests.state(), manifests.refresh().objects);
    (void)reconciler.apply();
    incremental(
        "incremental: one cluster policy's priority changed",
        [&](int i) { write((dir / "cnp.yaml").string(), cnp(i % 2 ? 1 : 999)); }, [](int) { return false; });
    std::filesystem::remove(dir / "cnp.yaml");
    reconciler.update(manifests.state(), manifests.refresh().objects);
    (void)reconciler.apply();
  }

  // The same full table: our batch against `nft -f` of its text, both from an empty namespace.
  nft::Table table = reconciler.table();
  write((dir / "table.nft").string(), nft::toText(table));
  std::vector<double> ours, nftFile;
  for (int r = 0; r < 7; ++r) {
    (void)kernel.remove("nftpol");
    auto t0 = Clock::now();
    auto sent = kernel.apply(table);
    if (!sent) std::fprintf(stderr, "full commit: %s\n", sent.error().message.c_str());
    if (sent && r == 0)
      std::fprintf(stderr, "full commit: %zu messages, %zu sets\n", sent->messages, table.sets.size());
    ours.push_back(ms(Clock::now() - t0));
    (void)kernel.remove("nftpol");
    t0 = Clock::now();
    if (std::system(("nft -f " + (dir / "table.nft").string()).c_str()) != 0) return 1;
    nftFile.push_back(ms(Clock::now() - t0));
  }
  double a = percentile(ours, 0.5), b = percentile(nftFile, 0.5);
  std::printf("full commit: netlink batch %.1f ms, nft -f %.1f ms, ratio %.2f [medians of 7]\n", a, b, a / b);
  (void)kernel.remove("nftpol");

  // End to end through the controller process: from the file's write to the commit, as the kernel announces
  // it to a netlink monitor (a NEWGEN message per transaction).
  std::function<std::string(int)> clusterPolicy;
  if (clusterPolicies > 0) clusterPolicy = cnp;
  if (auto e2e = throughController(dir, node, clusterPolicy); !e2e.empty()) {
    std::fprintf(stderr, "controller: %s\n", e2e.c_str());
    return 1;
  }
  (void)kernel.remove("nftpol");
  std::filesystem::remove_all(dir);
  return 0;
}
