#pragma once

// The table as the kernel holds it, normalised so that a dump and a desired model compare byte for byte:
// set elements as (key bytes, flags, jump target) tuples, and rules as their libnftnl expression printout.
// The desired view is built with the same encoders the netlink messages use, so "equal" means "the kernel
// would hold exactly this".

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "nftpol/nft/ruleset.h"

namespace nftpol::nft {

struct ElementTuple {
  std::string key;     // raw key bytes
  uint32_t flags = 0;  // NFT_SET_ELEM_INTERVAL_END for interval end markers
  std::string chain;   // verdict maps: the chain an element jumps to
  auto operator<=>(const ElementTuple&) const = default;
};

// A list shared (copied on write) between the view cache, the desired view and the view committed last: an
// unchanged chain or set costs no copy per reconcile and compares by pointer.
template <typename T>
class SharedList {
 public:
  SharedList() : list_(none()) {}
  SharedList(std::vector<T> list)  // NOLINT(google-explicit-constructor): a view is made from a list
      : list_(std::make_shared<std::vector<T>>(std::move(list))) {}
  operator const std::vector<T>&() const { return *list_; }  // NOLINT(google-explicit-constructor)
  size_t size() const { return list_->size(); }
  bool empty() const { return list_->empty(); }
  const T& operator[](size_t i) const { return (*list_)[i]; }
  auto begin() const { return list_->cbegin(); }
  auto end() const { return list_->cend(); }
  // The list to change: a copy of its own first when it is shared.
  std::vector<T>& mutate() {
    if (list_.use_count() > 1) list_ = std::make_shared<std::vector<T>>(*list_);
    return *list_;
  }
  void push_back(T item) { mutate().push_back(std::move(item)); }
  void clear() { list_ = none(); }
  bool operator==(const SharedList& o) const { return list_ == o.list_ || *list_ == *o.list_; }

 private:
  static const std::shared_ptr<std::vector<T>>& none() {
    static const auto empty = std::make_shared<std::vector<T>>();
    return empty;
  }
  std::shared_ptr<std::vector<T>> list_;
};

// A set's elements, sorted; a chain's rule signatures, in order.
using Elements = SharedList<ElementTuple>;
using Signatures = SharedList<std::string>;

struct SetView {
  uint32_t flags = 0;
  uint32_t keyType = 0;
  uint32_t keyLength = 0;
  uint64_t timeoutMs = 0;  // a dynamic set's entry lifetime
  Elements elements;       // sorted; never those of a dynamic set (flags & NFT_SET_EVAL)
  bool operator==(const SetView&) const = default;
};

struct ChainView {
  std::optional<BaseChain> base;
  bool foreignBase = false;  // a base chain of a type or hook that nftpol never makes: never one of ours
  Signatures rules;
  // The kernel's handle of each rule, in order, when known (a dump, or the echo of a commit); empty when not.
  // They let a chain be edited in place, a rule inserted or deleted where it stands, instead of flushed and
  // refilled. Bookkeeping, not content: two views compare equal whatever their handles.
  std::vector<uint64_t> handles;
  bool knowsHandles() const { return !rules.empty() && handles.size() == rules.size(); }
  bool operator==(const ChainView& o) const {
    return base == o.base && foreignBase == o.foreignBase && rules == o.rules;
  }
};

struct KernelView {
  bool exists = false;
  std::map<std::string, SetView> sets;
  std::map<std::string, ChainView> chains;
  std::map<std::string, std::string> counters;  // named counters: name -> comment (never their values)
};

// A chain's signatures, kept across reconciles instead of being rebuilt through libnftnl every time: most
// chains are content-addressed, and comparing model rules is far cheaper than building netlink ones.
struct SignatureCache {
  struct Entry {
    std::vector<Rule> rules;  // what the signatures were made from: a name alone does not fix a chain's
    Signatures signatures;
  };
  std::map<std::string, Entry> chains;
  std::map<std::string, std::pair<Set, SetView>> sets;  // a set's encoded view, kept while the set is equal
  std::map<std::string, std::pair<Map, SetView>> maps;
};

// With `changed` (a name that is not in it stands for what the cache last saw under it), the cache's view
// of such an object is taken without comparing the object with what it was made from.
KernelView viewOf(const Table& desired, SignatureCache* cache = nullptr,
                  const std::set<std::string>* changed = nullptr);

// Whether two sets have the same shape (flags, key type and length, timeout): what cannot change in place.
bool sameSpec(const SetView& a, const SetView& b);

// The names a rule's signature refers to: sets (lookup, dynset, vmap), chains (jump, goto) and named
// counters (objref).
std::vector<std::string> referencedNames(const std::string& signature);

// The steps that turn `current` into `desired` inside one transaction, in an order the kernel accepts: new
// sets and chains first, then elements and rules, then removals once nothing refers to what they remove. A
// chain whose rules changed is edited in place (the rules between its unchanged head and tail deleted by
// handle, the new ones inserted where they go) when `current` knows its handles and that sends fewer
// messages than flushing and refilling it.
struct Step {
  enum class Kind : uint8_t {
    kDeleteTable,
    kAddTable,
    kAddCounter,
    kAddSet,
    kAddChain,
    kFlushChain,
    kDeleteRule,
    kAddRules,
    kInsertRules,
    kDeleteElements,
    kFlushSet,
    kAddElements,
    kDeleteChain,
    kDeleteSet,
    kDeleteCounter
  };
  Kind kind;
  std::string name;                    // set, chain or counter
  std::vector<ElementTuple> elements;  // for element steps
  // kDeleteRule: the rule's handle. kInsertRules: the desired chain's rules [first, first + count), each
  // inserted before the rule with handle `handle` (appended when 0).
  uint64_t handle = 0;
  size_t first = 0;
  size_t count = 0;
};

struct Plan {
  std::vector<Step> steps;
  bool empty() const { return steps.empty(); }
  // The number of netlink messages the plan sends (rules one each; elements one per step).
  size_t messages(const Table& desired) const;
};

Plan plan(const KernelView& current, const Table& desired, const KernelView& want);
inline Plan plan(const KernelView& current, const Table& desired) {
  return plan(current, desired, viewOf(desired));
}

}  // namespace nftpol::nft
