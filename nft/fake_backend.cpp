#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "nftpol/nft/backend.h"

namespace nftpol::nft {

namespace {

Error refused(int err, const std::string& what) {
  return Error{"fake kernel refused the transaction, so nothing of it was applied: " + what + ": " +
                   std::strerror(err),
               err};
}

bool holds(const KernelView& v, const std::string& name) {
  return v.sets.count(name) || v.chains.count(name) || v.counters.count(name);
}

// Whether a rule of a chain other than `except` (whose own rules go with it) or a map element refers to
// `name`.
bool referredTo(const KernelView& v, const std::string& name, const std::string& except = {}) {
  for (const auto& [chain, c] : v.chains) {
    if (chain == except) continue;
    for (const auto& rule : c.rules) {
      auto names = referencedNames(rule);
      if (std::find(names.begin(), names.end(), name) != names.end()) return true;
    }
  }
  for (const auto& [set, s] : v.sets)
    for (const auto& e : s.elements)
      if (e.chain == name) return true;
  return false;
}

// Rules named by a rule of chain `chain` that `v` does not hold: the kernel refuses such a rule.
std::optional<Error> unresolved(const KernelView& v, const std::string& chain, const std::string& rule) {
  for (const auto& name : referencedNames(rule))
    if (!holds(v, name)) return refused(ENOENT, "add rule to chain " + chain + " naming " + name);
  return std::nullopt;
}

// Where the rule with this handle stands in the chain, when the chain's handles are known and hold it.
std::optional<size_t> positionOf(const ChainView& c, uint64_t handle) {
  if (!c.knowsHandles()) return std::nullopt;
  auto it = std::find(c.handles.begin(), c.handles.end(), handle);
  if (it == c.handles.end()) return std::nullopt;
  return static_cast<size_t>(it - c.handles.begin());
}

// One step of a transaction on `v`, as the kernel would carry it out; an error when it would refuse it.
// Rules get handles from `nextHandle`, as the kernel numbers them, in the chains whose handles are known.
std::optional<Error> carryOut(KernelView& v, const Step& step, const KernelView& want, uint64_t& nextHandle) {
  using K = Step::Kind;
  auto set = v.sets.find(step.name);
  auto chain = v.chains.find(step.name);
  switch (step.kind) {
    case K::kDeleteTable:
      if (!v.exists) return refused(ENOENT, "delete table");
      v = KernelView{};
      return std::nullopt;
    case K::kAddTable:
      v.exists = true;
      return std::nullopt;
    case K::kAddSet: {
      if (!v.exists) return refused(ENOENT, "add set " + step.name);
      const SetView& shape = want.sets.at(step.name);
      if (set != v.sets.end()) {
        if (!sameSpec(set->second, shape)) return refused(EEXIST, "add set " + step.name);
        return std::nullopt;
      }
      SetView made = shape;
      made.elements.clear();
      v.sets.emplace(step.name, std::move(made));
      return std::nullopt;
    }
    case K::kAddChain: {
      if (!v.exists) return refused(ENOENT, "add chain " + step.name);
      const ChainView& shape = want.chains.at(step.name);
      if (chain != v.chains.end()) {
        if (chain->second.base != shape.base || chain->second.foreignBase)
          return refused(EEXIST, "add chain " + step.name);
        return std::nullopt;
      }
      v.chains.emplace(step.name, ChainView{.base = shape.base});
      return std::nullopt;
    }
    case K::kFlushChain:
      if (chain == v.chains.end()) return refused(ENOENT, "flush chain " + step.name);
      chain->second.rules = Signatures();
      chain->second.handles.clear();
      return std::nullopt;
    case K::kAddRules:
    case K::kInsertRules: {
      if (chain == v.chains.end()) return refused(ENOENT, "add rule to chain " + step.name);
      ChainView& c = chain->second;
      bool known = c.rules.empty() || c.knowsHandles();
      std::vector<std::string>& rules = c.rules.mutate();
      const Signatures& wanted = want.chains.at(step.name).rules;
      size_t first = step.kind == K::kAddRules ? 0 : step.first;
      size_t count = step.kind == K::kAddRules ? wanted.size() : step.count;
      size_t at = rules.size();
      if (step.handle != 0) {
        auto before = positionOf(c, step.handle);
        if (!before) return refused(ENOENT, "insert a rule into chain " + step.name);
        at = *before;
      }
      for (size_t i = 0; i < count; ++i) {
        if (auto e = unresolved(v, step.name, wanted[first + i])) return e;
        rules.insert(rules.begin() + static_cast<std::ptrdiff_t>(at + i), wanted[first + i]);
        if (known) c.handles.insert(c.handles.begin() + static_cast<std::ptrdiff_t>(at + i), nextHandle++);
      }
      return std::nullopt;
    }
    case K::kDeleteRule: {
      auto at = chain == v.chains.end() ? std::nullopt : positionOf(chain->second, step.handle);
      if (!at)
        return refused(ENOENT, "delete rule " + std::to_string(step.handle) + " of chain " + step.name);
      ChainView& c = chain->second;
      std::vector<std::string>& rules = c.rules.mutate();
      rules.erase(rules.begin() + static_cast<std::ptrdiff_t>(*at));
      c.handles.erase(c.handles.begin() + static_cast<std::ptrdiff_t>(*at));
      return std::nullopt;
    }
    case K::kDeleteElements: {
      if (set == v.sets.end()) return refused(ENOENT, "delete elements of set " + step.name);
      auto& elements = set->second.elements.mutate();
      for (const auto& e : step.elements) {
        auto it = std::lower_bound(elements.begin(), elements.end(), e);
        if (it == elements.end() || !(*it == e))
          return refused(ENOENT, "delete an element that set " + step.name + " does not hold");
        elements.erase(it);
      }
      return std::nullopt;
    }
    case K::kFlushSet:
      if (set == v.sets.end()) return refused(ENOENT, "flush set " + step.name);
      set->second.elements.clear();
      return std::nullopt;
    case K::kAddElements: {
      if (set == v.sets.end()) return refused(ENOENT, "add elements to set " + step.name);
      auto& elements = set->second.elements.mutate();
      for (const auto& e : step.elements) {
        if (!e.chain.empty() && !v.chains.count(e.chain))
          return refused(ENOENT, "add an element of map " + step.name + " jumping to " + e.chain);
        auto it = std::lower_bound(elements.begin(), elements.end(), e);
        if (it == elements.end() || !(*it == e)) elements.insert(it, e);
      }
      return std::nullopt;
    }
    case K::kDeleteChain:
      if (chain == v.chains.end()) return refused(ENOENT, "delete chain " + step.name);
      if (referredTo(v, step.name, step.name)) return refused(EBUSY, "delete chain " + step.name);
      v.chains.erase(chain);
      return std::nullopt;
    case K::kDeleteSet:
      if (set == v.sets.end()) return refused(ENOENT, "delete set " + step.name);
      if (referredTo(v, step.name)) return refused(EBUSY, "delete set " + step.name);
      v.sets.erase(set);
      return std::nullopt;
    case K::kAddCounter:
      if (!v.exists) return refused(ENOENT, "add counter " + step.name);
      v.counters.try_emplace(step.name, want.counters.at(step.name));
      return std::nullopt;
    case K::kDeleteCounter:
      if (!v.counters.count(step.name)) return refused(ENOENT, "delete counter " + step.name);
      if (referredTo(v, step.name)) return refused(EBUSY, "delete counter " + step.name);
      v.counters.erase(step.name);
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

Result<KernelView> transact(KernelView current, const Plan& plan, const KernelView& want) {
  uint64_t nextHandle = 1;
  for (const auto& [name, c] : current.chains)
    for (uint64_t h : c.handles)
      nextHandle = std::max(nextHandle, h + 1);
  for (const Step& step : plan.steps)
    if (auto error = carryOut(current, step, want, nextHandle)) return *error;
  return current;
}

// The caller's promise checked: whatever differs from the table given to the previous apply is named.
Result<Applied> FakeBackend::applyChanged(const Table& desired, const std::set<std::string>& changed) {
  KernelView want = viewOf(desired);
  if (previous_) {
    auto unnamed = [&](const auto& before, const auto& after) -> std::optional<std::string> {
      for (const auto& [name, v] : after) {
        auto it = before.find(name);
        if ((it == before.end() || !(it->second == v)) && !changed.count(name)) return name;
      }
      for (const auto& [name, v] : before)
        if (!after.count(name) && !changed.count(name)) return name;
      return std::nullopt;
    };
    auto missed = unnamed(previous_->sets, want.sets);
    if (!missed) missed = unnamed(previous_->chains, want.chains);
    if (missed) {
      ++refused_;
      previous_ = std::move(want);
      return Error{"fake kernel: " + *missed +
                   " changed since the previous apply, but was not named changed"};
    }
  }
  return applyView(desired, std::move(want));
}

Result<Applied> FakeBackend::apply(const Table& desired) {
  return applyView(desired, viewOf(desired));
}

Result<Applied> FakeBackend::applyView(const Table& desired, KernelView view) {
  previous_ = std::move(view);
  const KernelView& want = *previous_;
  if (!failures_.empty()) {
    Error e = failures_.front().error;
    if (--failures_.front().times <= 0) failures_.erase(failures_.begin());
    ++refused_;
    return e;
  }
  if (auto problem = desired.check()) {
    ++refused_;
    return Error{"fake kernel: " + *problem, EINVAL};
  }
  Plan p = plan(view_, desired, want);
  if (p.empty()) return Applied{0};
  auto done = transact(view_, p, want);
  if (!done) {
    ++refused_;
    return done.error();
  }
  KernelView& next = *done;
  // The planner's promise: after its steps the kernel holds exactly the desired table.
  if (!next.exists || next.sets != want.sets || next.chains != want.chains) {
    ++refused_;
    return Error{"fake kernel: the plan's steps did not make the desired table"};
  }
  view_ = std::move(next);
  ++applied_;
  return Applied{p.messages(desired)};
}

Result<Applied> FakeBackend::remove(const std::string&) {
  bool existed = view_.exists;
  view_ = KernelView{};
  return Applied{existed ? 1u : 0u};
}

}  // namespace nftpol::nft
