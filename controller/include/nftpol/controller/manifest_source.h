#pragma once

#include <memory>
#include <optional>

#include "nftpol/controller/manifests.h"
#include "nftpol/controller/source.h"
#include "nftpol/controller/watcher.h"

namespace nftpol::controller {

// A manifests directory as a source: files reread when inotify reports them, bursts of changes debounced.
class ManifestSource final : public Source {
 public:
  ManifestSource(std::string directory, std::chrono::milliseconds debounce,
                 std::chrono::milliseconds maxDebounce)
      : directory_(directory),
        manifests_(std::move(directory)),
        debounce_(debounce),
        maxDebounce_(maxDebounce) {}

  std::optional<Error> start() override;
  Change take() override;
  const policy::ClusterState& state() const override { return manifests_.state(); }
  size_t generation() const override { return manifests_.generation(); }
  bool complete() const override { return manifests_.brokenFiles() == 0 && manifests_.listedWhole(); }
  Wake wait(std::chrono::milliseconds timeout, Interrupts interrupts) override;
  std::string describe() const override { return "manifests=" + directory_; }

 private:
  std::string directory_;
  ManifestSet manifests_;
  std::optional<Watcher> watcher_;
  std::chrono::milliseconds debounce_, maxDebounce_;
  std::chrono::steady_clock::time_point lastEvent_{};
  std::optional<std::chrono::steady_clock::time_point>
      firstUntaken_;  // the first event the next take answers
};

}  // namespace nftpol::controller
