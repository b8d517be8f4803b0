#include "nftpol/controller/metrics.h"

#include <chrono>
#include <cstdio>
#include <sstream>

namespace nftpol::controller {

void Histogram::observe(double seconds) {
  for (size_t i = 0; i < bounds_.size(); ++i)
    if (seconds <= bounds_[i]) ++counts_[i];
  ++count_;
  sum_ += seconds;
}

void Histogram::render(std::ostringstream& out, const char* name, const char* help) const {
  out << "# HELP " << name << " " << help << "\n# TYPE " << name << " histogram\n";
  for (size_t i = 0; i < bounds_.size(); ++i)
    out << name << "_bucket{le=\"" << bounds_[i] << "\"} " << counts_[i] << "\n";
  out << name << "_bucket{le=\"+Inf\"} " << count_ << "\n"
      << name << "_sum " << sum_ << "\n"
      << name << "_count " << count_ << "\n";
}

void Metrics::reconciled(double seconds, size_t messages, size_t pods, size_t policies, size_t elements,
                         size_t generation) {
  std::lock_guard lock(mu_);
  reconcileDuration_.observe(seconds);
  messages_ += messages;
  pods_ = pods;
  policies_ = policies;
  elements_ = elements;
  lastSyncUnix_ = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  syncedGeneration_ = generation + 1;
}

void Metrics::committed(std::span<const std::chrono::steady_clock::time_point> arrivals,
                        std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mu_);
  for (auto arrived : arrivals)
    eventToCommit_.observe(std::chrono::duration<double>(now - arrived).count());
}

void Metrics::reconcileFailed() {
  std::lock_guard lock(mu_);
  ++errors_;
}

void Metrics::manifestErrors(size_t files) {
  std::lock_guard lock(mu_);
  manifestErrors_ += files;
}

void Metrics::revoked(size_t connections) {
  std::lock_guard lock(mu_);
  revoked_ += connections;
}

void Metrics::policyVerdicts(const std::string& verdict, const std::string& side, const std::string& ns,
                             const std::string& policy, uint64_t count) {
  std::lock_guard lock(mu_);
  verdicts_[{verdict, side, ns, policy}] += count;
}

void Metrics::flowLogLost(const std::string& reason, uint64_t total) {
  std::lock_guard lock(mu_);
  flowLost_[reason] = total;
}

std::string Metrics::prometheus() const {
  std::lock_guard lock(mu_);
  std::ostringstream out;
  auto metric = [&](const char* name, const char* type, const char* help, auto value) {
    out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n"
        << name << " " << value << "\n";
  };
  metric("nftpol_reconciles_total", "counter", "Successful reconciles.", reconcileDuration_.count());
  metric("nftpol_reconcile_errors_total", "counter", "Reconciles that failed (and were retried).", errors_);
  metric("nftpol_manifest_errors_total", "counter", "Manifest files that failed to parse or validate.",
         manifestErrors_);
  metric("nftpol_netlink_messages_total", "counter", "Netlink messages sent in transactions.", messages_);
  metric("nftpol_conntrack_revoked_total", "counter",
         "Established connections cut because a change denied them.", revoked_);
  reconcileDuration_.render(out, "nftpol_reconcile_duration_seconds",
                            "Time from start of a reconcile to kernel commit.");
  eventToCommit_.render(
      out, "nftpol_event_to_commit_seconds",
      "Time from a change's arrival at the controller (a watch event, a list) to the commit "
      "that makes the kernel hold it.");
  char lastSync[32];
  std::snprintf(lastSync, sizeof lastSync, "%.3f", lastSyncUnix_);
  metric("nftpol_last_sync_timestamp_seconds", "gauge", "Unix time of the last successful reconcile.",
         lastSync);
  metric("nftpol_pods_programmed", "gauge", "Pods on this node that take part in NetworkPolicy.", pods_);
  metric("nftpol_policies_programmed", "gauge", "NetworkPolicies compiled.", policies_);
  metric("nftpol_set_elements_programmed", "gauge", "Set and map elements in the table.", elements_);
  out << "# HELP nftpol_policy_verdicts_total Connections the flow log saw decided, by verdict, side and "
         "policy.\n# TYPE nftpol_policy_verdicts_total counter\n";
  for (const auto& [labels, n] : verdicts_) {
    const auto& [verdict, side, ns, policy] = labels;
    out << "nftpol_policy_verdicts_total{verdict=\"" << verdict << "\",side=\"" << side << "\",namespace=\""
        << ns << "\",policy=\"" << policy << "\"} " << n << "\n";
  }
  out << "# HELP nftpol_flow_log_lost_total Logged packets the flow log could not record, by reason.\n"
         "# TYPE nftpol_flow_log_lost_total counter\n";
  for (const char* reason : {"rate-limit", "sequence-gap", "aggregates", "unreadable", "unknown-prefix"}) {
    auto it = flowLost_.find(reason);
    out << "nftpol_flow_log_lost_total{reason=\"" << reason << "\"} "
        << (it == flowLost_.end() ? 0 : it->second) << "\n";
  }
  auto overruns = flowLost_.find("overrun");
  metric("nftpol_flow_log_overruns_total", "counter",
         "Times the flow log's socket overflowed (its lost packets are in sequence-gap).",
         overruns == flowLost_.end() ? 0 : overruns->second);
  size_t synced = syncedGeneration_.load();
  metric("nftpol_synced_generation", "gauge",
         "Manifest generation the kernel holds (-1 before the first sync).",
         static_cast<long long>(synced) - 1);
  return out.str();
}

}  // namespace nftpol::controller
