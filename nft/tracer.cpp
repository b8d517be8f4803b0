#include "nftpol/nft/tracer.h"

#include <algorithm>
#include <optional>

#include "nftpol/overloaded.h"

namespace nftpol::nft {
namespace {

// Does one element of an address set (an address, or a range of an interval set) contain the address?
bool elementContains(const Key& element, const IpAddress& ip) {
  if (const auto* a = std::get_if<IpAddress>(&element)) return *a == ip;
  if (const auto* r = std::get_if<AddressRange>(&element))
    return r->first.family() == ip.family() && !(ip < r->first) && !(r->last < ip);
  return false;
}

class Tracer {
 public:
  Tracer(const Table& t, const Packet& p) : t_(t), p_(p) {}

  Trace run() {
    Trace trace;
    const Chain* base = nullptr;
    for (const auto& c : t_.chains)
      if (c.base && c.base->hook == Hook::kForward) base = &c;
    if (!base) {
      trace.accepted = true;
      return trace;
    }
    auto outcome = evaluate(*base, trace, 0);
    trace.accepted = outcome != Outcome::kDrop;  // accept, or the base chain's policy accept
    return trace;
  }

 private:
  enum class Outcome { kAccept, kDrop, kReturn };

  const IpAddress& address(Field f) const { return f == Field::kSource ? p_.source : p_.destination; }

  bool matches(const Match& m) const {
    return std::visit(
        Overloaded{
            [](const CtState& ct) {  // the traced packet opens a new connection
              return std::find(ct.states.begin(), ct.states.end(), ConnState::kNew) != ct.states.end();
            },
            [&](const AddressInSet& a) {
              const IpAddress& ip = address(a.field);
              if (ip.family() != a.family) return false;
              const Set* s = t_.findSet(a.set);
              return s && std::any_of(s->elements.begin(), s->elements.end(),
                                      [&](const Key& e) { return elementContains(e, ip); }) != a.negated;
            },
            [&](const PortIs& p) {
              const PortRange& pm = p.port;
              return pm.protocol == p_.protocol && pm.first <= p_.port && p_.port <= pm.last;
            },
            [&](const DestinationPortInSet& d) {
              if (p_.destination.family() != d.family) return false;
              const Set* s = t_.findSet(d.set);
              Key key = AddressProtocolPort{p_.destination, p_.protocol, p_.port};
              return s && std::find(s->elements.begin(), s->elements.end(), key) != s->elements.end();
            },
            [&](const AddressIs& a) { return address(a.field) == a.address; },
            [&](const FamilyIs& f) { return p_.destination.family() == f.family; },
            [&](const AddressInPrefix& a) {
              return address(a.field).family() == a.prefix.family() &&
                     a.prefix.contains(address(a.field)) != a.negated;
            },
            // Marks, and addresses of the node itself: the traced packet is pod to pod, after any
            // translation.
            [](const MarkHas&) { return false; },
            [](const ToLocalAddress&) { return false; },
            [](const LocalProtocolPortInSet&) { return false; },
            [](const Translated&) { return false; },
        },
        m);
  }

  Outcome evaluate(const Chain& chain, Trace& trace, int depth) {
    if (depth > 16) return Outcome::kDrop;  // the kernel refuses loops; a runaway here is a rendering bug
    for (const Rule& rule : chain.rules) {
      if (!std::all_of(rule.matches.begin(), rule.matches.end(), [&](const Match& m) { return matches(m); }))
        continue;
      // What the rule's action does to the traced packet: nothing (go on), an outcome, or a jump.
      struct Step {
        std::optional<Outcome> outcome;
        std::string jumpTo;
        bool isGoto = false;  // a return from the target returns from this chain too
      };
      auto done = [&](Outcome o) {
        trace.path.push_back(chain.name + ": " + toText(rule));
        return Step{o, ""};
      };
      Step step = std::visit(Overloaded{
                                 [&](const Reject&) { return done(Outcome::kDrop); },
                                 [&](const Verdict& v) {
                                   switch (v.kind) {
                                     case Verdict::Kind::kAccept:
                                       return done(Outcome::kAccept);
                                     case Verdict::Kind::kDrop:
                                       return done(Outcome::kDrop);
                                     case Verdict::Kind::kReturn:
                                       return done(Outcome::kReturn);
                                     case Verdict::Kind::kJump:
                                     case Verdict::Kind::kGoto:
                                       break;
                                   }
                                   trace.path.push_back(chain.name + ": " + toText(rule));
                                   return Step{std::nullopt, v.chain, v.kind == Verdict::Kind::kGoto};
                                 },
                                 [&](const VerdictMapLookup& vm) {
                                   // Service dispatch lives in the NAT chains, which the traced packet is
                                   // already past.
                                   if (vm.key != VerdictMapLookup::Key::kAddress) return Step{};
                                   const IpAddress& ip = address(vm.field);
                                   const Map* map = ip.family() == vm.family ? t_.findMap(vm.map) : nullptr;
                                   if (!map) return Step{};
                                   auto it = std::find_if(
                                       map->verdicts.begin(), map->verdicts.end(),
                                       [key = Key{ip}](const auto& kv) { return kv.first == key; });
                                   return it == map->verdicts.end() ? Step{} : Step{std::nullopt, it->second};
                                 },
                                 // Translation statements: the traced packet is already past them.
                                 [](const Dnat&) { return Step{}; },
                                 [](const Masquerade&) { return Step{}; },
                                 [](const Continue&) { return Step{}; },
                             },
                             rule.action);
      if (step.outcome) return *step.outcome;
      if (step.jumpTo.empty()) continue;
      const std::string& jumpTo = step.jumpTo;
      const Chain* target = t_.findChain(jumpTo);
      if (!target) return Outcome::kDrop;
      trace.path.push_back(chain.name + ": jump " + jumpTo);
      Outcome o = evaluate(*target, trace, depth + 1);
      if (o != Outcome::kReturn || step.isGoto) return o;
    }
    return Outcome::kReturn;
  }

  const Table& t_;
  const Packet& p_;
};

}  // namespace

Trace trace(const Table& table, const Packet& packet) {
  return Tracer(table, packet).run();
}

}  // namespace nftpol::nft
