// The fake kernel: it carries out plans step by step and refuses what the kernel refuses, so that tests of
// whatever drives a backend (the reconcile loop) also check that every plan they cause is one the kernel
// takes.
#include <catch2/catch.hpp>
#include <cerrno>
#include <random>

#include "generator.h"
#include "nftpol/nft/backend.h"
#include "nftpol/policy/loader.h"
#include "nftpol/policy/model.h"
#include "nftpol/render/render.h"

using namespace nftpol;
using namespace nftpol::nft;

namespace {

// A base chain that jumps through a verdict map to a pod chain, whose rule looks up a set.
Table small() {
  Table t;
  const IpAddress one = *IpAddress::parse("10.0.0.1"), two = *IpAddress::parse("10.0.0.2");
  t.sets.push_back(Set{.name = "peers", .key = KeyType::address(Family::kV4), .elements = {one}});
  t.maps.push_back(Map{.name = "to", .key = KeyType::address(Family::kV4), .verdicts = {{two, "pod"}}});
  Chain forward{
      .name = "forward",
      .base = BaseChain{ChainType::kFilter, Hook::kForward, Priority::kFilter, ChainPolicy::kAccept}};
  forward.rules.push_back(
      Rule{.action = VerdictMapLookup{.family = Family::kV4, .field = Field::kDestination, .map = "to"}});
  Chain pod{.name = "pod"};
  pod.rules.push_back(Rule{.matches = {AddressInSet{Family::kV4, Field::kSource, "peers"}},
                           .action = Verdict{Verdict::Kind::kAccept, ""}});
  t.chains = {forward, pod};
  return t;
}

Plan steps(std::vector<Step> s) {
  return Plan{std::move(s)};
}

void requireRefused(const Result<KernelView>& r, int errnum, const std::string& naming) {
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().errnum == errnum);
  CHECK(r.error().message.find(naming) != std::string::npos);
}

}  // namespace

TEST_CASE("the fake kernel refuses what the kernel refuses, and takes the planner's steps", "[fake]") {
  FakeBackend fake;
  const Table t = small();
  auto first = fake.apply(t);
  REQUIRE(first.ok());
  CHECK(first->messages > 0);
  CHECK(fake.applied() == 1);
  const KernelView want = viewOf(t);
  CHECK(fake.view().sets == want.sets);
  CHECK(fake.view().chains == want.chains);
  auto again = fake.apply(t);
  REQUIRE(again.ok());
  CHECK(again->messages == 0);
  CHECK(fake.applied() == 1);  // nothing to do is no transaction

  using K = Step::Kind;
  const KernelView& held = fake.view();
  SECTION("removing what a rule or a map element still refers to: EBUSY") {
    requireRefused(transact(held, steps({{K::kDeleteSet, "peers", {}}}), want), EBUSY, "delete set peers");
    requireRefused(transact(held, steps({{K::kDeleteChain, "pod", {}}}), want), EBUSY, "delete chain pod");
    // A chain's own rules go with it; once the map no longer jumps to it, it may go.
    auto element = held.sets.at("to").elements;
    auto gone =
        transact(held, steps({{K::kDeleteElements, "to", element}, {K::kDeleteChain, "pod", {}}}), want);
    REQUIRE(gone.ok());
    CHECK_FALSE(gone->chains.count("pod"));
  }
  SECTION("naming what does not exist: ENOENT") {
    Table missing = t;
    std::get<AddressInSet>(missing.chains[1].rules[0].matches[0]).set = "nowhere";
    requireRefused(
        transact(held, steps({{K::kFlushChain, "pod", {}}, {K::kAddRules, "pod", {}}}), viewOf(missing)),
        ENOENT, "naming nowhere");
    requireRefused(
        transact(held, steps({{K::kAddElements, "nowhere", held.sets.at("peers").elements}}), want), ENOENT,
        "add elements to set nowhere");
    requireRefused(transact(held, steps({{K::kDeleteElements, "peers", {ElementTuple{.key = "x"}}}}), want),
                   ENOENT, "does not hold");
    requireRefused(transact(KernelView{}, steps({{K::kAddSet, "peers", {}}}), want), ENOENT, "add set peers");
    requireRefused(transact(held, steps({{K::kFlushChain, "nowhere", {}}}), want), ENOENT, "flush chain");
    ElementTuple toMissing = held.sets.at("to").elements[0];
    toMissing.chain = "nowhere";
    requireRefused(transact(held, steps({{K::kAddElements, "to", {toMissing}}}), want), ENOENT,
                   "jumping to nowhere");
  }
  SECTION("a set or base chain over one of another shape: EEXIST") {
    Table reshaped = t;
    reshaped.sets[0].interval = true;
    requireRefused(transact(held, steps({{K::kAddSet, "peers", {}}}), viewOf(reshaped)), EEXIST,
                   "add set peers");
    reshaped = t;
    reshaped.chains[0].base->priority = Priority{10};
    requireRefused(transact(held, steps({{K::kAddChain, "forward", {}}}), viewOf(reshaped)), EEXIST,
                   "add chain forward");
    // The planner replaces the table for that, in one transaction, and the fake takes it.
    REQUIRE(fake.apply(reshaped).ok());
    CHECK(fake.view().chains.at("forward").base->priority == Priority{10});
    // A base chain read back with a type or hook nftpol has no name for is never taken for ours.
    fake.view().chains.at("forward").foreignBase = true;
    auto replaced = fake.apply(reshaped);
    REQUIRE(replaced.ok());
    CHECK(replaced->messages > 0);
    CHECK_FALSE(fake.view().chains.at("forward").foreignBase);
  }
  SECTION("the planner removes referrers first, which the kernel needs") {
    Table bare = t;
    bare.sets.clear();
    bare.maps.clear();
    bare.chains.resize(1);
    bare.chains[0].rules.clear();
    auto emptied = fake.apply(bare);
    REQUIRE(emptied.ok());
    CHECK(fake.view().sets.empty());
    CHECK(fake.view().chains.size() == 1);
  }
}

// A chain of jumps, as a class chain of cluster policies is: one inserted or removed between others is edited
// where it stands, by the handles the kernel gave, in as many messages as rules changed.
TEST_CASE("a chain whose handles are known is edited in place, not flushed and refilled", "[fake]") {
  auto jumps = [](std::vector<std::string> targets) {
    Table t;
    Chain c{.name = "class"};
    for (const auto& target : targets) {
      t.chains.push_back(Chain{.name = target});
      c.rules.push_back(Rule{.action = Verdict{Verdict::Kind::kJump, target}});
    }
    c.rules.push_back(Rule{.action = Verdict{Verdict::Kind::kAccept, ""}});
    t.chains.push_back(c);
    return t;
  };
  FakeBackend fake;
  REQUIRE(fake.apply(jumps({"a", "b", "c"})).ok());
  REQUIRE(fake.view().chains.at("class").knowsHandles());
  std::vector<uint64_t> before = fake.view().chains.at("class").handles;

  Table inserted = jumps({"a", "x", "b", "c"});
  Plan p = plan(fake.view(), inserted);
  std::vector<Step::Kind> kinds;
  for (const auto& step : p.steps)
    if (step.name == "class") kinds.push_back(step.kind);
  CHECK(kinds == std::vector<Step::Kind>{Step::Kind::kInsertRules});
  CHECK(p.steps.back().handle == before[1]);  // before the jump to b
  auto applied = fake.apply(inserted);
  REQUIRE(applied.ok());
  CHECK(applied->messages == 2);  // chain x and the one jump to it
  const ChainView& edited = fake.view().chains.at("class");
  CHECK(edited == viewOf(inserted).chains.at("class"));
  REQUIRE(edited.handles.size() == 5);
  CHECK(edited.handles[0] == before[0]);  // the others kept their handles: never flushed
  CHECK(edited.handles[2] == before[1]);
  CHECK(edited.handles[4] == before[3]);

  // One removed (and its chain with it): one delete by handle.
  auto removed = fake.apply(jumps({"a", "x", "c"}));
  REQUIRE(removed.ok());
  CHECK(removed->messages == 2);
  CHECK(fake.view().chains.at("class") == viewOf(jumps({"a", "x", "c"})).chains.at("class"));

  // Appended at the tail's end when nothing follows; everything changed: flushed and refilled (cheaper).
  Table appended = jumps({"a", "x", "c"});
  appended.chains.back().rules.push_back(Rule{.action = Verdict{Verdict::Kind::kDrop, ""}});
  REQUIRE(fake.apply(appended).ok());
  CHECK(fake.view().chains.at("class") == viewOf(appended).chains.at("class"));
  Plan everything = plan(fake.view(), jumps({"c", "a"}));
  CHECK(std::any_of(everything.steps.begin(), everything.steps.end(),
                    [](const Step& s) { return s.kind == Step::Kind::kFlushChain; }));

  // One moved from the front to the back (a priority changed): deleted and inserted, two messages.
  REQUIRE(fake.apply(jumps({"a", "b", "c", "d"})).ok());
  auto moved = fake.apply(jumps({"b", "c", "d", "a"}));
  REQUIRE(moved.ok());
  CHECK(moved->messages == 2);
  CHECK(fake.view().chains.at("class") == viewOf(jumps({"b", "c", "d", "a"})).chains.at("class"));

  // Random edits: whatever the planner sends makes the chain, never more messages than a refill; and the
  // view made through a signature cache (which keeps a changed chain's head and tail) is the view made anew.
  std::mt19937 rng(7);
  SignatureCache cache;
  std::vector<std::string> now = {"b", "c", "d", "a"};
  for (int round = 0; round < 200; ++round) {
    std::vector<std::string> next = now;
    int edits = std::uniform_int_distribution<int>(1, 3)(rng);
    for (int k = 0; k < edits; ++k) {
      int what = std::uniform_int_distribution<int>(0, 2)(rng);
      std::string target(1, static_cast<char>('a' + std::uniform_int_distribution<int>(0, 11)(rng)));
      if (what == 0 || next.empty()) {
        next.insert(next.begin() + std::uniform_int_distribution<size_t>(0, next.size())(rng), target);
      } else if (what == 1) {
        next.erase(next.begin() + std::uniform_int_distribution<size_t>(0, next.size() - 1)(rng));
      } else {
        std::swap(next[std::uniform_int_distribution<size_t>(0, next.size() - 1)(rng)],
                  next[std::uniform_int_distribution<size_t>(0, next.size() - 1)(rng)]);
      }
    }
    std::vector<std::string> unique;  // a target's chain is made once
    for (const auto& t : next)
      if (std::find(unique.begin(), unique.end(), t) == unique.end()) unique.push_back(t);
    INFO("round " << round);
    Table t = jumps(unique);
    size_t refill = 1 + t.chains.back().rules.size();
    Plan planned = plan(fake.view(), t);
    size_t onClass = 0;
    for (const auto& step : planned.steps)
      if (step.name == "class") onClass += step.kind == Step::Kind::kInsertRules ? step.count : 1;
    CHECK(onClass <= refill);
    REQUIRE(viewOf(t, &cache).chains.at("class") == viewOf(t).chains.at("class"));
    REQUIRE(fake.apply(t).ok());
    REQUIRE(fake.view().chains.at("class") == viewOf(t).chains.at("class"));
    now = unique;
  }

  // Without handles (a view that never had them), the chain is flushed and refilled.
  fake.view().chains.at("class").handles.clear();
  Plan blind = plan(fake.view(), jumps({"a", "c"}));
  CHECK(std::any_of(blind.steps.begin(), blind.steps.end(),
                    [](const Step& s) { return s.kind == Step::Kind::kFlushChain && s.name == "class"; }));
  REQUIRE(fake.apply(jumps({"a", "c"})).ok());
  CHECK(fake.view().chains.at("class").knowsHandles());

  // A handle the kernel does not hold is refused.
  const KernelView want = viewOf(inserted);
  requireRefused(
      transact(fake.view(), steps({{.kind = Step::Kind::kDeleteRule, .name = "class", .handle = 999}}), want),
      ENOENT, "delete rule 999 of chain class");
  requireRefused(
      transact(fake.view(),
               steps({{.kind = Step::Kind::kInsertRules, .name = "class", .handle = 999, .count = 1}}), want),
      ENOENT, "insert a rule into chain class");
}

TEST_CASE("a set or map never holds a key its type does not admit", "[fake]") {
  Table t = small();
  REQUIRE_FALSE(t.check());
  Table wrongFamily = t;
  wrongFamily.sets[0].elements.push_back(*IpAddress::parse("fd00::1"));
  Table wrongKind = t;
  wrongKind.maps[0].verdicts.emplace_back(ProtocolPort{Protocol::kTCP, 80}, "pod");
  Table rangeInPlainSet = t;
  rangeInPlainSet.sets[0].elements.push_back(
      AddressRange{*IpAddress::parse("10.0.0.8"), *IpAddress::parse("10.0.0.9")});
  Table slotPastModulus = t;
  slotPastModulus.maps.push_back(
      Map{.name = "zz", .key = KeyType::random(2), .verdicts = {{Slot{2}, "pod"}}});
  for (const Table* bad : {&wrongFamily, &wrongKind, &rangeInPlainSet, &slotPastModulus}) {
    auto problem = bad->check();
    REQUIRE(problem);
    FakeBackend fake;
    auto r = fake.apply(*bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find(*problem) != std::string::npos);
    CHECK_FALSE(fake.view().exists);
  }
  CHECK(*wrongKind.check() == "map to (type ipv4_addr) cannot map tcp . 80");
  CHECK(toString(Key{AddressRange{*IpAddress::parse("10.0.0.0"), *IpAddress::parse("10.0.0.255")}}) ==
        "10.0.0.0/24");
  CHECK(toString(Key{AddressProtocolPort{*IpAddress::parse("fd00::1"), Protocol::kUDP, 53}}) ==
        "fd00::1 . udp . 53");
}

TEST_CASE("the fake fails on request, changing nothing, then applies again", "[fake]") {
  FakeBackend fake;
  fake.failNext(Error{"injected", EIO}, 2);
  for (int i = 0; i < 2; ++i) {
    auto r = fake.apply(small());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().errnum == EIO);
    CHECK_FALSE(fake.view().exists);
  }
  CHECK(fake.refused() == 2);
  REQUIRE(fake.apply(small()).ok());
  CHECK(fake.view().exists);
  CHECK(fake.applied() == 1);
}

TEST_CASE("every plan between renders of a changing cluster is one the fake kernel takes", "[fake]") {
  policy::ClusterState base;
  std::vector<policy::Diagnostic> diagnostics;
  policy::loadPaths({NFTPOL_SOURCE_DIR "/samples/cluster"}, base, diagnostics);
  REQUIRE_FALSE(policy::hasErrors(diagnostics));
  policy::ClusterState generated =
      bench::generateCluster({.namespaces = 8, .pods = 80, .policies = 30, .seed = 7});
  for (const auto& ref : generated.refs())
    base.copyFrom(generated, ref);
  int n = 0;
  for (policy::Pod p : generated.pods()) {  // on the two nodes, so that their changes reach the tables
    p.nodeName = n++ % 2 ? "node-a" : "node-b";
    base.upsert(p);
  }
  const auto all = base.refs();
  std::mt19937_64 rng(11);
  for (const char* node : {"node-a", "node-b"}) {
    FakeBackend fake;
    policy::ClusterState state = base;
    for (int step = 0; step < 120; ++step) {
      // Take an object away or bring it back: services, slices, pods and policies come and go.
      const auto& ref = all[std::uniform_int_distribution<size_t>(0, all.size() - 1)(rng)];
      if (ref.kind == "Namespace") continue;
      policy::ClusterState empty;
      state.copyFrom(rng() % 2 ? base : empty, ref);
      policy::ClusterState whole = state;
      (void)whole.implyMissingNamespaces();
      Table table = render::render(policy::Model::of(whole), node);
      auto applied = fake.apply(table);
      INFO(node << " step " << step << ": " << ref.kind << " " << ref.key);
      INFO((applied ? std::string() : applied.error().message));
      REQUIRE(applied.ok());
      CHECK(fake.view().sets == viewOf(table).sets);
    }
    CHECK(fake.applied() > 25);  // a step often brings back what is there, or takes what is not
    // Every service at once: service chains refer to backend maps, which jump to endpoint chains, and the
    // kernel removes none of them while something refers to it.
    state = base;
    auto render = [&] {
      policy::ClusterState whole = state;
      (void)whole.implyMissingNamespaces();
      return render::render(policy::Model::of(whole), node);
    };
    REQUIRE(fake.apply(render()).ok());
    size_t chains = fake.view().chains.size(), sets = fake.view().sets.size();
    for (const auto& ref : all)
      if (ref.kind == "Service" || ref.kind == "EndpointSlice") state.remove(ref.kind, ref.key);
    auto removed = fake.apply(render());
    INFO((removed ? std::string() : removed.error().message));
    REQUIRE(removed.ok());
    CHECK(fake.view().chains.size() < chains);
    CHECK(fake.view().sets.size() < sets);
    CHECK(fake.refused() == 0);
  }
}
