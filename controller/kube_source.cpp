#include "nftpol/controller/kube_source.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "nftpol/json_value.h"
#include "nftpol/policy/loader.h"
#include "reflector.h"

namespace nftpol::controller {

using Clock = std::chrono::steady_clock;

KubeSource::KubeSource(std::function<std::unique_ptr<ApiClient>()> connect, KubeSourceOptions options)
    : connect_(std::move(connect)),
      options_(std::move(options)),
      wakeFd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

KubeSource::~KubeSource() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  stopCv_.notify_all();
  for (auto& c : clients_)
    c->cancel();
  for (auto& t : threads_)
    t.join();
  if (wakeFd_ >= 0) ::close(wakeFd_);
}

std::optional<Error> KubeSource::start() {
  if (wakeFd_ < 0) return Error{"eventfd: cannot create"};
  auto sleep = [this](std::chrono::milliseconds d) {
    std::unique_lock lock(mu_);
    return !stopCv_.wait_for(lock, d, [this] { return stopping_.load(); });
  };
  for (const auto& resource : kWatchedResources) {
    clients_.push_back(connect_());
    ApiClient& client = *clients_.back();
    threads_.emplace_back(
        [this, &resource, &client, sleep] { reflect(*this, resource, client, options_, stopping_, sleep); });
  }
  return std::nullopt;
}

void KubeSource::arrive(Arrival arrival) {
  arrival.received = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(arrival));
  }
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wakeFd_, &one, sizeof one);
}

void KubeSource::listed(const WatchedResource& resource) {
  std::lock_guard lock(mu_);
  if (std::find(listedOnce_.begin(), listedOnce_.end(), &resource) == listedOnce_.end())
    listedOnce_.push_back(&resource);
}

bool KubeSource::complete() const {
  std::lock_guard lock(mu_);
  // Every kind listed, and the lists taken into state().
  return listedOnce_.size() == kWatchedResources.size() && queue_.empty();
}

namespace {

// An object's key in ClusterState: "namespace/name", or the name of a cluster-scoped one.
std::optional<std::string> keyOf(const json::Value& object) {
  const json::Value* md = object.find("metadata");
  const json::Value* name = md ? md->find("name") : nullptr;
  const json::Value* ns = md ? md->find("namespace") : nullptr;
  if (!name || !name->isString()) return std::nullopt;
  return ns && ns->isString() ? ns->asString() + "/" + name->asString() : name->asString();
}

}  // namespace

Source::Change KubeSource::take() {
  std::deque<Arrival> arrived;
  {
    std::lock_guard lock(mu_);
    arrived.swap(queue_);
  }
  Change change;
  for (const auto& a : arrived) {
    change.arrivals.push_back(a.received);
    if (a.kind == Arrival::Kind::kListed) {
      takeList(a, change);
    } else {
      takeObject(a, change);
    }
  }
  std::sort(change.objects.begin(), change.objects.end());
  change.objects.erase(std::unique(change.objects.begin(), change.objects.end()), change.objects.end());
  if (!change.objects.empty()) ++generation_;
  return change;
}

// The kind's objects become exactly the list's: the listed ones taken, the others (gone while we were not
// watching) removed.
void KubeSource::takeList(const Arrival& a, Change& change) {
  policy::ClusterState listed;
  std::vector<policy::Diagnostic> diagnostics;
  std::string kind(a.resource->storeKind()), prefix(a.resource->keyPrefix);
  std::set<std::string> keys;  // every item the server listed, valid for us or not
  for (const auto& page : a.json) {
    policy::loadText(page, "the " + std::string(a.resource->kind) + " list", listed, diagnostics);
    if (auto parsed = json::parse(page); parsed && parsed->find("items") && parsed->find("items")->isArray())
      for (const auto& item : parsed->find("items")->asArray())
        if (auto key = keyOf(item)) keys.insert(prefix + *key);
  }
  // This resource's objects: its kind in the state, and its key prefix (another resource shares the kind).
  auto ours = [&](const policy::ObjectRef& ref) { return ref.kind == kind && ref.key.starts_with(prefix); };
  // An item our validation refuses (the API server accepted it) keeps its last valid version, as a watch
  // event would: dropping it could lift a policy's isolation.
  if (policy::hasErrors(diagnostics)) ++change.rejected;
  change.diagnostics.insert(change.diagnostics.end(), diagnostics.begin(), diagnostics.end());
  for (const auto& ref : listed.refs()) {
    if (!ours(ref)) continue;
    state_.copyFrom(listed, ref);
    change.objects.push_back(ref);
  }
  for (const auto& ref : state_.refs())
    if (ours(ref) && !keys.contains(ref.key)) {
      state_.remove(ref.kind, ref.key);
      change.objects.push_back(ref);
    }
}

void KubeSource::takeObject(const Arrival& a, Change& change) {
  std::string kind(a.resource->storeKind()), prefix(a.resource->keyPrefix);
  if (a.kind == Arrival::Kind::kDelete) {
    auto object = json::parse(a.json.front());
    auto key = object ? keyOf(*object) : std::nullopt;
    if (key && state_.remove(kind, prefix + *key)) change.objects.push_back({kind, prefix + *key});
    return;
  }
  // An object the API server holds has passed its validation; one that fails ours keeps its last version.
  policy::ClusterState one;
  std::vector<policy::Diagnostic> diagnostics;
  policy::loadText(a.json.front(), "a " + std::string(a.resource->kind) + " event", one, diagnostics);
  for (const auto& ref : one.refs())
    if (ref.kind == kind && ref.key.starts_with(prefix)) {
      state_.copyFrom(one, ref);
      change.objects.push_back(ref);
    }
  if (policy::hasErrors(diagnostics)) ++change.rejected;
  change.diagnostics.insert(change.diagnostics.end(), diagnostics.begin(), diagnostics.end());
}

Source::Wake KubeSource::wait(std::chrono::milliseconds timeout, Interrupts interrupts) {
  pollfd fds[3] = {{wakeFd_, POLLIN, 0}, {interrupts.stop, POLLIN, 0}, {interrupts.handoff, POLLIN, 0}};
  int n = ::poll(fds, 3, static_cast<int>(timeout.count()));
  if (n > 0 && (fds[1].revents & POLLIN)) return Wake::kStop;
  if (n > 0 && (fds[2].revents & POLLIN)) return Wake::kHandoff;
  if (n <= 0) return Wake::kTimeout;
  uint64_t count;
  [[maybe_unused]] auto r = ::read(wakeFd_, &count, sizeof count);
  // A burst (a list's pages, a rollout's events) settles into one take.
  auto first = Clock::now();
  while (Clock::now() - first < options_.maxSettle) {
    pollfd more[2] = {{wakeFd_, POLLIN, 0}, {interrupts.handoff, POLLIN, 0}};
    if (::poll(more, 2, static_cast<int>(options_.settle.count())) <= 0 || (more[1].revents & POLLIN)) break;
    r = ::read(wakeFd_, &count, sizeof count);
  }
  return Wake::kChanged;
}

}  // namespace nftpol::controller
