#include "nftpol/controller/manifest_source.h"

namespace nftpol::controller {

using Clock = std::chrono::steady_clock;

std::optional<Error> ManifestSource::start() {
  auto watcher = Watcher::create(directory_);
  if (!watcher) return watcher.error();
  watcher_.emplace(std::move(*watcher));
  return std::nullopt;
}

Source::Change ManifestSource::take() {
  auto refreshed = manifests_.refresh();
  Change change{.objects = std::move(refreshed.objects),
                .diagnostics = std::move(refreshed.diagnostics),
                .rejected = refreshed.filesWithErrors};
  if (!change.objects.empty() && firstUntaken_) change.arrivals.push_back(*firstUntaken_);
  firstUntaken_.reset();
  return change;
}

Source::Wake ManifestSource::wait(std::chrono::milliseconds timeout, Interrupts interrupts) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    auto event = watcher_->wait(std::max(left, std::chrono::milliseconds{0}), interrupts);
    if (event == Watcher::Event::kStop) return Wake::kStop;
    if (event == Watcher::Event::kHandoff) return Wake::kHandoff;
    if (event == Watcher::Event::kTimeout) return Wake::kTimeout;
    if (!firstUntaken_) firstUntaken_ = Clock::now();
    // Files written after a quiet spell are taken at once: inotify reports them once closed, so they are
    // whole. Anything else (a deletion is often the first half of a replacement) and changes that keep coming
    // (a `git checkout`, `kubectl apply -f dir/`) are debounced until they settle: one sync per burst.
    if (event == Watcher::Event::kCreated) continue;  // its close (or rename) follows
    auto now = Clock::now();
    bool quiet = now - lastEvent_ >= debounce_;
    lastEvent_ = now;
    if (event == Watcher::Event::kWritten && quiet) return Wake::kChanged;
    auto first = Clock::now();
    while (Clock::now() - first < maxDebounce_) {
      auto more = watcher_->wait(debounce_, interrupts);
      if (more == Watcher::Event::kStop) return Wake::kStop;
      if (more == Watcher::Event::kHandoff) return Wake::kChanged;  // the burst so far, and the handoff
      if (more == Watcher::Event::kTimeout) break;
      lastEvent_ = Clock::now();
    }
    return Wake::kChanged;
  }
}

}  // namespace nftpol::controller
