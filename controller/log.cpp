#include "nftpol/controller/log.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace nftpol::controller {

void logLine(const char* level, const std::string& message, const std::string& fields) {
  static std::mutex mu;
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char ts[32];
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string escaped;
  for (char c : message)
    escaped += c == '"' ? '\'' : (c == '\n' ? ' ' : c);
  std::lock_guard lock(mu);
  std::fprintf(stderr, "ts=%s.%03dZ level=%s msg=\"%s\"%s%s\n", ts, static_cast<int>(ms), level,
               escaped.c_str(), fields.empty() ? "" : " ", fields.c_str());
  std::fflush(stderr);
}

}  // namespace nftpol::controller
