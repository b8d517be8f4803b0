#include "nftpol/controller/metrics.h"

#include <catch2/catch.hpp>

using namespace nftpol::controller;
using namespace std::chrono_literals;

TEST_CASE("liveness: the reconcile loop must have turned within the limit") {
  Metrics metrics;
  auto t0 = std::chrono::steady_clock::now();
  CHECK(metrics.live(t0 + 1h, 180s));  // not started yet: starting is the readiness probe's business
  metrics.loopTurned(t0);
  CHECK(metrics.live(t0 + 179s, 180s));
  CHECK_FALSE(metrics.live(t0 + 181s, 180s));
  metrics.loopTurned(t0 + 200s);
  CHECK(metrics.live(t0 + 201s, 180s));
}

TEST_CASE("event-to-commit: each arrival is observed once, by how long it waited") {
  Metrics metrics;
  auto now = std::chrono::steady_clock::now();
  std::vector<std::chrono::steady_clock::time_point> arrivals{now - 3ms, now - 40ms, now - 2s};
  metrics.committed(arrivals, now);
  std::string text = metrics.prometheus();
  CHECK_THAT(text, Catch::Contains("nftpol_event_to_commit_seconds_bucket{le=\"0.005\"} 1\n"));
  CHECK_THAT(text, Catch::Contains("nftpol_event_to_commit_seconds_bucket{le=\"0.05\"} 2\n"));
  CHECK_THAT(text, Catch::Contains("nftpol_event_to_commit_seconds_bucket{le=\"2.5\"} 3\n"));
  CHECK_THAT(text, Catch::Contains("nftpol_event_to_commit_seconds_count 3\n"));
}
