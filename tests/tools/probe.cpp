// nftpol-probe: the two ends of a connectivity probe, bounded in time.
//   nftpol-probe serve PORT...                  TCP and UDP on every port: reply "ok" to each
//                                               connection/datagram ("ok NAME" with NFTPOL_PROBE_NAME=NAME)
//   nftpol-probe connect tcp|udp ADDRESS PORT [TIMEOUT_MS [SOURCE_PORT]]
//                                               exit 0 when the reply came within the timeout (default 400
//                                               ms), 1 when it did not, 2 on bad usage, 3 when nothing was
//                                               sent (the socket, bind, connect or send failed here)
//   nftpol-probe tally ADDRESS PORT COUNT TIMEOUT_MS
//                                               COUNT TCP connections one after another; prints how many
//                                               replies each server name gave, and "failed N"
//   nftpol-probe synflood SOURCE ADDRESS PORT PER_SECOND SECONDS
//                                               TCP SYNs from SOURCE (this namespace's address) to
//                                               ADDRESS:PORT through a raw socket, each from a new source
//                                               port (a new connection to conntrack), paced at PER_SECOND;
//                                               prints how many were sent
//   nftpol-probe storm ADDRESS PORT INTERVAL_MS TIMEOUT_MS MAX_MS STOP-FILE
//                                               a TCP connection every INTERVAL_MS, many in flight, each
//                                               bounded by TIMEOUT_MS, until STOP-FILE exists or MAX_MS
//                                               passed; a line per attempt: "<start, unix seconds.micros>
//                                               ok|no"
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace {

int usage() {
  std::fprintf(
      stderr,
      "usage: nftpol-probe serve PORT... | connect tcp|udp ADDRESS PORT [TIMEOUT_MS [SOURCE_PORT]] | tally "
      "ADDRESS PORT "
      "COUNT TIMEOUT_MS | echo PORT | hold ADDRESS PORT MS | push PORT | watch ADDRESS PORT MS | flow "
      "ADDRESS PORT MS | sink PORT | "
      "blast|rate ADDRESS PORT SECONDS | synflood SOURCE ADDRESS PORT PER_SECOND SECONDS | storm ADDRESS "
      "PORT INTERVAL_MS TIMEOUT_MS MAX_MS STOP-FILE\n");
  return 2;
}

bool parseAddress(const char* text, uint16_t port, sockaddr_storage& out, socklen_t& len) {
  std::memset(&out, 0, sizeof out);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
  if (inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof *v4;
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
  if (inet_pton(AF_INET6, text, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof *v6;
    return true;
  }
  return false;
}

int serve(const std::vector<uint16_t>& ports) {
  const char* name = std::getenv("NFTPOL_PROBE_NAME");
  std::string reply = name ? std::string("ok ") + name + "\n" : std::string("ok\n");
  std::vector<pollfd> fds;
  std::vector<int> kinds;  // SOCK_STREAM or SOCK_DGRAM
  for (uint16_t port : ports) {
    for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
      int fd = socket(AF_INET6, type, 0);
      int off = 0, on = 1;
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);  // IPv4 and IPv6 on one socket
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      a.sin6_port = htons(port);
      a.sin6_addr = in6addr_any;
      if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
          (type == SOCK_STREAM && listen(fd, 64) != 0)) {
        std::perror("nftpol-probe serve");
        return 1;
      }
      fds.push_back({fd, POLLIN, 0});
      kinds.push_back(type);
    }
  }
  for (;;) {
    if (poll(fds.data(), fds.size(), -1) < 0) continue;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (!(fds[i].revents & POLLIN)) continue;
      if (kinds[i] == SOCK_STREAM) {
        int c = accept(fds[i].fd, nullptr, nullptr);
        if (c >= 0) {
          (void)!write(c, reply.data(), reply.size());
          close(c);
        }
      } else {
        char buf[512];
        sockaddr_storage from{};
        socklen_t len = sizeof from;
        ssize_t n = recvfrom(fds[i].fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
        if (n >= 0) sendto(fds[i].fd, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
      }
    }
  }
}

int connectProbe(bool tcp, const char* address, uint16_t port, int timeoutMs, uint16_t sourcePort = 0) {
  sockaddr_storage to{};
  socklen_t len = 0;
  if (!parseAddress(address, port, to, len)) return usage();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  auto left = [&] {
    auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<long long>(0, ms.count()));
  };
  // A probe that sent nothing proves nothing about the path: it says so, apart from one that got no reply.
  auto unsent = [](const char* what) {
    std::fprintf(stderr, "nftpol-probe: %s: %s\n", what, std::strerror(errno));
    return 3;
  };
  int fd = socket(to.ss_family, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK, 0);
  if (fd < 0) return unsent("socket");
  if (sourcePort) {
    // A fixed source port: a UDP probe whose tuple a live conntrack entry already holds would join that
    // flow instead of opening a new one (and a flow log would rightly not record it).
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    sockaddr_storage from{};
    from.ss_family = to.ss_family;
    if (to.ss_family == AF_INET)
      reinterpret_cast<sockaddr_in*>(&from)->sin_port = htons(sourcePort);
    else
      reinterpret_cast<sockaddr_in6*>(&from)->sin6_port = htons(sourcePort);
    if (bind(fd, reinterpret_cast<sockaddr*>(&from), len) != 0) return unsent("bind");
  }
  if (tcp) {
    if (connect(fd, reinterpret_cast<sockaddr*>(&to), len) != 0 && errno != EINPROGRESS)
      return unsent("connect");
  } else {
    // Connected, so that an ICMP port unreachable comes back as ECONNREFUSED instead of silence.
    if (connect(fd, reinterpret_cast<sockaddr*>(&to), len) != 0) return unsent("connect");
    if (send(fd, "hi", 2, 0) < 0) return unsent("send");
  }
  pollfd p{fd, POLLIN, 0};
  while (left() > 0) {
    if (poll(&p, 1, left()) <= 0) break;
    char buf[16];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n >= 2 && buf[0] == 'o' && buf[1] == 'k') return 0;
    if (n < 0 && errno != EAGAIN) break;  // refused or reset
  }
  return 1;
}

// One TCP connection: the server's name ("" for a plain "ok"), or nullopt when no reply came in time.
std::optional<std::string> ask(const sockaddr_storage& to, socklen_t len, int timeoutMs) {
  int fd = socket(to.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return std::nullopt;
  linger l{1, 0};  // no TIME_WAIT: hundreds of probes must not exhaust local ports
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  std::optional<std::string> out;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&to), len) == 0 || errno == EINPROGRESS) {
    pollfd p{fd, POLLIN, 0};
    std::string got;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    while (std::chrono::steady_clock::now() < deadline) {
      int left = static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now())
              .count());
      if (poll(&p, 1, std::max(left, 1)) <= 0) break;
      char buf[64];
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
      if (got.find('\n') != std::string::npos) {
        if (got.rfind("ok", 0) == 0) out = got.size() > 3 ? got.substr(3, got.find('\n') - 3) : "";
        break;
      }
    }
  }
  close(fd);
  return out;
}

int tally(const char* address, uint16_t port, int count, int timeoutMs) {
  sockaddr_storage to{};
  socklen_t len = 0;
  if (!parseAddress(address, port, to, len) || count < 1 || count > 5000) return usage();
  std::map<std::string, int> names;
  int failed = 0;
  for (int i = 0; i < count; ++i) {
    auto name = ask(to, len, timeoutMs);
    if (name)
      ++names[name->empty() ? "ok" : *name];
    else
      ++failed;
  }
  for (const auto& [name, n] : names)
    std::printf("%s %d\n", name.c_str(), n);
  std::printf("failed %d\n", failed);
  return 0;
}

long long unixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int echo(uint16_t port) {
  int listener = socket(AF_INET6, SOCK_STREAM, 0);
  int off = 0, on = 1;
  setsockopt(listener, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(port);
  a.sin6_addr = in6addr_any;
  if (bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(listener, 16) != 0) {
    std::perror("nftpol-probe echo");
    return 1;
  }
  std::vector<pollfd> fds = {{listener, POLLIN, 0}};
  for (;;) {
    if (poll(fds.data(), fds.size(), -1) < 0) continue;
    if (fds[0].revents & POLLIN) {
      int c = accept(listener, nullptr, nullptr);
      if (c >= 0) fds.push_back({c, POLLIN, 0});
    }
    for (size_t i = 1; i < fds.size(); ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[256];
      ssize_t n = recv(fds[i].fd, buf, sizeof buf, 0);
      if (n <= 0 || send(fds[i].fd, buf, static_cast<size_t>(n), MSG_NOSIGNAL) < 0) {
        close(fds[i].fd);
        fds.erase(fds.begin() + static_cast<long>(i--));
      }
    }
  }
}

// The first reply of a connection: a test waits for this line rather than for a fixed time.
void printEstablished(bool& established) {
  established = true;
  std::printf("established\n");
  std::fflush(stdout);
}

int hold(const char* address, uint16_t port, int maxMs) {
  sockaddr_storage to{};
  socklen_t len = 0;
  if (!parseAddress(address, port, to, len)) return usage();
  int fd = socket(to.ss_family, SOCK_STREAM, 0);
  timeval tv{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&to), len) != 0) return 1;
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(maxMs);
  bool established = false;
  while (std::chrono::steady_clock::now() < end) {
    long long sent = unixMs();
    pollfd p{fd, POLLIN, 0};
    char c = 'x';
    // A reset ends it at once; silence only after a second: 100 ms is within a loaded machine's scheduling
    // delays, and a slow echo must not count as a cut connection.
    if (send(fd, &c, 1, MSG_NOSIGNAL) != 1 || poll(&p, 1, 1000) != 1 || recv(fd, &c, 1, 0) != 1) {
      std::printf("%lld\n", sent);
      return 0;
    }
    if (!established) printEstablished(established);
    usleep(10000);
  }
  std::printf("held\n");
  return 3;
}

// A listening IPv4 TCP socket on every address, or -1.
int listenTcp4(uint16_t port) {
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  int on = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(listener, 16) != 0) {
    close(listener);
    return -1;
  }
  return listener;
}

// A UDP flow to a `serve` port: a datagram every 10 ms for MS at most. Prints "established" at the first
// reply, "cut T" when replies stop for 500 ms and "resumed T" when they come back (T in ms since the epoch);
// exits 0 as soon as it was cut and resumed, 4 when cut for good, 3 when never cut.
int flow(const char* address, uint16_t port, int maxMs) {
  sockaddr_storage to{};
  socklen_t len = 0;
  if (!parseAddress(address, port, to, len)) return usage();
  int fd = socket(to.ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&to), len) != 0) return 1;
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(maxMs);
  long long lastReply = unixMs();
  bool established = false, cut = false, resumed = false;
  while (!resumed && std::chrono::steady_clock::now() < end) {
    send(fd, "hi", 2, 0);
    usleep(10000);
    char b[16];
    for (;;) {
      ssize_t n = recv(fd, b, sizeof b, 0);
      if (n < 0 && errno == ECONNREFUSED) continue;  // an ICMP error: nothing came back
      if (n <= 0) break;
      lastReply = unixMs();
      if (!established) printEstablished(established);
      if (cut && !resumed) {
        resumed = true;
        std::printf("resumed %lld\n", lastReply);
      }
    }
    if (established && !cut &&
        unixMs() - lastReply > 500) {  // UDP is dropped, never reset: only silence tells
      cut = true;
      std::printf("cut %lld\n", lastReply);
      std::fflush(stdout);
    }
  }
  return !cut ? 3 : resumed ? 0 : 4;
}

// The server speaks first and keeps speaking: a byte every 10 ms on every connection. Revoking such a
// connection races the server's next byte, which (when its conntrack entry is gone) is picked up mid-stream
// as if the server had opened the connection.
int push(uint16_t port) {
  int listener = listenTcp4(port);
  if (listener < 0) return 1;
  fcntl(listener, F_SETFL, O_NONBLOCK);
  std::vector<int> clients;
  for (;;) {
    for (int c; (c = accept(listener, nullptr, nullptr)) >= 0;) {
      fcntl(c, F_SETFL, O_NONBLOCK);
      clients.push_back(c);
    }
    std::erase_if(clients, [](int c) {
      char b = 'x';
      if (send(c, &b, 1, MSG_NOSIGNAL) == 1 || errno == EAGAIN) return false;
      close(c);
      return true;
    });
    usleep(10000);
  }
}

// Reads what a `push` server sends; prints "established" at the first byte, then when the bytes stopped (exit
// 0) or "held" after MS (exit 3).
int watch(const char* address, uint16_t port, int maxMs) {
  sockaddr_storage to{};
  socklen_t len = 0;
  if (!parseAddress(address, port, to, len)) return usage();
  int fd = socket(to.ss_family, SOCK_STREAM, 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&to), len) != 0) return 1;
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(maxMs);
  long long last = unixMs();
  bool established = false;
  while (std::chrono::steady_clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    char b[64];
    if (poll(&p, 1, 1000) != 1 || recv(fd, b, sizeof b, 0) <= 0) {  // the bytes stopped: reset or silence
      std::printf("%lld\n", last);
      return 0;
    }
    last = unixMs();
    if (!established) printEstablished(established);
  }
  std::printf("held\n");
  return 3;
}

int sink(uint16_t port) {
  int listener = listenTcp4(port);
  if (listener < 0) return 1;
  std::vector<char> buf(1 << 17);
  for (;;) {
    int c = accept(listener, nullptr, nullptr);
    while (c >= 0 && recv(c, buf.data(), buf.size(), 0) > 0) {
    }
    if (c >= 0) close(c);
  }
}

int blast(const char* address, uint16_t port, int seconds) {
  sockaddr_storage to{};
  socklen_t len = 0;
  if (!parseAddress(address, port, to, len)) return usage();
  int fd = socket(to.ss_family, SOCK_STREAM, 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&to), len) != 0) return 1;
  std::vector<char> buf(1 << 16, 'x');
  auto start = std::chrono::steady_clock::now(), end = start + std::chrono::seconds(seconds);
  double bytes = 0;
  while (std::chrono::steady_clock::now() < end) {
    ssize_t n = send(fd, buf.data(), buf.size(), MSG_NOSIGNAL);
    if (n <= 0) return 1;
    bytes += static_cast<double>(n);
  }
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%.1f\n", bytes / elapsed / 1e6);
  return 0;
}

uint16_t checksum(const uint8_t* data, size_t length, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < length; i += 2)
    sum += static_cast<uint32_t>((data[i] << 8) | data[i + 1]);
  if (length % 2) sum += static_cast<uint32_t>(data[length - 1] << 8);
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// SYNs without a socket of their own each: the kernel keeps no state for them on this side, so a flood
// costs the sender nothing but the sending. IPv4 only.
int synflood(const char* source, const char* address, uint16_t port, long perSecond, int seconds) {
  in_addr from{}, to{};
  if (inet_pton(AF_INET, source, &from) != 1 || inet_pton(AF_INET, address, &to) != 1 || perSecond <= 0)
    return usage();
  int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);  // we write the IP header (IP_HDRINCL is implied)
  if (fd < 0) return 1;
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_addr = to;
  uint8_t packet[40] = {};
  packet[0] = 0x45;
  packet[3] = 40;  // total length
  packet[8] = 64;  // TTL
  packet[9] = IPPROTO_TCP;
  std::memcpy(packet + 12, &from, 4);
  std::memcpy(packet + 16, &to, 4);
  uint8_t* tcp = packet + 20;
  tcp[2] = static_cast<uint8_t>(port >> 8);
  tcp[3] = static_cast<uint8_t>(port);
  tcp[12] = 5 << 4;  // header length
  tcp[13] = 0x02;    // SYN
  tcp[14] = 0xff;    // window
  long long sent = 0, total = perSecond * seconds;
  auto start = std::chrono::steady_clock::now();
  uint32_t seq = 1;
  while (sent < total) {
    // Paced in 1 ms slices: the SYNs due by now go out, then a short sleep.
    auto due = static_cast<long long>(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() *
        static_cast<double>(perSecond));
    for (; sent < std::min(due, total); ++sent) {
      uint16_t sport = static_cast<uint16_t>(1024 + sent % 64000);
      tcp[0] = static_cast<uint8_t>(sport >> 8);
      tcp[1] = static_cast<uint8_t>(sport);
      seq = seq * 1103515245u + 12345u;
      std::memcpy(tcp + 4, &seq, 4);
      tcp[16] = tcp[17] = 0;
      uint8_t pseudo[12];
      std::memcpy(pseudo, &from, 4);
      std::memcpy(pseudo + 4, &to, 4);
      pseudo[8] = 0;
      pseudo[9] = IPPROTO_TCP;
      pseudo[10] = 0;
      pseudo[11] = 20;
      uint32_t partial = 0;
      for (size_t i = 0; i < sizeof pseudo; i += 2)
        partial += static_cast<uint32_t>((pseudo[i] << 8) | pseudo[i + 1]);
      uint16_t sum = checksum(tcp, 20, partial);
      tcp[16] = static_cast<uint8_t>(sum >> 8);
      tcp[17] = static_cast<uint8_t>(sum);
      if (sendto(fd, packet, sizeof packet, 0, reinterpret_cast<sockaddr*>(&dst), sizeof dst) < 0) {
        if (errno == ENOBUFS) break;  // not sent: again after the pause
        return 1;
      }
    }
    if (sent < total) usleep(1000);
  }
  std::printf("%lld\n", sent);
  return 0;
}

int rate(const char* address, uint16_t port, int seconds) {
  sockaddr_storage to{};
  socklen_t len = 0;
  if (!parseAddress(address, port, to, len)) return usage();
  auto start = std::chrono::steady_clock::now(), end = start + std::chrono::seconds(seconds);
  long long done = 0;
  while (std::chrono::steady_clock::now() < end) {
    int fd = socket(to.ss_family, SOCK_STREAM, 0);
    linger l{1, 0};  // reset instead of TIME_WAIT, so that a long run does not exhaust local ports
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    char b[4];
    if (connect(fd, reinterpret_cast<sockaddr*>(&to), len) == 0 && recv(fd, b, sizeof b, 0) > 0) ++done;
    close(fd);
  }
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%.0f\n", static_cast<double>(done) / elapsed);
  return 0;
}

// Attempts as fast as a new pod's first packets come: a connection starts every INTERVAL_MS whether or not
// the earlier ones have finished, so a window of a few milliseconds in which the kernel lets a connection
// through is hit (one attempt at a time, each waiting out its timeout on a dropped SYN, would probe a few
// times a second). An attempt that fails at once (no route yet, no interface yet) is "no" at once.
int storm(const char* address, uint16_t port, int intervalMs, int timeoutMs, int maxMs,
          const char* stopFile) {
  sockaddr_storage to{};
  socklen_t len = 0;
  if (!parseAddress(address, port, to, len) || intervalMs < 1 || timeoutMs < 1 || maxMs < 1) return usage();
  using Clock = std::chrono::steady_clock;
  struct Attempt {
    int fd;
    double started;  // unix seconds, for the caller to compare with its own clock
    Clock::time_point deadline;
    std::string got;
  };
  auto unixSeconds = [] {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  };
  auto report = [](double started, bool ok) { std::printf("%.6f %s\n", started, ok ? "ok" : "no"); };
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // a test reads the log while it grows
  std::list<Attempt> inFlight;
  const auto end = Clock::now() + std::chrono::milliseconds(maxMs);
  auto next = Clock::now();
  auto stopped = [&] {
    struct stat st {};
    return stat(stopFile, &st) == 0;
  };
  while (Clock::now() < end || !inFlight.empty()) {
    auto now = Clock::now();
    if (now >= next && now < end) {
      next = now + std::chrono::milliseconds(intervalMs);
      if (stopped()) {
        next = end;  // no new attempts; the ones in flight finish
      } else {
        double started = unixSeconds();
        int fd = socket(to.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (fd >= 0) {
          linger l{1, 0};  // no TIME_WAIT: thousands of attempts must not exhaust local ports
          setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        }
        if (fd < 0 || (connect(fd, reinterpret_cast<sockaddr*>(&to), len) != 0 && errno != EINPROGRESS)) {
          report(started, false);
          if (fd >= 0) close(fd);
        } else {
          inFlight.push_back({fd, started, now + std::chrono::milliseconds(timeoutMs), {}});
        }
      }
    }
    std::vector<pollfd> fds;
    for (const auto& a : inFlight)
      fds.push_back({a.fd, POLLIN, 0});
    auto wake = std::min(next, end);
    for (const auto& a : inFlight)
      wake = std::min(wake, a.deadline);
    int waitMs = static_cast<int>(std::max<long long>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(wake - Clock::now()).count()));
    if (next >= end && inFlight.empty()) break;
    poll(fds.data(), fds.size(), waitMs);
    now = Clock::now();
    size_t i = 0;
    for (auto it = inFlight.begin(); it != inFlight.end(); ++i) {
      bool done = false, ok = false;
      if (fds[i].revents) {
        char buf[64];
        ssize_t n = recv(it->fd, buf, sizeof buf, 0);
        if (n > 0) {
          it->got.append(buf, static_cast<size_t>(n));
          if (it->got.find('\n') != std::string::npos) done = true, ok = it->got.rfind("ok", 0) == 0;
        } else if (n == 0 || errno != EAGAIN) {
          done = true;  // refused, reset, or closed without a reply
        }
      }
      if (!done && now >= it->deadline) done = true;
      if (!done) {
        ++it;
        continue;
      }
      report(it->started, ok);
      close(it->fd);
      it = inFlight.erase(it);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::strcmp(argv[1], "serve") == 0) {
    std::vector<uint16_t> ports;
    for (int i = 2; i < argc; ++i)
      ports.push_back(static_cast<uint16_t>(std::atoi(argv[i])));
    return serve(ports);
  }
  if (argc >= 5 && argc <= 7 && std::strcmp(argv[1], "connect") == 0) {
    bool tcp = std::strcmp(argv[2], "tcp") == 0;
    if (!tcp && std::strcmp(argv[2], "udp") != 0) return usage();
    return connectProbe(tcp, argv[3], static_cast<uint16_t>(std::atoi(argv[4])),
                        argc >= 6 ? std::atoi(argv[5]) : 400,
                        argc == 7 ? static_cast<uint16_t>(std::atoi(argv[6])) : 0);
  }
  if (argc == 6 && std::strcmp(argv[1], "tally") == 0)
    return tally(argv[2], static_cast<uint16_t>(std::atoi(argv[3])), std::atoi(argv[4]), std::atoi(argv[5]));
  if (argc == 3 && std::strcmp(argv[1], "echo") == 0) return echo(static_cast<uint16_t>(std::atoi(argv[2])));
  if (argc == 5 && std::strcmp(argv[1], "flow") == 0)
    return flow(argv[2], static_cast<uint16_t>(std::atoi(argv[3])), std::atoi(argv[4]));
  if (argc == 3 && std::strcmp(argv[1], "push") == 0) return push(static_cast<uint16_t>(std::atoi(argv[2])));
  if (argc == 5 && std::strcmp(argv[1], "watch") == 0)
    return watch(argv[2], static_cast<uint16_t>(std::atoi(argv[3])), std::atoi(argv[4]));
  if (argc == 3 && std::strcmp(argv[1], "sink") == 0) return sink(static_cast<uint16_t>(std::atoi(argv[2])));
  if (argc == 5 && std::strcmp(argv[1], "blast") == 0)
    return blast(argv[2], static_cast<uint16_t>(std::atoi(argv[3])), std::atoi(argv[4]));
  if (argc == 5 && std::strcmp(argv[1], "rate") == 0)
    return rate(argv[2], static_cast<uint16_t>(std::atoi(argv[3])), std::atoi(argv[4]));
  if (argc == 7 && std::strcmp(argv[1], "synflood") == 0)
    return synflood(argv[2], argv[3], static_cast<uint16_t>(std::atoi(argv[4])), std::atol(argv[5]),
                    std::atoi(argv[6]));
  if (argc == 8 && std::strcmp(argv[1], "storm") == 0)
    return storm(argv[2], static_cast<uint16_t>(std::atoi(argv[3])), std::atoi(argv[4]), std::atoi(argv[5]),
                 std::atoi(argv[6]), argv[7]);
  if (argc == 5 && std::strcmp(argv[1], "hold") == 0)
    return hold(argv[2], static_cast<uint16_t>(std::atoi(argv[3])), std::atoi(argv[4]));
  return usage();
}
