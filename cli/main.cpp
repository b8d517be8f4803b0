#include <iostream>
#include <string>
#include <vector>

#include "commands.h"

namespace {

constexpr const char* kUsage = R"(usage: nftpol COMMAND [OPTIONS]

Ask questions of Kubernetes NetworkPolicies before they are enforced.

commands:
  can-reach --cluster PATH... FROM TO --port PORT [--protocol TCP|UDP|SCTP] [--output text|json]
      Can FROM open a connection to TO? FROM and TO are namespace/pod or an IP address.
      Exit 0 allowed, 1 denied, 2 bad input.
  matrix --cluster PATH... --port PORT [--protocol P] [--output table|json|dot] [--what-if PATH...]
      Reachability of every pod pair; with --what-if, only the cells that PATH's objects would change.
  explain --cluster PATH... [namespace/policy]
      The pods each policy selects, and each rule's peers and ports resolved.
  lint --cluster PATH...
      Validation errors and suspicious policies. Exit 0 clean, 1 warnings, 2 errors.
  render --cluster PATH... --node NODE [--no-flow-log | --flow-log-allowed ...]
      The nftables table (`nft -f` syntax) that enforces the policies for the pods on NODE.
  controller (--manifests DIR | --kubeconfig PATH [--context NAME] | --in-cluster) [--node NODE] [--once]
             [--listen 127.0.0.1:9402] [--flow-log PATH] [--flow-log-allowed] [--no-flow-log] ...
      Enforce the policies of DIR or of the Kubernetes API for NODE's pods (default: $NODE_NAME) in this
      network namespace, then follow their changes; log what the policies deny (and allow) to PATH and /flows.
  observe [--server 127.0.0.1:9402] [--verdict denied|allowed|would-deny] [--namespace NS] [--pod NS/POD]
          [--follow] [--output text|json]
      The flow log of the node whose controller listens at --server: what was denied or allowed, and why.
  trace --cluster PATH... FROM TO --port PORT [--protocol P] [--seconds S]
      Follow FROM -> TO through this node's table for S seconds (nftables tracing) and compare each
      connection's path with can-reach. Exit 0 agree, 1 disagree or nothing traced, 2 bad input.
  cleanup
      Remove table inet nftpol.
  install-cni --template FILE --cni-conf-dir DIR [--cni-bin-dir DIR] (--pod-cidr CIDR... | --kubeconfig PATH
              | --in-cluster) [--node NODE]
      Install the CNI plugin and the template's network config with NODE's pod subnets (Node spec.podCIDRs).

--cluster takes YAML or JSON files or directories (recursive), e.g. `kubectl get ns,pods,netpol -A -o yaml`.
)";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    (args.empty() ? std::cerr : std::cout) << kUsage;
    return args.empty() ? 2 : 0;
  }
  std::string command = args[0];
  args.erase(args.begin());
  std::ios::sync_with_stdio(false);
  if (command == "can-reach") return nftpol::cli::canReachCommand(args, std::cout, std::cerr);
  if (command == "matrix") return nftpol::cli::matrixCommand(args, std::cout, std::cerr);
  if (command == "explain") return nftpol::cli::explainCommand(args, std::cout, std::cerr);
  if (command == "controller") return nftpol::cli::controllerCommand(args, std::cout, std::cerr);
  if (command == "cleanup") return nftpol::cli::cleanupCommand(args, std::cout, std::cerr);
  if (command == "render") return nftpol::cli::renderCommand(args, std::cout, std::cerr);
  if (command == "install-cni") return nftpol::cli::installCniCommand(args, std::cout, std::cerr);
  if (command == "trace") return nftpol::cli::traceCommand(args, std::cout, std::cerr);
  if (command == "observe") return nftpol::cli::observeCommand(args, std::cout, std::cerr);
  if (command == "lint") return nftpol::cli::lintCommand(args, std::cout, std::cerr);
  std::cerr << "nftpol: unknown command \"" << command << "\"\n" << kUsage;
  return 2;
}
