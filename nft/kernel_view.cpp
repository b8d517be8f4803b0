#include "nftpol/nft/kernel_view.h"

#include <algorithm>
#include <cstring>

#include "messages.h"

namespace nftpol::nft {

KernelView viewOf(const Table& desired, SignatureCache* cache, const std::set<std::string>* changed) {
  auto same = [&](const std::string& name) { return changed && !changed->count(name); };
  KernelView v;
  v.exists = true;
  // Sets and maps are both sets to the kernel: one view of them, by name.
  auto view = [&](const auto& s, auto* cached) {
    if (!cached) {
      v.sets[s.name] = setViewOf(s);
      return;
    }
    auto it = cached->find(s.name);
    if (it == cached->end() || (!same(s.name) && !(it->second.first == s)))
      it = cached->insert_or_assign(s.name, std::pair{s, setViewOf(s)}).first;
    v.sets[s.name] = it->second.second;
  };
  for (const auto& c : desired.counters)
    v.counters[c.name] = c.comment;
  for (const auto& s : desired.sets)
    view(s, cache ? &cache->sets : nullptr);
  for (const auto& m : desired.maps)
    view(m, cache ? &cache->maps : nullptr);
  for (const auto& c : desired.chains) {
    ChainView cv{.base = c.base};
    const SignatureCache::Entry* cached = nullptr;
    if (cache) {
      auto it = cache->chains.find(c.name);
      if (it != cache->chains.end()) cached = &it->second;
    }
    if (cached && (same(c.name) || cached->rules == c.rules)) {
      cv.rules = cached->signatures;
    } else {
      // A chain that changed mostly keeps its head and tail (a jump inserted into a class chain): their
      // signatures are taken from the cache, only the rules between are built and printed.
      size_t n = c.rules.size(), m = cached ? cached->rules.size() : 0, head = 0, tail = 0;
      while (head < n && head < m && c.rules[head] == cached->rules[head])
        ++head;
      while (tail < n - head && tail < m - head && c.rules[n - 1 - tail] == cached->rules[m - 1 - tail])
        ++tail;
      std::vector<std::string> signatures;
      signatures.reserve(n);
      for (size_t i = 0; i < n; ++i)
        signatures.push_back(i < head        ? cached->signatures[i]
                             : i >= n - tail ? cached->signatures[m - (n - i)]
                                             : ruleSignature(buildRule(desired, c.name, c.rules[i]).get()));
      cv.rules = Signatures(std::move(signatures));
      if (cache) cache->chains[c.name] = {c.rules, cv.rules};
    }
    v.chains[c.name] = std::move(cv);
  }
  if (cache) {  // what is gone rarely comes back with the same content: keep the cache bounded
    std::erase_if(cache->chains, [&](const auto& entry) { return !v.chains.count(entry.first); });
    std::erase_if(cache->sets, [&](const auto& entry) { return !v.sets.count(entry.first); });
    std::erase_if(cache->maps, [&](const auto& entry) { return !v.sets.count(entry.first); });
  }
  return v;
}

// The names a rule's signature refers to: sets (lookup, dynset, vmap: "set NAME") and chains (jump, goto:
// "-> NAME"). libnftnl prints a meta or ct statement as "set KEY with reg N", which names no set.
std::vector<std::string> referencedNames(const std::string& signature) {
  std::vector<std::string> out;
  for (const char* marker : {"set ", "-> "}) {
    for (size_t at = signature.find(marker); at != std::string::npos; at = signature.find(marker, at + 1)) {
      size_t from = at + std::strlen(marker);
      size_t to = signature.find_first_of(" ]", from);
      if (to == std::string::npos || to == from) continue;
      if (signature.compare(to, 6, " with ") == 0) continue;
      out.push_back(signature.substr(from, to - from));
    }
  }
  static constexpr const char* kObjref = "[objref type 1 name ";  // a named counter (NFT_OBJECT_COUNTER)
  for (size_t at = signature.find(kObjref); at != std::string::npos; at = signature.find(kObjref, at + 1)) {
    size_t from = at + std::strlen(kObjref);
    size_t to = signature.find_first_of(" ]", from);
    if (to != std::string::npos && to != from) out.push_back(signature.substr(from, to - from));
  }
  return out;
}

namespace {

std::vector<ElementTuple> minus(const std::vector<ElementTuple>& a, const std::vector<ElementTuple>& b) {
  std::vector<ElementTuple> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

// What to remove, each after everything that refers to it: a chain's rules refer to sets and chains, a
// verdict map's elements to chains, and the kernel refuses to remove what something still refers to (EBUSY),
// even when the referrer goes in the same transaction but later. Service NAT makes such chains: a service
// chain refers to its backend map, which refers to endpoint chains.
std::vector<std::pair<std::string, bool>> removalOrder(const KernelView& have, const KernelView& want) {
  std::map<std::pair<std::string, bool>, std::vector<std::pair<std::string, bool>>> refersTo;
  std::map<std::pair<std::string, bool>, int> referrers;
  for (const auto& [name, c] : have.chains)
    if (!want.chains.count(name)) referrers[{name, false}] = 0;
  for (const auto& [name, s] : have.sets)
    if (!want.sets.count(name)) referrers[{name, true}] = 0;
  auto link = [&](const std::pair<std::string, bool>& from, const std::pair<std::string, bool>& to) {
    if (from == to || !referrers.count(to)) return;
    refersTo[from].push_back(to);
    ++referrers[to];
  };
  for (const auto& [node, count] : referrers) {
    if (node.second) {
      for (const auto& e : have.sets.at(node.first).elements)
        if (!e.chain.empty()) link(node, {e.chain, false});
    } else {
      for (const auto& rule : have.chains.at(node.first).rules)
        for (const auto& name : referencedNames(rule)) {
          link(node, {name, true});
          link(node, {name, false});
        }
    }
  }
  std::vector<std::pair<std::string, bool>> order, ready;
  for (const auto& [node, count] : referrers)
    if (count == 0) ready.push_back(node);
  while (!ready.empty()) {
    auto node = ready.back();
    ready.pop_back();
    order.push_back(node);
    for (const auto& to : refersTo[node])
      if (--referrers[to] == 0) ready.push_back(to);
  }
  for (const auto& [node, count] : referrers)  // a cycle cannot be loaded into the kernel; keep what is left
    if (count > 0) order.push_back(node);
  return order;
}

// How `have`'s rules become `want`'s with the fewest deletions and insertions: the rules outside a longest
// common subsequence of the two (after their common head and tail) are deleted, and `want`'s others inserted
// in runs, each before the kept rule of `have` that follows it (`before`, have.size() for the end). A
// middle too large for the table keeps nothing of itself.
struct EditScript {
  struct Run {
    size_t first, count, before;
  };
  std::vector<size_t> deleted;  // indices into have
  std::vector<Run> inserted;    // ranges of want
  size_t messages() const {
    size_t n = deleted.size();
    for (const auto& r : inserted)
      n += r.count;
    return n;
  }
};

EditScript editScript(const Signatures& have, const Signatures& want) {
  constexpr size_t kMaxCells = 1 << 14;
  size_t n = have.size(), m = want.size(), head = 0, tail = 0;
  while (head < n && head < m && have[head] == want[head])
    ++head;
  while (tail < n - head && tail < m - head && have[n - 1 - tail] == want[m - 1 - tail])
    ++tail;
  size_t a = n - head - tail, b = m - head - tail;
  // oldOf[j]: the index in have of want's rule head + j when it is kept.
  std::vector<size_t> oldOf(b, n);
  std::vector<bool> keptOld(a, false);
  if (a > 0 && b > 0 && a * b <= kMaxCells) {
    auto at = [&](size_t i, size_t j) { return i * (b + 1) + j; };
    std::vector<uint32_t> lcs((a + 1) * (b + 1), 0);  // of have's middle from i and want's from j
    for (size_t i = a; i-- > 0;)
      for (size_t j = b; j-- > 0;)
        lcs[at(i, j)] = have[head + i] == want[head + j] ? lcs[at(i + 1, j + 1)] + 1
                                                         : std::max(lcs[at(i + 1, j)], lcs[at(i, j + 1)]);
    for (size_t i = 0, j = 0; i < a && j < b;) {
      if (have[head + i] == want[head + j]) {
        keptOld[i] = true;
        oldOf[j++] = head + i++;
      } else if (lcs[at(i + 1, j)] >= lcs[at(i, j + 1)]) {
        ++i;
      } else {
        ++j;
      }
    }
  }
  EditScript e;
  for (size_t i = 0; i < a; ++i)
    if (!keptOld[i]) e.deleted.push_back(head + i);
  for (size_t j = 0; j < b;) {
    if (oldOf[j] < n) {
      ++j;
      continue;
    }
    size_t end = j;
    while (end < b && oldOf[end] == n)
      ++end;
    size_t before = end < b ? oldOf[end] : n - tail;  // the tail's first rule, or the end of the chain
    e.inserted.push_back({head + j, end - j, before});
    j = end;
  }
  return e;
}

}  // namespace

bool sameSpec(const SetView& a, const SetView& b) {
  return a.flags == b.flags && a.keyType == b.keyType && a.keyLength == b.keyLength &&
         a.timeoutMs == b.timeoutMs;
}

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
      rebuild =
          rebuild || (it != current.chains.end() && (it->second.base != c.base || it->second.foreignBase));
    }
  }
  // A chain edited in place: the rules of `have` outside a longest common subsequence with `want` go by
  // handle, and `want`'s others are inserted before the kept rule that follows them. A chain whose handles
  // are unknown, or for which that would cost more, is flushed and refilled.
  auto edit = [&](const std::string& name, const ChainView& have, const ChainView& want) {
    EditScript e = editScript(have.rules, want.rules);
    if (!have.knowsHandles() || e.messages() >= 1 + want.rules.size()) {
      step(Step::Kind::kFlushChain, name);
      if (!want.rules.empty()) step(Step::Kind::kAddRules, name);
      return;
    }
    for (size_t i : e.deleted)
      p.steps.push_back({.kind = Step::Kind::kDeleteRule, .name = name, .handle = have.handles[i]});
    for (const auto& run : e.inserted)
      p.steps.push_back({.kind = Step::Kind::kInsertRules,
                         .name = name,
                         .handle = run.before < have.handles.size() ? have.handles[run.before] : 0,
                         .first = run.first,
                         .count = run.count});
  };
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
    } else if (it->second.rules != c.rules) {  // a class chain's policies, a service chain's balancing
      edit(name, it->second, c);
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
  for (auto& [name, isSet] : removalOrder(have, want))
    step(isSet ? Step::Kind::kDeleteSet : Step::Kind::kDeleteChain, name);
  // Counters: made before the rules that name them, removed after them. A comment that differs is kept, as
  // a set's is (the kernel does not change an object's comment, and comments carry no meaning).
  for (const auto& [name, comment] : want.counters)
    if (!have.counters.count(name)) step(Step::Kind::kAddCounter, name);
  for (const auto& [name, comment] : have.counters)
    if (!want.counters.count(name)) step(Step::Kind::kDeleteCounter, name);

  // Removals keep the order removalOrder gave them: chains and sets are one rank.
  auto rank = [](Step::Kind k) {
    return static_cast<int>(k == Step::Kind::kDeleteSet ? Step::Kind::kDeleteChain : k);
  };
  std::stable_sort(p.steps.begin(), p.steps.end(),
                   [&](const Step& a, const Step& b) { return rank(a.kind) < rank(b.kind); });
  return p;
}

size_t Plan::messages(const Table& desired) const {
  size_t n = 0;
  for (const auto& s : steps) {
    if (s.kind == Step::Kind::kAddRules) {
      const Chain* c = desired.findChain(s.name);
      n += c ? c->rules.size() : 0;
    } else if (s.kind == Step::Kind::kInsertRules) {
      n += s.count;
    } else {
      ++n;
    }
  }
  return n;
}

}  // namespace nftpol::nft
