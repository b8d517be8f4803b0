// The controller's reconcile loop, rootless: a scripted source and the fake kernel. Each wait() the loop
// makes is one turn of the script, which sees how long the loop meant to sleep (its backoff), may change the
// objects, the kernel or the source's completeness, and says what woke the loop. Nothing sleeps.
#include <catch2/catch.hpp>
#include <cerrno>
#include <functional>
#include <sstream>

#include "nftpol/controller/controller.h"
#include "nftpol/policy/loader.h"
#include "nftpol/policy/model.h"
#include "nftpol/render/render.h"

using namespace nftpol;
using namespace nftpol::controller;
using namespace std::chrono_literals;

namespace {

class ScriptedSource final : public Source {
 public:
  using Turn = std::function<Wake(std::chrono::milliseconds timeout)>;

  ScriptedSource(policy::ClusterState objects, std::vector<Turn> turns)
      : next(std::move(objects)), turns_(std::move(turns)) {}

  policy::ClusterState next;  // what the next take() makes state()
  bool whole = true;          // complete()
  std::vector<std::chrono::milliseconds> waits;

  std::optional<Error> start() override { return std::nullopt; }
  Change take() override {
    Change c;
    auto refs = state_.refs();
    auto more = next.refs();
    refs.insert(refs.end(), more.begin(), more.end());
    std::sort(refs.begin(), refs.end());
    refs.erase(std::unique(refs.begin(), refs.end()), refs.end());
    c.objects = std::move(refs);
    state_ = next;
    (void)state_.implyMissingNamespaces();
    ++generation_;
    return c;
  }
  const policy::ClusterState& state() const override { return state_; }
  size_t generation() const override { return generation_; }
  bool complete() const override { return whole; }
  Wake wait(std::chrono::milliseconds timeout, Interrupts) override {
    waits.push_back(timeout);
    if (waits.size() > turns_.size()) return Wake::kStop;  // the script is over
    return turns_[waits.size() - 1](timeout);
  }
  std::string describe() const override { return "scripted"; }

 private:
  std::vector<Turn> turns_;
  policy::ClusterState state_;
  size_t generation_ = 0;
};

policy::ClusterState samples() {
  policy::ClusterState state;
  std::vector<policy::Diagnostic> diagnostics;
  policy::loadPaths({NFTPOL_SOURCE_DIR "/samples/cluster"}, state, diagnostics);
  REQUIRE_FALSE(policy::hasErrors(diagnostics));
  return state;
}

nft::Table rendered(const policy::ClusterState& objects) {
  policy::ClusterState whole = objects;
  (void)whole.implyMissingNamespaces();
  return render::render(policy::Model::of(whole), "node-a");
}

// The controller with the fake kernel and no HTTP endpoint, routes or conntrack: everything it does goes
// through the source and the backend.
struct Loop {
  ScriptedSource* source;
  nft::FakeBackend* kernel;
  Controller controller;

  Loop(policy::ClusterState objects, std::vector<ScriptedSource::Turn> turns)
      : Loop(std::make_unique<ScriptedSource>(std::move(objects), std::move(turns)),
             std::make_unique<nft::FakeBackend>()) {}
  Loop(std::unique_ptr<ScriptedSource> s, std::unique_ptr<nft::FakeBackend> k)
      : source(s.get()),
        kernel(k.get()),
        controller(ControllerOptions{.node = "node-a",
                                     .listen = "",
                                     .revokeConntrack = false,
                                     .nodeRoutes = false,
                                     .cniSocket = ""},
                   std::move(s), std::move(k)) {}

  bool holds(const nft::Table& t) const {
    nft::KernelView want = nft::viewOf(t);
    return kernel->view().exists && kernel->view().sets == want.sets && kernel->view().chains == want.chains;
  }
  // A counter of the Prometheus text.
  double metric(const std::string& name) const {
    std::istringstream in(controller.metrics().prometheus());
    for (std::string line; std::getline(in, line);)
      if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
    FAIL("no metric " << name);
    return -1;
  }
};

using Wake = Source::Wake;

}  // namespace

TEST_CASE("a failed commit is retried with doubling backoff until it succeeds, and then the loop idles",
          "[loop]") {
  std::unique_ptr<Loop> loop;
  auto timeout = [](std::chrono::milliseconds) { return Wake::kTimeout; };
  loop = std::make_unique<Loop>(samples(), std::vector<ScriptedSource::Turn>{timeout, timeout, timeout});
  loop->kernel->failNext(Error{"injected: the kernel is busy", EBUSY}, 3);
  REQUIRE(loop->controller.run() == 0);
  // 100, 200, 400 ms after the three failures; after the success, the idle resync interval.
  CHECK(loop->source->waits == std::vector<std::chrono::milliseconds>{100ms, 200ms, 400ms, 60000ms});
  CHECK(loop->kernel->refused() == 3);
  CHECK(loop->kernel->applied() == 1);
  CHECK(loop->holds(rendered(samples())));
  CHECK(loop->controller.metrics().ready());
  CHECK(loop->metric("nftpol_reconcile_errors_total") == 3);
  CHECK(loop->metric("nftpol_reconciles_total") == 1);
}

TEST_CASE("a change during backoff is taken at once, and success resets the backoff", "[loop]") {
  policy::ClusterState objects = samples();
  policy::ClusterState fewer = objects;
  fewer.remove("NetworkPolicy", fewer.policies().front().key());
  std::unique_ptr<Loop> loop;
  loop = std::make_unique<Loop>(
      objects, std::vector<ScriptedSource::Turn>{
                   [&](std::chrono::milliseconds) { return Wake::kTimeout; },  // 100 ms: fails again
                   [&](std::chrono::milliseconds) {                            // 200 ms: a change comes
                     loop->source->next = fewer;
                     return Wake::kChanged;
                   },
                   [&](std::chrono::milliseconds) {  // idle: the kernel holds the change
                     CHECK(loop->holds(rendered(fewer)));
                     loop->kernel->failNext(Error{"injected", EIO});
                     loop->source->next = objects;
                     return Wake::kChanged;
                   },
                   [&](std::chrono::milliseconds) { return Wake::kTimeout; }});
  loop->kernel->failNext(Error{"injected", EIO}, 2);
  REQUIRE(loop->controller.run() == 0);
  CHECK(loop->source->waits == std::vector<std::chrono::milliseconds>{100ms, 200ms, 60000ms, 100ms, 60000ms});
  CHECK(loop->holds(rendered(objects)));
}

TEST_CASE("the first sync waits for a complete source and applies nothing before, and later ones do not wait",
          "[loop]") {
  policy::ClusterState objects = samples();
  policy::ClusterState fewer = objects;
  fewer.remove("NetworkPolicy", fewer.policies().front().key());
  std::unique_ptr<Loop> loop;
  loop = std::make_unique<Loop>(objects, std::vector<ScriptedSource::Turn>{
                                             [&](std::chrono::milliseconds) {
                                               CHECK(loop->kernel->applied() == 0);
                                               CHECK_FALSE(loop->kernel->view().exists);
                                               CHECK_FALSE(loop->controller.metrics().ready());
                                               return Wake::kChanged;  // something arrived; still incomplete
                                             },
                                             [&](std::chrono::milliseconds) {
                                               CHECK(loop->kernel->applied() == 0);
                                               loop->source->whole = true;
                                               return Wake::kChanged;
                                             },
                                             [&](std::chrono::milliseconds) {
                                               CHECK(loop->kernel->applied() == 1);
                                               CHECK(loop->controller.metrics().ready());
                                               // Incomplete again (a file broke, a list failed): enforcement
                                               // goes on with the rest.
                                               loop->source->whole = false;
                                               loop->source->next = fewer;
                                               return Wake::kChanged;
                                             }});
  loop->source->whole = false;
  REQUIRE(loop->controller.run() == 0);
  CHECK(loop->source->waits == std::vector<std::chrono::milliseconds>{100ms, 100ms, 60000ms, 60000ms});
  CHECK(loop->kernel->applied() == 2);
  CHECK(loop->holds(rendered(fewer)));
  CHECK(loop->metric("nftpol_reconcile_errors_total") == 0);  // waiting is not failing
}

TEST_CASE("drift: the periodic resync reads the kernel afresh and repairs what someone changed", "[loop]") {
  const policy::ClusterState objects = samples();
  const nft::Table want = rendered(objects);
  std::unique_ptr<Loop> loop;
  std::string emptied, flushed;
  loop = std::make_unique<Loop>(objects, std::vector<ScriptedSource::Turn>{
                                             [&](std::chrono::milliseconds) {
                                               REQUIRE(loop->holds(want));
                                               // Someone empties a set and a chain behind our back, and no
                                               // event says so.
                                               auto& view = loop->kernel->view();
                                               for (auto& [name, set] : view.sets)
                                                 if (!set.elements.empty() && emptied.empty()) {
                                                   emptied = name;
                                                   set.elements.clear();
                                                 }
                                               for (auto& [name, chain] : view.chains)
                                                 if (!chain.base && !chain.rules.empty() && flushed.empty()) {
                                                   flushed = name;
                                                   chain.rules = nft::Signatures();
                                                 }
                                               REQUIRE_FALSE(loop->holds(want));
                                               return Wake::kTimeout;  // the idle interval passed
                                             },
                                             [&](std::chrono::milliseconds) {
                                               CHECK(loop->holds(want));
                                               return Wake::kStop;
                                             }});
  REQUIRE(loop->controller.run() == 0);
  CHECK_FALSE(emptied.empty());
  CHECK_FALSE(flushed.empty());
  CHECK(loop->kernel->forgotten() == 1);
  CHECK(loop->kernel->applied() == 2);
  CHECK(loop->source->waits == std::vector<std::chrono::milliseconds>{60000ms, 60000ms});
  // Stopping leaves the rules in place.
  CHECK(loop->holds(want));
}
