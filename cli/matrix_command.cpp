// nftpol matrix: the reachability of every pod pair, and with --what-if the cells a change would flip.
#include <algorithm>
#include <map>
#include <ostream>

#include "args.h"
#include "cluster_input.h"
#include "commands.h"
#include "nftpol/policy/matrix.h"

namespace nftpol::cli {
namespace {

using namespace nftpol::policy;

void printTable(const Compiled& c, const BitMatrix& m, const std::string& service, std::ostream& out) {
  size_t width = 4;
  for (const Pod* p : c.pods())
    width = std::max(width, p->key().size());
  out << "reachability on " << service << " (rows: from, columns: to; . allowed, X denied)\n";
  out << std::string(width, ' ');
  for (const Pod* p : c.pods())
    out << ' ' << p->key();
  out << '\n';
  for (size_t i = 0; i < c.pods().size(); ++i) {
    std::string name = c.pod(i).key();
    out << name << std::string(width - name.size(), ' ');
    for (size_t j = 0; j < c.pods().size(); ++j) {
      size_t w = c.pod(j).key().size();
      out << ' ' << std::string((w - 1) / 2, ' ') << (m.get(i, j) ? '.' : 'X')
          << std::string(w - 1 - (w - 1) / 2, ' ');
    }
    out << '\n';
  }
}

void printJson(const Compiled& c, const BitMatrix& m, std::ostream& out) {
  out << "{\"pods\":[";
  for (size_t i = 0; i < c.pods().size(); ++i)
    out << (i ? "," : "") << jsonString(c.pod(i).key());
  out << "],\"matrix\":[";
  for (size_t i = 0; i < c.pods().size(); ++i) {
    out << (i ? ",[" : "[");
    for (size_t j = 0; j < c.pods().size(); ++j)
      out << (j ? "," : "") << (m.get(i, j) ? "true" : "false");
    out << "]";
  }
  out << "]}\n";
}

void printDot(const Compiled& c, const BitMatrix& m, const std::string& service, std::ostream& out) {
  out << "digraph reachability {\n  label=" << jsonString("reachability on " + service)
      << ";\n  node [shape=box];\n";
  std::map<std::string, std::vector<size_t>> byNamespace;
  for (size_t i = 0; i < c.pods().size(); ++i)
    byNamespace[c.pod(i).ns].push_back(i);
  for (const auto& [ns, pods] : byNamespace) {
    out << "  subgraph " << jsonString("cluster_" + ns) << " {\n    label=" << jsonString(ns) << ";\n";
    for (size_t i : pods)
      out << "    " << jsonString(c.pod(i).key()) << " [label=" << jsonString(c.pod(i).name) << "];\n";
    out << "  }\n";
  }
  for (size_t i = 0; i < c.pods().size(); ++i)
    for (size_t j = 0; j < c.pods().size(); ++j)
      if (i != j && m.get(i, j))
        out << "  " << jsonString(c.pod(i).key()) << " -> " << jsonString(c.pod(j).key()) << ";\n";
  out << "}\n";
}

int whatIf(const LoadedCluster& before, const LoadedCluster& after, const PortArg& service,
           const std::string& output, std::ostream& out) {
  auto [protocol, port] = service;
  ReachabilityDiff diff = reachabilityDiff(*before.compiled, *after.compiled, protocol, port);
  const auto& changes = diff.flips;
  if (output == "json") {
    out << "{\"protocol\":" << jsonString(std::string(toString(protocol))) << ",\"port\":" << port
        << ",\"changes\":[";
    for (size_t i = 0; i < changes.size(); ++i)
      out << (i ? "," : "") << "{\"from\":" << jsonString(changes[i].from)
          << ",\"to\":" << jsonString(changes[i].to)
          << ",\"before\":" << (changes[i].allowedAfter ? "false" : "true")
          << ",\"after\":" << (changes[i].allowedAfter ? "true" : "false") << "}";
    auto list = [&](const std::vector<std::string>& v) {
      out << "[";
      for (size_t i = 0; i < v.size(); ++i)
        out << (i ? "," : "") << jsonString(v[i]);
      out << "]";
    };
    out << "],\"addedPods\":";
    list(diff.addedPods);
    out << ",\"removedPods\":";
    list(diff.removedPods);
    out << "}\n";
    return 0;
  }
  out << "what-if on " << service.toString() << ": " << changes.size() << " cell(s) change\n";
  for (const auto& ch : changes)
    out << (ch.allowedAfter ? "  + " : "  - ") << ch.from << " -> " << ch.to
        << (ch.allowedAfter ? "  newly allowed" : "  newly denied") << "\n";
  for (const auto& p : diff.addedPods)
    out << "  pod added: " << p << "\n";
  for (const auto& p : diff.removedPods)
    out << "  pod removed: " << p << "\n";
  return 0;
}

}  // namespace

int matrixCommand(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  auto args = Args::parse(argv, {"cluster", "port", "protocol", "output", "what-if"}, {"audit-as-enforced"});
  if (!args) {
    err << "nftpol matrix: " << args.error().message << "\n";
    return kExitBadInput;
  }
  if (!args->positionals().empty()) {
    err << "usage: nftpol matrix --cluster PATH... --port PORT [--protocol TCP|UDP|SCTP] "
           "[--output table|json|dot] [--what-if PATH...] [--audit-as-enforced]\n";
    return kExitBadInput;
  }
  auto service = parsePortArg(*args);
  if (!service) {
    err << "nftpol matrix: " << service.error().message << "\n";
    return kExitBadInput;
  }
  std::string output = args->last("output").value_or("table");
  bool whatIfMode = !args->all("what-if").empty();
  if (output != "table" && output != "json" && (output != "dot" || whatIfMode)) {
    err << "nftpol matrix: invalid --output \"" << output << "\" (must be table, json"
        << (whatIfMode ? " with --what-if" : " or dot") << ")\n";
    return kExitBadInput;
  }
  auto cluster = loadCluster(args->all("cluster"), {}, err, args->flag("audit-as-enforced"));
  if (!cluster) return kExitBadInput;
  if (whatIfMode) {
    auto changed =
        loadCluster(args->all("cluster"), args->all("what-if"), err, args->flag("audit-as-enforced"));
    if (!changed) return kExitBadInput;
    return whatIf(*cluster, *changed, *service, output, out);
  }
  const Compiled& c = *cluster->compiled;
  BitMatrix m = reachability(c, service->protocol, service->port);
  if (output == "json") {
    printJson(c, m, out);
  } else if (output == "dot") {
    printDot(c, m, service->toString(), out);
  } else {
    printTable(c, m, service->toString(), out);
  }
  return 0;
}

}  // namespace nftpol::cli
