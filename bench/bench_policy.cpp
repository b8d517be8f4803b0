// Policy engine benchmark: load+validate, compile, one can-reach query and the full matrix for one port, at
// cluster sizes from 1k to 100k pods. Every figure is a median; each size runs in its own process so that its
// peak memory (max RSS) is its own. Reproduce with scripts/bench.sh.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "generator.h"
#include "nftpol/policy/loader.h"
#include "nftpol/policy/matrix.h"
#include "nftpol/policy/reach.h"

using namespace nftpol;
using namespace nftpol::policy;
using Clock = std::chrono::steady_clock;

namespace {

struct Size {
  uint32_t pods, namespaces, policies, clusterPolicies;
  bool matrix;  // the full matrix is quadratic in memory: 100k pods would need 1.25 GB per bit matrix
};

double ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

template <typename F>
double timeMs(F&& f) {
  auto start = Clock::now();
  f();
  return ms(Clock::now() - start);
}

void runSize(const Size& s, int repetitions) {
  std::string yaml = bench::generateYaml({.namespaces = s.namespaces,
                                          .pods = s.pods,
                                          .policies = s.policies,
                                          .seed = 42,
                                          .clusterPolicies = s.clusterPolicies});
  std::vector<double> load, compile, matrix;
  std::unique_ptr<ClusterState> state;
  for (int r = 0; r < repetitions; ++r) {
    auto fresh = std::make_unique<ClusterState>();
    std::vector<Diagnostic> diagnostics;
    load.push_back(timeMs([&] {
      loadText(yaml, "generated", *fresh, diagnostics);
      (void)fresh->implyMissingNamespaces();
    }));
    if (hasErrors(diagnostics)) {
      std::fprintf(stderr, "generated cluster has errors: %s\n", diagnostics[0].toString().c_str());
      std::exit(1);
    }
    state = std::move(fresh);
  }
  std::optional<Compiled> compiled;
  for (int r = 0; r < repetitions; ++r) {
    compiled.reset();  // what compiling takes, not also freeing the previous one
    compile.push_back(timeMs([&] { compiled.emplace(Compiled::build(*state)); }));
  }

  // can-reach: many random pairs, each timed; the median of single queries.
  std::vector<double> query;
  uint64_t x = 12345, allowedCount = 0;
  size_t n = compiled->pods().size();
  for (int q = 0; q < 2000; ++q) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    PodId a = static_cast<PodId>((x >> 33) % n), b = static_cast<PodId>((x >> 13) % n);
    auto start = Clock::now();
    auto v = canReach(*compiled, {Endpoint::ofPod(a), Endpoint::ofPod(b), Protocol::kTCP, 8080});
    query.push_back(ms(Clock::now() - start));
    allowedCount += anyAllowed(v);
  }
  double allowedShare = 0;
  if (s.matrix) {
    for (int r = 0; r < repetitions; ++r) {
      size_t cells = 0;
      matrix.push_back(timeMs([&] {
        BitMatrix m = reachability(*compiled, Protocol::kTCP, 8080);
        for (size_t i = 0; i < m.size(); ++i)  // touch the result so nothing is optimised away
          for (size_t w = 0; w < m.wordsPerRow(); ++w)
            cells += __builtin_popcountll(m.row(i)[w]);
      }));
      allowedShare = double(cells) / (double(n) * double(n));
    }
  }
  char matrixText[32] = "-";
  if (s.matrix) std::snprintf(matrixText, sizeof matrixText, "%.1f", median(matrix));
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("| %6u | %5u | %5u | %4u | %6zu | %9.1f | %9.1f | %9.4f | %10s | %6.1f%% | %7.0f |\n", s.pods,
              s.namespaces, s.policies, s.clusterPolicies, n, median(load), median(compile), median(query),
              matrixText, s.matrix ? 100 * allowedShare : 100.0 * double(allowedCount) / 2000,
              usage.ru_maxrss / 1024.0);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  bool large = argc > 1 && std::strcmp(argv[1], "--large") == 0;
  // The last of the default sizes adds 500 ClusterNetworkPolicies of both tiers (issue 17's figure).
  std::vector<Size> sizes = {{1000, 100, 200, 0, true},
                             {5000, 500, 1000, 0, true},
                             {10000, 1000, 2000, 0, true},
                             {10000, 1000, 2000, 500, true}};
  if (large) sizes.push_back({100000, 10000, 20000, 0, false});
  std::printf(
      "medians; matrix = all pod pairs on TCP/8080, computed not printed; allowed = share of allowed "
      "pairs\n");
  std::printf(
      "|   pods |   ns  | pols  | cnps | active | load ms   | compile ms | query ms | matrix ms  | allowed | "
      "peak MB |\n");
  std::printf(
      "|--------|-------|-------|------|--------|-----------|-----------|-----------|------------|---------|-"
      "----"
      "----|\n");
  std::fflush(stdout);
  for (const Size& s : sizes) {
    pid_t child = fork();
    if (child == 0) {
      runSize(s, s.pods >= 100000 ? 3 : 15);
      _exit(0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
  }
  return 0;
}
