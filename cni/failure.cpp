#include "nftpol/cni/failure.h"

#include <cstdio>

namespace nftpol::cni {

std::string quote(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string toJson(const Failure& failure, const std::string& cniVersion) {
  std::string out = "{\"cniVersion\": " + quote(cniVersion) +
                    ", \"code\": " + std::to_string(static_cast<int>(failure.code)) +
                    ", \"msg\": " + quote(failure.msg);
  if (!failure.details.empty()) out += ", \"details\": " + quote(failure.details);
  return out + "}";
}

}  // namespace nftpol::cni
