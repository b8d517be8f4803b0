#pragma once

#include <string>

namespace nftpol::controller {

// One line per event, `ts=… level=… msg="…" key=value…`: readable by people and by grep.
void logLine(const char* level, const std::string& message, const std::string& fields = "");
inline void logInfo(const std::string& m, const std::string& f = "") {
  logLine("info", m, f);
}
inline void logWarn(const std::string& m, const std::string& f = "") {
  logLine("warn", m, f);
}
inline void logError(const std::string& m, const std::string& f = "") {
  logLine("error", m, f);
}

}  // namespace nftpol::controller
