#pragma once

// What the enforcement benchmarks share: timing, percentiles, and the kernel's own word on when a commit
// happened (the NEWGEN message of the nftables multicast group).

#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace nftpol::bench {

using Clock = std::chrono::steady_clock;

inline double ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}
inline double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5))];
}

inline void write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

// Waits up to `timeoutMs` for the next ruleset commit announced on the nftables multicast group.
inline bool nextCommit(mnl_socket* monitor, int timeoutMs) {
  std::vector<char> buf(1 << 16);
  auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{mnl_socket_get_fd(monitor), POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    ssize_t n = mnl_socket_recvfrom(monitor, buf.data(), buf.size());
    if (n < 0 && errno == ENOBUFS) continue;  // events lost to an overrun: the commit's NEWGEN comes last
    if (n <= 0) return false;
    int remaining = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); mnl_nlmsg_ok(h, remaining);
         h = mnl_nlmsg_next(h, &remaining))
      if (h->nlmsg_type == ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN)) return true;
  }
}

// A monitor socket subscribed to ruleset commits; nullptr when it cannot be opened.
inline mnl_socket* openCommitMonitor() {
  mnl_socket* monitor = mnl_socket_open(NETLINK_NETFILTER);
  // Every object a commit adds is announced on the group before its NEWGEN: a full sync of a table with
  // cluster policies is thousands of messages, more than the default buffer holds.
  int bytes = 64 << 20;
  if (monitor) setsockopt(mnl_socket_get_fd(monitor), SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes);
  if (monitor && mnl_socket_bind(monitor, 1u << (NFNLGRP_NFTABLES - 1), MNL_SOCKET_AUTOPID) < 0) {
    mnl_socket_close(monitor);
    return nullptr;
  }
  return monitor;
}

// Starts `nftpol controller` (the build's, beside the benchmark) on `dir` for `node`, its output to
// $NFTPOL_BENCH_LOG or nowhere; stop it with stopController.
inline pid_t startController(const std::filesystem::path& dir, const std::string& node) {
  auto exe = std::filesystem::read_symlink("/proc/self/exe").parent_path().parent_path() / "cli" / "nftpol";
  pid_t pid = fork();
  if (pid == 0) {
    int log = ::open(getenv("NFTPOL_BENCH_LOG") ? getenv("NFTPOL_BENCH_LOG") : "/dev/null",
                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(log, 1);
    dup2(log, 2);
    execl(exe.c_str(), "nftpol", "controller", "--manifests", dir.c_str(), "--node", node.c_str(), "--listen",
          "", "--no-conntrack-revoke", static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}
inline void stopController(pid_t pid) {
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
}

}  // namespace nftpol::bench
