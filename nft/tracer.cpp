#include "nftpol/nft/tracer.h"

#include <algorithm>

namespace nftpol::nft {
namespace {

// Does one set element (address, prefix or "first-last" range) contain the address?
bool elementContains(const std::string& element, const IpAddress& ip) {
  if (element.find('/') != std::string::npos) {
    auto c = Cidr::parse(element);
    return c && c->contains(ip);
  }
  auto dash = element.find('-');
  if (dash != std::string::npos) {
    auto first = IpAddress::parse(element.substr(0, dash));
    auto last = IpAddress::parse(element.substr(dash + 1));
    return first && last && first->family() == ip.family() && *first <= ip && ip <= *last;
  }
  auto a = IpAddress::parse(element);
  return a && *a == ip;
}

class Tracer {
 public:
  Tracer(const Table& t, const Packet& p) : t_(t), p_(p) {}

  Trace run() {
    Trace trace;
    const Chain* base = nullptr;
    for (const auto& c : t_.chains)
      if (c.base && c.base->hook == "forward") base = &c;
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
    if (std::holds_alternative<CtState>(m))
      return false;  // a new connection: not established, related or invalid
    if (const auto* a = std::get_if<AddressInSet>(&m)) {
      const IpAddress& ip = address(a->field);
      if (ip.family() != a->family) return false;
      const Set* s = t_.findSet(a->set);
      return s && std::any_of(s->elements.begin(), s->elements.end(),
                              [&](const std::string& e) { return elementContains(e, ip); });
    }
    if (const auto* p = std::get_if<PortIs>(&m)) {
      const PortRange& pm = p->port;
      return pm.protocol == p_.protocol && pm.first <= p_.port && p_.port <= pm.last;
    }
    if (const auto* d = std::get_if<DestinationPortInSet>(&m)) {
      if (p_.destination.family() != d->family) return false;
      const Set* s = t_.findSet(d->set);
      std::string key =
          p_.destination.toString() + " . " + nftKeyword(p_.protocol) + " . " + std::to_string(p_.port);
      return s && std::find(s->elements.begin(), s->elements.end(), key) != s->elements.end();
    }
    if (const auto* a = std::get_if<AddressIs>(&m)) return address(a->field) == a->address;
    if (const auto* f = std::get_if<FamilyIs>(&m)) return p_.destination.family() == f->family;
    if (const auto* a = std::get_if<AddressInPrefix>(&m))
      return address(a->field).family() == a->prefix.family() &&
             a->prefix.contains(address(a->field)) != a->negated;
    // Marks, and addresses of the node itself: the traced packet is pod to pod, after any translation.
    return false;
  }

  Outcome evaluate(const Chain& chain, Trace& trace, int depth) {
    if (depth > 16) return Outcome::kDrop;  // the kernel refuses loops; a runaway here is a rendering bug
    for (const Rule& rule : chain.rules) {
      if (!std::all_of(rule.matches.begin(), rule.matches.end(), [&](const Match& m) { return matches(m); }))
        continue;
      std::string jumpTo;
      if (std::holds_alternative<Reject>(rule.action)) {
        trace.path.push_back(chain.name + ": " + toText(rule));
        return Outcome::kDrop;
      }
      if (!std::holds_alternative<Verdict>(rule.action) &&
          !std::holds_alternative<VerdictMapLookup>(rule.action))
        continue;  // translation statements: the traced packet is already past them
      if (const auto* vm = std::get_if<VerdictMapLookup>(&rule.action)) {
        if (vm->key != VerdictMapLookup::Key::kAddress) continue;  // service dispatch lives in the NAT chains
        const IpAddress& ip = address(vm->field);
        if (ip.family() != vm->family) continue;
        const Set* map = t_.findSet(vm->map);
        if (!map) continue;
        auto it = std::find_if(map->verdicts.begin(), map->verdicts.end(),
                               [&](const auto& kv) { return kv.first == ip.toString(); });
        if (it == map->verdicts.end()) continue;
        jumpTo = it->second;
      } else {
        const auto& v = std::get<Verdict>(rule.action);
        trace.path.push_back(chain.name + ": " + toText(rule));
        if (v.kind == Verdict::Kind::kAccept) return Outcome::kAccept;
        if (v.kind == Verdict::Kind::kDrop) return Outcome::kDrop;
        if (v.kind == Verdict::Kind::kReturn) return Outcome::kReturn;
        jumpTo = v.chain;
      }
      const Chain* target = t_.findChain(jumpTo);
      if (!target) return Outcome::kDrop;
      trace.path.push_back(chain.name + ": jump " + jumpTo);
      Outcome o = evaluate(*target, trace, depth + 1);
      if (o != Outcome::kReturn) return o;
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
