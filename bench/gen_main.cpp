// nftpol-gen: writes a synthetic cluster (the benchmark's) as YAML, for trying nftpol at scale and for tests.
#include <charconv>
#include <cstring>
#include <iostream>
#include <string>

#include "generator.h"

int main(int argc, char** argv) {
  nftpol::bench::GeneratorOptions o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto number = [&](auto& out) {
      if (i + 1 >= argc) return false;
      const char* v = argv[++i];
      return std::from_chars(v, v + std::strlen(v), out).ec == std::errc();
    };
    bool ok = true;
    if (arg == "--pods")
      ok = number(o.pods);
    else if (arg == "--namespaces")
      ok = number(o.namespaces);
    else if (arg == "--policies")
      ok = number(o.policies);
    else if (arg == "--seed")
      ok = number(o.seed);
    else if (arg == "--cluster-policies")
      ok = number(o.clusterPolicies);
    else if (arg == "--dual-stack")
      o.dualStack = true;
    else
      ok = false;
    if (!ok) {
      std::cerr
          << "usage: nftpol-gen [--pods N] [--namespaces N] [--policies N] [--cluster-policies N] [--seed N] "
             "[--dual-stack]\n";
      return 2;
    }
  }
  std::cout << nftpol::bench::generateYaml(o);
  return 0;
}
