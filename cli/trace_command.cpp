// nftpol trace: follows one connection through this node's table with nftables' own tracing, prints each hop
// with the policy and rule its comment names, and says whether the kernel did what can-reach says.
#include <poll.h>

#include <chrono>
#include <map>
#include <ostream>

#include "args.h"
#include "cluster_input.h"
#include "commands.h"
#include "nftpol/nft/backend.h"
#include "nftpol/nft/trace.h"
#include "nftpol/policy/reach.h"
#include "nftpol/render/flow_log.h"
#include "reach_text.h"

namespace nftpol::cli {

namespace {

constexpr const char* kUsage =
    "usage: nftpol trace --cluster PATH... FROM TO --port PORT [--protocol TCP|UDP|SCTP] [--seconds S]\n"
    "  FROM and TO are namespace/pod or an IP address, as for can-reach; run it in the node's network "
    "namespace\n"
    "  and send the traffic within S seconds (default 10). Exit 0 when the kernel did what can-reach says, "
    "1\n"
    "  when it did not (or nothing was traced), 2 on bad input.\n";

// What one traced packet met, in order, and what became of it.
struct Path {
  std::vector<nft::TraceEvent> events;
  bool matches = false;  // it is the traced connection's (its headers came with the first event)
};

// "isolated by a/b" -> the side and the policies of a policy chain's decision, from the chain's name (a
// cluster policy's chain and a tier's class chain name their side after the tier's prefix).
std::string sideOf(std::string_view chain) {
  for (std::string_view prefix : {"admin-", "baseline-", "cnp-"})
    if (chain.starts_with(prefix)) chain.remove_prefix(prefix.size());
  if (chain.starts_with("egress-")) return "egress";
  if (chain.starts_with("ingress-")) return "ingress";
  return "";
}

}  // namespace

int traceCommand(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  auto args = Args::parse(argv, {"cluster", "port", "protocol", "seconds"});
  if (!args || args->positionals().size() != 2) {
    if (!args) err << "nftpol trace: " << args.error().message << "\n";
    err << kUsage;
    return kExitBadInput;
  }
  auto portArg = parsePortArg(*args);
  if (!portArg) {
    err << "nftpol trace: " << portArg.error().message << "\n";
    return kExitBadInput;
  }
  long seconds = 10;
  if (auto text = args->last("seconds")) {
    char* end = nullptr;
    seconds = std::strtol(text->c_str(), &end, 10);
    if (*end || seconds < 1 || seconds > 3600) {
      err << "nftpol trace: --seconds: 1 to 3600\n";
      return kExitBadInput;
    }
  }
  auto cluster = loadCluster(args->all("cluster"), {}, err);
  if (!cluster) return kExitBadInput;
  const policy::Compiled& c = *cluster->compiled;
  auto from = policy::resolveEndpoint(c, args->positionals()[0]);
  auto to = policy::resolveEndpoint(c, args->positionals()[1]);
  for (const auto* e : {from ? nullptr : &from.error(), to ? nullptr : &to.error()})
    if (e) {
      err << "nftpol trace: " << e->message << "\n";
      return kExitBadInput;
    }
  policy::ReachQuery q{.from = *from, .to = *to, .protocol = portArg->protocol, .port = portArg->port};
  auto verdicts = policy::canReach(c, q);
  if (verdicts.empty() || !verdicts.front().source || !verdicts.front().destination) {
    err << "nftpol trace: FROM and TO share no address family to trace\n";
    return kExitBadInput;
  }
  const policy::Verdict& expected = verdicts.front();  // the first family's: the one traced
  IpAddress src = *expected.source, dst = *expected.destination;
  bool v4 = src.family() == Family::kV4;
  std::string fromName = endpointName(c, *from), toName = endpointName(c, *to);

  auto backend = nft::NetlinkBackend::open();
  if (!backend) {
    err << "nftpol trace: " << backend.error().message << "\n";
    return 1;
  }
  auto reader = nft::TraceReader::open();  // listening before the trace is armed: no event is missed
  if (!reader) {
    err << "nftpol trace: " << reader.error().message << "\n";
    return 1;
  }
  auto timeout = static_cast<uint64_t>(seconds) * 1000;
  nft::Set sources{.name = render::traceSetName(true, v4), .key = nft::KeyType::address(src.family())};
  sources.elements.emplace_back(src);
  nft::Set destinations{.name = render::traceSetName(false, v4),
                        .key = nft::KeyType::addressProtocolPort(dst.family())};
  destinations.elements.emplace_back(nft::AddressProtocolPort{dst, portArg->protocol, portArg->port});
  for (const auto* set : {&sources, &destinations})
    if (auto failed = (*backend)->addTimedElements("nftpol", *set, timeout)) {
      err << "nftpol trace: cannot arm the trace (is nftpol's controller enforcing in this network "
             "namespace?): "
          << failed->message << "\n";
      return kExitBadInput;
    }
  err << "tracing " << fromName << " (" << src.toString() << ") -> " << toName << " (" << dst.toString()
      << ") on " << portArg->toString() << " for " << seconds << " s: send the traffic now\n";

  std::map<uint32_t, Path> paths;
  std::vector<uint32_t> order;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  for (;;) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{(*reader)->fd(), POLLIN, 0};
    poll(&p, 1, static_cast<int>(left.count()));
    auto read = (*reader)->read("nftpol", [&](const nft::TraceEvent& e) {
      auto [it, fresh] = paths.try_emplace(e.id);
      if (fresh) order.push_back(e.id);
      if (e.hasPacket && e.packet.source == src && e.packet.destination == dst) it->second.matches = true;
      it->second.events.push_back(e);
    });
    if (!read) {
      err << "nftpol trace: " << read.error().message << "\n";
      return 1;
    }
  }
  auto held = (*backend)->heldRules("nftpol");
  std::map<uint64_t, nft::NetlinkBackend::HeldRule> byHandle;
  if (held)
    for (auto& r : *held)
      byHandle.emplace(r.handle, r);

  bool anyTraced = false, agree = true;
  size_t n = 0;
  for (uint32_t id : order) {
    const Path& path = paths[id];
    if (!path.matches) continue;
    anyTraced = true;
    out << "packet " << ++n << " (trace id " << std::hex << id << std::dec << "):\n";
    bool dropped = false;
    std::string decidingChain, decidingComment;
    for (const auto& e : path.events) {
      std::string what;
      if (e.type == nft::TraceEvent::Type::kRule) {
        auto r = byHandle.find(e.ruleHandle);
        what = r == byHandle.end() ? "rule handle " + std::to_string(e.ruleHandle) + " (gone since)"
                                   : "rule " + std::to_string(r->second.index) +
                                         (r->second.comment.empty() ? "" : " \"" + r->second.comment + "\"");
        if (!sideOf(e.chain).empty() &&
            (e.verdict == "drop" || e.verdict == "accept" || e.verdict == "return")) {
          decidingChain = e.chain;
          decidingComment = r == byHandle.end() ? "" : r->second.comment;
        }
      } else if (e.type == nft::TraceEvent::Type::kPolicy) {
        what = "the chain's policy";
      } else if (e.type == nft::TraceEvent::Type::kReturn) {
        what = "the end of the chain";
      } else {
        continue;
      }
      dropped = dropped || e.verdict == "drop";
      out << "  " << e.chain << ": " << what;
      if (!e.verdict.empty()) out << " -> " << e.verdict << (e.target.empty() ? "" : " " + e.target);
      out << "\n";
    }
    bool kernelAllowed = !dropped;
    out << "  kernel: " << (kernelAllowed ? "ALLOWED" : "DENIED");
    if (!decidingChain.empty())
      out << " at the " << sideOf(decidingChain) << " chain"
          << (decidingComment.empty() ? "" : ": " + decidingComment);
    out << "\n";
    // can-reach's deciding side of a deny: the source's egress when it denies, else the destination's
    // ingress.
    std::string expectedSide = !expected.allowed && expected.egress.applies && !expected.egress.allowed
                                   ? "egress"
                               : !expected.allowed ? "ingress"
                                                   : "";
    bool same = kernelAllowed == expected.allowed &&
                (expected.allowed || (!decidingChain.empty() && sideOf(decidingChain) == expectedSide));
    if (!same) {
      agree = false;
      out << "  DISAGREE: the kernel " << (kernelAllowed ? "allowed" : "denied") << " it"
          << (decidingChain.empty() ? " outside any policy chain" : " at the " + sideOf(decidingChain))
          << "; can-reach says " << (expected.allowed ? "allowed" : "denied at the " + expectedSide) << "\n";
    }
  }
  out << "can-reach: " << (expected.allowed ? "ALLOWED" : "DENIED") << ": " << fromName << " -> " << toName
      << " on " << portArg->toString() << "\n";
  printVerdicts(c, {expected}, fromName, toName, "", out);
  if (!anyTraced) {
    out << "nothing to compare: no packet of " << fromName << " -> " << toName << " on "
        << portArg->toString() << " opened a connection through this node in " << seconds << " s\n";
    return 1;
  }
  out << (agree ? "the kernel and can-reach agree\n" : "the kernel and can-reach DISAGREE\n");
  return agree ? 0 : 1;
}

}  // namespace nftpol::cli
