#include "nftpol/nft/kernel_view.h"

#include <algorithm>

#include "nftpol/nft/messages.h"

namespace nftpol::nft {

KernelView viewOf(const Table& desired, SignatureCache* cache) {
  KernelView v;
  v.exists = true;
  for (const auto& s : desired.sets)
    v.sets[s.name] = setViewOf(s);
  for (const auto& c : desired.chains) {
    ChainView cv{.base = c.base};
    const std::vector<std::string>* cached = nullptr;
    if (cache) {
      auto it = cache->chains.find(c.name);
      if (it != cache->chains.end() && it->second.size() == c.rules.size()) cached = &it->second;
    }
    if (cached) {
      cv.rules = *cached;
    } else {
      for (const auto& r : c.rules)
        cv.rules.push_back(ruleSignature(buildRule(desired, c.name, r).get()));
      if (cache) cache->chains[c.name] = cv.rules;
    }
    v.chains[c.name] = std::move(cv);
  }
  return v;
}

namespace {

std::vector<ElementTuple> minus(const std::vector<ElementTuple>& a, const std::vector<ElementTuple>& b) {
  std::vector<ElementTuple> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

bool sameSpec(const SetView& a, const SetView& b) {
  return a.flags == b.flags && a.keyType == b.keyType && a.keyLength == b.keyLength &&
         a.timeoutMs == b.timeoutMs;
}

}  // namespace

Plan plan(const KernelView& current, const Table& desired, const KernelView& want) {
  Plan p;
  auto step = [&](Step::Kind kind, const std::string& name, std::vector<ElementTuple> elements = {}) {
    p.steps.push_back({kind, name, std::move(elements)});
  };
  // A set or base chain whose very shape changed under us (someone recreated it) cannot be mended in place
  // while rules refer to it: replace the whole table, still in one transaction.
  bool rebuild = false;
  if (current.exists) {
    for (const auto& [name, s] : want.sets) {
      auto it = current.sets.find(name);
      rebuild = rebuild || (it != current.sets.end() && !sameSpec(it->second, s));
    }
    for (const auto& [name, c] : want.chains) {
      auto it = current.chains.find(name);
      rebuild = rebuild || (it != current.chains.end() && it->second.base != c.base);
    }
  }
  static const KernelView kNothing;
  const KernelView& have = rebuild ? kNothing : current;
  if (rebuild) step(Step::Kind::kDeleteTable, desired.name);
  if (!have.exists) step(Step::Kind::kAddTable, desired.name);

  for (const auto& [name, s] : want.sets)
    if (!have.sets.count(name)) step(Step::Kind::kAddSet, name);
  for (const Chain& chain : desired.chains) {  // in the table's order, which is the order nft lists them in
    const std::string& name = chain.name;
    const ChainView& c = want.chains.at(name);
    auto it = have.chains.find(name);
    if (it == have.chains.end()) {
      step(Step::Kind::kAddChain, name);
      if (!c.rules.empty()) step(Step::Kind::kAddRules, name);
    } else if (it->second.rules != c.rules) {  // a service chain's balancing, or tampering
      step(Step::Kind::kFlushChain, name);
      if (!c.rules.empty()) step(Step::Kind::kAddRules, name);
    }
  }
  // Elements: removals before additions, so that a map key whose jump target changed is replaced in place.
  for (const auto& [name, s] : want.sets) {
    auto it = have.sets.find(name);
    if (it == have.sets.end()) {
      if (!s.elements.empty()) step(Step::Kind::kAddElements, name, s.elements);
      continue;
    }
    if (it->second.elements == s.elements) continue;
    if (s.flags & 4 /* NFT_SET_INTERVAL */) {  // interval markers are mended by rewriting the set
      step(Step::Kind::kFlushSet, name);
      step(Step::Kind::kAddElements, name, s.elements);
      continue;
    }
    auto gone = minus(it->second.elements, s.elements);
    auto added = minus(s.elements, it->second.elements);
    if (!gone.empty()) step(Step::Kind::kDeleteElements, name, std::move(gone));
    if (!added.empty()) step(Step::Kind::kAddElements, name, std::move(added));
  }
  for (const auto& [name, c] : have.chains)
    if (!want.chains.count(name)) step(Step::Kind::kDeleteChain, name);
  for (const auto& [name, s] : have.sets)
    if (!want.sets.count(name)) step(Step::Kind::kDeleteSet, name);

  std::stable_sort(p.steps.begin(), p.steps.end(), [](const Step& a, const Step& b) {
    return static_cast<int>(a.kind) < static_cast<int>(b.kind);
  });
  return p;
}

size_t Plan::messages(const Table& desired) const {
  size_t n = 0;
  for (const auto& s : steps) {
    if (s.kind == Step::Kind::kAddRules) {
      const Chain* c = desired.findChain(s.name);
      n += c ? c->rules.size() : 0;
    } else {
      ++n;
    }
  }
  return n;
}

}  // namespace nftpol::nft
