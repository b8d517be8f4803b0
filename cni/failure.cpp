#include "nftpol/cni/failure.h"

#include "nftpol/json.h"

namespace nftpol::cni {

std::string toJson(const Failure& failure, const std::string& cniVersion) {
  std::string out = "{\"cniVersion\": " + jsonString(cniVersion) +
                    ", \"code\": " + std::to_string(static_cast<int>(failure.code)) +
                    ", \"msg\": " + jsonString(failure.msg);
  if (!failure.details.empty()) out += ", \"details\": " + jsonString(failure.details);
  return out + "}";
}

}  // namespace nftpol::cni
